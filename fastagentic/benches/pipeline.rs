//! Overhead of the full reliability pipeline on the success path.
//!
//! All five patterns are on (rate limit with global, token and per-user limits, total
//! timeout, circuit breaker, retry with its budget, a two-model fallback chain) and all
//! state is in memory. The body answers at once, so what is timed is the pipeline itself
//! plus one `block_on` on a current-thread runtime; the `bare` case runs the same body
//! through the same `block_on` so the difference is the pipeline's overhead.
//!
//! The binary also counts heap allocations per call with a counting global allocator and
//! prints `allocations per call: pipeline X, bare Y`.
//!
//! Run with `cargo bench -p fastagentic --bench pipeline`.

// The counting global allocator below must implement the `unsafe` trait `GlobalAlloc`;
// it only forwards to `System` and bumps a counter.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::reliability::{
    CircuitBreakerPolicy, FallbackChain, Pipeline, RateLimitPolicy, RequestInfo, RetryPolicy,
    TimeoutPolicy,
};
use fastagentic::{AgentContext, AgentError, ClassSet, ErrorClass};
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

/// A limit so large nothing is ever refused: GCRA lets a cell run up to a whole minute
/// ahead, i.e. about 4.3 billion requests (and tokens, with a one-token estimate) beyond
/// real time, far more than any benchmark run makes.
const NO_LIMIT: u32 = u32::MAX;

/// The pipeline under test: every pattern on, in-memory state.
fn full_pipeline() -> Pipeline {
    let rate_limit = RateLimitPolicy::builder()
        .requests_per_minute(NO_LIMIT)
        .tokens_per_minute(NO_LIMIT)
        .per_user_rpm(NO_LIMIT)
        // The default estimate (1000 tokens per request) would spend the token limit's
        // minute of headroom within a few million calls; the cost of a take does not
        // depend on the amount, so reserve one token per request.
        .token_estimate(1)
        .build()
        .expect("the rate-limit policy is valid");
    let fallback = FallbackChain::builder("gpt-4o")
        .then("gpt-4o-mini", ClassSet::of(&[ErrorClass::RateLimit]))
        .build()
        .expect("the fallback chain is valid");
    Pipeline::builder()
        .endpoint("/bench")
        .rate_limit(rate_limit)
        .timeout(TimeoutPolicy::default())
        .circuit_breaker(CircuitBreakerPolicy::default())
        .retry(RetryPolicy::default())
        .fallback(fallback)
        .build()
        .expect("the pipeline is valid")
}

/// The runtime every call is driven on: current-thread, with the timer the total
/// timeout needs.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime starts")
}

/// The endpoint body: answers at once.
async fn body(_ctx: AgentContext) -> Result<u32, AgentError> {
    Ok(42)
}

/// One call through the full pipeline, awaited; panics if anything refused it.
async fn run_pipeline(pipeline: &Pipeline, user: &Arc<str>) -> u32 {
    let request = RequestInfo::new().user(user.clone());
    match pipeline.run(request, body).await {
        Ok(answer) => answer,
        Err(err) => panic!("the pipeline refused a call: {err}"),
    }
}

/// One call through the full pipeline, on its own `block_on`.
fn call_pipeline(rt: &Runtime, pipeline: &Pipeline, user: &Arc<str>) -> u32 {
    rt.block_on(run_pipeline(pipeline, user))
}

/// `iters` calls through the full pipeline awaited one after another inside a single
/// `block_on`, as a server task would make them; returns the time they took.
fn pipeline_in_task(rt: &Runtime, pipeline: &Pipeline, user: &Arc<str>, iters: u64) -> Duration {
    rt.block_on(async {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            black_box(run_pipeline(pipeline, user).await);
        }
        start.elapsed()
    })
}

/// The same body given a detached context (which allocates four times itself), on the
/// same `block_on`.
fn call_bare(rt: &Runtime) -> u32 {
    let ctx = AgentContext::detached("gpt-4o");
    match rt.block_on(body(ctx)) {
        Ok(answer) => answer,
        Err(err) => panic!("the bare body failed: {err}"),
    }
}

/// The bare baseline: the body's work (an immediate `Ok(42)`) on the same `block_on`,
/// with no context to build, so this is the price of `block_on` itself.
fn call_bare_no_ctx(rt: &Runtime) -> u32 {
    let answer = rt.block_on(async { Ok::<_, AgentError>(42u32) });
    match answer {
        Ok(answer) => answer,
        Err(err) => panic!("the bare body failed: {err}"),
    }
}

/// Median time per call: the full pipeline against the bare body, each on its own
/// `block_on`, and the full pipeline awaited inside one long-lived task (no per-call
/// `block_on`, and the pipeline's future is built in place rather than moved in).
fn pipeline_overhead(c: &mut Criterion) {
    let rt = runtime();
    let pipeline = full_pipeline();
    let user: Arc<str> = Arc::from("user-42");

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare_block_on", |b| {
        b.iter(|| black_box(call_bare_no_ctx(&rt)));
    });
    group.bench_function("bare_with_context", |b| {
        b.iter(|| black_box(call_bare(&rt)));
    });
    group.bench_function("full_success", |b| {
        b.iter(|| black_box(call_pipeline(&rt, &pipeline, &user)));
    });
    group.bench_function("full_success_in_task", |b| {
        b.iter_custom(|iters| pipeline_in_task(&rt, &pipeline, &user, iters));
    });
    group.finish();
}

/// Calls counted after warm-up, for the allocation report.
const COUNTED_CALLS: u64 = 10_000;

/// Average heap allocations per call of `call`, after a warm-up.
fn allocations_per_call(mut call: impl FnMut() -> u32) -> f64 {
    for _ in 0..COUNTED_CALLS {
        black_box(call());
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..COUNTED_CALLS {
        black_box(call());
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    // Both counts are far below 2^53, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let per_call = (after - before) as f64 / COUNTED_CALLS as f64;
    per_call
}

/// Prints heap allocations per call for the pipeline and the bare baselines.
fn allocation_report(_c: &mut Criterion) {
    let rt = runtime();
    let pipeline = full_pipeline();
    let user: Arc<str> = Arc::from("user-42");

    let full = allocations_per_call(|| call_pipeline(&rt, &pipeline, &user));
    let bare = allocations_per_call(|| call_bare_no_ctx(&rt));
    let bare_ctx = allocations_per_call(|| call_bare(&rt));
    let in_task = rt.block_on(async {
        for _ in 0..COUNTED_CALLS {
            black_box(run_pipeline(&pipeline, &user).await);
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..COUNTED_CALLS {
            black_box(run_pipeline(&pipeline, &user).await);
        }
        ALLOCATIONS.load(Ordering::Relaxed) - before
    });
    // Far below 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let in_task = in_task as f64 / COUNTED_CALLS as f64;
    println!(
        "allocations per call: pipeline {full:.2}, bare {bare:.2} \
         (pipeline inside one task: {in_task:.2}; bare with a detached context: {bare_ctx:.2})"
    );
}

criterion_group!(benches, allocation_report, pipeline_overhead);
criterion_main!(benches);
