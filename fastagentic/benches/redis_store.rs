//! What sharing limits through Redis costs per admission, on loopback.
//!
//! - `redis/ping`: one `PING` through the same client: the round trip, the floor;
//! - `redis/admit_shared`: `RateLimiter::admit` on a limiter whose cells are in Redis
//!   (`requests_per_minute` and `per_user_rpm`: two cells, one `EVALSHA`);
//! - `redis/admit_in_memory`: the same limiter without a store, same runtime, to show
//!   the in-memory path is unchanged.
//!
//! After criterion's groups it prints p50/p99/p999 of 20,000 sequential shared
//! admissions, since the goal is a p99.
//!
//! Starts its own `redis-server` (Debian's package) on a free port; without one it says
//! so and measures nothing. Run with
//! `cargo bench -p fastagentic --features redis --bench redis_store`.

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fastagentic::reliability::{Identity, LimitScope, RateLimitPolicy, RateLimiter};
use fastagentic::state::RedisStore;

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

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
