//! `circuit_breaker(...)` and `circuit_breaker_for("model", ...)` (SPEC §3.4).

use super::{Count, Float, Key, Kind, Millis, Problem};

/// The policy's name in attributes.
pub const POLICY: &str = "circuit_breaker";

/// Failures inside the window that open the breaker.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// The sliding window failures are counted in.
pub const DEFAULT_FAILURE_WINDOW_MS: u64 = 60_000;
/// How long the breaker stays open before probing.
pub const DEFAULT_RESET_TIMEOUT_MS: u64 = 30_000;
/// Probes allowed at once while half-open.
pub const DEFAULT_HALF_OPEN_REQUESTS: u32 = 2;
/// Probe successes that close the breaker.
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 3;
/// Calls in the window before a failure rate counts.
pub const DEFAULT_MINIMUM_CALLS: u32 = 20;

/// The largest probe count the breaker's packed state holds.
pub const COUNTER_MAX: u32 = (1 << 15) - 1;

/// `failure_threshold`.
pub const FAILURE_THRESHOLD: Count = Count {
    name: "failure_threshold",
    min: 1,
    max: u32::MAX,
    why: "use 1 or more failures to open",
};

/// `failure_window_ms`.
pub const FAILURE_WINDOW: Millis = Millis {
    name: "failure_window_ms",
    min: 1000,
    why: "failures are counted over seconds, not instants",
};

/// `reset_timeout_ms`.
pub const RESET_TIMEOUT: Millis = Millis {
    name: "reset_timeout_ms",
    min: 1,
    why: "an open breaker must rest before probing",
};

/// `half_open_requests`.
pub const HALF_OPEN_REQUESTS: Count = Count {
    name: "half_open_requests",
    min: 1,
    max: COUNTER_MAX,
    why: "a half-open breaker needs at least one probe to ever close",
};

/// `success_threshold`.
pub const SUCCESS_THRESHOLD: Count = Count {
    name: "success_threshold",
    min: 1,
    max: COUNTER_MAX,
    why: "use 1 or more probe successes to close",
};

/// `failure_rate_threshold`.
pub const FAILURE_RATE_THRESHOLD: Float = Float {
    name: "failure_rate_threshold",
    ok: |f| f > 0.0 && f <= 1.0,
    range: "greater than 0.0, at most 1.0",
    why: "it is the fraction of calls in the window that fail, e.g. 0.5",
};

/// `minimum_calls`.
pub const MINIMUM_CALLS: Count = Count {
    name: "minimum_calls",
    min: 1,
    max: u32::MAX,
    why: "a rate needs at least one call",
};

/// `slow_call_ms`.
pub const SLOW_CALL: Millis = Millis {
    name: "slow_call_ms",
    min: 0,
    why: "",
};

/// Every key of `circuit_breaker(...)`. `failure_rate_threshold` and `minimum_calls` go
/// to the builder together, so they have no setter of their own.
pub const KEYS: &[Key] = &[
    Key {
        kind: Kind::Count(FAILURE_THRESHOLD),
        setter: "failure_threshold",
    },
    Key {
        kind: Kind::Millis(FAILURE_WINDOW),
        setter: "failure_window",
    },
    Key {
        kind: Kind::Millis(RESET_TIMEOUT),
        setter: "reset_timeout",
    },
    Key {
        kind: Kind::Count(HALF_OPEN_REQUESTS),
        setter: "half_open_requests",
    },
    Key {
        kind: Kind::Count(SUCCESS_THRESHOLD),
        setter: "success_threshold",
    },
    Key {
        kind: Kind::Classes("failure_on"),
        setter: "failure_on",
    },
    Key {
        kind: Kind::Float(FAILURE_RATE_THRESHOLD),
        setter: "",
    },
    Key {
        kind: Kind::Count(MINIMUM_CALLS),
        setter: "",
    },
    Key {
        kind: Kind::Millis(SLOW_CALL),
        setter: "slow_call",
    },
];

/// `minimum_calls` only means something next to `failure_rate_threshold`.
pub fn check_minimum_calls(minimum_given: bool, rate_given: bool) -> Result<(), Problem> {
    if !minimum_given || rate_given {
        return Ok(());
    }
    Err(Problem::new(
        MINIMUM_CALLS.name,
        "`minimum_calls` only applies with `failure_rate_threshold`: add \
         `failure_rate_threshold = 0.5` (the breaker then opens on a failure rate), or \
         remove `minimum_calls`",
        "",
    ))
}
