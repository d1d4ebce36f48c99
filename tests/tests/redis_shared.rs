//! Rate limits and circuit breakers shared by two replicas through a real Redis.
//!
//! Each test starts its own `redis-server` (Debian's package) on a free loopback port,
//! without persistence, and stops it. `.ci/run` installs it and sets
//! `FASTAGENTIC_REQUIRE_REDIS=1`, so there a missing server fails the tests; elsewhere they
//! are skipped, saying why.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fastagentic::prelude::*;
use fastagentic::state::{FailMode, RedisStore};
use futures_util::future::join_all;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Fifty requests a minute for the whole fleet.
#[agent_endpoint(
    path = "/rs/ask",
    model = "mock/echo",
    rate_limit(requests_per_minute = 50)
)]
async fn ask() -> Result<String, AgentError> {
    Ok("fine".into())
}

/// Calls that reached [`flaky`]'s body, on either replica.
static CALLS: AtomicU32 = AtomicU32::new(0);
/// Whether [`flaky`]'s dependency is down.
static DOWN: AtomicBool = AtomicBool::new(false);
/// Whether [`flaky`] takes a while (so probes overlap).
static SLOW: AtomicBool = AtomicBool::new(false);

/// Fails like a provider outage while [`DOWN`] is set.
#[agent_endpoint(
    path = "/rs/flaky",
    model = "mock/flaky",
    circuit_breaker(
        failure_threshold = 2,
        reset_timeout_ms = 400,
        success_threshold = 1,
        half_open_requests = 1
    )
)]
async fn flaky() -> Result<String, AgentError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if SLOW.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if DOWN.load(Ordering::SeqCst) {
        return Err(AgentError::new(ErrorClass::ServerError, "down").with_provider("mock"));
    }
    Ok("fine".into())
}

/// A `redis-server` of the test's own, stopped on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port, or `None` (saying why) when there is no redis-server.
    fn start() -> Option<RedisServer> {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        RedisServer::start_on(port)
    }

    fn start_on(port: u16) -> Option<RedisServer> {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let spawned = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                assert!(
                    std::env::var_os("FASTAGENTIC_REQUIRE_REDIS").is_none(),
                    "FASTAGENTIC_REQUIRE_REDIS is set but {binary} cannot start: {err}"
                );
                eprintln!("skipped: no redis-server here ({err}); install Debian's redis-server");
                return None;
            }
        };
        let server = RedisServer { child, port };
        // Waiting for a child process to listen: real time, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One replica: every endpoint of this binary, its limits in `store`.
