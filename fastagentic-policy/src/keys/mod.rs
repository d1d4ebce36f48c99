//! The keys of every attribute and policy: what each holds, which values it allows and
//! why, and its default.
//!
//! The macros read these tables to check a literal at compile time; the runtime's
//! builders check the same rules (with the same messages) when a policy is built in
//! code or from configuration, and take their defaults from here.

pub mod circuit_breaker;
pub mod endpoint;
pub mod hook;
pub mod rate_limit;
pub mod retry;
pub mod timeout;

use std::fmt;
use std::time::Duration;

/// One key of a policy: what it holds, and the runtime builder method (or struct field)
/// its value is handed to, `""` when the value takes a path of its own.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// What the key holds and which values are allowed.
    pub kind: Kind,
    /// The builder method the value goes to.
    pub setter: &'static str,
}

impl Key {
    /// The key as written in an attribute and in the serialized form.
    pub const fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Count(count) => count.name,
            Kind::Millis(millis) => millis.name,
            Kind::Float(float) => float.name,
            Kind::Flag(name) | Kind::Classes(name) => name,
            Kind::Choice(choice) => choice.name,
            Kind::Nested(nested) => nested.name,
        }
    }
}

/// What a key holds.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A whole number within bounds.
    Count(Count),
    /// A duration in whole milliseconds.
    Millis(Millis),
    /// A finite number.
    Float(Float),
    /// `true` or `false`; the key's name.
    Flag(&'static str),
    /// A list of error class names; the key's name.
    Classes(&'static str),
    /// One of a few names.
    Choice(Choice),
    /// A nested list of keys, or `= false` to turn the feature off.
    Nested(Nested),
}

/// A count (`u32`) within `min..=max`.
#[derive(Clone, Copy, Debug)]
pub struct Count {
    /// The key.
    pub name: &'static str,
    /// The smallest value allowed.
    pub min: u32,
    /// The largest value allowed.
    pub max: u32,
    /// Why the bounds are what they are (`""` when they need no explanation).
    pub why: &'static str,
}

impl Count {
    /// `n` as a `u32`, or why it is not allowed.
    pub fn check(&self, n: u64) -> Result<u32, Problem> {
        match u32::try_from(n) {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ if n < u64::from(self.min) => {
                Err(self.problem(format!("`{}` must be at least {}", self.name, self.min)))
            }
            _ => Err(self.problem(format!(
                "`{}` is {n}, above its maximum of {}",
                self.name, self.max
            ))),
        }
    }

    fn problem(&self, message: String) -> Problem {
        Problem::new(self.name, message, self.why)
    }
}

/// A duration in whole milliseconds, at least `min`.
#[derive(Clone, Copy, Debug)]
pub struct Millis {
    /// The key (it ends in `_ms`).
    pub name: &'static str,
    /// The shortest duration allowed, in milliseconds.
    pub min: u64,
    /// Why the bound is what it is.
    pub why: &'static str,
}

impl Millis {
    /// `ms`, or why it is too short.
    pub fn check(&self, ms: u64) -> Result<u64, Problem> {
        if ms >= self.min {
            return Ok(ms);
        }
        let message = match self.min {
            1 => format!("`{}` must be greater than zero", self.name),
            min => format!("`{}` must be at least {min} ms", self.name),
        };
        Err(Problem::new(self.name, message, self.why))
    }

    /// `duration`, or why it is too short (sub-millisecond parts are ignored, as the
    /// serialized form has none).
    pub fn check_duration(&self, duration: Duration) -> Result<Duration, Problem> {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.check(ms).map(|_| duration)
    }
}

/// A finite number for which `ok` holds.
#[derive(Clone, Copy, Debug)]
pub struct Float {
    /// The key.
    pub name: &'static str,
    /// Whether a value is allowed.
    pub ok: fn(f64) -> bool,
    /// The allowed values, for messages (`"0.0..=1.0"`).
    pub range: &'static str,
    /// What the number means, so the range makes sense.
    pub why: &'static str,
}

impl Float {
    /// `value`, or why it is out of range.
    pub fn check(&self, value: f64) -> Result<f64, Problem> {
        if value.is_finite() && (self.ok)(value) {
            return Ok(value);
        }
        let message = format!(
            "`{}` is {value}, outside the allowed range {}",
            self.name, self.range
        );
        Err(Problem::new(self.name, message, self.why))
    }
}

/// One of a few names, each standing for a variant of a runtime enum.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    /// The key.
    pub name: &'static str,
    /// The enum's name in the runtime's `reliability` module.
    pub enum_name: &'static str,
    /// The accepted names.
    pub names: &'static [&'static str],
    /// The variant each name stands for, in the same order.
    pub variants: &'static [&'static str],
}

