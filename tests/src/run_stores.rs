//! What every [`RunStore`] must do, checked the same way against each of them (memory,
//! SQLite, PostgreSQL): idempotent creation, one step per index, leases and claims (one
//! winner among concurrent claims), finishing, listing, and retention.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::sync::Arc;

use fastagentic::durable::{Claim, Created, NewRun, RunStatus, RunStore, StepRecord};
use serde_json::json;

const NOW: i64 = 1_000_000;

fn new_run(id: &str, key: Option<&str>, at: i64) -> NewRun {
    let mut run = NewRun::new(id, "/e", json!({"q": id}), at, at + 10_000);
    run.idempotency_key = key.map(str::to_owned);
    run
}

fn step(index: u32, name: &str) -> StepRecord {
    StepRecord::new(index, name, json!({ "index": index }))
}

/// Runs every check on `store`, which must be empty.
pub async fn conformance(store: Arc<dyn RunStore>) {
    idempotent_creation(&*store).await;
    one_step_per_index(&*store).await;
    leases_and_claims(&*store).await;
    concurrent_claims_have_one_winner(store.clone()).await;
    listing_and_retention(&*store).await;
}

async fn idempotent_creation(store: &dyn RunStore) {
    let created = store
        .create(new_run("run_a", Some("k"), NOW))
        .await
        .unwrap();
    assert!(
        matches!(created, Created::New),
        "{}: a new run",
        store.name()
    );
    let Created::Existing(existing) = store
        .create(new_run("run_b", Some("k"), NOW))
        .await
        .unwrap()
    else {
        panic!("{}: the key is taken", store.name());
    };
    assert_eq!(&*existing.run_id, "run_a");
    assert_eq!(existing.input, json!({"q": "run_a"}));
    // Runs without a key never collide.
    for id in ["run_c", "run_d"] {
        let created = store.create(new_run(id, None, NOW)).await.unwrap();
        assert!(matches!(created, Created::New), "{}: {id}", store.name());
    }
    assert!(store.get("run_b".into()).await.unwrap().is_none());
}

async fn one_step_per_index(store: &dyn RunStore) {
    let mut call = step(0, "llm");
    call = call.with_call("gpt-4o", None, Some(rust_decimal::Decimal::new(12_345, 8)));
    store
        .append("run_a".into(), call.clone(), NOW + 20_000)
        .await
        .unwrap();
    let twice = store.append("run_a".into(), step(0, "again"), NOW).await;
    let message = twice.unwrap_err().to_string();
    assert!(message.contains("already has a step 0"), "{message}");
    store
        .append("run_a".into(), step(1, "tool:lookup"), NOW + 20_000)
        .await
        .unwrap();
    let run = store.get("run_a".into()).await.unwrap().unwrap();
    assert_eq!(
        run.steps,
        vec![call, step_like(&run.steps[1], 1, "tool:lookup")]
    );
    assert_eq!(run.lease_until_ms, NOW + 20_000, "a step extends the lease");
    assert_eq!(run.cost_usd(), Some(rust_decimal::Decimal::new(12_345, 8)));
}

/// `expected` as written, with the completion time the store read back.
fn step_like(read: &StepRecord, index: u32, name: &str) -> StepRecord {
    let mut expected = step(index, name);
    expected.completed_ms = read.completed_ms;
    expected
}

async fn leases_and_claims(store: &dyn RunStore) {
    // Held by its creator until the lease runs out; then one claim wins.
    let busy = store
        .claim("run_a".into(), NOW + 5_000, NOW + 50_000)
        .await
        .unwrap();
    assert!(matches!(busy, Claim::Busy(_)), "{}", store.name());
    let Claim::Claimed(run) = store
        .claim("run_a".into(), NOW + 30_000, NOW + 90_000)
        .await
        .unwrap()
    else {
        panic!("{}: the lease ran out", store.name())
    };
    assert_eq!(run.steps.len(), 2);
    assert_eq!(run.lease_until_ms, NOW + 90_000);
    let second = store
        .claim("run_a".into(), NOW + 30_000, NOW + 90_000)
        .await
        .unwrap();
    assert!(matches!(second, Claim::Busy(_)), "{}", store.name());

    // A checkpointed run is free at once; a completed one answers its output.
    store
        .finish(
            "run_c".into(),
            RunStatus::Checkpointed,
            Some(json!({"error": {}})),
        )
        .await
        .unwrap();
    let claimed = store.claim("run_c".into(), NOW, NOW + 1).await.unwrap();
    assert!(matches!(claimed, Claim::Claimed(_)), "{}", store.name());
    store
        .finish(
            "run_a".into(),
            RunStatus::Completed,
            Some(json!({"ok": true})),
        )
        .await
        .unwrap();
    let Claim::Completed(done) = store.claim("run_a".into(), NOW, NOW).await.unwrap() else {
        panic!("{}: run_a completed", store.name())
    };
    assert_eq!(done.result, Some(json!({"ok": true})));
    let unknown = store.claim("run_x".into(), NOW, NOW).await.unwrap();
    assert!(matches!(unknown, Claim::Unknown), "{}", store.name());
}

async fn concurrent_claims_have_one_winner(store: Arc<dyn RunStore>) {
    store.create(new_run("run_race", None, NOW)).await.unwrap();
    store
        .finish("run_race".into(), RunStatus::Failed, None)
        .await
        .unwrap();
    let claims = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim("run_race".into(), NOW, NOW + 60_000)
                .await
                .unwrap()
        })
    });
    let mut winners = 0;
    for claim in claims.collect::<Vec<_>>() {
        if matches!(claim.await.unwrap(), Claim::Claimed(_)) {
            winners += 1;
        }
    }
    assert_eq!(
        winners,
        1,
        "{}: one of eight concurrent claims",
        store.name()
    );
}

async fn listing_and_retention(store: &dyn RunStore) {
    // Created later, so listed first.
    store
        .create(new_run("run_new", None, NOW + 1))
        .await
        .unwrap();
    let all = store.list(None, 10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| &*s.run_id).collect();
    assert_eq!(ids[0], "run_new", "{}: newest first, {ids:?}", store.name());
    assert_eq!(all.len(), 5, "{}: {ids:?}", store.name());
    let completed = store.list(Some(RunStatus::Completed), 10).await.unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!((&*completed[0].run_id, completed[0].steps), ("run_a", 2));
    assert_eq!(store.list(None, 2).await.unwrap().len(), 2);

    // Retention: runs that ended before the cut go, with their steps; running and
    // checkpointed ones stay.
    store
        .finish("run_d".into(), RunStatus::Failed, None)
        .await
        .unwrap();
    assert_eq!(store.delete_ended_before(i64::MAX).await.unwrap(), 2);
    assert!(store.get("run_a".into()).await.unwrap().is_none());
    let left = store.list(None, 10).await.unwrap();
    let mut ids: Vec<&str> = left.iter().map(|s| &*s.run_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["run_c", "run_new", "run_race"], "{}", store.name());
}
