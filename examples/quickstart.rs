//! The quickstart: an agent server with four endpoints, ready in one command.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! - `POST /chat` takes `{"model"?, "prompt", "stream"?, "max_tokens"?}` and answers
//!   `{"text", "model", "provider", "finish_reason", "usage", "cost_usd"}`, or a
//!   `text/event-stream` of deltas when `"stream": true`.
//! - `POST /analyze` takes `{"text"}` and runs behind every policy: a rate limit, a total
//!   timeout, a circuit breaker, retries and a fallback chain.
//! - `POST /agent` takes `{"question"}` and lets the model use two tools, a calculator
//!   and a clock, until it answers `{"answer", "steps", "tools_used", "cost_usd"}`; with
//!   `Accept: text/event-stream` it streams the tool calls, their results and the text.
//!
//! - `POST /research` takes `{"topic"}` and is *durable*: three model calls with a clock
//!   reading between them, under a deadline deliberately too short for all of them. A run
//!   the deadline cuts answers `202` with `Location: /runs/{id}`; `POST
//!   /runs/{id}/resume` runs it on from its journal (the calls already answered are not
//!   made, or paid for, again). Runs are kept in `fastagentic-runs.sqlite3` (or the file
//!   `FASTAGENTIC_RUNS_PATH` names), so they survive a restart too.
//!
//! - `POST /v1/chat/completions` and `GET /v1/models` speak OpenAI's Chat Completions
//!   API, so the official SDKs and any OpenAI-style client work unchanged with
//!   `base_url = "http://127.0.0.1:8000/v1"`. `model` names a served model or a route:
//!   `smart` tries each provider with a key in turn; `outage-drill` starts at a mock
//!   provider that is always overloaded, so its fallback can be watched offline.
//!
//! With no API key set it answers from the built-in mock provider (models named
//! `mock/...`), so it works offline. Set `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` or
//! `GEMINI_API_KEY` (and `*_BASE_URL` for a gateway) to use a real provider; `PORT`
//! chooses the port (default 8000) and `HOST` the interface (default 127.0.0.1: with a key
//! set, whoever reaches the port spends on that key).

use std::sync::LazyLock;
use std::time::Duration;

use fastagentic::llm::{Completion, MockProvider, MockReply, Providers, Role, Usage};
use fastagentic::prelude::*;
use fastagentic::reliability::PolicyError;
use fastagentic::server::{Gateway, GatewayRoute};
use fastagentic::tools::{Tool, Tools};
use fastagentic::{App, ClassSet};
use schemars::JsonSchema;

/// The model used when a request names none: the first provider with a key, else the
/// mock.
fn default_model() -> &'static str {
    if has_key("OPENAI_API_KEY") {
        "gpt-4o-mini"
    } else if has_key("ANTHROPIC_API_KEY") {
        "claude-haiku-4-5"
    } else if has_key("GEMINI_API_KEY") {
        "gemini-2.5-flash"
    } else {
        "mock/gpt-4o-mini"
    }
}

/// One model per provider with a key, else two of the mock's: what the front door serves
/// under their own names, and the order `smart` tries them in.
fn keyed_models() -> Vec<&'static str> {
    let keyed: Vec<&str> = [
        ("OPENAI_API_KEY", "gpt-4o-mini"),
        ("ANTHROPIC_API_KEY", "claude-haiku-4-5"),
        ("GEMINI_API_KEY", "gemini-2.5-flash"),
    ]
    .into_iter()
    .filter(|(var, _)| has_key(var))
    .map(|(_, model)| model)
    .collect();
    if keyed.is_empty() {
        vec!["mock/gpt-4o-mini", "mock/claude-haiku-4-5"]
    } else {
        keyed
    }
}

