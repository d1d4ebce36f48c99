//! Anthropic's Messages API.

use std::sync::Arc;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::completion::{Completion, FinishReason, ToolCall, Usage};
use super::prompt::{Message, Prompt, ResponseFormat, Role, ToolChoice, Turn};
use super::provider::{BoxFuture, Provider};
use super::sse::SseEvent;
use super::stream::{CompletionStream, StreamEvent};
use super::transport::{self, ApiKey, BodyLimits, Endpoint, StreamDecoder, tool_result_of};
use crate::error::AgentError;

/// A client for Anthropic's Messages API.
///
/// ```
/// use fastagentic::llm::Anthropic;
///
/// let anthropic = Anthropic::new("sk-ant-test");
/// assert!(!format!("{anthropic:?}").contains("sk-ant-test"));
/// ```
#[derive(Clone, Debug)]
pub struct Anthropic {
    name: Arc<str>,
    endpoint: Endpoint,
    key: ApiKey,
    client: reqwest::Client,
    limits: BodyLimits,
}

impl Anthropic {
    /// Where Anthropic's API lives.
    pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

    /// The API version every request names.
    pub const API_VERSION: &str = "2023-06-01";

    /// The output cap sent when the prompt sets none: Anthropic requires one.
    pub const DEFAULT_MAX_TOKENS: u32 = 4096;

    /// Anthropic with `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Anthropic {
            name: "anthropic".into(),
            endpoint: Anthropic::endpoint(Anthropic::DEFAULT_BASE_URL),
            key: ApiKey::new(api_key),
            client: transport::shared_client(),
            limits: BodyLimits::default(),
        }
    }

    /// Anthropic configured from `ANTHROPIC_API_KEY` and, if set, `ANTHROPIC_BASE_URL`;
    /// `None` when there is no key.
    pub fn from_env() -> Option<Self> {
        let anthropic = Anthropic::new(super::env_var("ANTHROPIC_API_KEY")?);
        Some(match super::env_var("ANTHROPIC_BASE_URL") {
            Some(url) => anthropic.base_url(url),
            None => anthropic,
        })
    }

    /// Sends requests to `base_url` instead (without the `/v1` path).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.endpoint = Anthropic::endpoint(&base_url.into());
        self
    }

    fn endpoint(base_url: &str) -> Endpoint {
        Endpoint::new(base_url, "v1/messages")
    }

    /// Bounds how much of an answer is read (whole answers, error bodies, one SSE
    /// event), instead of the defaults in [`BodyLimits`].
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.limits = limits;
        self
    }

    fn request(&self, body: &Value) -> Result<reqwest::RequestBuilder, AgentError> {
        Ok(self
            .endpoint
            .post(&self.client)
            .header("x-api-key", self.key.header("")?)
            .header(
                "anthropic-version",
                HeaderValue::from_static(Anthropic::API_VERSION),
            )
            .json(body))
    }
}

