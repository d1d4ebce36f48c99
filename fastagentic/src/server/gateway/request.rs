//! A Chat Completions request, read into a [`Prompt`]: what the front door honours, and
//! a 400 naming the parameter for what it cannot.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::llm::{Message, Prompt, ResponseFormat, Role, ToolCall, ToolChoice, ToolSpec};

/// What a request asks for, ready to run.
#[derive(Debug)]
pub(crate) struct ChatRequest {
    /// The route or model named.
    pub(crate) model: String,
    pub(crate) prompt: Prompt,
    pub(crate) stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage.
    pub(crate) include_usage: bool,
    /// The end user, as the body names them.
    pub(crate) user: Option<String>,
}

/// The body as the wire has it. Fields not listed are accepted and ignored.
#[derive(Deserialize)]
struct Body {
    model: Option<String>,
    messages: Option<Vec<WireMessage>>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    stop: Option<Stop>,
    n: Option<u32>,
    user: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    response_format: Option<WireResponseFormat>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// One message. A struct with the role as a field (not an enum tagged by it): serde
/// reads it in one pass, where a tagged enum buffers every message first.
#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: Option<Content>,
    tool_calls: Option<Vec<WireToolCall>>,
    tool_call_id: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// A message's content: a string, or an array of parts.
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Content;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content::Text(text.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Content, E> {
                Ok(Content::Text(text))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Content, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunctionCall,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct WireTool {
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    description: String,
    parameters: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Function { function: NamedFunction },
}

#[derive(Deserialize)]
struct NamedFunction {
    name: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Deserialize)]
struct WireJsonSchema {
    name: String,
    schema: Option<Value>,
    strict: Option<bool>,
}

/// A 400 about `param`.
fn invalid(param: impl Into<String>, message: impl Into<String>) -> AgentError {
    AgentError::new(ErrorClass::InvalidInput, message.into()).with_detail(
        ErrorDetail::InvalidInput {
            field: param.into(),
        },
    )
}

impl ChatRequest {
    /// Reads a request body, straight from its bytes (no `Value` in between).
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<ChatRequest, AgentError> {
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let body: Body = serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let param = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return AgentError::new(
                    ErrorClass::InvalidInput,
                    format!("the request body is not valid JSON: {inner}"),
                );
            }
            invalid(
                param.clone(),
                format!("`{param}` is not a valid Chat Completions field: {inner}"),
            )
        })?;
        json.end().map_err(|err| {
            AgentError::new(
                ErrorClass::InvalidInput,
                format!("the request body is not valid JSON: {err}"),
            )
        })?;
        Self::read(body)
    }

    /// Reads a request body already parsed.
    #[cfg(test)]
    pub(crate) fn parse(body: Value) -> Result<ChatRequest, AgentError> {
        Self::from_slice(body.to_string().as_bytes())
    }

    fn read(body: Body) -> Result<ChatRequest, AgentError> {
        if let Some(n) = body.n.filter(|n| *n != 1) {
            return Err(invalid(
                "n",
                format!(
                    "`n` = {n} is not supported: this server returns one choice; send `n: 1` or leave it out"
                ),
            ));
        }
        let Some(model) = body.model.filter(|m| !m.is_empty()) else {
            return Err(invalid(
                "model",
                "`model` is missing; name a model or route (`GET /v1/models` lists them)",
            ));
        };
        let wire = body.messages.unwrap_or_default();
        if wire.is_empty() {
            return Err(invalid(
                "messages",
                "`messages` is missing or empty; send at least one message",
            ));
        }
        let mut prompt = Prompt::from_messages(messages(wire)?);
        prompt.max_tokens = body.max_completion_tokens.or(body.max_tokens);
        prompt.temperature = body.temperature;
        prompt.stop = match body.stop {
            Some(Stop::One(stop)) => vec![stop],
            Some(Stop::Many(stops)) => stops,
            None => Vec::new(),
        };
        prompt.tools = (body.tools.unwrap_or_default().into_iter())
            .map(|tool| ToolSpec {
                name: tool.function.name,
                description: tool.function.description,
                parameters: (tool.function.parameters)
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
            .collect();
        prompt.tool_choice = body.tool_choice.map(tool_choice).transpose()?;
        prompt.response_format = body.response_format.map(response_format);
        Ok(ChatRequest {
            model,
            prompt,
            stream: body.stream.unwrap_or(false),
            include_usage: body
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            user: body.user.filter(|u| !u.is_empty()),
        })
    }
}

fn messages(wire: Vec<WireMessage>) -> Result<Vec<Message>, AgentError> {
    let mut out: Vec<Message> = Vec::with_capacity(wire.len());
    for (i, message) in wire.into_iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        let content = match (message.content, message.role) {
            (Some(content), _) => text(content, &at("content"))?,
            // An assistant that only calls tools has no content.
            (None, WireRole::Assistant) => String::new(),
            (None, _) => {
                return Err(invalid(
                    at("content"),
                    format!(
                        "`{}` has no content; send a string or text parts",
                        at("content")
                    ),
                ));
            }
        };
        let message = match message.role {
            WireRole::System | WireRole::Developer => Message::new(Role::System, content),
            WireRole::User => Message::new(Role::User, content),
            WireRole::Assistant => {
                let calls = (message.tool_calls.unwrap_or_default().into_iter())
                    .map(|c| ToolCall::new(c.id, c.function.name, c.function.arguments))
                    .collect();
                Message::assistant(content, calls)
            }
            WireRole::Tool => {
                let Some(id) = message.tool_call_id else {
                    return Err(invalid(
                        at("tool_call_id"),
                        "a `tool` message needs the `tool_call_id` of the call it answers",
                    ));
                };
                // Gemini matches answers to calls by the tool's name: find it.
                let call = (out.iter().rev().flat_map(|m| &m.tool_calls))
                    .find(|c| c.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        invalid(
                            at("tool_call_id"),
                            format!("`tool_call_id` `{id}` answers no tool call of an earlier assistant message"),
                        )
                    })?;
                Message::tool_result(&call, content)
            }
        };
        out.push(message);
    }
    Ok(out)
}

