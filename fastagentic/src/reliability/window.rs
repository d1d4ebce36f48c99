//! A lock-free, fixed-size sliding time window of two counters.
//!
//! The window is split into `BUCKETS` buckets; each bucket is one `AtomicU64` packing the
//! bucket's epoch tag (28 bits) and two saturating 18-bit counters. Tags wrap after 2^28
//! buckets; windows are at least one second long, so that is at least 310 days. Memory is constant whatever the traffic,
//! and an update is one compare-and-swap. A value counts for between `(BUCKETS-1)/BUCKETS`
//! and all of the window, the same trade Polly and resilience4j make.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) const BUCKETS: u64 = 10;

const COUNT_BITS: u32 = 18;
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
        self.update(now, da, db, None);
    }

    /// Adds `da` and `db` at `now` only if `allow` accepts the window's sums, as one atomic
    /// step: the add fails and is retried if the current bucket changed since the sums
    /// were read, so two racing callers cannot both pass a check meant for one.
    pub(crate) fn add_if(
        &self,
        now: u64,
        da: u64,
        db: u64,
        allow: impl Fn(WindowSums) -> bool,
    ) -> bool {
        self.update(now, da, db, Some(&allow))
    }

    fn update(
        &self,
        now: u64,
        da: u64,
        db: u64,
        allow: Option<&dyn Fn(WindowSums) -> bool>,
    ) -> bool {
        let index = now / self.bucket_nanos;
        let tag = index & TAG_MASK;
        let bucket = &self.buckets[(index % BUCKETS) as usize];
        loop {
            let current = bucket.load(Ordering::Acquire);
            let (old_tag, a, b) = unpack(current);
            let (a, b) = if old_tag == tag {
                (a, b)
            } else if is_newer(old_tag, tag) {
                // A late writer: its bucket has already been reused for a newer period,
                // so the time it reports is outside the window. Drop it.
                return false;
            } else {
                (0, 0)
            };
            if allow.is_some_and(|allow| !allow(self.sums(now))) {
                return false;
            }
            let next = pack(tag, a.saturating_add(da), b.saturating_add(db));
            if bucket
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
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

/// Whether `stored` is a later period than `tag`, allowing for wrap-around.
fn is_newer(stored: u64, tag: u64) -> bool {
    let ahead = stored.wrapping_sub(tag) & TAG_MASK;
    ahead != 0 && ahead < (1 << (TAG_BITS - 1))
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
    fn a_late_writer_does_not_wipe_a_newer_bucket() {
        let w = SlidingWindow::new(Duration::from_secs(10));
        w.add(10 * SEC, 0, 1);
        // t = 0 s maps to the same bucket as t = 10 s, but a period earlier.
        w.add(0, 0, 1);
        assert_eq!(w.sums(10 * SEC).b, 1);
    }

    #[test]
    fn conditional_adds_are_atomic_across_threads() {
        let w = SlidingWindow::new(Duration::from_secs(10));
        let granted: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| w.add_if(SEC, 0, 1, |sums| sums.b < 10))
                            .count()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(granted, 10);
    }

    #[test]
    fn clear_forgets() {
        let w = SlidingWindow::new(Duration::from_secs(10));
        w.add(0, 3, 3);
        w.clear();
        assert_eq!(w.sums(0), WindowSums::default());
    }
}
