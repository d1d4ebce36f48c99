//! `ctx.llm()`: the model the pipeline chose, called within the run's limits.

use std::sync::Arc;

use crate::reliability::pipeline::in_span;

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
        let span = call_span(provider.name(), model, false);
        let call = provider.complete(model, &prompt);
        let result = in_span(self.ctx.within(Stage::LlmCall, call), &span)
            .await
            .map_err(|err| self.label(err, &provider));
        let usage = result.as_ref().ok().and_then(|c| c.usage);
        record_call(&span, usage, result.as_ref().err());
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
        let span = call_span(provider.name(), model, true);
        let call = provider.stream(model, &prompt);
        let opened = in_span(self.ctx.within(Stage::LlmCall, call), &span).await;
        match opened {
            Ok(inner) => Ok(LlmStream {
                inner,
                ctx: self.ctx.clone(),
                provider,
                span,
                ended: false,
            }),
            Err(err) => {
                let err = self.label(err, &provider);
                record_call(&span, None, Some(&err));
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
        // Errors name the model as the pipeline does (`openai/gpt-4o`), whoever made them.
        err.with_model(self.ctx.model_arc().clone())
    }
}

/// A streamed answer inside a run: [`CompletionStream`] with the run's idle limit.
#[derive(Debug)]
pub struct LlmStream {
    inner: CompletionStream,
    ctx: AgentContext,
    provider: Arc<dyn Provider>,
    span: tracing::Span,
    ended: bool,
}

impl LlmStream {
    /// The next event, or `None` at the end; waiting longer than `stream_idle` for it
    /// is a `timeout` error that carries the output so far.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, AgentError>> {
        self.pull(true).await
    }

    /// Reads the rest of the answer and returns it whole. Nothing is handed out on the
    /// way, so a failure here carries no partial output and the pipeline may retry it.
    pub async fn collect(mut self) -> Result<Completion, AgentError> {
        while let Some(item) = self.pull(false).await {
            item?;
        }
        Ok(self.inner.into_completion())
    }

    async fn pull(&mut self, hand_out: bool) -> Option<Result<StreamEvent, AgentError>> {
        let inner = &mut self.inner;
        let next = self
            .ctx
            .within(Stage::StreamIdle, async { Ok(inner.pull(hand_out).await) });
        let item = in_span(next, &self.span).await;
        let item = match item {
            Ok(Some(Err(err))) => Some(Err(err.with_model(self.ctx.model_arc().clone()))),
            Ok(item) => item,
            Err(timeout) => Some(Err(self
                .inner
                .fail(timeout)
                .with_model(self.ctx.model_arc().clone()))),
        };
        match &item {
            None => self.end(None).await,
            Some(Err(err)) => self.end(Some(err)).await,
            Some(Ok(_)) => {}
        }
        item
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
        record_call(&self.span, usage, err);
        llm_event(&self.ctx, EventKind::LlmEnd, &self.provider, usage, err).await;
    }
}

/// The span of one LLM call. Only names and counts: never prompts, answers or keys.
fn call_span(provider: &str, model: &str, stream: bool) -> tracing::Span {
    tracing::info_span!(
        "fastagentic.llm_call",
        provider,
        model,
        stream,
        input_tokens = tracing::field::Empty,
        output_tokens = tracing::field::Empty,
        error_class = tracing::field::Empty,
    )
}

fn record_call(span: &tracing::Span, usage: Option<Usage>, err: Option<&AgentError>) {
    if let Some(usage) = usage {
        span.record("input_tokens", usage.input);
        span.record("output_tokens", usage.output);
    }
    if let Some(err) = err {
        span.record("error_class", err.class().as_str());
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
