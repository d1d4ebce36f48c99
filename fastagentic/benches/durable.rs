//! What journaling one step of a durable run costs: `RunStore::append` of a model call's
//! record (a ~600-byte completion, usage and cost) to a run.
//!
//! - `durable/append_sqlite`: the default store, a SQLite file in WAL mode with
//!   `synchronous = NORMAL` (a step survives the process being killed; see the book's
//!   "Durable runs" for what a power cut can lose), in the system's temp directory;
//! - `durable/append_memory`: the in-memory store, for comparison.
//!
//! After criterion's groups it prints p50/p99/p999 of 20,000 appends to the SQLite file,
//! since the goal is a p99 (≤ 1 ms). Run with
//! `cargo bench -p fastagentic --bench durable`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fastagentic::durable::{MemoryRunStore, NewRun, RunStore, SqliteRunStore, StepRecord};
use fastagentic::llm::{Completion, Usage};
use serde_json::json;

/// A model call's record, as `ctx.llm().complete` journals it.
fn model_step(index: u32) -> StepRecord {
    let completion = Completion::new(
        "openai",
        "gpt-4o-2024-08-06",
        "A circuit breaker stops calling a dependency that keeps failing, so that the \
         failures do not pile up, and lets a probe through after a while to see whether it \
         recovered. "
            .repeat(3),
    );
    let usage = Usage {
        input: 812,
        output: 164,
        total: 976,
        ..Usage::default()
    };
    StepRecord::new(
        index,
        "llm",
        json!({ "completion": completion, "cost_usd": "0.00367" }),
    )
    .with_call(
        "openai/gpt-4o",
        Some(usage),
        Some("0.00367".parse().expect("a decimal")),
    )
}

/// A run to append to, in `store`.
fn run_in(runtime: &tokio::runtime::Runtime, store: &dyn RunStore, id: &str) {
    let new = NewRun::new(id, "/bench", json!({"question": "?"}), 0, i64::MAX);
    runtime.block_on(store.create(new)).expect("a run");
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let path =
        std::env::temp_dir().join(format!("fastagentic-bench-{}.sqlite3", std::process::id()));
    let sqlite = SqliteRunStore::open(&path).expect("a SQLite file");
    let memory = MemoryRunStore::new();
    let mut group = c.benchmark_group("durable");
    for (name, store) in [
        ("append_sqlite", &sqlite as &dyn RunStore),
        ("append_memory", &memory),
    ] {
        let mut runs = 0_u32;
        group.bench_function(name, |b| {
            runs += 1;
            let run_id = format!("run_{name}_{runs}");
            run_in(&runtime, store, &run_id);
            let mut index = 0_u32;
            b.iter(|| {
                let step = model_step(index);
                index += 1;
                let appended =
                    runtime.block_on(store.append(run_id.as_str().into(), step, i64::MAX));
                appended.expect("appended");
            });
        });
    }
    group.finish();

    run_in(&runtime, &sqlite, "run_latency");
    let mut latencies: Vec<Duration> = (0..20_000)
        .map(|index| {
            let step = model_step(index);
            let started = Instant::now();
            let appended = runtime.block_on(sqlite.append("run_latency".into(), step, i64::MAX));
            appended.expect("appended");
            started.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        // An index into 20,000 samples: exact as f64, truncation intended.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = (latencies.len() as f64 * q) as usize;
        latencies[index.min(latencies.len() - 1)]
    };
    println!(
        "durable/append_sqlite over {} steps: p50 {:?}, p99 {:?}, p999 {:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(0.999)
    );
    drop(sqlite);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
