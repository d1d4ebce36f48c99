//! # fastagentic-policy
//!
//! The policy language of [fastagentic](https://example.invalid/fastagentic), defined once:
//! the names of the error classes, hook events, timeout stages, limit types and options,
//! and every key the `#[agent_endpoint]` and `#[hook]` attributes take, with its
//! default, its allowed values and why. The macros check attributes against it at
//! compile time; the runtime's builders check the same rules, with the same messages,
//! and take their defaults from it.
//!
//! Use these types through `fastagentic`, which re-exports each of them once; this crate
//! exists so the proc-macro crate can share them without depending on the runtime.
//!
//! ```
//! use fastagentic_policy::{ErrorClass, EventKind, keys};
//!
//! assert_eq!("rate_limit".parse::<ErrorClass>(), Ok(ErrorClass::RateLimit));
//! assert_eq!(EventKind::Retry.hook_name(), "on_retry");
//! assert_eq!(keys::retry::DEFAULT_MAX_ATTEMPTS, 3);
//! let err = keys::retry::MAX_ATTEMPTS.check(0).unwrap_err();
//! assert!(err.to_string().starts_with("`max_attempts` must be at least 1"));
//! ```

mod backoff;
mod class;
mod event;
pub mod keys;
mod limit;
mod names;
mod stage;
mod suggest;

pub use self::backoff::Backoff;
pub use self::class::{ClassSet, ErrorClass};
pub use self::event::EventKind;
pub use self::limit::{LimitScope, LimitType, OnLimit};
pub use self::names::UnknownName;
pub use self::stage::{OnTimeout, Stage};
pub use self::suggest::{closest, suggestion};
