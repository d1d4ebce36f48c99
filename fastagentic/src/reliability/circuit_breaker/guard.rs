//! The breaker's part in one attempt: admit it (or refuse it fast), then record how it
//! went and decide whether the model is to blame.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{BreakerPermit, CallOutcome, CircuitBreaker, CircuitState, Transition};
use crate::error::{AgentError, ErrorDetail};
use crate::reliability::events::EventKind;
use crate::reliability::run::RunState;
use crate::reliability::timeout::Stage;

/// One attempt's pass through the model's breaker; a model without a breaker gets an
/// empty guard that admits everything and records nothing.
pub(crate) struct BreakerGuard<'b> {
    permit: Option<BreakerPermit<'b>>,
    /// When the call started, read only when a slow-call threshold needs it.
    started: Option<Instant>,
}

impl<'b> BreakerGuard<'b> {
    /// Asks `breaker` to let an attempt on `model` through: a refusal is the
    /// `circuit_open` error; a first probe reports the half-open transition.
    pub(crate) async fn admit(
        breaker: Option<&'b CircuitBreaker>,
        run: &RunState,
        model: &Arc<str>,
    ) -> Result<Self, AgentError> {
        let Some(breaker) = breaker else {
            return Ok(BreakerGuard {
                permit: None,
                started: None,
            });
        };
        let permit = match breaker.is_shared() {
            true => breaker.acquire_fleet().await?,
            false => breaker.acquire()?,
        };
        report(run, model, permit.transition(), None).await;
        // Only a slow-call threshold needs the call's duration; skip the clock otherwise.
        let started = breaker.measures_latency().then(Instant::now);
        Ok(BreakerGuard {
            permit: Some(permit),
            started,
        })
    }

    /// Records the attempt's outcome and reports any transition; `true` when this
    /// outcome opened the breaker.
    pub(crate) async fn record<T>(
        self,
        run: &RunState,
        model: &Arc<str>,
        result: &Result<T, AgentError>,
    ) -> bool {
        let Some(permit) = self.permit else {
            return false;
        };
        let outcome = match result {
            Ok(_) => CallOutcome::Success {
                elapsed: self.started.map_or(Duration::ZERO, |t| t.elapsed()),
            },
            // Our own deadlines for tools, checkpoints, strategies or the whole run say
            // nothing about the model's health: leave the breaker out of it.
            Err(err) if !blames_the_model(err) => return false,
            Err(err) => CallOutcome::Failure(err.class()),
        };
        let breaker = permit.breaker;
        let transition = match breaker.is_shared() {
            true => breaker.record_fleet(permit, outcome).await,
            false => permit.record(outcome),
        };
        report(run, model, transition, result.as_ref().err()).await;
        transition.is_some_and(|t| t.to == CircuitState::Open)
    }
}

/// Whether a failure counts against the model's breaker: everything but our own
/// deadlines for work that is not the model's (tools, checkpoints, strategies, the run).
fn blames_the_model(err: &AgentError) -> bool {
    match err.detail() {
        Some(ErrorDetail::Timeout { stage, .. }) => {
            matches!(stage, Stage::LlmCall | Stage::StreamIdle)
        }
        _ => true,
    }
}

/// Reports a breaker transition, with the failure that opened (or re-opened) it.
async fn report(
    run: &RunState,
    model: &Arc<str>,
    transition: Option<Transition>,
    cause: Option<&AgentError>,
) {
    let Some(transition) = transition else { return };
    let kind = match transition.to {
        CircuitState::Open => EventKind::CircuitOpen,
        CircuitState::HalfOpen => EventKind::CircuitHalfOpen,
        CircuitState::Closed => EventKind::CircuitClose,
    };
    run.report(kind, model, |event| event.error = cause.cloned())
        .await;
}
