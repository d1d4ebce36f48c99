//! The composed pipeline, end to end on virtual time, with deterministic jitter.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fastagentic::error::ErrorDetail;
use fastagentic::prelude::*;
use fastagentic::reliability::{EventKind, PipelineEvent, RateLimitPolicy, Stage, StopReason};
use fastagentic_testing::{fail, scripted};
use http::HeaderMap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One recorded event: kind, model, attempt, next delay, fallback target, stop reason.
type Seen = (
    EventKind,
    String,
    u32,
    Option<Duration>,
    Option<String>,
    Option<StopReason>,
);

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    /// Records every event but the per-request bookends (`Request`, `Response`,
    /// `Error`), which `request_and_outcome_events_bracket_every_run` checks.
    fn sink(&self) -> Arc<dyn fastagentic::reliability::EventSink> {
        self.sink_filtered(|kind| {
            !matches!(
                kind,
                EventKind::Request | EventKind::Response | EventKind::Error
            )
        })
    }

    fn sink_filtered(
        &self,
        keep: impl Fn(EventKind) -> bool + Send + Sync + 'static,
    ) -> Arc<dyn fastagentic::reliability::EventSink> {
        let log = self.0.clone();
        Arc::new(move |e: &mut PipelineEvent| {
            if !keep(e.kind) {
                return;
            }
            log.lock().unwrap().push((
                e.kind,
                e.model.to_string(),
                e.attempt,
                e.next_delay(),
                e.fallback_to().map(|to| to.to_string()),
                e.stop_reason(),
            ));
        })
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.0.lock().unwrap().iter().map(|e| e.0).collect()
    }

    fn delays(&self) -> Vec<Duration> {
        self.0.lock().unwrap().iter().filter_map(|e| e.3).collect()
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

fn jittered_retry(max_attempts: u32) -> fastagentic::reliability::RetryPolicyBuilder {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .random_source(|| 0.5)
}

/// A timeout policy whose only change from the defaults is a total of `seconds`.
fn total_timeout(seconds: u64) -> TimeoutPolicy {
    TimeoutPolicy::builder()
        .total(Duration::from_secs(seconds))
        .build()
        .unwrap()
}

/// `attempts` attempts, `seconds` apart, no jitter.
fn fixed_delay(attempts: u32, seconds: u64) -> RetryPolicy {
    jittered_retry(attempts)
        .backoff(Backoff::Fixed)
        .jitter(false)
        .initial_delay(Duration::from_secs(seconds))
        .max_delay(Duration::from_secs(seconds))
        .build()
        .unwrap()
}

/// `rpm` requests per minute; a request over the limit waits for its slot.
fn delaying_rpm(rpm: u32) -> RateLimitPolicy {
    RateLimitPolicy::builder()
        .requests_per_minute(rpm)
        .on_limit(OnLimit::Delay)
        .build()
        .unwrap()
}

fn classes(list: &[ErrorClass]) -> ClassSet {
    ClassSet::of(list)
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_sleeps_the_exact_sequence() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .model("m")
        .retry(jittered_retry(5).build().unwrap())
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError); 4]);
    let start = Instant::now();
    let answer = pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(answer, "m");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let expected = [1, 2, 4, 8].map(Duration::from_secs);
    assert_eq!(recorder.delays(), expected);
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    assert_eq!(
        recorder.kinds().last(),
        Some(&EventKind::RetryEnd),
        "a loop that retried reports its end"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_comes_from_the_injected_source() {
    let draws = Arc::new(Mutex::new(vec![0.0, 0.999, 0.5].into_iter()));
    let source = move || draws.lock().unwrap().next().unwrap_or(0.5);
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .retry(
            RetryPolicy::builder()
                .max_attempts(4)
                .backoff(Backoff::Fixed)
                .random_source(source)
                .build()
                .unwrap(),
        )
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (_, body) = scripted(vec![fail(ErrorClass::Timeout); 3]);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    let millis: Vec<u128> = recorder.delays().iter().map(Duration::as_millis).collect();
    assert_eq!(millis, [750, 1249, 1000]);
}

fn http_error(status: u16, headers: &[(&'static str, &str)]) -> AgentError {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse().unwrap());
    }
    AgentError::from_http(status, &map, b"")
}

#[tokio::test(start_paused = true)]
async fn an_http_date_retry_after_is_honoured() {
    let date = httpdate_in(Duration::from_secs(30));
    let err = http_error(429, &[("retry-after", &date)]);
    let slept = err.retry_after().unwrap();
    assert!(
        slept >= Duration::from_secs(29) && slept <= Duration::from_secs(31),
        "{slept:?}"
    );
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(2).build().unwrap())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![err]);
    let start = Instant::now();
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The server's delay, not the 1 s backoff (tokio's timer rounds up to the millisecond).
    let elapsed = start.elapsed();
    assert!(
        elapsed >= slept && elapsed < slept + Duration::from_millis(1),
        "{elapsed:?} vs {slept:?}"
    );
}

