//! `App` over real HTTP: an ephemeral loopback port, reqwest as the client.
//!
//! Every endpoint of this binary is registered globally, so each test's `App::new` serves
//! all of them; each app builds its own pipelines (limiters, breakers), so tests do not
//! share limits.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fastagentic::hooks::Hook;
use fastagentic::llm::{MockProvider, MockReply, OpenAi, Providers, Usage};
use fastagentic::metrics::Metrics;
use fastagentic::prelude::*;
use fastagentic::pricing::Pricing;
use fastagentic::reliability::EventKind;
use fastagentic::server::{Route, ServeError};
use fastagentic::spend::Ledger;
use fastagentic::tools::{Tool, Tools};
use fastagentic_testing::{FakeServer, Reply, json_of, sse_json_events};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// Endpoints

#[derive(Clone, Debug, Deserialize)]
struct Text {
    text: String,
}

#[derive(Debug, Serialize)]
struct Echoed {
    text: String,
    user: Option<String>,
    tenant: Option<String>,
}

/// Echoes the text and who asked.
#[agent_endpoint(path = "/s/echo")]
async fn echo(ctx: AgentContext, input: Text) -> Result<Echoed, AgentError> {
    Ok(Echoed {
        text: input.text,
        user: ctx.user().map(str::to_owned),
        tenant: ctx.tenant().map(str::to_owned),
    })
}

#[derive(Clone, Debug, Deserialize)]
struct Fail {
    class: String,
    #[serde(default)]
    upstream: bool,
    retry_after_ms: Option<u64>,
}

/// Fails with the class it is given.
#[agent_endpoint(path = "/s/fail")]
async fn fail(input: Fail) -> Result<(), AgentError> {
    let class: ErrorClass = input
        .class
        .parse()
        .map_err(|e| AgentError::new(ErrorClass::Other, format!("bad test input: {e}")))?;
    let mut err = AgentError::new(class, "failed on purpose");
    if input.upstream {
        err = err.with_provider("mock").with_status(500);
    }
    if let Some(ms) = input.retry_after_ms {
        err = err.with_retry_after(Duration::from_millis(ms));
    }
    Err(err)
}

/// Fifty requests a minute.
#[agent_endpoint(path = "/s/limited", rate_limit(requests_per_minute = 50))]
async fn limited() -> Result<&'static str, AgentError> {
    Ok("ok")
}

/// Its provider is down: the breaker opens on the first failure.
#[agent_endpoint(
    path = "/s/breaker",
    model = "mock/down",
    circuit_breaker(
        failure_threshold = 1,
        failure_window_ms = 60_000,
        reset_timeout_ms = 30_000
    )
)]
async fn breaker() -> Result<(), AgentError> {
    Err(AgentError::new(ErrorClass::ServerError, "down").with_provider("mock"))
}

/// Takes longer than its total timeout.
#[agent_endpoint(path = "/s/timeout", timeout(total_ms = 50))]
async fn too_slow() -> Result<(), AgentError> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

/// Ids of `/s/slow` runs that started, and of those whose body was dropped before it
/// finished.
static STARTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DROPPED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn started(id: u32) -> bool {
    STARTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&id)
}

fn dropped(id: u32) -> bool {
    DROPPED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&id)
}

/// Notes the id of a run whose body is dropped unfinished.
struct NoteDrop {
    id: u32,
    finished: bool,
}

