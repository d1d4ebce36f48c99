//! `ctx.tool(..)`: one tool call under the run's guarantees. Each attempt is announced
//! (`on_tool_call`, which may veto it), bounded by the `tool_call` limit, guarded against
//! panics and reported (`on_tool_result`); a failure of a retryable class is tried again
//! as the endpoint's retry policy says, a success never is.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::Tool;
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass};
use crate::reliability::{EventData, EventKind, RetryDecision, Stage};

impl AgentContext {
    /// Runs `tool` on `input` within the endpoint's guarantees: each attempt bounded by
    /// the `tool_call` limit (30 s by default), a failure of a class the retry policy
    /// retries tried again after its backoff, a panic turned into an `other` error, and
    /// `on_tool_call` / `on_tool_result` fired around every attempt. A hook that rejects
    /// the call in `on_tool_call` makes it fail with the hook's error, without a retry.
    ///
    /// The error a call ends with says `should_retry() == Some(false)`: the call's own
    /// retries are spent, so the pipeline does not run the body again because of it
    /// (which would multiply the attempts). Its class still decides a fallback.
    ///
    /// ```
    /// use fastagentic::prelude::*;
    /// use fastagentic::tools::Tool;
    /// use schemars::JsonSchema;
    ///
    /// #[derive(Deserialize, Serialize, JsonSchema)]
    /// struct Shout { text: String }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let shout = Tool::new("shout", "Upper-cases text", |s: Shout| async move {
    ///     Ok::<_, AgentError>(s.text.to_uppercase())
    /// })?;
    /// let pipeline = Pipeline::builder().build()?;
    /// let loud = pipeline
    ///     .run(RequestInfo::new(), |ctx: AgentContext| {
    ///         let shout = shout.clone();
    ///         async move { ctx.tool(&shout, Shout { text: "hi".into() }).await }
    ///     })
    ///     .await?;
    /// assert_eq!(loud, "HI");
    /// # Ok(()) }
    /// ```
    ///
    /// In a [durable](crate::durable) run the call is a step named `tool:<name>`, which
    /// is why the output must be readable back from JSON.
    pub async fn tool<I, O>(&self, tool: &Tool<I, O>, input: I) -> Result<O, AgentError>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
    {
        let input = serde_json::to_value(&input).map_err(|err| {
            AgentError::new(
                ErrorClass::InvalidInput,
                format!("the input of tool `{}` is not JSON: {err}", tool.name()),
            )
        })?;
        let call = async { Ok((self.tool_json(tool, Arc::new(input)).await?, None)) };
        self.journaled(&tool_step(tool.name()), call).await
    }

    /// [`tool`](Self::tool) on an input that is JSON already (what a model sent); input
    /// that does not fit the tool's type is an `invalid_input` error naming the field,
    /// never retried.
    pub(crate) async fn tool_json<I, O>(
        &self,
        tool: &Tool<I, O>,
        input: Arc<Value>,
    ) -> Result<O, AgentError>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
    {
        let call = ToolCallRun {
            ctx: self,
            name: Arc::from(tool.name()),
            input,
        };
        let mut attempt = 1;
        let err = loop {
            let err = match call.attempt(tool, attempt).await {
                Ok(output) => return Ok(output),
                Err(Failure::Final(err)) => break err,
                Err(Failure::Attempt(err)) => err,
            };
            match self.run().shared.retry.decide(&err, attempt, 0) {
                RetryDecision::Retry { delay, .. } => tokio::time::sleep(delay).await,
                RetryDecision::Stop(_) => break err,
            }
            attempt += 1;
        };
        // The call's retries are spent (or cannot help): the pipeline must not run the
        // whole body again for it, which would multiply the attempts.
        Err(err.with_should_retry(false))
    }
}

impl AgentContext {
    /// Reports a call the model asked for that cannot run at all (no tool of that name,
    /// arguments that are not JSON), as a `ToolCall` and a failed `ToolResult`, so hooks
    /// and metrics see it like any failed call.
    pub(crate) async fn report_unrunnable(&self, name: &str, input: Value, err: &AgentError) {
        let call = ToolCallRun {
            ctx: self,
            name: Arc::from(name),
            input: Arc::new(input),
        };
        call.report(EventKind::ToolCall, 1, None, None, None).await;
        call.report(
            EventKind::ToolResult,
            1,
            None,
            Some(Duration::ZERO),
            Some(err),
        )
        .await;
    }
}

