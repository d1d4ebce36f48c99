//! Rate limits shared by two replicas through a real Redis.
//!
//! Each test starts its own `redis-server` (Debian's package) on a free loopback port,
//! without persistence, and stops it. `.ci/run` installs it and sets
//! `FASTAGENTIC_REQUIRE_REDIS=1`, so there a missing server fails the tests; elsewhere they
//! are skipped, saying why.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
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

async fn ask_at(client: &reqwest::Client, base: &str) -> reqwest::Response {
    client.post(format!("{base}/rs/ask")).send().await.unwrap()
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
