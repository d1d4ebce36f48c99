//! The retry loop of one model: breaker → execute, until an attempt succeeds or
//! something stops the loop (the error, the policy, the budget, the clock, a listener,
//! an opening breaker).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{RetryBudget, RetryDecision, RetryPolicy, StopReason, overflow};
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::reliability::circuit_breaker::{BreakerGuard, BreakerSet, CircuitBreaker};
use crate::reliability::events::{EventData, EventKind, Steering};
use crate::reliability::execute::execute;
use crate::reliability::run::RunState;

/// What the loop needs from its pipeline: the policy, the shared budget, and the
/// breakers (a listener may switch the loop to a model of its own).
pub(crate) struct RetryLoop<'p> {
    pub(crate) policy: &'p RetryPolicy,
    pub(crate) budget: Option<&'p RetryBudget>,
    pub(crate) breakers: &'p BreakerSet,
}

/// Where the loop is on its model.
struct Attempt {
    model: Arc<str>,
    breaker: Option<Arc<CircuitBreaker>>,
    number: u32,
    consecutive_overloads: u32,
    overflow_recovered: bool,
}

impl Attempt {
    /// Overloads in a row end the loop sooner (the policy's overload rule); any other
    /// error breaks the row.
    fn count_overload(&mut self, err: &AgentError) {
        if err.class() == ErrorClass::Overloaded {
            self.consecutive_overloads += 1;
        } else {
            self.consecutive_overloads = 0;
        }
    }
}

/// A failed attempt (or loop), and whether its failure opened the model's breaker.
pub(crate) struct Failed {
    pub(crate) error: AgentError,
    /// The error is the request's own, and it opened the breaker: the chain may fall back
    /// as from an open circuit, while the answer, if it does not, is the error itself.
    pub(crate) opened_breaker: bool,
}

impl From<AgentError> for Failed {
    fn from(error: AgentError) -> Self {
        Failed {
            error,
            opened_breaker: false,
        }
    }
}

/// Whether sleeping `delay` still leaves the run time to make its next attempt.
pub(super) fn fits(run: &RunState, delay: Duration) -> bool {
    delay < run.deadline.saturating_duration_since(Instant::now())
}

