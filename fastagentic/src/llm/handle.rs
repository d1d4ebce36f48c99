//! `ctx.llm()`: the model the pipeline chose, called within the run's limits.

use std::sync::Arc;

use super::completion::{Completion, Usage};
use super::prompt::Prompt;
use super::provider::Provider;
use super::stream::{CompletionStream, StreamEvent};
use crate::context::AgentContext;
use crate::error::AgentError;
use crate::reliability::{EventKind, Stage};

/// The LLM client of one attempt; see [`AgentContext::llm`].
///
/// Each call is one try: the pipeline around the body decides about retries and
/// fallback, so a failure here is returned, classified, for it to decide.
#[derive(Debug)]
pub struct Llm<'a> {
    ctx: &'a AgentContext,
}

impl<'a> Llm<'a> {
    pub(crate) fn new(ctx: &'a AgentContext) -> Self {
        Llm { ctx }
    }

    /// Asks the attempt's model for a whole answer, within the `llm_call` limit.
    pub async fn complete(&self, prompt: impl Into<Prompt>) -> Result<Completion, AgentError> {
        let prompt = self.sized(prompt.into());
        let (provider, model) = self.route()?;
        llm_event(self.ctx, EventKind::LlmStart, &provider, None, None).await;
        let call = provider.complete(model, &prompt);
        let result = self
            .ctx
            .within(Stage::LlmCall, call)
            .await
            .map_err(|err| self.label(err, &provider));
        let usage = result.as_ref().ok().and_then(|c| c.usage);
        if let Some(usage) = usage {
            self.ctx.add_tokens(usage.total);
        }
        llm_event(
            self.ctx,
            EventKind::LlmEnd,
            &provider,
            usage,
            result.as_ref().err(),
        )
        .await;
        result
    }

    /// Asks the attempt's model for a streamed answer. The `llm_call` limit bounds the
    /// wait for the provider to start answering; the `stream_idle` limit bounds each
    /// wait between chunks after that.
    pub async fn stream(&self, prompt: impl Into<Prompt>) -> Result<LlmStream, AgentError> {
        let prompt = self.sized(prompt.into());
        let (provider, model) = self.route()?;
        llm_event(self.ctx, EventKind::LlmStart, &provider, None, None).await;
        let call = provider.stream(model, &prompt);
        let opened = self.ctx.within(Stage::LlmCall, call).await;
        match opened {
            Ok(inner) => Ok(LlmStream {
                inner,
                ctx: self.ctx.clone(),
                provider,
                ended: false,
            }),
            Err(err) => {
                let err = self.label(err, &provider);
                llm_event(self.ctx, EventKind::LlmEnd, &provider, None, Some(&err)).await;
                Err(err)
            }
        }
    }

    fn route(&self) -> Result<(Arc<dyn Provider>, &'a str), AgentError> {
        self.ctx.providers().route(self.ctx.model())
    }

    /// Applies the `max_tokens` that context-overflow recovery chose.
    fn sized(&self, mut prompt: Prompt) -> Prompt {
        if let Some(limit) = self.ctx.max_tokens_override() {
            prompt.max_tokens = Some(prompt.max_tokens.map_or(limit, |m| m.min(limit)));
        }
        prompt
    }

    fn label(&self, err: AgentError, provider: &Arc<dyn Provider>) -> AgentError {
        let err = match err.provider() {
            Some(_) => err,
            None => err.with_provider(provider.name().to_owned()),
        };
        match err.model() {
            Some(_) => err,
            None => err.with_model(self.ctx.model_arc().clone()),
        }
    }
}

/// A streamed answer inside a run: [`CompletionStream`] with the run's idle limit.
#[derive(Debug)]
pub struct LlmStream {
    inner: CompletionStream,
    ctx: AgentContext,
    provider: Arc<dyn Provider>,
    ended: bool,
}

impl LlmStream {
    /// The next event, or `None` at the end; waiting longer than `stream_idle` for it
    /// is a `timeout` error that carries the output so far.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, AgentError>> {
        let inner = &mut self.inner;
        let item = self
            .ctx
            .within(Stage::StreamIdle, async { Ok(inner.next().await) })
            .await;
        let item = match item {
            Ok(item) => item,
            Err(timeout) => Some(Err(self.inner.fail(timeout))),
        };
        match &item {
            None => self.end(None).await,
            Some(Err(err)) => self.end(Some(err)).await,
            Some(Ok(_)) => {}
        }
        item
    }

    /// Reads the rest of the answer and returns it whole.
    pub async fn collect(mut self) -> Result<Completion, AgentError> {
        while let Some(item) = self.next().await {
            item?;
        }
        Ok(self.inner.into_completion())
    }

    /// The answer so far.
    pub fn so_far(&self) -> &Completion {
        self.inner.so_far()
    }

    /// The answer so far, once the stream has ended.
    pub fn into_completion(self) -> Completion {
        self.inner.into_completion()
    }

    /// Counts the tokens and reports the call's end, once.
    async fn end(&mut self, err: Option<&AgentError>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let usage = self.inner.so_far().usage;
        if let Some(usage) = usage {
            self.ctx.add_tokens(usage.total);
        }
        llm_event(&self.ctx, EventKind::LlmEnd, &self.provider, usage, err).await;
    }
}

/// Reports an LLM call starting or ending to the run's listeners, if it has any.
async fn llm_event(
    ctx: &AgentContext,
    kind: EventKind,
    provider: &Arc<dyn Provider>,
    usage: Option<Usage>,
    err: Option<&AgentError>,
) {
    let run = ctx.run();
    let Some(mut event) = run.event(kind, ctx.model_arc()) else {
        return;
    };
    event.attempt = ctx.attempt();
    event.provider = Some(provider.name().into());
    event.usage = usage;
    event.error = err.cloned();
    Box::pin(run.emit(&mut event)).await;
}
