//! A lock-free, fixed-size sliding time window of two counters.
//!
//! The window is split into `BUCKETS` buckets; each bucket is one `AtomicU64` packing the
//! bucket's epoch tag and two saturating counters. Memory is constant whatever the traffic,
//! and an update is one compare-and-swap. A value counts for between `(BUCKETS-1)/BUCKETS`
//! and all of the window, the same trade Polly and resilience4j make.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) const BUCKETS: u64 = 10;

const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const TAG_BITS: u32 = 64 - 2 * COUNT_BITS;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// Two counters (`a`, `b`) summed over a sliding window of time.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    buckets: [AtomicU64; BUCKETS as usize],
    bucket_nanos: u64,
}

/// The sums of both counters over the live buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowSums {
    pub(crate) a: u64,
    pub(crate) b: u64,
}

impl SlidingWindow {
    /// A window of `length` (which must be non-zero; policies validate it).
    pub(crate) fn new(length: Duration) -> Self {
        let nanos = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        SlidingWindow {
            buckets: Default::default(),
            bucket_nanos: (nanos / BUCKETS).max(1),
        }
    }

    /// Adds `da` and `db` to the bucket for time `now` (nanoseconds since the owner's epoch).
    pub(crate) fn add(&self, now: u64, da: u64, db: u64) {
        let index = now / self.bucket_nanos;
        let tag = index & TAG_MASK;
        let bucket = &self.buckets[(index % BUCKETS) as usize];
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let (old_tag, a, b) = unpack(current);
            let (a, b) = if old_tag == tag { (a, b) } else { (0, 0) };
            let next = pack(tag, a.saturating_add(da), b.saturating_add(db));
            match bucket.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Sums the buckets that still fall inside the window at time `now`.
    pub(crate) fn sums(&self, now: u64) -> WindowSums {
        let index = now / self.bucket_nanos;
        let tag = index & TAG_MASK;
        self.buckets
            .iter()
            .map(|bucket| unpack(bucket.load(Ordering::Acquire)))
            .filter(|(bucket_tag, _, _)| tag.wrapping_sub(*bucket_tag) & TAG_MASK < BUCKETS)
            .fold(WindowSums::default(), |sum, (_, a, b)| WindowSums {
                a: sum.a + a,
                b: sum.b + b,
            })
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        for bucket in &self.buckets {
            // A tag no live bucket can have: far from any recent index.
            bucket.store(pack(TAG_MASK, 0, 0), Ordering::Release);
        }
    }
}

fn pack(tag: u64, a: u64, b: u64) -> u64 {
    (tag << (2 * COUNT_BITS)) | (a.min(COUNT_MAX) << COUNT_BITS) | b.min(COUNT_MAX)
}

fn unpack(word: u64) -> (u64, u64, u64) {
    (
        word >> (2 * COUNT_BITS),
        (word >> COUNT_BITS) & COUNT_MAX,
        word & COUNT_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn counts_inside_the_window_only() {
        let w = SlidingWindow::new(Duration::from_secs(60));
        w.add(0, 1, 0);
        w.add(30 * SEC, 1, 1);
        assert_eq!(w.sums(59 * SEC), WindowSums { a: 2, b: 1 });
        // At 61 s the bucket holding t=0 has left the window.
        assert_eq!(w.sums(61 * SEC), WindowSums { a: 1, b: 1 });
        assert_eq!(w.sums(200 * SEC), WindowSums::default());
    }

    #[test]
    fn counters_saturate_instead_of_overflowing() {
        let w = SlidingWindow::new(Duration::from_secs(10));
        w.add(0, COUNT_MAX, 0);
        w.add(0, 5, 0);
        assert_eq!(w.sums(0).a, COUNT_MAX);
    }

    #[test]
    fn clear_forgets() {
        let w = SlidingWindow::new(Duration::from_secs(10));
        w.add(0, 3, 3);
        w.clear();
        assert_eq!(w.sums(0), WindowSums::default());
    }
}
