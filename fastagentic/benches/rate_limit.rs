//! The rate limiter's admission check against `governor`'s equivalent.
//!
//! Every case is one group, ours next to governor's:
//!
//! - `one_key`: a single unkeyed cell (`requests_per_minute` / `RateLimiter::direct`);
//! - `keyed_one_key`: a keyed limit hit by one user over and over;
//! - `keyed_1m_keys`: a keyed limit over 1,000,000 distinct users, taken round-robin,
//!   every user's cell created before timing starts.
//!
//! Ours is checked through `RateLimiter::try_admit`, the synchronous path the pipeline
//! takes whenever a slot is free now; `one_key/ours_block_on` drives the `async admit`
//! through a current-thread runtime's `block_on` instead, to show what an executor adds.
//!
//! A `clock` group times the clocks each limiter reads on every check, since that is a
//! fixed part of both.
//!
//! Limits are `u32::MAX` per minute: GCRA lets a cell run a whole minute ahead of real
//! time, billions of requests, so nothing is refused during a run (every check asserts
//! it).
//!
//! Run with `cargo bench -p fastagentic --bench rate_limit`.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastagentic::reliability::{Identity, RateLimitPolicyBuilder};
use fastagentic::reliability::{LimitScope, RateLimitPolicy, RateLimiter};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::time::Instant;

/// Distinct users in the many-keys case.
const KEYS: usize = 1_000_000;

/// Our limiter with one limit set by `set`, for the endpoint scope.
fn ours(set: impl FnOnce(RateLimitPolicyBuilder) -> RateLimitPolicyBuilder) -> RateLimiter {
    let policy = set(RateLimitPolicy::builder())
        .build()
        .expect("the rate-limit policy is valid");
    RateLimiter::new(&policy, LimitScope::Endpoint)
}

/// Governor's quota equivalent to ours: `u32::MAX` per minute, all of it as burst.
fn quota() -> Quota {
    Quota::per_minute(NonZeroU32::MAX)
}

/// A deadline that never matters in reject mode.
fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Admits one request through the synchronous path; panics if it was refused.
#[inline]
fn admit_now(limiter: &RateLimiter, identity: Identity<'_>, _deadline: Instant) {
    match limiter.try_admit(identity, None) {
        Ok(admission) => drop(black_box(admission)),
        Err(err) => panic!("our limiter refused a request: {err}"),
    }
}

/// Checks governor's direct limiter; panics on a refusal.
#[inline]
fn governor_direct(limiter: &DefaultDirectRateLimiter) {
    assert!(limiter.check().is_ok(), "governor refused a request");
}

/// Checks governor's keyed limiter for `key`; panics on a refusal.
#[inline]
fn governor_keyed<S>(
    limiter: &governor::RateLimiter<
        Arc<str>,
        governor::state::keyed::DashMapStateStore<Arc<str>, S>,
        governor::clock::DefaultClock,
    >,
    key: &Arc<str>,
) where
    S: std::hash::BuildHasher + Clone,
{
    assert!(limiter.check_key(key).is_ok(), "governor refused a request");
}

/// One unkeyed cell: ours against `governor::RateLimiter::direct`.
fn one_key(c: &mut Criterion) {
    let limiter = ours(|p| p.requests_per_minute(u32::MAX));
    let governor = DefaultDirectRateLimiter::direct(quota());
    let deadline = far_deadline();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime starts");

    let mut group = c.benchmark_group("one_key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours", |b| {
        b.iter(|| admit_now(&limiter, Identity::default(), deadline));
    });
    // The pipeline reads the clock once per request and hands it to every limiter; this
    // is the limiter's own cost without that read.
    let now = Instant::now();
    group.bench_function("ours_clock_read_by_caller", |b| {
        b.iter(|| {
            let admission = limiter
                .try_admit_at(Identity::default(), None, now)
                .expect("our limiter admits");
            drop(black_box(admission));
        });
    });
    group.bench_function("ours_block_on", |b| {
        b.iter(|| {
            let admission = rt
                .block_on(limiter.admit(Identity::default(), None, deadline))
                .expect("our limiter admits");
            drop(black_box(admission));
        });
    });
    group.bench_function("governor", |b| {
        b.iter(|| governor_direct(&governor));
    });
    group.finish();
}

