//! Liveness, readiness and metrics: no auth, outside the base path.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Under a Kubernetes probe's one-second timeout, with room to spare.
const READY_TIMEOUT: Duration = Duration::from_millis(200);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers within 200 ms.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            not_ready("database unreachable")
        }
        Err(_) => not_ready("database did not answer in time"),
    }
}

fn not_ready(why: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .json(serde_json::json!({"status": "not_ready", "reason": why}))
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.agents.set(state.trust.agent_count() as i64);
    state.metrics.cas.set(state.trust.ca_count() as i64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
