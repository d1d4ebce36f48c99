//! Crash safety for real: a durable run served by a child process
//! (`src/bin/durable_server.rs`) is `kill -9`ed mid-run, the server is started again on
//! the same SQLite file, and the run resumes once the dead process's lease runs out:
//! its answer is whole, every step completed before the crash ran once (counted at the
//! fake provider and in a side-effects file the tool and the step append to), and the
//! tokens were billed once. A second test also kills a process half-way through writing
//! a step (the write-ahead log holds the step's pages, no commit) and checks the run
//! still resumes from its last whole step.
//!
//! The waits are real (two processes and a file): the longest is the run's lease, under
//! two seconds.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fastagentic::durable::{RunRecord, RunStatus, RunStore, SqliteRunStore};
use fastagentic_testing::{FakeServer, Reply};
use fastagentic_tests::served::client;
use serde_json::{Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_durable_server");

/// A directory of its own for one test's runs file and side-effects file.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "fastagentic-crash-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn runs(&self) -> PathBuf {
        self.0.join("runs.sqlite3")
    }

    fn wal(&self) -> PathBuf {
        self.0.join("runs.sqlite3-wal")
    }

    fn side_effects(&self) -> PathBuf {
        self.0.join("side-effects.txt")
    }

    /// How many times the tool and the step ran, in every process.
    fn ran(&self, what: &str) -> usize {
        std::fs::read_to_string(self.side_effects())
            .unwrap_or_default()
            .lines()
            .filter(|line| *line == what)
            .count()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `durable_server` child process, killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    /// What it printed first (`listening on http://…`, `writing`).
    said: String,
}

