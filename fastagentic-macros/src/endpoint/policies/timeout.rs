//! `timeout(...)`: the keys of `TimeoutPolicyBuilder`'s serde form.

use proc_macro2::TokenStream;

use super::super::diag::Errors;
use super::super::names::ON_TIMEOUT;
use super::super::settings::{Key, Kind, Scope, Settings, Value};
use super::{Policy, builder};

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: "timeout",
        keys: KEYS,
    },
    ty: "TimeoutPolicy",
    check,
    build,
};

/// Every limit: a zero one would fail every call.
const LIMIT: Kind = Kind::Millis {
    min: 1,
    why: "a zero limit would fail every call; leave it out for the default",
};

const KEYS: &[Key] = &[
    Key {
        name: "total_ms",
        kind: LIMIT,
        setter: "total",
    },
    Key {
        name: "llm_call_ms",
        kind: LIMIT,
        setter: "llm_call",
    },
    Key {
        name: "stream_idle_ms",
        kind: LIMIT,
        setter: "stream_idle",
    },
    Key {
        name: "tool_call_ms",
        kind: LIMIT,
        setter: "tool_call",
    },
    Key {
        name: "checkpoint_ms",
        kind: LIMIT,
        setter: "checkpoint",
    },
    Key {
        name: "on_timeout",
        kind: Kind::Choice(&ON_TIMEOUT),
        setter: "on_timeout",
    },
];

/// `on_timeout = "checkpoint"` needs a durable endpoint, which the runtime refuses for
/// now; say so here rather than at the first call.
fn check(settings: &Settings, errors: &mut Errors) {
    if let Some(setting) = settings.get("on_timeout")
        && matches!(setting.value, Value::Choice(_, "Checkpoint"))
    {
        errors.at(
            &setting.tokens,
            "`on_timeout = \"checkpoint\"` needs a durable endpoint, and durable endpoints \
             are not available yet; use \"fail\" or \"warn\"",
        );
    }
}

fn build(settings: &Settings) -> TokenStream {
    builder("TimeoutPolicy", settings.setter_calls())
}
