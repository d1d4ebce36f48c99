//! What runs cost and what they stream: every `ctx.llm()` call is priced from the shipped
//! tables, recorded per model in the run's `Spend` and in the global ledger, reported to
//! `on_llm_end` and `on_response`, and its events are forwarded to a streaming caller.

#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use fastagentic::hooks::{Hook, HookContext, Hooks};
use fastagentic::llm::{MockProvider, MockReply, Prompt, Providers, StreamEvent, Usage};
use fastagentic::metrics::Metrics;
use fastagentic::prelude::*;
use fastagentic::pricing::Decimal;
use fastagentic::reliability::EventKind;
use fastagentic::spend::{Spend, ledger};

fn providers(mock: MockProvider) -> Arc<Providers> {
    Arc::new(Providers::new().with(mock))
}

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_completion_carries_its_cost_from_the_tables() {
    // The mock answers as the model after `mock/`, so it is priced as gpt-4o-mini:
    // $0.15 in and $0.60 out per million tokens.
    let mock = MockProvider::new().push(MockReply::text("hi").usage(Usage::new(10_000, 2_000)));
    let pipeline = Pipeline::builder()
        .endpoint("/spend/one")
        .model("mock/gpt-4o-mini")
        .providers(providers(mock))
        .build()
        .unwrap();
    let spend = Arc::new(Spend::new());
    let reply = pipeline
        .run(
            RequestInfo::new().spend(spend.clone()),
            |ctx: AgentContext| async move { ctx.llm().complete(Prompt::user("hi")).await },
        )
        .await
        .unwrap();
    // 10 000 × 0.15 / 1e6 + 2 000 × 0.60 / 1e6 = 0.0015 + 0.0012
    assert_eq!(reply.cost_usd, Some(usd("0.0027")));
    assert_eq!(spend.cost_usd(), Some(usd("0.0027")));
    assert_eq!(spend.usage().unwrap().total, 12_000);
}

