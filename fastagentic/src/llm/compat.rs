//! OpenAI-compatible gateways and servers: Portkey, a LiteLLM proxy, vLLM, Ollama.
//!
//! Each is an [`OpenAi`] client with another base URL, name and headers; models are
//! addressed through it as `name/model` (`vllm/meta-llama/Llama-3.1-8B-Instruct`).
//!
//! ```
//! use fastagentic::llm::{compat, Providers};
//!
//! let providers = Providers::new()
//!     .with(compat::vllm("http://127.0.0.1:8000/v1"))
//!     .with(compat::ollama("http://127.0.0.1:11434/v1"));
//! let (provider, model) = providers.route("vllm/meta-llama/Llama-3.1-8B-Instruct").unwrap();
//! assert_eq!((provider.name(), model), ("vllm", "meta-llama/Llama-3.1-8B-Instruct"));
//! ```

use super::openai::{MaxTokensField, OpenAi};
use crate::error::AgentError;

/// Portkey's hosted gateway.
pub const PORTKEY_BASE_URL: &str = "https://api.portkey.ai/v1";

/// Portkey, routing to the provider behind `virtual_key`.
pub fn portkey(api_key: &str, virtual_key: &str) -> Result<OpenAi, AgentError> {
    OpenAi::compatible("portkey", PORTKEY_BASE_URL)
        .header("x-portkey-api-key", api_key)?
        .header("x-portkey-virtual-key", virtual_key)
}

/// A LiteLLM proxy at `base_url`, authenticated with one of its virtual keys.
pub fn litellm(base_url: impl Into<String>, api_key: impl Into<String>) -> OpenAi {
    OpenAi::compatible("litellm", base_url).api_key(api_key)
}

/// A vLLM server's OpenAI-compatible endpoint (`http://host:8000/v1`).
pub fn vllm(base_url: impl Into<String>) -> OpenAi {
    OpenAi::compatible("vllm", base_url)
}

/// Ollama's OpenAI-compatible endpoint (`http://localhost:11434/v1`). Ollama reads the
/// older `max_tokens` field.
pub fn ollama(base_url: impl Into<String>) -> OpenAi {
    OpenAi::compatible("ollama", base_url).max_tokens_field(MaxTokensField::MaxTokens)
}
