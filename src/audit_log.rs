//! The audit trail's log line: one JSON-friendly line per recorded event, for operators who
//! ship logs rather than poll `GET B/audit`.

use crate::domain::audit::AuditEvent;

/// Logs an event the store has just committed.
pub fn recorded(event: &AuditEvent) {
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
