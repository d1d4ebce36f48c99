//! The table format: parsing a JSON table and checking it before anything prices with it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use time::Date;
use time::macros::format_description;

/// The table format version this crate reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The schema chapter readers are pointed to when a table is wrong.
const SCHEMA_HINT: &str = "the table format is described in the book chapter \"Pricing and cost\"";

/// Why a pricing table could not be loaded.
///
/// Every message names the file, and where it applies the model and the field, and says how
/// to repair the table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// The file or directory could not be read.
    #[error("cannot read pricing table `{path}`: {source}; check the path and its permissions")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON, has an unknown field, or a value of the wrong type.
    #[error("{file}: at `{location}`: {message}; correct or remove that field ({SCHEMA_HINT})")]
    Syntax {
        /// The file.
        file: String,
        /// Where in the document (`models.gpt-4o.inptu`), as far as the parser got.
        location: String,
        /// The parser's message.
        message: String,
    },
    /// A table-level field is missing or wrong.
    #[error("{file}: field `{field}`: {problem}; {fix}")]
    Table {
        /// The file.
        file: String,
        /// The field (`as_of`, `currency`, ...).
        field: &'static str,
        /// What is wrong.
        problem: String,
        /// How to repair it.
        fix: String,
    },
    /// A required field of a model entry is absent.
    #[error("{file}: model `{model}`: field `{field}` is missing; add it ({SCHEMA_HINT})")]
    MissingField {
        /// The file.
        file: String,
        /// The model entry.
        model: String,
        /// The missing field (`input`, `long_context.threshold`, ...).
        field: &'static str,
    },
    /// A field of a model entry has a value that cannot be used.
    #[error("{file}: model `{model}`: field `{field}`: {problem}; {fix}")]
    InvalidField {
        /// The file.
        file: String,
        /// The model entry.
        model: String,
        /// The field.
        field: &'static str,
        /// What is wrong with the value.
        problem: String,
        /// How to repair it.
        fix: &'static str,
    },
    /// The same model name appears twice in `models`.
    #[error("{file}: model `{model}` is listed twice in `models`; keep one entry")]
    DuplicateModel {
        /// The file.
        file: String,
        /// The repeated name.
        model: String,
    },
    /// An alias targets a model this table does not define.
    #[error(
        "{file}: field `aliases`: alias `{alias}` points to model `{target}`, which this table does not define; add a `models.{target}` entry or remove the alias"
    )]
    DanglingAlias {
        /// The file.
        file: String,
        /// The alias.
        alias: String,
        /// The missing model it names.
        target: String,
    },
    /// An alias repeats a model name or another alias.
    #[error(
        "{file}: field `aliases`: alias `{alias}` (for model `{target}`) is already {clash}; a name may price one model only, so remove one of them"
    )]
    AliasCollision {
        /// The file.
        file: String,
        /// The alias.
        alias: String,
        /// The model it names.
        target: String,
        /// What it clashes with, in words.
        clash: String,
    },
}

/// The rates that apply to a whole request once its prompt passes a token threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LongContextTier {
    /// Prompt tokens (cache reads and writes included) above which the tier applies; the
    /// comparison is strict, a prompt of exactly `threshold` tokens is billed at base rates.
    pub threshold: u64,
    /// Input rate above the threshold, USD per million tokens.
    pub input: Decimal,
    /// Output rate above the threshold.
    pub output: Decimal,
    /// Cache-read rate above the threshold, when published.
    pub cached_input: Option<Decimal>,
    /// Cache-write rate above the threshold, when published.
    pub cache_write: Option<Decimal>,
    /// Reasoning rate above the threshold, when billed apart.
    pub reasoning: Option<Decimal>,
}

