//! Model prices and what calls cost.
//!
//! Three tables ship inside the crate (`pricing/openai.json`, `pricing/anthropic.json`,
//! `pricing/google.json` in the repository, built from a price snapshot of 2026-07-18). A
//! [`Pricing`] holds a set of tables, finds a model's price by name ([`Pricing::lookup`],
//! with its rules) and prices a call's [`Usage`](crate::llm::Usage)
//! ([`Pricing::cost`], rules at [`Cost`]) in exact decimals. A model no table
//! knows is an [`UnknownPrice`], never a cost of zero.
//!
//! [`global()`] is the set the framework uses: the shipped tables, with every `*.json` table
//! in the directory named by `FASTAGENTIC_PRICING_DIR` replacing the shipped table of its
//! provider. [`Pricing::table_ages`] tells how old the tables are.
//!
//! ```
//! use fastagentic::llm::Usage;
//! use fastagentic::pricing::{Decimal, Pricing};
//!
//! let pricing = Pricing::embedded()?;
//! let cost = pricing.cost("openai/gpt-4o-mini-2024-07-18", &Usage::new(1_000, 500))?;
//! // 1000 × $0.15/M + 500 × $0.60/M
//! assert_eq!(cost.total, Decimal::new(45, 5));
//! assert_eq!(&*cost.model, "gpt-4o-mini");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cost;
mod freshness;
mod lookup;
mod table;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use dashmap::DashSet;

pub use self::cost::Cost;
pub use self::freshness::{DEFAULT_MAX_AGE_DAYS, TableAge};
pub use self::lookup::UnknownPrice;
pub use self::table::{LongContextTier, ModelPrice, PriceTable, PricingError, SCHEMA_VERSION};
pub use rust_decimal::Decimal;

/// The environment variable naming a directory of tables that override the shipped ones.
pub const PRICING_DIR_ENV: &str = "FASTAGENTIC_PRICING_DIR";

/// The shipped tables: (file name used in messages, text).
const EMBEDDED: [(&str, &str); 3] = [
    (
        "pricing/openai.json",
        include_str!("../../../pricing/openai.json"),
    ),
    (
        "pricing/anthropic.json",
        include_str!("../../../pricing/anthropic.json"),
    ),
    (
        "pricing/google.json",
        include_str!("../../../pricing/google.json"),
    ),
];

/// How many distinct unknown model names get their own warning; past that, one more warning
/// says so and the rest are quiet (so odd names cannot grow memory without bound).
const MAX_WARNED: usize = 1024;

/// A set of price tables, one per provider, and the name index over them.
pub struct Pricing {
    tables: Vec<Arc<PriceTable>>,
    index: lookup::Index,
    warned: DashSet<Box<str>>,
}

