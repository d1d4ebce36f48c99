//! Procedural macros for `fastagentic`. Use them through the `fastagentic` crate.
//!
//! `#[agent_endpoint]` and `#[hook]` arrive with the macros issue; this crate exists now
//! so the workspace layout is final.
