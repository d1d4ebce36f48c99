//! The configured providers, and which of them answers a model name.

use std::fmt;
use std::sync::{Arc, OnceLock};

use super::anthropic::Anthropic;
use super::gemini::Gemini;
use super::mock::MockProvider;
use super::openai::OpenAi;
use super::provider::Provider;
use crate::error::{AgentError, ErrorClass};

/// The providers a program can reach, and the routing from model names to them.
///
/// A model is routed by an explicit `provider/model` prefix (`openai/gpt-4o`,
/// `mock/fast`, `vllm/meta-llama/Llama-3.1-8B`) or, without one, by its family:
/// `gpt-*`, `chatgpt-*` and `o1`/`o3`/`o4`... go to OpenAI, `claude-*` to Anthropic,
/// `gemini-*` to Gemini.
///
/// ```
/// use fastagentic::llm::{MockProvider, OpenAi, Providers};
///
/// let providers = Providers::new()
///     .with(MockProvider::new())
///     .with(OpenAi::new("sk-test").base_url("http://127.0.0.1:9/v1"));
/// let (provider, model) = providers.route("gpt-4o-mini").unwrap();
/// assert_eq!((provider.name(), model), ("openai", "gpt-4o-mini"));
/// let (provider, model) = providers.route("mock/fast").unwrap();
/// assert_eq!((provider.name(), model), ("mock", "fast"));
///
/// // Anthropic is not configured: the error says how to configure it.
/// let err = providers.route("claude-sonnet-4-5").unwrap_err();
/// assert!(err.message().contains("ANTHROPIC_API_KEY"));
/// ```
#[derive(Clone, Default)]
pub struct Providers {
    list: Vec<Arc<dyn Provider>>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter()).finish()
    }
}

/// A built-in provider family: its routing name, who it is, and how to configure it.
struct Family {
    name: &'static str,
    vendor: &'static str,
    key_var: &'static str,
    base_var: &'static str,
    serves: fn(&str) -> bool,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "openai",
        vendor: "OpenAI",
        key_var: "OPENAI_API_KEY",
        base_var: "OPENAI_BASE_URL",
        serves: super::openai::serves_by_name,
    },
    Family {
        name: "anthropic",
        vendor: "Anthropic",
        key_var: "ANTHROPIC_API_KEY",
        base_var: "ANTHROPIC_BASE_URL",
        serves: super::anthropic::serves_by_name,
    },
    Family {
        name: "gemini",
        vendor: "Gemini",
        key_var: "GEMINI_API_KEY",
        base_var: "GEMINI_BASE_URL",
        serves: super::gemini::serves_by_name,
    },
];

impl Providers {
    /// No providers at all.
    pub fn new() -> Self {
        Providers::default()
    }

    /// The mock provider, plus every provider whose key variable is set
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`), at the base URL its
    /// `*_BASE_URL` variable gives.
    pub fn from_env() -> Self {
        let mut providers = Providers::new().with(MockProvider::new());
        if let Some(openai) = OpenAi::from_env() {
            providers = providers.with(openai);
        }
        if let Some(anthropic) = Anthropic::from_env() {
            providers = providers.with(anthropic);
        }
        if let Some(gemini) = Gemini::from_env() {
            providers = providers.with(gemini);
        }
        providers
    }

    /// Adds `provider`, replacing one of the same name.
    pub fn with(self, provider: impl Provider + 'static) -> Self {
        self.with_shared(Arc::new(provider))
    }

    /// Adds a shared `provider`, replacing one of the same name.
    pub fn with_shared(mut self, provider: Arc<dyn Provider>) -> Self {
        self.list.retain(|p| p.name() != provider.name());
        self.list.push(provider);
        self
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.list.iter().find(|p| p.name() == name)
    }

    /// The names of the configured providers.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|p| p.name())
    }

    /// The provider that answers `model`, and the model's name as that provider knows it.
    ///
    /// A model no configured provider serves is an `auth_error` naming the variable to
    /// set when it belongs to a built-in family, else a `not_found` error.
    pub fn route<'m>(&self, model: &'m str) -> Result<(Arc<dyn Provider>, &'m str), AgentError> {
        if let Some((prefix, rest)) = model.split_once('/') {
            if let Some(provider) = self.get(prefix) {
                return Ok((provider.clone(), rest));
            }
            if let Some(family) = FAMILIES.iter().find(|f| f.name == prefix) {
                return Err(not_configured(family, model));
            }
        }
        if let Some(provider) = self.list.iter().find(|p| p.serves(model)) {
            return Ok((provider.clone(), model));
        }
        if let Some(family) = FAMILIES.iter().find(|f| (f.serves)(model)) {
            return Err(not_configured(family, model));
        }
        let configured: Vec<&str> = self.names().collect();
        Err(AgentError::new(
            ErrorClass::NotFound,
            format!(
                "no provider serves model `{model}`: name one as `provider/model` \
                 (configured: {})",
                if configured.is_empty() {
                    "none".to_owned()
                } else {
                    configured.join(", ")
                }
            ),
        )
        .with_model(model.to_owned()))
    }
}

fn not_configured(family: &Family, model: &str) -> AgentError {
    AgentError::new(
        ErrorClass::AuthError,
        format!(
            "model `{model}` needs the {vendor} provider, which is not configured: set {key} \
             (and {base} for a gateway or proxy), or add it in code with Providers::with",
            vendor = family.vendor,
            key = family.key_var,
            base = family.base_var,
        ),
    )
    .with_provider(family.name)
    .with_model(model.to_owned())
}

/// The providers used when none were given: [`Providers::from_env`], read once.
pub fn default_providers() -> Arc<Providers> {
    static DEFAULT: OnceLock<Arc<Providers>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(Providers::from_env()))
        .clone()
}