struct Replica {
    base: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Replica {
    async fn start(store: RedisStore) -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let app = App::new("replica").state_store(store);
        tokio::spawn(app.serve_with(listener, async move {
            let _ = stopped.await;
        }));
        Replica {
            base,
            stop: Some(stop),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn store(redis: &RedisServer, prefix: &str, fail_mode: FailMode) -> RedisStore {
    RedisStore::builder(redis.url())
        .prefix(prefix)
        .fail_mode(fail_mode)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, base: &str, path: &str) -> reqwest::Response {
    client.post(format!("{base}{path}")).send().await.unwrap()
}

async fn ask_at(client: &reqwest::Client, base: &str) -> reqwest::Response {
    post(client, base, "/rs/ask").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_admit_exactly_the_fleet_limit_five_runs_in_a_row() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let client = reqwest::Client::new();
    for run in 0..5 {
        // A fresh prefix per run: fresh limits, the same Redis.
        let prefix = format!("fleet-{run}");
        let a = Replica::start(store(&redis, &prefix, FailMode::Closed)).await;
        let b = Replica::start(store(&redis, &prefix, FailMode::Closed)).await;
        let requests = (0..200).map(|i| {
            let base = if i % 2 == 0 { &a.base } else { &b.base };
            ask_at(&client, base)
        });
        let answers = join_all(requests).await;
        let mut admitted = 0;
        for answer in answers {
            match answer.status().as_u16() {
                200 => admitted += 1,
                429 => {
                    let retry_after = answer.headers()["retry-after"].to_str().unwrap();
                    assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
                    assert_eq!(answer.headers()["x-ratelimit-limit"], "50");
                    let body: Value = answer.json().await.unwrap();
                    assert_eq!(body["error"]["class"], "rate_limit", "{body}");
                    assert_eq!(body["error"]["scope"], "endpoint", "{body}");
                }
                other => panic!("run {run}: unexpected status {other}"),
            }
        }
        assert_eq!(
            admitted, 50,
            "run {run}: the fleet admitted {admitted} of 200"
        );
    }

    // Cells are plain keys under the prefix's hash tag, and expire once full again.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = "{fleet-0}:rl:/rs/ask:endpoint:rpm";
    let ttl: i64 = redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 61_000, "{key} expires in {ttl} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_closed_or_open_as_chosen_then_recovers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let client = reqwest::Client::new();
    let closed = Replica::start(store(&redis, "outage-closed", FailMode::Closed)).await;
    let open = Replica::start(store(&redis, "outage-open", FailMode::Open)).await;
    assert_eq!(ask_at(&client, &closed.base).await.status(), 200);
    assert_eq!(ask_at(&client, &open.base).await.status(), 200);

    let port = redis.stop();
    // Closed: a classified 503 naming the store and the other mode, never a hang.
    let refused = ask_at(&client, &closed.base).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["class"], "connection_error", "{body}");
    assert_eq!(body["error"]["store"], "redis", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("FailMode::Open"), "{message}");
    // Open: the replica's own cells decide meanwhile.
    assert_eq!(ask_at(&client, &open.base).await.status(), 200);
    let metrics = client
        .get(format!("{}/metrics", open.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fastagentic_state_store_errors_total{store="redis",operation="take"}"#),
        "{metrics}"
    );

    // Redis is back (empty): the closed replica serves again once it has reconnected.
    let _redis = RedisServer::start_on(port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = ask_at(&client, &closed.base).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "never recovered after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

mod limiter {
    //! The limiter itself on a shared store: two limiters stand for two replicas.

    use std::sync::Arc;
    use std::time::Duration;

    use fastagentic::reliability::{Identity, LimitScope, RateLimitPolicy, RateLimiter};
    use fastagentic::state::{CellTake, FailMode, StateStore, TakeOutcome};
    use tokio::time::Instant;

    use super::{RedisServer, store};

    fn shared(redis: &RedisServer, prefix: &str, policy: &RateLimitPolicy) -> RateLimiter {
        let store = Arc::new(store(redis, prefix, FailMode::Closed));
        RateLimiter::new(policy, LimitScope::Endpoint).with_store(store, "/lib")
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn user_and_tenant_limits_are_shared_per_identity() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let policy = RateLimitPolicy::builder()
            .per_user_rpm(3)
            .per_tenant_rpm(5)
            .build()
            .unwrap();
        let (a, b) = (
            shared(&redis, "ids", &policy),
            shared(&redis, "ids", &policy),
        );
        let (ann, bob, acme): (Arc<str>, Arc<str>, Arc<str>) =
            ("ann".into(), "bob".into(), "acme".into());
        let as_ann = Identity {
            user: Some(&ann),
            tenant: Some(&acme),
        };
        let as_bob = Identity {
            user: Some(&bob),
            tenant: Some(&acme),
        };
        // Ann's three, split over both replicas; her fourth is refused on either.
        for limiter in [&a, &b, &a] {
            let _admitted = limiter.admit(as_ann, None, deadline()).await.unwrap();
        }
        let refused = b.admit(as_ann, None, deadline()).await.unwrap_err();
        assert!(
            refused.message().contains("user rpm limit of 3"),
            "{refused}"
        );
        // Bob has his own three, but the tenant's five run out after two of them.
        for limiter in [&b, &a] {
            let _admitted = limiter.admit(as_bob, None, deadline()).await.unwrap();
        }
        let refused = a.admit(as_bob, None, deadline()).await.unwrap_err();
        assert!(
            refused.message().contains("tenant rpm limit of 5"),
            "{refused}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reserved_tokens_are_reconciled_with_real_usage() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let policy = RateLimitPolicy::builder()
            .tokens_per_minute(1000)
            .build()
            .unwrap();
        let (a, b) = (
            shared(&redis, "tokens", &policy),
            shared(&redis, "tokens", &policy),
        );
        let anyone = Identity::default();
        let admission = a.admit(anyone, Some(800), deadline()).await.unwrap();
        assert!(b.admit(anyone, Some(900), deadline()).await.is_err());
        // The run used 100 of its 800: the other 700 go back, for every replica.
        admission.reconcile(100);
        let waited = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            // The refund runs in the background; wait for it, boundedly.
            match b.admit(anyone, Some(900), deadline()).await {
                Ok(admitted) => {
                    assert_eq!(admitted.reserved_tokens(), 900);
                    break;
                }
                Err(_) => {
                    assert!(std::time::Instant::now() < waited, "never refunded");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flushed_script_is_loaded_again() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let policy = RateLimitPolicy::builder()
            .requests_per_minute(3)
            .build()
            .unwrap();
        let limiter = shared(&redis, "flush", &policy);
        let anyone = Identity::default();
        let _admitted = limiter.admit(anyone, None, deadline()).await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut connection)
            .await
            .unwrap();
        // NOSCRIPT: loaded again, transparently, and the cell kept its count.
        let admitted = limiter.admit(anyone, None, deadline()).await.unwrap();
        assert_eq!(admitted.snapshot().unwrap().remaining, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waits_are_reserved_in_order_and_refusals_take_nothing() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let store = store(&redis, "waits", FailMode::Closed);
        // Two a minute: the third waits about 30 s, the fourth about 60 s.
        let take = |max_wait: Duration| {
            vec![CellTake {
                key: "w".into(),
                limit: 2,
                window: Duration::from_secs(60),
                units: 1,
                max_wait,
            }]
        };
        let minute = Duration::from_secs(60);
        let mut waits = Vec::new();
        for _ in 0..4 {
            match store.take(&take(minute)).await.unwrap() {
                TakeOutcome::Taken(states) => waits.push(states[0].wait),
                refused => panic!("{refused:?}"),
            }
        }
        assert_eq!(waits[..2], [Duration::ZERO, Duration::ZERO]);
        let near =
            |d: Duration, secs: u64| d.abs_diff(Duration::from_secs(secs)) < Duration::from_secs(1);
        assert!(near(waits[2], 30) && near(waits[3], 60), "{waits:?}");
        // Past the wait allowed: refused, and the cell is left as it was.
        for _ in 0..2 {
            match store.take(&take(Duration::from_secs(10))).await.unwrap() {
                TakeOutcome::Refused {
                    index: 0,
                    wait,
                    remaining: 0,
                } => assert!(near(wait, 90), "{wait:?}"),
                other => panic!("{other:?}"),
            }
        }
        // All or none: a cell that would pass takes nothing when another refuses.
        let mut both = take(Duration::ZERO);
        both.insert(
            0,
            CellTake {
                key: "fresh".into(),
                ..both[0].clone()
            },
        );
        assert!(matches!(
            store.take(&both).await.unwrap(),
            TakeOutcome::Refused { index: 1, .. }
        ));
        // The fresh cell still holds both of its units, one of which this takes.
        match store.take(&both[..1]).await.unwrap() {
            TakeOutcome::Taken(states) => assert_eq!(states[0].remaining, 1),
            other => panic!("{other:?}"),
        }
    }
}

async fn flaky_at(client: &reqwest::Client, base: &str) -> u16 {
    post(client, base, "/rs/flaky").await.status().as_u16()
}

/// The state of `/rs/flaky`'s breaker as `base` sees it.
async fn breaker_state(client: &reqwest::Client, base: &str) -> String {
    let status: Value = client
        .get(format!("{base}/status.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/rs/flaky")
        .unwrap();
    endpoint["breakers"][0]["state"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// Waits (real time: Redis keeps the clock, bounded) until `base` shows `state`.
async fn until_state(client: &reqwest::Client, base: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while breaker_state(client, base).await != state {
        assert!(
            Instant::now() < deadline,
            "{base} never showed the breaker {state}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_two_replicas_open_one_breaker_and_the_fleet_probes_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let client = reqwest::Client::new();
    let a = Replica::start(store(&redis, "breakers", FailMode::Open)).await;
    let b = Replica::start(store(&redis, "breakers", FailMode::Open)).await;

    // One failure on each replica: two in the fleet's window, which opens it.
    DOWN.store(true, Ordering::SeqCst);
    assert_eq!(flaky_at(&client, &a.base).await, 502);
    assert_eq!(breaker_state(&client, &a.base).await, "closed");
    assert_eq!(flaky_at(&client, &b.base).await, 502);
    assert_eq!(breaker_state(&client, &b.base).await, "open");
    // A saw one failure only; the refresh tells it, and it fails fast without a call.
    until_state(&client, &a.base, "open").await;
    let calls = CALLS.load(Ordering::SeqCst);
    assert_eq!(flaky_at(&client, &a.base).await, 503);
    assert_eq!(flaky_at(&client, &b.base).await, 503);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        calls,
        "an open breaker let a call through"
    );

    // After the reset timeout: four callers on two replicas, one probe in the fleet.
    tokio::time::sleep(Duration::from_millis(450)).await;
    DOWN.store(false, Ordering::SeqCst);
    SLOW.store(true, Ordering::SeqCst);
    let tries = [&a.base, &b.base, &a.base, &b.base].map(|base| flaky_at(&client, base));
    let mut answers = join_all(tries).await;
    answers.sort_unstable();
    assert_eq!(answers, [200, 503, 503, 503]);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        calls + 1,
        "more than one probe ran"
    );

    // The probe succeeded: closed for everyone.
    SLOW.store(false, Ordering::SeqCst);
    until_state(&client, &a.base, "closed").await;
    until_state(&client, &b.base, "closed").await;
    assert_eq!(flaky_at(&client, &a.base).await, 200);
    assert_eq!(flaky_at(&client, &b.base).await, 200);
}
