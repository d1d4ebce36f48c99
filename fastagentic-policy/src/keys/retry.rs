//! `retry(...)`: attempts, backoff, which classes, and the retry budget (SPEC §3.5).

use super::{Choice, Count, Float, Key, Kind, Millis, Nested, Problem};
use crate::Backoff;

/// The policy's name in attributes.
pub const POLICY: &str = "retry";

/// Attempts in all, the first call included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// The first retry's delay.
pub const DEFAULT_INITIAL_DELAY_MS: u64 = 1000;
/// The longest backoff delay.
pub const DEFAULT_MAX_DELAY_MS: u64 = 30_000;
/// The growth factor of exponential backoff.
pub const DEFAULT_MULTIPLIER: f64 = 2.0;
/// Whether delays are randomized.
pub const DEFAULT_JITTER: bool = true;
/// The jitter spread: a delay `d` becomes uniform in `d × (1 ± factor)`.
pub const DEFAULT_JITTER_FACTOR: f64 = 0.25;
/// The longest server-directed delay that is slept.
pub const DEFAULT_MAX_RETRY_AFTER_MS: u64 = 60_000;
/// Consecutive `overloaded` errors after which a model is given up.
pub const DEFAULT_OVERLOAD_LIMIT: u32 = 3;
/// The smallest `max_tokens` context-overflow recovery lowers to.
pub const DEFAULT_CONTEXT_OVERFLOW_FLOOR: u32 = 3000;

/// How long the budget remembers a request or retry.
pub const DEFAULT_BUDGET_TTL_MS: u64 = 10_000;
/// Retries per second always allowed.
pub const DEFAULT_BUDGET_MIN_RETRIES_PER_SEC: u32 = 10;
/// Extra retries allowed per request seen.
pub const DEFAULT_BUDGET_RETRY_RATIO: f64 = 0.2;

/// `max_attempts`.
pub const MAX_ATTEMPTS: Count = Count {
    name: "max_attempts",
    min: 1,
    max: u32::MAX,
    why: "it counts the first call, so use 1 for no retries",
};

/// `backoff`.
pub const BACKOFF: Choice = Choice {
    name: "backoff",
    enum_name: "Backoff",
    names: Backoff::NAMES,
    variants: Backoff::VARIANTS,
};

/// `initial_delay_ms`.
pub const INITIAL_DELAY: Millis = any_delay("initial_delay_ms");
/// `max_delay_ms`.
pub const MAX_DELAY: Millis = any_delay("max_delay_ms");
/// `max_retry_after_ms`.
pub const MAX_RETRY_AFTER: Millis = any_delay("max_retry_after_ms");

const fn any_delay(name: &'static str) -> Millis {
    Millis {
        name,
        min: 0,
        why: "",
    }
}

/// `multiplier`.
pub const MULTIPLIER: Float = Float {
    name: "multiplier",
    ok: |f| f >= 1.0,
    range: "1.0 or more",
    why: "exponential backoff multiplies the delay by it, and must not shrink it",
};

/// `jitter_factor`.
pub const JITTER_FACTOR: Float = Float {
    name: "jitter_factor",
    ok: |f| (0.0..=1.0).contains(&f),
    range: "0.0..=1.0",
    why: "a delay d becomes uniform in d × (1 ± jitter_factor); 0.25 is the default",
};

/// `overload_limit`.
pub const OVERLOAD_LIMIT: Count = Count {
    name: "overload_limit",
    min: 1,
    max: u32::MAX,
    why: "it counts consecutive overloaded errors, so use 1 or more",
};

/// `context_overflow_floor`.
pub const CONTEXT_OVERFLOW_FLOOR: Count = Count {
    name: "context_overflow_floor",
    min: 0,
    max: u32::MAX,
    why: "",
};

/// `budget(ttl_ms = ...)`.
pub const BUDGET_TTL: Millis = Millis {
    name: "ttl_ms",
    min: 1000,
    why: "a budget counts requests over seconds",
};

/// `budget(min_retries_per_sec = ...)`.
pub const BUDGET_MIN_RETRIES_PER_SEC: Count = Count {
    name: "min_retries_per_sec",
    min: 0,
    max: u32::MAX,
    why: "",
};

