//! Google's Gemini API: `generateContent` and `streamGenerateContent?alt=sse`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::completion::{Completion, FinishReason, ToolCall, Usage};
use super::prompt::{Message, Prompt, ResponseFormat, Role, ToolChoice, Turn};
use super::provider::{BoxFuture, Provider};
use super::sse::SseEvent;
use super::stream::{CompletionStream, StreamEvent};
use super::transport::{self, ApiKey, BodyLimits, StreamDecoder, tool_result_of};
use crate::error::{AgentError, ErrorClass};

/// A client for the Gemini API.
///
/// ```
/// use fastagentic::llm::Gemini;
///
/// let gemini = Gemini::new("AIza-test");
/// assert!(!format!("{gemini:?}").contains("AIza-test"));
/// ```
#[derive(Clone, Debug)]
pub struct Gemini {
    name: Arc<str>,
    base_url: String,
    key: ApiKey,
    client: reqwest::Client,
    limits: BodyLimits,
}

impl Gemini {
    /// Where the Gemini API lives.
    pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

    /// Gemini with `api_key`.
    pub fn new(api_key: impl Into<String>) -> Self {
        Gemini {
            name: "gemini".into(),
            base_url: Gemini::DEFAULT_BASE_URL.to_owned(),
            key: ApiKey::new(api_key),
            client: transport::shared_client(),
            limits: BodyLimits::default(),
        }
    }

    /// Gemini configured from `GEMINI_API_KEY` and, if set, `GEMINI_BASE_URL`; `None`
    /// when there is no key.
    pub fn from_env() -> Option<Self> {
        let gemini = Gemini::new(super::env_var("GEMINI_API_KEY")?);
        Some(match super::env_var("GEMINI_BASE_URL") {
            Some(url) => gemini.base_url(url),
            None => gemini,
        })
    }

    /// Sends requests to `base_url` instead (without the `/v1beta` path).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Bounds how much of an answer is read (whole answers, error bodies, one SSE
    /// event), instead of the defaults in [`BodyLimits`].
    pub fn body_limits(mut self, limits: BodyLimits) -> Self {
        self.limits = limits;
        self
    }

    fn request(&self, path: &str, body: &Value) -> Result<reqwest::RequestBuilder, AgentError> {
        Ok(self
            .client
            .post(transport::join(&self.base_url, path))
            .header("x-goog-api-key", self.key.header("")?)
            .json(body))
    }
}

fn body(prompt: &Prompt) -> Result<Value, AgentError> {
    let contents = prompt
        .turns()
        .iter()
        .map(wire_turn)
        .collect::<Result<Vec<Value>, AgentError>>()?;
    let mut body = json!({"contents": contents});
    if let Some(system) = prompt.system_text() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    let mut config = serde_json::Map::new();
    if let Some(max) = prompt.max_tokens {
        config.insert("maxOutputTokens".into(), json!(max));
    }
    if let Some(t) = prompt.temperature {
        config.insert("temperature".into(), super::prompt::temperature_json(t));
    }
    if !prompt.stop.is_empty() {
        config.insert("stopSequences".into(), json!(prompt.stop));
    }
    match &prompt.response_format {
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        _ => {}
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if !prompt.tools.is_empty() {
        let declarations: Vec<Value> = prompt
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
        if let Some(choice) = &prompt.tool_choice {
            let config = match choice {
                ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
            };
            body["toolConfig"] = json!({"functionCallingConfig": config});
        }
    }
    Ok(body)
}

/// One turn in generateContent's shape: the model's turn is `text` and `functionCall`
/// parts, the answers to it one user turn of `functionResponse` parts.
fn wire_turn(turn: &Turn<'_>) -> Result<Value, AgentError> {
    let m = match turn {
        Turn::ToolAnswers(answers) => {
            let parts = answers
                .iter()
                .map(|m| function_response(m))
                .collect::<Result<Vec<Value>, AgentError>>()?;
            return Ok(json!({"role": "user", "parts": parts}));
        }
        Turn::Message(m) => m,
    };
    if m.role != Role::Assistant {
        return Ok(json!({"role": "user", "parts": [{"text": m.content}]}));
    }
    let text =
        (!m.content.is_empty() || m.tool_calls.is_empty()).then(|| json!({"text": m.content}));
    let calls = m.tool_calls.iter().map(|c| {
        let mut part = json!({"functionCall": {"name": c.name, "args": c.arguments_object()}});
        if let Some(signature) = &c.signature {
            part["thoughtSignature"] = json!(signature);
        }
        part
    });
    let parts: Vec<Value> = text.into_iter().chain(calls).collect();
    Ok(json!({"role": "model", "parts": parts}))
}

/// A tool's answer. Gemini wants an object, and reads an `output` key as the result and an
/// `error` key as a failure; JSON output goes in as JSON, anything else as a string.
fn function_response(m: &Message) -> Result<Value, AgentError> {
    let answered = tool_result_of(m)?;
    let response = if answered.is_error {
        json!({"error": m.content})
    } else {
        let output = serde_json::from_str::<Value>(&m.content)
            .unwrap_or_else(|_| Value::String(m.content.clone()));
        json!({"output": output})
    };
    Ok(json!({"functionResponse": {"name": answered.name, "response": response}}))
}

impl Provider for Gemini {
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
            let path = format!("v1beta/models/{model}:generateContent");
            let response = transport::send(
                &self.name,
                &self.limits,
                self.request(&path, &body(prompt)?)?,
            )
            .await?;
            let wire: Response = transport::json(&self.name, &self.limits, response).await?;
            let blocked = wire
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some());
            if wire.candidates.is_empty() && !blocked && wire.error.is_none() {
                return Err(transport::incomplete(
                    &self.name,
                    "`candidates` (nor a `promptFeedback.blockReason`)",
                ));
            }
            Ok(wire.into_completion(self.name.clone(), model))
        })
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        prompt: &'a Prompt,
    ) -> BoxFuture<'a, Result<CompletionStream, AgentError>> {
        Box::pin(async move {
            let path = format!("v1beta/models/{model}:streamGenerateContent?alt=sse");
            let response = transport::send(
                &self.name,
                &self.limits,
                self.request(&path, &body(prompt)?)?,
            )
            .await?;
            let decoder = ChunkDecoder::new(self.name.clone());
            transport::event_stream(&self.name, &self.limits, model, response, decoder).await
        })
    }
}

