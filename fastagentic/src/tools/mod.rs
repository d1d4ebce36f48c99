//! Tools: typed Rust fns a model may call, run under the endpoint's guarantees.
//!
//! A [`Tool`] is declared once (name, description, input type, async fn); the JSON Schema
//! the model reads is derived from the input type. [`AgentContext::tool`] runs one
//! within the `tool_call` limit and the endpoint's retry policy, with `on_tool_call` and
//! `on_tool_result` around every attempt.
//!
//! [`AgentContext::tool`]: crate::AgentContext::tool

mod call;
mod tool;

pub use self::tool::{InvalidTool, Tool};