/// `budget(retry_ratio = ...)`.
pub const BUDGET_RETRY_RATIO: Float = Float {
    name: "retry_ratio",
    ok: |f| (0.0..=1000.0).contains(&f),
    range: "0.0..=1000.0",
    why: "it is the retries allowed per request, e.g. 0.2 for one per five",
};

/// Every key of `retry(...)`, in the order the guide lists them.
pub const KEYS: &[Key] = &[
    Key {
        kind: Kind::Count(MAX_ATTEMPTS),
        setter: "max_attempts",
    },
    Key {
        kind: Kind::Choice(BACKOFF),
        setter: "backoff",
    },
    Key {
        kind: Kind::Millis(INITIAL_DELAY),
        setter: "initial_delay",
    },
    Key {
        kind: Kind::Millis(MAX_DELAY),
        setter: "max_delay",
    },
    Key {
        kind: Kind::Float(MULTIPLIER),
        setter: "multiplier",
    },
    Key {
        kind: Kind::Flag("jitter"),
        setter: "jitter",
    },
    Key {
        kind: Kind::Float(JITTER_FACTOR),
        setter: "jitter_factor",
    },
    Key {
        kind: Kind::Classes("retry_on"),
        setter: "retry_on",
    },
    Key {
        kind: Kind::Classes("no_retry_on"),
        setter: "no_retry_on",
    },
    Key {
        kind: Kind::Millis(MAX_RETRY_AFTER),
        setter: "max_retry_after",
    },
    Key {
        kind: Kind::Count(OVERLOAD_LIMIT),
        setter: "overload_limit",
    },
    Key {
        kind: Kind::Count(CONTEXT_OVERFLOW_FLOOR),
        setter: "context_overflow_floor",
    },
    Key {
        kind: Kind::Nested(Nested {
            name: "budget",
            keys: BUDGET_KEYS,
        }),
        setter: "",
    },
];

/// The keys of `budget(...)`; the setters name the fields of the runtime's
/// `RetryBudgetPolicy`.
pub const BUDGET_KEYS: &[Key] = &[
    Key {
        kind: Kind::Millis(BUDGET_TTL),
        setter: "ttl",
    },
    Key {
        kind: Kind::Count(BUDGET_MIN_RETRIES_PER_SEC),
        setter: "min_retries_per_sec",
    },
    Key {
        kind: Kind::Float(BUDGET_RETRY_RATIO),
        setter: "retry_ratio",
    },
];

/// `max_delay_ms` may not be below `initial_delay_ms`. `None` stands for a key left at
/// its default; the problem blames the key that was given (`max_delay_ms` if both were).
pub fn check_delays(initial_ms: Option<u64>, max_ms: Option<u64>) -> Result<(), Problem> {
    let initial = initial_ms.unwrap_or(DEFAULT_INITIAL_DELAY_MS);
    let max = max_ms.unwrap_or(DEFAULT_MAX_DELAY_MS);
    if max >= initial {
        return Ok(());
    }
    let (key, message) = match (max_ms, initial_ms) {
        (Some(_), given) => {
            let default = if given.is_some() { "" } else { ", the default" };
            (
                MAX_DELAY.name,
                format!(
                    "`max_delay_ms` ({max}) is below `initial_delay_ms` ({initial}{default}); \
                     raise `max_delay_ms` or lower `initial_delay_ms`"
                ),
            )
        }
        (None, _) => (
            INITIAL_DELAY.name,
            format!(
                "`initial_delay_ms` ({initial}) is above `max_delay_ms` ({max}, the default); \
                 set `max_delay_ms` too"
            ),
        ),
    };
    Err(Problem::new(key, message, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_blame_the_key_that_was_given() {
        assert!(check_delays(None, None).is_ok());
        assert!(check_delays(Some(500), Some(500)).is_ok());
        let both = check_delays(Some(1000), Some(500)).unwrap_err();
        assert_eq!(both.key, "max_delay_ms");
        assert!(!both.message.contains("the default"), "{both}");
        let max_only = check_delays(None, Some(500)).unwrap_err();
        assert!(
            max_only.message.contains("(1000, the default)"),
            "{max_only}"
        );
        let initial_only = check_delays(Some(60_000), None).unwrap_err();
        assert_eq!(initial_only.key, "initial_delay_ms");
    }
}
