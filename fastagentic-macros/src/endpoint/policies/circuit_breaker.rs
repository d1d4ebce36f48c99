//! `circuit_breaker(...)` and `circuit_breaker_for("model", ...)`: the keys of
//! `fastagentic_policy::keys::circuit_breaker`.

use fastagentic_policy::keys::circuit_breaker as keys;
use proc_macro2::TokenStream;
use quote::quote;

use super::Policy;
use crate::attr::Errors;
use crate::attr::settings::{Scope, Settings, Value};
use crate::paths::Paths;

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: keys::POLICY,
        keys: keys::KEYS,
    },
    ty: "CircuitBreakerPolicy",
    check,
    calls,
};

/// `minimum_calls` only means something with a failure rate.
fn check(settings: &Settings, errors: &mut Errors) {
    let Some(minimum) = settings.get(keys::MINIMUM_CALLS.name) else {
        return;
    };
    let rate_given = settings.is_given(keys::FAILURE_RATE_THRESHOLD.name);
    if let Err(problem) = keys::check_minimum_calls(true, rate_given) {
        errors.at(&minimum.ident, problem);
    }
}

/// The setters, and `failure_rate_threshold(rate, minimum_calls)`: the builder takes the
/// two together, with the default minimum when only the rate is given.
fn calls(settings: &Settings, paths: &Paths) -> TokenStream {
    let mut calls = settings.setter_calls(paths);
    if let Some(rate) = settings.get(keys::FAILURE_RATE_THRESHOLD.name) {
        let rate = rate.value.to_tokens(paths);
        let minimum = match settings.get(keys::MINIMUM_CALLS.name) {
            Some(setting) => setting.value.to_tokens(paths),
            None => Value::Count(keys::DEFAULT_MINIMUM_CALLS).to_tokens(paths),
        };
        calls.extend(quote!(.failure_rate_threshold(#rate, #minimum)));
    }
    calls
}
