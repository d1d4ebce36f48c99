//! What a store keeps of a run: its status, input, journal and result.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Claim;
use crate::llm::Usage;

/// Where a durable run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Some process is running it (or was, until its lease runs out).
    Running,
    /// Its total timeout cut it; its journal holds every step it completed. Resume it.
    Checkpointed,
    /// It answered; its output is kept.
    Completed,
    /// It failed with a classified error; its completed steps are kept, and it can be
    /// resumed (after an outage, say) without paying for them again.
    Failed,
}

impl RunStatus {
    /// Every status, in the order runs move through them.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Checkpointed,
        RunStatus::Completed,
        RunStatus::Failed,
    ];

    /// The status as the API writes it (`"checkpointed"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Checkpointed => "checkpointed",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
        }
    }

    /// The status named `name`, if any.
    pub fn parse(name: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One completed step of a run, as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// Its position in the run, from 0.
    pub index: u32,
    /// What it was: `llm` for a model call, `tool:<name>` for a tool call, or the name
    /// given to `ctx.step`.
    pub name: String,
    /// Its result, as JSON (a model call's whole [`Completion`](crate::llm::Completion)).
    #[serde(skip_serializing)]
    pub output: Value,
    /// The model that answered, for a model call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens a model call used, when the provider said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What a model call cost, in US dollars, when known.
    #[serde(
        with = "crate::usd::float_option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub cost_usd: Option<Decimal>,
    /// When it completed, in milliseconds since the Unix epoch.
    pub completed_ms: i64,
}

impl StepRecord {
    /// A step named `name` at `index` with `output`, completed now.
    pub fn new(index: u32, name: impl Into<String>, output: Value) -> Self {
        StepRecord {
            index,
            name: name.into(),
            output,
            model: None,
            usage: None,
            cost_usd: None,
            completed_ms: super::wall_ms(),
        }
    }

    /// The same step, as a model call that used `usage` and cost `cost_usd`.
    #[must_use]
    pub fn with_call(
        mut self,
        model: impl Into<String>,
        usage: Option<Usage>,
        cost_usd: Option<Decimal>,
    ) -> Self {
        self.model = Some(model.into());
        self.usage = usage;
        self.cost_usd = cost_usd;
        self
    }
}

/// A run as the store holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id (`run_…`).
    pub run_id: Arc<str>,
    /// The endpoint's path.
    pub endpoint: Arc<str>,
    /// Where it is.
    pub status: RunStatus,
    /// The request body it started from.
    #[serde(skip_serializing)]
    pub input: Value,
    /// The caller's `Idempotency-Key`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The caller's user, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Arc<str>>,
    /// The caller's tenant, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Arc<str>>,
    /// Its completed steps, in order.
    pub steps: Vec<StepRecord>,
    /// The body's output once `completed`, the error body (`{"error": {..}}`) once
    /// `failed` or `checkpointed`.
    #[serde(skip_serializing)]
    pub result: Option<Value>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
    /// Until when its current holder may run it without a new claim.
    #[serde(skip_serializing)]
    pub lease_until_ms: i64,
}

impl RunRecord {
    /// The tokens its model calls used, summed over the steps that reported usage.
    pub fn usage(&self) -> Option<Usage> {
        let mut calls = self.steps.iter().filter_map(|s| s.usage).peekable();
        calls.peek()?;
        Some(calls.fold(Usage::default(), |sum, u| Usage {
            input: sum.input + u.input,
            output: sum.output + u.output,
            reasoning: sum.reasoning + u.reasoning,
            cache_read: sum.cache_read + u.cache_read,
            cache_write: sum.cache_write + u.cache_write,
            total: sum.total + u.total,
        }))
    }

    /// What its model calls cost, when every one of them was priced.
    pub fn cost_usd(&self) -> Option<Decimal> {
        self.steps
            .iter()
            .filter(|s| s.model.is_some())
            .map(|s| s.cost_usd)
            .sum()
    }

    /// What a claim at `now_ms` makes of this run, for the stores: `Ok` with the run
    /// taken (running, leased until `lease_until_ms`) when it is free, else the answer
    /// to give — completed, or running under a lease that has not expired.
    pub(crate) fn claimed(mut self, now_ms: i64, lease_until_ms: i64) -> Result<Self, Claim> {
        match self.status {
            RunStatus::Completed => Err(Claim::Completed(Box::new(self))),
            RunStatus::Running if self.lease_until_ms > now_ms => Err(Claim::Busy(Box::new(self))),
            _ => {
                self.status = RunStatus::Running;
                self.lease_until_ms = lease_until_ms;
                self.updated_ms = now_ms;
                Ok(self)
            }
        }
    }

    /// The run as a list shows it.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id.clone(),
            endpoint: self.endpoint.clone(),
            status: self.status,
            steps: u32::try_from(self.steps.len()).unwrap_or(u32::MAX),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }
}

/// A run as a list shows it: no journal, no payloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run's id.
    pub run_id: Arc<str>,
    /// The endpoint's path.
    pub endpoint: Arc<str>,
    /// Where it is.
    pub status: RunStatus,
    /// How many steps its journal holds.
    pub steps: u32,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it last changed.
    pub updated_ms: i64,
}
