//! A set of tools for an agent loop, found by the name the model calls them by.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Tool;
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass};
use crate::llm::{BoxFuture, Prompt, ToolSpec};

/// How many model calls an agent loop makes unless told otherwise.
pub const DEFAULT_MAX_STEPS: u32 = 10;

/// The tools an agent loop offers the model ([`Llm::run`](crate::llm::Llm::run)), and
/// how many steps the loop may take.
///
/// Cloning is cheap: the tools are shared.
#[derive(Clone, Default)]
pub struct Tools {
    tools: Vec<Arc<dyn AnyTool>>,
    max_steps: Option<u32>,
}

impl Tools {
    /// No tools, [`DEFAULT_MAX_STEPS`] steps.
    pub fn new() -> Self {
        Tools::default()
    }

    /// Adds `tool`, in place of one of the same name.
    #[must_use]
    pub fn with<I, O>(mut self, tool: Tool<I, O>) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
    {
        self.tools.retain(|t| t.spec().name != tool.name());
        self.tools.push(Arc::new(tool));
        self
    }

    /// The most model calls one loop makes (default [`DEFAULT_MAX_STEPS`]; 0 counts as 1,
    /// since a loop always asks the model once); a model still asking for tools after that
    /// many ends the loop with an error.
    #[must_use]
    pub fn max_steps(mut self, steps: u32) -> Self {
        self.max_steps = Some(steps.max(1));
        self
    }

    /// What the model is told about each tool, in the order they were added.
    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.iter().map(|t| t.spec())
    }

    pub(crate) fn max_steps_or_default(&self) -> u32 {
        self.max_steps.unwrap_or(DEFAULT_MAX_STEPS)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn AnyTool>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// `prompt` offering every tool it does not offer already.
    pub(crate) fn offered_in(&self, mut prompt: Prompt) -> Prompt {
        for spec in self.specs() {
            if !prompt.tools.iter().any(|t| t.name == spec.name) {
                prompt.tools.push(spec.clone());
            }
        }
        prompt
    }
}

impl fmt::Debug for Tools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.specs().map(|s| s.name.as_str()).collect();
        f.debug_struct("Tools")
            .field("tools", &names)
            .field("max_steps", &self.max_steps_or_default())
            .finish()
    }
}

/// A tool with its types erased: JSON in, JSON out.
pub(crate) trait AnyTool: Send + Sync {
    fn spec(&self) -> &ToolSpec;

    fn call<'a>(
        &'a self,
        ctx: &'a AgentContext,
        input: Arc<Value>,
    ) -> BoxFuture<'a, Result<Value, AgentError>>;
}

impl<I, O> AnyTool for Tool<I, O>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
{
    fn spec(&self) -> &ToolSpec {
        Tool::spec(self)
    }

    fn call<'a>(
        &'a self,
        ctx: &'a AgentContext,
        input: Arc<Value>,
    ) -> BoxFuture<'a, Result<Value, AgentError>> {
        Box::pin(async move {
            let call = async {
                let output = ctx.tool_json(self, input).await?;
                let output = serde_json::to_value(output).map_err(|err| {
                    AgentError::new(
                        ErrorClass::Other,
                        format!("the output of tool `{}` is not JSON: {err}", self.name()),
                    )
                })?;
                Ok((output, None))
            };
            ctx.journaled(&super::call::tool_step(self.name()), call)
                .await
        })
    }
}
