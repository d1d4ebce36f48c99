//! Integration tests for fastagentic live in `tests/`.

/// Guide chapters whose examples need `fastagentic-testing`, compiled as doctests here
/// because it is among this crate's dev-dependencies.
#[cfg(doctest)]
pub mod guide {
    /// The chapter "Testing with the mock provider and the fake server".
    #[doc = include_str!("../../book/src/testing.md")]
    pub struct Testing;
}
