//! `ctx.llm()`: the model the pipeline chose, called within the run's limits.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::reliability::execute::in_span;

use super::completion::{Completion, Usage};
use super::prompt::Prompt;
use super::provider::Provider;
use super::stream::{CompletionStream, StreamEvent};
use crate::context::AgentContext;
use crate::error::{AgentError, ErrorClass};
use crate::reliability::{EventData, EventKind, Stage};

/// The name of a model call's step in a durable run's journal.
pub(crate) const LLM_STEP: &str = "llm";

/// A model call as a durable run's journal keeps it: the cost as an exact decimal
/// string, not the float a [`Completion`] is written with for clients.
#[derive(serde::Serialize, serde::Deserialize)]
struct JournaledCall {
    completion: Completion,
    #[serde(with = "rust_decimal::serde::str_option")]
    cost_usd: Option<Decimal>,
}

/// The LLM client of one attempt; see [`AgentContext::llm`].
///
/// Each call is one try: the pipeline around the body decides about retries and
/// fallback, so a failure here is returned, classified, for it to decide.
#[derive(Debug)]
pub struct Llm<'a> {
    ctx: &'a AgentContext,
    model: Arc<str>,
}

impl<'a> Llm<'a> {
    pub(crate) fn new(ctx: &'a AgentContext) -> Self {
        Llm {
            ctx,
            model: ctx.model_arc().clone(),
        }
    }

    /// The context of the attempt the calls belong to.
    pub(crate) fn context(&self) -> &'a AgentContext {
        self.ctx
    }

    /// Calls `model` instead of the one the pipeline chose, within the same limits,
    /// counting and pricing it the same way — for an endpoint whose caller names the
    /// model. The pipeline's breakers and fallback chain still follow its own model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<Arc<str>>) -> Self {
        self.model = model.into();
        self
    }

    /// Asks the attempt's model for a whole answer, within the `llm_call` limit.
    ///
    /// In a [durable](crate::durable) run the call is a step named `llm`: journaled
    /// once answered, and answered from the journal, without calling the provider or
    /// paying again, when the run runs again.
    pub async fn complete(&self, prompt: impl Into<Prompt>) -> Result<Completion, AgentError> {
        let prompt = prompt.into();
        let call = async {
            let mut completion = self.complete_live(prompt).await?;
            let cost_usd = completion.cost_usd.take();
            let facts = (self.model.to_string(), completion.usage, cost_usd);
            let journaled = JournaledCall {
                completion,
                cost_usd,
            };
            Ok((journaled, Some(facts)))
        };
        let journaled: JournaledCall = self.ctx.journaled(LLM_STEP, call).await?;
        let mut completion = journaled.completion;
        completion.cost_usd = journaled.cost_usd;
        Ok(completion)
    }

    async fn complete_live(&self, prompt: Prompt) -> Result<Completion, AgentError> {
        let (prompt, provider, model) = self.begin(prompt).await?;
        let span = call_span(provider.name(), model, false);
        let call = provider.complete(model, &prompt);
        let result = in_span(self.ctx.within(Stage::LlmCall, call), &span)
            .await
            .map_err(|err| self.label(err, &provider));
        let mut result = result;
        let usage = result.as_ref().ok().and_then(|c| c.usage);
        record_call(&span, usage, result.as_ref().err());
        let cost = match &mut result {
            Ok(completion) => {
                let cost = settle(self.ctx, &self.model, &provider, &completion.model, usage);
                completion.cost_usd = cost;
                cost
            }
            Err(_) => None,
        };
        llm_event(
            self.ctx,
            &self.model,
            EventKind::LlmEnd,
            &provider,
            (usage, cost),
            result.as_ref().err(),
        )
        .await;
        result
    }

    /// Asks the attempt's model for a streamed answer. The `llm_call` limit bounds the
    /// wait for the provider to start answering; the `stream_idle` limit bounds each
    /// wait between chunks after that.
    ///
    /// A durable run cannot journal a stream (what it handed out before a cut is gone),
    /// so there this is an `invalid_input` error: use [`complete`](Self::complete).
    pub async fn stream(&self, prompt: impl Into<Prompt>) -> Result<LlmStream, AgentError> {
        if let Some(run_id) = self.ctx.durable_run_id() {
            return Err(AgentError::new(
                ErrorClass::InvalidInput,
                format!(
                    "durable run {run_id}: `ctx.llm().stream(..)` cannot be journaled; \
                     use `ctx.llm().complete(..)` in durable endpoints"
                ),
            )
            .with_should_retry(false));
        }
        let (prompt, provider, model) = self.begin(prompt.into()).await?;
        let span = call_span(provider.name(), model, true);
        let call = provider.stream(model, &prompt);
        let opened = in_span(self.ctx.within(Stage::LlmCall, call), &span).await;
        match opened {
            Ok(inner) => Ok(LlmStream {
                inner,
                ctx: self.ctx.clone(),
                provider,
                model: self.model.clone(),
                span,
                ended: false,
                cost: None,
            }),
            Err(err) => {
                let err = self.label(err, &provider);
                record_call(&span, None, Some(&err));
                llm_event(
                    self.ctx,
                    &self.model,
                    EventKind::LlmEnd,
                    &provider,
                    (None, None),
                    Some(&err),
                )
                .await;
                Err(err)
            }
        }
    }

    /// What every call does first: size the prompt, route the model, report the start.
    async fn begin(&self, prompt: Prompt) -> Result<(Prompt, Arc<dyn Provider>, &str), AgentError> {
        let prompt = self.sized(prompt);
        let (provider, model) = self.route()?;
        llm_event(
            self.ctx,
            &self.model,
            EventKind::LlmStart,
            &provider,
            (None, None),
            None,
        )
        .await;
        Ok((prompt, provider, model))
    }

    fn route(&self) -> Result<(Arc<dyn Provider>, &str), AgentError> {
        self.ctx.providers().route(&self.model)
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
        err.with_model(self.model.clone())
    }
}

