//! `ctx.llm()` inside the pipeline, against the mock provider on virtual time: the model
//! the pipeline chose is the one called, each call is bounded, one loop retries.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fastagentic::error::ErrorDetail;
use fastagentic::llm::{MockProvider, MockReply, Prompt, StreamEvent};
use fastagentic::prelude::*;
use fastagentic::reliability::Stage;
use fastagentic_testing::{providers, retry};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_rate_limited_call_is_retried_after_the_providers_delay() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::rate_limited(Duration::from_secs(2)))
            .push(MockReply::text("fine now")),
    );
    let pipeline = Pipeline::builder()
        .model("mock/primary")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete(Prompt::user("hi")).await
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "fine now");
    assert_eq!(mock.calls(), 2);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_fallback_model_is_the_one_called() {
    let mock = Arc::new(MockProvider::new().push_n(MockReply::overloaded(), 2));
    let chain = FallbackChain::builder("mock/primary")
        .then("mock/backup", ClassSet::of(&[ErrorClass::Overloaded]))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .fallback(chain)
        .retry(retry(2))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("which model?").await
        })
        .await
        .unwrap();
    assert_eq!(reply.model, "backup");
    assert_eq!(mock.last_call().unwrap().0, "backup");
    assert_eq!(mock.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn context_overflow_lowers_max_tokens_and_retries_at_once() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::context_overflow(5_000, 4_000, 8_000))
            .push(MockReply::text("fits")),
    );
    let pipeline = Pipeline::builder()
        .model("mock/small-window")
        .retry(retry(1))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let started = Instant::now();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm()
                .complete(Prompt::user("long document").max_tokens(4_000))
                .await
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "fits");
    let (_, prompt) = mock.last_call().unwrap();
    assert_eq!(prompt.max_tokens, Some(3_000), "8000 window - 5000 input");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no backoff for the recovery"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_byte_is_an_llm_call_timeout() {
    let mock = Arc::new(
        MockProvider::new().push(MockReply::text("late").latency(Duration::from_secs(10))),
    );
    let timeouts = TimeoutPolicy::builder()
        .llm_call(Duration::from_secs(1))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .model("mock/slow")
        .timeout(timeouts)
        .providers(providers(&mock))
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
    assert!(matches!(
        err.detail(),
        Some(ErrorDetail::Timeout {
            stage: Stage::LlmCall,
            ..
        })
    ));
    assert_eq!(err.provider(), Some("mock"));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_is_a_stream_idle_timeout() {
    let mock = Arc::new(
        MockProvider::new().push(MockReply::text("a b c").chunk_delay(Duration::from_secs(30))),
    );
    let timeouts = TimeoutPolicy::builder()
        .stream_idle(Duration::from_secs(5))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .model("mock/stalls")
        .timeout(timeouts)
        .providers(providers(&mock))
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().stream("hi").await?.collect().await
        })
        .await
        .unwrap_err();
    assert!(matches!(
        err.detail(),
        Some(ErrorDetail::Timeout {
            stage: Stage::StreamIdle,
            ..
        })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_failed_after_output_is_not_restarted() {
    let mock = Arc::new(MockProvider::new().push(MockReply::text("one two three").cut_after(2)));
    let attempts = Arc::new(AtomicU32::new(0));
    let pipeline = Pipeline::builder()
        .model("mock/cuts")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let seen = attempts.clone();
    let err = pipeline
        .run(RequestInfo::new(), move |ctx: AgentContext| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                let mut stream = ctx.llm().stream("count").await?;
                let mut forwarded = String::new();
                while let Some(event) = stream.next().await {
                    // A real endpoint would forward each delta to its client here.
                    if let StreamEvent::Text(text) = event? {
                        forwarded.push_str(&text);
                    }
                }
                Ok::<_, AgentError>(forwarded)
            }
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::StreamInterrupted);
    assert_eq!(err.partial().unwrap().text, "one two ");
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        1,
        "delivered output is final"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unconfigured_provider_names_the_variable_to_set() {
    let mock = Arc::new(MockProvider::new());
    let pipeline = Pipeline::builder()
        .model("claude-sonnet-4-5")
        .retry(retry(3))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let err = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::AuthError);
    assert!(
        err.message().contains("ANTHROPIC_API_KEY"),
        "{}",
        err.message()
    );
    assert_eq!(mock.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn llm_calls_report_their_start_and_end_with_usage() {
    use fastagentic::llm::Usage;
    use fastagentic::reliability::{EventKind, PipelineEvent};
    use std::sync::Mutex;

    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::server_error())
            .push(MockReply::text("ok").usage(Usage::new(10, 2))),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let pipeline = Pipeline::builder()
        .model("mock/m")
        .retry(retry(2))
        .providers(providers(&mock))
        .event_sink(Arc::new(move |e: &mut PipelineEvent| {
            log.lock().unwrap().push((
                e.kind,
                e.attempt,
                e.provider().map(|p| &**p).map(str::to_owned),
                e.usage(),
                e.error.as_ref().map(AgentError::class),
            ));
        }))
        .build()
        .unwrap();
    pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap();
    let mock_name = Some("mock".to_owned());
    let seen = seen.lock().unwrap().clone();
    let llm: Vec<_> = seen
        .into_iter()
        .filter(|e| matches!(e.0, EventKind::LlmStart | EventKind::LlmEnd))
        .collect();
    assert_eq!(
        llm,
        vec![
            (EventKind::LlmStart, 1, mock_name.clone(), None, None),
            (
                EventKind::LlmEnd,
                1,
                mock_name.clone(),
                None,
                Some(ErrorClass::ServerError)
            ),
            (EventKind::LlmStart, 2, mock_name.clone(), None, None),
            (
                EventKind::LlmEnd,
                2,
                mock_name,
                Some(Usage::new(10, 2)),
                None
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_collected_stream_hands_nothing_out_so_a_cut_is_retried() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::text("one two three").cut_after(2))
            .push(MockReply::text("whole")),
    );
    let pipeline = Pipeline::builder()
        .model("mock/cuts")
        .retry(retry(2))
        .providers(providers(&mock))
        .build()
        .unwrap();
    let done = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().stream("count").await?.collect().await
        })
        .await
        .unwrap();
    assert_eq!(done.text, "whole");
    assert_eq!(mock.calls(), 2);
}
