//! Tools: typed Rust fns a model may call, run under the endpoint's guarantees, and the
//! agent loop that lets a model use them.
//!
//! A [`Tool`] is declared once (name, description, input type, async fn); the JSON Schema
//! the model reads is derived from the input type. [`AgentContext::tool`] runs one
//! within the `tool_call` limit and the endpoint's retry policy, with `on_tool_call` and
//! `on_tool_result` around every attempt. [`Llm::run`] runs an agent loop over a set of
//! [`Tools`] and returns an [`AgentAnswer`].
//!
//! [`AgentContext::tool`]: crate::AgentContext::tool
//! [`Llm::run`]: crate::llm::Llm::run

mod agent;
mod call;
mod tool;
mod toolbox;

pub use self::agent::AgentAnswer;
pub use self::tool::{InvalidTool, Tool};
pub use self::toolbox::{DEFAULT_MAX_STEPS, Tools};
