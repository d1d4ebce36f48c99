//! What sharing limits through Redis costs per admission, on loopback.
//!
//! - `redis/ping`: one `PING` through the same client: the round trip, the floor;
//! - `redis/admit_shared`: `RateLimiter::admit` on a limiter whose cells are in Redis
//!   (`requests_per_minute` and `per_user_rpm`: two cells, one `EVALSHA`);
//! - `redis/admit_in_memory`: the same limiter without a store, same runtime, to show
//!   the in-memory path is unchanged.
//!
//! After criterion's groups it prints p50/p99/p999 of 20,000 sequential shared
//! admissions, since the issue's goal is a p99.
//!
//! Then the same over HTTP with two replicas: two [`App`]s on two loopback ports serve
//! `POST /bench/limited` (a per-endpoint and a per-user limit, a circuit breaker, a fixed
//! answer), and a keep-alive client sends every other request to each. The two replicas
//! either share their limits through one Redis (`two_replicas_redis`) or keep them in
//! their own memory (`two_replicas_in_memory`), and are measured in interleaved rounds:
//!
//! - one request at a time: p50 and p99 latency from send, and what Redis adds;
//! - [`IN_FLIGHT`] requests at a time: requests per second, and the ratio.
//!
//! Starts its own `redis-server` (Debian's package) on a free port; without one it says
//! so and measures nothing. Run with
//! `cargo bench -p fastagentic --features redis --bench redis_store`.

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fastagentic::prelude::*;
use fastagentic::reliability::{Identity, LimitScope, RateLimitPolicy, RateLimiter};
use fastagentic::state::RedisStore;
use tokio::runtime::Runtime;

/// Requests in flight at once in the throughput rounds.
const IN_FLIGHT: u64 = 32;
/// Interleaved rounds, and requests per round and way.
const ROUNDS: usize = 7;
const SEQUENTIAL_PER_ROUND: usize = 2_000;
const CONCURRENT_PER_ROUND: u64 = 8_000;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server() -> Option<(Server, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((server, format!("redis://127.0.0.1:{port}")))
}

fn limiter() -> RateLimiter {
    // Far above what a run takes: nothing is refused.
    let policy = RateLimitPolicy::builder()
        .requests_per_minute(u32::MAX)
        .per_user_rpm(u32::MAX)
        .build()
        .expect("valid policy");
    RateLimiter::new(&policy, LimitScope::Endpoint)
}

fn admission(c: &mut Criterion) {
    let Some((_server, url)) = redis_server() else {
        eprintln!("skipped: no redis-server here (install Debian's redis-server)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let store = Arc::new(RedisStore::builder(&url).build().expect("a store"));
    let shared = runtime.block_on(async { limiter().with_store(store, "/bench") });
    let local = limiter();
    let user: Arc<str> = "bench-user".into();
    let identity = Identity {
        user: Some(&user),
        tenant: None,
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(60);
    let client = redis::Client::open(url.as_str()).expect("a client");
    let mut ping = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("a connection");

    let mut group = c.benchmark_group("redis");
    group.bench_function("ping", |b| {
        b.iter(|| {
            let pong: String = runtime
                .block_on(redis::cmd("PING").query_async(&mut ping))
                .expect("PONG");
            black_box(pong)
        })
    });
    group.bench_function("admit_shared", |b| {
        b.iter(|| {
            let admission = runtime.block_on(shared.admit(identity, None, deadline()));
            black_box(admission.expect("admitted"))
        })
    });
    group.bench_function("admit_in_memory", |b| {
        b.iter(|| {
            let admission = runtime.block_on(local.admit(identity, None, deadline()));
            black_box(admission.expect("admitted"))
        })
    });
    group.finish();

    let mut latencies: Vec<Duration> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            let admission = runtime.block_on(shared.admit(identity, None, deadline()));
            drop(black_box(admission.expect("admitted")));
            started.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "redis/admit_shared over {} admissions: p50 {:?}, p99 {:?}, p999 {:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(0.999)
    );
}

/// The endpoint both pairs of replicas serve: limits that never refuse, a breaker that
/// stays closed, a fixed answer, so what differs is where the limits live.
#[agent_endpoint(
    path = "/bench/limited",
    rate_limit(requests_per_minute = 4_294_967_295, per_user_rpm = 4_294_967_295),
    circuit_breaker()
)]
async fn limited(q: Question) -> Result<Answer, AgentError> {
    Ok(Answer {
        text: format!("you asked {}", q.question),
    })
}

#[derive(Clone, Deserialize)]
struct Question {
    question: String,
}

#[derive(Serialize)]
struct Answer {
    text: String,
}

/// Two replicas of one app, how they keep their limits, and a client for them.
struct Pair {
    urls: [String; 2],
}

/// Serves two replicas on loopback in `servers`; `store` makes one per replica (each
/// replica has its own connection, as two processes would) or `None` keeps limits local.
fn pair(servers: &Runtime, store: Option<&dyn Fn() -> RedisStore>) -> Pair {
    let endpoint = fastagentic::endpoint::find("/bench/limited").expect("registered");
    let serve = || {
        let mut app = App::bare("replica").endpoint(endpoint);
        if let Some(store) = store {
            app = app.state_store(store());
        }
        let router = app.router().expect("the app builds");
        servers.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("loopback binds");
            let address = listener.local_addr().expect("an address");
            tokio::spawn(async move { axum::serve(listener, router).await.expect("serves") });
            format!("http://{address}/bench/limited")
        })
    };
    Pair {
        urls: [serve(), serve()],
    }
}