impl Choice {
    /// The variant `name` stands for.
    pub fn variant(&self, name: &str) -> Option<&'static str> {
        let at = self.names.iter().position(|n| *n == name)?;
        self.variants.get(at).copied()
    }
}

/// A nested list of keys (`budget(...)`), or `= false` to turn it off.
#[derive(Clone, Copy, Debug)]
pub struct Nested {
    /// The key.
    pub name: &'static str,
    /// The keys inside.
    pub keys: &'static [Key],
}

/// Why a value, or a combination of values, is not allowed: names the key, says what is
/// wrong and why the rule exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key to blame (the one to change).
    pub key: &'static str,
    /// What is wrong, naming the key.
    pub message: String,
    /// Why the rule exists (`""` when it needs no explanation).
    pub why: &'static str,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(key: &'static str, message: impl Into<String>, why: &'static str) -> Self {
        Problem {
            key,
            message: message.into(),
            why,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.why {
            "" => f.write_str(&self.message),
            why => write!(f, "{}: {why}", self.message),
        }
    }
}

impl std::error::Error for Problem {}

/// The key called `name` among `keys`.
pub fn find(keys: &'static [Key], name: &str) -> Option<&'static Key> {
    keys.iter().find(|key| key.name() == name)
}

/// The names of `keys`, in order.
pub fn names(keys: &[Key]) -> Vec<&'static str> {
    keys.iter().map(Key::name).collect()
}

/// The policy (`retry`, `circuit_breaker`, ...) that has a key called `key`, for
/// "`retry_on` is a `retry` key" hints when one is written at the top level.
pub fn owner_of(key: &str) -> Option<&'static str> {
    let policies: [(&str, &[Key]); 4] = [
        (retry::POLICY, retry::KEYS),
        (circuit_breaker::POLICY, circuit_breaker::KEYS),
        (timeout::POLICY, timeout::KEYS),
        (rate_limit::POLICY, rate_limit::KEYS),
    ];
    policies
        .iter()
        .find(|(_, keys)| keys.iter().any(|k| k.name() == key))
        .map(|(policy, _)| *policy)
        .or_else(|| endpoint::FALLBACK_KEYS.contains(&key).then_some("fallback"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_name_is_unique_within_its_policy() {
        for keys in [
            retry::KEYS,
            retry::BUDGET_KEYS,
            circuit_breaker::KEYS,
            timeout::KEYS,
            rate_limit::KEYS,
        ] {
            let mut names = names(keys);
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before, "{names:?}");
        }
    }

    #[test]
    fn checks_say_what_and_why() {
        let err = retry::MAX_ATTEMPTS.check(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`max_attempts` must be at least 1: it counts the first call, so use 1 for no retries"
        );
        let err = circuit_breaker::HALF_OPEN_REQUESTS
            .check(40_000)
            .unwrap_err();
        assert!(
            err.to_string().contains("above its maximum of 32767"),
            "{err}"
        );
        let err = circuit_breaker::FAILURE_WINDOW.check(10).unwrap_err();
        assert!(err.to_string().contains("at least 1000 ms"), "{err}");
        let err = retry::JITTER_FACTOR.check(1.5).unwrap_err();
        assert!(
            err.to_string()
                .contains("outside the allowed range 0.0..=1.0"),
            "{err}"
        );
        assert!(retry::JITTER_FACTOR.check(f64::NAN).is_err());
        assert_eq!(owner_of("retry_on"), Some("retry"));
        assert_eq!(owner_of("then"), Some("fallback"));
        assert_eq!(owner_of("nope"), None);
    }
}
