//! What is sent to a model: messages, limits and tools, without the model's name (the
//! pipeline picks the model).

use serde::{Deserialize, Serialize};

use super::completion::{Completion, ToolCall};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model. Anthropic and Gemini take these apart from the
    /// conversation; the providers move them there.
    System,
    /// The person (or program) asking.
    User,
    /// The model's earlier turns, with the tool calls it made in them.
    Assistant,
    /// A tool's answer to one call of the turn before ([`Message::tool_result`]).
    /// Anthropic and Gemini carry these inside a user turn; the providers move them there.
    Tool,
}

impl Role {
    /// The role's wire name (`"system"`, `"user"`, `"assistant"`, `"tool"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One turn of the conversation.
///
/// A tool round trip is two kinds of message: the model's turn with its
/// [`tool_calls`](Message::tool_calls) ([`Message::assistant`]), then one
/// [`Role::Tool`] message per call with the tool's answer ([`Message::tool_result`],
/// [`Message::tool_error`]). Every provider gets them in its own shape.
///
/// ```
/// use fastagentic::llm::{Message, Role, ToolCall};
///
/// let call = ToolCall::new("call_1", "clock", "{}");
/// let turn = Message::assistant("", vec![call.clone()]);
/// let answer = Message::tool_result(&call, r#"{"utc":"12:00"}"#);
/// assert_eq!(answer.role, Role::Tool);
/// assert_eq!(answer.tool_result.as_ref().map(|r| r.call_id.as_str()), Some("call_1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text; for a [`Role::Tool`] message, the tool's output (JSON text for a
    /// structured one) or its error message.
    pub content: String,
    /// On an assistant message: the tools the model called in that turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a [`Role::Tool`] message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<ToolResult>,
}

/// Which call a [`Role::Tool`] message answers, and how it went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call ([`ToolCall::id`]).
    pub call_id: String,
    /// The tool's name (Gemini matches answers to calls by it).
    pub name: String,
    /// Whether the tool failed: the content is then an error message for the model, which
    /// may correct its arguments and call again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_result: None,
        }
    }

    /// The model's turn: its text (may be empty) and the tools it called.
    pub fn assistant(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls,
            ..Message::new(Role::Assistant, text)
        }
    }

    /// A tool's answer to `call`.
    pub fn tool_result(call: &ToolCall, output: impl Into<String>) -> Self {
        Message::tool_answer(call, output.into(), false)
    }

    /// A tool's failure on `call`, told to the model as `message`.
    pub fn tool_error(call: &ToolCall, message: impl Into<String>) -> Self {
        Message::tool_answer(call, message.into(), true)
    }

    fn tool_answer(call: &ToolCall, content: String, is_error: bool) -> Self {
        Message {
            tool_result: Some(ToolResult {
                call_id: call.id.clone(),
                name: call.name.clone(),
                is_error,
            }),
            ..Message::new(Role::Tool, content)
        }
    }
}

/// A tool the model may call: a name, what it does, and a JSON Schema for its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Whether the model may, must or must not call a tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides (every provider's default).
    Auto,
    /// The model answers in text and calls nothing.
    None,
    /// The model calls at least one tool.
    Required,
    /// The model calls this tool.
    Tool(String),
}

/// The shape the answer's text must take.
///
/// OpenAI and Gemini enforce it (Gemini as `responseMimeType` and `responseJsonSchema`).
/// Anthropic's Messages API has no such field: it is told in the system prompt, which it
/// follows but does not guarantee.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// One JSON object, of any shape.
    JsonObject,
    /// JSON conforming to `schema`.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// OpenAI's strict mode, when set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

impl ResponseFormat {
    /// The instruction given to a provider that cannot enforce the format, if any.
    pub(crate) fn instruction(&self) -> Option<String> {
        match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => {
                Some("Answer with a single JSON object and nothing else.".to_owned())
            }
            ResponseFormat::JsonSchema { schema, .. } => Some(format!(
                "Answer with a single JSON value that conforms to this JSON Schema, and nothing else: {schema}"
            )),
        }
    }
}

