//! The status page in a real headless Chromium: a breaker opens and closes on the page;
//! and the API reference at `/docs` renders the endpoints.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it and sets
//! `FASTAGENTIC_REQUIRE_CHROMIUM=1`, so there a missing browser fails the test; elsewhere
//! it is skipped, saying why). Screenshots of the page are kept in `CARGO_TARGET_TMPDIR`.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastagentic::prelude::*;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Whether the endpoint's dependency is down.
static DOWN: AtomicBool = AtomicBool::new(false);

/// Fails like a provider outage while [`DOWN`] is set.
#[agent_endpoint(
    path = "/sp/ask",
    model = "mock/flaky",
    circuit_breaker(failure_threshold = 2, reset_timeout_ms = 300, success_threshold = 1),
    rate_limit(requests_per_minute = 100)
)]
async fn ask() -> Result<String, AgentError> {
    if DOWN.load(Ordering::SeqCst) {
        return Err(AgentError::new(ErrorClass::ServerError, "down").with_provider("mock"));
    }
    Ok("fine".into())
}

/// The browser, or `None` (saying why) when it is missing and not required.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("FASTAGENTIC_REQUIRE_CHROMIUM").is_none(),
        "FASTAGENTIC_REQUIRE_CHROMIUM is set but /usr/bin/chromium (or $CHROMIUM) is missing"
    );
    eprintln!("skipped: no headless Chromium here (install Debian's `chromium`, or set CHROMIUM)");
    None
}

/// Serves every endpoint on a free loopback port: its base URL, a stop switch, the task.
async fn serve() -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), fastagentic::ServeError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(App::new("Status page").version("9.9").serve_with(
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    (base, stop, serving)
}

/// Runs headless Chromium on `url` with `action` (`--dump-dom`, `--screenshot=...`),
/// letting the page's own refreshes run for a few seconds of virtual time.
fn browse(chromium: &Path, url: &str, action: &str) -> String {
    // One profile per browser: Chromium refuses a profile another instance holds.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let profile =
        std::env::temp_dir().join(format!("fastagentic-chromium-{}-{run}", std::process::id()));
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,900",
            "--virtual-time-budget=2500",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(action)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn dom(chromium: &Path, url: &str) -> String {
    let (chromium, url) = (chromium.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || browse(&chromium, &url, "--dump-dom"))
        .await
        .unwrap()
}

async fn screenshot(chromium: &Path, url: &str, name: &str) {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&file);
    let (chromium, url) = (chromium.to_owned(), url.to_owned());
    let action = format!("--screenshot={}", file.display());
    tokio::task::spawn_blocking(move || browse(&chromium, &url, &action))
        .await
        .unwrap();
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "no screenshot at {}", file.display());
    eprintln!("screenshot: {}", file.display());
}

/// The text of `html` between `start` and the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let to = html[from..].find(end).map_or(html.len(), |i| from + i);
    &html[from..to]
}

async fn ask_once(client: &reqwest::Client, base: &str) -> u16 {
    let response = client.post(format!("{base}/sp/ask")).send().await.unwrap();
    response.status().as_u16()
}

async fn breaker_state(client: &reqwest::Client, base: &str) -> Value {
    let status: Value = client
        .get(format!("{base}/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["endpoints"][0]["breakers"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_a_breaker_open_then_closed() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (base, stop, serving) = serve().await;
    let client = reqwest::Client::new();
    let page = format!("{base}/status");

    // An outage: two failures open the breaker.
    DOWN.store(true, Ordering::SeqCst);
    assert_eq!(ask_once(&client, &base).await, 502);
    assert_eq!(ask_once(&client, &base).await, 502);
    let open = dom(&chromium, &page).await;
    assert!(open.contains("Status page 9.9"), "{open}");
    assert!(
        open.contains(r#"data-state="open" data-model="mock/flaky""#),
        "the page does not show the breaker open:\n{open}"
    );
    // The limit's row: the endpoint, what is left (refilling as time passes), 100 a minute.
    let limits = between(&open, r#"<tbody id="limits">"#, "</tbody>");
    assert!(limits.starts_with("<tr><td>/sp/ask</td><td>"), "{limits}");
    assert!(limits.contains("</td><td>100</td>"), "{limits}");
    assert!(open.contains(r#"<b id="t-errors">2</b>"#), "{open}");
    screenshot(&chromium, &page, "status-page-open.png").await;

    // Recovery: once the reset timeout has passed, one success closes it.
    DOWN.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while breaker_state(&client, &base).await["retry_after_ms"]
        .as_u64()
        .unwrap_or(0)
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the breaker never reached its reset time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ask_once(&client, &base).await, 200);
    let closed = dom(&chromium, &page).await;
    assert!(
        closed.contains(r#"data-state="closed" data-model="mock/flaky""#),
        "the page does not show the breaker closed again:\n{closed}"
    );
    screenshot(&chromium, &page, "status-page-closed.png").await;

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_endpoint_without_a_network() {
    let Some(chromium) = chromium() else {
        return;
    };
    let (base, stop, serving) = serve().await;
    let page = dom(&chromium, &format!("{base}/docs")).await;
    // Rendered by Redoc from /openapi.json: the title, the operation's summary and path.
    assert!(page.contains("Status page"), "{page}");
    assert!(page.contains("Fails like a provider outage"), "{page}");
    assert!(page.contains("/sp/ask"), "{page}");
    assert!(
        !page.contains("Something went wrong"),
        "Redoc could not render the document:\n{page}"
    );
    screenshot(&chromium, &format!("{base}/docs"), "docs-page.png").await;

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
