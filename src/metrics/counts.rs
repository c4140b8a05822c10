//! Counters kept where things happen (the store's failures, the audit trail's events) and
//! read into Prometheus families when scraped.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::{family, label};
use crate::audit_log;
use crate::domain::audit::Action;
use crate::store;

const STORE_ERRORS: (&str, &str) = (
    "certgate_store_errors_total",
    "Database failures by kind: unavailable, full, read_only, other",
);
const CHANGES: (&str, &str) = (
    "certgate_changes_total",
    "Changes recorded in the audit trail by this replica, by action",
);
const ISSUED: (&str, &str) = (
    "certgate_certificates_issued_total",
    "Certificates the internal CA issued, by reason: enrolment (a token redeemed), renewal, \
     approval (of a self-enrolment request)",
);

pub struct RecordedCounts {
    descs: Vec<Desc>,
}

impl RecordedCounts {
    pub fn new() -> Result<Self, prometheus::Error> {
        let desc = |(name, help): (&str, &str), label: &str| {
            Desc::new(
                name.to_owned(),
                help.to_owned(),
                vec![label.to_owned()],
                Default::default(),
            )
        };
        Ok(Self {
            descs: vec![
                desc(STORE_ERRORS, "kind")?,
                desc(CHANGES, "action")?,
                desc(ISSUED, "reason")?,
            ],
        })
    }
}

impl Collector for RecordedCounts {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let changes: Vec<(Action, u64)> = audit_log::recorded_counts().collect();
        let count_of = |wanted: Action| {
            changes
                .iter()
                .find(|(action, _)| *action == wanted)
                .map_or(0, |(_, count)| *count)
        };
        let issued = [
            ("enrolment", count_of(Action::TokenRedeem)),
            ("renewal", count_of(Action::CertificateRenew)),
            ("approval", count_of(Action::RequestApprove)),
        ];
        vec![
            counter_family(STORE_ERRORS, "kind", store::fault_counts()),
            counter_family(
                CHANGES,
                "action",
                changes
                    .iter()
                    .map(|(action, count)| (action.as_str(), *count)),
            ),
            counter_family(ISSUED, "reason", issued.into_iter()),
        ]
    }
}

fn counter_family<'a>(
    (name, help): (&str, &str),
    label_name: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) -> MetricFamily {
    let metrics = values
        .map(|(value, count)| {
            let mut counter = proto::Counter::default();
            counter.set_value(count as f64);
            let mut metric = proto::Metric::default();
            metric.set_label(vec![label(label_name, value)]);
            metric.set_counter(counter);
            metric
        })
        .collect();
    family(name, help, MetricType::COUNTER, metrics)
}
