//! What fastagentic adds in front of a model, against calling the model directly and
//! against a LiteLLM proxy doing the same job.
//!
//! The binary starts, as separate processes on loopback:
//!
//! - a fake OpenAI upstream (hyper, one thread) answering every `POST
//!   /v1/chat/completions` with one fixed `chat.completion` after reading the request;
//! - a fastagentic server whose OpenAI provider is configured the way a user configures
//!   it, `OPENAI_API_KEY` and `OPENAI_BASE_URL` pointing at the upstream. It serves the
//!   quickstart's `POST /chat` (retry and timeouts on, the model checked against the
//!   pricing tables, the reply priced) and the OpenAI-compatible `POST
//!   /v1/chat/completions` front door;
//! - when a `litellm` command is found (`LITELLM_BIN`, `PATH`, or
//!   `target/litellm-venv/bin/litellm`; install with `pip install 'litellm[proxy]'`), a
//!   LiteLLM proxy with one worker and the same upstream.
//!
//! Then it measures each target in two interleaved rounds with a lean hyper client
//! (keep-alive, `TCP_NODELAY`, latency counted from the request's send to the last byte
//! of its body): one connection, requests one after another (p50, p99), and
//! [`CONNECTIONS`] connections at once (requests per second, p99). It prints a table with
//! the latency each target adds to a direct call and its share of direct throughput.
//!
//! Run with `cargo bench -p fastagentic --bench gateway_overhead`. `OVERHEAD_SECONDS`
//! sets the seconds of each measurement (default 3); `OVERHEAD_HOLD=1` prints the
//! fastagentic server's pid and keeps each measurement running ten times longer, to
//! attach a profiler; `OVERHEAD_WORKERS` sets the server's tokio worker threads (default:
//! one per core).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastagentic::llm::Providers;
use fastagentic::prelude::*;
use fastagentic::server::Gateway;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Connections of the throughput measurement.
const CONNECTIONS: usize = 32;

/// The environment variable that tells a child process which server to be.
const ROLE: &str = "FASTAGENTIC_OVERHEAD_ROLE";

/// The bearer token every request carries: LiteLLM's master key (it refuses to start
/// without a strong one); the others ignore it.
const API_KEY: &str = "sk-0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The model every target is asked for.
const MODEL: &str = "gpt-4o-mini";

/// What the fake upstream answers: the shape of a real Chat Completions reply.
const UPSTREAM_REPLY: &str = r#"{"id":"chatcmpl-overhead","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default"}"#;

/// An OpenAI request body, sent to the upstream, the front door and LiteLLM.
const OPENAI_BODY: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}"#;

/// The quickstart's `/chat` body.
const CHAT_BODY: &str = r#"{"model":"gpt-4o-mini","prompt":"Say hello."}"#;

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("upstream") => serve_upstream(),
        Ok("fastagentic") => serve_fastagentic(),
        _ => measure(),
    }
}

// ---------------------------------------------------------------------------------------
// The servers, each run in a child process that prints its port on its first line.
// ---------------------------------------------------------------------------------------

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts")
}

/// Binds a free loopback port and prints it for the parent.
async fn announce() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback binds");
    let port = listener.local_addr().expect("a local address").port();
    println!("{port}");
    listener
}

