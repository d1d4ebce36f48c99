//! The real provider clients through real sockets against the fake provider server:
//! what they send, and how every scripted failure comes back classified.
//!
//! Real time throughout (tokio's paused clock would auto-advance while a socket waits),
//! so delays are kept to tens of milliseconds.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fastagentic::error::ErrorDetail;
use fastagentic::llm::{
    Anthropic, Completion, FinishReason, Gemini, OpenAi, Prompt, Provider, Providers, StreamEvent,
    Usage, compat,
};
use fastagentic::prelude::*;
use fastagentic::reliability::Stage;
use fastagentic_testing::{FakeServer, Reply, Route};

const KEY: &str = "sk-secret-0123456789";

fn openai(server: &FakeServer) -> OpenAi {
    OpenAi::new(KEY).base_url(format!("{}/v1", server.base_url()))
}

fn anthropic(server: &FakeServer) -> Anthropic {
    Anthropic::new(KEY).base_url(server.base_url())
}

fn gemini(server: &FakeServer) -> Gemini {
    Gemini::new(KEY).base_url(server.base_url())
}

/// The three providers, each pointed at the server, with a model of its family.
fn all(server: &FakeServer) -> Vec<(Box<dyn Provider>, &'static str, Route)> {
    vec![
        (Box::new(openai(server)), "gpt-4o-mini", Route::OpenAi),
        (
            Box::new(anthropic(server)),
            "claude-sonnet-4-5",
            Route::Anthropic,
        ),
        (Box::new(gemini(server)), "gemini-2.0-flash", Route::Gemini),
    ]
}

async fn drain(
    mut stream: fastagentic::llm::CompletionStream,
) -> (Vec<StreamEvent>, Option<AgentError>, Completion) {
    let mut events = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(err) => error = Some(err),
        }
    }
    (events, error, stream.into_completion())
}

#[tokio::test]
async fn each_provider_completes_and_streams_the_canned_answer() {
    let server = FakeServer::start().await.unwrap();
    for (provider, model, _) in all(&server) {
        let whole = provider.complete(model, &Prompt::user("hi")).await.unwrap();
        assert_eq!(whole.text, "Hello from the fake provider.", "{model}");
        assert_eq!(whole.finish_reason, Some(FinishReason::Stop), "{model}");
        assert_eq!(
            whole.usage.map(|u| (u.input, u.output)),
            Some((12, 7)),
            "{model}"
        );
        assert_eq!(whole.provider.as_ref(), provider.name());

        let stream = provider.stream(model, &Prompt::user("hi")).await.unwrap();
        let (events, error, done) = drain(stream).await;
        assert!(error.is_none(), "{model}: {error:?}");
        assert!(
            events
                .iter()
                .filter(|e| matches!(e, StreamEvent::Text(_)))
                .count()
                > 1
        );
        assert_eq!(done.text, "Hello from the fake provider.", "{model}");
        assert_eq!(
            done.usage.map(|u| (u.input, u.output)),
            Some((12, 7)),
            "{model}"
        );
        assert_eq!(done.finish_reason, Some(FinishReason::Stop), "{model}");
    }
}

#[tokio::test]
async fn requests_carry_each_providers_auth_and_fields() {
    let server = FakeServer::start().await.unwrap();
    let prompt = Prompt::user("hi").system("be brief").max_tokens(64);
    for (provider, model, _) in all(&server) {
        let stream = provider.stream(model, &prompt).await.unwrap();
        drain(stream).await;
    }
    let sent = server.requests();
    let [openai, anthropic, gemini] = &sent[..] else {
        panic!("three requests, got {}", sent.len());
    };

    assert_eq!(openai.path, "/v1/chat/completions");
    assert_eq!(
        openai.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = openai.json().unwrap();
    assert_eq!(body["max_completion_tokens"], 64);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["stream_options"]["include_usage"], true);

    assert_eq!(anthropic.path, "/v1/messages");
    assert_eq!(anthropic.header("x-api-key"), Some(KEY));
    assert_eq!(anthropic.header("anthropic-version"), Some("2023-06-01"));
    let body = anthropic.json().unwrap();
    assert_eq!(
        (body["max_tokens"].as_u64(), body["system"].as_str()),
        (Some(64), Some("be brief"))
    );

    assert_eq!(
        gemini.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(gemini.query.as_deref(), Some("alt=sse"));
    assert_eq!(gemini.header("x-goog-api-key"), Some(KEY));
    let body = gemini.json().unwrap();
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);
}