fn httpdate_in(delay: Duration) -> String {
    // HTTP dates have whole seconds; round up so the delay stays close to `delay`.
    httpdate::fmt_http_date(SystemTime::now() + delay + Duration::from_millis(999))
}

#[tokio::test(start_paused = true)]
async fn x_should_retry_false_stops_a_503() {
    let err = http_error(503, &[("x-should-retry", " False ")]);
    assert_eq!(err.class(), ErrorClass::Overloaded);
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(3).build().unwrap())
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![err]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Overloaded);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let all = recorder.all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].5, Some(StopReason::ServerSaidNo));
}

fn chain(primary: &str, fallback: &str, on: &[ErrorClass]) -> FallbackChain {
    FallbackChain::builder(primary)
        .then(fallback, classes(on))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_above_the_cap_goes_to_fallback_without_sleeping() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(3).build().unwrap())
        .fallback(chain("gpt-4o", "gpt-4o-mini", &[ErrorClass::RateLimit]))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let too_long = http_error(429, &[("retry-after", "61")]);
    let (calls, body) = scripted(vec![too_long]);
    let start = Instant::now();
    let answer = pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(answer, "gpt-4o-mini");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let all = recorder.all();
    assert_eq!(all[0].5, Some(StopReason::RetryAfterTooLong));
    assert_eq!(all[1].0, EventKind::Fallback);
    assert_eq!(all[1].4.as_deref(), Some("gpt-4o-mini"));
}

