//! Verify's decision counters and latency histogram, written without shared cache lines.
//!
//! Every verify call adds to a counter and to the histogram. With one atomic per metric,
//! as the `prometheus` types keep them, the workers take turns owning the same cache lines
//! on every call. Here each worker thread writes to a shard of its own, and a scrape sums
//! the shards into ordinary Prometheus families.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::{Allowed, family, label};
use crate::domain::verify::Rejection;

const DECISIONS_NAME: &str = "certgate_verify_decisions_total";
const DECISIONS_HELP: &str = "Verify answers by outcome (allowed, denied, audited = denied but \
                              let through in audit mode) and reason";
const LATENCY_NAME: &str = "certgate_verify_duration_seconds";
const LATENCY_HELP: &str = "Time spent answering verify calls, inside certgate";

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
    0.25, 1.0,
];

const ALLOWED: usize = Allowed::ALL.len();
const REJECTIONS: usize = Rejection::ALL.len();
/// Counter slots: allowed by why, then denied by reason, then audited by reason.
const DECISIONS: usize = ALLOWED + 2 * REJECTIONS;
/// More shards than workers usually run; threads beyond that share shards, which stays
/// correct (the adds are atomic) and only costs speed.
const SHARDS: usize = 16;

/// One thread's counts, aligned so that no two shards share a cache line (or the pair of
/// lines some CPUs prefetch together).
#[repr(align(128))]
struct Shard {
    decisions: [AtomicU64; DECISIONS],
    /// Calls per latency bucket, not cumulative; the last slot is `+Inf`.
    latency_buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_nanos: AtomicU64,
}

impl Shard {
    fn new() -> Self {
        Self {
            decisions: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_nanos: AtomicU64::new(0),
        }
    }
}

pub struct VerifyStats {
    shards: Box<[Shard]>,
    bucket_nanos: [u64; BUCKETS.len()],
    descs: Vec<Desc>,
}

impl VerifyStats {
    pub fn new() -> Result<Self, prometheus::Error> {
        let descs = vec![
            Desc::new(
                DECISIONS_NAME.to_owned(),
                DECISIONS_HELP.to_owned(),
                vec!["outcome".to_owned(), "reason".to_owned()],
                Default::default(),
            )?,
            Desc::new(
                LATENCY_NAME.to_owned(),
                LATENCY_HELP.to_owned(),
                Vec::new(),
                Default::default(),
            )?,
        ];
        Ok(Self {
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            bucket_nanos: BUCKETS.map(|seconds| (seconds * 1e9) as u64),
            descs,
        })
    }

    pub fn allowed(&self, why: Allowed) {
        self.count(why as usize);
    }

    /// `enforced = false` counts a denial that audit mode let through.
    pub fn denied(&self, reason: Rejection, enforced: bool) {
        let base = if enforced {
            ALLOWED
        } else {
            ALLOWED + REJECTIONS
        };
        self.count(base + reason.index());
    }

    pub fn observe_latency(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = self
            .bucket_nanos
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKETS.len());
        let shard = self.shard();
        shard.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn count(&self, slot: usize) {
        self.shard().decisions[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_of_this_thread()]
    }

    fn sum(&self, read: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| read(shard).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    fn decisions_family(&self) -> MetricFamily {
        let outcomes = Allowed::ALL
            .iter()
            .map(|why| ("allowed", why.as_str()))
            .chain(Rejection::ALL.iter().map(|r| ("denied", r.as_str())))
            .chain(Rejection::ALL.iter().map(|r| ("audited", r.as_str())));
        let metrics = outcomes
            .enumerate()
            .map(|(slot, (outcome, reason))| {
                let mut counter = proto::Counter::default();
                counter.set_value(self.sum(|shard| &shard.decisions[slot]) as f64);
                let mut metric = proto::Metric::default();
                metric.set_label(vec![label("outcome", outcome), label("reason", reason)]);
                metric.set_counter(counter);
                metric
            })
            .collect();
        family(DECISIONS_NAME, DECISIONS_HELP, MetricType::COUNTER, metrics)
    }

    fn latency_family(&self) -> MetricFamily {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len());
        for (slot, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.sum(|shard| &shard.latency_buckets[slot]);
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            buckets.push(bucket);
        }
        // The count is the buckets' total, so it always agrees with them, even while calls
        // are being recorded during the scrape.
        let count = cumulative + self.sum(|shard| &shard.latency_buckets[BUCKETS.len()]);
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(count);
        histogram.set_sample_sum(self.sum(|shard| &shard.latency_nanos) as f64 / 1e9);
        let mut metric = proto::Metric::default();
        metric.set_histogram(histogram);
        family(
            LATENCY_NAME,
            LATENCY_HELP,
            MetricType::HISTOGRAM,
            vec![metric],
        )
    }
}

impl Collector for VerifyStats {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        vec![self.decisions_family(), self.latency_family()]
    }
}

/// The shard this thread writes to, handed out in turn as threads first record something.
fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|shard| *shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(stats: &VerifyStats, outcome: &str, reason: &str) -> f64 {
        let family = stats.decisions_family();
        family
            .get_metric()
            .iter()
            .find(|m| {
                let labels = m.get_label();
                labels[0].value() == outcome && labels[1].value() == reason
            })
            .map_or(f64::NAN, |m| m.get_counter().get_value())
    }

    #[test]
    fn counts_from_several_threads_add_up() {
        let stats = VerifyStats::new().expect("descriptors");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        stats.allowed(Allowed::Enrolled);
                        stats.denied(Rejection::AgentRevoked, true);
                        stats.denied(Rejection::AgentRevoked, false);
                    }
                });
            }
        });
        assert_eq!(counter(&stats, "allowed", "enrolled"), 4000.0);
        assert_eq!(counter(&stats, "denied", "agent_revoked"), 4000.0);
        assert_eq!(counter(&stats, "audited", "agent_revoked"), 4000.0);
        assert_eq!(counter(&stats, "denied", "agent_disabled"), 0.0);
    }

    #[test]
    fn latency_lands_in_cumulative_buckets() {
        let stats = VerifyStats::new().expect("descriptors");
        stats.observe_latency(Duration::from_micros(5)); // ≤ 10 µs
        stats.observe_latency(Duration::from_micros(30)); // ≤ 50 µs
        stats.observe_latency(Duration::from_secs(2)); // +Inf
        let family = stats.latency_family();
        let histogram = family.get_metric()[0].get_histogram();
        let counts: Vec<u64> = histogram
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(&counts[..4], &[1, 1, 2, 2]);
        assert_eq!(counts[BUCKETS.len() - 1], 2);
        assert_eq!(histogram.get_sample_count(), 3);
        assert!((histogram.get_sample_sum() - 2.000_035).abs() < 1e-9);
    }
}