impl std::fmt::Debug for Pricing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pricing")
            .field(
                "tables",
                &self
                    .tables
                    .iter()
                    .map(|t| (&*t.provider, t.models.len()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Pricing {
    /// No tables: every model is unknown.
    fn default() -> Self {
        Pricing {
            tables: Vec::new(),
            index: lookup::Index::new(),
            warned: DashSet::new(),
        }
    }
}

impl Pricing {
    /// The tables shipped in the crate.
    ///
    /// # Errors
    /// A [`PricingError`] if a shipped table is invalid (the crate's tests prevent that).
    pub fn embedded() -> Result<Pricing, PricingError> {
        EMBEDDED
            .iter()
            .try_fold(Pricing::default(), |pricing, (file, text)| {
                Ok(pricing.with_table(Pricing::from_json(file, text)?))
            })
    }

    /// The shipped tables, each replaced by the table of the same provider found in `dir`
    /// (every `*.json` file there); providers only `dir` has are added.
    ///
    /// # Errors
    /// A [`PricingError`] for the first file that cannot be read or is invalid.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Pricing, PricingError> {
        let mut pricing = Pricing::embedded()?;
        for path in json_files(dir.as_ref())? {
            pricing = pricing.with_table(read_table(&path)?);
        }
        Ok(pricing)
    }

    /// Parses and validates one table; `file_name` is only used in error messages.
    ///
    /// # Errors
    /// A [`PricingError`] naming the file, model and field at fault.
    pub fn from_json(file_name: &str, text: &str) -> Result<PriceTable, PricingError> {
        table::parse_table(file_name, text)
    }

    /// This set with `table` in place of the table of the same provider (or added).
    pub fn with_table(mut self, table: PriceTable) -> Self {
        let table = Arc::new(table);
        match self
            .tables
            .iter_mut()
            .find(|t| t.provider == table.provider)
        {
            Some(slot) => *slot = table,
            None => self.tables.push(table),
        }
        self.index = lookup::build_index(&self.tables);
        self.warned.clear();
        self
    }

    /// The tables, in load order.
    pub fn tables(&self) -> &[Arc<PriceTable>] {
        &self.tables
    }

    /// The table of `provider`, if loaded.
    pub fn table(&self, provider: &str) -> Option<&PriceTable> {
        self.tables
            .iter()
            .find(|t| &*t.provider == provider)
            .map(|t| &**t)
    }

    /// The price of `model`: by exact name or alias, then as a dated snapshot of a known
    /// name, then without a routing prefix.
    ///
    /// The rules, tried in this order and stopping at the first hit:
    ///
    /// 1. **Exact**: the name is a model of a table, or one of its aliases.
    /// 2. **Dated snapshot**: the name is a known name (model or alias) followed by `-` and a
    ///    *snapshot suffix*, which is exactly one of
    ///    - an ISO date `YYYY-MM-DD` (OpenAI: `gpt-4o-mini-2024-07-18`),
    ///    - a compact date `YYYYMMDD` (Anthropic: `claude-sonnet-4-5-20250929`),
    ///    - a three-digit version `NNN` (Google: `gemini-2.0-flash-001`).
    ///
    ///    Dates must have a month 01–12 and a day 01–31. The suffix is taken whole from the end of
    ///    the name, so `gpt-4o-mini-2025-01-01` can only be priced as `gpt-4o-mini` (the rest,
    ///    `mini-2025-01-01`, is not a snapshot suffix of `gpt-4o`): the known name is always the
    ///    longest one that leaves a valid suffix. Words such as `preview`, `latest` or `exp` are
    ///    not suffixes; such models need their own entry.
    /// 3. **Routing prefix**: if the name holds a `/`, everything up to and including the first
    ///    `/` is dropped (`openai/gpt-4o`, `mock/gpt-4o-mini`, `models/gemini-2.5-pro`) and rules
    ///    1–3 are tried again on the rest.
    ///
    /// Names are compared exactly (case matters). Anything else is an [`UnknownPrice`].
    ///
    /// # Errors
    /// [`UnknownPrice`] when no table prices the model; the first time a name is unknown a
    /// warning is logged.
    pub fn lookup(&self, model: &str) -> Result<&ModelPrice, UnknownPrice> {
        match lookup::resolve(&self.tables, &self.index, model) {
            Some(price) => Ok(price),
            None => {
                self.warn_unknown(model);
                Err(UnknownPrice {
                    model: model.to_owned(),
                })
            }
        }
    }

    /// What `usage` cost on `model` (the rules are at [`Cost`]).
    ///
    /// # Errors
    /// [`UnknownPrice`] when no table prices the model.
    pub fn cost(&self, model: &str, usage: &crate::llm::Usage) -> Result<Cost, UnknownPrice> {
        Ok(self.lookup(model)?.cost(usage))
    }

    fn warn_unknown(&self, model: &str) {
        if self.warned.contains(model) {
            return;
        }
        let len = self.warned.len();
        if len < MAX_WARNED {
            if self.warned.insert(Box::from(model)) {
                tracing::warn!(
                    model,
                    "no price is known for this model, so its calls have no cost; add it to a pricing table (see {PRICING_DIR_ENV})"
                );
            }
        } else if len == MAX_WARNED && self.warned.insert(Box::from("")) {
            tracing::warn!(
                "{MAX_WARNED} models without a price were reported; further ones are not logged"
            );
        }
    }
}

fn json_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, PricingError> {
    let io = |source| PricingError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_table(path: &Path) -> Result<PriceTable, PricingError> {
    let text = std::fs::read_to_string(path).map_err(|source| PricingError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Pricing::from_json(&path.display().to_string(), &text)
}

static GLOBAL: OnceLock<Arc<Pricing>> = OnceLock::new();

/// The tables the framework prices calls with, loaded on first use: the shipped tables,
/// overridden by the directory in `FASTAGENTIC_PRICING_DIR` if set.
///
/// Never fails: a shipped table or override file that does not load is logged with
/// `tracing::error!` and skipped, and the other tables stay in use.
pub fn global() -> &'static Arc<Pricing> {
    GLOBAL.get_or_init(|| Arc::new(load_global()))
}

fn load_global() -> Pricing {
    let mut pricing = Pricing::default();
    for (file, text) in EMBEDDED {
        match Pricing::from_json(file, text) {
            Ok(table) => pricing = pricing.with_table(table),
            Err(error) => tracing::error!(%error, "a shipped pricing table is invalid; skipped"),
        }
    }
    let Some(dir) = std::env::var_os(PRICING_DIR_ENV) else {
        return pricing;
    };
    let dir = std::path::PathBuf::from(dir);
    match json_files(&dir) {
        Ok(files) => {
            for path in files {
                match read_table(&path) {
                    Ok(table) => {
                        tracing::info!(file = %path.display(), provider = &*table.provider, "pricing table overridden");
                        pricing = pricing.with_table(table);
                    }
                    Err(error) => tracing::error!(
                        %error,
                        "a pricing table from {PRICING_DIR_ENV} is invalid; the table it would replace stays in use"
                    ),
                }
            }
        }
        Err(error) => tracing::error!(
            %error,
            "the {PRICING_DIR_ENV} directory cannot be read; the shipped tables stay in use"
        ),
    }
    pricing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

    #[test]
    fn shipped_tables_load() {
        let pricing = Pricing::embedded().expect("valid");
        let counts: Vec<_> = pricing
            .tables()
            .iter()
            .map(|t| (&*t.provider, t.models.len(), t.name_count()))
            .collect();
        assert_eq!(
            counts,
            [
                ("openai", 39, 64),
                ("anthropic", 17, 28),
                ("google", 20, 23)
            ]
        );
    }

    #[test]
    fn lookup_prefers_the_longest_name() {
        let pricing = Pricing::embedded().expect("valid");
        assert_eq!(
            &*pricing
                .lookup("gpt-4o-mini-2025-01-01")
                .expect("known")
                .name,
            "gpt-4o-mini"
        );
        assert_eq!(
            &*pricing
                .lookup("claude-sonnet-4-5-20991231")
                .expect("known")
                .name,
            "claude-sonnet-4-5"
        );
        assert_eq!(
            &*pricing.lookup("models/gemini-2.5-pro").expect("known").name,
            "gemini-2.5-pro"
        );
        assert!(pricing.lookup("gpt-4o-mini-preview").is_err());
    }

    #[test]
    fn unknown_is_an_error_and_warned_once() {
        let pricing = Pricing::embedded().expect("valid");
        let err = pricing.cost("nope-1", &Usage::new(1, 1)).unwrap_err();
        assert_eq!(err.model, "nope-1");
        assert!(pricing.warned.contains("nope-1"));
        let _ = pricing.lookup("nope-1");
        assert_eq!(pricing.warned.len(), 1);
    }

    #[test]
    fn global_has_the_shipped_tables() {
        assert!(global().lookup("gpt-4o").is_ok());
    }
}