#[tokio::test]
async fn a_gateway_gets_its_headers_and_models_by_prefix() {
    let server = FakeServer::start().await.unwrap();
    let gateway = compat::litellm(format!("{}/v1", server.base_url()), "proxy-key")
        .header("x-team", "search")
        .unwrap();
    let providers = Providers::new().with(gateway);
    let (provider, model) = providers.route("litellm/bedrock/claude-3-haiku").unwrap();
    provider.complete(model, &Prompt::user("hi")).await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer proxy-key"));
    assert_eq!(request.header("x-team"), Some("search"));
    assert_eq!(request.json().unwrap()["model"], "bedrock/claude-3-haiku");
}

#[tokio::test]
async fn retry_after_comes_back_in_every_spelling() {
    let server = FakeServer::start().await.unwrap();
    let provider = openai(&server);
    let prompt = Prompt::user("hi");
    let until = SystemTime::now() + Duration::from_secs(30);
    server.push(Reply::rate_limited_secs(7));
    server.push(Reply::rate_limited_ms(1_500));
    server.push(Reply::rate_limited_until(until));
    let expected = [
        (Duration::from_secs(7), Duration::ZERO),
        (Duration::from_millis(1_500), Duration::ZERO),
        (Duration::from_secs(30), Duration::from_secs(2)),
    ];
    for (want, slack) in expected {
        let err = provider.complete("gpt-4o", &prompt).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::RateLimit);
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.provider(), Some("openai"));
        let got = err.retry_after().unwrap();
        assert!(got <= want && got + slack >= want, "{got:?} vs {want:?}");
    }
}

#[tokio::test]
async fn failures_before_an_answer_are_classified() {
    let server = FakeServer::start().await.unwrap();
    let cases = [
        (Reply::overloaded(), ErrorClass::Overloaded),
        (Reply::server_error(500), ErrorClass::ServerError),
        (Reply::server_error(503), ErrorClass::Overloaded),
        (Reply::reset(), ErrorClass::ConnectionError),
        (
            Reply::garbage("SSH-2.0-OpenSSH_9.6\r\n"),
            ErrorClass::ServerError,
        ),
    ];
    for (provider, model, route) in all(&server) {
        for (reply, class) in cases.clone() {
            server.push_for(route, reply);
            let err = provider
                .complete(model, &Prompt::user("hi"))
                .await
                .unwrap_err();
            assert_eq!(err.class(), class, "{model}: {err:?}");
            let err = {
                server.push_for(route, cases[0].0.clone());
                provider
                    .stream(model, &Prompt::user("hi"))
                    .await
                    .unwrap_err()
            };
            assert_eq!(err.class(), ErrorClass::Overloaded, "{model} stream");
        }
    }
}

#[tokio::test]
async fn a_stream_cut_midway_fails_with_what_it_had_delivered() {
    let server = FakeServer::start().await.unwrap();
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" never\"}}]}\n\n";
    let cut = body.find(" never").unwrap();
    server.push(Reply::sse(body).cut_after(cut));
    let stream = openai(&server)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let (_, error, _) = drain(stream).await;
    let err = error.unwrap();
    assert_eq!(err.class(), ErrorClass::StreamInterrupted, "{err:?}");
    assert_eq!(err.partial().unwrap().text, "Hello");
    assert_eq!(err.provider(), Some("openai"));
}

#[tokio::test]
async fn an_openai_stream_that_ends_without_done_keeps_what_it_delivered() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::sse(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
         data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
    ));
    let stream = openai(&server)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let (_, error, done) = drain(stream).await;
    let err = error.unwrap();
    assert_eq!(err.class(), ErrorClass::StreamInterrupted, "{err:?}");
    assert!(err.message().contains("[DONE]"), "{}", err.message());
    assert_eq!(err.partial().unwrap().text, "Hello");
    assert_eq!(done.text, "Hello");
}