/// A streamed answer inside a run: [`CompletionStream`] with the run's idle limit.
#[derive(Debug)]
pub struct LlmStream {
    inner: CompletionStream,
    ctx: AgentContext,
    provider: Arc<dyn Provider>,
    model: Arc<str>,
    span: tracing::Span,
    ended: bool,
    cost: Option<Decimal>,
}

impl LlmStream {
    /// The next event, or `None` at the end; waiting longer than `stream_idle` for it
    /// is a `timeout` error that carries the output so far.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, AgentError>> {
        self.pull(true).await
    }

    /// Reads the rest of the answer and returns it whole, with its cost.
    ///
    /// Nothing is handed out on the way, so a failure here carries no partial output and
    /// the pipeline may retry it — unless the caller streams the run's output
    /// ([`AgentContext::is_streaming`]): then every event goes to the caller as it
    /// arrives, and a failure after the first one is final.
    pub async fn collect(mut self) -> Result<Completion, AgentError> {
        while let Some(item) = self.pull(false).await {
            item?;
        }
        Ok(self.into_completion())
    }

    async fn pull(&mut self, hand_out: bool) -> Option<Result<StreamEvent, AgentError>> {
        let sink = self.ctx.run().stream_sink();
        // Output forwarded to the caller cannot be taken back: it counts as handed out.
        let hand_out = hand_out || sink.is_some();
        let inner = &mut self.inner;
        let next = self
            .ctx
            .within(Stage::StreamIdle, async { Ok(inner.pull(hand_out).await) });
        let item = in_span(next, &self.span).await;
        let item = match item {
            Ok(Some(Err(err))) => Some(Err(err.with_model(self.model.clone()))),
            Ok(item) => item,
            Err(timeout) => Some(Err(self.inner.fail(timeout).with_model(self.model.clone()))),
        };
        match &item {
            None => self.end(None).await,
            Some(Err(err)) => self.end(Some(err)).await,
            Some(Ok(event)) => {
                // Bookkeeping before the first output (an early usage report, say) stays
                // here: a caller that saw nothing yet can still get a clean status if this
                // attempt fails, and usage is reported again, whole, later on.
                if let Some(sink) = sink
                    && self.inner.delivered()
                {
                    // A caller that went away cancels the run; nothing to do here.
                    let _ = sink.send(event.clone()).await;
                }
            }
        }
        item
    }

    /// The answer so far.
    pub fn so_far(&self) -> &Completion {
        self.inner.so_far()
    }

    /// The answer so far, with its cost. Taking it before the stream ended ends the call
    /// there: what was read so far is counted and priced.
    pub fn into_completion(mut self) -> Completion {
        self.end_unread();
        let mut completion = self.inner.take_completion();
        completion.cost_usd = self.cost;
        completion
    }

    /// Ends a call its reader left before the end: counts and prices what arrived, and
    /// reports `on_llm_end` from a task of its own (there is no one left to await it).
    /// Tokens a provider bills for an answer nobody read are still billed.
    fn end_unread(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let so_far = self.inner.so_far();
        let usage = so_far.usage;
        let cost = settle(&self.ctx, &self.model, &self.provider, &so_far.model, usage);
        self.cost = cost;
        record_call(&self.span, usage, None);
        if self.ctx.run().listens_to(EventKind::LlmEnd)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (ctx, model, provider) =
                (self.ctx.clone(), self.model.clone(), self.provider.clone());
            runtime.spawn(async move {
                llm_event(
                    &ctx,
                    &model,
                    EventKind::LlmEnd,
                    &provider,
                    (usage, cost),
                    None,
                )
                .await;
            });
        }
    }

    /// Counts the tokens and reports the call's end, once.
    async fn end(&mut self, err: Option<&AgentError>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let so_far = self.inner.so_far();
        let usage = so_far.usage;
        // A call that failed before reporting usage or handing anything out is, like a
        // failed `complete`, not put on the bill as an unpriced call: it would make a run
        // whose retry succeeded look unpriceable. One that failed after handing output
        // out did cost something unknown, and says so.
        let cost = if err.is_some() && usage.is_none() && !self.inner.delivered() {
            None
        } else {
            settle(&self.ctx, &self.model, &self.provider, &so_far.model, usage)
        };
        self.cost = cost;
        record_call(&self.span, usage, err);
        llm_event(
            &self.ctx,
            &self.model,
            EventKind::LlmEnd,
            &self.provider,
            (usage, cost),
            err,
        )
        .await;
    }
}

