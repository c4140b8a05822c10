//! `B/audit`: the audit trail, newest first.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ListResponse, optional_time, page};
use crate::domain::audit::Action;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AuditFilter, StoredAuditEvent};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    actor: Option<String>,
    action: Option<String>,
    target_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AuditItem {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: String,
    action: String,
    target_type: String,
    target_id: String,
    request_id: Option<String>,
    source_ip: Option<String>,
    details: serde_json::Value,
}

impl From<StoredAuditEvent> for AuditItem {
    fn from(event: StoredAuditEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            actor: event.actor,
            action: event.action,
            target_type: event.target_type,
            target_id: event.target_id,
            request_id: event.request_id,
            source_ip: event.source_ip,
            // Written by certgate as a JSON object; anything else shows as an empty one.
            details: serde_json::from_str(&event.details)
                .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new())),
        }
    }
}

#[utoipa::path(get, path = "/audit", tag = "audit", params(ListQuery), security(("bearer" = [])), responses((status = 200, description = "A page of the audit trail, newest first", body = ListResponse<AuditItem>), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let query = query.into_inner();
    let filter = AuditFilter {
        actor: query.actor,
        action: query.action.as_deref().map(parse_action).transpose()?,
        target_id: query.target_id,
        since: optional_time("since", query.since.as_deref())?,
        until: optional_time("until", query.until.as_deref())?,
    };
    let (events, total) = state.store.audit_events(&filter, page).await?;
    let items: Vec<AuditItem> = events.into_iter().map(AuditItem::from).collect();
    Ok(HttpResponse::Ok().json(ListResponse::new(items, total, page)))
}

fn parse_action(text: &str) -> Result<Action, ApiError> {
    Action::parse(text).ok_or_else(|| {
        let known: Vec<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
        ApiError::bad_request(
            "invalid_query",
            format!("action must be one of {}", known.join(", ")),
        )
    })
}