/// Gemini's models: `gemini-*`.
pub(crate) fn serves_by_name(model: &str) -> bool {
    model.starts_with("gemini-")
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<WireUsage>,
    model_version: Option<String>,
    response_id: Option<String>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Content,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCall>,
    /// What Gemini's thinking models attach to a function call and want back with it.
    thought_signature: Option<String>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    total_token_count: Option<u64>,
}

impl WireUsage {
    /// Gemini counts thoughts apart from the candidates; ours counts them as output.
    fn normalize(&self) -> Usage {
        let input = self.prompt_token_count + self.tool_use_prompt_token_count;
        let output = self.candidates_token_count + self.thoughts_token_count;
        Usage {
            input,
            output,
            reasoning: self.thoughts_token_count,
            cache_read: self.cached_content_token_count,
            cache_write: 0,
            total: self.total_token_count.unwrap_or(input + output),
        }
    }
}

fn finish_reason(raw: &str, called_tools: bool) -> FinishReason {
    match raw {
        "STOP" if called_tools => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            FinishReason::ContentFilter
        }
        image if image.starts_with("IMAGE_") => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Splits a response's parts into events; `calls` numbers the tool calls across chunks.
fn part_events(parts: Vec<Part>, calls: &mut u32, out: &mut Vec<StreamEvent>) {
    for part in parts {
        let mut part_signature = part.thought_signature;
        match (part.text, part.function_call) {
            (Some(text), _) if part.thought => out.push(StreamEvent::Reasoning(text)),
            (Some(text), _) if !text.is_empty() => out.push(StreamEvent::Text(text)),
            (_, Some(call)) => {
                out.push(StreamEvent::ToolCall {
                    index: *calls,
                    // Gemini gives calls no id; one is made from the position.
                    id: Some(format!("call_{calls}")),
                    name: Some(call.name),
                    arguments: call.args.to_string(),
                    signature: part_signature.take(),
                });
                *calls += 1;
            }
            _ => {}
        }
    }
}

impl Response {
    fn into_completion(self, provider: Arc<str>, model: &str) -> Completion {
        let mut events = Vec::new();
        let mut decoder = ChunkDecoder::new(provider.clone());
        decoder.response(self, &mut events);
        let mut completion = Completion {
            provider,
            model: model.to_owned(),
            ..Completion::default()
        };
        let mut calls = Vec::new();
        for event in events {
            match event {
                StreamEvent::Started { id, model } => {
                    completion.id = id;
                    completion.model = model.unwrap_or(completion.model);
                }
                StreamEvent::Text(text) => completion.text.push_str(&text),
                StreamEvent::Reasoning(text) => completion.reasoning.push_str(&text),
                StreamEvent::ToolCall {
                    id,
                    name,
                    arguments,
                    signature,
                    ..
                } => calls.push(ToolCall {
                    id: id.unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    arguments,
                    signature,
                }),
                StreamEvent::Usage(usage) => completion.usage = Some(usage),
                StreamEvent::Finish(reason) => completion.finish_reason = Some(reason),
                StreamEvent::Refusal(_) | StreamEvent::ToolResult { .. } => {}
            }
        }
        completion.tool_calls = calls;
        completion
    }
}

/// Decodes `streamGenerateContent?alt=sse`: every event is a whole response whose text
/// parts are deltas and whose usage replaces the last. There is no end marker, and an
/// error may arrive as a bare JSON object outside any `data:` line.
struct ChunkDecoder {
    provider: Arc<str>,
    started: bool,
    calls: u32,
    finish_seen: bool,
    stray: String,
}

impl ChunkDecoder {
    fn new(provider: Arc<str>) -> Self {
        ChunkDecoder {
            provider,
            started: false,
            calls: 0,
            finish_seen: false,
            stray: String::new(),
        }
    }

    fn response(&mut self, response: Response, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Started {
                id: response.response_id,
                model: response.model_version,
            });
        }
        let blocked = response
            .prompt_feedback
            .and_then(|f| f.block_reason)
            .is_some();
        let candidate = response.candidates.into_iter().next();
        if let Some(candidate) = candidate {
            part_events(candidate.content.parts, &mut self.calls, out);
            if let Some(raw) = candidate.finish_reason {
                self.finish_seen = true;
                out.push(StreamEvent::Finish(finish_reason(&raw, self.calls > 0)));
            }
        } else if blocked {
            self.finish_seen = true;
            out.push(StreamEvent::Finish(FinishReason::ContentFilter));
        }
        if let Some(usage) = &response.usage_metadata {
            out.push(StreamEvent::Usage(usage.normalize()));
        }
    }

    /// The stray text as an error object, once it is whole.
    fn stray_error(&self) -> Option<AgentError> {
        let value: Value = serde_json::from_str(&self.stray).ok()?;
        let value = match value {
            Value::Array(mut items) if items.len() == 1 => items.swap_remove(0),
            other => other,
        };
        value
            .get("error")
            .is_some()
            .then(|| AgentError::from_stream_error(value.to_string().as_bytes()))
    }
}

