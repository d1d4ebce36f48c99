//! Bounding a run by its total timeout: the whole fallback chain, every retry and sleep
//! included, must end before the run's deadline.

use std::future::Future;
use std::task::Poll;

use super::{OnTimeout, Stage, TimeoutPolicy, timeout_error};
use crate::error::AgentError;
use crate::reliability::events::{EventData, EventKind};
use crate::reliability::fallback::FallbackChain;
use crate::reliability::run::RunState;

/// Runs `work` (the walk of `chain`) until `run`'s deadline. A cut is a `timeout` error
/// naming the model the run was on and the models it tried, unless `on_timeout = warn`
/// lets the work finish anyway.
pub(crate) async fn bound_total<T>(
    work: impl Future<Output = Result<T, AgentError>>,
    run: &RunState,
    policy: &TimeoutPolicy,
    chain: &FallbackChain,
) -> Result<T, AgentError> {
    let mut work = std::pin::pin!(work);
    // Work that finishes on its first poll (a cache hit, a mock) never needs the timer,
    // so arm it only once the work has to wait.
    let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
    if let Poll::Ready(result) = first {
        return result;
    }
    if let Ok(result) = tokio::time::timeout_at(run.deadline, work.as_mut()).await {
        return result;
    }
    let position = run.chain_position();
    let model = chain.model_at(position);
    let err = timeout_error(
        Stage::Total,
        run.started.elapsed(),
        policy.limit(Stage::Total),
    )
    .with_model(model.clone())
    .with_attempted(chain.tried_through(position));
    run.report(EventKind::Timeout, model, |event| {
        event.data = EventData::Timeout {
            stage: Stage::Total,
        };
        event.error = Some(err.clone());
    })
    .await;
    match policy.on_timeout() {
        OnTimeout::Warn => {
            tracing::warn!(endpoint = %run.shared.endpoint, "run passed its total timeout; finishing anyway (on_timeout = warn)");
            work.await
        }
        OnTimeout::Fail | OnTimeout::Checkpoint => Err(err),
    }
}
