//! One durable run's journal as the body sees it: steps replayed from the store, new
//! steps written to it before their result is handed back.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{RunStore, StepRecord, wall_ms};
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass};
use crate::reliability::Stage;
use crate::reliability::timeout;

/// The journal of the run in progress, shared by its attempts.
pub(crate) struct Journal {
    store: Arc<dyn RunStore>,
    run_id: Arc<str>,
    /// Every step known, recorded before this process took the run or since.
    steps: Mutex<Vec<StepRecord>>,
    /// How far each write moves the run's lease.
    lease: Duration,
    /// The limit of one write (`checkpoint_ms`).
    write_limit: Duration,
    /// How many steps the store held when this process took the run.
    replayable: u32,
    /// Whether the run was taken from the store (a resume) rather than started here.
    resumed: bool,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("store", &self.store.name())
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl Journal {
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server starts runs
    pub(crate) fn new(
        store: Arc<dyn RunStore>,
        run_id: Arc<str>,
        steps: Vec<StepRecord>,
        (lease, write_limit): (Duration, Duration),
        resumed: bool,
    ) -> Self {
        let replayable = u32::try_from(steps.len()).unwrap_or(u32::MAX);
        Journal {
            store,
            run_id,
            steps: Mutex::new(steps),
            lease,
            write_limit,
            replayable,
            resumed,
        }
    }

    /// Whether the run was taken from the store (a resume) rather than started here.
    pub(crate) fn resumed(&self) -> bool {
        self.resumed
    }

    /// The run's id.
    pub(crate) fn run_id(&self) -> &Arc<str> {
        &self.run_id
    }

    /// How many steps the run had completed when this process took it.
    pub(crate) fn replayable(&self) -> u32 {
        self.replayable
    }

    /// How many steps the journal holds now.
    pub(crate) fn len(&self) -> u32 {
        let steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        u32::try_from(steps.len()).unwrap_or(u32::MAX)
    }

    /// The recorded output of step `index`, if the journal holds it; an error when the
    /// journal holds a different step there.
    fn replay(&self, index: u32, name: &str) -> Result<Option<Value>, AgentError> {
        let steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(step) = steps.iter().find(|s| s.index == index) else {
            return Ok(None);
        };
        if step.name != name {
            return Err(self.diverged(index, name, &step.name));
        }
        Ok(Some(step.output.clone()))
    }

    fn diverged(&self, index: u32, asked: &str, recorded: &str) -> AgentError {
        AgentError::new(
            ErrorClass::Other,
            format!(
                "durable run {} asked for step {index} `{asked}`, but its journal holds \
                 `{recorded}` there: the body must ask for the same steps in the same order \
                 on every run (branch on step results, never on the clock, randomness or \
                 outside state read outside a step)",
                self.run_id
            ),
        )
        .with_should_retry(false)
    }

    /// Writes `step` to the store, within the `checkpoint` limit, then keeps it.
    async fn record(&self, step: StepRecord) -> Result<(), AgentError> {
        let lease_until = wall_ms().saturating_add(millis(self.lease));
        let write = self
            .store
            .append(self.run_id.clone(), step.clone(), lease_until);
        let write = async { write.await.map_err(|err| self.write_failed(&err)) };
        timeout::run_stage(
            Stage::Checkpoint,
            self.write_limit,
            None,
            self.write_limit,
            write,
        )
        .await
        .map_err(|err| err.with_should_retry(false))?;
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        steps.push(step);
        Ok(())
    }

    fn write_failed(&self, err: &super::RunStoreError) -> AgentError {
        AgentError::new(
            ErrorClass::ConnectionError,
            format!(
                "durable run {}: a step's result could not be journaled ({err}); the run \
                 stops here and can be resumed",
                self.run_id
            ),
        )
        .with_should_retry(false)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where one attempt of the body is in the journal: the next step's index. Each
/// attempt starts from 0, so a retry or a fallback replays what earlier attempts did.
#[derive(Debug, Default)]
pub(crate) struct StepCursor(AtomicU32);

impl StepCursor {
    fn next(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// What a step recorded beside its output: the model call it was, if it was one.
pub(crate) type CallFacts = Option<(
    String,
    Option<crate::llm::Usage>,
    Option<rust_decimal::Decimal>,
)>;

impl AgentContext {
    /// Runs `work` as a step named `name` of a durable run: the first time, `work` runs
    /// and its result is journaled before it is returned; when the run runs again (a
    /// retry, a fallback, a resume), the journaled result is returned and `work` is
    /// dropped without running. Outside a durable endpoint this just awaits `work`.
    ///
    /// Put in a step whatever must not happen twice or must give the same answer on
    /// replay: a payment, an email, a read of the clock or of a database the body
    /// branches on. The result must be JSON ([`Serialize`] and [`DeserializeOwned`]); an
    /// error is not journaled, so a failed step runs again.
    ///
    /// ```
    /// use fastagentic::prelude::*;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), AgentError> {
    /// let ctx = AgentContext::detached("mock/fast");
    /// let order: u64 = ctx.step("place order", async { Ok::<_, AgentError>(42) }).await?;
    /// assert_eq!(order, 42);
    /// # Ok(()) }
    /// ```
    pub async fn step<T, E, F>(&self, name: &str, work: F) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        E: Into<AgentError>,
        F: Future<Output = Result<T, E>>,
    {
        let work = async { work.await.map(|t| (t, None)).map_err(Into::into) };
        self.journaled(name, work).await
    }

    /// Whether the run is durable: its steps are journaled and replayed.
    pub fn is_durable(&self) -> bool {
        self.journal().is_some()
    }

    /// The durable run's id, when the run is durable.
    pub fn durable_run_id(&self) -> Option<&str> {
        self.journal().map(|(journal, _)| &**journal.run_id())
    }

    /// [`step`](Self::step) for the framework's own steps, which know the model call
    /// they were.
    pub(crate) async fn journaled<T, F>(&self, name: &str, work: F) -> Result<T, AgentError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<(T, CallFacts), AgentError>>,
    {
        let Some((journal, cursor)) = self.journal() else {
            return work.await.map(|(t, _)| t);
        };
        let index = cursor.next();
        if let Some(output) = journal.replay(index, name)? {
            return serde_json::from_value(output).map_err(|err| {
                AgentError::new(
                    ErrorClass::Other,
                    format!(
                        "durable run {}: step {index} `{name}` holds a result of another \
                         shape ({err}); a run journaled by an older version of the body \
                         cannot be replayed by this one",
                        journal.run_id()
                    ),
                )
                .with_should_retry(false)
            });
        }
        let (value, call) = work.await?;
        let output = serde_json::to_value(&value).map_err(|err| {
            AgentError::new(
                ErrorClass::Other,
                format!("step `{name}` returned a result that is not JSON: {err}"),
            )
        })?;
        let mut step = StepRecord::new(index, name, output);
        if let Some((model, usage, cost)) = call {
            step = step.with_call(model, usage, cost);
        }
        journal.record(step).await?;
        Ok(value)
    }
}