impl Drop for LlmStream {
    fn drop(&mut self) {
        self.end_unread();
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

/// Counts a finished call's tokens, prices them, and records the call in the run's
/// spend and the ledger. Returns the dollars, when usage and price are both known.
///
/// The price is looked up by the name the provider answered as (often a dated
/// snapshot), else by the model the pipeline chose.
fn settle(
    ctx: &AgentContext,
    model: &Arc<str>,
    provider: &Arc<dyn Provider>,
    answered_as: &str,
    usage: Option<Usage>,
) -> Option<Decimal> {
    let cost = usage.and_then(|usage| {
        ctx.add_tokens(usage.total);
        let priced_as = if answered_as.is_empty() {
            model
        } else {
            answered_as
        };
        ctx.pricing()
            .cost(priced_as, &usage)
            .ok()
            .map(|cost| cost.total)
    });
    ctx.run().record_call(model, provider.name(), usage, cost);
    cost
}

/// Reports an LLM call starting or ending to the run's listeners, if it has any.
async fn llm_event(
    ctx: &AgentContext,
    model: &Arc<str>,
    kind: EventKind,
    provider: &Arc<dyn Provider>,
    (usage, cost_usd): (Option<Usage>, Option<Decimal>),
    err: Option<&AgentError>,
) {
    let run = ctx.run();
    let Some(mut event) = run.event(kind, model) else {
        return;
    };
    event.attempt = ctx.attempt();
    event.data = EventData::Llm {
        provider: provider.name().into(),
        usage,
        cost_usd,
    };
    event.error = err.cloned();
    Box::pin(run.emit(&mut event)).await;
}
