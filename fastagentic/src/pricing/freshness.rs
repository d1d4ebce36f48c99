//! How old the loaded price tables are (see [`TableAge`]).

use std::sync::Arc;

use time::Date;

use super::Pricing;

/// Days after which a table counts as stale unless told otherwise.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 90;

/// The age of one table on a given day ([`Pricing::table_ages`]).
///
/// A table's age counts from its `as_of` date, the day of the price snapshot it was built
/// from (which is also the day its prices were checked against the providers). The oldest
/// per-model `checked` date is reported beside it but does not decide staleness: models a
/// provider has retired keep the last price anyone could check, which is older by nature.
///
/// A table is stale when its age is *more* than the allowed number of days: with the default
/// 90, a table dated 2026-07-18 is fine through 2026-10-16 and stale from 2026-10-17.
/// `cargo xtask pricing-age` prints this report; a weekly CI workflow runs it with `--strict`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableAge {
    /// The table's provider.
    pub provider: Arc<str>,
    /// The table's snapshot date.
    pub as_of: Date,
    /// The earliest `checked` date among its models.
    pub oldest_checked: Option<Date>,
    /// Whole days from `as_of` to the day asked about (negative if `as_of` is later).
    pub age_days: i64,
}

impl TableAge {
    /// Whether the table is older than `max_days`.
    pub fn is_stale(&self, max_days: i64) -> bool {
        self.age_days > max_days
    }
}

impl Pricing {
    /// The age of every table on `today`, in table order.
    pub fn table_ages(&self, today: Date) -> Vec<TableAge> {
        self.tables()
            .iter()
            .map(|table| TableAge {
                provider: table.provider.clone(),
                as_of: table.as_of,
                oldest_checked: table.oldest_checked(),
                age_days: (today - table.as_of).whole_days(),
            })
            .collect()
    }

    /// The tables older than `max_days` on `today`.
    pub fn stale_tables(&self, today: Date, max_days: i64) -> Vec<TableAge> {
        self.table_ages(today)
            .into_iter()
            .filter(|age| age.is_stale(max_days))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn embedded() -> Pricing {
        Pricing::embedded().expect("the shipped tables load")
    }

    #[test]
    fn fresh_two_weeks_after_the_snapshot() {
        let pricing = embedded();
        let ages = pricing.table_ages(date!(2026 - 08 - 01));
        assert_eq!(ages.len(), 3);
        for age in &ages {
            assert_eq!(age.as_of, date!(2026 - 07 - 18));
            assert_eq!(age.age_days, 14);
            assert!(!age.is_stale(DEFAULT_MAX_AGE_DAYS));
        }
        assert!(
            pricing
                .stale_tables(date!(2026 - 08 - 01), DEFAULT_MAX_AGE_DAYS)
                .is_empty()
        );
    }

    #[test]
    fn stale_in_december() {
        let pricing = embedded();
        let stale = pricing.stale_tables(date!(2026 - 12 - 01), DEFAULT_MAX_AGE_DAYS);
        assert_eq!(stale.len(), 3);
        assert!(stale.iter().all(|age| age.age_days == 136));
    }

    #[test]
    fn exactly_ninety_days_is_still_fresh() {
        let pricing = embedded();
        assert!(pricing.stale_tables(date!(2026 - 10 - 16), 90).is_empty());
        assert_eq!(pricing.stale_tables(date!(2026 - 10 - 17), 90).len(), 3);
    }

    #[test]
    fn oldest_checked_is_reported() {
        let pricing = embedded();
        let ages = pricing.table_ages(date!(2026 - 08 - 01));
        let openai = ages
            .iter()
            .find(|a| &*a.provider == "openai")
            .expect("openai");
        assert_eq!(openai.oldest_checked, Some(date!(2026 - 03 - 12)));
    }
}
