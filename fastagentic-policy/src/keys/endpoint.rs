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

/// A durable endpoint answers JSON: a streamed answer cannot be journaled (what it
/// handed out before a cut is gone), so `durable = true` with `stream = true` is refused.
pub fn check_durable(durable: bool, stream: bool) -> Result<(), Problem> {
    if !(durable && stream) {
        return Ok(());
    }
    Err(Problem::new(
        "durable",
        "a durable endpoint cannot stream its answer: a stream cut half-way cannot be \
         journaled and replayed; remove `stream = true` or `durable = true`",
        "",
    ))
}
