//! The tour: fastagentic's reliability policies at work, in about ten seconds, offline.
//!
//! ```text
//! cargo run --example tour
//! ```
//!
//! It starts two fake providers on loopback (`FakeServer`s: one speaks the OpenAI wire and
//! plays `gpt-4o`, the other the Anthropic wire and plays `claude-sonnet-4-5`), serves one
//! endpoint, `POST /ask`, with all five policies through an [`App`] on an ephemeral port,
//! and drives it over HTTP in phases that script the primary provider's failures:
//!
//! 1. **steady**: normal traffic, `gpt-4o` answers everything;
//! 2. **flaky**: the provider answers some calls with 429 + `Retry-After`, a 503, a 529
//!    and one call that hangs: the retries (and the timeout) absorb them;
//! 3. **outage**: five 503s in a row open `gpt-4o`'s circuit breaker; requests fail over
//!    to `claude-sonnet-4-5` without touching `gpt-4o`;
//! 4. **recovery**: after `reset_timeout_ms` the breaker lets probes through, they
//!    succeed, it closes and `gpt-4o` answers again;
//! 5. **noisy user**: one user (`X-User-Id: mallory`) goes over `per_user_rpm`: 429s with
//!    `Retry-After`, while everyone else is served;
//! 6. **burst**: more anonymous requests at once than the endpoint's `requests_per_minute`
//!    leaves: the excess gets 429s;
//! 7. **tool retry**: on a second endpoint, `POST /agent`, `gpt-4o` calls a stock tool
//!    whose first attempt fails with a server error: the tool is retried, the model answers;
//! 8. **mid-loop**: `gpt-4o` calls the tool, then fails with 503s: the loop falls back
//!    to `claude-sonnet-4-5`, which gets the conversation so far (the call and its result,
//!    as Anthropic `tool_use` / `tool_result` blocks) and answers; the tool ran once.
//! 9. **checkpoint**: a durable endpoint, `POST /report`, makes two calls to `gpt-4o`
//!    under a 1 s deadline; the second one hangs, the deadline cuts the run and it
//!    answers `202` with where to resume it; `POST /runs/{id}/resume` replays the first
//!    call from the run's journal and makes only the second (one call paid, not two).
//!
//! Then it prints a table (outcomes, retries, fallbacks, breaker transitions and cost per
//! phase), the spend ledger and the key lines of `GET /metrics`, shuts the server down
//! gracefully and exits 0 — or exits 1 naming what did not happen, so it doubles as a
//! smoke test. No API key and no network beyond loopback are needed: the canned replies
//! carry usage (12 input and 7 output tokens), priced from the real pricing tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fastagentic::App;
use fastagentic::hooks::Hook;
use fastagentic::llm::{Anthropic, OpenAi, Providers};
use fastagentic::prelude::*;
use fastagentic::reliability::EventKind;
use fastagentic::spend::{Totals, ledger};
use fastagentic::tools::{Tool, Tools};
use fastagentic_testing::{FakeServer, Reply};
use indicatif::{ProgressBar, ProgressStyle};
use schemars::JsonSchema;
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The model `/ask` asks first, served by the OpenAI-wire fake.
const PRIMARY: &str = "gpt-4o";
/// The model it falls back to, served by the Anthropic-wire fake.
const BACKUP: &str = "claude-sonnet-4-5";
/// `failure_threshold` of the breaker below: the outage pushes exactly this many 503s.
const FAILURE_THRESHOLD: usize = 5;
/// Distinct users the regular traffic comes from (each stays well under `per_user_rpm`).
const USERS: usize = 24;

#[derive(Clone, Deserialize)]
struct Question {
    question: String,
}

#[derive(Serialize)]
struct Answer {
    text: String,
    model: String,
    provider: String,
    cost_usd: Option<f64>,
}

/// Answers a question, behind every policy: at most 480 requests a minute (20 per user),
/// 15 s per request and 1.5 s per LLM call, a breaker per model that opens after five
/// failures within a second and probes again after one, three attempts with short
/// exponential backoff (a provider's `Retry-After` wins), and `claude-sonnet-4-5` when
/// `gpt-4o` is rate limited, down, slow or its breaker is open.
#[agent_endpoint(
    path = "/ask",
    rate_limit(requests_per_minute = 480, per_user_rpm = 20),
    timeout(total_ms = 15_000, llm_call_ms = 1_500),
    circuit_breaker(failure_threshold = 5, failure_window_ms = 1_000, reset_timeout_ms = 1_000,
                    half_open_requests = 2, success_threshold = 2),
    retry(max_attempts = 3, backoff = "exponential", initial_delay_ms = 20, max_delay_ms = 200,
          retry_on = ["rate_limit", "timeout", "server_error", "overloaded", "connection_error"]),
    fallback(primary = "gpt-4o",
             then("claude-sonnet-4-5",
                  on = ["rate_limit", "timeout", "server_error", "overloaded", "connection_error"])),
)]
async fn ask(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    let reply = ctx.llm().complete(Prompt::user(&q.question)).await?;
    Ok(Answer {
        text: reply.text,
        model: ctx.model().to_owned(),
        provider: reply.provider.to_string(),
        cost_usd: reply.cost_usd.and_then(|cost| cost.try_into().ok()),
    })
}

