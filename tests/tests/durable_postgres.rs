//! Durable runs on PostgreSQL (feature `postgres`), against a real server each test
//! starts (`fastagentic_tests::postgres_server`): the store keeps every promise the
//! others keep, and two replicas sharing one database resume each other's runs — a run
//! checkpointed on one is resumed on the other without running its steps again, and
//! while one replica runs it, the other's resume gets 409.
//!
//! Without Debian's `postgresql` installed the tests say so and pass, unless
//! `FASTAGENTIC_REQUIRE_POSTGRES=1` (as `.ci/run` sets) makes that a failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fastagentic::durable::{PostgresRunStore, RunStore};
use fastagentic::prelude::*;
use fastagentic::server::Route;
use fastagentic_tests::postgres_server::PostgresServer;
use fastagentic_tests::served::{Server, header, json_of};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_its_promises() {
    let Some(postgres) = PostgresServer::start() else {
        return;
    };
    let store = PostgresRunStore::connect(&postgres.url()).await.unwrap();
    assert_eq!(store.name(), "postgres");
    fastagentic_tests::run_stores::conformance(Arc::new(store)).await;
    // A second connection (another replica, or a restart) sees the same runs, and
    // creating the tables again is harmless.
    let again = PostgresRunStore::connect(&postgres.url()).await.unwrap();
    assert_eq!(again.list(None, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_bad_postgres_url_or_an_absent_server_is_a_clear_error() {
    let bad = PostgresRunStore::connect("postgres://user:secret@127.0.0.1:1/db?sslmode=bogus")
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("is not a PostgreSQL URL"), "{bad}");
    assert!(
        !bad.contains("secret"),
        "the password stays out of errors: {bad}"
    );
    let absent = PostgresRunStore::connect("postgres://user:secret@127.0.0.1:1/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(absent.contains("cannot set up runs at"), "{absent}");
    assert!(!absent.contains("secret"), "{absent}");
}

/// Two steps: one that counts its runs, then one that waits until `gate` opens.
fn gated(first: Arc<AtomicU32>, gate: Arc<AtomicBool>) -> Route {
    Route::new("/gated", move |ctx: AgentContext, (): ()| {
        let (first, gate) = (first.clone(), gate.clone());
        async move {
            let order: u32 = ctx
                .step("first", async move {
                    Ok::<_, AgentError>(first.fetch_add(1, Ordering::SeqCst) + 1)
                })
                .await?;
            ctx.step("gate", async move {
                while !gate.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok::<_, AgentError>(())
            })
            .await?;
            Ok(json!({ "first": order }))
        }
    })
    .durable(true)
    .timeout(
        TimeoutPolicy::builder()
            .total(Duration::from_millis(300))
            .on_timeout(OnTimeout::Checkpoint)
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_database_resume_each_others_runs() {
    let Some(postgres) = PostgresServer::start() else {
        return;
    };
    let (first, gate) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let replica = async || {
        let store = PostgresRunStore::connect(&postgres.url()).await.unwrap();
        let app = App::bare("replica")
            .route(gated(first.clone(), gate.clone()))
            .run_store(store);
        Arc::new(Server::start(app).await)
    };
    let (a, b) = (replica().await, replica().await);

    let started = a.post("/gated", json!(null)).await;
    assert_eq!(started.status(), 202);
    let run_id = header(&started, "x-run-id").unwrap().to_owned();
    let resume = format!("/runs/{run_id}/resume");

    // Replica A resumes it; while A holds it, B's resume is refused.
    let resuming = {
        let (a, resume) = (a.clone(), resume.clone());
        tokio::spawn(async move { a.post(&resume, json!(null)).await })
    };
    loop {
        let run: Value = json_of(b.get(&format!("/runs/{run_id}")).await).await;
        if run["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = b.post(&resume, json!(null)).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(resuming.await.unwrap().status(), 202, "checkpointed again");

    // B finishes it from the journal A wrote: the first step is not run again.
    gate.store(true, Ordering::SeqCst);
    let done = b.post(&resume, json!(null)).await;
    assert_eq!(done.status(), 200);
    assert_eq!(json_of(done).await, json!({"first": 1}));
    assert_eq!(first.load(Ordering::SeqCst), 1);
    let run = json_of(a.get(&format!("/runs/{run_id}")).await).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["steps"].as_array().unwrap().len(), 2);
}
