//! The events a run reports: the names hooks register for (`on_retry`, ...).

crate::names::named! {
    /// What happened. The names are the hook event names of SPEC §3.7 (`on_retry`, ...).
    ///
    /// The pipeline fires the request, retry, circuit, fallback, timeout and rate-limit
    /// events, `ctx.llm()` the LLM ones and the server startup and shutdown. The others
    /// are defined so hooks can be registered for them; they fire once their subsystems
    /// exist (tool calls with tools, checkpoint and resume with durable runs).
    #[non_exhaustive]
    pub enum EventKind ("hook event") {
        /// The app started.
        Startup => "on_startup",
        /// The app is shutting down.
        Shutdown => "on_shutdown",
        /// A run starts, before any limit is checked; a listener may reject it.
        Request => "on_request",
        /// A run ended in success.
        Response => "on_response",
        /// A run ended in an error (after every retry and fallback).
        Error => "on_error",
        /// An LLM call starts.
        LlmStart => "on_llm_start",
        /// An LLM call ended.
        LlmEnd => "on_llm_end",
        /// A tool call starts.
        ToolCall => "on_tool_call",
        /// A tool call returned.
        ToolResult => "on_tool_result",
        /// An attempt failed and another will follow after a delay (steerable).
        Retry => "on_retry",
        /// A retry loop that retried at least once, or was stopped by the server, a hook,
        /// the budget or the deadline, has ended.
        RetryEnd => "on_retry_end",
        /// A breaker opened.
        CircuitOpen => "on_circuit_open",
        /// A breaker let its first probe through.
        CircuitHalfOpen => "on_circuit_half_open",
        /// A breaker closed again.
        CircuitClose => "on_circuit_close",
        /// The run moved from one model of its fallback chain to the next.
        Fallback => "on_fallback",
        /// A deadline passed: the run's total, or a stage that cut an attempt.
        Timeout => "on_timeout",
        /// A rate limit refused the run (a run that waited for its slot in `delay` or
        /// `queue` mode and then went ahead raises no event).
        RateLimit => "on_rate_limit",
        /// A durable run saved a checkpoint.
        Checkpoint => "on_checkpoint",
        /// A durable run resumed from a checkpoint.
        Resume => "on_resume",
    }
}

impl EventKind {
    /// The hook event name, e.g. `"on_retry"` (the same as [`as_str`](Self::as_str)).
    pub const fn hook_name(self) -> &'static str {
        self.as_str()
    }

    /// The event's position in [`ALL`](Self::ALL), for tables indexed by event.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The event's bit in a set of kinds (there are fewer than 32).
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The event `name` was probably meant to be: the same without the `on_` prefix or
    /// in another case, else the nearest by edits.
    pub fn closest(name: &str) -> Option<EventKind> {
        let lower = name.to_ascii_lowercase();
        let prefixed = format!("on_{lower}");
        let exact = EventKind::ALL
            .iter()
            .find(|kind| kind.as_str() == prefixed || kind.as_str() == lower);
        let guess = exact
            .map(|kind| kind.as_str())
            .or_else(|| crate::closest(&lower, EventKind::NAMES));
        guess.and_then(|name| name.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_an_event_and_an_index() {
        assert_eq!(EventKind::ALL.len(), 19);
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(kind.hook_name().parse::<EventKind>(), Ok(*kind));
        }
        assert_eq!(EventKind::CircuitHalfOpen.variant_name(), "CircuitHalfOpen");
        assert!("retry".parse::<EventKind>().is_err());
    }

    #[test]
    fn suggests_the_nearest_event() {
        let closest = |name| EventKind::closest(name).map(EventKind::as_str);
        assert_eq!(closest("on_rety"), Some("on_retry"));
        assert_eq!(closest("retry"), Some("on_retry"));
        assert_eq!(closest("ON_RETRY"), Some("on_retry"));
        assert_eq!(closest("on_circuit_opened"), Some("on_circuit_open"));
        assert_eq!(closest("on_llm_started"), Some("on_llm_start"));
        assert_eq!(closest("before_everything"), None);
        assert_eq!(closest(""), None);
    }
}