#[tokio::test(start_paused = true)]
async fn a_fallback_shows_what_each_model_cost() {
    // The primary answers, but the body rejects it as a server error (say, a bad format),
    // so the run falls back: both calls were billed.
    let mock = MockProvider::new()
        .push(MockReply::text("garbled").usage(Usage::new(1_000_000, 0)))
        .push(MockReply::text("fine").usage(Usage::new(1_000_000, 0)));
    let chain = FallbackChain::builder("mock/gpt-4o")
        .then("mock/gpt-4o-mini", ClassSet::of(&[ErrorClass::ServerError]))
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .endpoint("/spend/fallback")
        .fallback(chain)
        .providers(providers(mock))
        .build()
        .unwrap();
    let spend = Arc::new(Spend::new());
    let request = RequestInfo::new()
        .user("ada")
        .tenant("acme")
        .spend(spend.clone());
    pipeline
        .run(request, |ctx: AgentContext| async move {
            let reply = ctx.llm().complete(Prompt::user("hi")).await?;
            if reply.text == "garbled" {
                return Err(AgentError::new(
                    ErrorClass::ServerError,
                    "unreadable answer",
                ));
            }
            Ok(reply)
        })
        .await
        .unwrap();
    let models = spend.by_model();
    assert_eq!(models.len(), 2);
    assert_eq!(&*models[0].model, "mock/gpt-4o");
    assert_eq!(models[0].cost_usd, usd("2.5"));
    assert_eq!(&*models[1].model, "mock/gpt-4o-mini");
    assert_eq!(models[1].cost_usd, usd("0.15"));
    assert_eq!(spend.cost_usd(), Some(usd("2.65")));

    let tenant = ledger()
        .by_tenant()
        .into_iter()
        .find(|(name, _)| name == "acme")
        .unwrap()
        .1;
    assert_eq!(tenant.calls, 2);
    assert_eq!(tenant.cost_usd, usd("2.65"));
    let endpoint = ledger()
        .by_endpoint()
        .into_iter()
        .find(|(name, _)| name == "/spend/fallback")
        .unwrap()
        .1;
    assert_eq!(endpoint.cost_usd, usd("2.65"));
    assert!(ledger().by_user().iter().any(|(name, _)| name == "ada"));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_price_is_unknown_not_zero() {
    let mock = MockProvider::new().push(MockReply::text("hi").usage(Usage::new(100, 10)));
    let metrics = Arc::new(Metrics::new());
    let pipeline = Pipeline::builder()
        .endpoint("/spend/unknown")
        .model("mock/no-such-model-anywhere")
        .providers(providers(mock))
        .event_sink(metrics.clone())
        .build()
        .unwrap();
    let spend = Arc::new(Spend::new());
    let reply = pipeline
        .run(
            RequestInfo::new().spend(spend.clone()),
            |ctx: AgentContext| async move { ctx.llm().complete(Prompt::user("hi")).await },
        )
        .await
        .unwrap();
    assert_eq!(reply.cost_usd, None);
    assert_eq!(spend.cost_usd(), None);
    assert_eq!(spend.by_model()[0].unpriced_calls, 1);
    let text = metrics.render();
    assert!(
        text.contains(
            r#"fastagentic_llm_unpriced_calls_total{provider="mock",model="no-such-model-anywhere"} 1"#
        ),
        "{text}"
    );
    assert!(!text.contains("fastagentic_llm_cost_usd_total{"), "{text}");
}

/// What the hooks saw: each event with its `cost_usd`.
type Seen = Arc<Mutex<Vec<(EventKind, Option<Decimal>)>>>;

#[tokio::test(start_paused = true)]
async fn hooks_and_metrics_see_the_cost() {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let hooks = Hooks::new()
        .with(Hook::sync(EventKind::LlmEnd, "cost", {
            let record = record.clone();
            move |ctx: &mut HookContext| record.lock().unwrap().push((ctx.kind, ctx.cost_usd()))
        }))
        .with(Hook::sync(
            EventKind::Response,
            "total",
            move |ctx: &mut HookContext| {
                record.lock().unwrap().push((ctx.kind, ctx.cost_usd()));
            },
        ));
    let metrics = Arc::new(Metrics::new());
    let mock = MockProvider::new()
        .push(MockReply::text("a").usage(Usage::new(1_000_000, 1_000_000)))
        .push(MockReply::text("b").usage(Usage::new(1_000_000, 0)));
    let pipeline = Pipeline::builder()
        .endpoint("/spend/hooks")
        .model("mock/gpt-4o")
        .providers(providers(mock))
        .event_sink(Arc::new(hooks))
        .event_sink(metrics.clone())
        .build()
        .unwrap();
    pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete(Prompt::user("one")).await?;
            ctx.llm().complete(Prompt::user("two")).await
        })
        .await
        .unwrap();
    // gpt-4o: $2.50 in, $10 out per million.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (EventKind::LlmEnd, Some(usd("12.5"))),
            (EventKind::LlmEnd, Some(usd("2.5"))),
            (EventKind::Response, Some(usd("15"))),
        ]
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"fastagentic_llm_cost_usd_total{provider="mock",model="gpt-4o"} 15"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_caller_gets_every_event_as_it_arrives() {
    let mock = MockProvider::new().push(MockReply::text("one two three"));
    let pipeline = Pipeline::builder()
        .model("mock/gpt-4o-mini")
        .providers(providers(mock))
        .build()
        .unwrap();
    let (sink, mut events) = tokio::sync::mpsc::channel(64);
    let reply = pipeline
        .run(
            RequestInfo::new().stream_to(sink),
            |ctx: AgentContext| async move {
                assert!(ctx.is_streaming());
                ctx.send(StreamEvent::Text("(thinking) ".into())).await;
                ctx.llm()
                    .stream(Prompt::user("count"))
                    .await?
                    .collect()
                    .await
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.text, "one two three");
    assert!(reply.cost_usd.is_some());
    let mut text = String::new();
    let mut usage = false;
    while let Ok(event) = events.try_recv() {
        match event {
            StreamEvent::Text(delta) => text.push_str(&delta),
            StreamEvent::Usage(_) => usage = true,
            _ => {}
        }
    }
    assert_eq!(text, "(thinking) one two three");
    assert!(usage);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_broke_after_reaching_the_caller_is_not_retried() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::text("one two three four").cut_after(2))
            .push(MockReply::text("never asked")),
    );
    let pipeline = Pipeline::builder()
        .model("mock/gpt-4o-mini")
        .retry(
            RetryPolicy::builder()
                .max_attempts(3)
                .jitter(false)
                .build()
                .unwrap(),
        )
        .providers(Arc::new(Providers::new().with_shared(mock.clone())))
        .build()
        .unwrap();
    let (sink, mut events) = tokio::sync::mpsc::channel(64);
    let err = pipeline
        .run(
            RequestInfo::new().stream_to(sink),
            |ctx: AgentContext| async move {
                ctx.llm()
                    .stream(Prompt::user("count"))
                    .await?
                    .collect()
                    .await
            },
        )
        .await
        .unwrap_err();
    assert_eq!(mock.calls(), 1, "the caller already saw part of the answer");
    let partial = err.partial().unwrap();
    assert!(!partial.text.is_empty());
    let mut forwarded = String::new();
    while let Ok(event) = events.try_recv() {
        if let StreamEvent::Text(delta) = event {
            forwarded.push_str(&delta);
        }
    }
    assert_eq!(forwarded, partial.text);
}

