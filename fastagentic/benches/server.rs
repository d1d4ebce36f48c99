//! Requests per second through [`App`] against a bare axum handler, side by side.
//!
//! - `app_all_policies`: `POST /bench/policies`, an `#[agent_endpoint]` with all five
//!   policies on (rate limit with global, token and per-user limits, total and per-call
//!   timeouts, a circuit breaker, retry with its budget, a two-model fallback chain), whose
//!   body calls the mock provider (`ctx.llm().complete(..)`, instant reply, priced and
//!   recorded in the spend ledger like any call), served by an [`App`]. The limits are
//!   `u32::MAX` per minute, so nothing is refused.
//! - `bare_axum`: `POST /bench/bare`, a plain axum handler that decodes the same input
//!   and answers the same JSON (checked byte for byte at start-up).
//!
//! Both get the same request (`{"question": "..."}` with an `X-User-Id`), and are measured
//! two ways:
//!
//! - `server_http`: over real loopback HTTP/1.1 with a keep-alive reqwest client,
//!   [`IN_FLIGHT`] requests in flight. The servers run on their own multi-thread runtime,
//!   the client on a current-thread one, on the same machine.
//! - `server_in_process`: `tower::ServiceExt::oneshot` on the routers, one request after
//!   another in one task (no sockets, no HTTP parsing): the cost of the framework alone.
//!
//! Criterion reports each as elements (requests) per second. On a shared machine its
//! medians drift between runs, so the binary also prints the best of several interleaved
//! rounds for each way and the ratio app / bare (`requests per second, best of N
//! interleaved rounds`).
//!
//! Run with `cargo bench -p fastagentic --bench server`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::llm::{MockProvider, Providers};
use fastagentic::prelude::*;
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Requests in flight at once over HTTP.
const IN_FLIGHT: u64 = 32;

/// The input of both handlers.
#[derive(Clone, Deserialize)]
struct Question {
    question: String,
}

/// The output of both handlers.
#[derive(Serialize)]
struct Answer {
    text: String,
}

/// The endpoint under test: every policy on, none of them tripping.
#[agent_endpoint(
    path = "/bench/policies",
    rate_limit(requests_per_minute = 4_294_967_295, tokens_per_minute = 4_294_967_295,
               per_user_rpm = 4_294_967_295, token_estimate = 1),
    timeout(total_ms = 120_000, llm_call_ms = 60_000),
    circuit_breaker(),
    retry(),
    fallback(primary = "mock/gpt-4o", then("mock/gpt-4o-mini", on = ["rate_limit"])),
)]
async fn with_policies(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    let reply = ctx.llm().complete(Prompt::user(&q.question)).await?;
    Ok(Answer { text: reply.text })
}

/// The same policies, with a body that answers at once without calling a provider.
#[agent_endpoint(
    path = "/bench/policies-fixed",
    rate_limit(requests_per_minute = 4_294_967_295, tokens_per_minute = 4_294_967_295,
               per_user_rpm = 4_294_967_295, token_estimate = 1),
    timeout(total_ms = 120_000, llm_call_ms = 60_000),
    circuit_breaker(),
    retry(),
    fallback(primary = "mock/gpt-4o", then("mock/gpt-4o-mini", on = ["rate_limit"])),
)]
async fn with_policies_fixed(q: Question) -> Result<Answer, AgentError> {
    Ok(answer(&q))
}

/// What the mock answers.
fn answer(q: &Question) -> Answer {
    Answer {
        text: format!("Mock answer from gpt-4o: you asked \"{}\".", q.question),
    }
}

/// The baseline: the same input, the same answer, no pipeline.
async fn bare(axum::Json(q): axum::Json<Question>) -> axum::Json<Answer> {
    axum::Json(answer(&q))
}

/// The request body both get.
const BODY: &str = r#"{"question":"What is a circuit breaker?"}"#;

/// The two ways, in the order they are reported.
#[derive(Clone, Copy)]
enum Way {
    Bare,
    App,
    AppFixed,
}

