//! Admission through a [`StateStore`]: every limit of a request in one round trip, and
//! the store's [`FailMode`] when it cannot be reached.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Admission, Backend, Identity, MINUTE_NANOS, RateLimiter, Rule};
use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::metrics::Metrics;
use crate::reliability::rate_limit::{LimitScope, LimitType, OnLimit, RateLimitSnapshot};
use crate::state::{CellAdjust, CellTake, FailMode, StateStore, StoreError, TakeOutcome};

const WINDOW: Duration = Duration::from_nanos(MINUTE_NANOS);

/// A limiter's link to the shared store.
#[derive(Debug)]
pub(crate) struct Sharing {
    store: Arc<dyn StateStore>,
    /// Whose limits these are in the store: `global`, or the endpoint's path.
    namespace: Arc<str>,
    metrics: Arc<Metrics>,
}

/// What the store said about a request: admitted, or the store failed open and the
/// limiters' own cells decide.
pub(crate) enum Shared<'a> {
    Admitted([Option<Admission<'a>>; 2]),
    FailedOpen,
}

impl RateLimiter {
    /// This limiter with its cells in `store`, so every process pointing at the same
    /// store shares its limits. `namespace` tells apart the limiters that share one
    /// store (an [`App`](crate::App) uses `global` and each endpoint's path). Store
    /// errors are counted in [`metrics::global`](crate::metrics::global).
    #[must_use]
    pub fn with_store(mut self, store: Arc<dyn StateStore>, namespace: &str) -> Self {
        self.share(store, namespace, crate::metrics::global().clone());
        self
    }

    /// Keeps this limiter's cells in `store`, under `namespace`; store errors are
    /// counted in `metrics`.
    pub(crate) fn share(
        &mut self,
        store: Arc<dyn StateStore>,
        namespace: &str,
        metrics: Arc<Metrics>,
    ) {
        self.shared = Some(Sharing {
            store,
            namespace: namespace.into(),
            metrics,
        });
    }

    /// Whether the cells live in a shared store.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The store key of `rule`'s cell for `identity`; `None` when the rule is keyed on an
    /// identity the request does not have.
    fn cell_key(&self, sharing: &Sharing, rule: &Rule, identity: Identity<'_>) -> Option<String> {
        let (scope, kind) = (rule.scope.as_str(), rule.limit_type.as_str());
        let namespace = &sharing.namespace;
        match rule.scope {
            LimitScope::Global | LimitScope::Endpoint => {
                Some(format!("rl:{namespace}:{scope}:{kind}"))
            }
            LimitScope::User | LimitScope::Tenant => {
                let who = rule.key(identity)?;
                Some(format!("rl:{namespace}:{scope}:{kind}:{who}"))
            }
        }
    }

    /// Moves this limiter's shared cells by `units(rule)` in the background: refunds and
    /// reconciling must not hold up the answer.
    pub(super) fn adjust_shared(&self, identity: Identity<'_>, units: impl Fn(&Rule) -> i64) {
        let Some(sharing) = &self.shared else { return };
        let adjustments: Vec<CellAdjust> = (self.rules.iter())
            .filter_map(|rule| {
                let units = units(rule);
                let key = (units != 0).then(|| self.cell_key(sharing, rule, identity))??;
                Some(CellAdjust {
                    key,
                    limit: rule.rate.limit(),
                    window: WINDOW,
                    units,
                })
            })
            .collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if adjustments.is_empty() {
            return;
        }
        let (store, metrics) = (sharing.store.clone(), sharing.metrics.clone());
        runtime.spawn(async move {
            if let Err(err) = store.adjust(&adjustments).await {
                metrics.state_store_error(&*store, "adjust", &err);
            }
        });
    }
}

/// One cell of the round trip, and where it came from.
struct Planned<'a> {
    slot: usize,
    rule: &'a Rule,
}