#[tokio::test]
async fn a_stream_that_ends_without_its_terminal_event_is_interrupted() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::sse(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
         event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
    ));
    let stream = anthropic(&server)
        .stream("claude-x", &Prompt::user("hi"))
        .await
        .unwrap();
    let (_, error, done) = drain(stream).await;
    let err = error.unwrap();
    assert_eq!(err.class(), ErrorClass::StreamInterrupted);
    assert!(err.message().contains("message_stop"), "{}", err.message());
    let partial = err.partial().unwrap();
    assert_eq!(partial.text, "Hi");
    assert_eq!(partial.usage, Some(Usage::new(3, 1)));
    assert_eq!(done.text, "Hi");
}

#[tokio::test]
async fn a_529_storm_is_ridden_out_by_the_pipeline() {
    let server = FakeServer::start().await.unwrap();
    server.push_n(Reply::overloaded().header("retry-after-ms", "5"), 2);
    let providers = Arc::new(Providers::new().with(anthropic(&server)));
    let pipeline = Pipeline::builder()
        .model("claude-sonnet-4-5")
        .retry(RetryPolicy::builder().max_attempts(3).build().unwrap())
        .providers(providers)
        .build()
        .unwrap();
    let reply = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap();
    assert_eq!(reply.text, "Hello from the fake provider.");
    assert_eq!(server.requests().len(), 3);
}

