//! `timeout(...)`: the run's deadline and each stage's limit (SPEC §3.3).

use super::{Choice, Key, Kind, Millis, Problem};
use crate::OnTimeout;

/// The policy's name in attributes.
pub const POLICY: &str = "timeout";

/// The deadline of the whole run.
pub const DEFAULT_TOTAL_MS: u64 = 120_000;
/// The limit of one LLM call (to the first byte for streams).
pub const DEFAULT_LLM_CALL_MS: u64 = 60_000;
/// The longest silence between two chunks of a stream.
pub const DEFAULT_STREAM_IDLE_MS: u64 = 60_000;
/// The limit of one tool call.
pub const DEFAULT_TOOL_CALL_MS: u64 = 30_000;
/// The limit of saving one checkpoint.
pub const DEFAULT_CHECKPOINT_MS: u64 = 5_000;

const fn limit(name: &'static str) -> Millis {
    Millis {
        name,
        min: 1,
        why: "a zero limit would fail every call; leave it out for the default",
    }
}

/// `total_ms`.
pub const TOTAL: Millis = limit("total_ms");
/// `llm_call_ms`.
pub const LLM_CALL: Millis = limit("llm_call_ms");
/// `stream_idle_ms`.
pub const STREAM_IDLE: Millis = limit("stream_idle_ms");
/// `tool_call_ms`.
pub const TOOL_CALL: Millis = limit("tool_call_ms");
/// `checkpoint_ms`.
pub const CHECKPOINT: Millis = limit("checkpoint_ms");

/// `on_timeout`.
pub const ON_TIMEOUT: Choice = Choice {
    name: "on_timeout",
    enum_name: "OnTimeout",
    names: OnTimeout::NAMES,
    variants: OnTimeout::VARIANTS,
};

/// Every key of `timeout(...)`.
pub const KEYS: &[Key] = &[
    Key {
        kind: Kind::Millis(TOTAL),
        setter: "total",
    },
    Key {
        kind: Kind::Millis(LLM_CALL),
        setter: "llm_call",
    },
    Key {
        kind: Kind::Millis(STREAM_IDLE),
        setter: "stream_idle",
    },
    Key {
        kind: Kind::Millis(TOOL_CALL),
        setter: "tool_call",
    },
    Key {
        kind: Kind::Millis(CHECKPOINT),
        setter: "checkpoint",
    },
    Key {
        kind: Kind::Choice(ON_TIMEOUT),
        setter: "on_timeout",
    },
];

/// `on_timeout = "checkpoint"` saves the run's journal for a resume, so it needs an
/// endpoint declared `durable = true`.
pub fn check_on_timeout(on_timeout: OnTimeout, durable: bool) -> Result<(), Problem> {
    match on_timeout {
        OnTimeout::Checkpoint if !durable => Err(Problem::new(
            ON_TIMEOUT.name,
            "`on_timeout = \"checkpoint\"` needs a durable endpoint: add `durable = true` to \
             the endpoint, or use \"fail\" or \"warn\"",
            "",
        )),
        _ => Ok(()),
    }
}
