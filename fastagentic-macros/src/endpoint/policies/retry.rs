//! `retry(...)`: the keys of `fastagentic_policy::keys::retry`, and its budget.

use fastagentic_policy::keys::retry as keys;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::Policy;
use crate::attr::Errors;
use crate::attr::settings::{Scope, Setting, Settings, Value};
use crate::paths::Paths;

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: keys::POLICY,
        keys: keys::KEYS,
    },
    ty: "RetryPolicy",
    check,
    calls,
};

/// `max_delay_ms` may not be below `initial_delay_ms`, given or defaulted.
fn check(settings: &Settings, errors: &mut Errors) {
    let initial = settings.get(keys::INITIAL_DELAY.name);
    let max = settings.get(keys::MAX_DELAY.name);
    let Err(problem) = keys::check_delays(
        initial.and_then(Setting::millis),
        max.and_then(Setting::millis),
    ) else {
        return;
    };
    let blamed = if problem.key == keys::MAX_DELAY.name {
        max
    } else {
        initial
    };
    if let Some(setting) = blamed {
        errors.at(&setting.tokens, problem);
    }
}

fn calls(settings: &Settings, paths: &Paths) -> TokenStream {
    let mut calls = settings.setter_calls(paths);
    if let Some(Setting {
        value: Value::Nested(budget),
        ..
    }) = settings.get("budget")
    {
        let budget = match budget {
            None => quote!(::core::option::Option::None),
            Some(inner) => budget_value(inner, paths),
        };
        calls.extend(quote!(.budget(#budget)));
    }
    calls
}

/// `Some(RetryBudgetPolicy { .. })`: the defaults with the given fields replaced.
fn budget_value(settings: &Settings, paths: &Paths) -> TokenStream {
    let ty = paths.policy("RetryBudgetPolicy");
    let budget = Ident::new("budget", Span::mixed_site());
    let assignments = settings.field_assignments(&budget, paths);
    if assignments.is_empty() {
        return quote!(::core::option::Option::Some(<#ty as ::core::default::Default>::default()));
    }
    quote! {{
        let mut #budget = <#ty as ::core::default::Default>::default();
        #assignments
        ::core::option::Option::Some(#budget)
    }}
}
