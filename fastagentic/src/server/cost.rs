//! What a request cost, as the client sees it.
//!
//! Every endpoint answer carries the run's spending (see [`crate::spend`]):
//!
//! - JSON answers (success or error) have `X-Fastagentic-Cost-Usd` — the dollars, in
//!   decimal, absent when some call could not be priced — and `X-Fastagentic-Tokens`, the
//!   tokens over every call, when any call reported usage.
//! - Streams send an `event: cost` just before `done` (or `error`), with
//!   `{"cost_usd", "usage", "models": [{"model", "provider", "calls", "usage", "cost_usd",
//!   "priced_usd", "unpriced_calls"}]}`: one entry per model used, so a fallback's price is
//!   visible. A `cost_usd` is `null`, never `0.0`, when a call in it could not be priced.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::spend::{ModelSpend, Spend};

/// `X-Fastagentic-Cost-Usd`: the request's cost in US dollars, when every call was priced.
pub const COST_USD: HeaderName = HeaderName::from_static("x-fastagentic-cost-usd");
/// `X-Fastagentic-Tokens`: the tokens the request's LLM calls used.
pub const TOKENS: HeaderName = HeaderName::from_static("x-fastagentic-tokens");

/// Adds the cost headers for a run that made LLM calls.
pub(crate) fn insert_headers(headers: &mut HeaderMap, spend: &Spend) {
    if spend.calls() == 0 {
        return;
    }
    if let Some(cost) = spend.cost_usd()
        && let Ok(value) = HeaderValue::from_str(&cost.normalize().to_string())
    {
        headers.insert(COST_USD, value);
    }
    if let Some(usage) = spend.usage() {
        headers.insert(TOKENS, HeaderValue::from(usage.total));
    }
}

/// The data of a stream's `cost` event, or `None` when the run made no LLM call.
pub(crate) fn summary(spend: &Spend) -> Option<Value> {
    if spend.calls() == 0 {
        return None;
    }
    let cost = spend.cost_usd().and_then(|cost| f64::try_from(cost).ok());
    let models: Vec<Value> = spend.by_model().iter().map(model_summary).collect();
    Some(json!({
        "cost_usd": cost,
        "usage": spend.usage(),
        "models": models,
    }))
}

/// One model's entry. Its `cost_usd` is `null` when any of its calls could not be priced,
/// as the request's is: `0.0` would read as "free", and a partial sum as the whole bill.
/// What the priced calls did cost is in `priced_usd`.
fn model_summary(model: &ModelSpend) -> Value {
    let dollars = |d: rust_decimal::Decimal| f64::try_from(d).ok();
    let cost = if model.unpriced_calls > 0 {
        None
    } else {
        dollars(model.cost_usd)
    };
    json!({
        "model": model.model,
        "provider": model.provider,
        "calls": model.calls,
        "usage": model.usage,
        "cost_usd": cost,
        "priced_usd": dollars(model.cost_usd),
        "unpriced_calls": model.unpriced_calls,
    })
}
