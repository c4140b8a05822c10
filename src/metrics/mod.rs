//! Prometheus metrics. Verify's own counters and histogram live in [`verify`], sharded by
//! worker thread so that the hot path never contends on them; the gauges about agents and
//! CAs are set from the trust index when scraped (no database query); [`counts`] reads what
//! the store and the audit trail counted.

mod counts;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::CaId;
use crate::domain::agent::AgentStatus;
use crate::domain::ca::Ca;
use crate::domain::verify::Rejection;
use crate::trust::{Census, EXPIRY_WINDOWS_DAYS};
use counts::RecordedCounts;
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
    agents: IntGaugeVec,
    agents_expiring: IntGaugeVec,
    agents_earliest_expiry: IntGaugeVec,
    cas: IntGauge,
    cas_expiring: IntGaugeVec,
    ca_expiry: IntGaugeVec,
    crl_next_update: IntGaugeVec,
    admin_requests: IntCounterVec,
    /// Verify calls answered 500: certgate could not decide.
    pub verify_errors: IntCounter,
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
        registry.register(Box::new(RecordedCounts::new()?))?;
        let agents = IntGaugeVec::new(
            Opts::new(
                "certgate_agents",
                "Enrolled agents by status, each counted once",
            ),
            &["status"],
        )?;
        registry.register(Box::new(agents.clone()))?;
        let agents_expiring = IntGaugeVec::new(
            Opts::new(
                "certgate_agents_expiring",
                "Active agents whose certificate expires within the window",
            ),
            &["within"],
        )?;
        registry.register(Box::new(agents_expiring.clone()))?;
        let agents_earliest_expiry = IntGaugeVec::new(
            Opts::new(
                "certgate_agents_earliest_expiry_timestamp_seconds",
                "When the first certificate of an active agent expires (absent without one)",
            ),
            &[],
        )?;
        registry.register(Box::new(agents_earliest_expiry.clone()))?;
        let cas = IntGauge::new("certgate_cas", "Trusted CAs that have not been removed")?;
        registry.register(Box::new(cas.clone()))?;
        let cas_expiring = IntGaugeVec::new(
            Opts::new(
                "certgate_cas_expiring",
                "Trusted CAs whose certificate expires within the window",
            ),
            &["within"],
        )?;
        registry.register(Box::new(cas_expiring.clone()))?;
        let ca_expiry = IntGaugeVec::new(
            Opts::new(
                "certgate_ca_expiry_timestamp_seconds",
                "When each trusted CA's certificate expires; internal=\"true\" is certgate's own",
            ),
            &["ca_id", "name", "internal"],
        )?;
        registry.register(Box::new(ca_expiry.clone()))?;
        let crl_next_update = IntGaugeVec::new(
            Opts::new(
                "certgate_crl_next_update_timestamp_seconds",
                "When each uploaded CRL of a trusted CA stops being current (its nextUpdate): \
                 upload the CA's next list before then",
            ),
            &["ca_id", "name"],
        )?;
        registry.register(Box::new(crl_next_update.clone()))?;
        let admin_requests = IntCounterVec::new(
            Opts::new(
                "certgate_admin_requests_total",
                "Admin API requests by route, method and status, refused ones included",
            ),
            &["route", "method", "status"],
        )?;
        registry.register(Box::new(admin_requests.clone()))?;
        let verify_errors = IntCounter::new(
            "certgate_verify_errors_total",
            "Verify calls answered 500 because certgate could not decide",
        )?;
        registry.register(Box::new(verify_errors.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "certgate_build_info",
                "certgate's version and git revision; always 1",
            ),
            &["version", "revision"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("CERTGATE_GIT_REVISION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
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
            agents_expiring,
            agents_earliest_expiry,
            cas,
            cas_expiring,
            ca_expiry,
            crl_next_update,
            admin_requests,
            verify_errors,
            last_seen_flush_errors,
            sync_errors,
            sync_lag,
            started: Instant::now(),
            feed_read_ms: AtomicU64::new(0),
        })
    }

    /// Sets the gauges about agents, CAs and their CRLs from the trust index, at `now`
    /// (unix seconds).
    pub fn record_trust(
        &self,
        census: &Census,
        cas: &[Arc<Ca>],
        crl_next_updates: &[(CaId, i64)],
        now: i64,
    ) {
        for (status, count) in AgentStatus::ALL.iter().zip(census.by_status) {
            self.agents
                .with_label_values(&[status.as_str()])
                .set(gauge_value(count));
        }
        for (days, count) in EXPIRY_WINDOWS_DAYS.iter().zip(census.expiring) {
            self.agents_expiring
                .with_label_values(&[&format!("{days}d")])
                .set(gauge_value(count));
        }
        self.agents_earliest_expiry.reset();
        if let Some(earliest) = census.earliest_expiry {
            self.agents_earliest_expiry
                .with_label_values::<&str>(&[])
                .set(earliest);
        }
        self.cas.set(gauge_value(cas.len() as u64));
        for days in EXPIRY_WINDOWS_DAYS {
            let until = now + days * 86_400;
            let expiring = cas
                .iter()
                .filter(|ca| ca.not_after.unix_timestamp() <= until)
                .count();
            self.cas_expiring
                .with_label_values(&[&format!("{days}d")])
                .set(gauge_value(expiring as u64));
        }
        // Removed CAs drop out of the family.
        self.ca_expiry.reset();
        for ca in cas {
            let internal = if ca.internal { "true" } else { "false" };
            self.ca_expiry
                .with_label_values(&[&ca.id.to_string(), &ca.name, internal])
                .set(ca.not_after.unix_timestamp());
        }
        self.crl_next_update.reset();
        for (ca_id, next_update) in crl_next_updates {
            let Some(ca) = cas.iter().find(|ca| ca.id == *ca_id) else {
                continue;
            };
            self.crl_next_update
                .with_label_values(&[&ca_id.to_string(), &ca.name])
                .set(*next_update);
        }
    }

    /// An admin API request has been answered; `route` is its matched pattern.
    pub fn admin_request(&self, route: &str, method: &str, status: u16) {
        self.admin_requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
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

/// One label of a metric the collectors here build by hand.
fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut pair = proto::LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

/// A metric family the collectors here build by hand.
fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
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
