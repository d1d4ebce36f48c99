//! Durable runs: every step of a run journaled, so a run cut by its timeout, a failure
//! or a crash resumes where it stopped instead of paying for its steps again.
//!
//! In an endpoint declared `durable = true`, each model call (`ctx.llm().complete(..)`),
//! each tool call (`ctx.tool(..)`, and every call of an agent loop) and each
//! [`ctx.step("name", ..)`](crate::AgentContext::step) is a *step*: its result is written
//! to the run's journal before the body sees it. Running the body again on the same run
//! (a retry, a fallback, or [`resume`](crate::server) after a checkpoint or a crash)
//! replays the journal: a completed step returns its recorded result at once, with no
//! provider call, no tool call and no second charge in the spend ledger, and the body
//! goes on live from the first step the journal does not hold.
//!
//! Steps are matched by position, so the body must ask for the same steps in the same
//! order every time it runs; one that asks for a different step than the journal holds
//! there fails with an error naming both (see the book's "Durable runs").
//!
//! Where runs are kept is a [`RunStore`]: [`SqliteRunStore`] (feature `sqlite`, on by
//! default) in one file, `PostgresRunStore` (feature `postgres`) in a database every
//! replica shares, or [`MemoryRunStore`] in the process.

mod journal;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod row;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use serde_json::Value;

use crate::llm::BoxFuture;

pub(crate) use self::journal::{Journal, StepCursor};
pub use self::memory::MemoryRunStore;
#[cfg(feature = "postgres")]
pub use self::postgres::PostgresRunStore;
pub use self::record::{RunRecord, RunStatus, RunSummary, StepRecord};
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteRunStore;

/// The environment variable naming the SQLite file of an [`App`](crate::App)'s runs
/// (default `fastagentic-runs.sqlite3` in the working directory).
pub const RUNS_PATH_ENV: &str = "FASTAGENTIC_RUNS_PATH";

/// Where durable runs and their journals are kept.
///
/// Every method is one short transaction. Implementations must make [`claim`] atomic:
/// of two concurrent claims of one run, at most one succeeds.
///
/// [`claim`]: RunStore::claim
pub trait RunStore: Send + Sync + 'static {
    /// A short name for logs and errors (`"sqlite"`, `"memory"`).
    fn name(&self) -> &'static str;

    /// Creates a run, held by its creator until `new.lease_until_ms`. With an
    /// idempotency key already used for `new.endpoint`, creates nothing and returns the
    /// existing run instead.
    fn create(&self, new: NewRun) -> BoxFuture<'_, Result<Created, RunStoreError>>;

    /// Appends one completed step to a run's journal and extends its lease. A step at
    /// an index already written is refused ([`RunStoreError::StepExists`]).
    fn append(
        &self,
        run_id: Arc<str>,
        step: StepRecord,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<(), RunStoreError>>;

    /// Takes a run to run it on: succeeds unless the run is `running` under a lease that
    /// has not expired at `now_ms`, or is `completed`.
    fn claim(
        &self,
        run_id: Arc<str>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> BoxFuture<'_, Result<Claim, RunStoreError>>;

    /// Records how a run ended (or stopped, for `checkpointed`), ending its lease.
    fn finish(
        &self,
        run_id: Arc<str>,
        status: RunStatus,
        result: Option<Value>,
    ) -> BoxFuture<'_, Result<(), RunStoreError>>;

    /// One run with its journal, if it exists.
    fn get(&self, run_id: Arc<str>) -> BoxFuture<'_, Result<Option<RunRecord>, RunStoreError>>;

    /// The newest runs first, at most `limit`, of one status or of all.
    fn list(
        &self,
        status: Option<RunStatus>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<RunSummary>, RunStoreError>>;

    /// Deletes runs that ended (`completed` or `failed`) before `before_ms`, with their
    /// journals; returns how many. Checkpointed and running runs are kept.
    fn delete_ended_before(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, RunStoreError>>;
}

/// A run about to start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewRun {
    /// The run's id.
    pub id: Arc<str>,
    /// The endpoint's path.
    pub endpoint: Arc<str>,
    /// The request body, replayed into the body on resume.
    pub input: Value,
    /// The caller's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// The caller's user and tenant, for limits on resume.
    pub user: Option<Arc<str>>,
    /// The caller's tenant.
    pub tenant: Option<Arc<str>>,
    /// When the run was created, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// Until when its creator holds it.
    pub lease_until_ms: i64,
}

impl NewRun {
    /// A run of `endpoint` on `input`, created at `now_ms` and held until
    /// `lease_until_ms`, with no idempotency key and no caller.
    pub fn new(
        id: impl Into<Arc<str>>,
        endpoint: impl Into<Arc<str>>,
        input: Value,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Self {
        NewRun {
            id: id.into(),
            endpoint: endpoint.into(),
            input,
            idempotency_key: None,
            user: None,
            tenant: None,
            now_ms,
            lease_until_ms,
        }
    }
}

/// What [`RunStore::create`] did.
#[derive(Clone, Debug)]
pub enum Created {
    /// The run is new and held by its creator.
    New,
    /// A run with the same idempotency key exists.
    Existing(Box<RunRecord>),
}

/// What [`RunStore::claim`] found.
#[derive(Clone, Debug)]
pub enum Claim {
    /// The run is the caller's now; here is its journal.
    Claimed(Box<RunRecord>),
    /// Another caller holds it (a run in progress, or a concurrent resume).
    Busy(Box<RunRecord>),
    /// It completed; here is its output.
    Completed(Box<RunRecord>),
    /// No such run.
    Unknown,
}

/// A run store failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunStoreError {
    /// The store could not be opened, read or written.
    #[error("the {store} run store failed: {message}")]
    Io {
        /// The store's name.
        store: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A step was written twice at one index: two processes ran one run at once.
    #[error("run {run_id} already has a step {index} in its journal")]
    StepExists {
        /// The run.
        run_id: Arc<str>,
        /// The step's index.
        index: u32,
    },
    /// A stored record could not be read back.
    #[error("run {run_id} has an unreadable record: {message}")]
    Corrupt {
        /// The run.
        run_id: Arc<str>,
        /// What could not be read.
        message: String,
    },
}

/// An answer the stores have at once: both do their work on the calling task.
fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// Milliseconds since the Unix epoch, on the wall clock: leases and timestamps are read
/// by other processes, so they cannot be on a process's monotonic clock.
pub(crate) fn wall_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A new run id: `run_` and 32 hex digits (128 random bits).
#[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server starts runs
pub(crate) fn new_run_id() -> Arc<str> {
    format!("run_{:032x}", fastrand::u128(..)).into()
}
