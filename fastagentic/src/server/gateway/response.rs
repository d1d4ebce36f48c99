//! Answers in OpenAI's shape: a `chat.completion`, or `chat.completion.chunk` events.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::Response;
use axum::response::sse::Event;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::error;
use crate::error::AgentError;
use crate::llm::{Completion, FinishReason, StreamEvent, Usage};
use crate::reliability::RateLimitSnapshot;
use crate::server::sse::StreamWire;
use crate::spend::Spend;

/// A new response id, `chatcmpl-` and 24 hex digits.
pub(crate) fn new_id() -> String {
    format!("chatcmpl-{:024x}", fastrand::u128(..) >> 32)
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
fn usage(usage: &Usage, cost: Option<Decimal>) -> Value {
    let mut u = json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    });
    if let Some(cost) = cost.and_then(|c| f64::try_from(c).ok()) {
        u["cost"] = json!(cost);
    }
    u
}

/// The model named in answers: who answered, else what was asked for.
fn answering_model<'a>(completion: &'a Completion, requested: &'a str) -> &'a str {
    if completion.model.is_empty() {
        requested
    } else {
        &completion.model
    }
}

fn tool_calls(completion: &Completion) -> Vec<Value> {
    completion
        .tool_calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.arguments}})
        })
        .collect()
}

/// The `chat.completion` of a whole answer.
pub(crate) fn completion(completion: &Completion, requested: &str) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    let empty = completion.text.is_empty() && !completion.tool_calls.is_empty();
    message.insert(
        "content".into(),
        if empty {
            Value::Null
        } else {
            completion.text.clone().into()
        },
    );
    message.insert("refusal".into(), json!(completion.refusal));
    if !completion.tool_calls.is_empty() {
        message.insert("tool_calls".into(), tool_calls(completion).into());
    }
    let reason = finish_reason(
        completion.finish_reason.as_ref(),
        !completion.tool_calls.is_empty(),
    );
    let mut body = json!({
        "id": new_id(),
        "object": "chat.completion",
        "created": now(),
        "model": answering_model(completion, requested),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
    });
    if let Some(u) = &completion.usage {
        body["usage"] = usage(u, completion.cost_usd);
    }
    body
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
                    events.push(self.frame(Vec::new(), Some(usage(u, completion.cost_usd))));
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
        let body = completion(&answer, "smart");
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