const WAYS: [(&str, Way); 3] = [
    ("bare_axum", Way::Bare),
    ("app_all_policies", Way::App),
    ("app_all_policies_fixed_json", Way::AppFixed),
];

impl Way {
    fn path(self) -> &'static str {
        match self {
            Way::Bare => "/bench/bare",
            Way::App => "/bench/policies",
            Way::AppFixed => "/bench/policies-fixed",
        }
    }
}

/// The two routers.
struct Routers {
    app: Router,
    bare: Router,
}

impl Routers {
    fn new() -> Self {
        let endpoint =
            fastagentic::endpoint::find("/bench/policies").expect("the endpoint is registered");
        let fixed = fastagentic::endpoint::find("/bench/policies-fixed")
            .expect("the endpoint is registered");
        let app = App::bare("bench")
            .endpoint(endpoint)
            .endpoint(fixed)
            .providers(Providers::new().with(MockProvider::new()))
            .router()
            .expect("the app builds");
        let bare = Router::new().route("/bench/bare", post(bare));
        Routers { app, bare }
    }

    fn get(&self, way: Way) -> &Router {
        match way {
            Way::Bare => &self.bare,
            Way::App | Way::AppFixed => &self.app,
        }
    }
}

/// Both routers served on loopback, and a keep-alive client.
struct Http {
    /// The servers' runtime; kept alive for as long as they serve.
    _servers: Runtime,
    client_rt: Runtime,
    client: reqwest::Client,
    /// The URL of each way, indexed by `Way as usize`.
    urls: Vec<String>,
}

impl Http {
    fn start(routers: &Routers) -> Self {
        let servers = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("the server runtime starts");
        let serve = |router: Router| {
            servers.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("loopback binds");
                let address = listener.local_addr().expect("a local address");
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .await
                        .expect("the server runs");
                });
                address
            })
        };
        let app = serve(routers.app.clone());
        let bare = serve(routers.bare.clone());
        let client_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the client runtime starts");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::try_from(IN_FLIGHT).expect("small"))
            .build()
            .expect("the client builds");
        let http = Http {
            _servers: servers,
            client_rt,
            client,
            urls: WAYS
                .iter()
                .map(|(_, way)| {
                    let address = match way {
                        Way::Bare => bare,
                        Way::App | Way::AppFixed => app,
                    };
                    format!("http://{address}{}", way.path())
                })
                .collect(),
        };
        let bare_answer = http.client_rt.block_on(http.request(Way::Bare));
        for way in [Way::App, Way::AppFixed] {
            assert_eq!(
                http.client_rt.block_on(http.request(way)),
                bare_answer,
                "every handler must answer the same JSON"
            );
        }
        http
    }

    fn url(&self, way: Way) -> &str {
        &self.urls[way as usize]
    }

    /// One request; panics unless it is answered 200. Returns the body.
    async fn request(&self, way: Way) -> Bytes {
        let response = self
            .client
            .post(self.url(way))
            .header("content-type", "application/json")
            .header("x-user-id", "bench-user")
            .body(BODY)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200, "{}", self.url(way));
        response.bytes().await.expect("the body arrives")
    }

    /// `iters` requests, [`IN_FLIGHT`] at a time; returns the time they took.
    fn run(self: &Arc<Self>, way: Way, iters: u64) -> Duration {
        self.client_rt.block_on(async {
            let next = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut lanes = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT.min(iters) {
                let (http, next) = (self.clone(), next.clone());
                lanes.spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < iters {
                        black_box(http.request(way).await);
                    }
                });
            }
            while let Some(lane) = lanes.join_next().await {
                lane.expect("a lane finished");
            }
            start.elapsed()
        })
    }
}

/// `iters` requests through `router.oneshot`, one after another in one task.
fn in_process(rt: &Runtime, routers: &Routers, way: Way, iters: u64) -> Duration {
    let router = routers.get(way);
    let body = Bytes::from_static(BODY.as_bytes());
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let request = Request::post(way.path())
                .header("content-type", "application/json")
                .header("x-user-id", "bench-user")
                .body(Body::from(body.clone()))
                .expect("a valid request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            black_box(
                axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .expect("the body"),
            );
        }
        start.elapsed()
    })
}

