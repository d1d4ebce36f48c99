//! What runs spent: tokens and dollars per run, and running totals per endpoint, model,
//! user and tenant.
//!
//! Every call made through [`ctx.llm()`](crate::AgentContext::llm) is priced (see
//! [`pricing`](crate::pricing)) and recorded twice: in its run's [`Spend`], which says
//! what each model of a fallback chain cost that one request, and in the process-wide
//! [`ledger`], which keeps the totals.

use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::llm::Usage;

/// What one model cost within one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ModelSpend {
    /// The model as the pipeline named it (`gpt-4o`, `mock/fast`).
    pub model: Arc<str>,
    /// The provider that answered.
    pub provider: Arc<str>,
    /// Calls made to it.
    pub calls: u32,
    /// Tokens, summed over the calls that reported usage; `None` if none did.
    pub usage: Option<Usage>,
    /// Dollars, summed over the calls that could be priced (a JSON number when
    /// serialized; summed in decimal).
    #[serde(with = "rust_decimal::serde::float")]
    pub cost_usd: Decimal,
    /// Calls whose cost is unknown: no usage arrived, or no price is known for the model.
    pub unpriced_calls: u32,
}

/// One run's spending, model by model, in the order the models were first used.
///
/// A run that fell back from `gpt-4o` to `claude-sonnet-4-5` lists both, so the cost of
/// the fallback is visible next to what the primary had already burnt. The server puts
/// the totals in response headers and in the `usage` event of a stream; a body reads
/// them with [`AgentContext::spend`](crate::AgentContext::spend).
#[derive(Debug, Default)]
pub struct Spend {
    // Per run, touched once per LLM call: a plain mutex is uncontended here.
    models: Mutex<Vec<ModelSpend>>,
}

impl Spend {
    /// An empty record.
    pub fn new() -> Self {
        Spend::default()
    }

    /// Each model used, with what it cost.
    pub fn by_model(&self) -> Vec<ModelSpend> {
        self.lock().clone()
    }

    /// Tokens over all calls; `None` when no call reported usage.
    pub fn usage(&self) -> Option<Usage> {
        self.lock()
            .iter()
            .filter_map(|m| m.usage)
            .reduce(|a, b| a + b)
    }

    /// Dollars over all calls, or `None` when any call's cost is unknown (no usage, or
    /// no price for its model): a partial sum would understate the bill.
    pub fn cost_usd(&self) -> Option<Decimal> {
        let models = self.lock();
        if models.iter().any(|m| m.unpriced_calls > 0) {
            return None;
        }
        Some(models.iter().map(|m| m.cost_usd).sum())
    }

    /// Dollars over the calls that could be priced, whatever the others cost.
    pub fn priced_usd(&self) -> Decimal {
        self.lock().iter().map(|m| m.cost_usd).sum()
    }

    /// Calls made, over all models.
    pub fn calls(&self) -> u32 {
        self.lock().iter().map(|m| m.calls).sum()
    }

    pub(crate) fn record(&self, call: &CallRecord<'_>) {
        let mut models = self.lock();
        let index = match models
            .iter()
            .position(|m| m.model == *call.model && *m.provider == *call.provider)
        {
            Some(index) => index,
            None => {
                models.push(ModelSpend {
                    model: call.model.clone(),
                    provider: Arc::from(call.provider),
                    ..ModelSpend::default()
                });
                models.len() - 1
            }
        };
        let entry = &mut models[index];
        entry.calls += 1;
        if let Some(usage) = call.usage {
            entry.usage = Some(entry.usage.map_or(usage, |u| u + usage));
        }
        match call.cost_usd {
            Some(cost) => entry.cost_usd += cost,
            None => entry.unpriced_calls += 1,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ModelSpend>> {
        // A panic while holding this lock cannot leave the list half-updated in a way
        // that matters for accounting, so a poisoned lock is still read.
        self.models
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One priced LLM call, as the handle reports it.
pub(crate) struct CallRecord<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) model: &'a Arc<str>,
    pub(crate) provider: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) usage: Option<Usage>,
    pub(crate) cost_usd: Option<Decimal>,
}

/// Running totals for one endpoint, model, user or tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Totals {
    /// LLM calls made.
    pub calls: u64,
    /// Tokens reported, all kinds (`Usage::total`).
    pub tokens: u64,
    /// Dollars, over the calls that could be priced.
    #[serde(with = "rust_decimal::serde::float")]
    pub cost_usd: Decimal,
    /// Calls whose cost is unknown.
    pub unpriced_calls: u64,
}

impl Totals {
    fn add(&mut self, call: &CallRecord<'_>) {
        self.calls += 1;
        self.tokens += call.usage.map_or(0, |u| u.total);
        match call.cost_usd {
            Some(cost) => self.cost_usd += cost,
            None => self.unpriced_calls += 1,
        }
    }
}

