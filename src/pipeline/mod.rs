//! The pipeline: a pure state machine ([`machine`]), the retry policy ([`retry`]) and the
//! driver that runs stages and journals them ([`driver`]).
pub mod machine;
