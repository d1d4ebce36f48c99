//! `ctx.tool(..)` as an endpoint body uses it: the tool timeout, retries by the endpoint's
//! policy for retryable classes only, panics turned into errors, and `on_tool_call` /
//! `on_tool_result` around every attempt, with a veto. Time is virtual.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fastagentic::error::ErrorDetail;
use fastagentic::hooks::{Hook, HookContext, Hooks};
use fastagentic::prelude::*;
use fastagentic::reliability::{EventKind, Stage};
use fastagentic::tools::Tool;
use fastagentic_testing::{fail, retry};
use schemars::JsonSchema;
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
struct City {
    name: String,
}

/// A weather tool that fails with `script[n]` on call `n`, then answers; and its calls.
fn flaky_weather(script: Vec<ErrorClass>) -> (Arc<AtomicU32>, Tool<City, Value>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let script = Arc::new(script);
    let tool = Tool::new("weather", "The weather in a city", move |city: City| {
        let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
        let script = script.clone();
        async move {
            match script.get(n) {
                Some(class) => Err(fail(*class)),
                None => Ok(json!({"city": city.name, "celsius": 21})),
            }
        }
    })
    .unwrap();
    (calls, tool)
}

fn paris() -> City {
    City {
        name: "Paris".into(),
    }
}

async fn call(pipeline: &Pipeline, tool: &Tool<City, Value>) -> Result<Value, AgentError> {
    pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            let tool = tool.clone();
            async move { ctx.tool(&tool, paris()).await }
        })
        .await
}

#[tokio::test(start_paused = true)]
async fn transient_tool_errors_are_retried_on_the_endpoints_backoff() {
    let (calls, tool) = flaky_weather(vec![ErrorClass::ServerError, ErrorClass::Timeout]);
    let pipeline = Pipeline::builder().retry(retry(3)).build().unwrap();
    let started = Instant::now();
    let answer = call(&pipeline, &tool).await.unwrap();
    assert_eq!(answer, json!({"city": "Paris", "celsius": 21}));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Backoff without jitter: 1 s, then 2 s.
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_class_the_policy_does_not_retry_fails_at_once() {
    let (calls, tool) = flaky_weather(vec![ErrorClass::InvalidInput]);
    let pipeline = Pipeline::builder().retry(retry(3)).build().unwrap();
    let err = call(&pipeline, &tool).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_success_is_never_run_again() {
    let (calls, tool) = flaky_weather(Vec::new());
    let pipeline = Pipeline::builder().retry(retry(3)).build().unwrap();
    call(&pipeline, &tool).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_bounded_by_the_tool_call_limit() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let stuck = Tool::new("stuck", "Never answers", move |_: City| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, AgentError>(Value::Null)
        }
    })
    .unwrap();
    let timeout = TimeoutPolicy::builder()
        .tool_call(Duration::from_millis(250))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .timeout(timeout)
        .retry(retry(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = call(&pipeline, &stuck).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(
        matches!(
            err.detail(),
            Some(ErrorDetail::Timeout {
                stage: Stage::ToolCall,
                ..
            })
        ),
        "{err:?}"
    );
    // Two attempts of 250 ms with the 1 s backoff between them.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_tool_is_an_error_not_a_crash() {
    let boom = Tool::new("boom", "Panics", |_: City| async {
        if true {
            panic!("the disk is gone");
        }
        Ok::<_, AgentError>(Value::Null)
    })
    .unwrap();
    let pipeline = Pipeline::builder().retry(retry(3)).build().unwrap();
    let err = call(&pipeline, &boom).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Other);
    assert!(
        err.to_string()
            .contains("tool `boom` panicked: the disk is gone"),
        "{err}"
    );
}

/// What the tool hooks saw: (event, attempt, name, input, output, error class, elapsed).
type Seen = Vec<(
    EventKind,
    u32,
    String,
    Value,
    Option<Value>,
    Option<ErrorClass>,
    Option<Duration>,
)>;

fn recording(seen: &Arc<Mutex<Seen>>) -> Hooks {
    let mut hooks = Hooks::new();
    for kind in [EventKind::ToolCall, EventKind::ToolResult] {
        let seen = seen.clone();
        hooks = hooks.with(Hook::sync(kind, "record", move |ctx: &mut HookContext| {
            seen.lock().unwrap_or_else(PoisonError::into_inner).push((
                ctx.kind,
                ctx.attempt,
                ctx.tool_name().unwrap_or_default().to_owned(),
                ctx.tool_input().cloned().unwrap_or_default(),
                ctx.tool_output().cloned(),
                ctx.error.as_ref().map(AgentError::class),
                ctx.elapsed(),
            ));
        }));
    }
    hooks
}

#[tokio::test(start_paused = true)]
async fn the_tool_events_fire_around_every_attempt() {
    let seen = Arc::new(Mutex::new(Seen::new()));
    let (_, tool) = flaky_weather(vec![ErrorClass::ServerError]);
    let pipeline = Pipeline::builder()
        .retry(retry(2))
        .event_sink(Arc::new(recording(&seen)))
        .build()
        .unwrap();
    call(&pipeline, &tool).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let input = json!({"name": "Paris"});
    let output = json!({"city": "Paris", "celsius": 21});
    let zero = Some(Duration::ZERO);
    let row = |kind, attempt, output, error, elapsed| {
        (
            kind,
            attempt,
            "weather".to_owned(),
            input.clone(),
            output,
            error,
            elapsed,
        )
    };
    assert_eq!(
        seen,
        vec![
            row(EventKind::ToolCall, 1, None, None, None),
            row(
                EventKind::ToolResult,
                1,
                None,
                Some(ErrorClass::ServerError),
                zero
            ),
            row(EventKind::ToolCall, 2, None, None, None),
            row(EventKind::ToolResult, 2, Some(output), None, zero),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hook_can_veto_a_call() {
    let (calls, tool) = flaky_weather(Vec::new());
    let veto = Hooks::new().with(Hook::sync(
        EventKind::ToolCall,
        "no_weather_in_paris",
        |ctx: &mut HookContext| {
            if ctx.tool_input().and_then(|i| i["name"].as_str()) == Some("Paris") {
                ctx.reject(AgentError::new(
                    ErrorClass::PermissionDenied,
                    "weather in Paris is off limits",
                ));
            }
        },
    ));
    let pipeline = Pipeline::builder()
        .retry(retry(3))
        .event_sink(Arc::new(veto))
        .build()
        .unwrap();
    let err = call(&pipeline, &tool).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::PermissionDenied);
    assert_eq!(err.message(), "weather in Paris is off limits");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a vetoed tool never runs");
}

#[tokio::test(start_paused = true)]
async fn every_attempt_is_counted_by_outcome() {
    let metrics = Arc::new(fastagentic::metrics::Metrics::new());
    let (_, tool) = flaky_weather(vec![ErrorClass::ServerError]);
    let pipeline = Pipeline::builder()
        .endpoint("/tools/counted")
        .retry(retry(2))
        .event_sink(metrics.clone())
        .build()
        .unwrap();
    call(&pipeline, &tool).await.unwrap();
    let text = metrics.render();
    for outcome in ["server_error", "success"] {
        let series = format!(
            "fastagentic_tool_calls_total{{endpoint=\"/tools/counted\",tool=\"weather\",outcome=\"{outcome}\"}} 1"
        );
        assert!(text.contains(&series), "{series} in\n{text}");
    }
}
