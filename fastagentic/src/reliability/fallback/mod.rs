//! Fallback: other models to try, or other ways to answer, when the first one fails.

mod walk;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::AgentContext;
use crate::error::{AgentError, ClassSet, ErrorClass};
use crate::reliability::PolicyError;
use crate::reliability::timeout::{Stage, run_stage};

/// One fallback model and the classes that send a run to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackStep {
    /// The model to try.
    pub model: Arc<str>,
    /// The error classes of the previous model that trigger this step. An open circuit
    /// (`circuit_open`) always does: a model whose breaker is open is unavailable.
    pub on: ClassSet,
}

impl FallbackStep {
    /// Whether a previous model that failed with `class` sends the run to this step.
    pub fn triggers_on(&self, class: ErrorClass) -> bool {
        class == ErrorClass::CircuitOpen || self.on.contains(class)
    }
}

/// A primary model and ordered fallbacks (SPEC §3.6).
///
/// ```
/// use fastagentic::{ClassSet, ErrorClass};
/// use fastagentic::reliability::FallbackChain;
///
/// let chain = FallbackChain::builder("gpt-4o")
///     .then("gpt-4o-mini", ClassSet::of(&[ErrorClass::RateLimit, ErrorClass::Timeout]))
///     .then("claude-sonnet-4-5", ClassSet::of(&[ErrorClass::RateLimit, ErrorClass::ServerError]))
///     .build()?;
/// assert_eq!(chain.models().collect::<Vec<_>>(), ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]);
/// # Ok::<(), fastagentic::reliability::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FallbackChainBuilder", into = "FallbackChainBuilder")]
pub struct FallbackChain {
    settings: FallbackChainBuilder,
}

/// The settings of a [`FallbackChain`] before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackChainBuilder {
    primary: Arc<str>,
    #[serde(default)]
    then: Vec<FallbackStep>,
}

impl FallbackChainBuilder {
    /// Adds a fallback model, tried when the previous one failed with a class in `on`.
    #[must_use]
    pub fn then(mut self, model: impl Into<Arc<str>>, on: ClassSet) -> Self {
        self.then.push(FallbackStep {
            model: model.into(),
            on,
        });
        self
    }

    /// Validates the chain: model names non-empty and distinct, every step with a class.
    pub fn build(self) -> Result<FallbackChain, PolicyError> {
        let mut seen: Vec<&str> = Vec::with_capacity(self.then.len() + 1);
        for model in std::iter::once(&self.primary).chain(self.then.iter().map(|s| &s.model)) {
            if model.trim().is_empty() {
                return Err(PolicyError::Inconsistent(
                    "a fallback chain has an empty model name".into(),
                ));
            }
            if seen.contains(&&**model) {
                return Err(PolicyError::Inconsistent(format!(
                    "model `{model}` appears twice in the fallback chain; each model gets one retry loop"
                )));
            }
            seen.push(model);
        }
        if let Some(step) = self.then.iter().find(|s| s.on.is_empty()) {
            return Err(PolicyError::Inconsistent(format!(
                "fallback step `{}` has an empty `on` list, so it could only follow an open circuit; name the classes that should trigger it",
                step.model
            )));
        }
        Ok(FallbackChain { settings: self })
    }
}

impl TryFrom<FallbackChainBuilder> for FallbackChain {
    type Error = PolicyError;

    fn try_from(builder: FallbackChainBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

impl From<FallbackChain> for FallbackChainBuilder {
    fn from(chain: FallbackChain) -> Self {
        chain.settings
    }
}

impl FallbackChain {
    /// A chain starting at `primary`.
    pub fn builder(primary: impl Into<Arc<str>>) -> FallbackChainBuilder {
        FallbackChainBuilder {
            primary: primary.into(),
            then: Vec::new(),
        }
    }

    /// A chain of one model: no fallback.
    pub fn single(model: impl Into<Arc<str>>) -> FallbackChain {
        FallbackChain {
            settings: FallbackChain::builder(model),
        }
    }

    /// The primary model.
    pub fn primary(&self) -> &Arc<str> {
        &self.settings.primary
    }

    /// The fallback steps, in order.
    pub fn steps(&self) -> &[FallbackStep] {
        &self.settings.then
    }

    /// Every model of the chain as a shared string, the primary first.
    pub(crate) fn shared_models(&self) -> impl Iterator<Item = &Arc<str>> {
        std::iter::once(self.primary()).chain(self.steps().iter().map(|step| &step.model))
    }

    /// The model at `position` in the chain (0 is the primary; past the end, the
    /// primary).
    pub(crate) fn model_at(&self, position: usize) -> &Arc<str> {
        match position.checked_sub(1) {
            None => self.primary(),
            Some(step) => self
                .steps()
                .get(step)
                .map_or_else(|| self.primary(), |s| &s.model),
        }
    }

    /// The models tried up to and including `position`.
    pub(crate) fn tried_through(&self, position: usize) -> Vec<Arc<str>> {
        (0..=position).map(|i| self.model_at(i).clone()).collect()
    }

    /// Every model, primary first.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.settings.primary).chain(self.settings.then.iter().map(|s| &*s.model))
    }
}

type StrategyFn<T> = Arc<
    dyn Fn(AgentContext) -> Pin<Box<dyn Future<Output = Result<T, AgentError>> + Send>>
        + Send
        + Sync,
>;

struct Strategy<T> {
    name: Arc<str>,
    timeout: Option<Duration>,
    run: StrategyFn<T>,
}

/// Ordered alternative bodies — full agent, then a simpler chain, then a cached answer —
/// each with its own timeout. The next runs when the previous fails with anything but
/// `cancelled`; the error after the last names every strategy tried.
///
/// ```
/// use std::time::Duration;
/// use fastagentic::{AgentContext, AgentError, ErrorClass};
/// use fastagentic::reliability::StrategyFallback;
///
/// # async fn demo(ctx: AgentContext) -> Result<(), AgentError> {
/// let answer = StrategyFallback::new()
///     .then("full_agent", Some(Duration::from_secs(20)), |_ctx| async {
///         Err(AgentError::new(ErrorClass::Timeout, "too slow"))
///     })
///     .then("cached", None, |_ctx| async { Ok("a cached answer".to_string()) })
///     .run(ctx)
///     .await?;
/// assert_eq!(answer, "a cached answer");
/// # Ok(()) }
/// ```
pub struct StrategyFallback<T> {
    strategies: Vec<Strategy<T>>,
}

impl<T> Default for StrategyFallback<T> {
    fn default() -> Self {
        StrategyFallback {
            strategies: Vec::new(),
        }
    }
}

impl<T> std::fmt::Debug for StrategyFallback<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.strategies.iter().map(|s| (&s.name, s.timeout)))
            .finish()
    }
}

