//! What the OpenAI-compatible front door costs per request, against the `/chat` path it
//! is meant to be no heavier than (the goal: at most 5 % more).
//!
//! - `chat_endpoint`: `POST /chat`, the quickstart's endpoint: `{"prompt"}` in, one
//!   `ctx.llm().complete(..)` on the mock model, `{"text", "model", "provider",
//!   "finish_reason", "usage", "cost_usd"}` out, behind a retry policy.
//! - `front_door`: `POST /v1/chat/completions` naming the same mock model, with the same
//!   retry policy: OpenAI's request read into a prompt, the call, a `chat.completion` out.
//!
//! Both run in one app, through `tower::ServiceExt::oneshot` (no sockets), one request
//! after another. Criterion reports each; the binary also prints the best of several
//! interleaved rounds and the ratio front door / endpoint, which is steadier on a shared
//! machine.
//!
//! Run with `cargo bench -p fastagentic --bench gateway`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::llm::{MockProvider, Providers, Usage};
use fastagentic::prelude::*;
use fastagentic::server::{Gateway, Route};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const MODEL: &str = "mock/gpt-4o-mini";

#[derive(Clone, Deserialize)]
struct ChatRequest {
    prompt: String,
}

#[derive(Serialize)]
struct ChatResponse {
    text: String,
    model: String,
    provider: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    cost_usd: Option<f64>,
}

fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .build()
        .expect("a valid policy")
}

fn app() -> Router {
    let chat = Route::new(
        "/chat",
        |ctx: AgentContext, request: ChatRequest| async move {
            let reply = ctx.llm().complete(Prompt::user(&request.prompt)).await?;
            Ok::<_, AgentError>(ChatResponse {
                finish_reason: (reply.finish_reason.as_ref()).map(|r| r.as_str().to_owned()),
                cost_usd: reply.cost_usd.and_then(|c| c.try_into().ok()),
                provider: reply.provider.to_string(),
                text: reply.text,
                model: reply.model,
                usage: reply.usage,
            })
        },
    )
    .model(MODEL)
    .retry(retry());
    App::bare("bench")
        .route(chat)
        .providers(Providers::new().with(MockProvider::new()))
        .openai_compatible(Gateway::new().model(MODEL).retry(retry()))
        .router()
        .expect("the app builds")
}

#[derive(Clone, Copy)]
enum Way {
    Endpoint,
    FrontDoor,
}

const WAYS: [(&str, Way); 2] = [
    ("chat_endpoint", Way::Endpoint),
    ("front_door", Way::FrontDoor),
];

impl Way {
    fn request(self) -> (&'static str, &'static str) {
        match self {
            Way::Endpoint => ("/chat", r#"{"prompt":"What is a circuit breaker?"}"#),
            Way::FrontDoor => (
                "/v1/chat/completions",
                r#"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"What is a circuit breaker?"}]}"#,
            ),
        }
    }
}

fn run(rt: &Runtime, router: &Router, way: Way, iters: u64) -> Duration {
    let (path, body) = way.request();
    let body = Bytes::from_static(body.as_bytes());
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let request = Request::post(path)
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

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
}

fn gateway_in_process(c: &mut Criterion) {
    let router = app();
    let rt = runtime();
    let mut group = c.benchmark_group("gateway_in_process");
    group.throughput(Throughput::Elements(1));
    for (name, way) in WAYS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| run(&rt, &router, way, iters))
        });
    }
    group.finish();
}

const ROUNDS: u32 = 9;
const PER_ROUND: u64 = 20_000;

/// Each way's best time per request over interleaved rounds, and the ratio.
fn interleaved(_c: &mut Criterion) {
    let router = app();
    let rt = runtime();
    for (_, way) in WAYS {
        run(&rt, &router, way, PER_ROUND);
    }
    let mut best = [Duration::MAX; WAYS.len()];
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        let times = WAYS.map(|(_, way)| run(&rt, &router, way, PER_ROUND));
        for (best, time) in best.iter_mut().zip(times) {
            *best = (*best).min(time);
        }
        ratios.push(times[1].as_secs_f64() / times[0].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    // Far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let per = |d: Duration| d.as_secs_f64() * 1e6 / PER_ROUND as f64;
    println!(
        "gateway_in_process: best of {ROUNDS} interleaved rounds of {PER_ROUND}: \
         chat_endpoint {:.2} us, front_door {:.2} us per request \
         (front door / endpoint x{:.3}; median of rounds x{:.3})",
        per(best[0]),
        per(best[1]),
        best[1].as_secs_f64() / best[0].as_secs_f64(),
        ratios[ratios.len() / 2],
    );
}

criterion_group!(benches, interleaved, gateway_in_process);
criterion_main!(benches);