/// The OpenAI-compatible front door. Clients name `smart`, `outage-drill` or a model.
fn gateway() -> Result<Gateway, PolicyError> {
    let on = ClassSet::of(&[
        ErrorClass::RateLimit,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
    ]);
    let models = keyed_models();
    let smart = (models[1..].iter())
        .fold(FallbackChain::builder(models[0]), |chain, model| {
            chain.then(*model, on)
        })
        .build()?;
    let drill = FallbackChain::builder("mock/outage")
        .then("mock/gpt-4o-mini", on)
        .build()?;
    let mut gateway = Gateway::new()
        .route(GatewayRoute::new("smart", smart).description("each provider with a key, in turn"))
        .route(
            GatewayRoute::new("outage-drill", drill)
                .description("an always-overloaded mock, then a healthy one: a fallback to watch"),
        )
        .retry(
            RetryPolicy::builder()
                .max_attempts(2)
                .initial_delay(Duration::from_millis(250))
                .build()?,
        )
        .rate_limit(RateLimitPolicy::builder().per_user_rpm(20).build()?);
    // The drill's healthy model is served by name too, keys or not.
    let mock = (!models.contains(&"mock/gpt-4o-mini")).then_some("mock/gpt-4o-mini");
    for model in models.into_iter().chain(mock) {
        gateway = gateway.model(model);
    }
    Ok(gateway)
}

fn has_key(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

#[derive(Clone, Deserialize, JsonSchema)]
struct ChatRequest {
    /// `gpt-4o`, `claude-sonnet-4-5`, `gemini-2.5-flash`, `mock/anything`, ...
    #[serde(default)]
    model: Option<String>,
    prompt: String,
    /// Read by the server: `true` answers with server-sent events.
    #[serde(default)]
    #[allow(dead_code)]
    stream: bool,
    #[serde(default)]
    max_tokens: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct ChatResponse {
    text: String,
    model: String,
    provider: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    cost_usd: Option<f64>,
}

impl From<Completion> for ChatResponse {
    fn from(reply: Completion) -> Self {
        ChatResponse {
            finish_reason: reply
                .finish_reason
                .as_ref()
                .and_then(|reason| serde_json::to_value(reason).ok())
                .and_then(|value| value.as_str().map(str::to_owned)),
            usage: reply.usage,
            cost_usd: reply.cost_usd.and_then(|cost| cost.try_into().ok()),
            text: reply.text,
            model: reply.model,
            provider: reply.provider.to_string(),
        }
    }
}

/// Asks the model the request names (or the default one) and answers with its reply,
/// usage and cost.
#[agent_endpoint(
    path = "/chat",
    retry(max_attempts = 3, initial_delay_ms = 250, max_delay_ms = 5_000),
    timeout(total_ms = 120_000, llm_call_ms = 60_000)
)]
async fn chat(ctx: AgentContext, request: ChatRequest) -> Result<ChatResponse, AgentError> {
    let model = request.model.unwrap_or_else(|| default_model().to_owned());
    // The caller names the model, so only priced ones are served: an open door to any
    // name would let one client fill the ledger and the metrics with made-up models (and
    // an expensive one would be billed to whoever runs this server).
    if let Err(unknown) = fastagentic::pricing::global().lookup(&model) {
        return Err(AgentError::new(
            ErrorClass::InvalidInput,
            unknown.to_string(),
        ));
    }
    let mut prompt = Prompt::user(&request.prompt);
    if let Some(limit) = request.max_tokens {
        prompt = prompt.max_tokens(limit);
    }
    let llm = ctx.llm().with_model(model);
    // A streaming request gets the deltas as they arrive; `collect` still returns the
    // whole answer, which becomes the stream's final `done` event.
    let reply = if ctx.is_streaming() {
        llm.stream(prompt).await?.collect().await?
    } else {
        llm.complete(prompt).await?
    };
    Ok(reply.into())
}

#[derive(Clone, Deserialize, JsonSchema)]
struct Document {
    text: String,
}

#[derive(Serialize, JsonSchema)]
struct Analysis {
    analysis: String,
    model: String,
    cost_usd: Option<f64>,
}

