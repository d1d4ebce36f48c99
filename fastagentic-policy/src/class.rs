//! The closed set of error classes and a compact set type over them.

use std::fmt;

crate::names::named! {
    /// What kind of failure an error is.
    ///
    /// Every decision of the pipeline (retry or not, count against a breaker or not, fall
    /// back or not) is taken on this class, never on the words of a message. The names
    /// are the ones attributes and configuration use: `"rate_limit"`, `"timeout"`, ...
    #[non_exhaustive]
    pub enum ErrorClass ("error class") {
        /// The provider throttled the request (HTTP 429 with a rate-limit code), or our own
        /// rate limiter refused it.
        RateLimit => "rate_limit",
        /// The account is out of credit or past a spend cap; retrying soon will not help.
        QuotaExceeded => "quota_exceeded",
        /// The request alone is larger than a per-minute token limit.
        RequestTooLarge => "request_too_large",
        /// A deadline expired: the provider's, the transport's, or one of ours.
        Timeout => "timeout",
        /// The provider failed internally (HTTP 5xx other than overload).
        ServerError => "server_error",
        /// The provider is temporarily overloaded (Anthropic 529, Gemini 503 `UNAVAILABLE`).
        Overloaded => "overloaded",
        /// The connection could not be made or was reset.
        ConnectionError => "connection_error",
        /// A stream broke after it had started (an error event after HTTP 200, or a cut).
        StreamInterrupted => "stream_interrupted",
        /// The request was malformed or semantically invalid.
        InvalidInput => "invalid_input",
        /// The credentials were missing or rejected.
        AuthError => "auth_error",
        /// The credentials are valid but not allowed to do this.
        PermissionDenied => "permission_denied",
        /// The model or resource does not exist.
        NotFound => "not_found",
        /// The prompt plus the requested output does not fit the model's context window.
        ContextOverflow => "context_overflow",
        /// The provider refused the content.
        ContentPolicy => "content_policy",
        /// A circuit breaker is open and refused the call without trying it.
        CircuitOpen => "circuit_open",
        /// The run was cancelled (client disconnect, shutdown, a hook aborting).
        Cancelled => "cancelled",
        /// Anything that fits no other class.
        Other => "other",
    }
}

impl ErrorClass {
    /// The classes retried by default (SPEC §3.5).
    pub const DEFAULT_RETRY_ON: ClassSet = ClassSet::of(&[
        ErrorClass::RateLimit,
        ErrorClass::Timeout,
        ErrorClass::ServerError,
        ErrorClass::Overloaded,
        ErrorClass::ConnectionError,
    ]);

    /// The classes a circuit breaker counts as failures by default (SPEC §3.4).
    pub const DEFAULT_FAILURE_ON: ClassSet = ClassSet::of(&[
        ErrorClass::Timeout,
        ErrorClass::ServerError,
        ErrorClass::Overloaded,
        ErrorClass::ConnectionError,
    ]);

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of [`ErrorClass`]es, stored as a bit set so membership is one AND.
///
/// Serializes as a list of class names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u32);

impl ClassSet {
    /// The empty set.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// A set holding exactly `classes`.
    pub const fn of(classes: &[ErrorClass]) -> ClassSet {
        let mut bits = 0;
        let mut i = 0;
        while i < classes.len() {
            bits |= classes[i].bit();
            i += 1;
        }
        ClassSet(bits)
    }

    /// Whether `class` is in the set.
    pub const fn contains(self, class: ErrorClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// The set with `class` added.
    #[must_use]
    pub const fn with(self, class: ErrorClass) -> ClassSet {
        ClassSet(self.0 | class.bit())
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The classes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ErrorClass> {
        ErrorClass::ALL
            .iter()
            .copied()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<ErrorClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = ErrorClass>>(iter: I) -> Self {
        iter.into_iter().fold(ClassSet::EMPTY, ClassSet::with)
    }
}

impl<const N: usize> From<[ErrorClass; N]> for ClassSet {
    fn from(classes: [ErrorClass; N]) -> Self {
        ClassSet::of(&classes)
    }
}

impl fmt::Debug for ClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ClassSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ClassSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let classes = <Vec<ErrorClass> as serde::Deserialize>::deserialize(deserializer)?;
        Ok(classes.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for class in ErrorClass::ALL {
            assert_eq!(class.as_str().parse::<ErrorClass>(), Ok(*class));
            assert_eq!(class.to_string(), class.as_str());
        }
        assert_eq!(ErrorClass::ALL.len(), 17);
        assert_eq!(ErrorClass::RateLimit.variant_name(), "RateLimit");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "rate_limited".parse::<ErrorClass>().unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("unknown error class `rate_limited`"),
            "{text}"
        );
        assert!(text.contains("rate_limit, quota_exceeded"), "{text}");
    }

    #[test]
    fn class_set_membership() {
        let set = ClassSet::of(&[ErrorClass::Timeout, ErrorClass::RateLimit]);
        assert!(set.contains(ErrorClass::Timeout));
        assert!(!set.contains(ErrorClass::Other));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [ErrorClass::RateLimit, ErrorClass::Timeout]
        );
    }
}
