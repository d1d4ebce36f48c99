//! Hooks: your code, called at the pipeline's events, able to steer the run.
//!
//! Register a hook with `#[hook("on_retry")]` (collected at link time through
//! `inventory`) or in code with [`register`] / [`Hooks::with`]. Every hook gets a
//! [`HookContext`]: what happened, on which run, model and attempt, and methods to steer
//! (another model next, another delay, stop retrying, refuse the request).
//!
//! A hook that panics or returns an error is caught, logged and counted
//! ([`failures`]); the request goes on as if the hook had not run.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{Map, Value};

use crate::error::AgentError;
use crate::reliability::events::{EventFuture, EventSink, Steering};
use crate::reliability::{EventKind, PipelineEvent};

/// What a hook returns when it fails: any error.
pub type HookError = Box<dyn StdError + Send + Sync>;

/// The future an async hook returns.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HookError>> + Send + 'a>>;

/// An async hook as a plain function pointer (what `#[hook]` registers).
pub type HookFn = for<'a> fn(&'a mut HookContext) -> HookFuture<'a>;

/// The note that, set by a hook, overrides the model like
/// [`HookContext::set_model_override`].
const MODEL_OVERRIDE_NOTE: &str = "model_override";

/// Everything a hook knows about the event, and its means to steer the run.
///
/// It reads as the [`PipelineEvent`] it wraps: the fields every event of a run shares
/// (`ctx.kind`, `ctx.model`, `ctx.attempt`, `ctx.user`, ...) and the accessors of the
/// event's payload, `None` where the event does not carry the value (a
/// [`next_delay`](PipelineEvent::next_delay) exists only for `on_retry`, a
/// [`usage`](PipelineEvent::usage) only for `on_llm_end`, `on_response` and `on_error`).
/// What only hooks see is here: the retry counts and the run's notes.
#[derive(Debug)]
pub struct HookContext {
    event: PipelineEvent,
    /// Free-form notes about the run, kept from one event of the run to the next (set
    /// something in `on_request`, read it in `on_response`). One key is not free-form:
    /// `"model_override"`, set to a model name, is
    /// [`set_model_override`](Self::set_model_override) in another spelling.
    pub metadata: Map<String, Value>,
}

impl Deref for HookContext {
    type Target = PipelineEvent;

    fn deref(&self) -> &PipelineEvent {
        &self.event
    }
}

impl HookContext {
    /// Takes `event` over for the hooks, with a copy of the run's notes.
    fn take(event: &mut PipelineEvent) -> Self {
        let event = std::mem::replace(event, PipelineEvent::app(event.kind));
        HookContext {
            metadata: event.read_notes(),
            event,
        }
    }

    /// Hands the event, its steering and the notes back to the run.
    fn give_back(mut self, event: &mut PipelineEvent) {
        self.honour_noted_override();
        self.event.write_notes(self.metadata);
        *event = self.event;
    }

    /// The Python seed's spelling, `ctx.metadata["model_override"] = "gpt-4o-mini"`, does
    /// what [`set_model_override`](Self::set_model_override) does (and is taken out of the
    /// notes once applied) rather than being kept as a note nobody reads.
    fn honour_noted_override(&mut self) {
        match self.metadata.remove(MODEL_OVERRIDE_NOTE) {
            Some(Value::String(model)) if !model.is_empty() => self.set_model_override(model),
            Some(other) => tracing::warn!(
                hook_event = self.event.kind.hook_name(),
                value = %other,
                "metadata[\"model_override\"] must be a model name (a non-empty string); ignored"
            ),
            None => {}
        }
    }

    /// Retries so far on the current model. In `on_retry`, it counts the retry being
    /// announced: 1 before the second attempt.
    pub fn retry_count(&self) -> u32 {
        match self.event.kind {
            EventKind::Retry => self.event.attempt,
            _ => self.event.attempt.saturating_sub(1),
        }
    }

    /// Retries the policy allows (`max_attempts - 1`).
    pub fn max_retries(&self) -> u32 {
        self.event.max_attempts.saturating_sub(1)
    }