#[tokio::test(start_paused = true)]
async fn three_consecutive_overloads_go_to_fallback() {
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(10).build().unwrap())
        .fallback(chain(
            "claude-opus",
            "claude-haiku",
            &[ErrorClass::Overloaded],
        ))
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::Overloaded); 3]);
    let answer = pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(answer, "claude-haiku");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "3 on the primary, 1 on the fallback"
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_runs_only_for_its_classes_and_skips_to_a_matching_step() {
    let pipeline = Pipeline::builder()
        .fallback(
            FallbackChain::builder("a")
                .then("b", classes(&[ErrorClass::Timeout]))
                .then("c", classes(&[ErrorClass::ServerError]))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let (_, body) = scripted(vec![fail(ErrorClass::ServerError)]);
    assert_eq!(pipeline.run(RequestInfo::new(), body).await.unwrap(), "c");

    let (calls, body) = scripted(vec![fail(ErrorClass::InvalidInput)]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (_, body) = scripted(vec![
        fail(ErrorClass::Timeout),
        fail(ErrorClass::ServerError),
        fail(ErrorClass::ServerError),
    ]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    let tried: Vec<&str> = err.attempted().iter().map(|m| &**m).collect();
    assert_eq!(
        tried,
        ["a", "b", "c"],
        "the last error lists every model tried"
    );
}

#[tokio::test(start_paused = true)]
async fn an_opening_breaker_cuts_the_retries_short_and_falls_back() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .retry(
            jittered_retry(10)
                .backoff(Backoff::Fixed)
                .jitter(false)
                .build()
                .unwrap(),
        )
        .circuit_breaker(
            CircuitBreakerPolicy::builder()
                .failure_threshold(3)
                .build()
                .unwrap(),
        )
        .fallback(chain("primary", "backup", &[ErrorClass::ServerError]))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError); 3]);
    let start = Instant::now();
    let answer = pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(answer, "backup");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "3 on the primary, 1 on the backup"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "two backoffs; none after the failure that opened the breaker"
    );
    let kinds = recorder.kinds();
    assert!(kinds.contains(&EventKind::CircuitOpen), "{kinds:?}");
    assert!(kinds.contains(&EventKind::Fallback), "{kinds:?}");
    // The next request goes straight to the backup, the primary's breaker being open.
    let (calls, body) = scripted(vec![]);
    assert_eq!(
        pipeline.run(RequestInfo::new(), body).await.unwrap(),
        "backup"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let snapshot = pipeline.breaker_registry().snapshot();
    assert_eq!(snapshot.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_failure_that_opens_the_breaker_is_answered_with_itself() {
    let breaker = || {
        CircuitBreakerPolicy::builder()
            .failure_threshold(1)
            .build()
            .unwrap()
    };
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(3).jitter(false).build().unwrap())
        .circuit_breaker(breaker())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError)]);
    let own = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(
        own.class(),
        ErrorClass::ServerError,
        "its own error, not circuit_open"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no retry into an open breaker"
    );
    // The next request is the one the open circuit refuses.
    let (calls, body) = scripted(vec![]);
    let next = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(next.class(), ErrorClass::CircuitOpen);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // A chain that falls back only on an open circuit still falls back at once.
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(3).jitter(false).build().unwrap())
        .circuit_breaker(breaker())
        .fallback(chain("primary", "backup", &[ErrorClass::CircuitOpen]))
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError)]);
    assert_eq!(
        pipeline.run(RequestInfo::new(), body).await.unwrap(),
        "backup"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_bad_request_never_opens_the_breaker() {
    let pipeline = Pipeline::builder()
        .circuit_breaker(CircuitBreakerPolicy::default())
        .build()
        .unwrap();
    for _ in 0..20 {
        let (_, body) = scripted(vec![http_error(400, &[])]);
        let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
    }
    let (_, body) = scripted(vec![]);
    assert!(pipeline.run(RequestInfo::new(), body).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_total_timeout_cuts_a_retry_sleep_short() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .timeout(total_timeout(5))
        .retry(fixed_delay(3, 10))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::Timeout); 3]);
    let start = Instant::now();
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a 10 s sleep does not fit in 5 s"
    );
    assert_eq!(recorder.all()[0].5, Some(StopReason::NoTimeLeft));
}

#[tokio::test(start_paused = true)]
async fn the_total_timeout_bounds_a_hung_body() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .timeout(total_timeout(5))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let start = Instant::now();
    let err = pipeline
        .run(RequestInfo::new(), |_ctx| {
            std::future::pending::<Result<(), AgentError>>()
        })
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(
        err.detail(),
        Some(&ErrorDetail::Timeout {
            stage: Stage::Total,
            elapsed: Duration::from_secs(5),
            limit: Duration::from_secs(5),
        })
    );
    assert_eq!(recorder.kinds(), [EventKind::Timeout]);
}

#[tokio::test(start_paused = true)]
async fn on_timeout_warn_reports_and_lets_the_run_finish() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .timeout(
            TimeoutPolicy::builder()
                .total(Duration::from_secs(5))
                .on_timeout(OnTimeout::Warn)
                .build()
                .unwrap(),
        )
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let answer = pipeline
        .run(RequestInfo::new(), |_ctx| async {
            tokio::time::sleep(Duration::from_secs(8)).await;
            Ok::<_, AgentError>("late but whole")
        })
        .await
        .unwrap();
    assert_eq!(answer, "late but whole");
    assert_eq!(recorder.kinds(), [EventKind::Timeout]);
}

#[test]
fn checkpoint_needs_a_durable_endpoint() {
    let err = Pipeline::builder()
        .timeout(
            TimeoutPolicy::builder()
                .on_timeout(OnTimeout::Checkpoint)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("needs a durable endpoint"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_a_sleep_at_once() {
    let pipeline = Pipeline::builder()
        .retry(fixed_delay(3, 20))
        .build()
        .unwrap();
    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceller.cancel();
    });
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError); 3]);
    let start = Instant::now();
    let err = pipeline
        .run(RequestInfo::new().cancel_on(token), body)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Cancelled);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Debug, thiserror::Error)]