impl StreamDecoder for ChunkDecoder {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        let response: Response = transport::parse_data(&self.provider, &event)?;
        if response.error.is_some() {
            return Err(AgentError::from_stream_error(event.data.as_bytes()));
        }
        self.response(response, out);
        Ok(())
    }

    fn stray(&mut self, text: &str) -> Result<(), AgentError> {
        if !self.stray.is_empty() {
            self.stray.push('\n');
        }
        self.stray.push_str(text);
        match self.stray_error() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn finished(&self) -> bool {
        false
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), AgentError> {
        if !self.stray.trim().is_empty() {
            let err = self.stray_error().unwrap_or_else(|| {
                AgentError::new(
                    ErrorClass::StreamInterrupted,
                    "the gemini stream ended with bytes that are neither events nor an error object",
                )
            });
            return Err(err);
        }
        if self.finish_seen {
            return Ok(());
        }
        Err(transport::ended_early(&self.provider, "finishReason"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_uses_gemini_shapes() {
        let prompt = Prompt::user("hi")
            .system("terse")
            .message(Role::Assistant, "ok")
            .max_tokens(7);
        let body = body(&prompt).unwrap();
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "terse");
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 7);
    }

    #[test]
    fn thoughts_count_as_output() {
        let wire: WireUsage = serde_json::from_str(
            r#"{"promptTokenCount":10,"candidatesTokenCount":48,"thoughtsTokenCount":540,"totalTokenCount":598}"#,
        )
        .unwrap();
        let usage = wire.normalize();
        assert_eq!(
            (usage.input, usage.output, usage.reasoning, usage.total),
            (10, 588, 540, 598)
        );
    }

    #[test]
    fn function_calls_turn_stop_into_tool_calls() {
        let wire: Response = serde_json::from_str(
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}}]},"finishReason":"STOP"}]}"#,
        )
        .unwrap();
        let done = wire.into_completion("gemini".into(), "gemini-x");
        assert_eq!(done.finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(done.tool_calls[0].name, "f");
        assert_eq!(done.tool_calls[0].parse_arguments().unwrap()["a"], 1);
    }

    #[test]
    fn a_blocked_prompt_is_a_content_filter_finish() {
        let wire: Response =
            serde_json::from_str(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap();
        let done = wire.into_completion("gemini".into(), "gemini-x");
        assert_eq!(done.finish_reason, Some(FinishReason::ContentFilter));
    }
}