/// A keyed limit hit by one user: ours (`per_user_rpm`) against `RateLimiter::keyed`.
fn keyed_one_key(c: &mut Criterion) {
    let limiter = ours(|p| p.per_user_rpm(u32::MAX));
    let governor: DefaultKeyedRateLimiter<Arc<str>> = DefaultKeyedRateLimiter::keyed(quota());
    let user: Arc<str> = Arc::from("user-0000042");
    let deadline = far_deadline();
    let identity = Identity {
        user: Some(&user),
        tenant: None,
    };

    let mut group = c.benchmark_group("keyed_one_key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours", |b| {
        b.iter(|| admit_now(&limiter, identity, deadline));
    });
    group.bench_function("governor", |b| {
        b.iter(|| governor_keyed(&governor, &user));
    });
    group.finish();
}

/// A million distinct user ids, built on first use so a filtered run skips them.
fn million_keys(keys: &OnceLock<Vec<Arc<str>>>) -> &[Arc<str>] {
    keys.get_or_init(|| {
        (0..KEYS)
            .map(|i| Arc::from(format!("user-{i:07}")))
            .collect()
    })
}

/// The identity of user `key`.
fn user(key: &Arc<str>) -> Identity<'_> {
    Identity {
        user: Some(key),
        tenant: None,
    }
}

/// A keyed limit over a million users taken round-robin, every cell created beforehand.
///
/// Criterion calls a benchmark's closure once per sample, so each case fills its limiter
/// on the first call and keeps it (and its place in the round) in the closure: only one
/// million-entry map is alive at a time, and a filtered run builds none.
///
/// Governor's keyed limiter hashes with std's SipHash by default while ours uses
/// foldhash; `governor_foldhash` gives governor the same hasher so the comparison is of
/// the limiters, not the hash functions.
fn keyed_1m_keys(c: &mut Criterion) {
    let keys = OnceLock::new();
    let deadline = far_deadline();

    let mut group = c.benchmark_group("keyed_1m_keys");
    group.throughput(Throughput::Elements(1));

    let mut filled = None;
    let mut next = 0;
    group.bench_function("ours", |b| {
        let keys = million_keys(&keys);
        let limiter = filled.get_or_insert_with(|| {
            let limiter = ours(|p| p.per_user_rpm(u32::MAX));
            for key in keys {
                admit_now(&limiter, user(key), deadline);
            }
            limiter
        });
        b.iter(|| {
            admit_now(limiter, user(&keys[next]), deadline);
            next = if next + 1 == KEYS { 0 } else { next + 1 };
        });
        // Had cells been swept and recreated while timing, insertions would have been
        // timed instead of checks.
        assert_eq!(limiter.tracked_keys(), KEYS);
    });
    drop(filled);

    let mut filled = None;
    let mut next = 0;
    group.bench_function("governor", |b| {
        let keys = million_keys(&keys);
        let governor = filled.get_or_insert_with(|| {
            let governor = DefaultKeyedRateLimiter::keyed(quota());
            for key in keys {
                governor_keyed(&governor, key);
            }
            governor
        });
        b.iter(|| {
            governor_keyed(governor, &keys[next]);
            next = if next + 1 == KEYS { 0 } else { next + 1 };
        });
        assert_eq!(governor.len(), KEYS);
    });
    drop(filled);

    let mut filled = None;
    let mut next = 0;
    group.bench_function("governor_foldhash", |b| {
        let keys = million_keys(&keys);
        let governor = filled.get_or_insert_with(|| {
            let governor = governor::RateLimiter::dashmap_with_hasher(
                quota(),
                foldhash::fast::RandomState::default(),
            );
            for key in keys {
                governor_keyed(&governor, key);
            }
            governor
        });
        b.iter(|| {
            governor_keyed(governor, &keys[next]);
            next = if next + 1 == KEYS { 0 } else { next + 1 };
        });
        assert_eq!(governor.len(), KEYS);
    });
    drop(filled);
    group.finish();
}

/// The clocks read on every check: ours (`tokio::time::Instant`, which is
/// `std::time::Instant` unless the clock was paused) and governor's (`quanta`).
fn clocks(c: &mut Criterion) {
    let quanta = governor::clock::DefaultClock::default();
    let mut group = c.benchmark_group("clock");
    group.bench_function("std_instant_now", |b| {
        b.iter(std::time::Instant::now);
    });
    group.bench_function("tokio_instant_now", |b| {
        b.iter(Instant::now);
    });
    group.bench_function("governor_default_clock_now", |b| {
        b.iter(|| quanta.now());
    });
    group.finish();
}

criterion_group!(benches, one_key, keyed_one_key, keyed_1m_keys, clocks);
criterion_main!(benches);
