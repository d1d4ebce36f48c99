//! `timeout(...)`: the keys of `fastagentic_policy::keys::timeout`.

use fastagentic_policy::OnTimeout;
use fastagentic_policy::keys::timeout as keys;

use super::Policy;
use crate::attr::Errors;
use crate::attr::settings::{Scope, Settings, Value};

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: keys::POLICY,
        keys: keys::KEYS,
    },
    ty: "TimeoutPolicy",
    check,
    calls: Settings::setter_calls,
};

/// `on_timeout = "checkpoint"` needs a durable endpoint, which the runtime refuses for
/// now; say so here rather than at the first call.
fn check(settings: &Settings, errors: &mut Errors) {
    let Some(setting) = settings.get(keys::ON_TIMEOUT.name) else {
        return;
    };
    let Value::Choice(_, variant) = setting.value else {
        return;
    };
    let chosen = OnTimeout::ALL
        .iter()
        .find(|option| option.variant_name() == variant);
    if let Some(Err(problem)) = chosen.map(|option| keys::check_on_timeout(*option)) {
        errors.at(&setting.tokens, problem);
    }
}
