//! A durable endpoint served by a process of its own, for `tests/tests/durable_crash.rs`
//! to `kill -9` mid-run and start again on the same SQLite file.
//!
//! ```text
//! durable_server serve        serves POST /crash/report on a free loopback port and
//!                             prints `listening on http://ADDR` once it accepts
//! durable_server torn-write RUN_ID INDEX
//!                             begins writing a large step INDEX of RUN_ID straight into
//!                             the runs file, prints `writing` and waits, mid-transaction,
//!                             to be killed: a journal write torn by a crash
//! ```
//!
//! The runs file is `FASTAGENTIC_RUNS_PATH`; the model is OpenAI's, at
//! `OPENAI_BASE_URL` (the test's fake provider server); the tool and the `ctx.step`
//! append a line to `CRASH_SIDE_EFFECTS` each time they run, so the test can count them
//! across processes.

use std::io::Write;

use fastagentic::prelude::*;
use fastagentic::tools::Tool;
use fastagentic::{App, llm::Providers};
use schemars::JsonSchema;

#[derive(Clone, Deserialize, Serialize)]
struct Ask {
    topic: String,
}

#[derive(Deserialize, Serialize)]
struct Report {
    outline: String,
    notes: String,
    reviewer: String,
    draft: String,
    summary: String,
}

#[derive(Deserialize, Serialize, JsonSchema)]
struct Topic {
    topic: String,
}

/// Appends `what` to the side-effects file: a count that survives the process.
fn record(what: &str) -> Result<(), AgentError> {
    let path = std::env::var("CRASH_SIDE_EFFECTS")
        .map_err(|_| AgentError::new(ErrorClass::Other, "CRASH_SIDE_EFFECTS is not set"))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| AgentError::new(ErrorClass::Other, err.to_string()))?;
    writeln!(file, "{what}").map_err(|err| AgentError::new(ErrorClass::Other, err.to_string()))
}

fn notes() -> Result<Tool<Topic, String>, AgentError> {
    Tool::new(
        "notes",
        "The notes kept on a topic",
        |t: Topic| async move {
            record("tool:notes")?;
            Ok::<_, AgentError>(format!("notes on {}", t.topic))
        },
    )
    .map_err(|err| AgentError::new(ErrorClass::Other, err.to_string()))
}

/// Five steps: three model calls, with a tool call and a sign-off between them.
#[agent_endpoint(
    path = "/crash/report",
    model = "gpt-4o-mini",
    durable = true,
    timeout(total_ms = 1_500, checkpoint_ms = 200, on_timeout = "checkpoint")
)]
async fn report(ctx: AgentContext, ask: Ask) -> Result<Report, AgentError> {
    let outline = ctx.llm().complete(Prompt::user("outline")).await?;
    let notes = ctx
        .tool(
            &notes()?,
            Topic {
                topic: ask.topic.clone(),
            },
        )
        .await?;
    let reviewer: String = ctx
        .step("sign-off", async {
            record("step:sign-off")?;
            Ok::<_, AgentError>("reviewer".to_owned())
        })
        .await?;
    let draft = ctx.llm().complete(Prompt::user("draft")).await?;
    let summary = ctx.llm().complete(Prompt::user("summary")).await?;
    Ok(Report {
        outline: outline.text,
        notes,
        reviewer,
        draft: draft.text,
        summary: summary.text,
    })
}

fn runs_path() -> Result<String, String> {
    std::env::var(fastagentic::durable::RUNS_PATH_ENV)
        .map_err(|_| format!("{} is not set", fastagentic::durable::RUNS_PATH_ENV))
}

async fn serve() -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|err| err.to_string())?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    let app = App::bare("durable crash server")
        .endpoint(fastagentic::endpoint::find("/crash/report").ok_or("no /crash/report")?)
        .providers(Providers::from_env());
    println!("listening on http://{address}");
    std::io::stdout().flush().map_err(|err| err.to_string())?;
    app.serve_with(listener, std::future::pending())
        .await
        .map_err(|err| err.to_string())
}

/// Writes step `index` of `run_id` as the store would, but stops before the commit:
/// the step is large, so SQLite spills its pages into the write-ahead log first.
fn torn_write(run_id: &str, index: u32) -> Result<(), String> {
    let connection = rusqlite::Connection::open(runs_path()?).map_err(|err| err.to_string())?;
    connection
        .pragma_update(None, "cache_size", 8)
        .map_err(|err| err.to_string())?;
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|err| err.to_string())?;
    let output = serde_json::Value::String("x".repeat(4 << 20)).to_string();
    connection
        .execute(
            "INSERT INTO fastagentic_steps (run_id, idx, name, output, completed_ms) \
             VALUES (?1, ?2, 'tool:notes', ?3, 0)",
            rusqlite::params![run_id, index, output],
        )
        .map_err(|err| err.to_string())?;
    println!("writing");
    std::io::stdout().flush().map_err(|err| err.to_string())?;
    loop {
        std::thread::park();
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let done = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve"] => serve().await,
        ["torn-write", run_id, index] => match index.parse() {
            Ok(index) => torn_write(run_id, index),
            Err(_) => Err(format!("{index:?} is not a step index")),
        },
        _ => Err("usage: durable_server serve | torn-write RUN_ID INDEX".to_owned()),
    };
    if let Err(err) = done {
        eprintln!("durable_server: {err}");
        std::process::exit(1);
    }
}
