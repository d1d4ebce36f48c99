//! The agent loop: send the prompt with the tools, run the calls the model asks for
//! (a turn's calls concurrently), send the answers back, until the model answers or the
//! loop runs out of steps.
//!
//! Where the loop got to is kept in the run, after every step. When a model call fails
//! and the pipeline retries the body, or falls back to another model, the loop started
//! from the same prompt goes on from its last step: tools that answered are not called
//! again, and the new model gets the conversation so far in its own provider's shape.

use std::sync::Arc;

use futures_util::future::join_all;
use rust_decimal::Decimal;
use serde_json::Value;

use super::Tools;
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::llm::{AgentStep, Completion, Llm, Prompt, StreamEvent, ToolCall, Usage};
use crate::reliability::run::LoopMemory;

/// What an agent loop ended with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AgentAnswer {
    /// The model's last answer, the one without tool calls.
    pub completion: Completion,
    /// The whole conversation: the prompt, every turn and tool answer, the last answer.
    pub transcript: Prompt,
    /// Every model call of the loop, in order, across retries and fallbacks.
    pub steps: Vec<AgentStep>,
}

impl AgentAnswer {
    /// The answer's text.
    pub fn text(&self) -> &str {
        &self.completion.text
    }

    /// Tokens over every step, or `None` when a step's usage is unknown.
    pub fn usage(&self) -> Option<Usage> {
        self.steps
            .iter()
            .try_fold(Usage::default(), |sum, step| Some(sum + step.usage?))
    }

    /// Dollars over every step, or `None` when a step's cost is unknown.
    pub fn cost_usd(&self) -> Option<Decimal> {
        self.steps
            .iter()
            .try_fold(Decimal::ZERO, |sum, step| Some(sum + step.cost_usd?))
    }
}

impl Llm<'_> {
    /// Runs an agent loop on `prompt` with `tools`: each model call is one step under the
    /// `llm_call` limit, each tool call runs as [`AgentContext::tool`] does, and a tool
    /// that fails (or does not exist, or gets arguments that do not fit) is answered to
    /// the model as an error so it can correct itself.
    ///
    /// A failed model call ends the body's attempt with its error, for the pipeline's
    /// breaker, retry and fallback to handle; the next attempt goes on from the last
    /// step. A model that still asks for tools after [`Tools::max_steps`] calls ends the
    /// loop with an `other` error carrying the transcript ([`ErrorDetail::MaxSteps`]).
    ///
    /// ```
    /// use fastagentic::llm::{MockProvider, MockReply, Providers};
    /// use fastagentic::prelude::*;
    /// use fastagentic::tools::{Tool, Tools};
    /// use schemars::JsonSchema;
    /// use std::sync::Arc;
    ///
    /// #[derive(Deserialize, Serialize, JsonSchema)]
    /// struct Nothing {}
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let clock = Tool::new("clock", "The time in UTC", |_: Nothing| async {
    ///     Ok::<_, AgentError>("12:00")
    /// })?;
    /// let tools = Tools::new().with(clock);
    /// // The mock asks for the clock, then answers from what it said.
    /// let mock = MockProvider::new().push(MockReply::tool_call("clock", serde_json::json!({})));
    /// let pipeline = Pipeline::builder()
    ///     .model("mock/agent")
    ///     .providers(Arc::new(Providers::new().with(mock)))
    ///     .build()?;
    /// let answer = pipeline
    ///     .run(RequestInfo::new(), |ctx: AgentContext| {
    ///         let tools = tools.clone();
    ///         async move { ctx.llm().run("What time is it?", &tools).await }
    ///     })
    ///     .await?;
    /// assert_eq!(answer.text(), "Mock answer from agent: the tools said 12:00.");
    /// assert_eq!(answer.steps.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn run(
        &self,
        prompt: impl Into<Prompt>,
        tools: &Tools,
    ) -> Result<AgentAnswer, AgentError> {
        let ctx = self.context();
        let start = tools.offered_in(prompt.into());
        // A durable run's journal replays the loop's calls itself; recalling where an
        // earlier attempt got to would skip steps and shift the journal's positions.
        let recalled = match ctx.is_durable() {
            true => None,
            false => ctx.run().recall_loop(&start),
        };
        let mut memory = recalled.unwrap_or_else(|| LoopMemory {
            start: start.clone(),
            transcript: start,
            steps: Vec::new(),
            answer: None,
        });
        if let Some(completion) = memory.answer {
            // Finished in an earlier attempt (the body failed after it): the same answer,
            // not a second bill.
            return Ok(AgentAnswer {
                completion,
                transcript: memory.transcript,
                steps: memory.steps,
            });
        }
        loop {
            let completion = self.step(memory.transcript.clone()).await?;
            memory.steps.push(AgentStep::of(&completion));
            memory.transcript = memory.transcript.answered(&completion);
            if completion.tool_calls.is_empty() {
                memory.answer = Some(completion.clone());
                ctx.run().remember_loop(memory.clone());
                return Ok(AgentAnswer {
                    completion,
                    transcript: memory.transcript,
                    steps: memory.steps,
                });
            }
            if memory.steps.len() >= tools.max_steps_or_default() as usize {
                ctx.run().remember_loop(memory.clone());
                return Err(out_of_steps(tools.max_steps_or_default(), memory));
            }
            let answers =
                join_all((completion.tool_calls.iter()).map(|call| answer(ctx, tools, call))).await;
            for (call, answer) in completion.tool_calls.iter().zip(answers) {
                let (content, is_error) = match answer {
                    Ok(output) => (output, false),
                    Err(message) => (message, true),
                };
                if ctx.is_streaming() {
                    ctx.send(StreamEvent::ToolResult {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        content: content.clone(),
                        is_error,
                    })
                    .await;
                }
                memory.transcript = if is_error {
                    memory.transcript.tool_error(call, content)
                } else {
                    memory.transcript.tool_result(call, content)
                };
            }
            ctx.run().remember_loop(memory.clone());
        }
    }
}

