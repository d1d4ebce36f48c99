//! Finding the price of a model name as a provider or a caller spells it.

use std::collections::HashMap;
use std::sync::Arc;

use super::table::{ModelPrice, PriceTable};

/// No table prices this model. Costs for it are unknown, never zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error(
    "no price is known for model `{model}`; add it to a pricing table (a JSON file in the directory named by FASTAGENTIC_PRICING_DIR, or Pricing::with_table)"
)]
pub struct UnknownPrice {
    /// The model name as asked for.
    pub model: String,
}

/// Where a name points: (table index, model index).
pub(crate) type Index = HashMap<Box<str>, (usize, usize)>;

/// Builds the name index over `tables`; a name in two tables goes to the later table.
pub(crate) fn build_index(tables: &[Arc<PriceTable>]) -> Index {
    let mut index = Index::new();
    for (t, table) in tables.iter().enumerate() {
        for (m, model) in table.models.iter().enumerate() {
            let names = std::iter::once(&model.name).chain(model.aliases.iter());
            for name in names {
                if let Some((prev, _)) = index.insert(Box::from(&**name), (t, m))
                    && prev != t
                {
                    tracing::warn!(
                        model = &**name,
                        earlier = &*tables[prev].provider,
                        later = &*table.provider,
                        "a model name is priced by two pricing tables; the later table wins"
                    );
                }
            }
        }
    }
    index
}

/// The part of `name` before a snapshot suffix, if it ends with one.
pub(crate) fn snapshot_base(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let n = b.len();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let date_ok = |month: u32, day: u32| (1..=12).contains(&month) && (1..=31).contains(&day);
    // `-YYYY-MM-DD`
    if n > 11
        && b[n - 11] == b'-'
        && digits(n - 10..n - 6)
        && b[n - 6] == b'-'
        && digits(n - 5..n - 3)
        && b[n - 3] == b'-'
        && digits(n - 2..n)
        && date_ok(num(n - 5..n - 3), num(n - 2..n))
    {
        return Some(&name[..n - 11]);
    }
    // `-YYYYMMDD`
    if n > 9 && b[n - 9] == b'-' && digits(n - 8..n) && date_ok(num(n - 4..n - 2), num(n - 2..n)) {
        return Some(&name[..n - 9]);
    }
    // `-NNN`
    if n > 4 && b[n - 4] == b'-' && digits(n - 3..n) {
        return Some(&name[..n - 4]);
    }
    None
}

/// Applies the rules above; `None` when nothing matches.
pub(crate) fn resolve<'a>(
    tables: &'a [Arc<PriceTable>],
    index: &Index,
    model: &str,
) -> Option<&'a ModelPrice> {
    let get = |name: &str| {
        index
            .get(name)
            .and_then(|&(t, m)| tables.get(t).and_then(|table| table.models.get(m)))
    };
    let mut name = model;
    loop {
        if let Some(found) = get(name) {
            return Some(found);
        }
        if let Some(found) = snapshot_base(name).and_then(get) {
            return Some(found);
        }
        match name.split_once('/') {
            Some((_, rest)) if !rest.is_empty() => name = rest,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_base;

    #[test]
    fn snapshot_suffixes() {
        assert_eq!(snapshot_base("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(
            snapshot_base("claude-sonnet-4-5-20991231"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            snapshot_base("gemini-2.0-flash-001"),
            Some("gemini-2.0-flash")
        );
        assert_eq!(snapshot_base("gpt-4o-2024-13-01"), None);
        assert_eq!(snapshot_base("gpt-4o-20241301"), None);
        assert_eq!(snapshot_base("gemini-2.5-flash-preview-09-2025"), None);
        assert_eq!(snapshot_base("gpt-4o"), None);
        assert_eq!(snapshot_base("-001"), None);
        assert_eq!(snapshot_base("gpt-5.4-mini"), None);
        assert_eq!(snapshot_base("claude-opus-4-1"), None);
    }
}