#[error("the search tool failed")]
struct ToolError(#[source] Transport);

#[derive(Debug, thiserror::Error)]
#[error("transport")]
struct Transport(#[source] std::io::Error);

#[tokio::test(start_paused = true)]
async fn a_wrapped_io_timeout_is_retried_as_a_timeout() {
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(2).build().unwrap())
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let answer = pipeline
        .run(RequestInfo::new(), |_ctx| {
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read");
                    return Err(ToolError(Transport(io)));
                }
                Ok("second time lucky")
            }
        })
        .await
        .unwrap();
    assert_eq!(answer, "second time lucky");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn hooks_steer_model_delay_and_abort() {
    let steer = |e: &mut PipelineEvent| {
        if e.kind == EventKind::Retry {
            match e.attempt {
                1 => e.steer.set_model_override("gpt-4o-mini"),
                2 => e.steer.set_delay(Duration::from_millis(1)),
                _ => e.steer.abort(),
            }
        }
    };
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .model("gpt-4o")
        .retry(jittered_retry(10).build().unwrap())
        .event_sink(Arc::new(steer))
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let models = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            models.lock().unwrap().push(ctx.model().to_owned());
            std::future::ready(Err::<(), _>(fail(ErrorClass::ServerError)))
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError);
    assert_eq!(
        *models.lock().unwrap(),
        ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    );
    // 1 s backoff after attempt 1, the hook's 1 ms after attempt 2, then abort.
    assert_eq!(start.elapsed(), Duration::from_millis(1001));
    let last = recorder.all().pop().unwrap();
    assert_eq!(
        (last.0, last.5),
        (EventKind::RetryEnd, Some(StopReason::Aborted))
    );
}

#[tokio::test(start_paused = true)]
async fn context_overflow_lowers_max_tokens_and_retries_at_once() {
    let overflow = fail(ErrorClass::ContextOverflow).with_detail(ErrorDetail::ContextOverflow {
        input_tokens: Some(190_000),
        context_limit: Some(200_000),
        requested_output: Some(64_000),
    });
    let pipeline = Pipeline::builder().build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let result = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            seen.lock().unwrap().push(ctx.max_tokens_override());
            let result = if ctx.max_tokens_override().is_none() {
                Err(overflow.clone())
            } else {
                Ok(())
            };
            std::future::ready(result)
        })
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(*seen.lock().unwrap(), [None, Some(10_000)]);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // Below the floor (3000 by default) there is nothing to recover.
    let hopeless = fail(ErrorClass::ContextOverflow).with_detail(ErrorDetail::ContextOverflow {
        input_tokens: Some(199_000),
        context_limit: Some(200_000),
        requested_output: None,
    });
    let (calls, body) = scripted(vec![hopeless]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::ContextOverflow);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_refuse_with_the_limit_and_reconcile_tokens() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .rate_limit(
            RateLimitPolicy::builder()
                .requests_per_minute(3)
                .tokens_per_minute(10_000)
                .build()
                .unwrap(),
        )
        .event_sink(recorder.sink())
        .build()
        .unwrap();
    let used = |tokens: u64| {
        move |ctx: AgentContext| {
            ctx.record_tokens(tokens);
            std::future::ready(Ok::<_, AgentError>(()))
        }
    };
    // Estimates of 4000 each would exhaust 10 000 tokens on the third request; the
    // real usage of 100 is refunded after each run, so all three fit.
    for _ in 0..3 {
        pipeline
            .run(RequestInfo::new().estimated_tokens(4000), used(100))
            .await
            .unwrap();
    }
    let err = pipeline
        .run(RequestInfo::new().estimated_tokens(4000), used(100))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimit);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(recorder.kinds(), [EventKind::RateLimit]);
    let snapshot = pipeline
        .rate_limiter()
        .unwrap()
        .snapshot(Default::default())
        .unwrap();
    assert_eq!((snapshot.limit, snapshot.remaining), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_stops_a_retry_storm() {
    let pipeline = Pipeline::builder()
        .retry(
            jittered_retry(3)
                .budget(Some(fastagentic::reliability::RetryBudgetPolicy {
                    ttl: Duration::from_secs(10),
                    min_retries_per_sec: 0,
                    retry_ratio: 0.1,
                }))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    for _ in 0..20 {
        let calls = calls.clone();
        let _ = pipeline
            .run(RequestInfo::new(), move |_ctx| {
                calls.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Err::<(), _>(fail(ErrorClass::ServerError)))
            })
            .await;
    }
    // 20 requests at a 10 % budget buy 2 retries, not 40.
    assert_eq!(calls.load(Ordering::SeqCst), 22);
}

#[tokio::test(start_paused = true)]
async fn cancellation_also_stops_a_wait_for_a_rate_limit_slot() {
    let pipeline = Pipeline::builder()
        .rate_limit(delaying_rpm(1))
        .build()
        .unwrap();
    let (_, body) = scripted(vec![]);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        canceller.cancel();
    });
    let (calls, body) = scripted(vec![]);
    let start = Instant::now();
    let err = pipeline
        .run(RequestInfo::new().cancel_on(token), body)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Cancelled);
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The cancelled run gave its reserved slot back: the next one waits 60 s, not 120 s.
    let (_, body) = scripted(vec![]);
    let start = Instant::now();
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(58));
}

