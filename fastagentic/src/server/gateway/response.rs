//! Answers in OpenAI's shape: a `chat.completion`, or `chat.completion.chunk` events.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::Response;
use axum::response::sse::Event;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::error;
use crate::error::AgentError;
use crate::llm::{Completion, FinishReason, StreamEvent, Usage};
use crate::reliability::RateLimitSnapshot;
use crate::server::sse::StreamWire;
use crate::spend::Spend;

/// A new response id, `chatcmpl-` and 24 hex digits.
pub(crate) fn new_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const PREFIX: &str = "chatcmpl-";
    // Written by hand: `format!` costs more than the rest of the id (it is per request).
    let mut id = String::with_capacity(PREFIX.len() + 24);
    id.push_str(PREFIX);
    let bits = fastrand::u128(..);
    for nibble in 0..24 {
        id.push(char::from(HEX[((bits >> (nibble * 4)) & 0xf) as usize]));
    }
    id
}

/// Now, in Unix seconds, as `created` wants it.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// OpenAI's `finish_reason` for ours.
fn finish_reason(reason: Option<&FinishReason>, called_tools: bool) -> &'static str {
    match reason {
        Some(FinishReason::Length | FinishReason::ContextWindow) => "length",
        Some(FinishReason::ContentFilter) => "content_filter",
        Some(FinishReason::ToolCalls) => "tool_calls",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// `usage` in OpenAI's meaning (ours already is: cached inside the prompt, reasoning
/// inside the completion), with `cost` in dollars when known.
#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl WireUsage {
    fn new(usage: &Usage, cost: Option<Decimal>) -> Self {
        WireUsage {
            prompt_tokens: usage.input,
            completion_tokens: usage.output,
            total_tokens: usage.total,
            prompt_tokens_details: CachedTokens {
                cached_tokens: usage.cache_read,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: usage.reasoning,
            },
            cost: cost.and_then(|c| f64::try_from(c).ok()),
        }
    }
}

/// The model named in answers: who answered, else what was asked for.
fn answering_model<'a>(completion: &'a Completion, requested: &'a str) -> &'a str {
    if completion.model.is_empty() {
        requested
    } else {
        &completion.model
    }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

fn tool_calls(completion: &Completion) -> Vec<WireToolCall<'_>> {
    (completion.tool_calls.iter())
        .map(|c| WireToolCall {
            id: &c.id,
            kind: "function",
            function: WireFunction {
                name: &c.name,
                arguments: &c.arguments,
            },
        })
        .collect()
}

/// A `chat.completion`: a whole answer. Serialized straight from the completion it
/// borrows, without a `Value` tree in between.
#[derive(Serialize)]
pub(crate) struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    /// `null` for an answer that only calls tools, as OpenAI sends it.
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

/// The `chat.completion` of a whole answer.
pub(crate) fn completion<'a>(completion: &'a Completion, requested: &'a str) -> ChatCompletion<'a> {
    let calls_only = completion.text.is_empty() && !completion.tool_calls.is_empty();
    let message = AssistantMessage {
        role: "assistant",
        content: (!calls_only).then_some(completion.text.as_str()),
        refusal: completion.refusal.as_deref(),
        tool_calls: tool_calls(completion),
    };
    let reason = finish_reason(
        completion.finish_reason.as_ref(),
        !completion.tool_calls.is_empty(),
    );
    ChatCompletion {
        id: new_id(),
        object: "chat.completion",
        created: now(),
        model: answering_model(completion, requested),
        choices: [Choice {
            index: 0,
            message,
            logprobs: None,
            finish_reason: reason,
        }],
        usage: (completion.usage.as_ref()).map(|u| WireUsage::new(u, completion.cost_usd)),
    }
}

/// A stream in `chat.completion.chunk` events. The first carries the role; the model
/// is the provider's once it said (a fallback's, after one).
pub(crate) struct Chunks {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    role_sent: bool,
}

impl Chunks {
    pub(crate) fn new(requested: &str, include_usage: bool) -> Self {
        Chunks {
            id: new_id(),
            created: now(),
            model: requested.to_owned(),
            include_usage,
            role_sent: false,
        }
    }

    fn chunk(&mut self, mut delta: Value, finish_reason: Option<&str>) -> Event {
        if !std::mem::replace(&mut self.role_sent, true) {
            delta["role"] = json!("assistant");
        }
        let choice =
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason});
        self.frame(vec![choice], None)
    }

    fn frame(&self, choices: Vec<Value>, usage: Option<Value>) -> Event {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some(usage) = usage {
            chunk["usage"] = usage;
        }
        Event::default().data(chunk.to_string())
    }
}

impl StreamWire for Chunks {
    type Output = Completion;

    fn event(&mut self, item: &StreamEvent) -> Option<Event> {
        let delta = match item {
            StreamEvent::Started {
                model: Some(model), ..
            } => {
                model.clone_into(&mut self.model);
                return None;
            }
            StreamEvent::Text(text) if !text.is_empty() => json!({"content": text}),
            StreamEvent::Reasoning(text) if !text.is_empty() => {
                json!({"reasoning_content": text})
            }
            StreamEvent::Refusal(text) if !text.is_empty() => json!({"refusal": text}),
            StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
                ..
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                json!({"tool_calls": [call]})
            }
            _ => return None,
        };
        Some(self.chunk(delta, None))
    }

    fn end(&mut self, result: Result<Completion, AgentError>, _spend: &Spend) -> Vec<Event> {
        match result {
            Ok(completion) => {
                if !completion.model.is_empty() {
                    completion.model.clone_into(&mut self.model);
                }
                let reason = finish_reason(
                    completion.finish_reason.as_ref(),
                    !completion.tool_calls.is_empty(),
                );
                let mut events = vec![self.chunk(json!({}), Some(reason))];
                if self.include_usage
                    && let Some(u) = &completion.usage
                {
                    events.push(self.frame(
                        Vec::new(),
                        Some(json!(WireUsage::new(u, completion.cost_usd))),
                    ));
                }
                events.push(Event::default().data("[DONE]"));
                events
            }
            // The SDKs raise a `data: {"error": ...}` chunk as an `APIError`.
            Err(err) => vec![Event::default().data(error::body(&err, None).to_string())],
        }
    }

    fn refuse(err: &AgentError, snapshot: Option<RateLimitSnapshot>) -> Response {
        error::response(err, snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    #[test]
    fn a_whole_answer_in_openai_shape() {
        let mut answer =
            Completion::new("anthropic", "claude-sonnet-4-5-20250929", "").with_usage(Usage {
                cache_read: 4,
                ..Usage::new(10, 5)
            });
        answer.tool_calls = vec![ToolCall::new("toolu_1", "weather", "{\"city\":\"Oslo\"}")];
        answer.finish_reason = Some(FinishReason::ToolCalls);
        answer.cost_usd = Some(Decimal::new(105, 6));
        let body = serde_json::to_value(completion(&answer, "smart")).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        assert_eq!(
            choice["message"]["tool_calls"][0]["function"]["name"],
            "weather"
        );
        assert_eq!(body["usage"]["prompt_tokens"], 10);
        assert_eq!(body["usage"]["total_tokens"], 15);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(body["usage"]["cost"], 0.000105);
        assert!(
            body["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("chatcmpl-"))
        );
    }
}
