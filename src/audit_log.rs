//! The audit trail's log line: one JSON-friendly line per recorded event, for operators who
//! ship logs rather than poll `GET B/audit`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::audit::{Action, AuditEvent};

/// Events recorded by this process, by action in the order of [`Action::ALL`].
static RECORDED: [AtomicU64; Action::ALL.len()] = [const { AtomicU64::new(0) }; Action::ALL.len()];

/// How many events of each action this process has recorded (for the metrics).
pub fn recorded_counts() -> impl Iterator<Item = (Action, u64)> {
    Action::ALL
        .into_iter()
        .zip(&RECORDED)
        .map(|(action, count)| (action, count.load(Ordering::Relaxed)))
}

/// Logs an event the store has just committed, and counts it.
pub fn recorded(event: &AuditEvent) {
    if let Some(slot) = Action::ALL.iter().position(|a| *a == event.action) {
        RECORDED[slot].fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!(
        target: "certgate::audit",
        actor = event.actor.as_str(),
        action = event.action.as_str(),
        target_type = event.target.kind(),
        target_id = %event.target.id(),
        request_id = event.request_id.as_deref(),
        ip = event.source_ip.map(|ip| ip.to_string()),
        details = %event.details_json(),
        "audit"
    );
}
