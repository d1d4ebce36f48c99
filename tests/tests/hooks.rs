//! Hooks end to end, on virtual time: `#[hook]` fns and hooks registered in code run at
//! the pipeline's events, in order, with the event's fields; they steer the run; they
//! are ordered by priority and scoped by endpoint; they keep notes across one run; and a
//! hook that fails never takes a request down.
//!
//! `#[hook]`s are global to this test binary, so each one is scoped to an endpoint
//! (`/hooks-test/...`) used by exactly one test, and each test builds its pipelines on
//! its own endpoints. What a `#[hook]` fn sees goes to a log tagged with the endpoint,
//! which each test reads back for its own endpoint only.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fastagentic::hooks::{self, Hook, HookContext, HookFuture, Hooks};
use fastagentic::llm::{MockProvider, MockReply, Usage};
use fastagentic::prelude::*;
use fastagentic::reliability::{
    EventKind, EventSink, LimitType, PipelineBuilder, PipelineEvent, Stage, StopReason,
};
use fastagentic_testing::{fail, providers, retry};
use serde_json::json;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// What hooks saw
// ---------------------------------------------------------------------------------------

/// Everything a hook saw of one event, comparable.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    event: EventKind,
    run_id: u64,
    endpoint: String,
    model: String,
    provider: Option<String>,
    attempt: u32,
    retry_count: u32,
    max_retries: u32,
    error: Option<ErrorClass>,
    next_delay_ms: Option<u64>,
    fallback_to: Option<String>,
    succeeded: Option<bool>,
    stop_reason: Option<StopReason>,
    stage: Option<Stage>,
    limit_type: Option<LimitType>,
    usage: Option<Usage>,
    elapsed: Option<Duration>,
    user: Option<String>,
    tenant: Option<String>,
}

impl Seen {
    fn of(ctx: &HookContext) -> Self {
        let text = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
        Seen {
            event: ctx.kind,
            run_id: ctx.run_id,
            endpoint: ctx.endpoint.to_string(),
            model: ctx.model.to_string(),
            provider: ctx.provider().map(|p| p.to_string()),
            attempt: ctx.attempt,
            retry_count: ctx.retry_count(),
            max_retries: ctx.max_retries(),
            error: ctx.error.as_ref().map(AgentError::class),
            next_delay_ms: ctx.next_delay_ms(),
            fallback_to: ctx.fallback_to().map(|p| p.to_string()),
            succeeded: ctx.succeeded(),
            stop_reason: ctx.stop_reason(),
            stage: ctx.stage(),
            limit_type: ctx.limit_type(),
            usage: ctx.usage(),
            elapsed: ctx.elapsed(),
            user: text(&ctx.user),
            tenant: text(&ctx.tenant),
        }
    }
}

/// What the `#[hook]` recorders of this file saw, every endpoint mixed.
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

fn record(ctx: &HookContext) {
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    seen.push(Seen::of(ctx));
}

/// What the `#[hook]` recorders saw on `endpoint`, in order.
fn seen_on(endpoint: &str) -> Vec<Seen> {
    let seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    seen.iter()
        .filter(|s| s.endpoint == endpoint)
        .cloned()
        .collect()
}

/// Free-form notes from hooks, tagged with the endpoint.
static NOTES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn note(ctx: &HookContext, what: impl Into<String>) {
    let mut notes = NOTES.lock().unwrap_or_else(PoisonError::into_inner);
    notes.push((ctx.endpoint.to_string(), what.into()));
}

fn notes_on(endpoint: &str) -> Vec<String> {
    let notes = NOTES.lock().unwrap_or_else(PoisonError::into_inner);
    notes
        .iter()
        .filter(|(e, _)| e == endpoint)
        .map(|(_, what)| what.clone())
        .collect()
}

/// A hand-made set of hooks recording every event, for one pipeline.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn hooks(&self) -> Hooks {
        EventKind::ALL.iter().fold(Hooks::new(), |hooks, kind| {
            let log = self.0.clone();
            hooks.with(Hook::sync(*kind, "record", move |ctx: &mut HookContext| {
                log.lock().unwrap().push(Seen::of(ctx));
            }))
        })
    }

    fn sink(&self) -> Arc<dyn EventSink> {
        Arc::new(self.hooks())
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.all().iter().map(|s| s.event).collect()
    }
}