type Rows = DashMap<Arc<str>, Totals, foldhash::fast::RandomState>;

/// Process-wide spending totals, sharded so concurrent runs rarely meet on a lock.
#[derive(Debug, Default)]
pub struct Ledger {
    endpoints: Rows,
    models: Rows,
    users: Rows,
    tenants: Rows,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Totals per endpoint path, sorted by path.
    pub fn by_endpoint(&self) -> Vec<(String, Totals)> {
        sorted(&self.endpoints)
    }

    /// Totals per model (as the pipeline named it), sorted by name.
    pub fn by_model(&self) -> Vec<(String, Totals)> {
        sorted(&self.models)
    }

    /// Totals per user, for requests that named one.
    pub fn by_user(&self) -> Vec<(String, Totals)> {
        sorted(&self.users)
    }

    /// Totals per tenant, for requests that named one.
    pub fn by_tenant(&self) -> Vec<(String, Totals)> {
        sorted(&self.tenants)
    }

    /// Totals over everything recorded.
    pub fn total(&self) -> Totals {
        self.models.iter().fold(Totals::default(), |mut sum, row| {
            sum.calls += row.calls;
            sum.tokens += row.tokens;
            sum.cost_usd += row.cost_usd;
            sum.unpriced_calls += row.unpriced_calls;
            sum
        })
    }

    pub(crate) fn record(&self, call: &CallRecord<'_>) {
        add(&self.endpoints, Some(call.endpoint), call);
        add(&self.models, Some(&**call.model), call);
        add(&self.users, call.user, call);
        add(&self.tenants, call.tenant, call);
    }
}

/// The most rows one dimension keeps; later keys add up under [`OTHER`]. User and tenant
/// ids (and, through endpoints that let the caller name it, models) come from requests,
/// so without a cap a client could grow the ledger without end.
pub const MAX_ROWS: usize = 10_000;

/// The row that keys past [`MAX_ROWS`] add up under.
pub const OTHER: &str = "(other)";

/// Adds `call` to the row of `key`; the key is allocated only for a row's first call.
fn add(rows: &Rows, key: Option<&str>, call: &CallRecord<'_>) {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return;
    };
    if let Some(mut totals) = rows.get_mut(key) {
        totals.add(call);
        return;
    }
    let key = if rows.len() >= MAX_ROWS { OTHER } else { key };
    rows.entry(Arc::from(key)).or_default().add(call);
}

fn sorted(rows: &Rows) -> Vec<(String, Totals)> {
    let mut list: Vec<(String, Totals)> = rows
        .iter()
        .map(|row| (row.key().to_string(), row.value().clone()))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// The process-wide ledger: what every pipeline records into unless it was given one of
/// its own ([`PipelineBuilder::ledger`], [`App::ledger`]).
///
/// [`PipelineBuilder::ledger`]: crate::reliability::PipelineBuilder::ledger
/// [`App::ledger`]: crate::App::ledger
pub fn ledger() -> &'static Arc<Ledger> {
    static LEDGER: OnceLock<Arc<Ledger>> = OnceLock::new();
    LEDGER.get_or_init(|| Arc::new(Ledger::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(model: &'a Arc<str>, provider: &'a str, user: &'a str) -> CallRecord<'a> {
        CallRecord {
            endpoint: "/e",
            model,
            provider,
            user: Some(user),
            tenant: None,
            usage: Some(Usage::new(10, 5)),
            cost_usd: Some(Decimal::new(1, 2)),
        }
    }

    #[test]
    fn users_past_the_cap_add_up_under_other() {
        let ledger = Ledger::new();
        let (model, provider): (Arc<str>, &str) = ("m".into(), "p");
        for n in 0..MAX_ROWS + 5 {
            ledger.record(&call(&model, provider, &format!("user-{n}")));
        }
        // A known user still gets its own row.
        ledger.record(&call(&model, provider, "user-0"));
        let users = ledger.by_user();
        assert_eq!(users.len(), MAX_ROWS + 1);
        let other = users.iter().find(|(name, _)| name == OTHER).map(|(_, t)| t);
        assert_eq!(other.map(|t| t.calls), Some(5));
        let first = users
            .iter()
            .find(|(name, _)| name == "user-0")
            .map(|(_, t)| t);
        assert_eq!(first.map(|t| t.calls), Some(2));
        assert_eq!(ledger.total().calls, MAX_ROWS as u64 + 6);
        assert_eq!(
            ledger.total().cost_usd,
            Decimal::new(1, 2) * Decimal::from(MAX_ROWS + 6)
        );
    }
}
