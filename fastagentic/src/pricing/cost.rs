//! What a call cost: [`Cost`], computed from a [`ModelPrice`] and a normalized [`Usage`].

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;

use super::table::ModelPrice;
use crate::llm::Usage;

/// The price of one call (or a sum of calls), in US dollars, exact decimals.
///
/// [`Usage`] is already the same across providers: `input` holds the whole prompt (cache
/// reads and writes included, also for Anthropic, whose client adds them up) and `output`
/// holds everything generated (reasoning included, also for Gemini, whose client adds the
/// thoughts). The classes billed are:
///
/// | Class | Tokens | Rate (per million) |
/// |---|---|---|
/// | `input` | `input − cache_read − cache_write` (never below 0) | `input` |
/// | `cached_input` | `cache_read` | `cached_input`, else `input` |
/// | `cache_write` | `cache_write` | `cache_write`, else `input` |
/// | `output` | `output − reasoning` if the model has a `reasoning` rate, else all of `output` | `output` |
/// | `reasoning` | `reasoning` if the model has a `reasoning` rate, else nothing | `reasoning` |
///
/// When `input` is *strictly* greater than the model's long-context threshold, every class
/// is billed at the tier's rates. A cache rate the tier does not list is the model's base
/// cache rate scaled like input (`base cache rate × tier input ÷ base input`), which is how
/// every published tier behaves; a reasoning rate the tier does not list is the tier's output
/// rate.
///
/// Serialized as a JSON object whose amounts are JSON numbers, like
/// [`Completion::cost_usd`](crate::llm::Completion::cost_usd): `{"model": "gpt-4o", "input":
/// 0.0025, ..., "total": 0.0125, "long_context": false}`. Put `total` in a response as
/// `cost_usd`; use its `Display` (`cost.total.to_string()`) where the exact digits matter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Cost {
    /// The table name of the model priced (`gpt-4o-mini` for `openai/gpt-4o-mini-2024-07-18`).
    pub model: Arc<str>,
    /// Fresh prompt tokens.
    #[serde(with = "rust_decimal::serde::float")]
    pub input: Decimal,
    /// Prompt tokens read from the cache.
    #[serde(with = "rust_decimal::serde::float")]
    pub cached_input: Decimal,
    /// Prompt tokens written to the cache.
    #[serde(with = "rust_decimal::serde::float")]
    pub cache_write: Decimal,
    /// Generated tokens (reasoning included unless the model bills it apart).
    #[serde(with = "rust_decimal::serde::float")]
    pub output: Decimal,
    /// Reasoning tokens billed at their own rate (0 when the model has none).
    #[serde(with = "rust_decimal::serde::float")]
    pub reasoning: Decimal,
    /// The sum of the five amounts above.
    #[serde(with = "rust_decimal::serde::float")]
    pub total: Decimal,
    /// Whether the long-context tier's rates were used (for a sum: any part).
    pub long_context: bool,
}

impl Cost {
    /// A zero cost for `model`, to add other costs to.
    pub fn zero(model: impl Into<Arc<str>>) -> Self {
        Cost {
            model: model.into(),
            ..Cost::default()
        }
    }

    /// `total` as an `f64`, for metrics (may round in the last digits).
    pub fn total_f64(&self) -> f64 {
        use rust_decimal::prelude::ToPrimitive;
        self.total.to_f64().unwrap_or(f64::MAX)
    }

    /// Adds `other`'s amounts to this one. The model name stays this one's (or becomes
    /// `other`'s if this one has none); keep costs of different models apart if you need
    /// them by model.
    pub fn accumulate(&mut self, other: &Cost) {
        if self.model.is_empty() {
            self.model = other.model.clone();
        }
        self.input = self.input.saturating_add(other.input);
        self.cached_input = self.cached_input.saturating_add(other.cached_input);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.output = self.output.saturating_add(other.output);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
        self.total = self.total.saturating_add(other.total);
        self.long_context |= other.long_context;
    }
}

/// Sums two costs with [`Cost::accumulate`].
impl std::ops::Add for Cost {
    type Output = Cost;

    fn add(mut self, other: Cost) -> Cost {
        self.accumulate(&other);
        self
    }
}

/// Adds with [`Cost::accumulate`].
impl std::ops::AddAssign<&Cost> for Cost {
    fn add_assign(&mut self, other: &Cost) {
        self.accumulate(other);
    }
}

/// `tokens` at `rate` USD per million tokens.
fn amount(tokens: u64, rate: Decimal) -> Decimal {
    let million = Decimal::from(1_000_000u32);
    let product = Decimal::from(tokens).saturating_mul(rate);
    product
        .checked_div(million)
        .unwrap_or(Decimal::MAX)
        .normalize()
}

/// A base cache rate carried into a tier that does not list its own: scaled like input.
fn scaled(base: Decimal, base_input: Decimal, tier_input: Decimal) -> Decimal {
    if base_input.is_zero() {
        return tier_input;
    }
    base.saturating_mul(tier_input)
        .checked_div(base_input)
        .unwrap_or(tier_input)
}

impl ModelPrice {
    /// The cost of `usage` at this model's prices (the rules are at [`Cost`]).
    pub fn cost(&self, usage: &Usage) -> Cost {
        struct Rates {
            input: Decimal,
            output: Decimal,
            cached: Decimal,
            write: Decimal,
            reasoning: Option<Decimal>,
        }
        let base = Rates {
            input: self.input,
            output: self.output,
            cached: self.cached_input.unwrap_or(self.input),
            write: self.cache_write.unwrap_or(self.input),
            reasoning: self.reasoning,
        };
        let tier = self
            .long_context
            .as_ref()
            .filter(|tier| usage.input > tier.threshold);
        let rates = match tier {
            None => base,
            Some(tier) => Rates {
                input: tier.input,
                output: tier.output,
                cached: tier
                    .cached_input
                    .unwrap_or_else(|| match self.cached_input {
                        Some(c) => scaled(c, self.input, tier.input),
                        None => tier.input,
                    }),
                write: tier.cache_write.unwrap_or_else(|| match self.cache_write {
                    Some(c) => scaled(c, self.input, tier.input),
                    None => tier.input,
                }),
                reasoning: self
                    .reasoning
                    .map(|_| tier.reasoning.unwrap_or(tier.output)),
            },
        };

        let fresh = usage
            .input
            .saturating_sub(usage.cache_read)
            .saturating_sub(usage.cache_write);
        let input = amount(fresh, rates.input);
        let cached_input = amount(usage.cache_read, rates.cached);
        let cache_write = amount(usage.cache_write, rates.write);
        let (output, reasoning) = match rates.reasoning {
            Some(rate) => (
                amount(usage.output.saturating_sub(usage.reasoning), rates.output),
                amount(usage.reasoning.min(usage.output), rate),
            ),
            None => (amount(usage.output, rates.output), Decimal::ZERO),
        };
        let total = input
            .saturating_add(cached_input)
            .saturating_add(cache_write)
            .saturating_add(output)
            .saturating_add(reasoning)
            .normalize();
        Cost {
            model: self.name.clone(),
            input,
            cached_input,
            cache_write,
            output,
            reasoning,
            total,
            long_context: tier.is_some(),
        }
    }
}
