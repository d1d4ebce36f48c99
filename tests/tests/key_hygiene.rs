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

#[tokio::test]
async fn keys_never_show_in_debug_errors_or_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    // The only test in this binary, so a global subscriber sees every thread's events.
    tracing::subscriber::set_global_default(subscriber).unwrap();

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
