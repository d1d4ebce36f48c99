//! [`PostgresRunStore`]: runs and their journals in a PostgreSQL database, for replicas
//! on several hosts.
//!
//! The tables are the SQLite store's (same columns, JSON kept as text), created on
//! connect. A step is one transaction, durable once PostgreSQL commits it (its
//! `synchronous_commit` decides what a server crash may lose). A claim locks the run's
//! row (`SELECT … FOR UPDATE`), so of two replicas resuming one run, one waits for the
//! other and then sees it taken.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, Pool, Runtime};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::{GenericClient, NoTls, Row};

use super::row::{
    RUN_COLUMNS, RawRun, RawStep, RawSummary, STEP_COLUMNS, json, schema, usage_json,
};
use super::{Claim, Created, NewRun, RunRecord, RunStatus, RunStore, RunStoreError, RunSummary};
use super::{StepRecord, wall_ms};
use crate::llm::BoxFuture;

/// Replicas connecting at once each run the schema; this lock (an arbitrary key, taken
/// for one transaction) makes them take turns instead of colliding in the catalog.
const SCHEMA_LOCK: i64 = 0x6661_7374_6167_656e;

/// How many connections one store keeps open at most.
const POOL_SIZE: usize = 16;
/// How long connecting, or waiting for a free connection, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Durable runs in a PostgreSQL database (feature `postgres`): every replica pointed at
/// the same database sees every run, so a run checkpointed or orphaned on one host can
/// be resumed on another. Connections are pooled (at most 16 per store), without TLS:
/// reach the server over loopback, a private network or a TLS-terminating proxy.
#[derive(Clone)]
pub struct PostgresRunStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresRunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRunStore").finish_non_exhaustive()
    }
}

impl PostgresRunStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, or
    /// libpq's `host=… user=…` form) and creates the tables if they are missing.
    pub async fn connect(url: &str) -> Result<Self, RunStoreError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|err| RunStoreError::Io {
            store: "postgres",
            message: format!("`{}` is not a PostgreSQL URL: {err}", redacted(url)),
        })?;
        let pool = Pool::builder(Manager::new(config, NoTls))
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|err| RunStoreError::Io {
                store: "postgres",
                message: err.to_string(),
            })?;
        let store = PostgresRunStore { pool };
        store
            .create_schema()
            .await
            .map_err(|err| RunStoreError::Io {
                store: "postgres",
                message: format!("cannot set up runs at `{}`: {err}", redacted(url)),
            })?;
        Ok(store)
    }

    async fn create_schema(&self) -> Result<(), RunStoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|err| io(&err))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(|err| io(&err))?;
        tx.batch_execute(&schema("BIGINT"))
            .await
            .map_err(|err| io(&err))?;
        tx.commit().await.map_err(|err| io(&err))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, RunStoreError> {
        self.pool.get().await.map_err(|err| RunStoreError::Io {
            store: "postgres",
            message: err.to_string(),
        })
    }
}

/// `url` without its password, for error messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ if url.contains("password") => "(a connection string with a password)".to_owned(),
        _ => url.to_owned(),
    }
}

fn io(err: &tokio_postgres::Error) -> RunStoreError {
    // The server's own message ("relation … does not exist") says more than the
    // client's summary ("db error").
    let message = match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => err.to_string(),
    };
    RunStoreError::Io {
        store: "postgres",
        message,
    }
}

fn read_run(row: &Row) -> Result<RawRun, tokio_postgres::Error> {
    Ok(RawRun {
        run_id: row.try_get(0)?,
        endpoint: row.try_get(1)?,
        status: row.try_get(2)?,
        input: row.try_get(3)?,
        idempotency_key: row.try_get(4)?,
        user: row.try_get(5)?,
        tenant: row.try_get(6)?,
        result: row.try_get(7)?,
        created_ms: row.try_get(8)?,
        updated_ms: row.try_get(9)?,
        lease_until_ms: row.try_get(10)?,
    })
}

