//! OpenAI Chat Completions, and every gateway that speaks it (see [`compat`](super::compat)).

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::completion::{Completion, FinishReason, ToolCall, Usage};
use super::prompt::{Message, Prompt, ResponseFormat, Role, ToolChoice};
use super::provider::{BoxFuture, Provider};
use super::sse::SseEvent;
use super::stream::{CompletionStream, StreamEvent};
use super::transport::{self, ApiKey, BodyLimits, Endpoint, StreamDecoder, tool_result_of};
use crate::error::{AgentError, ErrorClass};

/// How a server wants the output cap spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaxTokensField {
    /// `max_completion_tokens`: OpenAI's current field, required by its reasoning models.
    MaxCompletionTokens,
    /// `max_tokens`: the deprecated field that older OpenAI-compatible servers still want.
    MaxTokens,
}

/// A client for OpenAI's Chat Completions API, or a server that speaks it.
///
/// ```
/// use fastagentic::llm::OpenAi;
///
/// let openai = OpenAi::new("sk-test").base_url("http://127.0.0.1:9/v1");
/// // Keys never show in Debug output.
/// assert!(!format!("{openai:?}").contains("sk-test"));
/// ```
#[derive(Clone, Debug)]
pub struct OpenAi {
    name: Arc<str>,
    endpoint: Endpoint,
    key: Option<ApiKey>,
    headers: HeaderMap,
    max_tokens_field: MaxTokensField,
    default_routing: bool,
    client: reqwest::Client,
    limits: BodyLimits,
}

impl OpenAi {
    /// Where OpenAI's API lives.
    pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

    /// OpenAI itself, with `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        OpenAi {
            name: "openai".into(),
            endpoint: OpenAi::endpoint(OpenAi::DEFAULT_BASE_URL),
            key: Some(ApiKey::new(api_key)),
            headers: HeaderMap::new(),
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            default_routing: true,
            client: transport::shared_client(),
            limits: BodyLimits::default(),
        }
    }

    /// OpenAI configured from `OPENAI_API_KEY` and, if set, `OPENAI_BASE_URL`; `None`
    /// when there is no key.
    pub fn from_env() -> Option<Self> {
        let key = super::env_var("OPENAI_API_KEY")?;
        let openai = OpenAi::new(key);
        Some(match super::env_var("OPENAI_BASE_URL") {
            Some(url) => openai.base_url(url),
            None => openai,
        })
    }

    /// An OpenAI-compatible server called `name` at `base_url` (no key: add one with
    /// [`OpenAi::api_key`]). It serves only models addressed as `name/model`.
    pub fn compatible(name: impl Into<Arc<str>>, base_url: impl Into<String>) -> Self {
        OpenAi {
            name: name.into(),
            endpoint: OpenAi::endpoint(&base_url.into()),
            key: None,
            headers: HeaderMap::new(),
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            default_routing: false,
            client: transport::shared_client(),
            limits: BodyLimits::default(),
        }
    }

    /// Sends requests to `base_url` (a gateway, a proxy, a fake server in tests).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.endpoint = OpenAi::endpoint(&base_url.into());
        self
    }

    fn endpoint(base_url: &str) -> Endpoint {
        Endpoint::new(base_url, "chat/completions")
    }

    /// Bounds how much of an answer is read (whole answers, error bodies, one SSE
    /// event), instead of the defaults in [`BodyLimits`].
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Authenticates with `api_key` as a bearer token.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.key = Some(ApiKey::new(api_key));
        self
    }

    /// Adds a header to every request (a gateway's routing or auth header). Values are
    /// kept out of `Debug` output. A name or value HTTP cannot carry is an
    /// `invalid_input` error.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, AgentError> {
        let invalid = |what: &str| {
            AgentError::new(
                ErrorClass::InvalidInput,
                format!("header {name:?}: the {what} is not valid in HTTP"),
            )
        };
        let name = HeaderName::try_from(name).map_err(|_| invalid("name"))?;
        let mut value = HeaderValue::try_from(value).map_err(|_| invalid("value"))?;
        value.set_sensitive(true);
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Spells the output cap as the server wants it.
    pub fn max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }

    fn request(&self, body: &Value) -> Result<reqwest::RequestBuilder, AgentError> {
        let mut request = self
            .endpoint
            .post(&self.client)
            .headers(self.headers.clone())
            .json(body);
        if let Some(key) = &self.key {
            request = request.header(AUTHORIZATION, key.header("Bearer ")?);
        }
        Ok(request)
    }

    fn body(&self, model: &str, prompt: &Prompt, stream: bool) -> Result<Value, AgentError> {
        let messages = prompt
            .messages
            .iter()
            .map(wire_message)
            .collect::<Result<Vec<Value>, AgentError>>()?;
        let mut body = json!({"model": model, "messages": messages});
        if let Some(max) = prompt.max_tokens {
            let field = match self.max_tokens_field {
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
                MaxTokensField::MaxTokens => "max_tokens",
            };
            body[field] = json!(max);
        }
        if let Some(t) = prompt.temperature {
            body["temperature"] = super::prompt::temperature_json(t);
        }
        if !prompt.stop.is_empty() {
            body["stop"] = json!(prompt.stop);
        }
        if !prompt.tools.is_empty() {
            let tools: Vec<Value> = prompt
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body["tools"] = json!(tools);
            if let Some(choice) = &prompt.tool_choice {
                body["tool_choice"] = match choice {
                    ToolChoice::Tool(name) => {
                        json!({"type": "function", "function": {"name": name}})
                    }
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                };
            }
        }
        if let Some(format) = &prompt.response_format {
            body["response_format"] = wire_response_format(format);
        }
        if stream {
            body["stream"] = json!(true);
            // Without it the stream never says what it used.
            body["stream_options"] = json!({"include_usage": true});
        }
        Ok(body)
    }
}

