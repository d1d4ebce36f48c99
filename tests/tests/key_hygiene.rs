//! API keys never leak: not through `Debug`, not through errors, not through the
//! client's own logs (captured at TRACE level from a real exchange on loopback).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use fastagentic::llm::{Anthropic, Gemini, OpenAi, Prompt, Provider, Providers, compat};
use fastagentic::prelude::*;
use fastagentic_testing::{FakeServer, Reply};

const KEY: &str = "sk-secret-0123456789";

/// Collects everything `tracing` formats, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at every level: one global subscriber, installed
/// by whichever test asks first, sees every thread's events.
fn capture_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}

#[tokio::test]
async fn keys_never_show_in_debug_errors_or_logs() {
    let logs = capture_logs();

    let server = FakeServer::start().await.unwrap();
    let providers = Providers::new()
        .with(OpenAi::new(KEY))
        .with(Anthropic::new(KEY))
        .with(Gemini::new(KEY))
        .with(compat::portkey(KEY, KEY).unwrap());
    let mut seen = format!("{providers:?}");
    let clients: [(Box<dyn Provider>, &str); 3] = [
        (
            Box::new(OpenAi::new(KEY).base_url(format!("{}/v1", server.base_url()))),
            "gpt-4o",
        ),
        (
            Box::new(Anthropic::new(KEY).base_url(server.base_url())),
            "claude-x",
        ),
        (
            Box::new(Gemini::new(KEY).base_url(server.base_url())),
            "gemini-x",
        ),
    ];
    for (provider, model) in clients {
        server.push(Reply::json(
            401,
            r#"{"error":{"message":"bad key","type":"authentication_error"}}"#,
        ));
        let err = provider
            .complete(model, &Prompt::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::AuthError);
        seen.push_str(&format!("{err:?} {} {provider:?}", err.message()));
        server.push(Reply::reset());
        let err = provider
            .stream(model, &Prompt::user("hi"))
            .await
            .unwrap_err();
        seen.push_str(&format!("{err:?} {}", err.message()));
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("answered"),
        "the client logs its calls: {logged}"
    );
    seen.push_str(&logged);
    assert!(!seen.contains(KEY), "a key leaked: {seen}");
    assert!(!seen.contains("0123456789"), "part of a key leaked");
}

/// A key of no known shape, echoed back by an upstream: masked by its value in the HTTP
/// error, in a stream's error event, in a JSON error answering a stream request, and in
/// what a served app answers its client.
#[tokio::test]
async fn keys_of_any_shape_are_masked_by_value_wherever_upstream_text_goes() {
    const GATEWAY_KEY: &str = "gwkey-SECRET456";
    let logs = capture_logs();
    let server = FakeServer::start().await.unwrap();
    let gateway =
        || OpenAi::compatible("gw", format!("{}/v1", server.base_url())).api_key(GATEWAY_KEY);
    let echo = format!("Invalid proxy key {GATEWAY_KEY} for this team");
    let error_body = format!(r#"{{"error":{{"message":"{echo}","type":"authentication_error"}}}}"#);
    let mut seen = String::new();

    server.push(Reply::json(401, error_body.clone()));
    let err = gateway()
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::AuthError);
    assert!(
        err.message().contains("[redacted key]"),
        "{}",
        err.message()
    );
    seen.push_str(&format!("{err:?} {}", err.message()));

    let mid_stream = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hel\"}}}}]}}\n\n\
         data: {{\"error\":{{\"message\":\"{echo}\",\"type\":\"server_error\"}}}}\n\n"
    );
    server.push(Reply::sse(mid_stream));
    let mut stream = gateway()
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let mut failure = None;
    while let Some(item) = futures_util::StreamExt::next(&mut stream).await {
        if let Err(err) = item {
            failure = Some(err);
        }
    }
    let err = failure.expect("the stream reports its error event");
    seen.push_str(&format!("{err:?} {}", err.message()));

    server.push(Reply::json(400, error_body.clone()));
    let err = gateway()
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    seen.push_str(&format!("{err:?} {}", err.message()));

    // Served: the client of the app gets the upstream's message, masked.
    server.push(Reply::json(401, error_body));
    let route = fastagentic::server::Route::new("/ask", |ctx: AgentContext, (): ()| async move {
        Ok::<_, AgentError>(ctx.llm().complete("hi").await?.text)
    })
    .model("gw/gpt-4o");
    let app = App::bare("Masked")
        .route(route)
        .providers(Providers::new().with(gateway()));
    let answer = tower_free_request(app, "/ask").await;
    seen.push_str(&answer);
    assert!(answer.contains("[redacted key]"), "{answer}");

    seen.push_str(&String::from_utf8(logs.0.lock().unwrap().clone()).unwrap());
    assert!(!seen.contains(GATEWAY_KEY), "a key leaked: {seen}");
    assert!(!seen.contains("SECRET456"), "part of a key leaked: {seen}");
}

/// `POST path` on `app` served on loopback; the body of the answer.
async fn tower_free_request(app: App, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    let body = reqwest::Client::new()
        .post(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = stop.send(());
    body
}