fn read_step(row: &Row, run_id: &str) -> Result<RawStep, RunStoreError> {
    let index: i64 = row.try_get(0).map_err(|err| io(&err))?;
    let index = u32::try_from(index).map_err(|_| RunStoreError::Corrupt {
        run_id: run_id.into(),
        message: format!("step index {index} is out of range"),
    })?;
    let read = || -> Result<RawStep, tokio_postgres::Error> {
        Ok(RawStep {
            index,
            name: row.try_get(1)?,
            output: row.try_get(2)?,
            model: row.try_get(3)?,
            usage: row.try_get(4)?,
            cost_usd: row.try_get(5)?,
            completed_ms: row.try_get(6)?,
        })
    };
    read().map_err(|err| io(&err))
}

/// The run `run_id` with its journal; with `lock`, its row stays locked until `c`'s
/// transaction ends.
async fn load(
    c: &impl GenericClient,
    run_id: &str,
    lock: bool,
) -> Result<Option<RunRecord>, RunStoreError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let query = format!("SELECT {RUN_COLUMNS} FROM fastagentic_runs WHERE run_id = $1{lock}");
    let Some(row) = c
        .query_opt(&query, &[&run_id])
        .await
        .map_err(|err| io(&err))?
    else {
        return Ok(None);
    };
    let run = read_run(&row).map_err(|err| io(&err))?;
    let query =
        format!("SELECT {STEP_COLUMNS} FROM fastagentic_steps WHERE run_id = $1 ORDER BY idx");
    let rows = c.query(&query, &[&run_id]).await.map_err(|err| io(&err))?;
    let steps = rows
        .iter()
        .map(|row| read_step(row, run_id)?.parse(run_id))
        .collect::<Result<Vec<_>, _>>()?;
    run.parse(steps).map(Some)
}

impl RunStore for PostgresRunStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn create(&self, new: NewRun) -> BoxFuture<'_, Result<Created, RunStoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            create(&client, &new).await
        })
    }

    fn append(
        &self,
        run_id: Arc<str>,
        step: StepRecord,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            append(&mut client, &run_id, &step, lease_until_ms).await
        })
    }

    fn claim(
        &self,
        run_id: Arc<str>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<Claim, RunStoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            claim(&mut client, &run_id, now_ms, lease_until_ms).await
        })
    }

    fn finish(
        &self,
        run_id: Arc<str>,
        status: RunStatus,
        result: Option<Value>,
    ) -> BoxFuture<'_, Result<(), RunStoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE fastagentic_runs SET status = $2, result = $3, lease_until_ms = 0, \
                     updated_ms = $4 WHERE run_id = $1",
                    &[
                        &&*run_id,
                        &status.as_str(),
                        &result.as_ref().map(json),
                        &wall_ms(),
                    ],
                )
                .await
                .map(drop)
                .map_err(|err| io(&err))
        })
    }

    fn get(&self, run_id: Arc<str>) -> BoxFuture<'_, Result<Option<RunRecord>, RunStoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            // One snapshot for the run and its steps.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(|err| io(&err))?;
            let run = load(&*tx, &run_id, false).await?;
            tx.commit().await.map_err(|err| io(&err))?;
            Ok(run)
        })
    }

    fn list(
        &self,
        status: Option<RunStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, RunStoreError>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT r.run_id, r.endpoint, r.status, r.created_ms, r.updated_ms, \
                     (SELECT COUNT(*) FROM fastagentic_steps s WHERE s.run_id = r.run_id) \
                     FROM fastagentic_runs r WHERE ($1::TEXT IS NULL OR r.status = $1) \
                     ORDER BY r.created_ms DESC, r.run_id DESC LIMIT $2",
                    &[&status.map(RunStatus::as_str), &limit],
                )
                .await
                .map_err(|err| io(&err))?;
            rows.iter().map(read_summary).collect()
        })
    }

    fn delete_ended_before(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, RunStoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM fastagentic_runs WHERE status IN ('completed', 'failed') \
                     AND updated_ms < $1",
                    &[&before_ms],
                )
                .await
                .map_err(|err| io(&err))
        })
    }
}

