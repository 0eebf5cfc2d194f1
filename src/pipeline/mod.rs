//! The pipeline: a pure state machine ([`machine`]), the retry policy ([`retry`]), one
//! function per stage ([`stages`]) returning its effects as data, the driver that runs stages
//! and commits them ([`driver`]), the one way off the async runtime ([`blocking`]), and
//! identical-request reuse of delivered jobs ([`reuse`]), and the cap on what of a brief
//! reaches the planning models ([`brief_cap`]).
pub mod blocking;
pub mod brief_cap;
pub mod driver;
pub mod machine;
pub mod retry;
pub mod reuse;
pub mod stages;
