//! `#[agent_endpoint(...)]`'s own keys, around the policies.

use super::{Key, Kind, Problem};

/// Every top-level key, in the order the guide lists them.
pub const KEYS: &[&str] = &[
    "path",
    "name",
    "description",
    "model",
    "stream",
    "durable",
    "retry",
    "circuit_breaker",
    "circuit_breaker_for",
    "timeout",
    "fallback",
    "rate_limit",
    "crate",
];

/// The keys inside `fallback(...)`.
pub const FALLBACK_KEYS: &[&str] = &["primary", "then"];

/// The key inside `then("model", ...)`: the classes that send the run to that model.
pub const THEN_KEYS: &[Key] = &[Key {
    kind: Kind::Classes("on"),
    setter: "",
}];

/// A route (`path`, a hook's `endpoint`) must start with `/`; `key` names the setting.
pub fn check_path(key: &'static str, path: &str) -> Result<(), Problem> {
    if path.starts_with('/') {
        return Ok(());
    }
    Err(Problem::new(
        key,
        format!("`{key}` must start with `/`: write `{key} = \"/{path}\"`"),
        "",
    ))
}

/// `durable = true` is refused until durable runs exist.
pub fn check_durable(durable: bool) -> Result<(), Problem> {
    if !durable {
        return Ok(());
    }
    Err(Problem::new(
        "durable",
        "durable endpoints are not available yet: remove `durable = true` (checkpoints and \
         resumable runs are planned)",
        "",
    ))
}
