//! Integration tests for fastagentic live in `tests/`.

/// Guide chapters whose examples need the `fake-server` feature, compiled as doctests here
/// because this crate's dev-dependencies enable it.
#[cfg(doctest)]
pub mod guide {
    /// The chapter "Testing with the mock provider and the fake server".
    #[doc = include_str!("../../book/src/testing.md")]
    pub struct Testing;
}
