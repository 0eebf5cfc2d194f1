//! The pipeline: a pure state machine ([`machine`]), the retry policy ([`retry`]), one
//! function per stage ([`stages`]) and the driver that runs stages and journals them
//! ([`driver`]), and identical-request reuse of delivered jobs ([`reuse`]).
pub mod driver;
pub mod machine;
pub mod retry;
pub mod reuse;
pub mod stages;