/// One model's prices, USD per million tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelPrice {
    /// The model's name in its table (the name costs are reported under).
    pub name: Arc<str>,
    /// The provider of the table it comes from.
    pub provider: Arc<str>,
    /// Fresh (not cached) input tokens.
    pub input: Decimal,
    /// Output tokens (reasoning included unless `reasoning` is set).
    pub output: Decimal,
    /// Input tokens read from the prompt cache; `None`: billed at `input`.
    pub cached_input: Option<Decimal>,
    /// Input tokens written to the prompt cache; `None`: billed at `input`.
    pub cache_write: Option<Decimal>,
    /// Reasoning tokens, only where the provider bills them apart from output.
    pub reasoning: Option<Decimal>,
    /// Higher rates for long prompts, if the model has them.
    pub long_context: Option<LongContextTier>,
    /// The input token limit, if known.
    pub context_window: Option<u64>,
    /// The output token limit, if known.
    pub max_output: Option<u64>,
    /// Other names priced as this model (dated snapshots, other spellings).
    pub aliases: Vec<Arc<str>>,
    /// When this price was last checked against a source.
    pub checked: Date,
    /// A remark on the price (a disagreement between sources, a scheduled change).
    pub note: Option<String>,
}

/// One provider's validated price table.
///
/// A table file is one JSON object:
///
/// | Field | Required | Meaning |
/// |---|---|---|
/// | `schema_version` | yes | `1` |
/// | `provider` | yes | The provider's name (`"openai"`); a table replaces the loaded table of the same provider. |
/// | `currency` | yes | `"USD"`, the only currency costs are kept in. |
/// | `as_of` | yes | The date (`YYYY-MM-DD`) of the price snapshot the table was built from. |
/// | `source` | no | Where the prices come from, free text. |
/// | `models` | yes | An object: model name → model entry (below). |
/// | `aliases` | no | An object: other name → model name of this table (dated snapshots, other spellings). |
///
/// A model entry: `input` and `output` (required), `cached_input`, `cache_write`, `reasoning`
/// (optional), all US dollars per million tokens written as JSON *strings* (`"0.075"`) so they
/// are read as exact decimals; `long_context` (optional: `threshold` in prompt tokens, `input`
/// and `output` required, `cached_input`, `cache_write`, `reasoning` optional); `context_window`
/// and `max_output` (optional token counts); `checked` (required: the date the price was last
/// checked against a source); `note` (optional free text). Any other field is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PriceTable {
    /// The file it was read from (as given to the loader).
    pub file: String,
    /// The table format version.
    pub schema_version: u32,
    /// The provider (`"openai"`, `"anthropic"`, `"google"`, or your own).
    pub provider: Arc<str>,
    /// Always `"USD"`.
    pub currency: String,
    /// The date of the price snapshot the table was built from; the table's age counts from it.
    pub as_of: Date,
    /// Where the prices come from.
    pub source: Option<String>,
    /// The models, in file order.
    pub models: Vec<ModelPrice>,
}

impl PriceTable {
    /// The model named `name` in this table, by its own name or an alias (no other rules).
    pub fn model(&self, name: &str) -> Option<&ModelPrice> {
        self.models
            .iter()
            .find(|m| &*m.name == name || m.aliases.iter().any(|a| &**a == name))
    }

    /// The earliest `checked` date of its models (`None` for an empty table).
    pub fn oldest_checked(&self) -> Option<Date> {
        self.models.iter().map(|m| m.checked).min()
    }

    /// How many names (models and aliases) the table prices.
    pub fn name_count(&self) -> usize {
        self.models.iter().map(|m| 1 + m.aliases.len()).sum()
    }
}

// ---- raw shapes, as written in the file ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    schema_version: Option<u32>,
    provider: Option<String>,
    currency: Option<String>,
    as_of: Option<String>,
    source: Option<String>,
    #[serde(default, deserialize_with = "ordered")]
    models: Option<Vec<(String, RawModel)>>,
    #[serde(default, deserialize_with = "ordered")]
    aliases: Option<Vec<(String, String)>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    input: Option<serde_json::Value>,
    output: Option<serde_json::Value>,
    cached_input: Option<serde_json::Value>,
    cache_write: Option<serde_json::Value>,
    reasoning: Option<serde_json::Value>,
    long_context: Option<RawTier>,
    context_window: Option<u64>,
    max_output: Option<u64>,
    checked: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    threshold: Option<u64>,
    input: Option<serde_json::Value>,
    output: Option<serde_json::Value>,
    cached_input: Option<serde_json::Value>,
    cache_write: Option<serde_json::Value>,
    reasoning: Option<serde_json::Value>,
}

