//! Context-overflow recovery: when the provider says by how much a request overflowed
//! the model's window, lower `max_tokens` to fit and try again at once, once.

use std::time::Duration;

use super::RetryPolicy;
use super::attempts::fits;
use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::reliability::run::RunState;

/// Sets the run's `max_tokens` to the room `err` reports and says whether to retry now;
/// `false` when the policy, the error, the floor or the clock rule it out.
pub(super) fn recover(
    policy: &RetryPolicy,
    run: &RunState,
    already_recovered: bool,
    err: &AgentError,
) -> bool {
    if err.class() != ErrorClass::ContextOverflow
        || already_recovered
        || policy.no_retry_on().contains(ErrorClass::ContextOverflow)
        || err.should_retry() == Some(false)
        || !fits(run, Duration::ZERO)
    {
        return false;
    }
    let Some(ErrorDetail::ContextOverflow {
        input_tokens: Some(input),
        context_limit: Some(limit),
        ..
    }) = err.detail()
    else {
        return false;
    };
    let room = limit.saturating_sub(*input);
    let floor = u64::from(policy.context_overflow_floor());
    if room < floor {
        return false;
    }
    run.set_max_tokens(u32::try_from(room).unwrap_or(u32::MAX));
    true
}
