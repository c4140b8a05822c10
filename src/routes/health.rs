//! Liveness, readiness and metrics: no auth, outside the base path.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::state::AppState;
use crate::store::StoreError;

/// Under a Kubernetes probe's one-second timeout, with room to spare.
const READY_TIMEOUT: Duration = Duration::from_millis(200);

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when the store could take a write now, asked within 200 ms. The reason of a 503
/// is one of `database_unreachable`, `database_timeout`, `storage_full`, `read_only`.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "The store can be written", body = Object), (status = 503, description = "`reason`: database_unreachable, database_timeout, storage_full or read_only", body = Object)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let reason = match tokio::time::timeout(READY_TIMEOUT, state.store.check_writable()).await {
        Ok(Ok(())) => return HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(_) => "database_timeout",
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: the store cannot be written");
            match error {
                StoreError::Full(_) => "storage_full",
                StoreError::ReadOnly(_) => "read_only",
                _ => "database_unreachable",
            }
        }
    };
    HttpResponse::ServiceUnavailable()
        .json(serde_json::json!({"status": "not_ready", "reason": reason}))
}

#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let census = state.trust.census(now);
    let (cas, crls) = (state.trust.live_cas(), state.trust.crl_next_updates());
    state.metrics.record_trust(&census, &cas, &crls, now);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