impl<T: Send + 'static> StrategyFallback<T> {
    /// No strategies yet.
    pub fn new() -> Self {
        StrategyFallback::default()
    }

    /// Adds a strategy named `name`, cut after `timeout` if given.
    #[must_use]
    pub fn then<F, Fut>(
        mut self,
        name: impl Into<Arc<str>>,
        timeout: Option<Duration>,
        body: F,
    ) -> Self
    where
        F: Fn(AgentContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, AgentError>> + Send + 'static,
    {
        self.strategies.push(Strategy {
            name: name.into(),
            timeout,
            run: Arc::new(move |ctx| Box::pin(body(ctx))),
        });
        self
    }

    /// Runs the strategies in order until one succeeds.
    pub async fn run(&self, ctx: AgentContext) -> Result<T, AgentError> {
        let mut tried = Vec::with_capacity(self.strategies.len());
        let mut last = None;
        for strategy in &self.strategies {
            tried.push(strategy.name.clone());
            // A strategy without a limit of its own is bounded by the run alone.
            let total = ctx.timeouts().limit(Stage::Total);
            let limit = strategy.timeout.unwrap_or(total);
            let body = (strategy.run)(ctx.clone());
            let result = run_stage(Stage::Strategy, limit, Some(ctx.deadline()), total, body).await;
            match result {
                Ok(value) => return Ok(value),
                Err(err) if err.class() == ErrorClass::Cancelled => return Err(err),
                Err(err) => last = Some(err),
            }
        }
        Err(last
            .unwrap_or_else(|| AgentError::new(ErrorClass::Other, "no strategy was configured"))
            .with_attempted(tried))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_validated() {
        let err = FallbackChain::builder("a")
            .then("a", ClassSet::of(&[ErrorClass::Timeout]))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = FallbackChain::builder("a")
            .then("b", ClassSet::EMPTY)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("empty `on` list"), "{err}");
        let chain: FallbackChain = serde_json::from_str(
            r#"{"primary": "gpt-4o", "then": [{"model": "gpt-4o-mini", "on": ["rate_limit"]}]}"#,
        )
        .unwrap();
        assert_eq!(chain.steps().len(), 1);
        assert!(chain.steps()[0].triggers_on(ErrorClass::CircuitOpen));
        assert!(!chain.steps()[0].triggers_on(ErrorClass::Timeout));
    }

    #[tokio::test(start_paused = true)]
    async fn strategies_run_in_order_with_their_timeouts() {
        let fallback = StrategyFallback::new()
            .then("full_agent", Some(Duration::from_secs(5)), |_| async {
                std::future::pending::<Result<&'static str, AgentError>>().await
            })
            .then("simple_chain", None, |_| async {
                Err(AgentError::new(ErrorClass::ServerError, "down"))
            })
            .then("cached", None, |_| async { Ok("cached answer") });
        let start = tokio::time::Instant::now();
        let answer = fallback.run(AgentContext::detached("m")).await.unwrap();
        assert_eq!(answer, "cached answer");
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        let failing = StrategyFallback::<()>::new()
            .then("a", None, |_| async {
                Err(AgentError::new(ErrorClass::Timeout, "a"))
            })
            .then("b", None, |_| async {
                Err(AgentError::new(ErrorClass::ServerError, "b"))
            });
        let err = failing.run(AgentContext::detached("m")).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::ServerError);
        let tried: Vec<&str> = err.attempted().iter().map(|s| &**s).collect();
        assert_eq!(tried, ["a", "b"]);
    }
}