fn read_summary(row: &Row) -> Result<RunSummary, RunStoreError> {
    let read = || -> Result<RawSummary, tokio_postgres::Error> {
        let steps: i64 = row.try_get(5)?;
        Ok(RawSummary {
            run_id: row.try_get(0)?,
            endpoint: row.try_get(1)?,
            status: row.try_get(2)?,
            created_ms: row.try_get(3)?,
            updated_ms: row.try_get(4)?,
            steps: u32::try_from(steps).unwrap_or(u32::MAX),
        })
    };
    read().map_err(|err| io(&err))?.parse()
}

async fn create(c: &tokio_postgres::Client, new: &NewRun) -> Result<Created, RunStoreError> {
    let inserted = c
        .execute(
            "INSERT INTO fastagentic_runs (run_id, endpoint, status, input, idempotency_key, \
             user_id, tenant_id, created_ms, updated_ms, lease_until_ms) \
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $7, $8) \
             ON CONFLICT (endpoint, idempotency_key) DO NOTHING",
            &[
                &&*new.id,
                &&*new.endpoint,
                &json(&new.input),
                &new.idempotency_key,
                &new.user.as_deref(),
                &new.tenant.as_deref(),
                &new.now_ms,
                &new.lease_until_ms,
            ],
        )
        .await
        .map_err(|err| io(&err))?;
    if inserted == 1 {
        return Ok(Created::New);
    }
    let existing = c
        .query_opt(
            "SELECT run_id FROM fastagentic_runs WHERE endpoint = $1 AND idempotency_key = $2",
            &[&&*new.endpoint, &new.idempotency_key],
        )
        .await
        .map_err(|err| io(&err))?;
    let existing: Option<String> = existing
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(|err| io(&err))?;
    let run = match existing {
        Some(id) => load(c, &id, false).await?,
        None => None,
    };
    run.map(|run| Created::Existing(Box::new(run)))
        .ok_or_else(|| RunStoreError::Io {
            store: "postgres",
            message: format!("run {} was neither created nor found", new.id),
        })
}

async fn append(
    client: &mut deadpool_postgres::Object,
    run_id: &str,
    step: &StepRecord,
    lease_until_ms: i64,
) -> Result<(), RunStoreError> {
    let usage = usage_json(step, "postgres")?;
    let tx = client.transaction().await.map_err(|err| io(&err))?;
    let inserted = tx
        .execute(
            "INSERT INTO fastagentic_steps (run_id, idx, name, output, model, usage, \
             cost_usd, completed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &run_id,
                &i64::from(step.index),
                &step.name,
                &json(&step.output),
                &step.model,
                &usage,
                &step.cost_usd.map(|c| c.to_string()),
                &step.completed_ms,
            ],
        )
        .await;
    if let Err(err) = inserted {
        return Err(if err.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            RunStoreError::StepExists {
                run_id: run_id.into(),
                index: step.index,
            }
        } else {
            io(&err)
        });
    }
    tx.execute(
        "UPDATE fastagentic_runs SET updated_ms = $2, lease_until_ms = $3 WHERE run_id = $1",
        &[&run_id, &step.completed_ms, &lease_until_ms],
    )
    .await
    .map_err(|err| io(&err))?;
    tx.commit().await.map_err(|err| io(&err))
}

async fn claim(
    client: &mut deadpool_postgres::Object,
    run_id: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Claim, RunStoreError> {
    let tx = client.transaction().await.map_err(|err| io(&err))?;
    // The row lock makes a concurrent claim wait here, then read what this one wrote.
    let Some(run) = load(&*tx, run_id, true).await? else {
        return Ok(Claim::Unknown);
    };
    let claim = match run.claimed(now_ms, lease_until_ms) {
        Err(answer) => answer,
        Ok(run) => {
            tx.execute(
                "UPDATE fastagentic_runs SET status = 'running', lease_until_ms = $2, \
                 updated_ms = $3 WHERE run_id = $1",
                &[&run_id, &lease_until_ms, &now_ms],
            )
            .await
            .map_err(|err| io(&err))?;
            Claim::Claimed(Box::new(run))
        }
    };
    tx.commit().await.map_err(|err| io(&err))?;
    Ok(claim)
}
