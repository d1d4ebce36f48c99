//! The closed set of error classes and a compact set type over them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_classes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// What kind of failure an [`AgentError`](crate::AgentError) is.
        ///
        /// Every decision in the pipeline (retry or not, count against a breaker or not,
        /// fall back or not) is taken on this class, never on the words of a message.
        /// The string names are the ones used in attributes and configuration:
        /// `"rate_limit"`, `"timeout"`, and so on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorClass {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorClass {
            /// Every class, in declaration order.
            pub const ALL: &'static [ErrorClass] = &[$(ErrorClass::$variant,)+];

            /// The class's configuration name, e.g. `"rate_limit"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorClass::$variant => $name,)+
                }
            }
        }

        impl FromStr for ErrorClass {
            type Err = UnknownErrorClass;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(ErrorClass::$variant),)+
                    _ => Err(UnknownErrorClass(s.to_owned())),
                }
            }
        }
    };
}

error_classes! {
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

    /// The accepted names, comma separated, for error messages.
    pub fn valid_names() -> String {
        ErrorClass::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is not one of the [`ErrorClass`] names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown error class `{0}`; expected one of: {valid}", valid = ErrorClass::valid_names())]
pub struct UnknownErrorClass(pub String);

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

impl Serialize for ClassSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ClassSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let classes = Vec::<ErrorClass>::deserialize(deserializer)?;
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
    fn class_set_membership_and_serde() {
        let set = ClassSet::of(&[ErrorClass::Timeout, ErrorClass::RateLimit]);
        assert!(set.contains(ErrorClass::Timeout));
        assert!(!set.contains(ErrorClass::Other));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["rate_limit","timeout"]"#);
        let back: ClassSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert!(serde_json::from_str::<ClassSet>(r#"["nope"]"#).is_err());
    }
}