    /// `on_retry`: the delay before the next attempt in whole milliseconds.
    pub fn next_delay_ms(&self) -> Option<u64> {
        self.event
            .next_delay()
            .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    /// `on_retry`: use `model` from the next attempt on.
    pub fn set_model_override(&mut self, model: impl Into<Arc<str>>) {
        self.event.steer.set_model_override(model);
    }

    /// `on_retry`: wait `delay` before the next attempt instead.
    pub fn set_next_delay(&mut self, delay: Duration) {
        self.event.steer.set_delay(delay);
    }

    /// `on_retry`: stop retrying; the run fails with the current error (or falls back).
    pub fn abort_retries(&mut self) {
        self.event.steer.abort();
    }

    /// `on_request`: refuse the request with `error` before any limit or model.
    /// `on_tool_call`: refuse this call of the tool; it fails with `error` and is not
    /// retried (an agent loop tells the model, which may try something else).
    pub fn reject(&mut self, error: AgentError) {
        self.event.steer.reject(error);
    }

    /// What the hooks so far asked for.
    pub fn steering(&self) -> &Steering {
        &self.event.steer
    }
}

/// What a hook function may return: nothing, or a `Result` whose error is logged and
/// counted.
pub trait IntoHookResult {
    /// Converts to the common form.
    fn into_hook_result(self) -> Result<(), HookError>;
}

impl IntoHookResult for () {
    fn into_hook_result(self) -> Result<(), HookError> {
        Ok(())
    }
}

impl<E: Into<HookError>> IntoHookResult for Result<(), E> {
    fn into_hook_result(self) -> Result<(), HookError> {
        self.map_err(Into::into)
    }
}

type SyncHook = dyn Fn(&mut HookContext) -> Result<(), HookError> + Send + Sync;

#[derive(Clone)]
enum Body {
    Async(HookFn),
    Sync(Arc<SyncHook>),
}

/// Whether a hook scoped to `scope` runs for the pipeline labelled `endpoint`: its own
/// path, and for the OpenAI-compatible front door `/v1/chat/completions` covers every
/// route (`/v1/chat/completions#smart`) while a route's label covers that route only.
pub(crate) fn scope_covers(scope: &str, endpoint: &str) -> bool {
    endpoint == scope
        || endpoint
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('#'))
}

/// One hook: the event it listens to, an optional endpoint scope, a priority (higher
/// runs first; ties keep registration order) and the function.
#[derive(Clone)]
pub struct Hook {
    event: EventKind,
    name: Cow<'static, str>,
    endpoint: Option<Cow<'static, str>>,
    priority: i32,
    body: Body,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("event", &self.event)
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

impl Hook {
    /// An async hook: a function returning a [`HookFuture`].
    ///
    /// ```
    /// use fastagentic::hooks::{Hook, HookContext, HookFuture};
    /// use fastagentic::reliability::EventKind;
    ///
    /// fn note_start(ctx: &mut HookContext) -> HookFuture<'_> {
    ///     Box::pin(async move {
    ///         ctx.metadata.insert("started".into(), true.into());
    ///         Ok(())
    ///     })
    /// }
    /// let hook = Hook::new(EventKind::Request, "note_start", note_start);
    /// assert_eq!(hook.name(), "note_start");
    /// ```
    pub fn new(event: EventKind, name: impl Into<Cow<'static, str>>, hook: HookFn) -> Self {
        Hook {
            event,
            name: name.into(),
            endpoint: None,
            priority: 0,
            body: Body::Async(hook),
        }
    }

