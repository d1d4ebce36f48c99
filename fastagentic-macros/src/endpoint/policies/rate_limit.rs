//! `rate_limit(...)`: the keys of `fastagentic_policy::keys::rate_limit`.

use fastagentic_policy::OnLimit;
use fastagentic_policy::keys::rate_limit as keys;

use super::Policy;
use crate::attr::Errors;
use crate::attr::settings::{Scope, Settings, Value};

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: keys::POLICY,
        keys: keys::KEYS,
    },
    ty: "RateLimitPolicy",
    check,
    calls: Settings::setter_calls,
};

/// Queue mode needs room in the queue. (An empty `rate_limit()` is allowed and limits
/// nothing, like the builder's.)
fn check(settings: &Settings, errors: &mut Errors) {
    let queued = settings.get(keys::ON_LIMIT.name).is_some_and(
        |s| matches!(s.value, Value::Choice(_, v) if v == OnLimit::Queue.variant_name()),
    );
    let on_limit = if queued {
        OnLimit::Queue
    } else {
        OnLimit::Reject
    };
    if let Some(capacity) = settings.get(keys::QUEUE_CAPACITY.name)
        && let Value::Count(n) = capacity.value
        && let Err(problem) = keys::check_queue(on_limit, n)
    {
        errors.at(&capacity.tokens, problem);
    }
}
