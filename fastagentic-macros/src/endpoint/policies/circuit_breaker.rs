//! `circuit_breaker(...)` and `circuit_breaker_for("model", ...)`: the keys of
//! `CircuitBreakerPolicyBuilder`'s serde form.

use proc_macro2::TokenStream;
use quote::quote;

use super::super::diag::Errors;
use super::super::settings::{Key, Kind, Scope, Settings, Value};
use super::{Policy, builder};

/// The runtime's default `minimum_calls`, used when `failure_rate_threshold` comes
/// alone: the builder takes the two together. `tests/tests/endpoints.rs` compares the
/// result with the serde form's default, so a change of the runtime's default is caught.
const DEFAULT_MINIMUM_CALLS: u32 = 20;

/// The largest probe counts the breaker's packed state can hold.
const COUNTER_MAX: u32 = (1 << 15) - 1;

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: "circuit_breaker",
        keys: KEYS,
    },
    ty: "CircuitBreakerPolicy",
    check,
    build,
};

const KEYS: &[Key] = &[
    Key {
        name: "failure_threshold",
        kind: Kind::Count {
            min: 1,
            max: u32::MAX,
            why: "use 1 or more failures to open",
        },
        setter: "failure_threshold",
    },
    Key {
        name: "failure_window_ms",
        kind: Kind::Millis {
            min: 1000,
            why: "failures are counted over seconds, not instants",
        },
        setter: "failure_window",
    },
    Key {
        name: "reset_timeout_ms",
        kind: Kind::Millis {
            min: 1,
            why: "an open breaker must rest before probing",
        },
        setter: "reset_timeout",
    },
    Key {
        name: "half_open_requests",
        kind: Kind::Count {
            min: 1,
            max: COUNTER_MAX,
            why: "a half-open breaker needs at least one probe to ever close",
        },
        setter: "half_open_requests",
    },
    Key {
        name: "success_threshold",
        kind: Kind::Count {
            min: 1,
            max: COUNTER_MAX,
            why: "use 1 or more probe successes to close",
        },
        setter: "success_threshold",
    },
    Key {
        name: "failure_on",
        kind: Kind::Classes,
        setter: "failure_on",
    },
    Key {
        name: "failure_rate_threshold",
        kind: Kind::Float {
            ok: |f| f > 0.0 && f <= 1.0,
            range: "greater than 0.0, at most 1.0",
            why: "it is the fraction of calls in the window that fail, e.g. 0.5",
        },
        setter: "",
    },
    Key {
        name: "minimum_calls",
        kind: Kind::Count {
            min: 1,
            max: u32::MAX,
            why: "a rate needs at least one call",
        },
        setter: "",
    },
    Key {
        name: "slow_call_ms",
        kind: Kind::Millis { min: 0, why: "" },
        setter: "slow_call",
    },
];

/// `minimum_calls` only means something with a failure rate.
fn check(settings: &Settings, errors: &mut Errors) {
    if let Some(minimum) = settings.get("minimum_calls")
        && !settings.is_given("failure_rate_threshold")
    {
        errors.at(
            &minimum.ident,
            "`minimum_calls` only applies with `failure_rate_threshold`: add \
             `failure_rate_threshold = 0.5` (the breaker then opens on a failure rate), or \
             remove `minimum_calls`",
        );
    }
}

fn build(settings: &Settings) -> TokenStream {
    let mut calls = settings.setter_calls();
    if let Some(rate) = settings.get("failure_rate_threshold") {
        let rate = rate.value.to_tokens();
        let minimum = match settings.get("minimum_calls") {
            Some(setting) => setting.value.to_tokens(),
            None => Value::Count(DEFAULT_MINIMUM_CALLS).to_tokens(),
        };
        calls.extend(quote!(.failure_rate_threshold(#rate, #minimum)));
    }
    builder("CircuitBreakerPolicy", calls)
}
