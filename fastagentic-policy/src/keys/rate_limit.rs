//! `rate_limit(...)`: requests and tokens per minute per scope (SPEC §3.2).

use super::{Choice, Count, Key, Kind, Problem};
use crate::OnLimit;

/// The policy's name in attributes.
pub const POLICY: &str = "rate_limit";

/// How many requests may wait at once in `queue` mode.
pub const DEFAULT_QUEUE_CAPACITY: u32 = 64;
/// Tokens reserved for a request that brings no estimate of its own.
pub const DEFAULT_TOKEN_ESTIMATE: u32 = 1000;

const fn limit(name: &'static str) -> Count {
    Count {
        name,
        min: 1,
        max: u32::MAX,
        why: "a zero limit refuses everything; leave it out for no limit",
    }
}

/// `requests_per_minute`.
pub const REQUESTS_PER_MINUTE: Count = limit("requests_per_minute");
/// `tokens_per_minute`.
pub const TOKENS_PER_MINUTE: Count = limit("tokens_per_minute");
/// `per_user_rpm`.
pub const PER_USER_RPM: Count = limit("per_user_rpm");
/// `per_user_tpm`.
pub const PER_USER_TPM: Count = limit("per_user_tpm");
/// `per_tenant_rpm`.
pub const PER_TENANT_RPM: Count = limit("per_tenant_rpm");
/// `per_tenant_tpm`.
pub const PER_TENANT_TPM: Count = limit("per_tenant_tpm");

/// `on_limit`.
pub const ON_LIMIT: Choice = Choice {
    name: "on_limit",
    enum_name: "OnLimit",
    names: OnLimit::NAMES,
    variants: OnLimit::VARIANTS,
};

/// `queue_capacity`.
pub const QUEUE_CAPACITY: Count = Count {
    name: "queue_capacity",
    min: 0,
    max: u32::MAX,
    why: "",
};

/// `token_estimate`.
pub const TOKEN_ESTIMATE: Count = Count {
    name: "token_estimate",
    min: 0,
    max: u32::MAX,
    why: "",
};

/// Every key of `rate_limit(...)`.
pub const KEYS: &[Key] = &[
    Key {
        kind: Kind::Count(REQUESTS_PER_MINUTE),
        setter: "requests_per_minute",
    },
    Key {
        kind: Kind::Count(TOKENS_PER_MINUTE),
        setter: "tokens_per_minute",
    },
    Key {
        kind: Kind::Count(PER_USER_RPM),
        setter: "per_user_rpm",
    },
    Key {
        kind: Kind::Count(PER_USER_TPM),
        setter: "per_user_tpm",
    },
    Key {
        kind: Kind::Count(PER_TENANT_RPM),
        setter: "per_tenant_rpm",
    },
    Key {
        kind: Kind::Count(PER_TENANT_TPM),
        setter: "per_tenant_tpm",
    },
    Key {
        kind: Kind::Choice(ON_LIMIT),
        setter: "on_limit",
    },
    Key {
        kind: Kind::Count(QUEUE_CAPACITY),
        setter: "queue_capacity",
    },
    Key {
        kind: Kind::Count(TOKEN_ESTIMATE),
        setter: "token_estimate",
    },
];

/// Queue mode needs room for at least one waiting request.
pub fn check_queue(on_limit: OnLimit, capacity: u32) -> Result<(), Problem> {
    if on_limit != OnLimit::Queue || capacity > 0 {
        return Ok(());
    }
    Err(Problem::new(
        QUEUE_CAPACITY.name,
        "`queue_capacity` must be greater than zero with `on_limit = \"queue\"`",
        "queue mode needs room for at least one waiting request",
    ))
}