/// The runtime of the in-process measurement: multi-thread like a server's (the
/// pipeline may spawn), driven from `block_on`.
fn in_process_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
}

/// Criterion's view: requests per second over HTTP.
fn server_http(c: &mut Criterion) {
    let routers = Routers::new();
    let http = Arc::new(Http::start(&routers));
    let mut group = c.benchmark_group("server_http");
    group.throughput(Throughput::Elements(1));
    for (name, way) in WAYS {
        group.bench_function(name, |b| b.iter_custom(|iters| http.run(way, iters)));
    }
    group.finish();
}

/// Criterion's view: requests per second through `oneshot`.
fn server_in_process(c: &mut Criterion) {
    let routers = Routers::new();
    let rt = in_process_runtime();
    let mut group = c.benchmark_group("server_in_process");
    group.throughput(Throughput::Elements(1));
    for (name, way) in WAYS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| in_process(&rt, &routers, way, iters));
        });
    }
    group.finish();
}

/// Rounds of the interleaved measurement, and requests per round and way.
const ROUNDS: u32 = 9;
const HTTP_PER_ROUND: u64 = 4_000;
const IN_PROCESS_PER_ROUND: u64 = 20_000;

/// Requests per second from a count and a time.
fn per_second(requests: u64, time: Duration) -> f64 {
    // Far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let requests = requests as f64;
    requests / time.as_secs_f64()
}

/// Prints each way's best requests per second over interleaved rounds (each way runs
/// once per round, so a burst of load elsewhere slows all of them alike), its ratio to
/// the bare handler's best, and the median of the per-round ratios.
fn report(label: &str, requests: u64, mut round: impl FnMut(Way) -> Duration) {
    let mut best = [0.0_f64; WAYS.len()];
    let mut ratios: [Vec<f64>; WAYS.len()] = Default::default();
    for _ in 0..ROUNDS {
        let mut this_round = [0.0_f64; WAYS.len()];
        for ((_, way), rps) in WAYS.iter().zip(&mut this_round) {
            *rps = per_second(requests, round(*way));
        }
        for ((best, rps), ratios) in best.iter_mut().zip(this_round).zip(&mut ratios) {
            *best = best.max(rps);
            ratios.push(rps / this_round[0]);
        }
    }
    let lines: Vec<String> = WAYS
        .iter()
        .zip(best)
        .zip(&mut ratios)
        .map(|(((name, _), rps), ratios)| {
            ratios.sort_by(f64::total_cmp);
            format!(
                "{name} {rps:.0} (x{:.3} of bare; median of rounds x{:.3})",
                rps / best[0],
                ratios[ratios.len() / 2]
            )
        })
        .collect();
    println!(
        "{label}: requests per second, best of {ROUNDS} interleaved rounds of {requests}: {}",
        lines.join(", ")
    );
}

fn interleaved_http(_c: &mut Criterion) {
    let routers = Routers::new();
    let http = Arc::new(Http::start(&routers));
    // Warm up the connections and the pipeline.
    for (_, way) in WAYS {
        http.run(way, HTTP_PER_ROUND);
    }
    report("server_http", HTTP_PER_ROUND, |way| {
        http.run(way, HTTP_PER_ROUND)
    });
}

fn interleaved_in_process(_c: &mut Criterion) {
    let routers = Routers::new();
    let rt = in_process_runtime();
    for (_, way) in WAYS {
        in_process(&rt, &routers, way, IN_PROCESS_PER_ROUND);
    }
    report("server_in_process", IN_PROCESS_PER_ROUND, |way| {
        in_process(&rt, &routers, way, IN_PROCESS_PER_ROUND)
    });
}

criterion_group!(
    benches,
    interleaved_http,
    interleaved_in_process,
    server_http,
    server_in_process
);
criterion_main!(benches);
