//! The breakers of one pipeline: one per model of its fallback chain, looked up once
//! when the pipeline is built, and registry lookups for models a hook switches to.

use std::sync::Arc;

use super::{BreakerKey, BreakerRegistry, CircuitBreaker, CircuitBreakerPolicy};
use crate::reliability::fallback::FallbackChain;

pub(crate) struct BreakerSet {
    endpoint: Arc<str>,
    default_policy: Option<CircuitBreakerPolicy>,
    overrides: Vec<(Arc<str>, CircuitBreakerPolicy)>,
    registry: Arc<BreakerRegistry>,
    chain: Vec<Option<Arc<CircuitBreaker>>>,
}

impl BreakerSet {
    /// The breakers of `endpoint`'s `chain`: `default_policy` unless `overrides` names
    /// the model; no breaker at all for a model with neither.
    pub(crate) fn new(
        endpoint: Arc<str>,
        default_policy: Option<CircuitBreakerPolicy>,
        overrides: Vec<(Arc<str>, CircuitBreakerPolicy)>,
        registry: Arc<BreakerRegistry>,
        chain: &FallbackChain,
    ) -> Self {
        let mut set = BreakerSet {
            endpoint,
            default_policy,
            overrides,
            registry,
            chain: Vec::new(),
        };
        set.chain = chain
            .shared_models()
            .map(|model| set.lookup(model))
            .collect();
        set
    }

    /// The breaker of the model at `position` in the chain (0 is the primary).
    pub(crate) fn at(&self, position: usize) -> Option<Arc<CircuitBreaker>> {
        self.chain.get(position).cloned().flatten()
    }

    /// The breaker of `model`, made in the registry on first use.
    pub(crate) fn lookup(&self, model: &Arc<str>) -> Option<Arc<CircuitBreaker>> {
        let policy = self.policy_for(model)?;
        let key = BreakerKey {
            endpoint: self.endpoint.clone(),
            dependency: model.clone(),
        };
        Some(self.registry.get_or_create(key, || policy))
    }

    pub(crate) fn registry(&self) -> &Arc<BreakerRegistry> {
        &self.registry
    }

    fn policy_for(&self, model: &str) -> Option<CircuitBreakerPolicy> {
        self.overrides
            .iter()
            .find(|(name, _)| &**name == model)
            .map(|(_, policy)| policy.clone())
            .or_else(|| self.default_policy.clone())
    }
}
