//! Rows as a SQL store reads them (text and integers), and how they become records:
//! the SQLite and PostgreSQL stores share one schema, so they share its parsing too.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{RunRecord, RunStatus, RunStoreError, RunSummary, StepRecord};

/// The tables, with `integer` as the type of times and indexes (SQLite's `INTEGER`,
/// PostgreSQL's `BIGINT`: both 64-bit).
pub(crate) fn schema(integer: &str) -> String {
    format!(
        "
CREATE TABLE IF NOT EXISTS fastagentic_runs (
    run_id          TEXT PRIMARY KEY,
    endpoint        TEXT NOT NULL,
    status          TEXT NOT NULL,
    input           TEXT NOT NULL,
    idempotency_key TEXT,
    user_id         TEXT,
    tenant_id       TEXT,
    result          TEXT,
    created_ms      {integer} NOT NULL,
    updated_ms      {integer} NOT NULL,
    lease_until_ms  {integer} NOT NULL,
    UNIQUE (endpoint, idempotency_key)
);
CREATE INDEX IF NOT EXISTS fastagentic_runs_by_status
    ON fastagentic_runs (status, created_ms);
CREATE TABLE IF NOT EXISTS fastagentic_steps (
    run_id       TEXT NOT NULL REFERENCES fastagentic_runs (run_id) ON DELETE CASCADE,
    idx          {integer} NOT NULL,
    name         TEXT NOT NULL,
    output       TEXT NOT NULL,
    model        TEXT,
    usage        TEXT,
    cost_usd     TEXT,
    completed_ms {integer} NOT NULL,
    PRIMARY KEY (run_id, idx)
);
"
    )
}

/// The columns of `fastagentic_runs`, in the order [`RawRun`] reads them.
pub(crate) const RUN_COLUMNS: &str = "run_id, endpoint, status, input, idempotency_key, \
                                      user_id, tenant_id, result, created_ms, updated_ms, \
                                      lease_until_ms";

/// The columns of `fastagentic_steps`, in the order [`RawStep`] reads them.
pub(crate) const STEP_COLUMNS: &str = "idx, name, output, model, usage, cost_usd, completed_ms";

/// A `fastagentic_runs` row.
pub(crate) struct RawRun {
    pub(crate) run_id: String,
    pub(crate) endpoint: String,
    pub(crate) status: String,
    pub(crate) input: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    pub(crate) lease_until_ms: i64,
}

impl RawRun {
    pub(crate) fn parse(self, steps: Vec<StepRecord>) -> Result<RunRecord, RunStoreError> {
        let run_id: Arc<str> = self.run_id.into();
        let corrupt = |what: String| RunStoreError::Corrupt {
            run_id: run_id.clone(),
            message: what,
        };
        let status = parse_status(&run_id, &self.status)?;
        let input = serde_json::from_str(&self.input).map_err(|e| corrupt(e.to_string()))?;
        let result = (self.result.as_deref())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(RunRecord {
            run_id: run_id.clone(),
            endpoint: self.endpoint.into(),
            status,
            input,
            idempotency_key: self.idempotency_key,
            user: self.user.map(Into::into),
            tenant: self.tenant.map(Into::into),
            steps,
            result,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            lease_until_ms: self.lease_until_ms,
        })
    }
}

/// A `fastagentic_steps` row.
pub(crate) struct RawStep {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) output: String,
    pub(crate) model: Option<String>,
    pub(crate) usage: Option<String>,
    pub(crate) cost_usd: Option<String>,
    pub(crate) completed_ms: i64,
}

impl RawStep {
    pub(crate) fn parse(self, run_id: &str) -> Result<StepRecord, RunStoreError> {
        let corrupt = |message: String| RunStoreError::Corrupt {
            run_id: run_id.into(),
            message: format!("step {}: {message}", self.index),
        };
        let output = serde_json::from_str(&self.output).map_err(|e| corrupt(e.to_string()))?;
        let usage = (self.usage.as_deref())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let cost_usd = (self.cost_usd.as_deref())
            .map(Decimal::from_str)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(StepRecord {
            index: self.index,
            name: self.name,
            output,
            model: self.model,
            usage,
            cost_usd,
            completed_ms: self.completed_ms,
        })
    }
}

/// The columns a list reads: run id, endpoint, status, created, updated, step count.
pub(crate) struct RawSummary {
    pub(crate) run_id: String,
    pub(crate) endpoint: String,
    pub(crate) status: String,
    pub(crate) created_ms: i64,
    pub(crate) updated_ms: i64,
    pub(crate) steps: u32,
}

impl RawSummary {
    pub(crate) fn parse(self) -> Result<RunSummary, RunStoreError> {
        Ok(RunSummary {
            status: parse_status(&self.run_id, &self.status)?,
            run_id: self.run_id.into(),
            endpoint: self.endpoint.into(),
            steps: self.steps,
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        })
    }
}

fn parse_status(run_id: &str, status: &str) -> Result<RunStatus, RunStoreError> {
    RunStatus::parse(status).ok_or_else(|| RunStoreError::Corrupt {
        run_id: run_id.into(),
        message: format!("unknown status `{status}`"),
    })
}

/// A JSON value as the stores keep it: text.
pub(crate) fn json(value: &Value) -> String {
    value.to_string()
}

/// A step's usage as the stores keep it: JSON text.
pub(crate) fn usage_json(
    step: &StepRecord,
    store: &'static str,
) -> Result<Option<String>, RunStoreError> {
    step.usage
        .map(|u| serde_json::to_string(&u))
        .transpose()
        .map_err(|err| RunStoreError::Io {
            store,
            message: err.to_string(),
        })
}
