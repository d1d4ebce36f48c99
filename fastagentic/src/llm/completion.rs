//! What a model answered: text, reasoning, tool calls, why it stopped and what it used.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Tokens one call used, in one meaning for every provider.
///
/// Providers count differently (OpenAI and Gemini count cached tokens inside the input,
/// Anthropic apart; Gemini counts thoughts apart from the output); the providers
/// normalize so that:
/// - `input` is every prompt token, cached ones included;
/// - `output` is every generated token, reasoning included;
/// - `reasoning`, `cache_read` and `cache_write` are parts of those, 0 when the provider
///   did not break them out;
/// - `total` is what the provider reported as the total, or `input + output`.
///
/// A call whose usage never arrived (a stream cut before its usage chunk, an OpenAI
/// stream without `include_usage`) has no `Usage` at all: `Option<Usage>` is `None`,
/// never a zero that would read as free.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Generated tokens, reasoning included.
    pub output: u64,
    /// The part of `output` spent reasoning.
    pub reasoning: u64,
    /// The part of `input` read from the provider's prompt cache.
    pub cache_read: u64,
    /// The part of `input` written to the provider's prompt cache.
    pub cache_write: u64,
    /// All tokens of the call.
    pub total: u64,
}

impl Usage {
    /// Usage with `input` and `output`, and `total` their sum.
    pub fn new(input: u64, output: u64) -> Self {
        Usage {
            input,
            output,
            total: input.saturating_add(output),
            ..Usage::default()
        }
    }
}

/// The sum of two calls' usage (saturating).
impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            input: self.input.saturating_add(other.input),
            output: self.output.saturating_add(other.output),
            reasoning: self.reasoning.saturating_add(other.reasoning),
            cache_read: self.cache_read.saturating_add(other.cache_read),
            cache_write: self.cache_write.saturating_add(other.cache_write),
            total: self.total.saturating_add(other.total),
        }
    }
}

/// Why the model stopped, normalized across providers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The `max_tokens` limit cut the answer.
    Length,
    /// The model asked for tool calls.
    ToolCalls,
    /// A safety filter stopped or blocked the answer.
    ContentFilter,
    /// The model declined to answer.
    Refusal,
    /// The context window filled up mid-answer.
    ContextWindow,
    /// The provider paused a long turn (Anthropic `pause_turn`); send it back to go on.
    Paused,
    /// Anything else, as the provider spelled it.
    Other(String),
}

impl FinishReason {
    /// The normalized name (`"stop"`, `"length"`, ...), or the provider's raw value.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Refusal => "refusal",
            FinishReason::ContextWindow => "context_window",
            FinishReason::Paused => "paused",
            FinishReason::Other(raw) => raw,
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool call the model made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (Gemini gives none; one is made up from the index).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the JSON text the model wrote. It may be cut short when the
    /// answer hit `max_tokens`; [`ToolCall::parse_arguments`] tells.
    pub arguments: String,
    /// An opaque token the provider attached to the call and wants back with it in the
    /// conversation (Gemini's `thoughtSignature`, which its thinking models require);
    /// sent back by [`Prompt::answered`](crate::llm::Prompt::answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ToolCall {
    /// A call of tool `name` with `arguments` (JSON text), known by `id`.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
            signature: None,
        }
    }

    /// The arguments as the JSON object Anthropic and Gemini take back in the history. A
    /// call whose text is not an object (cut short by `max_tokens`) is sent as `{}`: the
    /// turn must still hold the call its answer refers to.
    pub(crate) fn arguments_object(&self) -> serde_json::Value {
        match self.parse_arguments() {
            Ok(value @ serde_json::Value::Object(_)) => value,
            _ => serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The arguments parsed as JSON (an empty text is an empty object).
    pub fn parse_arguments(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.arguments)
    }
}

/// A model's whole answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Completion {
    /// The answer text (for several choices, the first one's).
    pub text: String,
    /// Reasoning or thought-summary text the provider returned, apart from the answer.
    pub reasoning: String,
    /// The model's refusal message, when it refused.
    pub refusal: Option<String>,
    /// Tool calls, in the order of their index.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped; `None` only when the provider did not say.
    pub finish_reason: Option<FinishReason>,
    /// Tokens used; `None` when the provider never reported them.
    pub usage: Option<Usage>,
    /// The model that answered, as the provider named it (often a dated snapshot).
    pub model: String,
    /// The provider that answered (`"openai"`, `"anthropic"`, `"gemini"`, `"mock"`, or a
    /// gateway's name).
    pub provider: Arc<str>,
    /// The provider's id for the response, if any.
    pub id: Option<String>,
    /// What the answer cost in US dollars, from the [pricing tables](crate::pricing);
    /// `None` when the usage or the model's price is unknown — never a made-up zero.
    /// Filled in by [`ctx.llm()`](crate::AgentContext::llm); computed in decimal, a
    /// JSON number when serialized.
    #[serde(default, with = "crate::usd::float_option")]
    pub cost_usd: Option<rust_decimal::Decimal>,
}

impl Completion {
    /// An answer of `text` that stopped naturally, as `provider`/`model`.
    pub fn new(
        provider: impl Into<Arc<str>>,
        model: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Completion {
            text: text.into(),
            finish_reason: Some(FinishReason::Stop),
            model: model.into(),
            provider: provider.into(),
            ..Completion::default()
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_completion_reads_back_what_it_writes() {
        let mut completion = Completion::new("mock", "m", "hi");
        completion.cost_usd = Some(rust_decimal::Decimal::new(12_345, 8));
        let text = serde_json::to_string(&completion).unwrap();
        let from_text: Completion = serde_json::from_str(&text).unwrap();
        assert_eq!(from_text.cost_usd, completion.cost_usd);
        let value = serde_json::to_value(&completion).unwrap();
        let from_value: Completion = serde_json::from_value(value).unwrap();
        assert_eq!(from_value.cost_usd, completion.cost_usd);
    }
}