/// The text of a message: a string, or its text parts joined.
fn text(content: Content, param: &str) -> Result<String, AgentError> {
    match content {
        Content::Text(text) => Ok(text),
        Content::Parts(parts) => {
            let mut joined = String::new();
            for (j, part) in parts.into_iter().enumerate() {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(text)) => joined.push_str(&text),
                    (kind, _) => {
                        return Err(invalid(
                            format!("{param}[{j}]"),
                            format!(
                                "content parts of type `{kind}` are not supported: send text parts only"
                            ),
                        ));
                    }
                }
            }
            Ok(joined)
        }
    }
}

fn tool_choice(choice: WireToolChoice) -> Result<ToolChoice, AgentError> {
    match choice {
        WireToolChoice::Function { function } => Ok(ToolChoice::Tool(function.name)),
        WireToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(invalid(
                "tool_choice",
                format!(
                    "`tool_choice` `{other}` is not one of `auto`, `none`, `required` or `{{\"type\": \"function\", \"function\": {{\"name\": ...}}}}`"
                ),
            )),
        },
    }
}

fn response_format(format: WireResponseFormat) -> ResponseFormat {
    match format {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            schema: json_schema
                .schema
                .unwrap_or_else(|| serde_json::json!({"type": "object"})),
            strict: json_schema.strict,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_tool_round_trip() -> Result<(), AgentError> {
        let request = ChatRequest::parse(json!({
            "model": "smart",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Oslo?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"c\":3}"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "max_tokens": 50,
            "max_completion_tokens": 60,
            "stop": "END",
            "top_p": 0.5,
            "stream": true,
            "stream_options": {"include_usage": true},
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}}
        }))?;
        assert_eq!(request.model, "smart");
        assert!(request.stream && request.include_usage);
        let prompt = &request.prompt;
        assert_eq!(prompt.max_tokens, Some(60), "max_completion_tokens wins");
        assert_eq!(prompt.stop, ["END"]);
        assert_eq!(prompt.messages[0].role, Role::System);
        assert_eq!(prompt.messages[1].content, "Weather in Oslo?");
        assert_eq!(prompt.messages[2].tool_calls[0].name, "weather");
        let answer = prompt.messages[3].tool_result.as_ref();
        assert_eq!(answer.map(|r| r.name.as_str()), Some("weather"));
        assert_eq!(prompt.tool_choice, Some(ToolChoice::Tool("weather".into())));
        assert!(matches!(
            prompt.response_format,
            Some(ResponseFormat::JsonSchema {
                strict: Some(true),
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn names_the_parameter_it_refuses() {
        let param = |body: Value| {
            let err = ChatRequest::parse(body).err();
            match err.as_ref().and_then(AgentError::detail) {
                Some(ErrorDetail::InvalidInput { field }) => field.clone(),
                other => format!("{other:?}"),
            }
        };
        let user = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(param(json!({"model": "m", "messages": user, "n": 2})), "n");
        assert_eq!(param(json!({"messages": user})), "model");
        assert_eq!(param(json!({"model": "m", "messages": []})), "messages");
        assert_eq!(
            param(
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
            ),
            "messages[0].content[0]"
        );
        assert_eq!(
            param(
                json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]})
            ),
            "messages[0].tool_call_id"
        );
        assert_eq!(
            param(json!({"model": "m", "messages": user, "tool_choice": "sometimes"})),
            "tool_choice"
        );
        assert_eq!(
            param(json!({"model": "m", "messages": user, "temperature": "hot"})),
            "temperature"
        );
    }
}