/// Admits one request through every shared limiter of `limiters` in one store round
/// trip, waiting (in `delay`/`queue` mode) for a slot the store reserved in the future.
pub(crate) async fn admit<'a>(
    limiters: [Option<&'a RateLimiter>; 2],
    identity: Identity<'a>,
    tokens: Option<u32>,
    deadline: Instant,
) -> Result<Shared<'a>, AgentError> {
    let Some(sharing) = limiters.iter().flatten().find_map(|l| l.shared.as_ref()) else {
        return Ok(Shared::FailedOpen);
    };
    let now = Instant::now();
    let mut takes = Vec::new();
    let mut planned = Vec::new();
    let mut admissions: [Option<Admission<'a>>; 2] = [None, None];
    for (slot, limiter) in limiters.iter().enumerate() {
        let Some(limiter) = limiter else { continue };
        let tokens = u64::from(tokens.unwrap_or(limiter.token_estimate));
        let max_wait = match limiter.on_limit {
            OnLimit::Reject => Duration::ZERO,
            OnLimit::Delay | OnLimit::Queue => deadline.saturating_duration_since(now),
        };
        for rule in &limiter.rules {
            let units = match rule.limit_type {
                LimitType::Rpm => 1,
                LimitType::Tpm => tokens,
            };
            if units > rule.rate.limit() {
                return Err(rule.too_large(units));
            }
            let Some(key) = limiter.cell_key(sharing, rule, identity) else {
                continue;
            };
            takes.push(CellTake {
                key,
                limit: rule.rate.limit(),
                window: WINDOW,
                units,
                max_wait,
            });
            planned.push(Planned { slot, rule });
        }
        admissions[slot] = Some(Admission {
            limiter,
            identity,
            tokens,
            snapshot: None,
            armed: true,
            backend: Backend::Shared,
        });
    }
    if takes.is_empty() {
        return Ok(Shared::Admitted(admissions));
    }
    let store = &sharing.store;
    let states = match store.take(&takes).await {
        Ok(TakeOutcome::Taken(states)) if states.len() == planned.len() => states,
        Ok(TakeOutcome::Taken(states)) => {
            let err = StoreError::Protocol {
                store: store.name(),
                answer: format!("{} cell states for {} cells", states.len(), planned.len()),
            };
            return failed(sharing, &err, admissions);
        }
        Ok(TakeOutcome::Refused {
            index,
            wait,
            remaining,
        }) => {
            // Nothing was taken: the admissions must not refund anything.
            disarm(&mut admissions);
            let Some(refusing) = planned.get(index) else {
                let err = StoreError::Protocol {
                    store: store.name(),
                    answer: format!("a refusal by cell {index} of {}", planned.len()),
                };
                return failed(sharing, &err, admissions);
            };
            let units = takes[index].units;
            return Err(refusing.rule.refusal(remaining, units, super::nanos(wait)));
        }
        Err(err) => return failed(sharing, &err, admissions),
    };
    let mut longest: Option<(Duration, &Planned<'a>)> = None;
    for (state, plan) in states.iter().zip(&planned) {
        if plan.rule.limit_type == LimitType::Rpm
            && let Some(admission) = &mut admissions[plan.slot]
        {
            admission.note_snapshot(RateLimitSnapshot {
                limit: plan.rule.rate.limit(),
                remaining: state.remaining,
                reset: state.reset,
            });
        }
        if !state.wait.is_zero() && longest.is_none_or(|(wait, _)| state.wait > wait) {
            longest = Some((state.wait, plan));
        }
    }
    if let Some((wait, plan)) = longest
        && let Some(limiter) = limiters[plan.slot]
    {
        // Dropped while waiting, the armed admissions hand their units back.
        let _slot = limiter.enter_queue(plan.rule, super::nanos(wait))?;
        tokio::time::sleep(wait).await;
    }
    Ok(Shared::Admitted(admissions))
}

/// The store failed: counted, then open (the limiters' own cells decide) or closed.
fn failed<'a>(
    sharing: &Sharing,
    err: &StoreError,
    mut admissions: [Option<Admission<'a>>; 2],
) -> Result<Shared<'a>, AgentError> {
    disarm(&mut admissions);
    let store = &*sharing.store;
    sharing.metrics.state_store_error(store, "take", err);
    match store.fail_mode() {
        FailMode::Open => Ok(Shared::FailedOpen),
        FailMode::Closed => Err(AgentError::new(
            ErrorClass::ConnectionError,
            format!(
                "{err}; this app's rate limits are shared through it and it fails closed, so \
                 requests are refused until it answers again (FailMode::Open would let each \
                 replica enforce its limits alone meanwhile)"
            ),
        )
        .with_retry_after(Duration::from_secs(1))
        .with_detail(ErrorDetail::StateStore {
            store: store.name(),
        })),
    }
}

fn disarm(admissions: &mut [Option<Admission<'_>>; 2]) {
    for admission in admissions.iter_mut().flatten() {
        admission.armed = false;
    }
}