/// The fallback chain of `/analyze`: a large model, then a small one when the large one
/// is rate limited, times out or is down. Computed at start-up so it follows the keys
/// that are set.
fn analysis_chain() -> Result<FallbackChain, fastagentic::reliability::PolicyError> {
    let (large, small) = match default_model() {
        "gpt-4o-mini" => ("gpt-4o", "gpt-4o-mini"),
        "claude-haiku-4-5" => ("claude-sonnet-4-5", "claude-haiku-4-5"),
        "gemini-2.5-flash" => ("gemini-2.5-pro", "gemini-2.5-flash"),
        _ => ("mock/gpt-4o", "mock/gpt-4o-mini"),
    };
    FallbackChain::builder(large)
        .then(
            small,
            ClassSet::of(&[
                ErrorClass::RateLimit,
                ErrorClass::Timeout,
                ErrorClass::ServerError,
                ErrorClass::Overloaded,
                ErrorClass::CircuitOpen,
            ]),
        )
        .build()
}

/// Summarizes a document, behind every policy fastagentic has.
#[agent_endpoint(
    path = "/analyze",
    rate_limit(requests_per_minute = 60, per_user_rpm = 20),
    timeout(total_ms = 60_000, llm_call_ms = 20_000),
    circuit_breaker(failure_threshold = 5, failure_window_ms = 60_000, reset_timeout_ms = 30_000),
    retry(max_attempts = 3, backoff = "exponential", initial_delay_ms = 500,
          max_delay_ms = 10_000, jitter = true,
          retry_on = ["rate_limit", "timeout", "server_error", "overloaded"]),
    fallback = analysis_chain(),
)]
async fn analyze(ctx: AgentContext, doc: Document) -> Result<Analysis, AgentError> {
    let prompt = Prompt::user(&doc.text).system("Summarize the user's text in two sentences.");
    let reply = ctx.llm().complete(prompt).await?;
    Ok(Analysis {
        analysis: reply.text,
        model: ctx.model().to_owned(),
        cost_usd: reply.cost_usd.and_then(|cost| cost.try_into().ok()),
    })
}

#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Operation {
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// `a <operation> b`.
#[derive(Deserialize, Serialize, JsonSchema)]
struct Calculation {
    a: f64,
    operation: Operation,
    b: f64,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct NoInput {}

/// The agent's tools: arithmetic it should not do in its head, and the time it cannot
/// know.
fn agent_tools() -> Result<Tools, fastagentic::tools::InvalidTool> {
    let calculator = Tool::new(
        "calculator",
        "Computes a + b, a - b, a * b or a / b exactly",
        |c: Calculation| async move {
            match c.operation {
                Operation::Add => Ok(c.a + c.b),
                Operation::Subtract => Ok(c.a - c.b),
                Operation::Multiply => Ok(c.a * c.b),
                Operation::Divide if c.b == 0.0 => Err(AgentError::new(
                    ErrorClass::InvalidInput,
                    "cannot divide by zero",
                )),
                Operation::Divide => Ok(c.a / c.b),
            }
        },
    )?;
    let clock = Tool::new(
        "clock",
        "The current date and time in UTC",
        |_: NoInput| async {
            Ok::<_, AgentError>(httpdate::fmt_http_date(std::time::SystemTime::now()))
        },
    )?;
    Ok(Tools::new().with(calculator).with(clock).max_steps(6))
}

#[derive(Clone, Deserialize, JsonSchema)]
struct Question {
    question: String,
}

#[derive(Serialize, JsonSchema)]
struct AgentReply {
    answer: String,
    steps: usize,
    tools_used: Vec<String>,
    cost_usd: Option<f64>,
}

/// Answers a question with the calculator and the clock at hand.
#[agent_endpoint(
    path = "/agent",
    retry(max_attempts = 3, initial_delay_ms = 250),
    timeout(total_ms = 120_000, llm_call_ms = 60_000, tool_call_ms = 5_000)
)]
async fn agent(ctx: AgentContext, question: Question) -> Result<AgentReply, AgentError> {
    // Declared once for the process: a tool's schema is derived when it is built.
    static TOOLS: LazyLock<Result<Tools, fastagentic::tools::InvalidTool>> =
        LazyLock::new(agent_tools);
    let tools = (*TOOLS)
        .as_ref()
        .map_err(|err| AgentError::new(ErrorClass::Other, err.to_string()))?;
    let prompt = Prompt::user(&question.question)
        .system("Use the calculator for arithmetic and the clock for the time.");
    let answer = ctx
        .llm()
        .with_model(default_model())
        .run(prompt, tools)
        .await?;
    Ok(AgentReply {
        answer: answer.text().to_owned(),
        steps: answer.steps.len(),
        tools_used: answer
            .steps
            .iter()
            .flat_map(|s| s.tool_calls.clone())
            .collect(),
        cost_usd: answer.cost_usd().and_then(|cost| cost.try_into().ok()),
    })
}