fn serve_upstream() {
    current_thread().block_on(async {
        let listener = announce().await;
        let reply = Bytes::from_static(UPSTREAM_REPLY.as_bytes());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let reply = reply.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let reply = reply.clone();
                    async move {
                        // Read the whole request, as a real upstream would.
                        request.into_body().collect().await?;
                        let mut response = hyper::Response::new(Full::new(reply));
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

#[derive(Clone, Deserialize)]
struct ChatRequest {
    model: String,
    prompt: String,
}

#[derive(Serialize)]
struct ChatResponse {
    text: String,
    model: String,
    usage: Option<fastagentic::llm::Usage>,
    cost_usd: Option<f64>,
}

/// The quickstart's `/chat`, with its policies.
#[agent_endpoint(
    path = "/chat",
    retry(max_attempts = 3, initial_delay_ms = 250, max_delay_ms = 5_000),
    timeout(total_ms = 120_000, llm_call_ms = 60_000)
)]
async fn chat(ctx: AgentContext, request: ChatRequest) -> Result<ChatResponse, AgentError> {
    if let Err(unknown) = fastagentic::pricing::global().lookup(&request.model) {
        return Err(AgentError::new(
            ErrorClass::InvalidInput,
            unknown.to_string(),
        ));
    }
    let reply = ctx
        .llm()
        .with_model(request.model)
        .complete(Prompt::user(&request.prompt))
        .await?;
    Ok(ChatResponse {
        text: reply.text,
        model: reply.model,
        usage: reply.usage,
        cost_usd: reply.cost_usd.and_then(|cost| cost.try_into().ok()),
    })
}

fn serve_fastagentic() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Ok(text) = std::env::var("OVERHEAD_WORKERS") {
        match text.parse::<usize>() {
            Ok(workers) if workers > 0 => builder.worker_threads(workers),
            _ => panic!("OVERHEAD_WORKERS={text:?}: set it to a whole number of at least 1"),
        };
    }
    let runtime = builder.enable_all().build().expect("a runtime starts");
    runtime.block_on(async {
        let listener = announce().await;
        let served = App::new("gateway overhead")
            .providers(Providers::from_env())
            .openai_compatible(Gateway::new().model(MODEL))
            .serve_with(listener, std::future::pending())
            .await;
        if let Err(err) = served {
            eprintln!("fastagentic stopped: {err}");
            std::process::exit(1);
        }
    });
}

// ---------------------------------------------------------------------------------------
// The parent: start the servers, measure, print.
// ---------------------------------------------------------------------------------------

/// A server process, killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this binary as `role` and reads the port it prints.
fn spawn_role(name: &'static str, role: &str, env: &[(&str, String)]) -> Server {
    let mut command = Command::new(std::env::current_exe().expect("the bench binary"));
    command
        .env(ROLE, role)
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("the bench binary starts again");
    let stdout = child.stdout.take().expect("a piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the child prints its port");
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} printed {line:?}, not a port"));
    Server {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Where a `litellm` command is, if anywhere.
fn litellm_command() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LITELLM_BIN") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("litellm"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let venv =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/litellm-venv/bin/litellm");
        venv.is_file().then_some(venv)
    })
}