    /// A synchronous hook: any closure over `&mut HookContext` returning `()` or a
    /// `Result`.
    pub fn sync<F, R>(event: EventKind, name: impl Into<Cow<'static, str>>, hook: F) -> Self
    where
        F: Fn(&mut HookContext) -> R + Send + Sync + 'static,
        R: IntoHookResult,
    {
        Hook {
            event,
            name: name.into(),
            endpoint: None,
            priority: 0,
            body: Body::Sync(Arc::new(move |ctx| hook(ctx).into_hook_result())),
        }
    }

    /// Only for the endpoint at `path`.
    #[must_use]
    pub fn endpoint(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.endpoint = Some(path.into());
        self
    }

    /// Runs before hooks of lower priority (default 0).
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The hook's name (its function's, for `#[hook]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event it listens to.
    pub fn event(&self) -> EventKind {
        self.event
    }

    fn applies_to(&self, endpoint: &str) -> bool {
        self.endpoint
            .as_deref()
            .is_none_or(|path| scope_covers(path, endpoint))
    }

    /// The path it is scoped to, if any.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    pub(crate) fn scope(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Its name, for messages about it.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    pub(crate) fn label(&self) -> &str {
        &self.name
    }

    /// Runs the hook, turning a panic into an error.
    async fn call(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let outcome = match &self.body {
            // A hand-written `HookFn` may panic before it returns its future, too.
            Body::Async(hook) => match catch_once(move || hook(ctx)) {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            },
            Body::Sync(hook) => catch_once(|| hook(ctx)),
        };
        outcome.unwrap_or_else(|panic| Err(panic_message(&*panic).into()))
    }
}

/// Calls `f`, catching a panic. (Taking `FnOnce` lets a closure hand out the borrow it
/// captured, as `hook(ctx)` does with its future.)
fn catch_once<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload");
    format!("the hook panicked: {text}")
}

/// A set of hooks, ordered by event and priority; as an [`EventSink`] it runs the
/// hooks of each event in order.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    by_event: Vec<Vec<Hook>>,
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Self {
        Hooks::default()
    }

    /// Every `#[hook]` in the program, plus those given to [`register`].
    pub fn registered() -> Self {
        let collected = inventory::iter::<crate::__private::HookRegistration>
            .into_iter()
            .map(crate::__private::HookRegistration::to_hook);
        let programmatic = runtime_hooks();
        collected
            .chain(programmatic)
            .fold(Hooks::new(), Hooks::with)
    }

    /// Adds `hook`.
    #[must_use]
    pub fn with(mut self, hook: Hook) -> Self {
        let slot = event_index(hook.event);
        if self.by_event.len() <= slot {
            self.by_event.resize_with(EventKind::ALL.len(), Vec::new);
        }
        let list = &mut self.by_event[slot];
        // Stable: equal priorities keep their registration order.
        let at = list.partition_point(|h| h.priority >= hook.priority);
        list.insert(at, hook);
        self
    }

    /// The hooks for `event`, in the order they run.
    pub fn for_event(&self, event: EventKind) -> &[Hook] {
        self.by_event
            .get(event_index(event))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether there are no hooks at all.
    pub fn is_empty(&self) -> bool {
        self.by_event.iter().all(Vec::is_empty)
    }

    /// Runs the hooks for `event` and hands their steering back.
    pub async fn dispatch(&self, event: &mut PipelineEvent) {
        let hooks = self.for_event(event.kind);
        if !hooks.iter().any(|h| h.applies_to(&event.endpoint)) {
            return;
        }
        let endpoint = event.endpoint.clone();
        let mut ctx = HookContext::take(event);
        for hook in hooks.iter().filter(|h| h.applies_to(&endpoint)) {
            if let Err(err) = hook.call(&mut ctx).await {
                record_failure(hook, &err);
            }
        }
        ctx.give_back(event);
    }
}

impl EventSink for Hooks {
    fn on_event<'a>(&'a self, event: &'a mut PipelineEvent) -> EventFuture<'a> {
        Box::pin(self.dispatch(event))
    }

    fn listens_to(&self, kind: EventKind) -> bool {
        !self.for_event(kind).is_empty()
    }
}

fn event_index(event: EventKind) -> usize {
    EventKind::ALL.iter().position(|k| *k == event).unwrap_or(0)
}

static RUNTIME_HOOKS: RwLock<Vec<Hook>> = RwLock::new(Vec::new());

fn runtime_hooks() -> Vec<Hook> {
    RUNTIME_HOOKS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Registers `hook` for the whole program, like `#[hook]` does. Pipelines built after
/// this call (and the endpoints' own pipelines, built on first use) include it.
pub fn register(hook: Hook) {
    RUNTIME_HOOKS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(hook);
}

static FAILURES: [AtomicU64; EventKind::ALL.len()] =
    [const { AtomicU64::new(0) }; EventKind::ALL.len()];

fn record_failure(hook: &Hook, err: &HookError) {
    tracing::error!(hook = %hook.name, event = %hook.event, error = %err, "hook failed; the request goes on");
    FAILURES[event_index(hook.event)].fetch_add(1, Ordering::Relaxed);
}

/// How many hooks for `event` have failed (panicked or returned an error) so far.
pub fn failures(event: EventKind) -> u64 {
    FAILURES
        .get(event_index(event))
        .map_or(0, |n| n.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::scope_covers;

    #[test]
    fn a_gateway_scope_covers_its_routes_and_only_them() {
        assert!(scope_covers("/chat", "/chat"));
        assert!(!scope_covers("/chat", "/chatty"));
        assert!(scope_covers(
            "/v1/chat/completions",
            "/v1/chat/completions#smart"
        ));
        assert!(scope_covers(
            "/v1/chat/completions#smart",
            "/v1/chat/completions#smart"
        ));
        assert!(!scope_covers(
            "/v1/chat/completions#smart",
            "/v1/chat/completions#fast"
        ));
        assert!(!scope_covers("/v1/chat", "/v1/chat/completions#smart"));
    }
}