impl Drop for NoteDrop {
    fn drop(&mut self) {
        if !self.finished {
            DROPPED
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self.id);
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
struct Slow {
    id: u32,
    millis: u64,
}

/// Sleeps `millis`, noting when it starts and when it is dropped unfinished.
#[agent_endpoint(path = "/s/slow", timeout(total_ms = 60_000))]
async fn slow(input: Slow) -> Result<u32, AgentError> {
    let mut guard = NoteDrop {
        id: input.id,
        finished: false,
    };
    STARTED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(input.id);
    tokio::time::sleep(Duration::from_millis(input.millis)).await;
    guard.finished = true;
    Ok(input.id)
}

/// Streams the mock's answer and returns it whole.
#[agent_endpoint(path = "/s/stream", model = "mock/streamer")]
async fn stream(ctx: AgentContext, input: Text) -> Result<Value, AgentError> {
    let answer = ctx
        .llm()
        .stream(Prompt::user(&input.text))
        .await?
        .collect()
        .await?;
    Ok(json!({ "text": answer.text, "model": ctx.model() }))
}

/// Always answers `text/event-stream`.
#[agent_endpoint(path = "/s/stream_always", model = "mock/streamer", stream = true)]
async fn stream_always(ctx: AgentContext, input: Text) -> Result<Value, AgentError> {
    let answer = ctx
        .llm()
        .stream(Prompt::user(&input.text))
        .await?
        .collect()
        .await?;
    Ok(json!({ "text": answer.text }))
}

/// Streams from OpenAI (the fake provider server in these tests).
#[agent_endpoint(path = "/s/stream_openai", model = "gpt-4o-mini")]
async fn stream_openai(ctx: AgentContext, input: Text) -> Result<Value, AgentError> {
    let mut stream = ctx.llm().stream(Prompt::user(&input.text)).await?;
    while let Some(event) = stream.next().await {
        event?;
    }
    Ok(json!({ "text": stream.so_far().text }))
}

// ---------------------------------------------------------------------------------------
// Harness

/// A running app.
struct Server {
    base: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Triggers a graceful shutdown.
    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(app: App) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    Server {
        base: format!("http://{addr}"),
        addr,
        stop: Some(stop),
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(server: &Server, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Waits (at most 5 s) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread")]
async fn json_in_json_out_with_identity_and_request_ids() {
    let server = start(App::new("Test").version("1.2.3")).await;
    let response = client()
        .post(server.url("/s/echo"))
        .header("x-user-id", "ann")
        .header("x-tenant-id", "acme")
        .header("x-request-id", "req-42")
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-request-id"), Some("req-42"));
    assert_eq!(
        json_of(response).await,
        json!({ "text": "hi", "user": "ann", "tenant": "acme" })
    );

    // No id sent: one is generated, a new one each time, also on errors.
    let first = post(&server, "/s/echo", json!({ "text": "a" })).await;
    let generated = header(&first, "x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(generated.chars().all(|c| c.is_ascii_hexdigit()));
    let missing = client().get(server.url("/nope")).send().await.unwrap();
    let other = header(&missing, "x-request-id").unwrap();
    assert_eq!(other.len(), 32);
    assert_ne!(other, generated);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_name_the_tenant_and_unknown_keys_are_refused() {
    let server = start(
        App::new("Keys")
            .api_key("key-globex", "globex")
            .api_key("key-acme", "acme"),
    )
    .await;
    let response = client()
        .post(server.url("/s/echo"))
        .bearer_auth("key-globex")
        .header("x-tenant-id", "acme") // the key wins
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["tenant"], "globex");

    let response = client()
        .post(server.url("/s/echo"))
        .header("x-api-key", "key-acme")
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response).await["tenant"], "acme");

    let response = client()
        .post(server.url("/s/echo"))
        .bearer_auth("stolen")
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(response).await["error"]["class"], "auth_error");

    // Keys are optional unless required.
    let anonymous = post(&server, "/s/echo", json!({ "text": "hi" })).await;
    assert_eq!(anonymous.status(), StatusCode::OK);
    let strict = start(App::new("Strict").api_key("k", "t").require_api_key(true)).await;
    let refused = post(&strict, "/s/echo", json!({ "text": "hi" })).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_errors() {
    let server = start(App::new("Bad").body_limit(1024)).await;

    // Malformed JSON: 400.
    let response = client()
        .post(server.url("/s/echo"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json_of(response).await;
    assert_eq!(body["error"]["class"], "invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    // The wrong shape: 422 naming the field.
    let response = post(&server, "/s/echo", json!({ "text": 5 })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = json_of(response).await;
    assert_eq!(body["error"]["class"], "invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`text`"),
        "{body}"
    );
    assert_eq!(body["error"]["field"], "text");

    // A missing field is named too, not reported at the top level (`.`).
    let response = post(&server, "/s/echo", json!({})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_of(response).await["error"]["field"], "text");

    // Too large: 413.
    let big = json!({ "text": "x".repeat(2048) });
    let response = post(&server, "/s/echo", big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json_of(response).await["error"]["class"],
        "request_too_large"
    );

    // Unknown path: 404.
    let response = post(&server, "/s/nowhere", json!({})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(response).await["error"]["class"], "not_found");

    // Wrong method: 405 with Allow.
    let response = client().get(server.url("/s/echo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&response, "allow"), Some("POST"));
    assert_eq!(json_of(response).await["error"]["class"], "invalid_input");
    let response = post(&server, "/health", json!({})).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(header(&response, "allow").unwrap().contains("GET"));

    // A bad identity header: 400.
    let response = client()
        .post(server.url("/s/echo"))
        .header("x-user-id", "u".repeat(300))
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_class_maps_to_its_status() {
    let server = start(App::new("Classes")).await;
    let cases: &[(&str, bool, u16)] = &[
        ("invalid_input", false, 422),
        ("context_overflow", true, 422),
        ("content_policy", true, 422),
        ("request_too_large", false, 413),
        ("rate_limit", true, 502),
        ("quota_exceeded", true, 502),
        ("timeout", false, 504),
        ("server_error", true, 502),
        ("overloaded", true, 502),
        ("connection_error", true, 502),
        ("stream_interrupted", true, 502),
        ("auth_error", true, 502),
        ("auth_error", false, 401),
        ("permission_denied", true, 502),
        ("permission_denied", false, 403),
        ("not_found", true, 502),
        ("not_found", false, 404),
        ("circuit_open", false, 503),
        ("cancelled", false, 503),
        ("other", false, 500),
    ];
    for (class, upstream, status) in cases {
        let response = post(
            &server,
            "/s/fail",
            json!({ "class": class, "upstream": upstream }),
        )
        .await;
        assert_eq!(
            response.status().as_u16(),
            *status,
            "{class} upstream={upstream}"
        );
        let body = json_of(response).await;
        assert_eq!(body["error"]["class"], *class, "{body}");
        assert_eq!(body["error"]["message"], "failed on purpose");
        if *upstream {
            assert_eq!(body["error"]["provider"], "mock");
            assert_eq!(body["error"]["upstream_status"], 500);
        }
    }

    // An upstream rate limit is a 502 that still says when to come back.
    let response = post(
        &server,
        "/s/fail",
        json!({ "class": "rate_limit", "upstream": true, "retry_after_ms": 1500 }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_of(response).await["error"]["retry_after_ms"], 1500);

    // 503 carries Retry-After, rounded up to whole seconds.
    let response = post(
        &server,
        "/s/fail",
        json!({ "class": "circuit_open", "retry_after_ms": 1500 }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&response, "retry-after"), Some("2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_is_504_naming_the_stage() {
    let server = start(App::new("Timeout")).await;
    let started = Instant::now();
    let response = post(&server, "/s/timeout", json!(null)).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5));
    let body = json_of(response).await;
    assert_eq!(body["error"]["class"], "timeout");
    assert_eq!(body["error"]["stage"], "total");
    assert_eq!(body["error"]["limit_ms"], 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_circuit_is_503_with_retry_after() {
    let server = start(App::new("Breaker")).await;
    // The first failure opens the breaker and is answered with itself; the next request
    // meets the open circuit.
    let first = post(&server, "/s/breaker", json!(null)).await;
    let status = first.status();
    let body = json_of(first).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["class"], "server_error");
    let second = post(&server, "/s/breaker", json!(null)).await;
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = header(&second, "retry-after").unwrap().parse().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    let body = json_of(second).await;
    assert_eq!(body["error"]["class"], "circuit_open");
    assert_eq!(body["error"]["dependency"], "mock/down");
    assert!(body["error"]["retry_after_ms"].as_u64().unwrap() > 29_000);

    // The listing shows the breaker open.
    let listing = json_of(client().get(server.url("/endpoints")).send().await.unwrap()).await;
    let entry = listing["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/s/breaker")
        .unwrap();
    assert_eq!(entry["breakers"][0]["state"], "open", "{entry}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_requests_against_fifty_per_minute() {
    let server = start(App::new("Limits")).await;
    let client = client();
    let requests = (0..200).map(|_| {
        let client = client.clone();
        let url = server.url("/s/limited");
        tokio::spawn(async move { client.post(url).send().await.unwrap() })
    });
    let responses = futures_util::future::join_all(requests).await;
    let (mut ok, mut limited) = (0, 0);
    let mut remaining: Vec<u64> = Vec::new();
    for response in responses {
        let response = response.unwrap();
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(header(&response, name).is_some(), "{name} missing");
        }
        assert_eq!(header(&response, "x-ratelimit-limit"), Some("50"));
        match response.status() {
            StatusCode::OK => {
                ok += 1;
                let left = header(&response, "x-ratelimit-remaining").unwrap();
                remaining.push(left.parse().unwrap());
            }
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let retry_after: u64 = header(&response, "retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry_after), "{retry_after}");
                assert_eq!(header(&response, "x-ratelimit-remaining"), Some("0"));
                let body = json_of(response).await;
                assert_eq!(body["error"]["class"], "rate_limit");
                assert_eq!(body["error"]["limit_type"], "rpm");
                assert_eq!(body["error"]["limit"], 50);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, limited), (50, 150));
    // Each success is told what its own admission left, so no two share a number.
    remaining.sort_unstable();
    assert_eq!(remaining, (0..50).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn successful_answers_carry_the_limit_headers() {
    let server = start(App::new("Headers")).await;
    let response = post(&server, "/s/limited", json!(null)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-ratelimit-limit"), Some("50"));
    assert_eq!(header(&response, "x-ratelimit-remaining"), Some("49"));
    let reset: u64 = header(&response, "x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    // An endpoint without limits has no such headers.
    let response = post(&server, "/s/echo", json!({ "text": "x" })).await;
    assert!(header(&response, "x-ratelimit-limit").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_global_limit_applies_per_user_across_endpoints() {
    let policy = RateLimitPolicy::builder().per_user_rpm(2).build().unwrap();
    let server = start(App::new("Global").rate_limit(policy)).await;
    let ask = |user: &'static str| {
        client()
            .post(server.url("/s/echo"))
            .header("x-user-id", user)
            .json(&json!({ "text": "x" }))
            .send()
    };
    assert_eq!(ask("ann").await.unwrap().status(), StatusCode::OK);
    let second = ask("ann").await.unwrap();
    assert_eq!(header(&second, "x-ratelimit-remaining"), Some("0"));
    let third = ask("ann").await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&third, "x-ratelimit-limit"), Some("2"));
    assert_eq!(json_of(third).await["error"]["scope"], "user");
    assert_eq!(ask("bob").await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_the_endpoint_listing() {
    let server = start(App::new("Status").version("9.9.9")).await;
    let health = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        json_of(health).await,
        json!({ "status": "ok", "title": "Status", "version": "9.9.9" })
    );

    post(&server, "/s/echo", json!({ "text": "count me" })).await;
    let metrics = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert_eq!(
        header(&metrics, "content-type"),
        Some(fastagentic::metrics::CONTENT_TYPE)
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("fastagentic_requests_total{endpoint=\"/s/echo\""),
        "{text}"
    );

    let listing = json_of(client().get(server.url("/endpoints")).send().await.unwrap()).await;
    assert_eq!(listing["title"], "Status");
    let endpoints = listing["endpoints"].as_array().unwrap();
    let limited = endpoints
        .iter()
        .find(|e| e["path"] == "/s/limited")
        .unwrap();
    assert_eq!(limited["name"], "limited");
    assert_eq!(limited["description"], "Fifty requests a minute.");
    assert_eq!(limited["stream"], false);
    assert_eq!(
        limited["policies"]["rate_limit"]["requests_per_minute"], 50,
        "{limited}"
    );
    let always = endpoints
        .iter()
        .find(|e| e["path"] == "/s/stream_always")
        .unwrap();
    assert_eq!(always["stream"], true);
    assert_eq!(always["model"], "mock/streamer");
    let timeout = endpoints
        .iter()
        .find(|e| e["path"] == "/s/timeout")
        .unwrap();
    assert_eq!(timeout["policies"]["timeout"]["total_ms"], 50, "{timeout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_owns_its_metrics_prices_ledger_and_attempt_default() {
    let metrics = Arc::new(Metrics::new());
    let ledger = Arc::new(Ledger::new());
    let mock = MockProvider::new().push(MockReply::text("hi").usage(Usage::new(10_000, 2_000)));
    let route = Route::new("/own/ask", |ctx: AgentContext, (): ()| async move {
        Ok(ctx.llm().complete(Prompt::user("hi")).await?.text)
    })
    .model("mock/gpt-4o-mini")
    .retry(
        RetryPolicy::builder()
            .initial_delay(Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    let app = App::bare("Own")
        .route(route)
        .providers(Providers::new().with(mock))
        .metrics(metrics.clone())
        .ledger(ledger.clone())
        // No tables: the call is recorded as unpriced, where the shipped tables know
        // gpt-4o-mini.
        .pricing(Arc::new(Pricing::default()))
        .default_max_attempts(5);
    let server = start(app).await;
    let response = post(&server, "/own/ask", Value::Null).await;
    assert_eq!(response.status(), StatusCode::OK);

    let own = ledger.total();
    assert_eq!((own.calls, own.unpriced_calls), (1, 1));
    let global = fastagentic::spend::ledger().by_endpoint();
    assert!(
        global.iter().all(|(path, _)| path != "/own/ask"),
        "{global:?}"
    );

    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("endpoint=\"/own/ask\""), "{text}");
    // The same registry, but for the open-connections gauge: the scrape's own connection
    // was open when it rendered, and may be closed by now.
    let without_gauge = |text: &str| {
        text.lines()
            .filter(|line| !line.starts_with("fastagentic_connections_open "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_gauge(&text), without_gauge(&metrics.render()));
    assert!(!fastagentic::metrics::global().render().contains("/own/ask"));

    // The listing shows the attempt count the pipeline runs with.
    let listing = json_of(client().get(server.url("/endpoints")).send().await.unwrap()).await;
    let retry = &listing["endpoints"][0]["policies"]["retry"];
    assert_eq!(retry["max_attempts"], 5, "{listing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_agent_loop_sends_tool_calls_results_and_text() {
    #[derive(Deserialize, Serialize, schemars::JsonSchema)]
    struct Nothing {}
    let route = Route::new("/agent/stream", |ctx: AgentContext, (): ()| async move {
        let clock = Tool::new("clock", "The time in UTC", |_: Nothing| async {
            Ok::<_, AgentError>("12:00")
        })
        .map_err(|e| AgentError::new(ErrorClass::Other, e.to_string()))?;
        let answer = ctx
            .llm()
            .run("What time is it?", &Tools::new().with(clock))
            .await?;
        Ok(answer.text().to_owned())
    })
    .model("mock/agent")
    .stream(true);
    let mock = MockProvider::new().push(MockReply::tool_call("clock", json!({})));
    let app = App::bare("Agent")
        .route(route)
        .providers(Providers::new().with(mock));
    let server = start(app).await;
    let response = client()
        .post(server.url("/agent/stream"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_json_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(position("tool_call") < position("tool_result"), "{names:?}");
    assert!(position("tool_result") < position("delta"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let (_, call) = &events[position("tool_call")];
    assert_eq!(call["name"], "clock");
    let (_, result) = &events[position("tool_result")];
    assert_eq!(
        result,
        &json!({"id": call["id"], "name": "clock", "content": "12:00", "is_error": false})
    );
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Mock answer from agent: the tools said 12:00.");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_routes_are_off_when_keys_are_required_and_opened_by_the_operator_key() {
    let get = |server: &Server, path: &str, key: Option<&str>| {
        let mut request = client().get(server.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let locked = App::bare("Locked")
        .api_key("tenant-key-1", "acme")
        .require_api_key(true);
    let server = start(locked).await;
    for path in ["/endpoints", "/metrics", "/status.json"] {
        for key in [None, Some("tenant-key-1")] {
            let response = get(&server, path, key).await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path} {key:?}");
            let body = json_of(response).await;
            assert_eq!(body["error"]["class"], "not_found");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("App::operator_key"),
                "{body}"
            );
        }
    }
    // Open: they show no data (the status page reads its data from the operator routes).
    for path in ["/health", "/status", "/openapi.json", "/docs"] {
        assert_eq!(
            get(&server, path, None).await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }

    let opened = App::bare("Opened")
        .api_key("tenant-key-1", "acme")
        .require_api_key(true)
        .operator_key("ops-secret-9");
    let server = start(opened).await;
    for path in ["/endpoints", "/metrics", "/status.json"] {
        for key in [None, Some("tenant-key-1"), Some("ops-secret-")] {
            let response = get(&server, path, key).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{path} {key:?}"
            );
            assert_eq!(json_of(response).await["error"]["class"], "auth_error");
        }
        let response = get(&server, path, Some("ops-secret-9")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_keys_a_caller_cannot_dodge_per_user_limits_by_changing_headers() {
    let route = Route::new("/keyed/whoami", |ctx: AgentContext, (): ()| async move {
        Ok(json!({"user": ctx.user(), "tenant": ctx.tenant()}))
    })
    .rate_limit(RateLimitPolicy::builder().per_user_rpm(2).build().unwrap());
    let app = App::bare("Keyed")
        .route(route)
        .user_key("key-ann", "acme", "ann")
        .require_api_key(true);
    let server = start(app).await;
    let ask = |user: String| {
        client()
            .post(server.url("/keyed/whoami"))
            .bearer_auth("key-ann")
            .header("x-user-id", user)
            .header("x-tenant-id", "globex")
            .send()
    };
    let first = ask("mallory-1".into()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        json_of(first).await,
        json!({"user": "ann", "tenant": "acme"})
    );
    assert_eq!(
        ask("mallory-2".into()).await.unwrap().status(),
        StatusCode::OK
    );
    // A third user name in the header is still Ann, and Ann has used her two.
    let third = ask("mallory-3".into()).await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json_of(third).await["error"]["scope"], "user");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_cancels_its_run() {
    let server = start(App::new("Disconnect")).await;
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let body = r#"{"id": 101, "millis": 30000}"#;
    let request = format!(
        "POST /s/slow HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    eventually("the run started", || started(101)).await;
    assert!(!dropped(101));
    drop(socket);
    eventually("the run was cancelled", || dropped(101)).await;
    // It ended as a cancelled run does: counted (and `on_error` fired), not just dropped.
    eventually("the cancelled run was counted", || {
        fastagentic::metrics::global()
            .render()
            .lines()
            .any(|l| l.contains("endpoint=\"/s/slow\"") && l.contains("outcome=\"cancelled\""))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_client_that_disconnects_cancels_its_run() {
    // A stream that trickles: one word every 50 ms.
    let words = "w ".repeat(200);
    let mock =
        MockProvider::new().push(MockReply::text(words).chunk_delay(Duration::from_millis(50)));
    let server = start(App::new("Disconnect SSE").providers(Providers::new().with(mock))).await;
    let mut response = client()
        .post(server.url("/s/stream"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "go" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: delta"));
    drop(response);
    // The run is cancelled: the metrics count it as `cancelled` soon.
    eventually("the stream run was cancelled", || {
        fastagentic::metrics::global()
            .render()
            .lines()
            .any(|l| l.contains("endpoint=\"/s/stream\"") && l.contains("outcome=\"cancelled\""))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_drains_in_flight_requests() {
    static STARTUPS: AtomicU32 = AtomicU32::new(0);
    static SHUTDOWNS: AtomicU32 = AtomicU32::new(0);
    let app = App::new("Drain")
        .hook(Hook::sync(EventKind::Startup, "count_startup", |_| {
            STARTUPS.fetch_add(1, Ordering::SeqCst);
        }))
        .hook(Hook::sync(EventKind::Shutdown, "count_shutdown", |_| {
            SHUTDOWNS.fetch_add(1, Ordering::SeqCst);
        }));
    let mut server = start(app).await;
    let url = server.url("/s/slow");
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({ "id": 201, "millis": 400 }))
            .send()
            .await
            .unwrap()
    });
    eventually("the run started", || started(201)).await;
    assert_eq!(STARTUPS.load(Ordering::SeqCst), 1);
    server.shutdown();
    // New connections are refused once the listener is closed.
    let addr = server.addr;
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr).await {
            Err(_) => break,
            Ok(_) => {
                assert!(start.elapsed() < Duration::from_secs(2), "still accepting");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    assert_eq!(
        SHUTDOWNS.load(Ordering::SeqCst),
        0,
        "shut down before draining"
    );
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await, json!(201));
    let result = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(SHUTDOWNS.load(Ordering::SeqCst), 1);
    assert!(!dropped(201));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_deadline_cancels_what_is_left() {
    let mut server = start(App::new("Deadline").shutdown_timeout(Duration::from_millis(100))).await;
    let url = server.url("/s/slow");
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({ "id": 301, "millis": 30_000 }))
            .send()
            .await
            .unwrap()
    });
    eventually("the run started", || started(301)).await;
    let start = Instant::now();
    server.shutdown();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(response).await["error"]["class"], "cancelled");
    let result = tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(dropped(301));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_end_to_end_through_the_mock() {
    let mock = MockProvider::new()
        .push(MockReply::text("one two three"))
        .push(MockReply::text("four five"))
        .push(MockReply::text("six seven"));
    let server = start(App::new("Stream").providers(Providers::new().with(mock))).await;

    // Asked for with `Accept`.
    let response = client()
        .post(server.url("/s/stream"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "count" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_json_events(&response.text().await.unwrap());
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["text"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["one ", "two ", "three"]);
    assert!(
        events
            .iter()
            .any(|(name, data)| name == "usage" && data["total"].is_u64())
    );
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(data["text"], "one two three");

    // Asked for with `"stream": true` in the body.
    let response = post(&server, "/s/stream", json!({ "text": "x", "stream": true })).await;
    let events = sse_json_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().1["text"], "four five");

    // Declared `stream = true`.
    let response = post(&server, "/s/stream_always", json!({ "text": "x" })).await;
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_json_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "done");
    assert_eq!(events.last().unwrap().1["text"], "six seven");

    // Not asked for: plain JSON.
    let response = post(&server, "/s/stream", json!({ "text": "plain" })).await;
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_midway_ends_with_an_error_event() {
    let mock = MockProvider::new().push(MockReply::text("a b c d").cut_after(2));
    let server = start(App::new("Cut").providers(Providers::new().with(mock))).await;
    let response = client()
        .post(server.url("/s/stream"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "go" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_json_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["delta", "delta", "cost", "error"], "{events:?}");
    // The cut came before any usage: the call's cost is unknown, and said so.
    assert_eq!(events[2].1["cost_usd"], Value::Null);
    assert_eq!(events[2].1["models"][0]["unpriced_calls"], 1);
    // Unknown for the model too, not a `0.0` that reads as free.
    assert_eq!(
        events[2].1["models"][0]["cost_usd"],
        Value::Null,
        "{events:?}"
    );
    assert_eq!(events[2].1["models"][0]["priced_usd"], 0.0);
    let error = &events[3].1["error"];
    assert_eq!(error["class"], "stream_interrupted");
    assert_eq!(error["partial"]["text"], "a b ");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_before_its_first_event_gets_a_status() {
    let mock = MockProvider::new().push(MockReply::overloaded());
    let server = start(App::new("Early").providers(Providers::new().with(mock))).await;
    let response = client()
        .post(server.url("/s/stream"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "go" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_of(response).await["error"]["class"], "overloaded");
}

fn openai(server: &FakeServer) -> OpenAi {
    OpenAi::new("sk-test").base_url(format!("{}/v1", server.base_url()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_through_the_fake_provider_server() {
    let fake = FakeServer::start().await.unwrap();
    let server = start(App::new("Fake").providers(Providers::new().with(openai(&fake)))).await;

    // The canned streamed answer.
    let response = client()
        .post(server.url("/s/stream_openai"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_json_events(&response.text().await.unwrap());
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["text"].as_str().unwrap())
        .collect();
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(data["text"], text);
    assert!(!text.is_empty());

    // Cut after two deltas: the deltas, then an error event.
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n\
                data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" never\"}}]}\n\n";
    let cut = body
        .find("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" never")
        .unwrap();
    fake.push(Reply::sse(body).cut_after(cut));
    let response = client()
        .post(server.url("/s/stream_openai"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let events = sse_json_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["delta", "delta", "cost", "error"], "{events:?}");
    assert_eq!(events[3].1["error"]["class"], "stream_interrupted");
    assert_eq!(events[3].1["error"]["partial"]["text"], "Hello");
    assert_eq!(events[3].1["error"]["provider"], "openai");

    // Ended cleanly but without `[DONE]` or a finish reason: the same, the text kept.
    fake.push(Reply::sse(&body[..cut]));
    let response = client()
        .post(server.url("/s/stream_openai"))
        .header("accept", "text/event-stream")
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    let events = sse_json_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["delta", "delta", "cost", "error"], "{events:?}");
    assert_eq!(events[3].1["error"]["partial"]["text"], "Hello");

    // Asked for as JSON: the error body carries the partial text too.
    fake.push(Reply::sse(&body[..cut]));
    let response = post(&server, "/s/stream_openai", json!({ "text": "hello" })).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json_of(response).await;
    assert_eq!(body["error"]["partial"]["text"], "Hello", "{body}");
    fake.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_added_in_code() {
    #[derive(Clone, Deserialize)]
    struct Ping {
        n: u32,
    }
    let route = Route::new("/code/ping", |ctx: AgentContext, ping: Ping| async move {
        if ctx.attempt() == 1 {
            return Err(AgentError::new(ErrorClass::ServerError, "flaky"));
        }
        Ok(json!({ "n": ping.n + 1, "model": ctx.model(), "attempt": ctx.attempt() }))
    })
    .model("mock/code")
    .description("Pings back")
    .retry(
        RetryPolicy::builder()
            .max_attempts(2)
            .initial_delay(Duration::from_millis(1))
            .build()
            .unwrap(),
    );
    let server = start(App::bare("Code").route(route)).await;
    let response = post(&server, "/code/ping", json!({ "n": 1 })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await,
        json!({ "n": 2, "model": "mock/code", "attempt": 2 })
    );
    // A bare app serves nothing else.
    let response = post(&server, "/s/echo", json!({ "text": "x" })).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let listing = json_of(client().get(server.url("/endpoints")).send().await.unwrap()).await;
    assert_eq!(listing["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(listing["endpoints"][0]["description"], "Pings back");
}

#[test]
fn paths_are_checked_before_serving() {
    let noop = |_: AgentContext, (): ()| async { Ok::<_, AgentError>(()) };
    let duplicate = App::new("Dup").route(Route::new("/s/echo", noop));
    match duplicate.router() {
        Err(ServeError::DuplicatePath(err)) => {
            assert_eq!(err.path, "/s/echo");
            assert!(err.first.ends_with("echo"), "{err}");
        }
        other => panic!("expected a duplicate path, got {other:?}"),
    }
    let reserved = App::bare("Reserved").route(Route::new("/health", noop));
    assert!(matches!(
        reserved.router(),
        Err(ServeError::InvalidPath { .. })
    ));
    let pattern = App::bare("Pattern").route(Route::new("/a/{id}", noop));
    let err = pattern.router().unwrap_err();
    assert!(err.to_string().contains("/a/{id}"), "{err}");
    assert!(
        App::bare("Fine")
            .route(Route::new("/fine", noop))
            .router()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binding_a_busy_address_names_it() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = App::bare("Busy").serve(addr.as_str()).await.unwrap_err();
    assert!(matches!(err, ServeError::Bind { .. }));
    assert!(err.to_string().contains(&addr), "{err}");
}

/// Answers with the mock priced as gpt-4o.
#[agent_endpoint(path = "/s/priced", model = "mock/gpt-4o")]
async fn priced(ctx: AgentContext, input: Text) -> Result<Value, AgentError> {
    let reply = if ctx.is_streaming() {
        ctx.llm()
            .stream(Prompt::user(&input.text))
            .await?
            .collect()
            .await?
    } else {
        ctx.llm().complete(Prompt::user(&input.text)).await?
    };
    Ok(json!({ "text": reply.text }))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_says_what_it_cost() {
    // gpt-4o: $2.50 per million input tokens, $10 per million output tokens.
    let mock = MockProvider::new()
        .push(MockReply::text("one").usage(Usage::new(1_000, 100)))
        .push(MockReply::text("two words").usage(Usage::new(2_000, 200)));
    let server = start(App::new("Cost").providers(Providers::new().with(mock))).await;

    let response = post(&server, "/s/priced", json!({ "text": "x" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    // 1 000 × 2.5 / 1e6 + 100 × 10 / 1e6 = 0.0025 + 0.001
    assert_eq!(
        header(&response, "x-fastagentic-cost-usd").unwrap(),
        "0.0035"
    );
    assert_eq!(header(&response, "x-fastagentic-tokens").unwrap(), "1100");

    let response = post(&server, "/s/priced", json!({ "text": "x", "stream": true })).await;
    let events = sse_json_events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["cost", "done"]);
    let cost = &events[events.len() - 2].1;
    // 2 000 × 2.5 / 1e6 + 200 × 10 / 1e6 = 0.005 + 0.002
    assert_eq!(cost["cost_usd"], 0.007);
    assert_eq!(cost["usage"]["total"], 2_200);
    assert_eq!(cost["models"][0]["model"], "mock/gpt-4o");
    assert_eq!(cost["models"][0]["calls"], 1);
    assert_eq!(cost["models"][0]["cost_usd"], 0.007);
    assert_eq!(cost["models"][0]["priced_usd"], 0.007);
}

/// A body with a bug in it.
#[agent_endpoint(path = "/s/panics")]
async fn panics() -> Result<String, AgentError> {
    let list: Vec<String> = Vec::new();
    Ok(list[3].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_panics_gets_a_classified_500() {
    let server = start(App::new("Panic")).await;
    let response = client()
        .post(server.url("/s/panics"))
        .header("x-request-id", "req-panic")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(header(&response, "x-request-id").unwrap(), "req-panic");
    let body = json_of(response).await;
    assert_eq!(body["error"]["class"], "other");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/s/panics")
    );
    // The server is still up.
    let health = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// Reads until the peer closes the connection; `true` when it did (end of stream or a
/// reset) before `within` passed.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0_u8; 4096];
    let read_to_end = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

#[tokio::test(start_paused = true)]
async fn slow_idle_and_surplus_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let metrics = Arc::new(Metrics::new());
    let app = App::new("Connections")
        .metrics(metrics.clone())
        .header_read_timeout(Duration::from_secs(5))
        .max_connections(2);
    let server = start(app).await;

    // A slowloris sender: one byte of a request head, then nothing.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"P").await.unwrap();
    // A keep-alive client that made one request and then went quiet.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let body = r#"{"text": "x"}"#;
    let request = format!(
        "POST /s/echo HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    idle.write_all(request.as_bytes()).await.unwrap();
    let mut answer = [0_u8; 1024];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..read]
    );

    // Two are open, the limit: a third is closed as soon as it is accepted.
    let mut surplus = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut surplus, Duration::from_secs(1)).await);

    // Both quiet connections are closed at the header timeout (virtual time).
    assert!(
        closed_within(&mut slow, Duration::from_secs(6)).await,
        "slowloris kept"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(6)).await,
        "idle kept"
    );
    let text = metrics.render();
    let dropped = |reason: &str| {
        let series = format!("fastagentic_connections_dropped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map(str::to_owned)
    };
    assert_eq!(dropped("limit").as_deref(), Some("1"), "{text}");
    assert_eq!(dropped("header_timeout").as_deref(), Some("2"), "{text}");

    // The slots are free again: a new client is served.
    let mut next = TcpStream::connect(server.addr).await.unwrap();
    next.write_all(request.as_bytes()).await.unwrap();
    let read = next.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    assert!(text.contains("fastagentic_connections_open "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_speak_openmetrics_to_who_asks_for_it() {
    let server = start(App::new("OpenMetrics")).await;
    let scrape = |accept: &'static str| {
        client()
            .get(server.url("/metrics"))
            .header("accept", accept)
            .send()
    };
    // What Prometheus sends when it can read both.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let open = scrape(prometheus).await.unwrap();
    let content_type = header(&open, "content-type").unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(open.text().await.unwrap().ends_with("# EOF\n"));
    let classic = scrape("text/plain").await.unwrap();
    let content_type = header(&classic, "content-type").unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(!classic.text().await.unwrap().contains("# EOF"));
    let refused = scrape("application/openmetrics-text;q=0, text/plain")
        .await
        .unwrap();
    assert!(
        header(&refused, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
struct Order {
    /// The product.
    sku: String,
    quantity: u32,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Receipt {
    total_cents: u64,
}

/// Prices an order.
///
/// Typed input and output: documented from their schemas.
#[agent_endpoint(path = "/s/typed", rate_limit(requests_per_minute = 100))]
async fn typed(input: Order) -> Result<Receipt, AgentError> {
    let cents = if input.sku == "tea" { 250 } else { 100 };
    Ok(Receipt {
        total_cents: u64::from(input.quantity) * cents,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_json_documents_every_endpoint_from_its_rust_types() {
    let server = start(
        App::new("Documented")
            .version("1.2.3")
            .api_key("k-documented-1", "acme"),
    )
    .await;
    let response = client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Documented");
    assert_eq!(doc["info"]["version"], "1.2.3");

    // A typed endpoint: its input and output schemas, from the derives, written once
    // under components; the statuses its policies can answer.
    let typed = &doc["paths"]["/s/typed"]["post"];
    assert_eq!(typed["operationId"], "typed");
    assert_eq!(typed["summary"], "Prices an order.");
    let input = &typed["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(input["$ref"], "#/components/schemas/Order", "{typed}");
    let order = &doc["components"]["schemas"]["Order"];
    assert_eq!(
        order["properties"]["quantity"]["type"], "integer",
        "{order}"
    );
    assert_eq!(order["properties"]["sku"]["description"], "The product.");
    assert_eq!(order["required"], json!(["sku", "quantity"]));
    let output = &typed["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(output["$ref"], "#/components/schemas/Receipt");
    assert!(doc["components"]["schemas"]["Receipt"]["properties"]["total_cents"].is_object());
    for status in [
        "400", "401", "413", "422", "429", "500", "502", "503", "504",
    ] {
        let answer = &typed["responses"][status];
        assert_eq!(
            answer["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/fastagentic.Error",
            "{status}: {answer}"
        );
    }
    assert!(typed["responses"]["429"]["headers"]["Retry-After"].is_object());
    let classes = &doc["components"]["schemas"]["fastagentic.Error"]["properties"]["error"]["properties"]
        ["class"]["enum"];
    assert!(
        classes.as_array().unwrap().contains(&json!("circuit_open")),
        "{classes}"
    );

    // Types without JsonSchema are documented as any JSON, saying how to do better; an
    // endpoint without a rate limit does not promise a 429.
    let echo = &doc["paths"]["/s/echo"]["post"];
    let any = &echo["requestBody"]["content"]["application/json"]["schema"]["description"];
    assert!(any.as_str().unwrap().contains("derive it"), "{echo}");
    assert!(echo["responses"]["429"].is_null(), "{echo}");
    // A streaming endpoint has its event-stream variant.
    let stream = &doc["paths"]["/s/stream_always"]["post"]["responses"]["200"]["content"];
    let event = &stream["text/event-stream"]["schema"];
    assert_eq!(event["required"], json!(["event", "data"]), "{stream}");
    assert!(
        event["properties"]["event"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("done"))
    );
    // Keys are configured: the document says how to present one, and that anonymous
    // calls are served too (keys are not required here).
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"].as_array().unwrap().len(), 3);
    assert!(doc["paths"]["/health"]["get"].is_object());

    // The endpoint answers as documented.
    let response = client()
        .post(server.url("/s/typed"))
        .json(&json!({ "sku": "tea", "quantity": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["total_cents"], 750);
}
