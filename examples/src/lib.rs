//! Runnable examples for fastagentic; see the `[[example]]` targets.
