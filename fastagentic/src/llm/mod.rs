//! LLM providers: one interface over OpenAI, Anthropic, Gemini, OpenAI-compatible
//! gateways and a scripted mock.
//!
//! Inside an endpoint, [`AgentContext::llm`](crate::AgentContext::llm) calls the model
//! the pipeline chose. Outside one, route a model yourself with [`Providers`] or call a
//! [`Provider`] directly.

mod anthropic;
pub mod compat;
mod completion;
mod gemini;
mod handle;
mod mock;
mod openai;
mod prompt;
mod provider;
mod providers;
pub(crate) mod sse;
mod step;
mod stream;
mod transport;

pub use self::anthropic::Anthropic;
pub use self::completion::{Completion, FinishReason, ToolCall, Usage};
pub use self::gemini::Gemini;
pub use self::handle::{Llm, LlmStream};
pub use self::mock::{MockProvider, MockReply};
pub use self::openai::{MaxTokensField, OpenAi};
pub use self::prompt::{Message, Prompt, ResponseFormat, Role, ToolChoice, ToolResult, ToolSpec};
pub use self::provider::{BoxFuture, Provider};
pub use self::providers::{Providers, default_providers};
pub use self::step::AgentStep;
pub use self::stream::{CompletionStream, StreamEvent, StreamSink};
pub use self::transport::{
    BodyLimits, MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES, MAX_SSE_EVENT_BYTES,
};

/// A set, non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
