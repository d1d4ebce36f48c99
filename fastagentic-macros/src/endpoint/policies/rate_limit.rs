//! `rate_limit(...)`: the keys of `RateLimitPolicyBuilder`'s serde form.

use proc_macro2::TokenStream;

use super::super::diag::Errors;
use super::super::names::ON_LIMIT;
use super::super::settings::{Key, Kind, Scope, Settings, Value};
use super::{Policy, builder};

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: "rate_limit",
        keys: KEYS,
    },
    ty: "RateLimitPolicy",
    check,
    build,
};

/// Every limit: a zero one refuses everything.
const LIMIT: Kind = Kind::Count {
    min: 1,
    max: u32::MAX,
    why: "a zero limit refuses everything; leave it out for no limit",
};

const KEYS: &[Key] = &[
    Key {
        name: "requests_per_minute",
        kind: LIMIT,
        setter: "requests_per_minute",
    },
    Key {
        name: "tokens_per_minute",
        kind: LIMIT,
        setter: "tokens_per_minute",
    },
    Key {
        name: "per_user_rpm",
        kind: LIMIT,
        setter: "per_user_rpm",
    },
    Key {
        name: "per_user_tpm",
        kind: LIMIT,
        setter: "per_user_tpm",
    },
    Key {
        name: "per_tenant_rpm",
        kind: LIMIT,
        setter: "per_tenant_rpm",
    },
    Key {
        name: "per_tenant_tpm",
        kind: LIMIT,
        setter: "per_tenant_tpm",
    },
    Key {
        name: "on_limit",
        kind: Kind::Choice(&ON_LIMIT),
        setter: "on_limit",
    },
    Key {
        name: "queue_capacity",
        kind: Kind::Count {
            min: 0,
            max: u32::MAX,
            why: "",
        },
        setter: "queue_capacity",
    },
    Key {
        name: "token_estimate",
        kind: Kind::Count {
            min: 0,
            max: u32::MAX,
            why: "",
        },
        setter: "token_estimate",
    },
];

/// Queue mode needs room in the queue. (An empty `rate_limit()` is allowed and limits
/// nothing, like the builder's.)
fn check(settings: &Settings, errors: &mut Errors) {
    let queued = settings
        .get("on_limit")
        .is_some_and(|s| matches!(s.value, Value::Choice(_, "Queue")));
    if let Some(capacity) = settings.get("queue_capacity")
        && queued
        && matches!(capacity.value, Value::Count(0))
    {
        errors.at(
            &capacity.tokens,
            "`queue_capacity` must be greater than zero with `on_limit = \"queue\"`: queue \
             mode needs room for at least one waiting request",
        );
    }
}

fn build(settings: &Settings) -> TokenStream {
    builder("RateLimitPolicy", settings.setter_calls())
}