fn body(model: &str, prompt: &Prompt, stream: bool) -> Result<Value, AgentError> {
    let messages = prompt
        .turns()
        .iter()
        .map(wire_turn)
        .collect::<Result<Vec<Value>, AgentError>>()?;
    let mut body = json!({
        "model": model,
        "max_tokens": prompt.max_tokens.unwrap_or(Anthropic::DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    // The Messages API cannot enforce a response format: the model is told instead.
    let instruction = (prompt.response_format.as_ref()).and_then(ResponseFormat::instruction);
    let system = match (prompt.system_text(), instruction) {
        (Some(system), Some(instruction)) => Some(format!("{system}\n\n{instruction}")),
        (system, instruction) => system.or(instruction),
    };
    if let Some(system) = system {
        body["system"] = json!(system);
    }
    if let Some(t) = prompt.temperature {
        body["temperature"] = super::prompt::temperature_json(t);
    }
    if !prompt.stop.is_empty() {
        body["stop_sequences"] = json!(prompt.stop);
    }
    if !prompt.tools.is_empty() {
        let tools: Vec<Value> = prompt
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tools"] = json!(tools);
        if let Some(choice) = &prompt.tool_choice {
            body["tool_choice"] = match choice {
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
            };
        }
    }
    if stream {
        body["stream"] = json!(true);
    }
    Ok(body)
}

/// One turn in the Messages API's shape: an assistant turn with calls is `text` and
/// `tool_use` blocks, the answers to it one user turn of `tool_result` blocks.
fn wire_turn(turn: &Turn<'_>) -> Result<Value, AgentError> {
    let m = match turn {
        Turn::ToolAnswers(answers) => {
            let blocks = answers
                .iter()
                .map(|m| tool_result_block(m))
                .collect::<Result<Vec<Value>, AgentError>>()?;
            return Ok(json!({"role": "user", "content": blocks}));
        }
        Turn::Message(m) => m,
    };
    if m.role != Role::Assistant || m.tool_calls.is_empty() {
        return Ok(json!({"role": m.role.as_str(), "content": m.content}));
    }
    let text = (!m.content.is_empty()).then(|| json!({"type": "text", "text": m.content}));
    let calls = m.tool_calls.iter().map(
        |c| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments_object()}),
    );
    let blocks: Vec<Value> = text.into_iter().chain(calls).collect();
    Ok(json!({"role": "assistant", "content": blocks}))
}

fn tool_result_block(m: &Message) -> Result<Value, AgentError> {
    let answered = tool_result_of(m)?;
    let mut block =
        json!({"type": "tool_result", "tool_use_id": answered.call_id, "content": m.content});
    if answered.is_error {
        block["is_error"] = json!(true);
    }
    Ok(block)
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }

    fn serves(&self, model: &str) -> bool {
        serves_by_name(model)
    }

    fn complete<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<Completion, AgentError>> {
        Box::pin(async move {
            let request = self.request(&body(model, prompt, false)?)?;
            let response = transport::send(&self.name, &self.limits, request).await?;
            let message: WireMessage = transport::json(&self.name, &self.limits, response).await?;
            if message.content.is_none() {
                return Err(transport::incomplete(&self.name, "a `content` array"));
            }
            Ok(message.into_completion(self.name.clone()))
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<CompletionStream, AgentError>> {
        Box::pin(async move {
            let request = self.request(&body(model, prompt, true)?)?;
            let response = transport::send(&self.name, &self.limits, request).await?;
            let decoder = EventDecoder::new(self.name.clone());
            transport::event_stream(&self.name, &self.limits, model, response, decoder).await
        })
    }
}

/// Anthropic's models: `claude-*`.
pub(crate) fn serves_by_name(model: &str) -> bool {
    model.starts_with("claude-")
}

#[derive(Default, Deserialize)]
struct WireMessage {
    id: Option<String>,
    #[serde(default)]
    model: String,
    // Required by the Messages format (it may be empty); absent means another schema.
    content: Option<Vec<Block>>,
    stop_reason: Option<String>,
    stop_details: Option<StopDetails>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StopDetails {
    explanation: Option<String>,
}

/// Every field optional: `message_delta` usage carries only what changed.
#[derive(Clone, Copy, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Clone, Copy, Default, Deserialize)]
struct OutputDetails {
    thinking_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the fields `newer` carries: Anthropic's counts are cumulative.
    fn overwrite(&mut self, newer: &WireUsage) {
        let fields = [
            (&mut self.input_tokens, newer.input_tokens),
            (&mut self.output_tokens, newer.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                newer.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                newer.cache_read_input_tokens,
            ),
        ];
        for (old, new) in fields {
            if new.is_some() {
                *old = new;
            }
        }
        if newer.output_tokens_details.is_some() {
            self.output_tokens_details = newer.output_tokens_details;
        }
    }

    /// Anthropic's `input_tokens` leaves out cache reads and writes; ours counts them.
    fn normalize(&self) -> Usage {
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let input = self.input_tokens.unwrap_or(0) + cache_write + cache_read;
        let output = self.output_tokens.unwrap_or(0);
        Usage {
            input,
            output,
            reasoning: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
            cache_read,
            cache_write,
            total: input + output,
        }
    }
}

fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::Refusal,
        "model_context_window_exceeded" => FinishReason::ContextWindow,
        "pause_turn" => FinishReason::Paused,
        other => FinishReason::Other(other.to_owned()),
    }
}

impl WireMessage {
    fn into_completion(self, provider: Arc<str>) -> Completion {
        let mut completion = Completion {
            model: self.model,
            provider,
            id: self.id,
            usage: self.usage.as_ref().map(WireUsage::normalize),
            finish_reason: self.stop_reason.as_deref().map(finish_reason),
            ..Completion::default()
        };
        for block in self.content.unwrap_or_default() {
            match block {
                Block::Text { text } => completion.text.push_str(&text),
                Block::Thinking { thinking } => completion.reasoning.push_str(&thinking),
                Block::ToolUse { id, name, input } => completion.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input.to_string(),
                    signature: None,
                }),
                Block::Other => {}
            }
        }
        if completion.finish_reason == Some(FinishReason::Refusal) {
            // The finish reason says it refused; a message exists only if one was sent.
            completion.refusal = self.stop_details.and_then(|d| d.explanation);
        }
        completion
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    /// An error sent without its `event: error` line.
    Error,
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text {
        #[serde(default)]
        text: String,
    },
    #[serde(rename = "thinking_delta")]
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(rename = "input_json_delta")]
    InputJson {
        #[serde(default)]
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Default, Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
    stop_details: Option<StopDetails>,
}

/// Decodes the Messages event sequence: `message_start`, content blocks,
/// `message_delta`, `message_stop`, with `ping` anywhere and `error` ending it.
struct EventDecoder {
    provider: Arc<str>,
    usage: WireUsage,
    stopped: bool,
}

impl EventDecoder {
    fn new(provider: Arc<str>) -> Self {
        EventDecoder {
            provider,
            usage: WireUsage::default(),
            stopped: false,
        }
    }

    fn usage(&mut self, newer: &WireUsage, out: &mut Vec<StreamEvent>) {
        self.usage.overwrite(newer);
        out.push(StreamEvent::Usage(self.usage.normalize()));
    }
}

fn block_start(index: u32, block: Block, out: &mut Vec<StreamEvent>) {
    match block {
        Block::Text { text } if !text.is_empty() => out.push(StreamEvent::Text(text)),
        Block::Thinking { thinking } if !thinking.is_empty() => {
            out.push(StreamEvent::Reasoning(thinking));
        }
        // The input arrives in `input_json_delta` pieces; the `{}` here is a placeholder.
        Block::ToolUse { id, name, .. } => out.push(StreamEvent::ToolCall {
            index,
            id: Some(id),
            name: Some(name),
            arguments: String::new(),
            signature: None,
        }),
        _ => {}
    }
}

fn block_delta(index: u32, delta: Delta, out: &mut Vec<StreamEvent>) {
    match delta {
        Delta::Text { text } if !text.is_empty() => out.push(StreamEvent::Text(text)),
        Delta::Thinking { thinking } if !thinking.is_empty() => {
            out.push(StreamEvent::Reasoning(thinking));
        }
        Delta::InputJson { partial_json } if !partial_json.is_empty() => {
            out.push(StreamEvent::ToolCall {
                index,
                id: None,
                name: None,
                arguments: partial_json,
                signature: None,
            });
        }
        _ => {}
    }
}

impl StreamDecoder for EventDecoder {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        match event.event.as_str() {
            "ping" => return Ok(()),
            "error" => return Err(AgentError::from_stream_error(event.data.as_bytes())),
            _ => {}
        }
        match transport::parse_data::<WireEvent>(&self.provider, &event)? {
            WireEvent::MessageStart { message } => {
                out.push(StreamEvent::Started {
                    id: message.id,
                    model: Some(message.model),
                });
                if let Some(usage) = &message.usage {
                    self.usage(usage, out);
                }
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => block_start(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => block_delta(index, delta, out),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = &usage {
                    self.usage(usage, out);
                }
                if let Some(reason) = delta.stop_reason.as_deref().map(finish_reason) {
                    let explanation = delta.stop_details.and_then(|d| d.explanation);
                    if let Some(text) = explanation.filter(|_| reason == FinishReason::Refusal) {
                        out.push(StreamEvent::Refusal(text));
                    }
                    out.push(StreamEvent::Finish(reason));
                }
            }
            WireEvent::MessageStop => self.stopped = true,
            WireEvent::Error => return Err(AgentError::from_stream_error(event.data.as_bytes())),
            WireEvent::Ignored => {}
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.stopped
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        Err(transport::ended_early(&self.provider, "message_stop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::prompt::Role;

    #[test]
    fn system_moves_out_of_the_conversation_and_max_tokens_is_always_sent() {
        let prompt = Prompt::user("hi")
            .system("be brief")
            .message(Role::Assistant, "ok");
        let body = body("claude-sonnet-4-5", &prompt, true).unwrap();
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], Anthropic::DEFAULT_MAX_TOKENS);
        assert_eq!(body["messages"].as_array().unwrap().len(), 2);
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn usage_adds_cache_reads_and_writes_to_input() {
        let wire: WireUsage = serde_json::from_str(
            r#"{"input_tokens":1,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":5}"#,
        )
        .unwrap();
        let usage = wire.normalize();
        assert_eq!(
            (
                usage.input,
                usage.cache_read,
                usage.cache_write,
                usage.total
            ),
            (111, 100, 10, 116)
        );
    }

    #[test]
    fn an_error_without_its_event_line_is_still_an_error() {
        let mut decoder = EventDecoder::new("anthropic".into());
        let event = SseEvent {
            event: "message".into(),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                .into(),
            ..SseEvent::default()
        };
        let err = decoder.event(event, &mut Vec::new()).unwrap_err();
        assert_eq!(err.class(), crate::error::ErrorClass::Overloaded);
    }

    #[test]
    fn message_delta_usage_overwrites_never_adds() {
        let mut usage: WireUsage =
            serde_json::from_str(r#"{"input_tokens":11,"output_tokens":1}"#).unwrap();
        usage.overwrite(&serde_json::from_str(r#"{"output_tokens":6}"#).unwrap());
        assert_eq!(usage.normalize(), Usage::new(11, 6));
    }
}
