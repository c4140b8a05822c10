//! Prometheus metrics. Verify counters are resolved once at start-up into arrays, so the
//! hot path does one atomic add and never takes the label map's lock.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::domain::verify::Rejection;

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
    allowed: Vec<IntCounter>,
    denied: Vec<IntCounter>,
    audited: Vec<IntCounter>,
    pub verify_latency: Histogram,
    pub agents: IntGauge,
    pub cas: IntGauge,
    pub last_seen_flush_errors: IntCounter,
    pub sync_errors: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "certgate_verify_decisions_total",
                "Verify answers by outcome (allowed, denied, audited = denied but let through \
                 in audit mode) and reason",
            ),
            &["outcome", "reason"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        let resolve = |outcome: &str, reasons: &mut dyn Iterator<Item = &'static str>| {
            reasons
                .map(|reason| decisions.with_label_values(&[outcome, reason]))
                .collect::<Vec<_>>()
        };
        let allowed = resolve("allowed", &mut Allowed::ALL.iter().map(|a| a.as_str()));
        let denied = resolve("denied", &mut Rejection::ALL.iter().map(|r| r.as_str()));
        let audited = resolve("audited", &mut Rejection::ALL.iter().map(|r| r.as_str()));
        let verify_latency = Histogram::with_opts(
            HistogramOpts::new(
                "certgate_verify_duration_seconds",
                "Time spent answering verify calls, inside certgate",
            )
            .buckets(vec![
                0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
                0.01, 0.05, 0.25, 1.0,
            ]),
        )?;
        registry.register(Box::new(verify_latency.clone()))?;
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
        Ok(Self {
            registry,
            allowed,
            denied,
            audited,
            verify_latency,
            agents,
            cas,
            last_seen_flush_errors,
            sync_errors,
        })
    }

    pub fn allowed(&self, why: Allowed) {
        self.allowed[why as usize].inc();
    }

    /// `enforced = false` counts a denial that audit mode let through.
    pub fn denied(&self, reason: Rejection, enforced: bool) {
        let counters = if enforced {
            &self.denied
        } else {
            &self.audited
        };
        counters[reason.index()].inc();
    }

    pub fn render(&self) -> String {
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