/// Starts a LiteLLM proxy in front of `upstream`; waits until it answers.
fn spawn_litellm(command: &PathBuf, upstream: SocketAddr) -> Option<Server> {
    // Free a port for LiteLLM to bind.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("fastagentic-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: {MODEL}\n    litellm_params:\n      model: openai/{MODEL}\n      \
             api_base: http://{upstream}/v1\n      api_key: sk-overhead\n"
        ),
    )
    .ok()?;
    let child = Command::new(command)
        .args(["--config", &config.to_string_lossy(), "--host", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--num_workers", "1"])
        // No network beyond loopback: the bundled price map, no telemetry.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_MASTER_KEY", API_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let runtime = current_thread();
    while Instant::now() < deadline {
        let ready = runtime.block_on(async {
            let mut lane = Lane::connect(server.address).await.ok()?;
            lane.send(&Target::litellm(server.address)).await.ok()
        });
        if ready.is_some() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("litellm did not answer within 180 s; measuring without it");
    None
}

/// One thing to measure: an address, a path and a body.
#[derive(Clone)]
struct Target {
    label: &'static str,
    address: SocketAddr,
    path: &'static str,
    body: &'static str,
    /// Text every answer must contain, so that an error page is never measured.
    expect: &'static str,
}

impl Target {
    fn direct(upstream: SocketAddr) -> Self {
        Target {
            label: "direct to the upstream",
            address: upstream,
            path: "/v1/chat/completions",
            body: OPENAI_BODY,
            expect: "How can I assist",
        }
    }

    fn chat(fastagentic: SocketAddr) -> Self {
        Target {
            label: "fastagentic /chat",
            address: fastagentic,
            path: "/chat",
            body: CHAT_BODY,
            expect: "How can I assist",
        }
    }

    fn front_door(fastagentic: SocketAddr) -> Self {
        Target {
            label: "fastagentic /v1/chat/completions",
            address: fastagentic,
            path: "/v1/chat/completions",
            body: OPENAI_BODY,
            expect: "How can I assist",
        }
    }

    fn litellm(litellm: SocketAddr) -> Self {
        Target {
            label: "litellm proxy",
            address: litellm,
            path: "/v1/chat/completions",
            body: OPENAI_BODY,
            expect: "How can I assist",
        }
    }
}

/// One keep-alive connection.
struct Lane {
    sender: SendRequest<Full<Bytes>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Lane {
    async fn connect(address: SocketAddr) -> Result<Self, BoxError> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Lane { sender })
    }

    /// Sends one request; returns the time from its send to the end of its body.
    async fn send(&mut self, target: &Target) -> Result<Duration, BoxError> {
        let request = Request::post(target.path)
            .header("host", target.address.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(Full::new(Bytes::from_static(target.body.as_bytes())))?;
        self.sender.ready().await?;
        let start = Instant::now();
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let took = start.elapsed();
        if status != 200 || !contains(&body, target.expect.as_bytes()) {
            return Err(format!(
                "{} answered {status}: {}",
                target.label,
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        Ok(took)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// What one measurement found.
#[derive(Clone, Copy)]
struct Measured {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    // The index of a percentile in a list of far fewer than 2^52 samples.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `connections` lanes sending back to back for `seconds`.
async fn load(target: &Target, connections: usize, seconds: Duration) -> Measured {
    let mut lanes = tokio::task::JoinSet::new();
    let start = Instant::now();
    let end = start + seconds;
    for _ in 0..connections {
        let target = target.clone();
        lanes.spawn(async move {
            let mut lane = Lane::connect(target.address)
                .await
                .unwrap_or_else(|err| panic!("{}: {err}", target.label));
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let took = lane
                    .send(&target)
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
                latencies.push(took);
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(lane) = lanes.join_next().await {
        latencies.extend(lane.expect("a lane finished"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    // Request counts are far below 2^52.
    #[allow(clippy::cast_precision_loss)]
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    Measured {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_second,
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Microseconds `a` is above `b`, signed.
fn added(a: Duration, b: Duration) -> f64 {
    micros(a) - micros(b)
}

fn measure() {
    let seconds: u64 = std::env::var("OVERHEAD_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3);
    let hold = std::env::var_os("OVERHEAD_HOLD").is_some();
    let seconds = Duration::from_secs(if hold { seconds * 10 } else { seconds });

    let upstream = spawn_role("upstream", "upstream", &[]);
    let base_url = format!("http://{}/v1", upstream.address);
    let fastagentic = spawn_role(
        "fastagentic",
        "fastagentic",
        &[
            ("OPENAI_API_KEY", "sk-overhead".to_owned()),
            ("OPENAI_BASE_URL", base_url),
            ("ANTHROPIC_API_KEY", String::new()),
            ("GEMINI_API_KEY", String::new()),
        ],
    );
    if hold {
        println!("fastagentic server pid {}", fastagentic.child.id());
    }
    let litellm = match litellm_command() {
        Some(command) => {
            println!("starting LiteLLM ({})...", command.display());
            spawn_litellm(&command, upstream.address)
        }
        None => {
            println!(
                "no `litellm` command found (LITELLM_BIN, PATH, target/litellm-venv): \
                 measuring without it; `pip install 'litellm[proxy]'` adds it"
            );
            None
        }
    };

    let mut targets = vec![
        Target::direct(upstream.address),
        Target::chat(fastagentic.address),
        Target::front_door(fastagentic.address),
    ];
    if let Some(litellm) = &litellm {
        targets.push(Target::litellm(litellm.address));
    }
    let runtime = current_thread();
    // Warm-up: connections, pools, caches; and a check that every target answers.
    for target in &targets {
        runtime.block_on(load(target, 1, Duration::from_millis(500)));
    }
    println!(
        "measuring {} targets, 2 interleaved rounds, {} s each on 1 and on {CONNECTIONS} connections",
        targets.len(),
        seconds.as_secs()
    );
    let mut rounds = Vec::new();
    for round in 1..=2 {
        let mut rows = Vec::new();
        for target in &targets {
            let one = runtime.block_on(load(target, 1, seconds));
            let many = runtime.block_on(load(target, CONNECTIONS, seconds));
            rows.push((target.label, one, many));
        }
        rounds.push((round, rows));
    }
    print_table(&rounds);
    drop((upstream, fastagentic, litellm));
}

type Row = (&'static str, Measured, Measured);

fn print_table(rounds: &[(u32, Vec<Row>)]) {
    println!(
        "\n{:<5} {:<34} {:>9} {:>9} {:>10} {:>10} {:>11} {:>9} {:>10}",
        "round",
        "target",
        "p50 µs",
        "p99 µs",
        "+p50 µs",
        "+p99 µs",
        "req/s (32)",
        "× direct",
        "p99 (32)"
    );
    for (round, rows) in rounds {
        let (_, direct_one, direct_many) = rows[0];
        for (label, one, many) in rows {
            println!(
                "{:<5} {:<34} {:>9.0} {:>9.0} {:>10.0} {:>10.0} {:>11.0} {:>9.3} {:>7.2} ms",
                round,
                label,
                micros(one.p50),
                micros(one.p99),
                added(one.p50, direct_one.p50),
                added(one.p99, direct_one.p99),
                many.per_second,
                many.per_second / direct_many.per_second,
                micros(many.p99) / 1000.0,
            );
        }
    }
    println!(
        "\n+p50/+p99: latency added to a direct call on one connection (same round). \
         × direct: share of direct requests per second at {CONNECTIONS} connections."
    );
}
