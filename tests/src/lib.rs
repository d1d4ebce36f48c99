//! Integration tests for fastagentic live in `tests/`; this library holds what several
//! of them share.

pub mod postgres_server;
pub mod run_stores;
pub mod served;

/// Guide chapters whose examples need `fastagentic-testing`, compiled as doctests here
/// because it is among this crate's dev-dependencies.
#[cfg(doctest)]
pub mod guide {
    /// The chapter "Testing with the mock provider and the fake server".
    #[doc = include_str!("../../book/src/testing.md")]
    pub struct Testing;
}
