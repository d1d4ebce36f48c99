//! `#[hook("event", ...)]`'s keys after the event name.

/// Every key after the event.
pub const KEYS: &[&str] = &["endpoint", "priority", "crate"];