/// The researcher's instructions; the mock answers prompts carrying them slowly, the way
/// a long answer from a real model takes time.
const RESEARCHER: &str = "You are a careful researcher. Answer in plain prose.";

/// How long the mock takes over each research call: two fit in `/research`'s deadline,
/// three do not.
const MOCK_RESEARCH_LATENCY: Duration = Duration::from_millis(600);

#[derive(Clone, Deserialize, Serialize, JsonSchema)]
struct Topic {
    /// What to research.
    topic: String,
}

#[derive(Serialize, JsonSchema)]
struct Research {
    topic: String,
    outline: String,
    draft: String,
    summary: String,
    /// When the sources were read: recorded once, so a resumed run reports the same.
    sources_read_at: String,
    /// What the run's three model calls cost, whichever requests made them.
    cost_usd: Option<f64>,
}

/// Researches a topic in three model calls, under a deadline two of them fill.
///
/// Durable: each call (and the clock reading between them) is a step of the run's
/// journal. When the 1.5 s deadline cuts the run it answers 202 with where to resume it;
/// a resume answers the steps already done from the journal and makes only the rest.
#[agent_endpoint(
    path = "/research",
    durable = true,
    timeout(total_ms = 1_500, checkpoint_ms = 1_000, on_timeout = "checkpoint")
)]
async fn research(ctx: AgentContext, topic: Topic) -> Result<Research, AgentError> {
    let llm = ctx.llm().with_model(default_model());
    let ask = |task: String| Prompt::user(task).system(RESEARCHER);
    let outline = llm
        .complete(ask(format!("Outline three points about {}.", topic.topic)))
        .await?;
    // Not a model call, and not deterministic: as a step it is read once per run.
    let sources_read_at = ctx
        .step("read sources", async {
            Ok::<_, AgentError>(httpdate::fmt_http_date(std::time::SystemTime::now()))
        })
        .await?;
    let draft = llm
        .complete(ask(format!("Write up this outline:\n{}", outline.text)))
        .await?;
    let summary = llm
        .complete(ask(format!("Summarize in one sentence:\n{}", draft.text)))
        .await?;
    let calls = [&outline, &draft, &summary];
    let cost: Option<rust_decimal::Decimal> = calls.iter().map(|c| c.cost_usd).sum();
    Ok(Research {
        topic: topic.topic,
        outline: outline.text,
        draft: draft.text,
        summary: summary.text,
        sources_read_at,
        cost_usd: cost.and_then(|cost| cost.try_into().ok()),
    })
}

