//! The circuit breaker's closed-state success path: `acquire` then `record(Success)`.
//!
//! Two policies, each uncontended and with two threads hammering one shared breaker:
//!
//! - `count`: the default policy (failure count), where a success touches no shared
//!   state but the state word's load;
//! - `rate`: `failure_rate_threshold(0.5, 100)`, where every success is also counted in
//!   the sliding window (one compare-and-swap on a shared bucket).
//!
//! The two-thread cases time `iters` operations on *each* thread (started together on a
//! barrier) and report the slower thread's time, so the figure is the time per operation
//! as one thread sees it under contention; the throughput line counts both threads'
//! operations.
//!
//! Run with `cargo bench -p fastagentic --bench circuit_breaker`.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::reliability::CallOutcome;
use fastagentic::reliability::CircuitBreaker;
use fastagentic::reliability::CircuitBreakerPolicy;

/// Threads sharing one breaker in the contended cases (the bench machine has two cores).
const THREADS: usize = 2;

/// One call through the breaker: take a permit, record a success; panics if refused.
#[inline]
fn one_call(breaker: &CircuitBreaker) {
    let permit = match breaker.acquire() {
        Ok(permit) => permit,
        Err(err) => panic!("the breaker refused a call: {err}"),
    };
    let transition = permit.record(CallOutcome::Success {
        elapsed: Duration::ZERO,
    });
    assert!(transition.is_none(), "a success moved a closed breaker");
    black_box(transition);
}

/// Runs `iters` calls on each of [`THREADS`] threads sharing `breaker`; returns the
/// slowest thread's time.
fn contended(breaker: &CircuitBreaker, iters: u64) -> Duration {
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    for _ in 0..iters {
                        one_call(breaker);
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// Benchmarks `policy` uncontended and contended, in a group named `name`.
fn bench_policy(c: &mut Criterion, name: &str, policy: &CircuitBreakerPolicy) {
    let mut group = c.benchmark_group(name);

    let breaker = CircuitBreaker::new("m", policy.clone());
    group.throughput(Throughput::Elements(1));
    group.bench_function("uncontended", |b| b.iter(|| one_call(&breaker)));

    let shared = CircuitBreaker::new("m", policy.clone());
    group.throughput(Throughput::Elements(THREADS as u64));
    group.bench_function("two_threads", |b| {
        b.iter_custom(|iters| contended(&shared, iters));
    });
    group.finish();
}

/// The default policy: a success only loads the state word.
fn count_policy(c: &mut Criterion) {
    bench_policy(c, "breaker_count", &CircuitBreakerPolicy::default());
}

/// A failure-rate policy: every success is added to the sliding window too.
fn rate_policy(c: &mut Criterion) {
    let policy = CircuitBreakerPolicy::builder()
        .failure_rate_threshold(0.5, 100)
        .build()
        .expect("the breaker policy is valid");
    bench_policy(c, "breaker_rate", &policy);
}

criterion_group!(benches, count_policy, rate_policy);
criterion_main!(benches);