/// The keep-alive client and its runtime.
struct Client {
    runtime: Runtime,
    http: reqwest::Client,
}

impl Client {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::try_from(IN_FLIGHT).expect("small"))
            .build()
            .expect("a client");
        Client { runtime, http }
    }

    async fn request(&self, url: &str) {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-user-id", "bench-user")
            .body(r#"{"question":"Is the limit shared?"}"#)
            .send()
            .await
            .expect("the replica answers");
        assert_eq!(response.status(), 200, "{url}");
        black_box(response.bytes().await.expect("a body"));
    }

    /// `count` requests one after another, alternating replicas; each one's latency.
    fn sequential(&self, pair: &Pair, count: usize) -> Vec<Duration> {
        self.runtime.block_on(async {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let started = Instant::now();
                self.request(&pair.urls[i % 2]).await;
                latencies.push(started.elapsed());
            }
            latencies
        })
    }

    /// `count` requests, [`IN_FLIGHT`] at a time, alternating replicas; the time taken.
    fn concurrent(self: &Arc<Self>, pair: &Arc<Pair>, count: u64) -> Duration {
        self.runtime.block_on(async {
            let next = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut lanes = tokio::task::JoinSet::new();
            for _ in 0..IN_FLIGHT {
                let (client, pair, next) = (self.clone(), pair.clone(), next.clone());
                lanes.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        client.request(&pair.urls[(i % 2) as usize]).await;
                    }
                });
            }
            while let Some(lane) = lanes.join_next().await {
                lane.expect("a lane finished");
            }
            started.elapsed()
        })
    }
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    // An index into a few thousand samples: exact as f64, truncation intended.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let index = (sorted.len() as f64 * q) as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn per_second(count: u64, time: Duration) -> f64 {
    // Far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let count = count as f64;
    count / time.as_secs_f64()
}

fn two_replicas(c: &mut Criterion) {
    let Some((_server, url)) = redis_server() else {
        eprintln!("skipped: no redis-server here (install Debian's redis-server)");
        return;
    };
    let servers = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let shared_store = || {
        RedisStore::builder(url.as_str())
            .prefix("bench-two-replicas")
            .build()
            .expect("a store")
    };
    let ways = [
        ("two_replicas_in_memory", Arc::new(pair(&servers, None))),
        (
            "two_replicas_redis",
            Arc::new(pair(&servers, Some(&shared_store))),
        ),
    ];
    let client = Arc::new(Client::new());
    for (_, pair) in &ways {
        client.concurrent(pair, CONCURRENT_PER_ROUND);
    }

    let mut group = c.benchmark_group("redis_http");
    group.throughput(criterion::Throughput::Elements(1));
    for (name, pair) in &ways {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| client.concurrent(pair, iters));
        });
    }
    group.finish();

    let mut latencies: [Vec<Duration>; 2] = Default::default();
    let mut best_rps = [0.0_f64; 2];
    for _ in 0..ROUNDS {
        for (i, (_, pair)) in ways.iter().enumerate() {
            latencies[i].extend(client.sequential(pair, SEQUENTIAL_PER_ROUND));
            let rps = per_second(
                CONCURRENT_PER_ROUND,
                client.concurrent(pair, CONCURRENT_PER_ROUND),
            );
            best_rps[i] = best_rps[i].max(rps);
        }
    }
    for l in &mut latencies {
        l.sort_unstable();
    }
    for (i, (name, _)) in ways.iter().enumerate() {
        let (p50, p99) = (quantile(&latencies[i], 0.50), quantile(&latencies[i], 0.99));
        println!(
            "{name}: one at a time p50 {p50:?}, p99 {p99:?}; {IN_FLIGHT} in flight {:.0} req/s \
             (best of {ROUNDS} interleaved rounds)",
            best_rps[i]
        );
    }
    // Signed: on a busy machine the in-memory p99 can come out the slower one.
    let added_us = |q| {
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        micros(quantile(&latencies[1], q)) - micros(quantile(&latencies[0], q))
    };
    println!(
        "redis adds p50 {:+.1} µs, p99 {:+.1} µs per request; throughput x{:.3} of in-memory",
        added_us(0.50),
        added_us(0.99),
        best_rps[1] / best_rps[0]
    );
    print_script_cost(&url);
}

/// What Redis itself spent per script call (`INFO commandstats`): on a small machine the
/// server's one thread shares the cores with the replicas and the client, so this is
/// what caps shared throughput.
fn print_script_cost(url: &str) {
    let stats: redis::RedisResult<String> = redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .and_then(|mut connection| {
            redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut connection)
        });
    match stats {
        Ok(stats) => stats
            .lines()
            .filter(|line| line.starts_with("cmdstat_evalsha"))
            .for_each(|line| println!("redis {line}")),
        Err(err) => eprintln!("no commandstats: {err}"),
    }
}

criterion_group!(benches, admission, two_replicas);
criterion_main!(benches);
