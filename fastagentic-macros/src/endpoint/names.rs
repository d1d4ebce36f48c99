//! The names the attribute accepts for error classes and policy options, with the
//! runtime variants they stand for.
//!
//! The macro crate cannot depend on `fastagentic` (it would be a cycle), so these lists
//! repeat the runtime's. They cannot drift silently: the generated code names each
//! variant (`ErrorClass::RateLimit`), so a renamed variant fails to compile, and the UI
//! case `pass_every_class.rs` uses every name.

/// A name the attribute accepts and the runtime enum variant it means.
pub(super) type Name = (&'static str, &'static str);

/// `fastagentic::ErrorClass`, in declaration order: attribute name, variant.
pub(super) const CLASSES: &[Name] = &[
    ("rate_limit", "RateLimit"),
    ("quota_exceeded", "QuotaExceeded"),
    ("request_too_large", "RequestTooLarge"),
    ("timeout", "Timeout"),
    ("server_error", "ServerError"),
    ("overloaded", "Overloaded"),
    ("connection_error", "ConnectionError"),
    ("stream_interrupted", "StreamInterrupted"),
    ("invalid_input", "InvalidInput"),
    ("auth_error", "AuthError"),
    ("permission_denied", "PermissionDenied"),
    ("not_found", "NotFound"),
    ("context_overflow", "ContextOverflow"),
    ("content_policy", "ContentPolicy"),
    ("circuit_open", "CircuitOpen"),
    ("cancelled", "Cancelled"),
    ("other", "Other"),
];

/// The values of a string-valued option and the runtime enum they map to.
pub(super) struct Choices {
    /// The enum's name under `fastagentic::reliability`.
    pub(super) enum_name: &'static str,
    /// Attribute value, variant.
    pub(super) values: &'static [Name],
}

/// `backoff = "..."`: `fastagentic::reliability::Backoff`.
pub(super) const BACKOFF: Choices = Choices {
    enum_name: "Backoff",
    values: &[
        ("fixed", "Fixed"),
        ("linear", "Linear"),
        ("exponential", "Exponential"),
    ],
};

/// `on_limit = "..."`: `fastagentic::reliability::OnLimit`.
pub(super) const ON_LIMIT: Choices = Choices {
    enum_name: "OnLimit",
    values: &[("reject", "Reject"), ("delay", "Delay"), ("queue", "Queue")],
};

/// `on_timeout = "..."`: `fastagentic::reliability::OnTimeout`.
pub(super) const ON_TIMEOUT: Choices = Choices {
    enum_name: "OnTimeout",
    values: &[
        ("fail", "Fail"),
        ("warn", "Warn"),
        ("checkpoint", "Checkpoint"),
    ],
};

/// The attribute names of `list`.
pub(super) fn names(list: &[Name]) -> Vec<&'static str> {
    list.iter().map(|(name, _)| *name).collect()
}

/// The variant `name` stands for in `list`.
pub(super) fn variant(list: &[Name], name: &str) -> Option<&'static str> {
    list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}