impl Llm<'_> {
    /// One model call of the loop: streamed to the caller (text deltas and tool-call
    /// fragments) when the caller streams, whole otherwise.
    async fn step(&self, prompt: Prompt) -> Result<Completion, AgentError> {
        if self.context().is_streaming() {
            self.stream(prompt).await?.collect().await
        } else {
            self.complete(prompt).await
        }
    }
}

/// Runs one call the model asked for; `Err` is what the model is told went wrong.
async fn answer(ctx: &AgentContext, tools: &Tools, call: &ToolCall) -> Result<String, String> {
    let Some(tool) = tools.get(&call.name) else {
        let known: Vec<&str> = tools.specs().map(|s| s.name.as_str()).collect();
        let err = AgentError::new(
            ErrorClass::InvalidInput,
            format!(
                "there is no tool named `{}`; the tools are: {}",
                call.name,
                known.join(", ")
            ),
        );
        let input = Value::String(call.arguments.clone());
        ctx.report_unrunnable(&call.name, input, &err).await;
        return Err(err.message().to_owned());
    };
    let input = match call.parse_arguments() {
        Ok(input) => input,
        Err(e) => {
            let err = AgentError::new(
                ErrorClass::InvalidInput,
                format!("the arguments of `{}` are not valid JSON: {e}", call.name),
            );
            let input = Value::String(call.arguments.clone());
            ctx.report_unrunnable(&call.name, input, &err).await;
            return Err(err.message().to_owned());
        }
    };
    match tool.call(ctx, Arc::new(input)).await {
        Ok(Value::String(text)) => Ok(text),
        Ok(output) => Ok(output.to_string()),
        Err(err) => Err(err.message().to_owned()),
    }
}

fn out_of_steps(max_steps: u32, memory: LoopMemory) -> AgentError {
    let asked: Vec<&str> = (memory.steps.last())
        .map(|s| s.tool_calls.iter().map(String::as_str).collect())
        .unwrap_or_default();
    AgentError::new(
        ErrorClass::Other,
        format!(
            "the agent loop used all of its {max_steps} steps and the model still asks for \
             tools ({}); raise `Tools::max_steps` or give the model a narrower task",
            asked.join(", ")
        ),
    )
    .with_detail(ErrorDetail::MaxSteps {
        max_steps,
        transcript: Box::new(memory.transcript),
    })
    // Running the body again would only run the same loop out of steps again.
    .with_should_retry(false)
}
