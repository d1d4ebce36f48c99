//! [`MemoryRunStore`]: runs kept in the process, for tests and for builds without SQLite.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use super::{Claim, Created, NewRun, RunRecord, RunStatus, RunStore, RunStoreError, RunSummary};
use super::{StepRecord, ready, wall_ms};
use crate::llm::BoxFuture;

/// Runs kept in this process's memory: they survive a timeout and a failure, so they can
/// be resumed, but not the process. Use [`SqliteRunStore`](super::SqliteRunStore) for
/// runs that must survive a crash.
#[derive(Debug, Default)]
pub struct MemoryRunStore {
    // One lock for every run: only durable endpoints come here, once per step, and each
    // holding is a map lookup.
    runs: Mutex<HashMap<Arc<str>, RunRecord>>,
}

impl MemoryRunStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryRunStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Arc<str>, RunRecord>) -> T) -> T {
        f(&mut self.runs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn no_run(run_id: &str) -> RunStoreError {
    RunStoreError::Io {
        store: "memory",
        message: format!("no run {run_id}"),
    }
}

impl RunStore for MemoryRunStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn create(&self, new: NewRun) -> BoxFuture<'_, Result<Created, RunStoreError>> {
        ready(Ok(self.with(|runs| {
            let existing = new.idempotency_key.as_ref().and_then(|key| {
                runs.values().find(|run| {
                    run.endpoint == new.endpoint && run.idempotency_key.as_ref() == Some(key)
                })
            });
            if let Some(existing) = existing {
                return Created::Existing(Box::new(existing.clone()));
            }
            let record = RunRecord {
                run_id: new.id.clone(),
                endpoint: new.endpoint,
                status: RunStatus::Running,
                input: new.input,
                idempotency_key: new.idempotency_key,
                user: new.user,
                tenant: new.tenant,
                steps: Vec::new(),
                result: None,
                created_ms: new.now_ms,
                updated_ms: new.now_ms,
                lease_until_ms: new.lease_until_ms,
            };
            runs.insert(new.id, record);
            Created::New
        })))
    }

    fn append(
        &self,
        run_id: Arc<str>,
        step: StepRecord,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        ready(self.with(|runs| {
            let run = runs.get_mut(&run_id).ok_or_else(|| no_run(&run_id))?;
            if run.steps.iter().any(|s| s.index == step.index) {
                return Err(RunStoreError::StepExists {
                    run_id,
                    index: step.index,
                });
            }
            run.updated_ms = step.completed_ms;
            run.lease_until_ms = lease_until_ms;
            run.steps.push(step);
            Ok(())
        }))
    }

    fn claim(
        &self,
        run_id: Arc<str>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<Claim, RunStoreError>> {
        ready(Ok(self.with(|runs| {
            let Some(run) = runs.get_mut(&run_id) else {
                return Claim::Unknown;
            };
            match run.clone().claimed(now_ms, lease_until_ms) {
                Ok(claimed) => {
                    *run = claimed.clone();
                    Claim::Claimed(Box::new(claimed))
                }
                Err(answer) => answer,
            }
        })))
    }

    fn finish(
        &self,
        run_id: Arc<str>,
        status: RunStatus,
        result: Option<Value>,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        ready(self.with(|runs| {
            let run = runs.get_mut(&run_id).ok_or_else(|| no_run(&run_id))?;
            run.status = status;
            run.result = result;
            run.lease_until_ms = 0;
            run.updated_ms = wall_ms();
            Ok(())
        }))
    }

    fn get(&self, run_id: Arc<str>) -> BoxFuture<'_, Result<Option<RunRecord>, RunStoreError>> {
        ready(Ok(self.with(|runs| runs.get(&run_id).cloned())))
    }

    fn list(
        &self,
        status: Option<RunStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, RunStoreError>> {
        ready(Ok(self.with(|runs| {
            let mut found: Vec<RunSummary> = runs
                .values()
                .filter(|run| status.is_none_or(|s| run.status == s))
                .map(RunRecord::summary)
                .collect();
            found.sort_by(|a, b| {
                b.created_ms
                    .cmp(&a.created_ms)
                    .then(b.run_id.cmp(&a.run_id))
            });
            found.truncate(limit);
            found
        })))
    }

    fn delete_ended_before(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, RunStoreError>> {
        ready(Ok(self.with(|runs| {
            let before = runs.len();
            runs.retain(|_, run| {
                let ended = matches!(run.status, RunStatus::Completed | RunStatus::Failed);
                !(ended && run.updated_ms < before_ms)
            });
            (before - runs.len()) as u64
        })))
    }
}