/// Attempts of the stock tool, for the tour's checks.
static STOCK_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
/// Whether the stock tool's next attempt fails (with a server error).
static STOCK_FAILS_NEXT: AtomicBool = AtomicBool::new(false);

#[derive(Deserialize, Serialize, JsonSchema)]
struct Sku {
    /// The product's stock-keeping unit.
    sku: String,
}

/// A warehouse API that the tour can make fail once.
fn stock_tool() -> Result<Tool<Sku, Value>, AgentError> {
    Tool::new(
        "stock",
        "Units in stock for a SKU",
        |item: Sku| async move {
            STOCK_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
            if STOCK_FAILS_NEXT.swap(false, Ordering::SeqCst) {
                return Err(AgentError::new(
                    ErrorClass::ServerError,
                    "the warehouse API answered 502",
                ));
            }
            Ok(json!({"sku": item.sku, "in_stock": 7}))
        },
    )
    .map_err(|e| AgentError::new(ErrorClass::Other, e.to_string()))
}

/// Answers with the stock tool at hand, as an agent: tool calls within 500 ms each and
/// retried like the LLM calls, and `claude-sonnet-4-5` when `gpt-4o` fails mid-loop.
#[agent_endpoint(
    path = "/agent",
    timeout(total_ms = 15_000, llm_call_ms = 1_500, tool_call_ms = 500),
    retry(max_attempts = 2, backoff = "exponential", initial_delay_ms = 20, max_delay_ms = 200,
          retry_on = ["rate_limit", "timeout", "server_error", "overloaded", "connection_error"]),
    fallback(primary = "gpt-4o",
             then("claude-sonnet-4-5",
                  on = ["rate_limit", "timeout", "server_error", "overloaded", "connection_error"])),
)]
async fn agent(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    static TOOLS: LazyLock<Result<Tools, AgentError>> =
        LazyLock::new(|| Ok(Tools::new().with(stock_tool()?)));
    let tools = (*TOOLS).as_ref().map_err(Clone::clone)?;
    let answer = ctx.llm().run(Prompt::user(&q.question), tools).await?;
    Ok(Answer {
        text: answer.text().to_owned(),
        model: ctx.model().to_owned(),
        provider: answer.completion.provider.to_string(),
        cost_usd: answer.cost_usd().and_then(|cost| cost.try_into().ok()),
    })
}

/// Writes a report in two model calls, under a deadline that checkpoints: a run it cuts
/// answers 202, and a resume makes only the calls its journal lacks.
#[agent_endpoint(
    path = "/report",
    model = "gpt-4o",
    durable = true,
    timeout(total_ms = 1_000, on_timeout = "checkpoint")
)]
async fn report(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    let outline = ctx.llm().complete(Prompt::user(&q.question)).await?;
    let text = ctx
        .llm()
        .complete(Prompt::user(format!("Write up: {}", outline.text)))
        .await?;
    let cost: Option<fastagentic::pricing::Decimal> =
        [outline.cost_usd, text.cost_usd].into_iter().sum();
    Ok(Answer {
        text: text.text,
        model: ctx.model().to_owned(),
        provider: text.provider.to_string(),
        cost_usd: cost.and_then(|cost| cost.try_into().ok()),
    })
}

/// `gpt-4o` asking for the stock of SKU `A-1`, in Chat Completions' wire format.
const STOCK_CALL: &str = r#"{"id":"chatcmpl-tour","object":"chat.completion","model":"gpt-4o",
    "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
      {"id":"call_stock_1","type":"function","function":{"name":"stock","arguments":"{\"sku\":\"A-1\"}"}}]},
    "finish_reason":"tool_calls"}],
    "usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}"#;

// ---------------------------------------------------------------------------------------
// Counting what the pipeline does, with hooks
// ---------------------------------------------------------------------------------------

/// Pipeline events seen by the tour's hooks.
#[derive(Clone, Debug, Default)]
struct Events {
    retries: u64,
    /// Retries by the class of the error that caused them.
    retry_causes: BTreeMap<String, u64>,
    fallbacks: u64,
    opens: u64,
    half_opens: u64,
    closes: u64,
}

impl Events {
    /// What happened since `before`.
    fn since(&self, before: &Events) -> Events {
        let mut causes = self.retry_causes.clone();
        for (class, n) in &before.retry_causes {
            if let Some(count) = causes.get_mut(class) {
                *count -= n;
            }
        }
        causes.retain(|_, n| *n > 0);
        Events {
            retries: self.retries - before.retries,
            retry_causes: causes,
            fallbacks: self.fallbacks - before.fallbacks,
            opens: self.opens - before.opens,
            half_opens: self.half_opens - before.half_opens,
            closes: self.closes - before.closes,
        }
    }
}