impl RetryLoop<'_> {
    /// Runs `op` on `model`, the chain's model at `position`, until success or a stop.
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        model: Arc<str>,
        position: usize,
        op: &mut F,
    ) -> Result<T, Failed>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let mut attempt = Attempt {
            model,
            breaker: self.breakers.at(position),
            number: 0,
            consecutive_overloads: 0,
            overflow_recovered: false,
        };
        loop {
            attempt.number += 1;
            let Failed {
                error: err,
                opened_breaker,
            } = match self.attempt(run, &attempt, op).await {
                Ok(value) => {
                    if attempt.number > 1 {
                        retry_end(run, &attempt, None, None).await;
                    }
                    return Ok(value);
                }
                Err(failed) => failed,
            };
            stage_timeout_event(run, &attempt, &err).await;
            if err.class() == ErrorClass::CircuitOpen {
                return Err(err.into()); // fail fast; the chain decides about fallback
            }
            if opened_breaker && attempt.breaker.is_some() {
                // This failure opened the breaker: the remaining attempts would fail
                // fast, so skip them (and their sleeps) and let the chain fall back. The
                // request keeps its own error: the open circuit is the next one's.
                end_retries(run, &attempt, &err, StopReason::CircuitOpened).await;
                return Err(Failed {
                    error: err,
                    opened_breaker: true,
                });
            }
            attempt.count_overload(&err);
            if overflow::recover(self.policy, run, attempt.overflow_recovered, &err) {
                attempt.overflow_recovered = true;
                continue;
            }
            let delay = match self.next_delay(run, &attempt, &err) {
                Ok(delay) => delay,
                Err(reason) => {
                    end_retries(run, &attempt, &err, reason).await;
                    return Err(err.into());
                }
            };
            let steer = announce_retry(run, &attempt, &err, delay).await;
            if steer.is_aborted() {
                end_retries(run, &attempt, &err, StopReason::Aborted).await;
                return Err(err.into());
            }
            let delay = steer.delay_override().unwrap_or(delay);
            self.steer_model(run, &mut attempt, &steer);
            if !fits(run, delay) {
                end_retries(run, &attempt, &err, StopReason::NoTimeLeft).await;
                return Err(err.into());
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: admitted and recorded by the model's breaker.
    async fn attempt<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        attempt: &Attempt,
        op: &mut F,
    ) -> Result<T, Failed>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let guard = BreakerGuard::admit(attempt.breaker.as_deref(), run, &attempt.model)
            .await
            .map_err(|error| Failed {
                error,
                opened_breaker: false,
            })?;
        let result = execute(run, &attempt.model, attempt.number, op).await;
        let opened_breaker = guard.record(run, &attempt.model, &result).await;
        result.map_err(|error| Failed {
            error,
            opened_breaker,
        })
    }

    /// The delay before the next attempt, or why there is none. The budget is charged
    /// last, so a retry that will not happen costs nothing.
    fn next_delay(
        &self,
        run: &RunState,
        attempt: &Attempt,
        err: &AgentError,
    ) -> Result<Duration, StopReason> {
        let delay = match self
            .policy
            .decide(err, attempt.number, attempt.consecutive_overloads)
        {
            RetryDecision::Retry { delay, .. } => delay,
            RetryDecision::Stop(reason) => return Err(reason),
        };
        // A delay that outlasts the run is not slept: the error moves on now.
        if !fits(run, delay) {
            return Err(StopReason::NoTimeLeft);
        }
        if self.budget.is_some_and(|b| !b.withdraw()) {
            return Err(StopReason::BudgetExhausted);
        }
        Ok(delay)
    }

    /// Moves the loop to the model a listener asked for, behind that model's breaker.
    fn steer_model(&self, run: &RunState, attempt: &mut Attempt, steer: &Steering) {
        let Some(model) = steer.model_override() else {
            return;
        };
        if *model == attempt.model {
            return;
        }
        attempt.breaker = self.breakers.lookup(model);
        attempt.model = model.clone();
        attempt.consecutive_overloads = 0;
        run.set_max_tokens(0); // sized for the old model's window
    }
}

/// Reports the end of a retry loop, unless nothing was retried for the plain reason
/// that the error is not retryable or there were no retries to make.
async fn end_retries(run: &RunState, attempt: &Attempt, err: &AgentError, reason: StopReason) {
    let uneventful = matches!(reason, StopReason::NotRetryable | StopReason::Exhausted);
    if attempt.number > 1 || !uneventful {
        retry_end(run, attempt, Some(err), Some(reason)).await;
    }
}

/// Reports a stage deadline (an LLM call, a tool call) that cut this attempt.
async fn stage_timeout_event(run: &RunState, attempt: &Attempt, err: &AgentError) {
    let Some(ErrorDetail::Timeout { stage, .. }) = err.detail() else {
        return;
    };
    run.report(EventKind::Timeout, &attempt.model, |event| {
        event.attempt = attempt.number;
        event.data = EventData::Timeout { stage: *stage };
        event.error = Some(err.clone());
    })
    .await;
}

/// Tells the listeners a retry follows after `delay`; they may steer it.
async fn announce_retry(
    run: &RunState,
    attempt: &Attempt,
    err: &AgentError,
    delay: Duration,
) -> Steering {
    run.report(EventKind::Retry, &attempt.model, |event| {
        event.attempt = attempt.number;
        event.error = Some(err.clone());
        event.data = EventData::Retry { next_delay: delay };
    })
    .await
}

async fn retry_end(
    run: &RunState,
    attempt: &Attempt,
    err: Option<&AgentError>,
    stop_reason: Option<StopReason>,
) {
    run.report(EventKind::RetryEnd, &attempt.model, |event| {
        event.attempt = attempt.number;
        event.data = EventData::RetryEnd {
            succeeded: err.is_none(),
            stop_reason,
        };
        event.error = err.cloned();
    })
    .await;
}