/// Reads a JSON object into its entries in order, keeping repeated keys (a map would drop
/// them silently) so validation can report them.
fn ordered<'de, D, V>(de: D) -> Result<Option<Vec<(String, V)>>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
        type Value = Vec<(String, V)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object keyed by model name")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, V>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    de.deserialize_map(Entries(std::marker::PhantomData))
        .map(Some)
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

/// Parses and validates one table. `file` is only used in messages.
pub(crate) fn parse_table(file: &str, text: &str) -> Result<PriceTable, PricingError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: RawTable = serde_path_to_error::deserialize(de).map_err(|err| {
        let location = err.path().to_string();
        PricingError::Syntax {
            file: file.to_owned(),
            location,
            message: err.into_inner().to_string(),
        }
    })?;

    let table_err = |field: &'static str, problem: String, fix: String| PricingError::Table {
        file: file.to_owned(),
        field,
        problem,
        fix,
    };
    let missing = |field: &'static str| {
        table_err(
            field,
            "is missing".to_owned(),
            format!("add it at the top level ({SCHEMA_HINT})"),
        )
    };

    let schema_version = raw
        .schema_version
        .ok_or_else(|| missing("schema_version"))?;
    if schema_version != SCHEMA_VERSION {
        return Err(table_err(
            "schema_version",
            format!("version {schema_version} is not supported"),
            format!("write the table in format {SCHEMA_VERSION}"),
        ));
    }
    let provider = raw.provider.ok_or_else(|| missing("provider"))?;
    if provider.trim().is_empty() {
        return Err(table_err(
            "provider",
            "is empty".to_owned(),
            "name the provider, e.g. \"openai\"".to_owned(),
        ));
    }
    let currency = raw.currency.ok_or_else(|| missing("currency"))?;
    if currency != "USD" {
        return Err(table_err(
            "currency",
            format!("`{currency}` is not supported"),
            "convert the prices to US dollars and write \"USD\"".to_owned(),
        ));
    }
    let as_of_text = raw.as_of.ok_or_else(|| missing("as_of"))?;
    let as_of = parse_date(&as_of_text).ok_or_else(|| {
        table_err(
            "as_of",
            format!("`{as_of_text}` is not a date"),
            "write the snapshot date as YYYY-MM-DD".to_owned(),
        )
    })?;
    let raw_models = raw.models.ok_or_else(|| missing("models"))?;

    let provider: Arc<str> = Arc::from(provider);
    let mut models = Vec::with_capacity(raw_models.len());
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (name, raw_model) in raw_models {
        if positions.contains_key(&name) {
            return Err(PricingError::DuplicateModel {
                file: file.to_owned(),
                model: name,
            });
        }
        let model = model_entry(file, &name, &provider, raw_model)?;
        positions.insert(name, models.len());
        models.push(model);
    }

    let mut seen_aliases: HashSet<String> = HashSet::new();
    for (alias, target) in raw.aliases.unwrap_or_default() {
        if positions.contains_key(&alias) {
            return Err(PricingError::AliasCollision {
                file: file.to_owned(),
                alias: alias.clone(),
                target,
                clash: format!("the name of model `{alias}`"),
            });
        }
        if !seen_aliases.insert(alias.clone()) {
            return Err(PricingError::AliasCollision {
                file: file.to_owned(),
                alias,
                target,
                clash: "listed as an alias".to_owned(),
            });
        }
        let Some(&at) = positions.get(&target) else {
            return Err(PricingError::DanglingAlias {
                file: file.to_owned(),
                alias,
                target,
            });
        };
        models[at].aliases.push(Arc::from(alias));
    }

    Ok(PriceTable {
        file: file.to_owned(),
        schema_version,
        provider,
        currency,
        as_of,
        source: raw.source,
        models,
    })
}