/// The name of a tool call's step in a durable run's journal.
pub(crate) fn tool_step(tool: &str) -> String {
    format!("tool:{tool}")
}

/// How an attempt failed: for good (bad input, a veto), or in a way a retry may fix.
enum Failure {
    Final(AgentError),
    Attempt(AgentError),
}

/// One tool call: what every attempt and its events share.
struct ToolCallRun<'a> {
    ctx: &'a AgentContext,
    name: Arc<str>,
    input: Arc<Value>,
}

impl ToolCallRun<'_> {
    /// One attempt, between its `ToolCall` and `ToolResult` events: a veto or input
    /// that does not fit is final, what the tool itself returns may be retried.
    async fn attempt<I, O>(&self, tool: &Tool<I, O>, attempt: u32) -> Result<O, Failure>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
    {
        let steering = self
            .report(EventKind::ToolCall, attempt, None, None, None)
            .await;
        let started = Instant::now();
        let result = match (steering.rejection(), self.decode::<I>()) {
            (Some(veto), _) => Err(Failure::Final(veto.clone())),
            (None, Err(bad_input)) => Err(Failure::Final(bad_input)),
            (None, Ok(input)) => self.run(tool, input).await.map_err(Failure::Attempt),
        };
        let output = match &result {
            Ok(output) if self.ctx.run().listens_to(EventKind::ToolResult) => {
                serde_json::to_value(output).ok()
            }
            _ => None,
        };
        let error = match &result {
            Err(Failure::Final(err) | Failure::Attempt(err)) => Some(err),
            Ok(_) => None,
        };
        self.report(
            EventKind::ToolResult,
            attempt,
            output,
            Some(started.elapsed()),
            error,
        )
        .await;
        result
    }

    /// The tool's fn, bounded by the `tool_call` limit, a panic caught as an error.
    async fn run<I, O>(&self, tool: &Tool<I, O>, input: I) -> Result<O, AgentError>
    where
        I: Send + 'static,
        O: Send + 'static,
    {
        let work = AssertUnwindSafe(tool.start(input)).catch_unwind();
        match self.ctx.within(Stage::ToolCall, work.map(Ok)).await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(self.panicked(panic.as_ref())),
            Err(timeout) => Err(timeout),
        }
    }

    fn decode<I: DeserializeOwned>(&self) -> Result<I, AgentError> {
        serde_path_to_error::deserialize(&*self.input).map_err(|err| {
            let path =
                crate::__private::field_path(&err.path().to_string(), &err.inner().to_string());
            let at = if path == "." {
                String::new()
            } else {
                format!(" at `{path}`")
            };
            AgentError::new(
                ErrorClass::InvalidInput,
                format!(
                    "the input of tool `{}` does not match its schema{at}: {}",
                    self.name,
                    err.inner()
                ),
            )
        })
    }

    fn panicked(&self, panic: &(dyn std::any::Any + Send)) -> AgentError {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        AgentError::new(
            ErrorClass::Other,
            format!("tool `{}` panicked: {message}", self.name),
        )
    }

    async fn report(
        &self,
        kind: EventKind,
        attempt: u32,
        output: Option<Value>,
        elapsed: Option<Duration>,
        error: Option<&AgentError>,
    ) -> crate::reliability::Steering {
        let run = self.ctx.run();
        run.report(kind, self.ctx.model_arc(), |event| {
            event.attempt = attempt;
            event.error = error.cloned();
            event.data = EventData::Tool {
                name: self.name.clone(),
                input: self.input.clone(),
                output,
                elapsed,
            };
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reliability::{Pipeline, RequestInfo};

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct City {
        #[allow(dead_code)]
        name: String,
    }

    #[tokio::test(start_paused = true)]
    async fn input_that_does_not_fit_is_invalid_input_naming_the_field() {
        let tool = Tool::new("weather", "d", |_: City| async { Ok::<_, AgentError>(()) }).unwrap();
        let pipeline = Pipeline::builder().build().unwrap();
        let err = pipeline
            .run(RequestInfo::new(), |ctx: AgentContext| {
                let tool = tool.clone();
                async move {
                    ctx.tool_json(&tool, Arc::new(serde_json::json!({"name": 5})))
                        .await
                }
            })
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert!(
            err.message()
                .starts_with("the input of tool `weather` does not match its schema at `name`"),
            "{err}"
        );
        assert_eq!(err.should_retry(), Some(false));
    }
}
