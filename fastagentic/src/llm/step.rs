//! One model call of an agent loop, as the loop's answer reports it.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;

use super::completion::{Completion, Usage};

/// One model call of an agent loop: who answered, what it used and cost, and which tools
/// it asked for (none on the last step, which answered).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AgentStep {
    /// The model that answered, as the provider named it.
    pub model: String,
    /// The provider that answered.
    pub provider: Arc<str>,
    /// Tokens the call used, when the provider said.
    pub usage: Option<Usage>,
    /// What the call cost in US dollars, when its usage and price are known.
    #[serde(with = "crate::usd::float_option")]
    pub cost_usd: Option<Decimal>,
    /// The tools it asked for, in order.
    pub tool_calls: Vec<String>,
}

impl AgentStep {
    pub(crate) fn of(completion: &Completion) -> Self {
        AgentStep {
            model: completion.model.clone(),
            provider: completion.provider.clone(),
            usage: completion.usage,
            cost_usd: completion.cost_usd,
            tool_calls: completion
                .tool_calls
                .iter()
                .map(|c| c.name.clone())
                .collect(),
        }
    }
}