/// The mock as a scripted agent, for when no key is set: asked a question with tools on
/// offer, it calls the clock and, when the question holds two numbers, the calculator
/// (adding them, or whatever `times`, `minus` or `divided` asks); once the tools have
/// answered, it answers with what they said.
fn scripted_agent(model: &str, prompt: &Prompt) -> Option<MockReply> {
    // The first model of the `outage-drill` route is down for good.
    if model == "outage" {
        return Some(MockReply::overloaded());
    }
    let researching = prompt
        .messages()
        .iter()
        .any(|m| m.role == Role::System && m.content == RESEARCHER);
    if researching {
        let asked = prompt.messages().last().map_or("", |m| m.content.as_str());
        let first_line = asked.lines().next().unwrap_or("");
        let reply = format!("(mock) An answer to: {first_line}");
        return Some(MockReply::text(reply).latency(MOCK_RESEARCH_LATENCY));
    }
    let offered = |name: &str| prompt.tools.iter().any(|t| t.name == name);
    let answered = prompt.messages().iter().any(|m| m.role == Role::Tool);
    if answered || !offered("clock") {
        return None;
    }
    let mut reply = MockReply::tool_call("clock", serde_json::json!({}));
    let question = prompt
        .messages()
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str());
    let numbers: Vec<f64> = question
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| word.parse().ok())
        .collect();
    if let ([a, b, ..], true) = (numbers.as_slice(), offered("calculator")) {
        let operation = ["times", "minus", "divided"]
            .into_iter()
            .zip(["multiply", "subtract", "divide"])
            .find(|(word, _)| question.contains(word))
            .map_or("add", |(_, operation)| operation);
        reply = reply.and_call(
            "calculator",
            serde_json::json!({"a": a, "operation": operation, "b": b}),
        );
    }
    Some(reply)
}

#[tokio::main]
async fn main() -> Result<(), fastagentic::ServeError> {
    // Loopback only unless HOST says otherwise: with a key set, whoever reaches the port
    // spends on that key.
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| {
            eprintln!("PORT={port:?} is not a port number; using 8000");
            8000
        }),
        Err(_) => 8000,
    };
    let model = default_model();
    if model.starts_with("mock/") {
        println!(
            "No provider key set (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY): \
             answering from the built-in mock provider (models `mock/...`)."
        );
    } else {
        println!("Default model: {model}");
    }
    println!("fastagentic quickstart on http://{host}:{port}  (Ctrl-C stops it)");
    println!("Try:");
    println!(
        "  curl -s http://127.0.0.1:{port}/chat -H 'content-type: application/json' \
         -d '{{\"prompt\": \"What is a circuit breaker?\"}}'"
    );
    println!(
        "  curl -N http://127.0.0.1:{port}/chat -H 'content-type: application/json' \
         -d '{{\"prompt\": \"Stream me a haiku\", \"stream\": true}}'"
    );
    println!(
        "  curl -s http://127.0.0.1:{port}/agent -H 'content-type: application/json' \
         -d '{{\"question\": \"What is 12 times 7, and what time is it?\"}}'"
    );
    println!(
        "  curl -si http://127.0.0.1:{port}/research -H 'content-type: application/json' \
         -d '{{\"topic\": \"circuit breakers\"}}'   (202: then POST the `resume` URL)"
    );
    println!(
        "  curl -s http://127.0.0.1:{port}/v1/chat/completions -H 'content-type: application/json' \
         -d '{{\"model\": \"outage-drill\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}]}}'"
    );
    println!("  curl -s http://127.0.0.1:{port}/endpoints");
    println!("  curl -s http://127.0.0.1:{port}/openapi.json");
    println!("Open http://127.0.0.1:{port}/status in a browser for the live status page.");
    let gateway = match gateway() {
        Ok(gateway) => gateway,
        Err(err) => {
            eprintln!("the quickstart's gateway policies are invalid: {err}");
            std::process::exit(1);
        }
    };
    App::new("fastagentic quickstart")
        .openai_compatible(gateway)
        .providers(Providers::from_env().with(MockProvider::new().responder(scripted_agent)))
        .version(env!("CARGO_PKG_VERSION"))
        .serve(format!("{host}:{port}"))
        .await
}