fn model_entry(
    file: &str,
    name: &str,
    provider: &Arc<str>,
    raw: RawModel,
) -> Result<ModelPrice, PricingError> {
    let missing = |field: &'static str| PricingError::MissingField {
        file: file.to_owned(),
        model: name.to_owned(),
        field,
    };
    let price = |field: &'static str, value: Option<serde_json::Value>| {
        value.map(|v| price_value(file, name, field, v)).transpose()
    };

    let input = price("input", raw.input)?.ok_or_else(|| missing("input"))?;
    let output = price("output", raw.output)?.ok_or_else(|| missing("output"))?;
    let cached_input = price("cached_input", raw.cached_input)?;
    let cache_write = price("cache_write", raw.cache_write)?;
    let reasoning = price("reasoning", raw.reasoning)?;
    let long_context = match raw.long_context {
        None => None,
        Some(tier) => {
            let threshold = tier
                .threshold
                .ok_or_else(|| missing("long_context.threshold"))?;
            if threshold == 0 {
                return Err(PricingError::InvalidField {
                    file: file.to_owned(),
                    model: name.to_owned(),
                    field: "long_context.threshold",
                    problem: "is 0".to_owned(),
                    fix: "give the prompt size in tokens above which the tier applies, or remove `long_context`",
                });
            }
            Some(LongContextTier {
                threshold,
                input: price("long_context.input", tier.input)?
                    .ok_or_else(|| missing("long_context.input"))?,
                output: price("long_context.output", tier.output)?
                    .ok_or_else(|| missing("long_context.output"))?,
                cached_input: price("long_context.cached_input", tier.cached_input)?,
                cache_write: price("long_context.cache_write", tier.cache_write)?,
                reasoning: price("long_context.reasoning", tier.reasoning)?,
            })
        }
    };
    let checked_text = raw.checked.ok_or_else(|| missing("checked"))?;
    let checked = parse_date(&checked_text).ok_or_else(|| PricingError::InvalidField {
        file: file.to_owned(),
        model: name.to_owned(),
        field: "checked",
        problem: format!("`{checked_text}` is not a date"),
        fix: "write the date the price was last checked as YYYY-MM-DD",
    })?;

    Ok(ModelPrice {
        name: Arc::from(name),
        provider: provider.clone(),
        input,
        output,
        cached_input,
        cache_write,
        reasoning,
        long_context,
        context_window: raw.context_window,
        max_output: raw.max_output,
        aliases: Vec::new(),
        checked,
        note: raw.note,
    })
}

/// A price must be a JSON string holding a non-negative decimal, so it is read exactly.
fn price_value(
    file: &str,
    model: &str,
    field: &'static str,
    value: serde_json::Value,
) -> Result<Decimal, PricingError> {
    let invalid = |problem: String, fix: &'static str| PricingError::InvalidField {
        file: file.to_owned(),
        model: model.to_owned(),
        field,
        problem,
        fix,
    };
    let text = match value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Number(n) => {
            return Err(invalid(
                format!("the number {n} is not a string"),
                "quote the price (\"0.075\") so it is read as an exact decimal",
            ));
        }
        other => {
            return Err(invalid(
                format!("{other} is not a price"),
                "write USD per million tokens as a string, e.g. \"2.5\"",
            ));
        }
    };
    let amount = Decimal::from_str_exact(text.trim())
        .or_else(|_| Decimal::from_str(text.trim()))
        .map_err(|_| {
            invalid(
                format!("`{text}` is not a decimal number"),
                "write USD per million tokens as plain decimal digits, e.g. \"0.075\"",
            )
        })?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(invalid(
            format!("`{text}` is negative"),
            "prices are zero or more; fix the sign",
        ));
    }
    Ok(amount)
}