#[tokio::test(start_paused = true)]
async fn without_a_streaming_caller_a_broken_stream_is_retried() {
    let mock = Arc::new(
        MockProvider::new()
            .push(MockReply::text("one two three four").cut_after(2))
            .push(MockReply::text("whole answer")),
    );
    let pipeline = Pipeline::builder()
        .model("mock/gpt-4o-mini")
        .retry(
            RetryPolicy::builder()
                .max_attempts(3)
                .jitter(false)
                .build()
                .unwrap(),
        )
        .providers(Arc::new(Providers::new().with_shared(mock.clone())))
        .build()
        .unwrap();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            assert!(!ctx.is_streaming());
            ctx.llm()
                .stream(Prompt::user("count"))
                .await?
                .collect()
                .await
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "whole answer");
    assert_eq!(mock.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stream_left_unread_is_still_recorded() {
    let ended: Arc<Mutex<u32>> = Arc::default();
    let count = ended.clone();
    let hooks = Hooks::new().with(Hook::sync(
        EventKind::LlmEnd,
        "count",
        move |_: &mut HookContext| *count.lock().unwrap() += 1,
    ));
    let mock = MockProvider::new().push(MockReply::text("one two three four"));
    let pipeline = Pipeline::builder()
        .model("mock/gpt-4o-mini")
        .providers(providers(mock))
        .event_sink(Arc::new(hooks))
        .build()
        .unwrap();
    let spend = Arc::new(Spend::new());
    let first = pipeline
        .run(
            RequestInfo::new().spend(spend.clone()),
            |ctx: AgentContext| async move {
                let mut stream = ctx.llm().stream(Prompt::user("count")).await?;
                // Reads one event and walks away.
                let first = stream.next().await.transpose()?;
                Ok::<_, AgentError>(first)
            },
        )
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(spend.calls(), 1, "the abandoned call is on the bill");
    // No usage had arrived: its cost is unknown, not zero.
    assert_eq!(spend.by_model()[0].unpriced_calls, 1);
    assert_eq!(spend.cost_usd(), None);
    tokio::task::yield_now().await;
    assert_eq!(*ended.lock().unwrap(), 1, "on_llm_end fired once");
}