fn kinds(seen: &[Seen]) -> Vec<EventKind> {
    seen.iter().map(|s| s.event).collect()
}

// ---------------------------------------------------------------------------------------
// Pipelines and bodies
// ---------------------------------------------------------------------------------------

/// A pipeline for `endpoint` listening with every registered hook.
fn with_registered_hooks(endpoint: &str) -> PipelineBuilder {
    Pipeline::builder()
        .endpoint(endpoint)
        .event_sink(Arc::new(Hooks::registered()))
}

/// A body failing its first `failures` calls with a server error, then answering the
/// model's name; and its call count.
fn failing_first(
    failures: u32,
) -> (
    Arc<AtomicU32>,
    impl FnMut(AgentContext) -> std::future::Ready<Result<String, AgentError>>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let body = move |ctx: AgentContext| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(if n < failures {
            Err(fail(ErrorClass::ServerError))
        } else {
            Ok(ctx.model().to_owned())
        })
    };
    (calls, body)
}

// ---------------------------------------------------------------------------------------
// Every event the pipeline fires, in order, with its fields
// ---------------------------------------------------------------------------------------

const JOURNEY: &str = "/hooks-test/journey";

#[hook("on_request", endpoint = "/hooks-test/journey")]
async fn journey_request(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_llm_start", endpoint = "/hooks-test/journey")]
fn journey_llm_start(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_llm_end", endpoint = "/hooks-test/journey")]
async fn journey_llm_end(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_retry", endpoint = "/hooks-test/journey")]
fn journey_retry(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_retry_end", endpoint = "/hooks-test/journey")]
async fn journey_retry_end(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_response", endpoint = "/hooks-test/journey")]
fn journey_response(ctx: &mut HookContext) {
    record(ctx);
}

#[hook("on_error", endpoint = "/hooks-test/journey")]
async fn journey_error(ctx: &mut HookContext) {
    record(ctx);
}

#[tokio::test(start_paused = true)]
async fn a_run_fires_request_llm_retry_and_response_in_order_with_their_fields() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::server_error())
            .push(MockReply::text("fine").usage(Usage::new(10, 5))),
    );
    let pipeline = with_registered_hooks(JOURNEY)
        .model("mock/primary")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let started = Instant::now();
    let request = RequestInfo::new().user("alice").tenant("acme");
    let reply = pipeline
        .run(request, |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "fine");
    assert_eq!(started.elapsed(), Duration::from_secs(1));

    let seen = seen_on(JOURNEY);
    use EventKind::*;
    assert_eq!(
        kinds(&seen),
        [
            Request, LlmStart, LlmEnd, Retry, LlmStart, LlmEnd, RetryEnd, Response
        ]
    );
    for event in &seen {
        assert_eq!(event.run_id, seen[0].run_id, "{event:?}");
        assert_eq!(event.model, "mock/primary", "{event:?}");
        assert_eq!(event.max_retries, 2, "{event:?}");
        assert_eq!(event.user.as_deref(), Some("alice"), "{event:?}");
        assert_eq!(event.tenant.as_deref(), Some("acme"), "{event:?}");
    }
    let [
        request,
        start1,
        end1,
        retry,
        start2,
        end2,
        retry_end,
        response,
    ] = &seen[..]
    else {
        unreachable!()
    };
    assert_eq!((request.attempt, request.retry_count), (0, 0));
    assert_eq!((request.provider.as_deref(), request.error), (None, None));

    assert_eq!(
        (start1.provider.as_deref(), start1.attempt),
        (Some("mock"), 1)
    );
    assert_eq!((start1.usage, start1.error), (None, None));
    assert_eq!((end1.provider.as_deref(), end1.attempt), (Some("mock"), 1));
    assert_eq!(
        (end1.usage, end1.error),
        (None, Some(ErrorClass::ServerError))
    );

    assert_eq!((retry.attempt, retry.retry_count), (1, 1));
    assert_eq!(retry.next_delay_ms, Some(1000));
    assert_eq!(retry.error, Some(ErrorClass::ServerError));

    assert_eq!((start2.attempt, start2.retry_count), (2, 1));
    assert_eq!((end2.attempt, end2.error), (2, None));
    assert_eq!(end2.usage, Some(Usage::new(10, 5)));

    assert_eq!((retry_end.attempt, retry_end.succeeded), (2, Some(true)));
    assert_eq!((retry_end.stop_reason, retry_end.error), (None, None));

    assert_eq!(response.elapsed, Some(Duration::from_secs(1)));
    assert_eq!(response.error, None);

    // A body error that is not retried: on_request, then on_error, nothing between.
    let err = pipeline
        .run(RequestInfo::new(), |_ctx: AgentContext| async {
            Err::<(), _>(fail(ErrorClass::InvalidInput))
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    let second: Vec<Seen> = seen_on(JOURNEY).into_iter().skip(seen.len()).collect();
    assert_eq!(kinds(&second), [Request, Error]);
    assert_ne!(second[0].run_id, seen[0].run_id);
    assert_eq!(second[1].run_id, second[0].run_id);
    assert_eq!(second[1].error, Some(ErrorClass::InvalidInput));
    assert_eq!(second[1].elapsed, Some(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_end_with_the_stop_reason_then_on_error() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/exhausted")
        .model("m")
        .retry(retry(2))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = failing_first(u32::MAX);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    use EventKind::*;
    assert_eq!(recorder.kinds(), [Request, Retry, RetryEnd, Error]);
    let seen = recorder.all();
    let retry_end = &seen[2];
    assert_eq!((retry_end.attempt, retry_end.retry_count), (2, 1));
    assert_eq!(retry_end.succeeded, Some(false));
    assert_eq!(retry_end.stop_reason, Some(StopReason::Exhausted));
    assert_eq!(retry_end.error, Some(ErrorClass::ServerError));
    assert_eq!(seen[3].error, Some(ErrorClass::ServerError));
    assert_eq!(seen[3].elapsed, Some(Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_fires_open_half_open_and_close() {
    let recorder = Recorder::default();
    let breaker = CircuitBreakerPolicy::builder()
        .failure_threshold(2)
        .reset_timeout(Duration::from_secs(10))
        .half_open_requests(1)
        .success_threshold(2)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/circuit")
        .model("m")
        .circuit_breaker(breaker)
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    // Fails on its first three calls, answers after.
    let (calls, mut body) = failing_first(3);
    let mut outcomes = Vec::new();
    for pause in [0, 0, 0, 10, 10, 0] {
        tokio::time::advance(Duration::from_secs(pause)).await;
        let outcome = pipeline.run(RequestInfo::new(), &mut body).await;
        outcomes.push(outcome.map_err(|e| e.class()));
    }
    use ErrorClass::{CircuitOpen as Refused, ServerError};
    let m = || Ok("m".to_owned());
    // 1: fails; 2: fails and opens (answered with its own error); 3: refused; 10 s
    // later 4: a probe that fails and re-opens (its own error again); 10 s later 5: a
    // probe that succeeds; 6: the second success closes.
    assert_eq!(
        outcomes,
        [
            Err(ServerError),
            Err(ServerError),
            Err(Refused),
            Err(ServerError),
            m(),
            m()
        ]
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "run 3 never reached the body"
    );

    let seen = recorder.all();
    let runs: Vec<u64> = seen
        .iter()
        .filter(|s| s.event == EventKind::Request)
        .map(|s| s.run_id)
        .collect();
    use EventKind::*;
    let circuit: Vec<(usize, EventKind)> = seen
        .iter()
        .filter(|s| matches!(s.event, CircuitOpen | CircuitHalfOpen | CircuitClose))
        .map(|s| {
            (
                runs.iter().position(|r| *r == s.run_id).unwrap() + 1,
                s.event,
            )
        })
        .collect();
    assert_eq!(
        circuit,
        [
            (2, CircuitOpen),
            (4, CircuitHalfOpen),
            (4, CircuitOpen),
            (5, CircuitHalfOpen),
            (6, CircuitClose)
        ]
    );
    assert!(
        seen.iter()
            .filter(|s| matches!(s.event, CircuitOpen | CircuitHalfOpen | CircuitClose))
            .all(|s| s.model == "m" && s.endpoint == "/hooks-test/circuit")
    );
    // The half-open transition comes before the probe's outcome; the close after it.
    let run5: Vec<EventKind> = seen
        .iter()
        .filter(|s| s.run_id == runs[4])
        .map(|s| s.event)
        .collect();
    assert_eq!(run5, [Request, CircuitHalfOpen, Response]);
    let run6: Vec<EventKind> = seen
        .iter()
        .filter(|s| s.run_id == runs[5])
        .map(|s| s.event)
        .collect();
    assert_eq!(run6, [Request, CircuitClose, Response]);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_names_the_model_it_moves_to() {
    let recorder = Recorder::default();
    let chain = FallbackChain::builder("primary")
        .then("backup", ClassSet::of(&[ErrorClass::ServerError]))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/fallback")
        .fallback(chain)
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let answer = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            match ctx.model() {
                "primary" => Err(fail(ErrorClass::ServerError)),
                other => Ok(other.to_owned()),
            }
        })
        .await
        .unwrap();
    assert_eq!(answer, "backup");
    use EventKind::*;
    assert_eq!(recorder.kinds(), [Request, Fallback, Response]);
    let seen = recorder.all();
    assert_eq!(seen[1].model, "primary");
    assert_eq!(seen[1].fallback_to.as_deref(), Some("backup"));
    assert_eq!(seen[1].error, Some(ErrorClass::ServerError));
    assert_eq!(
        seen[2].model, "backup",
        "on_response names the model that answered"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_name_their_stage() {
    // A slow LLM call: cut by `llm_call`, reported after the call's end.
    let recorder = Recorder::default();
    let mock = Arc::new(
        MockProvider::new().push(MockReply::text("late").latency(Duration::from_secs(10))),
    );
    let timeouts = TimeoutPolicy::builder()
        .llm_call(Duration::from_secs(1))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/timeout-llm")
        .model("mock/slow")
        .timeout(timeouts)
        .providers(providers(&mock))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    use EventKind::*;
    assert_eq!(
        recorder.kinds(),
        [Request, LlmStart, LlmEnd, Timeout, Error]
    );
    let seen = recorder.all();
    assert_eq!(seen[2].error, Some(ErrorClass::Timeout));
    assert_eq!(seen[3].stage, Some(Stage::LlmCall));
    assert_eq!(
        (seen[3].attempt, seen[3].error),
        (1, Some(ErrorClass::Timeout))
    );
    assert_eq!(seen[4].elapsed, Some(Duration::from_secs(1)));

    // A hung body: cut by the total timeout.
    let recorder = Recorder::default();
    let timeouts = TimeoutPolicy::builder()
        .total(Duration::from_secs(5))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/timeout-total")
        .timeout(timeouts)
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |_ctx| {
            std::future::pending::<Result<(), AgentError>>()
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert_eq!(recorder.kinds(), [Request, Timeout, Error]);
    let seen = recorder.all();
    assert_eq!(seen[1].stage, Some(Stage::Total));
    assert_eq!(seen[2].error, Some(ErrorClass::Timeout));
    assert_eq!(seen[2].elapsed, Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_names_the_limit() {
    let recorder = Recorder::default();
    let limit = RateLimitPolicy::builder()
        .requests_per_minute(1)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/hooks-test/rate-limit")
        .rate_limit(limit)
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, mut body) = failing_first(0);
    pipeline.run(RequestInfo::new(), &mut body).await.unwrap();
    let err = pipeline
        .run(RequestInfo::new(), &mut body)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimit);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    use EventKind::*;
    assert_eq!(
        recorder.kinds(),
        [Request, Response, Request, RateLimit, Error]
    );
    let seen = recorder.all();
    assert_eq!(seen[3].limit_type, Some(LimitType::Rpm));
    assert_eq!(seen[3].error, Some(ErrorClass::RateLimit));
}

// on_startup and on_shutdown come from `App::serve`, the tool events from tool calls and
// on_checkpoint / on_resume from durable runs, none of which these pipelines make (the
// server, tools and durable tests see them fire). Here the `#[hook]`s for them are checked
// to register unscoped and to run when their events are dispatched by hand.

#[hook("on_startup")]
fn unfired_startup(ctx: &mut HookContext) {
    note(ctx, "on_startup");
}

#[hook("on_shutdown")]
async fn unfired_shutdown(ctx: &mut HookContext) {
    note(ctx, "on_shutdown");
}

#[hook("on_tool_call")]
fn unfired_tool_call(ctx: &mut HookContext) {
    note(ctx, "on_tool_call");
}

#[hook("on_tool_result")]
async fn unfired_tool_result(ctx: &mut HookContext) {
    note(ctx, "on_tool_result");
}

#[hook("on_checkpoint")]
fn unfired_checkpoint(ctx: &mut HookContext) {
    note(ctx, "on_checkpoint");
}

#[hook("on_resume")]
async fn unfired_resume(ctx: &mut HookContext) -> Result<(), std::io::Error> {
    note(ctx, "on_resume");
    Ok(())
}

#[tokio::test]
async fn hooks_for_events_no_pipeline_fires_yet_register_and_run_when_dispatched() {
    use EventKind::*;
    let unfired = [Startup, Shutdown, ToolCall, ToolResult, Checkpoint, Resume];
    let hooks = Hooks::registered();
    for kind in unfired {
        let name = format!("unfired_{}", &kind.hook_name()[3..]);
        let found = hooks.for_event(kind).iter().find(|h| h.name() == name);
        assert_eq!(found.map(Hook::event), Some(kind), "{name}");
        hooks.dispatch(&mut PipelineEvent::app(kind)).await;
    }
    // App events carry no endpoint.
    let names: Vec<&str> = unfired.iter().map(|k| k.hook_name()).collect();
    assert_eq!(notes_on(""), names);
}

// ---------------------------------------------------------------------------------------
// Steering
// ---------------------------------------------------------------------------------------

#[hook("on_retry", endpoint = "/hooks-test/steer-model")]
async fn switch_to_backup(ctx: &mut HookContext) {
    if &*ctx.model == "mock/primary" {
        ctx.set_model_override("mock/backup");
    }
}

#[tokio::test(start_paused = true)]
async fn a_model_override_in_on_retry_takes_effect_on_the_next_attempt() {
    let mock = Arc::new(MockProvider::new().push(MockReply::server_error()));
    let pipeline = with_registered_hooks("/hooks-test/steer-model")
        .model("mock/primary")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let models = Arc::new(Mutex::new(Vec::new()));
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            let models = models.clone();
            async move {
                models.lock().unwrap().push(ctx.model().to_owned());
                ctx.llm().complete("hi").await
            }
        })
        .await
        .unwrap();
    assert_eq!(*models.lock().unwrap(), ["mock/primary", "mock/backup"]);
    assert_eq!(
        mock.last_call().unwrap().0,
        "backup",
        "the provider was asked for it"
    );
    assert_eq!(reply.model, "backup");
}

#[hook("on_retry", endpoint = "/hooks-test/steer-model-noted")]
async fn switch_to_backup_the_seeds_way(ctx: &mut HookContext) {
    ctx.metadata
        .insert("model_override".into(), "mock/backup".into());
}

#[tokio::test(start_paused = true)]
async fn metadata_model_override_is_the_same_as_set_model_override() {
    let mock = Arc::new(MockProvider::new().push(MockReply::server_error()));
    let pipeline = with_registered_hooks("/hooks-test/steer-model-noted")
        .model("mock/primary")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap();
    assert_eq!(mock.last_call().unwrap().0, "backup");
    assert_eq!(reply.model, "backup");
}

#[hook("on_retry", endpoint = "/hooks-test/steer-delay")]
fn shorten_the_wait(ctx: &mut HookContext) {
    note(ctx, format!("computed {:?} ms", ctx.next_delay_ms()));
    ctx.set_next_delay(Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn set_next_delay_replaces_the_backoff() {
    let pipeline = with_registered_hooks("/hooks-test/steer-delay")
        .retry(retry(3))
        .build()
        .unwrap();
    let (calls, body) = failing_first(2);
    let started = Instant::now();
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(500),
        "2 × 250 ms, not 1 s + 2 s"
    );
    assert_eq!(
        notes_on("/hooks-test/steer-delay"),
        ["computed Some(1000) ms", "computed Some(2000) ms"]
    );
}

#[hook("on_retry", endpoint = "/hooks-test/steer-abort")]
async fn give_up_after_two_retries(ctx: &mut HookContext) {
    if ctx.retry_count() >= 2 {
        ctx.abort_retries();
    }
}

#[tokio::test(start_paused = true)]
async fn abort_retries_stops_the_loop() {
    let recorder = Recorder::default();
    let pipeline = with_registered_hooks("/hooks-test/steer-abort")
        .retry(retry(10))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = failing_first(u32::MAX);
    let started = Instant::now();
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "aborted before the third attempt"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "no sleep after the abort"
    );
    let retry_end = recorder
        .all()
        .into_iter()
        .find(|s| s.event == EventKind::RetryEnd)
        .unwrap();
    assert_eq!(retry_end.stop_reason, Some(StopReason::Aborted));
    assert_eq!(retry_end.succeeded, Some(false));
}

#[hook("on_request", endpoint = "/hooks-test/reject")]
fn bounce_mallory(ctx: &mut HookContext) {
    if ctx.user.as_deref() == Some("mallory") {
        ctx.reject(AgentError::new(
            ErrorClass::PermissionDenied,
            "mallory is blocked",
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn reject_in_on_request_refuses_the_run_before_the_body() {
    let recorder = Recorder::default();
    let pipeline = with_registered_hooks("/hooks-test/reject")
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, mut body) = failing_first(0);
    let err = pipeline
        .run(RequestInfo::new().user("mallory"), &mut body)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::PermissionDenied);
    assert_eq!(err.message(), "mallory is blocked");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the body never ran");
    pipeline
        .run(RequestInfo::new().user("alice"), &mut body)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    use EventKind::*;
    assert_eq!(recorder.kinds(), [Request, Error, Request, Response]);
    assert_eq!(recorder.all()[1].error, Some(ErrorClass::PermissionDenied));
}

// ---------------------------------------------------------------------------------------
// Priority and scope
// ---------------------------------------------------------------------------------------

const PRIORITY: &str = "/hooks-test/priority";

#[hook("on_request", endpoint = "/hooks-test/priority", priority = 5)]
async fn high(ctx: &mut HookContext) {
    note(ctx, "high (5)");
}

#[hook("on_request", endpoint = "/hooks-test/priority")]
fn middle(ctx: &mut HookContext) {
    note(ctx, "middle (0)");
}

#[hook("on_request", endpoint = "/hooks-test/priority", priority = -1)]
async fn low(ctx: &mut HookContext) {
    note(ctx, "low (-1)");
}

#[tokio::test(start_paused = true)]
async fn hooks_run_highest_priority_first_whether_macro_or_registered() {
    let noting = |what: &'static str| move |ctx: &mut HookContext| note(ctx, what);
    hooks::register(
        Hook::sync(EventKind::Request, "top", noting("registered (7)"))
            .endpoint(PRIORITY)
            .priority(7),
    );
    hooks::register(
        Hook::sync(EventKind::Request, "bottom", noting("registered (-10)"))
            .endpoint(PRIORITY)
            .priority(-10),
    );
    let pipeline = with_registered_hooks(PRIORITY).build().unwrap();
    let (_, body) = failing_first(0);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(
        notes_on(PRIORITY),
        [
            "registered (7)",
            "high (5)",
            "middle (0)",
            "low (-1)",
            "registered (-10)"
        ]
    );
}

fn tie_b(ctx: &mut HookContext) -> HookFuture<'_> {
    Box::pin(async move {
        note(ctx, "b");
        Ok(())
    })
}

#[tokio::test(start_paused = true)]
async fn equal_priorities_keep_their_registration_order() {
    const TIES: &str = "/hooks-test/ties";
    let noting = |what: &'static str| move |ctx: &mut HookContext| note(ctx, what);
    let hooks = Hooks::new()
        .with(Hook::sync(EventKind::Request, "a", noting("a")))
        .with(Hook::new(EventKind::Request, "b", tie_b).priority(10))
        .with(Hook::sync(EventKind::Request, "c", noting("c")))
        .with(Hook::sync(EventKind::Request, "d", noting("d")).priority(-5))
        .with(Hook::sync(EventKind::Request, "e", noting("e")).priority(10));
    let order: Vec<&str> = hooks
        .for_event(EventKind::Request)
        .iter()
        .map(Hook::name)
        .collect();
    assert_eq!(order, ["b", "e", "a", "c", "d"]);
    let pipeline = Pipeline::builder()
        .endpoint(TIES)
        .event_sink(Arc::new(hooks))
        .build()
        .unwrap();
    let (_, body) = failing_first(0);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(notes_on(TIES), ["b", "e", "a", "c", "d"]);
}

#[hook("on_request", endpoint = "/hooks-test/scope-a")]
fn only_on_scope_a(ctx: &mut HookContext) {
    note(ctx, "scoped to a");
}

#[tokio::test(start_paused = true)]
async fn a_hook_scoped_to_another_endpoint_does_not_run() {
    let everywhere = || {
        Hooks::registered().with(Hook::sync(
            EventKind::Request,
            "everywhere",
            |ctx: &mut HookContext| note(ctx, "unscoped"),
        ))
    };
    for endpoint in ["/hooks-test/scope-b", "/hooks-test/scope-a"] {
        let pipeline = Pipeline::builder()
            .endpoint(endpoint)
            .event_sink(Arc::new(everywhere()))
            .build()
            .unwrap();
        let (_, body) = failing_first(0);
        pipeline.run(RequestInfo::new(), body).await.unwrap();
    }
    assert_eq!(notes_on("/hooks-test/scope-b"), ["unscoped"]);
    assert_eq!(notes_on("/hooks-test/scope-a"), ["scoped to a", "unscoped"]);
}

// ---------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------

const METADATA: &str = "/hooks-test/metadata";

#[hook("on_request", endpoint = "/hooks-test/metadata")]
fn tag_alices_runs(ctx: &mut HookContext) {
    if ctx.user.as_deref() == Some("alice") {
        let run = ctx.run_id;
        ctx.metadata.insert("tagged_run".into(), run.into());
    }
}

#[hook("on_retry", endpoint = "/hooks-test/metadata")]
async fn mark_retried(ctx: &mut HookContext) {
    let tagged = ctx.metadata.contains_key("tagged_run");
    ctx.metadata.insert("retry_saw_tag".into(), tagged.into());
}

#[hook("on_response", endpoint = "/hooks-test/metadata")]
fn report_metadata(ctx: &mut HookContext) {
    let report = json!({ "run": ctx.run_id, "metadata": ctx.metadata });
    note(ctx, report.to_string());
}

#[tokio::test(start_paused = true)]
async fn metadata_lives_for_one_run() {
    let pipeline = with_registered_hooks(METADATA)
        .retry(retry(2))
        .build()
        .unwrap();
    let run_ids = Arc::new(Mutex::new(Vec::new()));
    for (user, failures) in [("alice", 1), ("bob", 0)] {
        let (_, mut body) = failing_first(failures);
        let ids = run_ids.clone();
        pipeline
            .run(RequestInfo::new().user(user), move |ctx: AgentContext| {
                ids.lock().unwrap().push(ctx.run_id());
                body(ctx)
            })
            .await
            .unwrap();
    }
    let ids = run_ids.lock().unwrap().clone();
    let (alice, bob) = (ids[0], ids[2]);
    assert_eq!(ids[1], alice, "alice's run took two attempts");
    let reports: Vec<serde_json::Value> = notes_on(METADATA)
        .iter()
        .map(|n| serde_json::from_str(n).unwrap())
        .collect();
    assert_eq!(
        reports,
        [
            json!({ "run": alice, "metadata": { "tagged_run": alice, "retry_saw_tag": true } }),
            json!({ "run": bob, "metadata": {} }),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Isolation. Only this test makes hooks fail in this binary (on_request and
// on_response), so the global failure counters move by exactly its failures.
// ---------------------------------------------------------------------------------------

const ISOLATION: &str = "/hooks-test/isolation";

#[hook("on_request", endpoint = "/hooks-test/isolation", priority = 3)]
async fn panics_in_its_future(_ctx: &mut HookContext) {
    panic!("a bug in an async hook");
}

#[hook("on_response", endpoint = "/hooks-test/isolation", priority = 3)]
fn returns_an_error(_ctx: &mut HookContext) -> Result<(), String> {
    Err("the audit log is down".to_owned())
}

#[hook("on_response", endpoint = "/hooks-test/isolation")]
async fn runs_after_the_error(ctx: &mut HookContext) {
    let steered = ctx.metadata.get("after_panics").cloned();
    note(
        ctx,
        format!("on_response still runs; on_request left {steered:?}"),
    );
}

/// A hook fn that panics before it even returns its future.
fn panics_before_its_future(_ctx: &mut HookContext) -> HookFuture<'_> {
    panic!("a bug in a hand-written hook fn");
}

#[tokio::test(start_paused = true)]
async fn a_failing_hook_is_isolated_counted_and_the_others_still_run() {
    let requests_before = hooks::failures(EventKind::Request);
    let responses_before = hooks::failures(EventKind::Response);
    let hooks = Hooks::registered()
        .with(
            Hook::new(EventKind::Request, "early_panic", panics_before_its_future)
                .endpoint(ISOLATION)
                .priority(2),
        )
        .with(
            Hook::sync(
                EventKind::Request,
                "after_panics",
                |ctx: &mut HookContext| {
                    ctx.metadata.insert("after_panics".into(), true.into());
                },
            )
            .endpoint(ISOLATION),
        );
    let pipeline = Pipeline::builder()
        .endpoint(ISOLATION)
        .event_sink(Arc::new(hooks))
        .build()
        .unwrap();
    let (calls, body) = failing_first(0);
    let answer = pipeline.run(RequestInfo::new(), body).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        notes_on(ISOLATION),
        ["on_response still runs; on_request left Some(Bool(true))"]
    );
    assert_eq!(hooks::failures(EventKind::Request), requests_before + 2);
    assert_eq!(hooks::failures(EventKind::Response), responses_before + 1);
}

// ---------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------

#[test]
fn async_and_sync_hook_fns_are_registered_under_their_names() {
    let hooks = Hooks::registered();
    let expected = [
        ("high", EventKind::Request),              // async
        ("middle", EventKind::Request),            // sync
        ("switch_to_backup", EventKind::Retry),    // async
        ("shorten_the_wait", EventKind::Retry),    // sync
        ("returns_an_error", EventKind::Response), // sync, -> Result
        ("unfired_resume", EventKind::Resume),     // async, -> Result
    ];
    for (name, kind) in expected {
        let found = hooks
            .for_event(kind)
            .iter()
            .filter(|h| h.name() == name)
            .count();
        assert_eq!(found, 1, "{name} registered once for {kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hook_from_another_crate_is_registered_and_runs() {
    // Using an item of the helper crate keeps it, and its registrations, in this binary.
    fastagentic_test_helper::link();
    let hooks = Hooks::registered();
    let helper = hooks
        .for_event(EventKind::Request)
        .iter()
        .find(|h| h.name() == "tag_helper_echo");
    let helper = format!("{helper:?}");
    assert!(helper.contains("Some(\"/helper/echo\")"), "{helper}");

    let seen = Arc::new(Mutex::new(None));
    let report = seen.clone();
    let hooks = hooks.with(Hook::sync(
        EventKind::Response,
        "read_helper_tag",
        move |ctx: &mut HookContext| {
            *report.lock().unwrap() = ctx.metadata.get("helper_hook").cloned();
        },
    ));
    let pipeline = Pipeline::builder()
        .endpoint("/helper/echo")
        .event_sink(Arc::new(hooks))
        .build()
        .unwrap();
    let (_, body) = failing_first(0);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(json!("on_request")));
}

/// A `Write` that keeps what `tracing` formats, for the test to read.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_hook_scoped_to_a_path_the_app_does_not_serve_is_reported() {
    let logs = LogBuffer::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let served = fastagentic::server::Route::new(
        "/hooks-test/steer-model",
        |_: AgentContext, (): ()| async { Ok::<_, AgentError>(()) },
    );
    let built = tracing::subscriber::with_default(subscriber, || {
        App::bare("Scoped").route(served).router().map(|_| ())
    });
    assert!(built.is_ok(), "a warning, not a refusal");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warned = |path: &str| {
        text.lines()
            .any(|l| l.contains("WARN") && l.contains(&format!("endpoint=\"{path}\"")))
    };
    assert!(warned("/hooks-test/steer-delay"), "{text}");
    assert!(
        !warned("/hooks-test/steer-model"),
        "served, so not reported: {text}"
    );
}
