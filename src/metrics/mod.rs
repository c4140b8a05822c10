//! Prometheus metrics. Verify's own counters and histogram live in [`verify`], sharded by
//! worker thread so that the hot path never contends on them.

mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::{Encoder, Gauge, IntCounter, IntGauge, Registry, TextEncoder};

use crate::domain::verify::Rejection;
use verify::VerifyStats;

/// Why a verify call was allowed.
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    Enrolled,
    Unknown,
    AutoEnrolled,
}

impl Allowed {
    const ALL: [Allowed; 3] = [Self::Enrolled, Self::Unknown, Self::AutoEnrolled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::Unknown => "unknown_allowed",
            Self::AutoEnrolled => "auto_enrolled",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    verify: Arc<VerifyStats>,
    pub agents: IntGauge,
    pub cas: IntGauge,
    pub last_seen_flush_errors: IntCounter,
    pub sync_errors: IntCounter,
    sync_lag: Gauge,
    started: Instant,
    /// When the change feed was last read to its end, in ms after `started`.
    feed_read_ms: AtomicU64,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let verify = Arc::new(VerifyStats::new()?);
        registry.register(Box::new(SharedCollector(Arc::clone(&verify))))?;
        let agents = IntGauge::new("certgate_agents", "Agents in the in-memory trust index")?;
        registry.register(Box::new(agents.clone()))?;
        let cas = IntGauge::new("certgate_cas", "Trusted CAs in the in-memory trust index")?;
        registry.register(Box::new(cas.clone()))?;
        let last_seen_flush_errors = IntCounter::new(
            "certgate_last_seen_flush_errors_total",
            "Failed attempts to write last_seen batches",
        )?;
        registry.register(Box::new(last_seen_flush_errors.clone()))?;
        let sync_errors = IntCounter::new(
            "certgate_sync_errors_total",
            "Failed attempts to follow the change feed",
        )?;
        registry.register(Box::new(sync_errors.clone()))?;
        let sync_lag = Gauge::new(
            "certgate_sync_lag_seconds",
            "Seconds since the change feed was last read to its end: every change committed \
             through another replica before then is in this replica's decisions",
        )?;
        registry.register(Box::new(sync_lag.clone()))?;
        Ok(Self {
            registry,
            verify,
            agents,
            cas,
            last_seen_flush_errors,
            sync_errors,
            sync_lag,
            started: Instant::now(),
            feed_read_ms: AtomicU64::new(0),
        })
    }

    /// The change feed has just been read to its end.
    pub fn feed_read(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.feed_read_ms.store(ms, Ordering::Relaxed);
    }

    pub fn observe_verify_latency(&self, elapsed: std::time::Duration) {
        self.verify.observe_latency(elapsed);
    }

    pub fn allowed(&self, why: Allowed) {
        self.verify.allowed(why);
    }

    /// `enforced = false` counts a denial that audit mode let through.
    pub fn denied(&self, reason: Rejection, enforced: bool) {
        self.verify.denied(reason, enforced);
    }

    pub fn render(&self) -> String {
        let since_start = self.started.elapsed().as_secs_f64();
        let read_at = self.feed_read_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        self.sync_lag.set((since_start - read_at).max(0.0));
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Registers the verify statistics, which the `Metrics` also keep, with the registry.
struct SharedCollector(Arc<VerifyStats>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}