fn pipeline_with(server: &FakeServer, timeouts: TimeoutPolicy) -> Pipeline {
    Pipeline::builder()
        .model("gemini-2.0-flash")
        .timeout(timeouts)
        .providers(Arc::new(Providers::new().with(gemini(server))))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_slow_first_byte_is_cut_at_llm_call() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::canned().first_byte_delay(Duration::from_secs(5)));
    let timeouts = TimeoutPolicy::builder()
        .llm_call(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = pipeline_with(&server, timeouts)
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.detail(),
            Some(ErrorDetail::Timeout {
                stage: Stage::LlmCall,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stalled_stream_is_cut_at_stream_idle_and_keeps_its_text() {
    let server = FakeServer::start().await.unwrap();
    let first = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Half\"}]}}]}\r\n\r\n";
    let rest = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" more\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n";
    server.push(Reply::sse(format!("{first}{rest}")).stall_after(first.len()));
    let timeouts = TimeoutPolicy::builder()
        .stream_idle(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = pipeline_with(&server, timeouts)
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            let mut stream = ctx.llm().stream("hi").await?;
            while let Some(event) = stream.next().await {
                event?;
            }
            Ok::<_, AgentError>(stream.into_completion())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.detail(),
            Some(ErrorDetail::Timeout {
                stage: Stage::StreamIdle,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.partial().unwrap().text, "Half");
}

#[tokio::test]
async fn slow_chunks_within_the_idle_limit_are_fine() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::canned().chunk_delay(Duration::from_millis(20)));
    let timeouts = TimeoutPolicy::builder()
        .stream_idle(Duration::from_millis(500))
        .build()
        .unwrap();
    let done = pipeline_with(&server, timeouts)
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().stream("hi").await?.collect().await
        })
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from the fake provider.");
}

#[tokio::test]
async fn a_200_without_the_required_fields_is_a_server_error_not_an_empty_answer() {
    let server = FakeServer::start().await.unwrap();
    for (client, model, route) in all(&server) {
        let bodies: &[&str] = match route {
            Route::OpenAi => &["{}", r#"{"id":"x","choices":[]}"#, r#"{"choices":[{}]}"#],
            Route::Anthropic => &["{}", r#"{"id":"x","type":"message","role":"assistant"}"#],
            Route::Gemini => &["{}", r#"{"candidates":[]}"#],
        };
        for body in bodies {
            server.push(Reply::json(200, *body));
            let err = client
                .complete(model, &Prompt::user("hi"))
                .await
                .unwrap_err();
            assert_eq!(
                err.class(),
                ErrorClass::ServerError,
                "{route:?} {body}: {err}"
            );
            assert!(
                err.message().contains("answered 200 without"),
                "{route:?} {body}: {err}"
            );
        }
    }
    // A blocked Gemini prompt has no candidates either, and is not a server error.
    server.push(Reply::json(
        200,
        r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#,
    ));
    let blocked = gemini(&server)
        .complete("gemini-2.0-flash", &Prompt::user("hi"))
        .await
        .unwrap();
    assert_eq!(blocked.finish_reason, Some(FinishReason::ContentFilter));
}

#[tokio::test]
async fn an_empty_200_is_retried_and_falls_back_like_a_server_error() {
    let server = FakeServer::start().await.unwrap();
    server.push_for(Route::OpenAi, Reply::json(200, r#"{"choices":[]}"#));
    let providers = Providers::new()
        .with(openai(&server))
        .with(anthropic(&server));
    let chain = FallbackChain::builder("gpt-4o")
        .then(
            "claude-sonnet-4-5",
            ClassSet::of(&[ErrorClass::ServerError]),
        )
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .fallback(chain)
        .providers(Arc::new(providers))
        .build()
        .unwrap();
    let answer = pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete(Prompt::user("hi")).await
        })
        .await
        .unwrap();
    assert_eq!(answer.provider.as_ref(), "anthropic");
    assert!(!answer.text.is_empty());
}

#[tokio::test]
async fn hostile_upstream_bodies_are_bounded_not_buffered() {
    use fastagentic::llm::{BodyLimits, MAX_RESPONSE_BYTES, MAX_SSE_EVENT_BYTES};
    let server = FakeServer::start().await.unwrap();
    // A whole answer past the bound: refused as the upstream's fault.
    let mut huge = br#"{"choices":[{"message":{"content":""#.to_vec();
    huge.resize(MAX_RESPONSE_BYTES + 1024, b'a');
    server.push(Reply::json(200, huge));
    let err = openai(&server)
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError, "{err}");
    assert!(err.message().contains("more than 32 MiB"), "{err}");

    // One SSE line without end.
    let mut endless = b"data: ".to_vec();
    endless.resize(MAX_SSE_EVENT_BYTES + 1024, b'x');
    server.push(Reply::sse(endless));
    let stream = openai(&server)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let (_, error, _) = drain(stream).await;
    let err = error.expect("the stream fails");
    assert_eq!(err.class(), ErrorClass::ServerError, "{err}");
    assert!(
        err.message().contains("SSE event of more than 8 MiB"),
        "{err}"
    );

    // The limits are the provider's to set: a tighter one names itself.
    let mut long_event = b"data: ".to_vec();
    long_event.resize(4096, b'x');
    server.push(Reply::sse(long_event));
    let tight = BodyLimits::default().sse_event_bytes(1024);
    let stream = openai(&server)
        .body_limits(tight)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let (_, error, _) = drain(stream).await;
    let err = error.expect("the stream fails");
    assert!(
        err.message().contains("SSE event of more than 1 KiB"),
        "{err}"
    );
    assert!(err.message().contains("BodyLimits"), "{err}");

    // A long error body is still classified, from its start.
    let mut error_body = br#"{"error":{"message":"boom","type":"server_error"}}"#.to_vec();
    error_body.resize(4 * 1024 * 1024, b' ');
    server.push(Reply::json(500, error_body));
    let err = openai(&server)
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError, "{err}");
    assert_eq!(err.status(), Some(500));
}

#[tokio::test]
async fn a_server_that_does_not_stream_says_so() {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::json(
        200,
        r#"{"id":"x","choices":[{"message":{"content":"whole"}}]}"#,
    ));
    let err = openai(&server)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    // The upstream's fault, not the caller's: retried and answered 502 like a server error.
    assert_eq!(err.class(), ErrorClass::ServerError);
    assert!(
        err.message().contains("does not stream"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_whole_answer_cut_short_is_a_retryable_connection_error() {
    let server = FakeServer::start().await.unwrap();
    server.push(
        Reply::json(
            200,
            r#"{"id":"x","choices":[{"message":{"content":"whole answer"}}]}"#,
        )
        .cut_after(10),
    );
    let err = openai(&server)
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ConnectionError, "{err:?}");
    assert!(err.partial().is_none());
}
