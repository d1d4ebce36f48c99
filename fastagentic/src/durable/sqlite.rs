//! [`SqliteRunStore`]: runs and their journals in one SQLite file.
//!
//! The file is in WAL mode with `synchronous = NORMAL`: a committed step survives the
//! process being killed at any instant (a write cut half-way is rolled back on the next
//! open, so the journal ends at the last whole step), while a power cut may lose the last
//! steps committed before it, which then run again on resume. Each step is one short
//! transaction on the calling task: a few tens of microseconds, less than handing it to
//! a blocking thread would cost; waits for the file's lock are bounded by `busy_timeout`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

use super::row::{
    RUN_COLUMNS, RawRun, RawStep, RawSummary, STEP_COLUMNS, json, schema, usage_json,
};
use super::{Claim, Created, NewRun, RunRecord, RunStatus, RunStore, RunStoreError, RunSummary};
use super::{StepRecord, ready, wall_ms};
use crate::llm::BoxFuture;

/// Durable runs in one SQLite file (feature `sqlite`, on by default; SQLite is compiled
/// in, nothing to install). Several processes on one host may share the file; for
/// replicas on several hosts use a server database.
#[derive(Debug)]
pub struct SqliteRunStore {
    path: PathBuf,
    // SQLite lets one writer in at a time anyway; the lock keeps the connection's
    // statements from interleaving.
    connection: Mutex<Connection>,
}

impl SqliteRunStore {
    /// Opens (creating it and its tables if needed) the store in the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RunStoreError> {
        let path = path.as_ref().to_path_buf();
        let connection = Connection::open(&path).map_err(|err| io(&err))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(|err| io(&err))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|err| io(&err))?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|err| io(&err))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|err| io(&err))?;
        connection
            .execute_batch(&schema("INTEGER"))
            .map_err(|err| io(&err))?;
        Ok(SqliteRunStore {
            path,
            connection: Mutex::new(connection),
        })
    }

    /// The file it keeps runs in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bounds each wait for the file's lock (held by another process writing): a write
    /// that cannot start within `limit` fails instead of hanging. Default 5 s.
    pub fn lock_timeout(self, limit: Duration) -> Result<Self, RunStoreError> {
        self.with(|c| c.busy_timeout(limit))
            .map_err(|err| io(&err))?;
        Ok(self)
    }

    /// Runs `f` on the connection, holding it.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }
}

fn io(err: &rusqlite::Error) -> RunStoreError {
    RunStoreError::Io {
        store: "sqlite",
        message: err.to_string(),
    }
}

/// The run `run_id` with its journal, read inside `c`'s current transaction.
fn load(c: &Connection, run_id: &str) -> Result<Option<RunRecord>, RunStoreError> {
    let query = format!("SELECT {RUN_COLUMNS} FROM fastagentic_runs WHERE run_id = ?1");
    let row = c
        .query_row(&query, [run_id], read_run)
        .optional()
        .map_err(|err| io(&err))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut statement = c
        .prepare_cached(&format!(
            "SELECT {STEP_COLUMNS} FROM fastagentic_steps WHERE run_id = ?1 ORDER BY idx"
        ))
        .map_err(|err| io(&err))?;
    let steps = statement
        .query_map([run_id], read_step)
        .map_err(|err| io(&err))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|err| io(&err))?;
    let steps = steps
        .into_iter()
        .map(|step| step.parse(run_id))
        .collect::<Result<Vec<_>, _>>()?;
    row.parse(steps).map(Some)
}

/// A `fastagentic_runs` row as SQLite gives it.
fn read_run(row: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        run_id: row.get(0)?,
        endpoint: row.get(1)?,
        status: row.get(2)?,
        input: row.get(3)?,
        idempotency_key: row.get(4)?,
        user: row.get(5)?,
        tenant: row.get(6)?,
        result: row.get(7)?,
        created_ms: row.get(8)?,
        updated_ms: row.get(9)?,
        lease_until_ms: row.get(10)?,
    })
}

/// A `fastagentic_steps` row as SQLite gives it.
fn read_step(row: &Row<'_>) -> rusqlite::Result<RawStep> {
    Ok(RawStep {
        index: row.get(0)?,
        name: row.get(1)?,
        output: row.get(2)?,
        model: row.get(3)?,
        usage: row.get(4)?,
        cost_usd: row.get(5)?,
        completed_ms: row.get(6)?,
    })
}