#[tokio::test(start_paused = true)]
async fn two_delaying_limiters_wait_once_for_the_same_minute() {
    let global = Arc::new(fastagentic::reliability::RateLimiter::new(
        &delaying_rpm(1),
        fastagentic::reliability::LimitScope::Global,
    ));
    let pipeline = Pipeline::builder()
        .global_rate_limiter(global)
        .rate_limit(delaying_rpm(1))
        .timeout(total_timeout(90))
        .build()
        .unwrap();
    let (_, body) = scripted(vec![]);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    let (_, body) = scripted(vec![]);
    let start = Instant::now();
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_did_not_open_the_breaker_keeps_its_class() {
    let pipeline = Arc::new(
        Pipeline::builder()
            .circuit_breaker(
                CircuitBreakerPolicy::builder()
                    .failure_threshold(1)
                    .build()
                    .unwrap(),
            )
            .fallback(chain("primary", "backup", &[ErrorClass::Timeout]))
            .build()
            .unwrap(),
    );
    // While this request's call is in flight, another request's failure opens the breaker.
    let other = pipeline.clone();
    let err = pipeline
        .run(RequestInfo::new(), move |ctx: AgentContext| {
            let other = other.clone();
            async move {
                if ctx.model() == "backup" {
                    return Ok("backup".to_owned());
                }
                let (_, body) = scripted(vec![fail(ErrorClass::ServerError); 2]);
                let _ = other.run(RequestInfo::new(), body).await;
                Err(fail(ErrorClass::InvalidInput))
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_delivered_output_is_neither_retried_nor_restarted_elsewhere() {
    let pipeline = Pipeline::builder()
        .retry(jittered_retry(3).build().unwrap())
        .fallback(chain("a", "b", &[ErrorClass::ConnectionError]))
        .build()
        .unwrap();
    let cut = fail(ErrorClass::ConnectionError)
        .with_partial(fastagentic::error::PartialOutput::new("Hello, wor"));
    let (calls, body) = scripted(vec![cut]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.partial().map(|p| p.text.as_str()), Some("Hello, wor"));
}

#[tokio::test(start_paused = true)]
async fn a_lowered_max_tokens_does_not_follow_the_run_to_another_model() {
    let overflow = fail(ErrorClass::ContextOverflow).with_detail(ErrorDetail::ContextOverflow {
        input_tokens: Some(120_000),
        context_limit: Some(128_000),
        requested_output: None,
    });
    let pipeline = Pipeline::builder()
        .fallback(chain("small", "large", &[ErrorClass::ServerError]))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let result = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            seen.lock()
                .unwrap()
                .push((ctx.model().to_owned(), ctx.max_tokens_override()));
            let result = match (ctx.model(), ctx.max_tokens_override()) {
                ("small", None) => Err(overflow.clone()),
                ("small", Some(_)) => Err(fail(ErrorClass::ServerError)),
                _ => Ok(()),
            };
            std::future::ready(result)
        })
        .await;
    assert!(result.is_ok());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("small".to_owned(), None),
            ("small".to_owned(), Some(8_000)),
            ("large".to_owned(), None)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn on_timeout_warn_lets_stages_run_after_the_deadline() {
    let pipeline = Pipeline::builder()
        .timeout(
            TimeoutPolicy::builder()
                .total(Duration::from_secs(5))
                .on_timeout(OnTimeout::Warn)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let answer = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            ctx.within(Stage::LlmCall, async { Ok("made it") }).await
        })
        .await
        .unwrap();
    assert_eq!(answer, "made it");
}

#[tokio::test(start_paused = true)]
async fn huge_durations_mean_no_limit_not_a_panic() {
    let steer = |e: &mut PipelineEvent| {
        if e.kind == EventKind::Retry {
            e.steer.set_delay(Duration::MAX);
        }
    };
    let pipeline = Pipeline::builder()
        .timeout(
            TimeoutPolicy::builder()
                .total(Duration::MAX)
                .build()
                .unwrap(),
        )
        .retry(jittered_retry(3).max_delay(Duration::MAX).build().unwrap())
        .event_sink(Arc::new(steer))
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![fail(ErrorClass::ServerError)]);
    let err = pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    // A delay of Duration::MAX outlasts even a 30-year deadline: the run ends at once.
    assert_eq!(err.class(), ErrorClass::ServerError);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_total_timeout_names_the_model_and_the_models_tried() {
    let pipeline = Pipeline::builder()
        .timeout(total_timeout(5))
        .fallback(chain("a", "b", &[ErrorClass::ServerError]))
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            if ctx.model() == "a" {
                return Err(fail(ErrorClass::ServerError));
            }
            std::future::pending::<Result<(), AgentError>>().await
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert_eq!(err.model(), Some("b"));
    let tried: Vec<&str> = err.attempted().iter().map(|m| &**m).collect();
    assert_eq!(tried, ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn request_and_outcome_events_bracket_every_run() {
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .model("m")
        .retry(jittered_retry(2).build().unwrap())
        .event_sink(recorder.sink_filtered(|_| true))
        .build()
        .unwrap();
    let (_, body) = scripted(vec![fail(ErrorClass::Timeout)]);
    pipeline.run(RequestInfo::new(), body).await.unwrap();
    assert_eq!(
        recorder.kinds(),
        [
            EventKind::Request,
            EventKind::Retry,
            EventKind::RetryEnd,
            EventKind::Response
        ]
    );
    let recorder = Recorder::default();
    let pipeline = Pipeline::builder()
        .event_sink(recorder.sink_filtered(|_| true))
        .build()
        .unwrap();
    let (_, body) = scripted(vec![fail(ErrorClass::InvalidInput)]);
    pipeline.run(RequestInfo::new(), body).await.unwrap_err();
    assert_eq!(recorder.kinds(), [EventKind::Request, EventKind::Error]);
}

#[tokio::test(start_paused = true)]
async fn a_request_listener_can_refuse_the_run_before_any_limit_or_call() {
    let bouncer = |e: &mut PipelineEvent| {
        if e.kind == EventKind::Request && e.user.as_deref() == Some("mallory") {
            e.steer.reject(AgentError::new(
                ErrorClass::PermissionDenied,
                "blocked user",
            ));
        }
    };
    let pipeline = Pipeline::builder()
        .rate_limit(
            RateLimitPolicy::builder()
                .requests_per_minute(1)
                .build()
                .unwrap(),
        )
        .event_sink(Arc::new(bouncer))
        .build()
        .unwrap();
    let (calls, body) = scripted(vec![]);
    let err = pipeline
        .run(RequestInfo::new().user("mallory"), body)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::PermissionDenied);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // The refused request used no rate-limit slot.
    let (_, body) = scripted(vec![]);
    pipeline
        .run(RequestInfo::new().user("alice"), body)
        .await
        .unwrap();
}
