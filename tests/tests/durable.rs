//! Durable endpoints over real HTTP, their runs in a SQLite file: a run cut by its
//! total timeout answers 202 and resumes from its journal without calling the model or
//! the tool again or billing them twice; a second resume is answered from the store; a
//! concurrent resume gets 409; `Idempotency-Key` starts a run once; a body that asks for
//! other steps than its journal holds fails clearly; `/runs` lists and reads runs.
//!
//! The runs' deadlines are real (the server and its client talk over loopback) and
//! short: the longest wait is one 300 ms total timeout.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fastagentic::durable::{MemoryRunStore, RunStatus, RunStore, SqliteRunStore};
use fastagentic::hooks::{Hook, HookContext};
use fastagentic::llm::{MockProvider, Providers};
use fastagentic::prelude::*;
use fastagentic::reliability::EventKind;
use fastagentic::server::Route;
use fastagentic::spend::Ledger;
use fastagentic::tools::Tool;
use schemars::JsonSchema;
use serde_json::json;

/// A SQLite file of its own for one test, removed when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join("fastagentic-durable-tests");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{:016x}.sqlite3", fastrand_u64()));
        TempDb(path)
    }

    fn open(&self) -> SqliteRunStore {
        SqliteRunStore::open(&self.0).unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

use fastagentic_tests::served::{Server, client, header, json_of};

// ---- the endpoint of the main test, written as a user would ----

/// Whether the reviewer approved: until then the `await approval` step never ends.
static APPROVED: AtomicBool = AtomicBool::new(false);
/// How many times the lookup tool ran.
static LOOKUPS: AtomicU32 = AtomicU32::new(0);
/// How many times the approval step's body ran to the end.
static APPROVALS: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
struct Account {
    id: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
struct Balance {
    id: u32,
    cents: u64,
}

#[derive(Clone, Deserialize, Serialize)]
struct Ask {
    question: String,
}

#[derive(Serialize)]
struct Report {
    outline: String,
    cents: u64,
    approved_by: String,
    text: String,
}

fn lookup() -> Tool<Account, Balance> {
    Tool::new(
        "lookup",
        "An account's balance",
        |account: Account| async move {
            LOOKUPS.fetch_add(1, Ordering::SeqCst);
            Ok::<_, AgentError>(Balance {
                id: account.id,
                cents: 12_345,
            })
        },
    )
    .unwrap()
}

/// Four steps: a model call, a tool call, a wait for a person, another model call.
#[agent_endpoint(
    path = "/durable/report",
    model = "mock/gpt-4o",
    durable = true,
    timeout(total_ms = 300, on_timeout = "checkpoint")
)]
async fn report(ctx: AgentContext, ask: Ask) -> Result<Report, AgentError> {
    let outline = ctx.llm().complete(Prompt::user(&ask.question)).await?;
    let balance = ctx.tool(&lookup(), Account { id: 7 }).await?;
    let approved_by: String = ctx
        .step("await approval", async {
            while !APPROVED.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            APPROVALS.fetch_add(1, Ordering::SeqCst);
            Ok::<_, AgentError>("reviewer".to_owned())
        })
        .await?;
    let text = ctx.llm().complete(Prompt::user("write it")).await?;
    Ok(Report {
        outline: outline.text,
        cents: balance.cents,
        approved_by,
        text: text.text,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_run_resumes_without_paying_twice() {
    let db = TempDb::new("report");
    let mock = Arc::new(MockProvider::new());
    let ledger = Arc::new(Ledger::new());
    let hooks = Arc::new(std::sync::Mutex::new(Vec::<(EventKind, u32)>::new()));
    let hook = |kind| {
        let hooks = hooks.clone();
        Hook::sync(kind, "durable", move |ctx: &mut HookContext| {
            let (_, steps) = ctx.durable_run().unwrap();
            hooks.lock().unwrap().push((ctx.kind, steps));
        })
    };
    let app = App::bare("Durable")
        .endpoint(fastagentic::endpoint::find("/durable/report").unwrap())
        .providers(Providers::new().with_shared(mock.clone()))
        .ledger(ledger.clone())
        .run_store(db.open())
        .hook(hook(EventKind::Checkpoint))
        .hook(hook(EventKind::Resume));
    let server = Server::start(app).await;

    // The approval never comes in time: the run stops at its deadline with two steps.
    let response = server
        .post("/durable/report", json!({"question": "How is account 7?"}))
        .await;
    assert_eq!(response.status(), 202);
    let location = header(&response, "location").unwrap().to_owned();
    let run_id = header(&response, "x-run-id").unwrap().to_owned();
    assert_eq!(location, format!("/runs/{run_id}"));
    let accepted = json_of(response).await;
    assert_eq!(accepted["status"], "checkpointed");
    assert_eq!(accepted["steps"], 2);
    assert_eq!(accepted["resume"], format!("/runs/{run_id}/resume"));
    assert_eq!((mock.calls(), LOOKUPS.load(Ordering::SeqCst)), (1, 1));

    let run = json_of(server.get(&location).await).await;
    assert_eq!(run["status"], "checkpointed");
    assert_eq!(run["endpoint"], "/durable/report");
    let names: Vec<&str> = (run["steps"].as_array().unwrap().iter())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llm", "tool:lookup"]);
    assert_eq!(run["steps"][0]["model"], "mock/gpt-4o");
    assert!(run["steps"][0]["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(run["error"]["class"], "timeout");

    // Approved now: the resume replays the first two steps and runs the last two.
    APPROVED.store(true, Ordering::SeqCst);
    let resumed = server
        .post(&format!("{location}/resume"), json!(null))
        .await;
    let status = resumed.status();
    assert_eq!(header(&resumed, "x-run-id"), Some(run_id.as_str()));
    let output = json_of(resumed).await;
    assert_eq!(status, 200, "{output}");
    assert_eq!(output["cents"], 12_345);
    assert_eq!(output["approved_by"], "reviewer");
    assert!(
        output["outline"]
            .as_str()
            .unwrap()
            .contains("How is account 7?")
    );
    // Each step ran once: the first model call and the tool were replayed.
    assert_eq!(mock.calls(), 2, "one model call per model step");
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 1);
    assert_eq!(APPROVALS.load(Ordering::SeqCst), 1);
    // And each model call was billed once.
    assert_eq!(ledger.total().calls, 2);

    let run = json_of(server.get(&location).await).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["steps"].as_array().unwrap().len(), 4);
    assert_eq!(run["output"], output);
    let steps_cost: f64 = (run["steps"].as_array().unwrap().iter())
        .filter_map(|s| s["cost_usd"].as_f64())
        .sum();
    assert!((run["cost_usd"].as_f64().unwrap() - steps_cost).abs() < 1e-12);
    assert!(run.get("resume").is_none());

    // A second resume runs nothing: the stored output again.
    let again = server
        .post(&format!("{location}/resume"), json!(null))
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(json_of(again).await, output);
    assert_eq!((mock.calls(), ledger.total().calls), (2, 2));

    assert_eq!(
        *hooks.lock().unwrap(),
        [(EventKind::Checkpoint, 2), (EventKind::Resume, 2)]
    );
}

// ---- the rest, on routes written in code ----

fn checkpointing(total_ms: u64) -> TimeoutPolicy {
    TimeoutPolicy::builder()
        .total(Duration::from_millis(total_ms))
        .on_timeout(OnTimeout::Checkpoint)
        .build()
        .unwrap()
}

/// A durable route whose one step waits until `gate` opens, counting the step's runs.
fn gated(path: &str, gate: Arc<AtomicBool>, runs: Arc<AtomicU32>) -> Route {
    Route::new(path, move |ctx: AgentContext, (): ()| {
        let (gate, runs) = (gate.clone(), runs.clone());
        async move {
            let done: u32 = ctx
                .step("gate", async move {
                    while !gate.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Ok::<_, AgentError>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await?;
            Ok(json!({ "done": done }))
        }
    })
    .durable(true)
    .timeout(checkpointing(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_being_resumed_cannot_be_resumed_again() {
    let (gate, runs) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU32::new(0)),
    );
    let app = App::bare("Busy")
        .route(gated("/gated", gate.clone(), runs.clone()))
        .run_store(MemoryRunStore::new());
    let server = Arc::new(Server::start(app).await);
    let first = server.post("/gated", json!(null)).await;
    assert_eq!(first.status(), 202);
    let run_id = header(&first, "x-run-id").unwrap().to_owned();
    let resume = format!("/runs/{run_id}/resume");

    let resuming = {
        let (server, resume) = (server.clone(), resume.clone());
        tokio::spawn(async move { server.post(&resume, json!(null)).await })
    };
    // Once the first resume holds the run, a second one is refused.
    loop {
        let run = json_of(server.get(&format!("/runs/{run_id}")).await).await;
        if run["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = server.post(&resume, json!(null)).await;
    assert_eq!(second.status(), 409);
    let body = json_of(second).await;
    assert_eq!(body["status"], "running");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is running")
    );

    // The first one checkpoints again; then, with the gate open, it completes.
    assert_eq!(resuming.await.unwrap().status(), 202);
    gate.store(true, Ordering::SeqCst);
    let done = server.post(&resume, json!(null)).await;
    assert_eq!(done.status(), 200);
    assert_eq!(json_of(done).await, json!({"done": 1}));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_starts_a_run_once() {
    let db = TempDb::new("idempotent");
    let (gate, runs) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
    let app = App::bare("Idempotent")
        .route(gated("/once", gate, runs.clone()))
        .run_store(db.open());
    let server = Server::start(app).await;
    let send = |key: &'static str| {
        client()
            .post(server.url("/once"))
            .header("idempotency-key", key)
            .send()
    };
    let first = send("order-1").await.unwrap();
    assert_eq!(first.status(), 200);
    let run_id = header(&first, "x-run-id").unwrap().to_owned();
    assert_eq!(json_of(first).await, json!({"done": 1}));
    let second = send("order-1").await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-run-id"), Some(run_id.as_str()));
    assert_eq!(json_of(second).await, json!({"done": 1}));
    let other = send("order-2").await.unwrap();
    assert_eq!(json_of(other).await, json!({"done": 2}));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let bad = client()
        .post(server.url("/once"))
        .header("idempotency-key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_asks_for_other_steps_fails_naming_both() {
    let renamed = Arc::new(AtomicBool::new(false));
    let route = {
        let renamed = renamed.clone();
        Route::new("/fickle", move |ctx: AgentContext, (): ()| {
            let name = if renamed.load(Ordering::SeqCst) {
                "charge card"
            } else {
                "reserve seat"
            };
            async move {
                ctx.step(name, async { Ok::<_, AgentError>(1) }).await?;
                // Never done in time: the run checkpoints with one step.
                ctx.step("wait", std::future::pending::<Result<u32, AgentError>>())
                    .await?;
                Ok(json!({}))
            }
        })
        .durable(true)
        .timeout(checkpointing(100))
    };
    let app = App::bare("Fickle")
        .route(route)
        .run_store(MemoryRunStore::new());
    let server = Server::start(app).await;
    let first = server.post("/fickle", json!(null)).await;
    assert_eq!(first.status(), 202);
    let run_id = header(&first, "x-run-id").unwrap().to_owned();

    renamed.store(true, Ordering::SeqCst);
    let resumed = server
        .post(&format!("/runs/{run_id}/resume"), json!(null))
        .await;
    assert_eq!(resumed.status(), 500);
    let message = json_of(resumed).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("step 0 `charge card`"), "{message}");
    assert!(message.contains("`reserve seat`"), "{message}");
    let run = json_of(server.get(&format!("/runs/{run_id}")).await).await;
    assert_eq!(run["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_by_status_and_unknown_ones_are_404() {
    let (gate, runs) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
    let app = App::bare("Listed")
        .route(gated("/listed", gate.clone(), runs))
        .run_store(MemoryRunStore::new());
    let server = Server::start(app).await;
    assert_eq!(server.post("/listed", json!(null)).await.status(), 200);
    gate.store(false, Ordering::SeqCst);
    assert_eq!(server.post("/listed", json!(null)).await.status(), 202);

    let all = json_of(server.get("/runs").await).await;
    assert_eq!(all["runs"].as_array().unwrap().len(), 2);
    let checkpointed = json_of(server.get("/runs?status=checkpointed").await).await;
    let listed = checkpointed["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "checkpointed");
    assert_eq!(listed[0]["steps"], 0);

    let bad = server.get("/runs?status=paused").await;
    assert_eq!(bad.status(), 400);
    let message = json_of(bad).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("running, checkpointed, completed, failed"),
        "{message}"
    );
    assert_eq!(server.get("/runs/run_nope").await.status(), 404);
    let resume = server.post("/runs/run_nope/resume", json!(null)).await;
    assert_eq!(resume.status(), 404);

    let streamed = client()
        .post(server.url("/listed"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 406);
}

#[test]
fn a_durable_route_cannot_stream() {
    let route = Route::new("/both", |_: AgentContext, (): ()| async { Ok(json!({})) })
        .durable(true)
        .stream(true);
    let err = App::bare("Both").route(route).router().unwrap_err();
    assert!(err.to_string().contains("cannot stream"), "{err}");
}

// ---- the SQLite store itself ----

#[tokio::test]
async fn the_memory_store_keeps_its_promises() {
    fastagentic_tests::run_stores::conformance(Arc::new(MemoryRunStore::new())).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_its_promises_across_opens() {
    let db = TempDb::new("store");
    fastagentic_tests::run_stores::conformance(Arc::new(db.open())).await;
    // A new connection to the file (a restarted process) sees the same runs.
    let reopened = db.open();
    let left = reopened.list(None, 10).await.unwrap();
    assert_eq!(left.len(), 3);
    let run = reopened.get("run_c".into()).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.input, json!({"q": "run_c"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_ended_longer_ago_than_the_retention_are_deleted() {
    use fastagentic::durable::NewRun;
    let db = TempDb::new("retention");
    let store = db.open();
    let statuses = [
        ("run_done", RunStatus::Completed),
        ("run_failed", RunStatus::Failed),
        ("run_paused", RunStatus::Checkpointed),
    ];
    for (id, status) in statuses {
        let new = NewRun::new(id, "/gated", json!(null), 0, 0);
        store.create(new).await.unwrap();
        store.finish(id.into(), status, None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gate = Arc::new(AtomicBool::new(true));
    let app = App::bare("Retention")
        .route(gated("/gated", gate, Arc::new(AtomicU32::new(0))))
        .run_store(db.open())
        .run_retention(Some(Duration::from_millis(10)));
    let _server = Server::start(app).await;
    for _ in 0..200 {
        if store.get("run_done".into()).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.get("run_done".into()).await.unwrap().is_none());
    assert!(store.get("run_failed".into()).await.unwrap().is_none());
    let paused = store.get("run_paused".into()).await.unwrap();
    assert!(paused.is_some(), "a checkpointed run waits for its resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_the_durable_answers_and_the_runs_routes() {
    let gate = Arc::new(AtomicBool::new(true));
    let app = App::bare("Documented")
        .route(gated("/gated", gate, Arc::new(AtomicU32::new(0))))
        .run_store(MemoryRunStore::new());
    let server = Server::start(app).await;
    let document = json_of(server.get("/openapi.json").await).await;
    let post = &document["paths"]["/gated"]["post"];
    let statuses: Vec<&str> = post["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for status in ["200", "202", "406", "409"] {
        assert!(statuses.contains(&status), "{status} in {statuses:?}");
    }
    assert!(post["responses"]["200"]["content"]["text/event-stream"].is_null());
    assert_eq!(post["parameters"][0]["name"], "Idempotency-Key");
    let accepted = &post["responses"]["202"];
    assert!(accepted["headers"]["Location"].is_object());
    for path in ["/runs", "/runs/{id}", "/runs/{id}/resume"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let schemas = &document["components"]["schemas"];
    assert!(schemas["fastagentic.Run"].is_object());

    // Every bad listing query is a JSON 400 that names the problem.
    for (query, problem) in [
        ("status=done", "not a run status"),
        ("limit=0", "from 1 to 500"),
        ("limit=9000", "from 1 to 500"),
        ("status=failed&status=failed", "given twice"),
    ] {
        let answer = server.get(&format!("/runs?{query}")).await;
        assert_eq!(answer.status(), 400, "{query}");
        let body = json_of(answer).await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(problem), "{query}: {message}");
    }
}