type SharedEvents = Arc<Mutex<Events>>;

fn snapshot(events: &SharedEvents) -> Events {
    events
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A hook on `event` that applies `count` to the tallies.
fn counting_hook(
    events: &SharedEvents,
    event: EventKind,
    name: &'static str,
    count: fn(&mut Events, &HookContext),
) -> Hook {
    let events = events.clone();
    Hook::sync(event, name, move |ctx: &mut HookContext| {
        count(
            &mut events.lock().unwrap_or_else(PoisonError::into_inner),
            ctx,
        );
    })
}

fn hooks(events: &SharedEvents) -> Vec<Hook> {
    vec![
        counting_hook(events, EventKind::Retry, "tour.retry", |e, ctx| {
            e.retries += 1;
            let cause = ctx
                .error
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |err| err.class().to_string());
            *e.retry_causes.entry(cause).or_default() += 1;
        }),
        counting_hook(events, EventKind::Fallback, "tour.fallback", |e, _| {
            e.fallbacks += 1;
        }),
        counting_hook(events, EventKind::CircuitOpen, "tour.open", |e, _| {
            e.opens += 1;
        }),
        counting_hook(
            events,
            EventKind::CircuitHalfOpen,
            "tour.half_open",
            |e, _| {
                e.half_opens += 1;
            },
        ),
        counting_hook(events, EventKind::CircuitClose, "tour.close", |e, _| {
            e.closes += 1;
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Driving the app over HTTP
// ---------------------------------------------------------------------------------------

/// The answers of one phase.
#[derive(Clone, Debug, Default)]
struct Tally {
    requests: u64,
    /// 200s by the model that answered.
    ok_by_model: BTreeMap<String, u64>,
    /// Everything else, by status.
    by_status: BTreeMap<u16, u64>,
    /// 429s that carried `Retry-After`.
    too_many_with_retry_after: u64,
    /// Requests that got no HTTP answer at all.
    transport_errors: u64,
    /// The first 429, as a sample: `Retry-After`, the `X-RateLimit-*` headers, the body.
    sample_429: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        for (model, n) in &other.ok_by_model {
            *self.ok_by_model.entry(model.clone()).or_default() += n;
        }
        for (status, n) in &other.by_status {
            *self.by_status.entry(*status).or_default() += n;
        }
        self.too_many_with_retry_after += other.too_many_with_retry_after;
        self.transport_errors += other.transport_errors;
        if self.sample_429.is_none() {
            self.sample_429.clone_from(&other.sample_429);
        }
    }

    fn ok(&self, model: &str) -> u64 {
        self.ok_by_model.get(model).copied().unwrap_or(0)
    }

    fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Answers other than 200, 202 (a checkpoint) and 429, and requests without an
    /// answer.
    fn unexpected(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(status, _)| !matches!(**status, 202 | 429))
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }
}

/// One finished phase.
struct Phase {
    name: &'static str,
    tally: Tally,
    events: Events,
    cost_usd: f64,
    elapsed: Duration,
}

/// The client side of the tour.
#[derive(Clone)]
struct Driver {
    client: reqwest::Client,
    base: String,
    bar: ProgressBar,
}

/// Who sends request number `i` of a phase.
type UserOf = fn(usize) -> Option<String>;

fn regular_user(i: usize) -> Option<String> {
    Some(format!("user-{}", i % USERS))
}

fn mallory(_: usize) -> Option<String> {
    Some("mallory".to_owned())
}

fn anonymous(_: usize) -> Option<String> {
    None
}

impl Driver {
    /// Sends one question and records the answer.
    async fn ask(&self, i: usize, user: Option<String>, tally: &Mutex<Tally>) {
        let mut request = self
            .client
            .post(format!("{}/ask", self.base))
            .json(&json!({"question": format!("Question #{i}: what is a circuit breaker?")}));
        if let Some(user) = user {
            request = request.header("x-user-id", user);
        }
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await.unwrap_or_default();
                Some((status, headers, body))
            }
            Err(_) => None,
        };
        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.requests += 1;
        match answer {
            None => tally.transport_errors += 1,
            Some((200, _, body)) => {
                let model = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["model"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "?".to_owned());
                *tally.ok_by_model.entry(model).or_default() += 1;
            }
            Some((status, headers, body)) => {
                *tally.by_status.entry(status).or_default() += 1;
                if status == 429 {
                    if headers.contains_key("retry-after") {
                        tally.too_many_with_retry_after += 1;
                    }
                    if tally.sample_429.is_none() {
                        tally.sample_429 = Some(describe_429(&headers, &body));
                    }
                }
            }
        }
        drop(tally);
        self.bar.inc(1);
    }

    /// Sends `count` requests, `in_flight` at a time, pausing `pause` after each one
    /// in each lane.
    async fn run(&self, count: usize, in_flight: usize, pause: Duration, user: UserOf) -> Tally {
        self.run_until(Some(count), in_flight, pause, user, || false)
            .await
    }

    /// Sends requests `in_flight` at a time until `done()` (checked before each request)
    /// or `count` requests (unbounded when `None`); unbounded phases grow the bar as they
    /// go.
    async fn run_until(
        &self,
        count: Option<usize>,
        in_flight: usize,
        pause: Duration,
        user: UserOf,
        done: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Tally {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(done);
        let mut lanes = JoinSet::new();
        for _ in 0..in_flight {
            let (driver, tally, next, done) =
                (self.clone(), tally.clone(), next.clone(), done.clone());
            lanes.spawn(async move {
                loop {
                    if done() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if count.is_some_and(|count| i >= count) {
                        break;
                    }
                    if count.is_none() {
                        driver.bar.inc_length(1);
                    }
                    driver.ask(i, user(i), &tally).await;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
        }
        while lanes.join_next().await.is_some() {}
        let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.clone()
    }

    async fn get_json(&self, path: &str) -> Result<Value, String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        response
            .json()
            .await
            .map_err(|e| format!("GET {path}: {e}"))
    }

    /// The primary model's breaker, as `GET /endpoints` reports it.
    async fn primary_breaker(&self) -> Result<Value, String> {
        let listing = self.get_json("/endpoints").await?;
        let breakers = listing["endpoints"]
            .as_array()
            .and_then(|all| all.iter().find(|e| e["path"] == "/ask"))
            .and_then(|ask| ask["breakers"].as_array())
            .cloned()
            .unwrap_or_default();
        Ok(breakers
            .into_iter()
            .find(|b| b["model"] == PRIMARY)
            .unwrap_or(Value::Null))
    }

    /// Asks `/agent` one question; the tally has its answer.
    async fn ask_agent(&self, question: &str) -> Tally {
        let response = self
            .client
            .post(format!("{}/agent", self.base))
            .json(&json!({ "question": question }))
            .send()
            .await;
        let mut tally = Tally {
            requests: 1,
            ..Tally::default()
        };
        match response {
            Ok(response) if response.status() == 200 => {
                let body: Value = response.json().await.unwrap_or_default();
                let model = body["model"].as_str().unwrap_or("?").to_owned();
                *tally.ok_by_model.entry(model).or_default() += 1;
            }
            Ok(response) => {
                *tally
                    .by_status
                    .entry(response.status().as_u16())
                    .or_default() += 1
            }
            Err(_) => tally.transport_errors += 1,
        }
        self.bar.inc(1);
        tally
    }

    /// Starts a `/report` run the deadline cuts (202), then resumes it (200); says what
    /// each answer showed.
    async fn checkpoint_and_resume(&self) -> Result<(Tally, String), String> {
        let mut tally = Tally {
            requests: 2,
            ..Tally::default()
        };
        let started = (self.client.post(format!("{}/report", self.base)))
            .json(&json!({ "question": "Report on the breaker's last hour." }))
            .send()
            .await
            .map_err(|e| format!("checkpoint: POST /report: {e}"))?;
        self.bar.inc(1);
        if started.status() != 202 {
            return Err(format!(
                "checkpoint: expected a 202, got {}",
                started.status()
            ));
        }
        *tally.by_status.entry(202).or_default() += 1;
        let checkpoint: Value = started.json().await.unwrap_or_default();
        let resume = checkpoint["resume"].as_str().unwrap_or("/runs/?/resume");
        let resumed = (self.client.post(format!("{}{resume}", self.base)))
            .send()
            .await
            .map_err(|e| format!("checkpoint: POST {resume}: {e}"))?;
        self.bar.inc(1);
        let tokens = (resumed.headers().get("x-fastagentic-tokens"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        if resumed.status() != 200 {
            return Err(format!(
                "checkpoint: the resume answered {}",
                resumed.status()
            ));
        }
        let body: Value = resumed.json().await.unwrap_or_default();
        let model = body["model"].as_str().unwrap_or("?").to_owned();
        *tally.ok_by_model.entry(model).or_default() += 1;
        let note = format!(
            "202 with {} step journaled; the resume answered 200, paying {tokens} tokens \
             (one call)",
            checkpoint["steps"]
        );
        Ok((tally, note))
    }

    /// The `X-RateLimit-Remaining` an anonymous caller sees now (this costs one request).
    async fn remaining(&self, tally: &Mutex<Tally>) -> Option<usize> {
        let response = self
            .client
            .post(format!("{}/ask", self.base))
            .json(&json!({"question": "How many requests do I have left?"}))
            .send()
            .await
            .ok()?;
        let remaining = response
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.requests += 1;
        if response.status() == 200 {
            *tally.ok_by_model.entry(PRIMARY.to_owned()).or_default() += 1;
        } else {
            *tally
                .by_status
                .entry(response.status().as_u16())
                .or_default() += 1;
        }
        self.bar.inc(1);
        remaining
    }
}

fn describe_429(headers: &reqwest::header::HeaderMap, body: &[u8]) -> String {
    let mut text = String::new();
    for name in [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let _ = write!(text, "{name}: {value}  ");
        }
    }
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{}\n      {message}", text.trim_end())
}

fn cost_since(before: &Totals) -> f64 {
    (ledger().total().cost_usd - before.cost_usd)
        .try_into()
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------
// The tour
// ---------------------------------------------------------------------------------------

struct Tour {
    driver: Driver,
    primary: FakeServer,
    backup: FakeServer,
    events: SharedEvents,
    phases: Vec<Phase>,
    problems: Vec<String>,
}

impl Tour {
    /// Runs `body` as phase `name`, recording its tally, the events and the cost.
    async fn phase<F>(&mut self, name: &'static str, about: &str, body: F) -> Result<(), String>
    where
        F: AsyncFnOnce(
            &Driver,
            &FakeServer,
            &SharedEvents,
        ) -> Result<(Tally, Option<String>), String>,
    {
        self.driver.bar.set_message(name);
        let events_before = snapshot(&self.events);
        let cost_before = ledger().total();
        let start = Instant::now();
        let (tally, note) = body(&self.driver, &self.primary, &self.events).await?;
        let phase = Phase {
            name,
            elapsed: start.elapsed(),
            events: snapshot(&self.events).since(&events_before),
            cost_usd: cost_since(&cost_before),
            tally,
        };
        self.driver.bar.suspend(|| {
            println!(
                "{:<11} {:>4} requests in {:>5} ms: {about}",
                phase.name,
                phase.tally.requests,
                phase.elapsed.as_millis()
            );
            if let Some(note) = note {
                println!("{:<11} {note}", "");
            }
        });
        self.phases.push(phase);
        Ok(())
    }

    fn expect(&mut self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.problems.push(problem.into());
        }
    }

    fn get(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Checks that every phase showed what it was meant to show.
    fn check(&mut self) {
        let mut problems = Vec::new();
        let mut expect = |ok: bool, problem: String| {
            if !ok {
                problems.push(problem);
            }
        };
        if let Some(p) = self.get("steady") {
            expect(
                p.tally.ok(PRIMARY) == p.tally.requests,
                format!(
                    "steady: expected {PRIMARY} to answer every request: {:?}",
                    p.tally
                ),
            );
        }
        if let Some(p) = self.get("flaky") {
            expect(
                p.events.retries >= 10,
                format!(
                    "flaky: expected 10 or more retries, saw {}",
                    p.events.retries
                ),
            );
            expect(
                p.events.retry_causes.contains_key("rate_limit"),
                "flaky: no retry after a provider 429".to_owned(),
            );
            expect(
                p.events.retry_causes.contains_key("timeout"),
                "flaky: the hung call was not timed out and retried".to_owned(),
            );
        }
        if let Some(p) = self.get("outage") {
            expect(
                p.events.opens >= 1,
                "outage: the breaker did not open".to_owned(),
            );
            expect(
                p.tally.ok(BACKUP) >= 40,
                format!(
                    "outage: expected most requests answered by {BACKUP}, saw {}",
                    p.tally.ok(BACKUP)
                ),
            );
            expect(
                p.events.fallbacks >= 40,
                format!(
                    "outage: expected 40 or more fallbacks, saw {}",
                    p.events.fallbacks
                ),
            );
        }
        if let Some(p) = self.get("recovery") {
            expect(
                p.events.closes >= 1,
                "recovery: the breaker did not close".to_owned(),
            );
        }
        if let Some(p) = self.get("noisy user") {
            expect(
                p.tally.status(429) >= 10
                    && p.tally.too_many_with_retry_after == p.tally.status(429),
                format!(
                    "noisy user: expected 10 or more 429s, each with Retry-After: {:?}",
                    p.tally
                ),
            );
        }
        if let Some(p) = self.get("burst") {
            expect(
                p.tally.status(429) >= 20
                    && p.tally.too_many_with_retry_after == p.tally.status(429),
                format!(
                    "burst: expected 20 or more 429s, each with Retry-After: {:?}",
                    p.tally
                ),
            );
        }
        for p in &self.phases {
            expect(
                p.tally.unexpected() == 0,
                format!("{}: answers other than 200 and 429: {:?}", p.name, p.tally),
            );
        }
        let total = ledger().total();
        expect(
            total.cost_usd > fastagentic::pricing::Decimal::ZERO,
            format!("the ledger priced nothing: {total:?}"),
        );
        self.problems.extend(problems);
    }

    fn print_table(&self) {
        let mut total = Tally::default();
        let mut events = Events::default();
        let mut cost = 0.0;
        let mut elapsed = Duration::ZERO;
        println!();
        println!(
            "{:<11} {:>8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>9} {:>6} {:>7} {:>10}",
            "phase",
            "requests",
            "200 4o",
            "200 son",
            "429",
            "other",
            "retries",
            "fallbacks",
            "opens",
            "closes",
            "cost USD"
        );
        println!("{}", "-".repeat(96));
        let row = |name: &str, t: &Tally, e: &Events, cost: f64| {
            println!(
                "{:<11} {:>8} {:>8} {:>8} {:>6} {:>6} {:>8} {:>9} {:>6} {:>7} {:>10.6}",
                name,
                t.requests,
                t.ok(PRIMARY),
                t.ok(BACKUP),
                t.status(429),
                t.unexpected(),
                e.retries,
                e.fallbacks,
                e.opens,
                e.closes,
                cost
            );
        };
        for p in &self.phases {
            row(p.name, &p.tally, &p.events, p.cost_usd);
            total.merge(&p.tally);
            events.retries += p.events.retries;
            for (class, n) in &p.events.retry_causes {
                *events.retry_causes.entry(class.clone()).or_default() += n;
            }
            events.fallbacks += p.events.fallbacks;
            events.opens += p.events.opens;
            events.half_opens += p.events.half_opens;
            events.closes += p.events.closes;
            cost += p.cost_usd;
            elapsed += p.elapsed;
        }
        println!("{}", "-".repeat(96));
        row("total", &total, &events, cost);
        println!();
        println!(
            "200 4o / 200 son: answered by {PRIMARY} / by {BACKUP} (the fallback). \
             {} requests in {:.1} s.",
            total.requests,
            elapsed.as_secs_f64()
        );
        let causes: Vec<String> = events
            .retry_causes
            .iter()
            .map(|(class, n)| format!("{class} {n}"))
            .collect();
        println!("Retries by cause: {}.", causes.join(", "));
        println!(
            "Breaker of {PRIMARY}: opened {} time(s), let probes through {} time(s), closed {} time(s).",
            events.opens, events.half_opens, events.closes
        );
        for name in ["noisy user", "burst"] {
            if let Some(sample) = self.get(name).and_then(|p| p.tally.sample_429.as_ref()) {
                println!("A 429 of phase `{name}`: {sample}");
            }
        }
        println!();
        println!("Spend ledger (fastagentic::spend::ledger()):");
        for (model, t) in ledger().by_model() {
            println!(
                "  {model:<18} {:>4} calls {:>6} tokens  ${:.6}  ({} unpriced)",
                t.calls, t.tokens, t.cost_usd, t.unpriced_calls
            );
        }
        let t = ledger().total();
        println!(
            "  {:<18} {:>4} calls {:>6} tokens  ${:.6}  ({} unpriced)",
            "total", t.calls, t.tokens, t.cost_usd, t.unpriced_calls
        );
    }
}

/// The metrics `GET /metrics` is printed for.
const KEY_METRICS: [&str; 8] = [
    "fastagentic_requests_total",
    "fastagentic_retries_total",
    "fastagentic_fallback_triggered_total",
    "fastagentic_circuit_opens_total",
    "fastagentic_circuit_state",
    "fastagentic_rate_limited_total",
    "fastagentic_llm_cost_usd_total",
    "fastagentic_tool_calls_total",
];

async fn phases(tour: &mut Tour) -> Result<(), String> {
    tour.phase(
        "steady",
        "normal traffic, gpt-4o answers",
        async |d, _, _| Ok((d.run(60, 8, Duration::ZERO, regular_user).await, None)),
    )
    .await?;

    tour.phase(
        "flaky",
        "provider 429s (Retry-After), a 503, a 529, a hung call: retried",
        async |d, fake, _| {
            // Consumed in order by the calls as they reach the provider; an empty queue
            // answers the canned success.
            fake.push(Reply::stall());
            fake.push(Reply::server_error(503));
            fake.push(Reply::overloaded());
            for _ in 0..6 {
                fake.push(Reply::rate_limited_ms(80));
                fake.push(Reply::canned());
                fake.push(Reply::rate_limited_ms(80));
                fake.push(Reply::canned());
                fake.push(Reply::canned());
            }
            let tally = d.run(60, 8, Duration::ZERO, regular_user).await;
            if fake.queued() != 0 {
                return Err(format!("flaky: {} scripted replies unused", fake.queued()));
            }
            Ok((tally, None))
        },
    )
    .await?;

    // Let the breaker's one-second failure window forget the flaky phase, so that the
    // outage below opens it on its own five failures.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let breaker = tour.driver.primary_breaker().await?;
        if breaker["failures_in_window"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the breaker's failure window did not clear: {breaker}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    tour.phase(
        "outage",
        "five 503s open gpt-4o's breaker: fail fast onto claude",
        async |d, fake, _| {
            fake.push_n(Reply::server_error(503), FAILURE_THRESHOLD);
            let tally = d.run(60, 8, Duration::ZERO, regular_user).await;
            let breaker = d.primary_breaker().await?;
            if breaker["state"] != "open" {
                return Err(format!(
                    "outage: the breaker of {PRIMARY} is not open: {breaker}"
                ));
            }
            let note = format!(
                "then /endpoints shows the breaker of {PRIMARY} {}, retry in {} ms",
                breaker["state"].as_str().unwrap_or("?"),
                breaker["retry_after_ms"]
            );
            Ok((tally, Some(note)))
        },
    )
    .await?;

    tour.phase(
        "recovery",
        "after reset_timeout probes succeed, the breaker closes",
        async |d, fake, events| {
            let closes_before = snapshot(events).closes;
            let closed = {
                let (events, fake) = (events.clone(), fake.clone());
                move || snapshot(&events).closes > closes_before && fake.queued() == 0
            };
            let waiting = Instant::now();
            let mut tally = tokio::time::timeout(
                Duration::from_secs(15),
                d.run_until(None, 4, Duration::from_millis(100), regular_user, closed),
            )
            .await
            .map_err(|_| "recovery: the breaker did not close within 15 s".to_owned())?;
            let waited = waiting.elapsed();
            // Closed: gpt-4o answers again.
            let after = d.run(20, 4, Duration::ZERO, regular_user).await;
            if after.ok(PRIMARY) != 20 {
                return Err(format!(
                    "recovery: after the breaker closed, {PRIMARY} did not answer all 20 \
                     requests: {after:?}"
                ));
            }
            tally.merge(&after);
            let note = format!(
                "the breaker closed {} ms into the phase; {PRIMARY} then answered 20 of 20",
                waited.as_millis()
            );
            Ok((tally, Some(note)))
        },
    )
    .await?;

    tour.phase(
        "noisy user",
        "mallory goes over per_user_rpm = 20",
        async |d, _, _| Ok((d.run(40, 8, Duration::ZERO, mallory).await, None)),
    )
    .await?;

    tour.phase(
        "burst",
        "60 more requests at once than requests_per_minute leaves",
        async |d, _, _| {
            let probe = Mutex::new(Tally::default());
            let remaining = d
                .remaining(&probe)
                .await
                .ok_or("burst: no X-RateLimit-Remaining on a success")?;
            let burst = remaining + 60;
            d.bar.inc_length(burst as u64);
            let mut tally = probe.lock().unwrap_or_else(PoisonError::into_inner).clone();
            tally.merge(&d.run(burst, 16, Duration::ZERO, anonymous).await);
            let note = format!("{remaining} left in the minute; {burst} sent, 16 in flight");
            Ok((tally, Some(note)))
        },
    )
    .await?;

    tour.phase(
        "tool retry",
        "gpt-4o calls a tool that fails once: retried, then answered",
        async |d, fake, _| {
            fake.push(Reply::json(200, STOCK_CALL));
            STOCK_FAILS_NEXT.store(true, Ordering::SeqCst);
            let before = STOCK_ATTEMPTS.load(Ordering::SeqCst);
            let tally = d.ask_agent("How many A-1 are in stock?").await;
            let attempts = STOCK_ATTEMPTS.load(Ordering::SeqCst) - before;
            if tally.ok(PRIMARY) != 1 || attempts != 2 {
                return Err(format!(
                    "tool retry: expected {PRIMARY} to answer after 2 tool attempts, got \
                     {attempts} attempts and {tally:?}"
                ));
            }
            Ok((
                tally,
                Some("the stock tool failed with a 502, ran again after 20 ms, answered".into()),
            ))
        },
    )
    .await?;

    let backup = tour.backup.clone();
    tour.phase(
        "mid-loop",
        "gpt-4o calls a tool, then 503s: claude continues the conversation",
        async move |d, fake, _| {
            fake.push(Reply::json(200, STOCK_CALL));
            fake.push_n(Reply::server_error(503), 2);
            let before = STOCK_ATTEMPTS.load(Ordering::SeqCst);
            let tally = d.ask_agent("How many A-1 are in stock?").await;
            let attempts = STOCK_ATTEMPTS.load(Ordering::SeqCst) - before;
            let sent = backup
                .requests()
                .last()
                .and_then(|r| r.json())
                .unwrap_or_default();
            let answered = &sent["messages"][2]["content"][0];
            if tally.ok(BACKUP) != 1 || attempts != 1 || answered["type"] != "tool_result" {
                return Err(format!(
                    "mid-loop: expected {BACKUP} to answer from the transcript with the \
                     tool run once; got {attempts} tool runs, {tally:?}, and sent {sent}"
                ));
            }
            let note = format!(
                "{BACKUP} got the call as tool_use and its result as tool_result ({}); the \
                 tool ran once",
                answered["content"]
            );
            Ok((tally, Some(note)))
        },
    )
    .await?;

    tour.phase(
        "checkpoint",
        "a durable run: its deadline cuts it (202), a resume finishes it",
        async |d, fake, _| {
            fake.push(Reply::canned());
            // Hangs past the run's 1 s deadline: the run checkpoints after one step.
            fake.push(Reply::canned().first_byte_delay(Duration::from_secs(5)));
            fake.push(Reply::canned());
            let before = fake.requests().len();
            let (tally, note) = d.checkpoint_and_resume().await?;
            let calls = fake.requests().len() - before;
            if calls != 3 || tally.ok(PRIMARY) != 1 || !note.contains("paying 19 tokens") {
                return Err(format!(
                    "checkpoint: expected 3 calls to {PRIMARY} (one cut) and a resume that \
                     paid for one; got {calls} calls, {tally:?}: {note}"
                ));
            }
            Ok((tally, Some(note)))
        },
    )
    .await?;
    Ok(())
}

async fn tour() -> Result<ExitCode, String> {
    let started = Instant::now();
    // The providers: two fake servers on loopback, each speaking its vendor's wire.
    let primary = FakeServer::start()
        .await
        .map_err(|e| format!("cannot start the fake provider: {e}"))?;
    let backup = FakeServer::start()
        .await
        .map_err(|e| format!("cannot start the fake provider: {e}"))?;
    let providers = Providers::new()
        .with(OpenAi::new("sk-tour").base_url(format!("{}/v1", primary.base_url())))
        .with(Anthropic::new("sk-ant-tour").base_url(backup.base_url()));

    let events = SharedEvents::default();
    let mut app = App::new("fastagentic tour")
        .version(env!("CARGO_PKG_VERSION"))
        .providers(providers)
        // The durable `/report` runs' journals, for as long as the tour runs.
        .run_store(fastagentic::durable::MemoryRunStore::new())
        .shutdown_timeout(Duration::from_secs(5));
    for hook in hooks(&events) {
        app = app.hook(hook);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));

    println!("fastagentic tour: POST /ask on http://{address}");
    println!(
        "  {PRIMARY:<18} <- fake OpenAI server    {}  (scripted failures)",
        primary.base_url()
    );
    println!(
        "  {BACKUP:<18} <- fake Anthropic server {}  (always answers)",
        backup.base_url()
    );
    println!(
        "  policies: rate_limit 480 rpm, 20 per user; timeout 15 s, 1.5 s per call; breaker 5 \
         failures in 1 s, reset 1 s; retry 3 attempts from 20 ms; fallback {PRIMARY} -> {BACKUP}"
    );
    println!();

    let bar = ProgressBar::new(60 + 60 + 60 + 20 + 40 + 2 + 2);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<11} [{elapsed_precise}] [{bar:40}] {pos}/{len} ({per_sec})",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let driver = Driver {
        client,
        base: format!("http://{address}"),
        bar: bar.clone(),
    };
    let mut tour = Tour {
        driver: driver.clone(),
        primary: primary.clone(),
        backup: backup.clone(),
        events,
        phases: Vec::new(),
        problems: Vec::new(),
    };
    let outcome = phases(&mut tour).await;
    bar.finish_and_clear();
    if let Err(problem) = outcome {
        tour.expect(false, problem);
    }
    tour.check();
    tour.print_table();

    println!();
    println!("GET /metrics (key lines):");
    let metrics = driver
        .client
        .get(format!("{}/metrics", driver.base))
        .send()
        .await
        .map_err(|e| format!("GET /metrics: {e}"))?
        .text()
        .await
        .map_err(|e| format!("GET /metrics: {e}"))?;
    for line in metrics.lines() {
        if !line.starts_with('#') && KEY_METRICS.iter().any(|m| line.starts_with(m)) {
            println!("  {line}");
        }
    }
    tour.expect(
        metrics.contains("fastagentic_requests_total{endpoint=\"/ask\""),
        "/metrics has no fastagentic_requests_total for /ask",
    );
    tour.expect(
        metrics.contains(
            "fastagentic_requests_total{endpoint=\"/report\",outcome=\"checkpointed\"} 1",
        ),
        "/metrics does not count /report's checkpoint",
    );

    // Graceful shutdown: no request is in flight; the server drains and returns.
    drop(tour.driver);
    drop(driver);
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tour.problems.push(format!("the server failed: {e}")),
        Ok(Err(e)) => tour.problems.push(format!("the server task failed: {e}")),
        Err(_) => tour
            .problems
            .push("the server did not shut down in 10 s".to_owned()),
    }
    primary.shutdown();
    backup.shutdown();

    println!();
    if tour.problems.is_empty() {
        println!(
            "Tour complete in {:.1} s: retries, Retry-After, timeouts, an opening and closing \
             breaker, fallbacks, rate limits and a checkpointed run's resume all showed up. Server shut down cleanly.",
            started.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("The tour did not go as expected:");
        for problem in &tour.problems {
            eprintln!("  - {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match tour().await {
        Ok(code) => code,
        Err(problem) => {
            eprintln!("The tour could not run: {problem}");
            ExitCode::FAILURE
        }
    }
}
