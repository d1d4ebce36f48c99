//! A tool: a name, a description, the JSON Schema of its input (derived from the input
//! type), and the async fn that does the work.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AgentError;
use crate::llm::{BoxFuture, ToolSpec};

type RunFn<I, O> = dyn Fn(I) -> BoxFuture<'static, Result<O, AgentError>> + Send + Sync;

/// A tool a model may call and an endpoint may run with [`ctx.tool`].
///
/// Declared once: the name and description the model reads, an input type whose JSON
/// Schema is derived with [`schemars`] (never written by hand), and an async fn. The fn
/// returns an [`AgentError`] with a class when it fails, and that class decides whether
/// the endpoint's retry policy tries again.
///
/// ```
/// use fastagentic::prelude::*;
/// use fastagentic::tools::Tool;
/// use schemars::JsonSchema;
///
/// #[derive(Deserialize, Serialize, JsonSchema)]
/// struct Sum {
///     /// The numbers to add.
///     terms: Vec<f64>,
/// }
///
/// let add = Tool::new("add", "Adds numbers", |input: Sum| async move {
///     Ok::<_, AgentError>(input.terms.iter().sum::<f64>())
/// })?;
/// assert_eq!(add.name(), "add");
/// assert_eq!(add.spec().parameters["properties"]["terms"]["type"], "array");
/// # Ok::<(), fastagentic::tools::InvalidTool>(())
/// ```
///
/// [`ctx.tool`]: crate::AgentContext::tool
pub struct Tool<I, O> {
    spec: Arc<ToolSpec>,
    run: Arc<RunFn<I, O>>,
    types: PhantomData<fn(I) -> O>,
}

/// A tool that cannot be offered to a model as declared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("tool `{name}`: {reason}")]
pub struct InvalidTool {
    /// The name given.
    pub name: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

/// The longest name all three providers accept.
const MAX_NAME: usize = 64;

impl<I, O> Tool<I, O>
where
    I: DeserializeOwned + JsonSchema + Send + 'static,
    O: Serialize + Send + 'static,
{
    /// A tool called `name` that does `run`.
    ///
    /// # Errors
    /// [`InvalidTool`] when the name is not 1–64 ASCII letters, digits, `_` or `-` (what
    /// OpenAI, Anthropic and Gemini all accept), or the description is empty.
    pub fn new<F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        run: F,
    ) -> Result<Self, InvalidTool>
    where
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, AgentError>> + Send + 'static,
    {
        let name = name.into();
        let description = description.into();
        check(&name, &description)?;
        let spec = ToolSpec {
            name,
            description,
            parameters: input_schema::<I>(),
        };
        Ok(Tool {
            spec: Arc::new(spec),
            run: Arc::new(move |input| Box::pin(run(input))),
            types: PhantomData,
        })
    }
}

impl<I, O> Tool<I, O> {
    /// The name the model calls it by.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// What the model is told about it: name, description and input schema.
    pub fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    /// One run of the fn, outside any pipeline.
    pub(crate) fn start(&self, input: I) -> BoxFuture<'static, Result<O, AgentError>> {
        (self.run)(input)
    }
}

impl<I, O> Clone for Tool<I, O> {
    fn clone(&self) -> Self {
        Tool {
            spec: self.spec.clone(),
            run: self.run.clone(),
            types: PhantomData,
        }
    }
}

impl<I, O> fmt::Debug for Tool<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.spec.name)
            .field("description", &self.spec.description)
            .finish_non_exhaustive()
    }
}

fn check(name: &str, description: &str) -> Result<(), InvalidTool> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let reason = if name.is_empty() || name.len() > MAX_NAME {
        Some(format!("a name must be 1 to {MAX_NAME} characters long"))
    } else if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        Some(format!(
            "{bad:?} is not allowed in a name; use ASCII letters, digits, `_` or `-`"
        ))
    } else if description.trim().is_empty() {
        Some("the description is empty; say what the tool does, the model reads it".into())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InvalidTool {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The JSON Schema of `I`, without the `$schema` key, which no provider wants in a tool's
/// parameters.
fn input_schema<I: JsonSchema>() -> Value {
    let mut schema = schemars::schema_for!(I).to_value();
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, JsonSchema)]
    struct Empty {}

    fn tool(name: &str, description: &str) -> Result<Tool<Empty, ()>, InvalidTool> {
        Tool::new(name, description, |_: Empty| async { Ok(()) })
    }

    #[test]
    fn names_the_providers_refuse_are_refused_at_construction() {
        assert!(tool("get_weather-2", "d").is_ok());
        let err = tool("get weather", "d").unwrap_err();
        assert_eq!(
            err.to_string(),
            "tool `get weather`: ' ' is not allowed in a name; use ASCII letters, digits, `_` or `-`"
        );
        assert!(tool("", "d").unwrap_err().reason.contains("1 to 64"));
        assert!(tool(&"x".repeat(65), "d").is_err());
        assert!(tool("ok", " ").unwrap_err().reason.contains("description"));
    }

    #[test]
    fn the_schema_comes_from_the_input_type() {
        let spec = tool("t", "d").unwrap().spec().clone();
        assert_eq!(spec.parameters["type"], "object");
        assert!(spec.parameters.get("$schema").is_none());
    }
}
