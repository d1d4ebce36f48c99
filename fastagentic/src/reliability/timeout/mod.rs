//! Timeouts: one deadline for the whole run, and limits for each stage inside it.

mod bound;

pub(crate) use self::bound::bound_total;

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use fastagentic_policy::keys::timeout as keys;

use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::reliability::PolicyError;

pub use fastagentic_policy::{OnTimeout, Stage};

/// The timeout settings of SPEC §3.3.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TimeoutPolicyBuilder", into = "TimeoutPolicyBuilder")]
pub struct TimeoutPolicy {
    settings: TimeoutPolicyBuilder,
}

/// The settings of a [`TimeoutPolicy`] before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutPolicyBuilder {
    #[serde(rename = "total_ms", with = "crate::reliability::millis")]
    total: Duration,
    #[serde(rename = "llm_call_ms", with = "crate::reliability::millis")]
    llm_call: Duration,
    #[serde(rename = "stream_idle_ms", with = "crate::reliability::millis")]
    stream_idle: Duration,
    #[serde(rename = "tool_call_ms", with = "crate::reliability::millis")]
    tool_call: Duration,
    #[serde(rename = "checkpoint_ms", with = "crate::reliability::millis")]
    checkpoint: Duration,
    on_timeout: OnTimeout,
}

impl Default for TimeoutPolicyBuilder {
    fn default() -> Self {
        TimeoutPolicyBuilder {
            total: Duration::from_millis(keys::DEFAULT_TOTAL_MS),
            llm_call: Duration::from_millis(keys::DEFAULT_LLM_CALL_MS),
            stream_idle: Duration::from_millis(keys::DEFAULT_STREAM_IDLE_MS),
            tool_call: Duration::from_millis(keys::DEFAULT_TOOL_CALL_MS),
            checkpoint: Duration::from_millis(keys::DEFAULT_CHECKPOINT_MS),
            on_timeout: OnTimeout::Fail,
        }
    }
}

impl TimeoutPolicyBuilder {
    /// The deadline of the whole run (default 120 s).
    #[must_use]
    pub fn total(mut self, d: Duration) -> Self {
        self.total = d;
        self
    }

    /// The limit of one LLM call, to its first byte for streams (default 60 s).
    #[must_use]
    pub fn llm_call(mut self, d: Duration) -> Self {
        self.llm_call = d;
        self
    }

    /// The longest silence between two chunks of a stream (default 60 s).
    #[must_use]
    pub fn stream_idle(mut self, d: Duration) -> Self {
        self.stream_idle = d;
        self
    }

    /// The limit of one tool call (default 30 s).
    #[must_use]
    pub fn tool_call(mut self, d: Duration) -> Self {
        self.tool_call = d;
        self
    }

    /// The limit of saving one checkpoint (default 5 s).
    #[must_use]
    pub fn checkpoint(mut self, d: Duration) -> Self {
        self.checkpoint = d;
        self
    }

    /// What happens when the total deadline passes (default fail).
    #[must_use]
    pub fn on_timeout(mut self, on_timeout: OnTimeout) -> Self {
        self.on_timeout = on_timeout;
        self
    }

    /// Validates the settings: every limit must be above zero.
    pub fn build(self) -> Result<TimeoutPolicy, PolicyError> {
        for (key, value) in [
            (keys::TOTAL, self.total),
            (keys::LLM_CALL, self.llm_call),
            (keys::STREAM_IDLE, self.stream_idle),
            (keys::TOOL_CALL, self.tool_call),
            (keys::CHECKPOINT, self.checkpoint),
        ] {
            key.check_duration(value)?;
        }
        Ok(TimeoutPolicy { settings: self })
    }
}

impl TryFrom<TimeoutPolicyBuilder> for TimeoutPolicy {
    type Error = PolicyError;

