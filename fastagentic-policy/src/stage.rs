//! Deadlines: which one expired, and what happens when the run's own passes.

crate::names::named! {
    /// Which deadline expired.
    pub enum Stage ("timeout stage") {
        /// The whole run, retries, sleeps and fallbacks included.
        Total => "total",
        /// One LLM call (for a stream: the time to its first byte).
        LlmCall => "llm_call",
        /// The idle gap between two chunks of a stream.
        StreamIdle => "stream_idle",
        /// One tool call.
        ToolCall => "tool_call",
        /// Saving a checkpoint.
        Checkpoint => "checkpoint",
        /// One strategy of a strategy fallback, which carries its own limit.
        Strategy => "strategy",
    }
}

crate::names::named! {
    /// What happens when the run's total deadline passes.
    #[derive(Default)]
    pub enum OnTimeout ("`on_timeout` value") {
        /// Stop the run and fail with a `timeout` error.
        #[default]
        Fail => "fail",
        /// Report the timeout (event and log) and let the run finish.
        Warn => "warn",
        /// Save a checkpoint and return a run id to resume. Needs a durable endpoint.
        Checkpoint => "checkpoint",
    }
}
