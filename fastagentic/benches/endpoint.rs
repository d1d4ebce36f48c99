//! What `#[agent_endpoint]` adds on top of the pipeline it runs.
//!
//! One endpoint declares all five patterns (rate limit with global, token and per-user
//! limits, total timeout, circuit breaker, retry with its budget, a two-model fallback
//! chain), like `benches/pipeline.rs`. Each call is awaited inside one long-lived task
//! (no per-call `block_on`), and the body answers at once, so what is timed is:
//!
//! - `macro_direct`: calling the annotated fn, as a test or another endpoint would;
//! - `macro_direct_with_input`: the same with an input, copied for each attempt;
//! - `by_hand_same_pipeline`: `Pipeline::run` with the same body on the endpoint's own
//!   pipeline (the difference to `macro_direct` is the macro's wrapper: the pipeline
//!   lookup, the caller's identity, one more `async fn` layer);
//! - `by_hand_built`: `Pipeline::run` on a pipeline built by hand with the same policies
//!   but without the registered-hooks listener the endpoint's pipeline carries;
//! - `by_hand_built_with_hooks`: the same plus that listener (no hook is registered in
//!   this binary), to show what the listener costs on its own.
//!
//! On a shared machine criterion's medians drift between runs by more than the wrapper
//! costs, so the binary also prints the best of several interleaved rounds for each way
//! (`ns per call, best of N interleaved rounds`), and heap allocations per call.
//!
//! Run with `cargo bench -p fastagentic --bench endpoint`.

// The counting global allocator below must implement the `unsafe` trait `GlobalAlloc`;
// it only forwards to `System` and bumps a counter.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::hooks::Hooks;
use fastagentic::reliability::{
    CircuitBreakerPolicy, FallbackChain, Pipeline, PipelineBuilder, RateLimitPolicy, RequestInfo,
    RetryPolicy, TimeoutPolicy,
};
use fastagentic::{AgentContext, AgentError, ClassSet, ErrorClass, agent_endpoint};
use tokio::runtime::Runtime;

/// A global allocator that counts every allocation (and reallocation) it serves.
struct CountingAlloc;

/// Allocations served so far by [`CountingAlloc`], process-wide.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees carry over; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Installs the counting allocator for the whole bench binary.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The endpoint under test. The limits are `u32::MAX` so nothing is ever refused (GCRA
/// lets a cell run a minute ahead: billions of calls), with a one-token estimate, as in
/// `benches/pipeline.rs`.
#[agent_endpoint(
    path = "/bench",
    rate_limit(requests_per_minute = 4_294_967_295, tokens_per_minute = 4_294_967_295,
               per_user_rpm = 4_294_967_295, token_estimate = 1),
    timeout(total_ms = 120_000),
    circuit_breaker(),
    retry(),
    fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["rate_limit"])),
)]
async fn bench_endpoint(ctx: AgentContext) -> Result<u32, AgentError> {
    black_box(&ctx);
    Ok(42)
}

/// The same endpoint with an input, copied for each attempt.
#[agent_endpoint(
    path = "/bench/input",
    rate_limit(requests_per_minute = 4_294_967_295, tokens_per_minute = 4_294_967_295,
               per_user_rpm = 4_294_967_295, token_estimate = 1),
    timeout(total_ms = 120_000),
    circuit_breaker(),
    retry(),
    fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["rate_limit"])),
)]
async fn bench_endpoint_with_input(ctx: AgentContext, input: u32) -> Result<u32, AgentError> {
    black_box(&ctx);
    Ok(input)
}

/// The body, written for `Pipeline::run`.
async fn body(ctx: AgentContext) -> Result<u32, AgentError> {
    black_box(&ctx);
    Ok(42)
}

/// The endpoint's policies, built by hand into a pipeline without listeners.
fn hand_built_pipeline() -> Pipeline {
    hand_built_builder().build().expect("the pipeline is valid")
}

/// The same with the registered hooks listening, as `Endpoint::pipeline` adds them.
fn hand_built_pipeline_with_hooks() -> Pipeline {
    hand_built_builder()
        .event_sink(Arc::new(Hooks::registered()))
        .build()
        .expect("the pipeline is valid")
}

/// The endpoint's policies in a pipeline builder.
fn hand_built_builder() -> PipelineBuilder {
    let rate_limit = RateLimitPolicy::builder()
        .requests_per_minute(u32::MAX)
        .tokens_per_minute(u32::MAX)
        .per_user_rpm(u32::MAX)
        .token_estimate(1)
        .build()
        .expect("the rate-limit policy is valid");
    let fallback = FallbackChain::builder("gpt-4o")
        .then("gpt-4o-mini", ClassSet::of(&[ErrorClass::RateLimit]))
        .build()
        .expect("the fallback chain is valid");
    Pipeline::builder()
        .endpoint("/bench/by-hand")
        .rate_limit(rate_limit)
        .timeout(TimeoutPolicy::default())
        .circuit_breaker(CircuitBreakerPolicy::default())
        .retry(RetryPolicy::default())
        .fallback(fallback)
}

/// The endpoint's own pipeline, as a direct call of the annotated fn uses it.
fn endpoint_pipeline() -> &'static Pipeline {
    fastagentic::endpoint::find("/bench")
        .expect("the endpoint is registered")
        .pipeline()
        .expect("the endpoint's pipeline builds")
}