    fn try_from(builder: TimeoutPolicyBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

impl From<TimeoutPolicy> for TimeoutPolicyBuilder {
    fn from(policy: TimeoutPolicy) -> Self {
        policy.settings
    }
}

impl TimeoutPolicy {
    /// A builder with the defaults of SPEC §3.3.
    pub fn builder() -> TimeoutPolicyBuilder {
        TimeoutPolicyBuilder::default()
    }

    /// The limit of `stage`. Strategies carry their own limits, so for
    /// [`Stage::Strategy`] this is the run's total, which bounds them all.
    pub fn limit(&self, stage: Stage) -> Duration {
        let s = &self.settings;
        match stage {
            Stage::Total | Stage::Strategy => s.total,
            Stage::LlmCall => s.llm_call,
            Stage::StreamIdle => s.stream_idle,
            Stage::ToolCall => s.tool_call,
            Stage::Checkpoint => s.checkpoint,
        }
    }

    /// What happens when the total deadline passes.
    pub fn on_timeout(&self) -> OnTimeout {
        self.settings.on_timeout
    }
}

/// The `timeout` error for `stage`, which had run for `elapsed` against `limit`.
pub(crate) fn timeout_error(stage: Stage, elapsed: Duration, limit: Duration) -> AgentError {
    AgentError::new(
        ErrorClass::Timeout,
        format!(
            "the {} stage timed out after {} ms (limit {} ms)",
            stage.as_str(),
            elapsed.as_millis(),
            limit.as_millis()
        ),
    )
    .with_detail(ErrorDetail::Timeout {
        stage,
        elapsed,
        limit,
    })
}

/// Runs `future` for at most `limit`, and never past `deadline` (the run's, when it has
/// one that binds).
///
/// When the run's deadline comes first, the error names the `total` stage, since that is
/// the limit that was hit, and reports how long the run had been going.
pub(crate) async fn run_stage<F, T>(
    stage: Stage,
    limit: Duration,
    deadline: Option<Instant>,
    total: Duration,
    future: F,
) -> Result<T, AgentError>
where
    F: Future<Output = Result<T, AgentError>>,
{
    let start = Instant::now();
    let stage_deadline = deadline_after(start, limit);
    let run_cuts_first = deadline.filter(|d| *d < stage_deadline);
    let cut_at = run_cuts_first.unwrap_or(stage_deadline);
    match tokio::time::timeout_at(cut_at, future).await {
        Ok(result) => result,
        Err(_) => Err(match run_cuts_first {
            Some(run_deadline) => {
                // The run started `total` before its deadline.
                let run_elapsed =
                    total.saturating_sub(run_deadline.saturating_duration_since(Instant::now()));
                timeout_error(Stage::Total, run_elapsed, total)
            }
            None => timeout_error(stage, start.elapsed(), limit),
        }),
    }
}

/// `start + limit`, or a point decades away when that would overflow (a limit of
/// `Duration::MAX` means "no limit" in practice, not a panic).
pub(crate) fn deadline_after(start: Instant, limit: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    start
        .checked_add(limit)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stage_reports_its_name_and_elapsed_time() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(120);
        let err = run_stage(
            Stage::LlmCall,
            Duration::from_secs(30),
            Some(deadline),
            Duration::from_secs(120),
            std::future::pending::<Result<(), AgentError>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Timeout);
        assert_eq!(
            err.detail(),
            Some(&ErrorDetail::Timeout {
                stage: Stage::LlmCall,
                elapsed: Duration::from_secs(30),
                limit: Duration::from_secs(30),
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_run_deadline_wins_when_it_comes_first() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = run_stage(
            Stage::LlmCall,
            Duration::from_secs(30),
            Some(deadline),
            Duration::from_secs(120),
            std::future::pending::<Result<(), AgentError>>(),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            err.detail(),
            Some(ErrorDetail::Timeout {
                stage: Stage::Total,
                ..
            })
        ));
    }

    #[test]
    fn zero_limits_are_refused() {
        let err = TimeoutPolicy::builder()
            .total(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("total_ms"), "{err}");
        let err = "abort".parse::<OnTimeout>().unwrap_err();
        assert!(
            err.to_string().contains("`on_timeout` value `abort`"),
            "{err}"
        );
        assert!(err.to_string().contains("fail, warn, checkpoint"), "{err}");
    }
}
