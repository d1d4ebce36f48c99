//! Walking the chain: each model in turn, with its own breaker and retry loop, until one
//! answers or the error is one no later step takes.

use std::future::Future;
use std::sync::Arc;

use super::FallbackChain;
use crate::context::AgentContext;
use crate::error::AgentError;
use crate::reliability::events::{EventData, EventKind};
use crate::reliability::retry::RetryLoop;
use crate::reliability::run::RunState;

impl FallbackChain {
    /// Runs `op` on the primary through `retries`, then on each step whose classes match
    /// the error the previous model ended with.
    pub(crate) async fn walk<T, E, F, Fut>(
        &self,
        run: &Arc<RunState>,
        retries: &RetryLoop<'_>,
        op: &mut F,
    ) -> Result<T, AgentError>
    where
        F: FnMut(AgentContext) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<AgentError>,
    {
        let mut model = self.primary().clone();
        let mut position = 0;
        let mut tried: Vec<Arc<str>> = Vec::new();
        loop {
            let (err, opened_breaker) = match retries.run(run, model.clone(), position, op).await {
                Ok(value) => return Ok(value),
                Err(failed) => (failed.error, failed.opened_breaker),
            };
            tried.push(model.clone());
            // Output already reached the caller: another model would start the answer
            // over, so the error (with the partial output) is final.
            let next = self
                .steps()
                .iter()
                .enumerate()
                .skip(position)
                .filter(|_| err.partial().is_none())
                // The failure that opened the breaker moves on as an open circuit does.
                .find(|(_, step)| opened_breaker || step.triggers_on(err.class()));
            let Some((index, step)) = next else {
                // A lone model keeps any list the body itself reported (strategies tried).
                if tried.len() > 1 || err.attempted().is_empty() {
                    return Err(err.with_attempted(tried));
                }
                return Err(err);
            };
            run.report(EventKind::Fallback, &model, |event| {
                event.data = EventData::Fallback {
                    to: step.model.clone(),
                };
                event.error = Some(err.clone());
            })
            .await;
            model = step.model.clone();
            position = index + 1;
            run.set_chain_position(position);
            run.set_max_tokens(0); // sized for the previous model's window
        }
    }
}