impl Process {
    fn spawn(scratch: &Scratch, upstream: &FakeServer, args: &[&str]) -> Process {
        let mut child = Command::new(SERVER)
            .args(args)
            .env(fastagentic::durable::RUNS_PATH_ENV, scratch.runs())
            .env("CRASH_SIDE_EFFECTS", scratch.side_effects())
            .env("OPENAI_API_KEY", "test-key")
            .env("OPENAI_BASE_URL", format!("{}/v1", upstream.base_url()))
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("GEMINI_API_KEY")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut said = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut said).unwrap();
        assert!(!said.is_empty(), "durable_server {args:?} exited at start");
        Process {
            child,
            said: said.trim().to_owned(),
        }
    }

    fn serve(scratch: &Scratch, upstream: &FakeServer) -> Process {
        Process::spawn(scratch, upstream, &["serve"])
    }

    fn base(&self) -> &str {
        self.said.strip_prefix("listening on ").unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// `kill -9`: no destructor, no flush, no shutdown of the runtime.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Input tokens the process has billed, from its `/metrics`.
async fn billed_input_tokens(process: &Process) -> u64 {
    let text = client()
        .get(process.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with("fastagentic_llm_tokens_total{"))
        .filter(|line| line.contains("kind=\"input\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Model calls the fake provider received with `prompt` as their last message.
fn calls_asking(upstream: &FakeServer, prompt: &str) -> usize {
    upstream
        .requests()
        .iter()
        .filter_map(|request| request.json())
        .filter(|body| {
            body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"] == prompt)
        })
        .count()
}

/// The only run in the file, once its journal holds `steps` steps.
async fn run_with_steps(store: &SqliteRunStore, steps: usize) -> RunRecord {
    for _ in 0..500 {
        if let Some(summary) = store.list(None, 2).await.unwrap().first()
            && summary.steps as usize >= steps
        {
            return store.get(summary.run_id.clone()).await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no run reached {steps} steps within 5 s");
}

/// Starts a run in a child process, lets it complete three steps (a model call, the
/// tool, the sign-off) and `kill -9`s it while its fourth, a slow model call, is in
/// flight. Returns the run as the file holds it, and the input tokens the dead process
/// billed.
async fn crash_mid_run(scratch: &Scratch, upstream: &FakeServer) -> (RunRecord, u64) {
    upstream.push(Reply::canned()); // outline
    upstream.push(Reply::canned().first_byte_delay(Duration::from_secs(30))); // draft, cut
    upstream.push(Reply::canned()); // draft, after the restart
    upstream.push(Reply::canned()); // summary

    let first = Process::serve(scratch, upstream);
    let started = tokio::spawn(
        client()
            .post(first.url("/crash/report"))
            .json(&json!({"topic": "breakers"}))
            .send(),
    );
    let store = SqliteRunStore::open(scratch.runs()).unwrap();
    let run = run_with_steps(&store, 3).await;
    for _ in 0..500 {
        if calls_asking(upstream, "draft") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        calls_asking(upstream, "draft"),
        1,
        "the draft call never left"
    );
    let billed = billed_input_tokens(&first).await;
    first.kill();
    // The client sees the connection die: no answer, no 202.
    assert!(started.await.unwrap().is_err());
    (run, billed)
}

/// Resumes `run_id` on `process`: refused with 409 while the dead process's lease holds,
/// answered once it has run out.
async fn resume_after_lease(process: &Process, run: &RunRecord) -> reqwest::Response {
    let resume = process.url(&format!("/runs/{}/resume", run.run_id));
    let early = client().post(&resume).send().await.unwrap();
    assert_eq!(
        early.status(),
        409,
        "a dead process's lease is still honoured"
    );
    let body: Value = early.json().await.unwrap();
    assert_eq!(body["status"], "running", "{body}");
    let wait = run.lease_until_ms - fastagentic_wall_ms() + 50;
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait.max(0)).unwrap())).await;
    client().post(&resume).send().await.unwrap()
}

fn fastagentic_wall_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(now.as_millis()).unwrap()
}

async fn assert_complete(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    // This request paid for two model calls (the draft and the summary), not four.
    let tokens = response.headers()["x-fastagentic-tokens"].to_str().unwrap();
    assert_eq!(tokens, "38", "12 + 7 tokens for each of two calls");
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["outline"], "Hello from the fake provider.");
    assert_eq!(report["notes"], "notes on breakers");
    assert_eq!(report["reviewer"], "reviewer");
    assert_eq!(report["draft"], "Hello from the fake provider.");
    assert_eq!(report["summary"], "Hello from the fake provider.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_step_resumes_in_a_new_process_and_pays_once() {
    let scratch = Scratch::new("kill");
    let upstream = FakeServer::start().await.unwrap();
    let (run, billed_before) = crash_mid_run(&scratch, &upstream).await;
    assert_eq!(run.status, RunStatus::Running);
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["llm", "tool:notes", "sign-off"]);
    assert_eq!(
        billed_before, 12,
        "the dead process billed the outline only"
    );

    let second = Process::serve(&scratch, &upstream);
    assert_complete(resume_after_lease(&second, &run).await).await;

    // Each step completed before the crash ran once; the draft, cut by it, twice.
    assert_eq!(calls_asking(&upstream, "outline"), 1);
    assert_eq!(calls_asking(&upstream, "draft"), 2);
    assert_eq!(calls_asking(&upstream, "summary"), 1);
    assert_eq!(scratch.ran("tool:notes"), 1);
    assert_eq!(scratch.ran("step:sign-off"), 1);
    // Billed once each: the outline by the dead process, the rest by the new one.
    assert_eq!(billed_input_tokens(&second).await, 24);

    let stored: Value = client()
        .get(second.url(&format!("/runs/{}", run.run_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["steps"].as_array().unwrap().len(), 5);
    assert_eq!(
        stored["usage"]["input"], 36,
        "three model calls in the journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_write_torn_by_a_crash_leaves_the_run_resumable() {
    let scratch = Scratch::new("torn");
    let upstream = FakeServer::start().await.unwrap();
    let (run, _) = crash_mid_run(&scratch, &upstream).await;

    // Another process starts writing step 3 and dies before its commit: 4 MB of the
    // step's pages are in the write-ahead log, with no commit record after them.
    let writer = Process::spawn(&scratch, &upstream, &["torn-write", &run.run_id, "3"]);
    assert_eq!(writer.said, "writing");
    writer.kill();
    let wal = std::fs::metadata(scratch.wal()).unwrap().len();
    assert!(wal > 4 << 20, "the torn step reached the log ({wal} bytes)");

    let store = SqliteRunStore::open(scratch.runs()).unwrap();
    let after = store.get(run.run_id.clone()).await.unwrap().unwrap();
    assert_eq!(
        after.steps, run.steps,
        "the journal ends at its last whole step"
    );
    drop(store);

    let second = Process::serve(&scratch, &upstream);
    assert_complete(resume_after_lease(&second, &run).await).await;
    assert_eq!(calls_asking(&upstream, "draft"), 2);
    assert_eq!(scratch.ran("tool:notes"), 1);
    assert_eq!(scratch.ran("step:sign-off"), 1);
}