/// `response_format` as Chat Completions takes it.
fn wire_response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let mut spec = json!({"name": name, "schema": schema});
            if let Some(strict) = strict {
                spec["strict"] = json!(strict);
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::Text => json!({"type": "text"}),
    }
}

/// One message in Chat Completions' shape: an assistant turn carries its `tool_calls`
/// (with `content: null` when it said nothing else, as OpenAI itself answers), a tool's
/// answer is a `tool` message naming the call.
fn wire_message(m: &Message) -> Result<Value, AgentError> {
    if m.role == Role::Tool {
        let answered = tool_result_of(m)?;
        return Ok(json!({"role": "tool", "tool_call_id": answered.call_id, "content": m.content}));
    }
    if m.role == Role::Assistant && !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        let content = if m.content.is_empty() {
            Value::Null
        } else {
            json!(m.content)
        };
        return Ok(json!({"role": "assistant", "content": content, "tool_calls": calls}));
    }
    Ok(json!({"role": m.role.as_str(), "content": m.content}))
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn serves(&self, model: &str) -> bool {
        self.default_routing && serves_by_name(model)
    }

    fn complete<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<Completion, AgentError>> {
        Box::pin(async move {
            let request = self.request(&self.body(model, prompt, false)?)?;
            let response = transport::send(&self.name, &self.limits, request).await?;
            let body: ChatCompletion = transport::json(&self.name, &self.limits, response).await?;
            if body.choices.first().is_none_or(|c| c.message.is_none()) {
                return Err(transport::incomplete(&self.name, "a `choices[0].message`"));
            }
            Ok(body.into_completion(self.name.clone()))
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<CompletionStream, AgentError>> {
        Box::pin(async move {
            let request = self.request(&self.body(model, prompt, true)?)?;
            let response = transport::send(&self.name, &self.limits, request).await?;
            let decoder = ChunkDecoder::new(self.name.clone());
            transport::event_stream(&self.name, &self.limits, model, response, decoder).await
        })
    }
}

/// OpenAI's model families: `gpt-*`, `chatgpt-*`, and the `o1`/`o3`/`o4`... reasoning
/// models.
pub(crate) fn serves_by_name(model: &str) -> bool {
    let o_series = model
        .strip_prefix('o')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    model.starts_with("gpt-") || model.starts_with("chatgpt-") || o_series
}

#[derive(Deserialize)]
struct ChatCompletion {
    id: Option<String>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<u32>,
    id: Option<String>,
    #[serde(default)]
    function: WireFunction,
}

#[derive(Default, Deserialize)]
struct WireFunction {
    name: Option<String>,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    total_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u64,
    #[serde(default)]
    cache_write_tokens: u64,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: u64,
}

impl WireUsage {
    fn normalize(&self) -> Usage {
        let prompt = self.prompt_tokens_details.as_ref();
        Usage {
            input: self.prompt_tokens,
            output: self.completion_tokens,
            reasoning: self
                .completion_tokens_details
                .as_ref()
                .map_or(0, |d| d.reasoning_tokens),
            cache_read: prompt.map_or(0, |d| d.cached_tokens),
            cache_write: prompt.map_or(0, |d| d.cache_write_tokens),
            total: self
                .total_tokens
                .unwrap_or(self.prompt_tokens + self.completion_tokens),
        }
    }
}

fn finish_reason(raw: &str, refused: bool) -> FinishReason {
    match raw {
        "stop" if refused => FinishReason::Refusal,
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

impl ChatCompletion {
    fn into_completion(self, provider: Arc<str>) -> Completion {
        let usage = self.usage.as_ref().map(WireUsage::normalize);
        let mut completion = Completion {
            model: self.model,
            provider,
            id: self.id,
            usage,
            ..Completion::default()
        };
        let Some(choice) = self.choices.into_iter().next() else {
            return completion;
        };
        let message = choice.message.unwrap_or_default();
        let refused = message.refusal.is_some();
        completion.finish_reason = choice
            .finish_reason
            .as_deref()
            .map(|r| finish_reason(r, refused));
        completion.text = message.content.unwrap_or_default();
        completion.reasoning = message.reasoning_content.unwrap_or_default();
        completion.refusal = message.refusal;
        completion.tool_calls = message
            .tool_calls
            .into_iter()
            .map(|call| ToolCall {
                id: call.id.unwrap_or_default(),
                name: call.function.name.unwrap_or_default(),
                arguments: call.function.arguments,
                signature: None,
            })
            .collect();
        completion
    }
}

#[derive(Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

/// Decodes `chat.completion.chunk` events. With `n > 1` the choices interleave; the
/// first choice is the answer, the others are ignored.
struct ChunkDecoder {
    provider: Arc<str>,
    started: bool,
    refused: bool,
    finish_seen: bool,
    done: bool,
}

impl ChunkDecoder {
    fn new(provider: Arc<str>) -> Self {
        ChunkDecoder {
            provider,
            started: false,
            refused: false,
            finish_seen: false,
            done: false,
        }
    }

    fn choice(&mut self, choice: ChunkChoice, out: &mut Vec<StreamEvent>) {
        let delta = choice.delta;
        if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::Reasoning(text));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::Text(text));
        }
        if let Some(text) = delta.refusal.filter(|t| !t.is_empty()) {
            self.refused = true;
            out.push(StreamEvent::Refusal(text));
        }
        for (position, call) in (0u32..).zip(delta.tool_calls) {
            out.push(StreamEvent::ToolCall {
                index: call.index.unwrap_or(position),
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
                signature: None,
            });
        }
        if let Some(reason) = choice.finish_reason {
            self.finish_seen = true;
            out.push(StreamEvent::Finish(finish_reason(&reason, self.refused)));
        }
    }
}

impl StreamDecoder for ChunkDecoder {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        if event.data.starts_with("[DONE]") {
            self.done = true;
            return Ok(());
        }
        let chunk: Chunk = transport::parse_data(&self.provider, &event)?;
        if chunk.error.is_some() {
            return Err(AgentError::from_stream_error(event.data.as_bytes()));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Started {
                id: chunk.id,
                model: chunk.model,
            });
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            self.choice(choice, out);
        }
        if let Some(usage) = &chunk.usage {
            out.push(StreamEvent::Usage(usage.normalize()));
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.done
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        // Some compatible servers omit `[DONE]`; a finish reason is end enough.
        if self.finish_seen {
            return Ok(());
        }
        Err(transport::ended_early(&self.provider, "[DONE]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_openai_model_families() {
        for model in [
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "o1",
            "o3-mini",
            "o4-mini",
            "chatgpt-4o-latest",
        ] {
            assert!(serves_by_name(model), "{model}");
        }
        for model in [
            "claude-sonnet-4-5",
            "gemini-2.0-flash",
            "ollama",
            "o",
            "mock/x",
        ] {
            assert!(!serves_by_name(model), "{model}");
        }
    }

    #[test]
    fn sends_max_completion_tokens_and_asks_for_stream_usage() {
        let openai = OpenAi::new("k");
        let body = openai
            .body(
                "gpt-4o",
                &Prompt::user("hi").system("be brief").max_tokens(9),
                true,
            )
            .unwrap();
        assert_eq!(body["max_completion_tokens"], 9);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][0]["role"], "system");
        let legacy =
            OpenAi::compatible("ollama", "http://x").max_tokens_field(MaxTokensField::MaxTokens);
        let body = legacy
            .body("llama3", &Prompt::user("hi").max_tokens(9), false)
            .unwrap();
        assert_eq!(body["max_tokens"], 9);
        assert!(body.get("stream").is_none());
    }

    #[test]
    fn usage_counts_cached_tokens_inside_input() {
        let wire: WireUsage = serde_json::from_str(
            r#"{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,
                "prompt_tokens_details":{"cached_tokens":40},
                "completion_tokens_details":{"reasoning_tokens":20}}"#,
        )
        .unwrap();
        let usage = wire.normalize();
        assert_eq!(
            (
                usage.input,
                usage.output,
                usage.cache_read,
                usage.reasoning,
                usage.total
            ),
            (100, 50, 40, 20, 150)
        );
    }
}
