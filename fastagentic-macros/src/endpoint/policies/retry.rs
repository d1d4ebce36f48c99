//! `retry(...)`: the keys of `RetryPolicyBuilder`'s serde form, and its budget.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::super::diag::Errors;
use super::super::names::BACKOFF;
use super::super::settings::{Key, Kind, Scope, Setting, Settings, Value};
use super::{Policy, builder};

/// The runtime's defaults for the two delays, used only to explain an inconsistent pair
/// in a message (the runtime builder checks the pair again).
const DEFAULT_INITIAL_DELAY_MS: f64 = 1000.0;
const DEFAULT_MAX_DELAY_MS: f64 = 30_000.0;

pub(super) const POLICY: Policy = Policy {
    scope: Scope {
        policy: "retry",
        keys: KEYS,
    },
    ty: "RetryPolicy",
    check,
    build,
};

const ANY_DELAY: Kind = Kind::Millis { min: 0, why: "" };

const KEYS: &[Key] = &[
    Key {
        name: "max_attempts",
        kind: Kind::Count {
            min: 1,
            max: u32::MAX,
            why: "it counts the first call, so use 1 for no retries",
        },
        setter: "max_attempts",
    },
    Key {
        name: "backoff",
        kind: Kind::Choice(&BACKOFF),
        setter: "backoff",
    },
    Key {
        name: "initial_delay_ms",
        kind: ANY_DELAY,
        setter: "initial_delay",
    },
    Key {
        name: "max_delay_ms",
        kind: ANY_DELAY,
        setter: "max_delay",
    },
    Key {
        name: "multiplier",
        kind: Kind::Float {
            ok: |f| f >= 1.0,
            range: "1.0 or more",
            why: "exponential backoff multiplies the delay by it, and must not shrink it",
        },
        setter: "multiplier",
    },
    Key {
        name: "jitter",
        kind: Kind::Flag,
        setter: "jitter",
    },
    Key {
        name: "jitter_factor",
        kind: Kind::Float {
            ok: |f| (0.0..=1.0).contains(&f),
            range: "0.0..=1.0",
            why: "a delay d becomes uniform in d × (1 ± jitter_factor); 0.25 is the default",
        },
        setter: "jitter_factor",
    },
    Key {
        name: "retry_on",
        kind: Kind::Classes,
        setter: "retry_on",
    },
    Key {
        name: "no_retry_on",
        kind: Kind::Classes,
        setter: "no_retry_on",
    },
    Key {
        name: "max_retry_after_ms",
        kind: ANY_DELAY,
        setter: "max_retry_after",
    },
    Key {
        name: "overload_limit",
        kind: Kind::Count {
            min: 1,
            max: u32::MAX,
            why: "it counts consecutive overloaded errors, so use 1 or more",
        },
        setter: "overload_limit",
    },
    Key {
        name: "context_overflow_floor",
        kind: Kind::Count {
            min: 0,
            max: u32::MAX,
            why: "",
        },
        setter: "context_overflow_floor",
    },
    Key {
        name: "budget",
        kind: Kind::Nested(BUDGET_KEYS),
        setter: "",
    },
];

/// `budget(...)`: the fields of `RetryBudgetPolicy` (setters name the struct fields).
const BUDGET_KEYS: &[Key] = &[
    Key {
        name: "ttl_ms",
        kind: Kind::Millis {
            min: 1000,
            why: "a budget counts requests over seconds",
        },
        setter: "ttl",
    },
    Key {
        name: "min_retries_per_sec",
        kind: Kind::Count {
            min: 0,
            max: u32::MAX,
            why: "",
        },
        setter: "min_retries_per_sec",
    },
    Key {
        name: "retry_ratio",
        kind: Kind::Float {
            ok: |f| (0.0..=1000.0).contains(&f),
            range: "0.0..=1000.0",
            why: "it is the retries allowed per request, e.g. 0.2 for one per five",
        },
        setter: "retry_ratio",
    },
];

/// `max_delay_ms` may not be below `initial_delay_ms`, given or defaulted.
fn check(settings: &Settings, errors: &mut Errors) {
    let initial = settings.get("initial_delay_ms");
    let max = settings.get("max_delay_ms");
    let ms = |s: Option<&Setting>, default| s.and_then(Setting::number).unwrap_or(default);
    let (initial_ms, max_ms) = (
        ms(initial, DEFAULT_INITIAL_DELAY_MS),
        ms(max, DEFAULT_MAX_DELAY_MS),
    );
    if max_ms >= initial_ms {
        return;
    }
    let default = |s: Option<&Setting>| if s.is_some() { "" } else { ", the default" };
    match (max, initial) {
        (Some(max), _) => errors.at(
            &max.tokens,
            format!(
                "`max_delay_ms` ({max_ms}) is below `initial_delay_ms` ({initial_ms}{}); \
                 raise `max_delay_ms` or lower `initial_delay_ms`",
                default(initial)
            ),
        ),
        (None, Some(initial)) => errors.at(
            &initial.tokens,
            format!(
                "`initial_delay_ms` ({initial_ms}) is above `max_delay_ms` ({max_ms}, the \
                 default); set `max_delay_ms` too"
            ),
        ),
        (None, None) => {}
    }
}

fn build(settings: &Settings) -> TokenStream {
    let mut calls = settings.setter_calls();
    if let Some(Setting {
        value: Value::Nested(budget),
        ..
    }) = settings.get("budget")
    {
        let budget = match budget {
            None => quote!(::core::option::Option::None),
            Some(inner) => budget_value(inner),
        };
        calls.extend(quote!(.budget(#budget)));
    }
    builder("RetryPolicy", calls)
}

/// `Some(RetryBudgetPolicy { .. })`: the defaults with the given fields replaced.
fn budget_value(settings: &Settings) -> TokenStream {
    let ty = quote!(::fastagentic::reliability::RetryBudgetPolicy);
    let budget = Ident::new("budget", Span::mixed_site());
    let assignments = settings.field_assignments(&budget);
    if assignments.is_empty() {
        return quote!(::core::option::Option::Some(<#ty as ::core::default::Default>::default()));
    }
    quote! {{
        let mut #budget = <#ty as ::core::default::Default>::default();
        #assignments
        ::core::option::Option::Some(#budget)
    }}
}
