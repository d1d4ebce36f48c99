//! `timeout(...)`: the keys of `fastagentic_policy::keys::timeout`.

use fastagentic_policy::keys::timeout as keys;

use super::Policy;
use crate::attr::Errors;
use crate::attr::settings::{Scope, Settings};

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: keys::POLICY,
        keys: keys::KEYS,
    },
    ty: "TimeoutPolicy",
    check,
    calls: Settings::setter_calls,
};

/// `on_timeout` is checked against `durable`, another key of the endpoint, where both
/// are known (`Args::check_durable`); nothing within `timeout(...)` alone to check.
fn check(_: &Settings, _: &mut Errors) {}