/// The runtime every call is driven on: current-thread, with the timer the total
/// timeout needs.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime starts")
}

/// One call, in one of the five ways.
#[derive(Clone, Copy)]
enum Way {
    MacroDirect,
    MacroDirectWithInput,
    ByHandSamePipeline,
    ByHandBuilt,
    ByHandBuiltWithHooks,
}

const WAYS: [(&str, Way); 5] = [
    ("macro_direct", Way::MacroDirect),
    ("macro_direct_with_input", Way::MacroDirectWithInput),
    ("by_hand_same_pipeline", Way::ByHandSamePipeline),
    ("by_hand_built", Way::ByHandBuilt),
    ("by_hand_built_with_hooks", Way::ByHandBuiltWithHooks),
];

/// The pipelines the by-hand calls run in, built once.
struct Pipelines {
    endpoint: &'static Pipeline,
    built: Pipeline,
    built_with_hooks: Pipeline,
}

impl Pipelines {
    fn new() -> Self {
        Pipelines {
            endpoint: endpoint_pipeline(),
            built: hand_built_pipeline(),
            built_with_hooks: hand_built_pipeline_with_hooks(),
        }
    }
}

/// One call the given way; panics if anything refused it.
async fn call(way: Way, ctx: &AgentContext, pipelines: &Pipelines) -> u32 {
    let result = match way {
        Way::MacroDirect => bench_endpoint(ctx.clone()).await,
        Way::MacroDirectWithInput => bench_endpoint_with_input(ctx.clone(), 42).await,
        Way::ByHandSamePipeline => pipelines.endpoint.run(RequestInfo::new(), body).await,
        Way::ByHandBuilt => pipelines.built.run(RequestInfo::new(), body).await,
        Way::ByHandBuiltWithHooks => {
            pipelines
                .built_with_hooks
                .run(RequestInfo::new(), body)
                .await
        }
    };
    match result {
        Ok(answer) => answer,
        Err(err) => panic!("a call was refused: {err}"),
    }
}

/// `iters` calls awaited one after another inside a single `block_on`, as a server task
/// would make them; returns the time they took.
fn in_task(rt: &Runtime, way: Way, pipelines: &Pipelines, iters: u64) -> Duration {
    let ctx = AgentContext::detached("caller");
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call(way, &ctx, pipelines).await);
        }
        start.elapsed()
    })
}

/// Median time per call for each way.
fn endpoint_overhead(c: &mut Criterion) {
    let rt = runtime();
    let pipelines = Pipelines::new();
    let mut group = c.benchmark_group("endpoint");
    group.throughput(Throughput::Elements(1));
    for (name, way) in WAYS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| in_task(&rt, way, &pipelines, iters));
        });
    }
    group.finish();
}

/// Calls counted after warm-up, for the allocation report.
const COUNTED_CALLS: u64 = 10_000;

/// Average heap allocations per call made `way`, after a warm-up.
fn allocations_per_call(rt: &Runtime, way: Way, pipelines: &Pipelines) -> f64 {
    let ctx = AgentContext::detached("caller");
    let counted = rt.block_on(async {
        for _ in 0..COUNTED_CALLS {
            black_box(call(way, &ctx, pipelines).await);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..COUNTED_CALLS {
            black_box(call(way, &ctx, pipelines).await);
        }
        ALLOCATIONS.load(Ordering::Relaxed) - before
    });
    // Far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let per_call = counted as f64 / COUNTED_CALLS as f64;
    per_call
}

/// Prints heap allocations per call for each way.
fn allocation_report(_c: &mut Criterion) {
    let rt = runtime();
    let pipelines = Pipelines::new();
    let report: Vec<String> = WAYS
        .iter()
        .map(|(name, way)| {
            let per_call = allocations_per_call(&rt, *way, &pipelines);
            format!("{name} {per_call:.2}")
        })
        .collect();
    println!("allocations per call: {}", report.join(", "));
}

/// Rounds of the interleaved measurement, and calls per round and way.
const ROUNDS: u32 = 15;
const CALLS_PER_ROUND: u64 = 100_000;

/// Prints each way's best time per call over interleaved rounds: every way runs once per
/// round, so a burst of load elsewhere on the machine slows all of them alike, and the
/// best round of each is its cost on a quiet machine.
fn interleaved_report(_c: &mut Criterion) {
    let rt = runtime();
    let pipelines = Pipelines::new();
    let mut best = [Duration::MAX; WAYS.len()];
    for _ in 0..ROUNDS {
        for ((_, way), best) in WAYS.iter().zip(&mut best) {
            *best = (*best).min(in_task(&rt, *way, &pipelines, CALLS_PER_ROUND));
        }
    }
    let report: Vec<String> = WAYS
        .iter()
        .zip(best)
        .map(|((name, _), time)| {
            // Far below 2^53: exact.
            #[allow(clippy::cast_precision_loss)]
            let ns = time.as_nanos() as f64 / CALLS_PER_ROUND as f64;
            format!("{name} {ns:.0}")
        })
        .collect();
    println!(
        "ns per call, best of {ROUNDS} interleaved rounds: {}",
        report.join(", ")
    );
}

criterion_group!(
    benches,
    allocation_report,
    interleaved_report,
    endpoint_overhead
);
criterion_main!(benches);
