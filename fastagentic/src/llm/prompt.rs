//! What is sent to a model: messages, limits and tools, without the model's name (the
//! pipeline picks the model).

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model. Anthropic and Gemini take these apart from the
    /// conversation; the providers move them there.
    System,
    /// The person (or program) asking.
    User,
    /// The model's earlier turns.
    Assistant,
}

impl Role {
    /// The role's wire name (`"system"`, `"user"`, `"assistant"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
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

    /// Offers a tool to the model.
    pub fn tool(mut self, tool: ToolSpec) -> Self {
        self.tools.push(tool);
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

    /// The conversation without system messages.
    pub(crate) fn turns(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role != Role::System)
    }
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