impl RunStore for SqliteRunStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn create(&self, new: NewRun) -> BoxFuture<'_, Result<Created, RunStoreError>> {
        ready(self.with(|c| create(c, &new)))
    }

    fn append(
        &self,
        run_id: Arc<str>,
        step: StepRecord,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        ready(self.with(|c| append(c, &run_id, &step, lease_until_ms)))
    }

    fn claim(
        &self,
        run_id: Arc<str>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<Claim, RunStoreError>> {
        ready(self.with(|c| claim(c, &run_id, now_ms, lease_until_ms)))
    }

    fn finish(
        &self,
        run_id: Arc<str>,
        status: RunStatus,
        result: Option<Value>,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        let done = self.with(|c| {
            c.execute(
                "UPDATE fastagentic_runs SET status = ?2, result = ?3, lease_until_ms = 0, \
                 updated_ms = ?4 WHERE run_id = ?1",
                params![
                    &*run_id,
                    status.as_str(),
                    result.as_ref().map(json),
                    wall_ms()
                ],
            )
        });
        ready(done.map(drop).map_err(|err| io(&err)))
    }

    fn get(&self, run_id: Arc<str>) -> BoxFuture<'_, Result<Option<RunRecord>, RunStoreError>> {
        ready(self.with(|c| load(c, &run_id)))
    }

    fn list(
        &self,
        status: Option<RunStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, RunStoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT r.run_id, r.endpoint, r.status, r.created_ms, r.updated_ms, \
                 (SELECT COUNT(*) FROM fastagentic_steps s WHERE s.run_id = r.run_id) \
                 FROM fastagentic_runs r WHERE (?1 IS NULL OR r.status = ?1) \
                 ORDER BY r.created_ms DESC, r.run_id DESC LIMIT ?2",
            )?;
            let rows =
                statement.query_map(params![status.map(RunStatus::as_str), limit], |row| {
                    Ok(RawSummary {
                        run_id: row.get(0)?,
                        endpoint: row.get(1)?,
                        status: row.get(2)?,
                        created_ms: row.get(3)?,
                        updated_ms: row.get(4)?,
                        steps: row.get(5)?,
                    })
                })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        });
        let summaries = found
            .map_err(|err| io(&err))
            .and_then(|rows| rows.into_iter().map(RawSummary::parse).collect());
        ready(summaries)
    }

    fn delete_ended_before(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, RunStoreError>> {
        let deleted = self.with(|c| {
            c.execute(
                "DELETE FROM fastagentic_runs WHERE status IN ('completed', 'failed') \
                 AND updated_ms < ?1",
                [before_ms],
            )
        });
        ready(deleted.map(|n| n as u64).map_err(|err| io(&err)))
    }
}

fn create(c: &Connection, new: &NewRun) -> Result<Created, RunStoreError> {
    let inserted = c
        .execute(
            "INSERT INTO fastagentic_runs (run_id, endpoint, status, input, idempotency_key, \
             user_id, tenant_id, created_ms, updated_ms, lease_until_ms) \
             VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?7, ?8) \
             ON CONFLICT (endpoint, idempotency_key) DO NOTHING",
            params![
                &*new.id,
                &*new.endpoint,
                json(&new.input),
                new.idempotency_key,
                new.user.as_deref(),
                new.tenant.as_deref(),
                new.now_ms,
                new.lease_until_ms
            ],
        )
        .map_err(|err| io(&err))?;
    if inserted == 1 {
        return Ok(Created::New);
    }
    let existing: Option<String> = c
        .query_row(
            "SELECT run_id FROM fastagentic_runs WHERE endpoint = ?1 AND idempotency_key = ?2",
            params![&*new.endpoint, new.idempotency_key],
            |row| row.get(0),
        )
        .optional()
        .map_err(|err| io(&err))?;
    match existing.map(|id| load(c, &id)).transpose()?.flatten() {
        Some(run) => Ok(Created::Existing(Box::new(run))),
        None => Err(RunStoreError::Io {
            store: "sqlite",
            message: format!("run {} was neither created nor found", new.id),
        }),
    }
}

fn append(
    c: &mut Connection,
    run_id: &str,
    step: &StepRecord,
    lease_until_ms: i64,
) -> Result<(), RunStoreError> {
    let tx = c.transaction().map_err(|err| io(&err))?;
    let usage = usage_json(step, "sqlite")?;
    let inserted = tx.execute(
        "INSERT INTO fastagentic_steps (run_id, idx, name, output, model, usage, cost_usd, \
         completed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            run_id,
            step.index,
            step.name,
            json(&step.output),
            step.model,
            usage,
            step.cost_usd.map(|c| c.to_string()),
            step.completed_ms
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(RunStoreError::StepExists {
                run_id: run_id.into(),
                index: step.index,
            });
        }
        Err(err) => return Err(io(&err)),
        Ok(_) => {}
    }
    tx.execute(
        "UPDATE fastagentic_runs SET updated_ms = ?2, lease_until_ms = ?3 WHERE run_id = ?1",
        params![run_id, step.completed_ms, lease_until_ms],
    )
    .map_err(|err| io(&err))?;
    tx.commit().map_err(|err| io(&err))
}

fn claim(
    c: &mut Connection,
    run_id: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Claim, RunStoreError> {
    // IMMEDIATE: the write lock is taken before the read, so two processes claiming one
    // run cannot both see it free.
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|err| io(&err))?;
    let Some(run) = load(&tx, run_id)? else {
        return Ok(Claim::Unknown);
    };
    let claim = match run.claimed(now_ms, lease_until_ms) {
        Err(answer) => answer,
        Ok(run) => {
            tx.execute(
                "UPDATE fastagentic_runs SET status = 'running', lease_until_ms = ?2, \
                 updated_ms = ?3 WHERE run_id = ?1",
                params![run_id, lease_until_ms, now_ms],
            )
            .map_err(|err| io(&err))?;
            Claim::Claimed(Box::new(run))
        }
    };
    tx.commit().map_err(|err| io(&err))?;
    Ok(claim)
}
