//! Integration tests for fastagentic live in `tests/`.
