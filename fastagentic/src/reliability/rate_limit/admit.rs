//! Admission: the app-wide limiter, then the endpoint's, each reserving the request's
//! slot (and its estimated tokens) before the run may start.

use std::sync::Arc;

use tokio::time::Instant;

use super::shared::{self, Shared};
use super::{Admission, Identity, RateLimiter};
use crate::error::{AgentError, ErrorDetail};
use crate::reliability::events::{EventData, EventKind};
use crate::reliability::run::RunState;

/// What a run is admitted with: one admission per limiter that has limits, reconciled
/// with the tokens the run used once it is over.
pub(crate) type Admissions<'a> = [Option<Admission<'a>>; 2];

/// Passes `limiters` in order. The common case — in-memory cells, a slot free now —
/// stays synchronous; only a wait in `delay`/`queue` mode, or a limiter shared through a
/// store, awaits. A refusal is reported against `model` (the run's primary) and hands
/// back what the earlier limiters reserved.
pub(crate) async fn admit<'a>(
    limiters: [Option<&'a RateLimiter>; 2],
    identity: Identity<'a>,
    estimated_tokens: Option<u32>,
    run: &RunState,
    model: &Arc<str>,
    now: Instant,
) -> Result<Admissions<'a>, AgentError> {
    let mut admissions = [None, None];
    let mut local = limiters;
    if limiters.iter().flatten().any(|limiter| limiter.is_shared()) {
        let shared = limiters.map(|l| l.filter(|limiter| limiter.is_shared()));
        match Box::pin(shared::admit(
            shared,
            identity,
            estimated_tokens,
            run.deadline,
        ))
        .await
        {
            Ok(Shared::Admitted(taken)) => {
                admissions = taken;
                local = limiters.map(|l| l.filter(|limiter| !limiter.is_shared()));
            }
            // Every limiter decides on its own cells until the store answers again.
            Ok(Shared::FailedOpen) => {}
            Err(err) => {
                refused(run, model, &err).await;
                return Err(err);
            }
        }
    }
    let mut now = now;
    for (slot, limiter) in admissions.iter_mut().zip(local) {
        let Some(limiter) = limiter else { continue };
        let admitted = match limiter.reserve_local(identity, estimated_tokens, now, run.deadline) {
            Ok(reservation) => match reservation.ready() {
                Ok(admission) => Ok(admission),
                Err(pending) => {
                    let admitted = pending.wait().await;
                    now = Instant::now(); // the wait moved the clock on
                    admitted
                }
            },
            Err(err) => Err(err),
        };
        match admitted {
            // Armed until every limiter has admitted: a cancellation while a later
            // limiter makes the run wait hands this slot back too.
            Ok(admission) => *slot = Some(admission.armed()),
            Err(err) => {
                refused(run, model, &err).await;
                for admission in admissions.into_iter().flatten() {
                    admission.release();
                }
                return Err(err);
            }
        }
    }
    Ok(admissions.map(|admission| admission.map(Admission::commit)))
}

/// Reconciles every admission's token estimate with what the run used.
pub(crate) fn reconcile(admissions: Admissions<'_>, tokens_used: u64) {
    for admission in admissions.into_iter().flatten() {
        admission.reconcile(tokens_used);
    }
}

async fn refused(run: &RunState, model: &Arc<str>, err: &AgentError) {
    let limit_type = match err.detail() {
        Some(ErrorDetail::RateLimited { limit_type, .. }) => Some(*limit_type),
        _ => None,
    };
    run.report(EventKind::RateLimit, model, |event| {
        event.data = EventData::RateLimit { limit_type };
        event.error = Some(err.clone());
    })
    .await;
}