/// A request to a model, minus the model: the pipeline decides which model answers.
///
/// ```
/// use fastagentic::llm::Prompt;
///
/// let prompt = Prompt::user("Summarize this ticket")
///     .system("You are terse.")
///     .max_tokens(256)
///     .temperature(0.2);
/// assert_eq!(prompt.messages().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Prompt {
    /// The conversation, system messages included.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens (reasoning included), if any.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, if set.
    pub temperature: Option<f32>,
    /// Sequences that end generation.
    pub stop: Vec<String>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether it may, must or must not call them (`None`: the provider's default, auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// The shape the answer must take (`None`: free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

impl Prompt {
    /// A prompt of one user message.
    pub fn user(text: impl Into<String>) -> Self {
        Prompt {
            messages: vec![Message::new(Role::User, text)],
            ..Prompt::default()
        }
    }

    /// A prompt holding `messages`.
    pub fn from_messages(messages: impl IntoIterator<Item = Message>) -> Self {
        Prompt {
            messages: messages.into_iter().collect(),
            ..Prompt::default()
        }
    }

    /// Adds a system instruction before the conversation (after earlier ones).
    pub fn system(mut self, text: impl Into<String>) -> Self {
        let at = self
            .messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        self.messages.insert(at, Message::new(Role::System, text));
        self
    }

    /// Appends a message.
    pub fn message(mut self, role: Role, text: impl Into<String>) -> Self {
        self.messages.push(Message::new(role, text));
        self
    }

    /// Caps the generated tokens.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Adds a stop sequence.
    pub fn stop(mut self, sequence: impl Into<String>) -> Self {
        self.stop.push(sequence.into());
        self
    }

    /// Appends the model's answer as its turn of the conversation: the text and the tool
    /// calls, which the next messages answer.
    pub fn answered(mut self, completion: &Completion) -> Self {
        self.messages.push(Message::assistant(
            completion.text.clone(),
            completion.tool_calls.clone(),
        ));
        self
    }

    /// Appends a tool's answer to `call`.
    pub fn tool_result(mut self, call: &ToolCall, output: impl Into<String>) -> Self {
        self.messages.push(Message::tool_result(call, output));
        self
    }

    /// Appends a tool's failure on `call`.
    pub fn tool_error(mut self, call: &ToolCall, message: impl Into<String>) -> Self {
        self.messages.push(Message::tool_error(call, message));
        self
    }

    /// Offers a tool to the model.
    pub fn tool(mut self, tool: ToolSpec) -> Self {
        self.tools.push(tool);
        self
    }

    /// Says whether the model may, must or must not call the tools.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Asks for an answer of this shape.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// The conversation.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The system instructions joined by blank lines, for providers that take them apart
    /// from the conversation.
    pub(crate) fn system_text(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// The conversation without system messages, each run of tool answers gathered into
    /// one turn: Anthropic and Gemini take a turn's answers together, in one user message.
    pub(crate) fn turns(&self) -> Vec<Turn<'_>> {
        let mut turns = Vec::new();
        for message in self.messages.iter().filter(|m| m.role != Role::System) {
            match (message.role, turns.last_mut()) {
                (Role::Tool, Some(Turn::ToolAnswers(answers))) => answers.push(message),
                (Role::Tool, _) => turns.push(Turn::ToolAnswers(vec![message])),
                _ => turns.push(Turn::Message(message)),
            }
        }
        turns
    }
}

/// One turn of the conversation as Anthropic and Gemini count them.
pub(crate) enum Turn<'a> {
    /// A user or assistant message.
    Message(&'a Message),
    /// Consecutive [`Role::Tool`] messages: the answers to one turn's calls.
    ToolAnswers(Vec<&'a Message>),
}

impl From<&str> for Prompt {
    fn from(text: &str) -> Self {
        Prompt::user(text)
    }
}

impl From<String> for Prompt {
    fn from(text: String) -> Self {
        Prompt::user(text)
    }
}

impl From<&String> for Prompt {
    fn from(text: &String) -> Self {
        Prompt::user(text.as_str())
    }
}

/// A temperature as JSON: the decimal the caller wrote (`0.2`), not the `f32` widened to
/// `f64` (`0.20000000298023224`), which a strict upstream may refuse or log oddly.
pub(crate) fn temperature_json(t: f32) -> serde_json::Value {
    t.to_string()
        .parse::<f64>()
        .map_or_else(|_| serde_json::Value::from(t), serde_json::Value::from)
}
