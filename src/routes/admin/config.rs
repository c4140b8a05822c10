//! `B/config`: the run-time policy switches.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::policy::{Policy, PolicyChange};
use crate::error::ApiError;
use crate::routes::JsonObject;
use crate::routes::caller::RequestCaller;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyBody {
    enforcement_enabled: bool,
    reject_unknown_certs: bool,
    auto_enroll: bool,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Policy> for PolicyBody {
    fn from(policy: Policy) -> Self {
        Self {
            enforcement_enabled: policy.enforcement_enabled,
            reject_unknown_certs: policy.reject_unknown_certs,
            auto_enroll: policy.auto_enroll,
            updated_at: policy.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    enforcement_enabled: Option<bool>,
    reject_unknown_certs: Option<bool>,
    auto_enroll: Option<bool>,
}

#[utoipa::path(get, path = "/config", tag = "config", security(("bearer" = [])), responses((status = 200, body = PolicyBody), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let policy = state.store.policy().await?;
    Ok(HttpResponse::Ok().json(PolicyBody::from(policy)))
}

#[utoipa::path(put, path = "/config", tag = "config", request_body = UpdatePolicy, security(("bearer" = [])), responses((status = 200, body = PolicyBody), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    caller: RequestCaller,
    body: web::Json<JsonObject<UpdatePolicy>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().0;
    let change = PolicyChange {
        enforcement_enabled: body.enforcement_enabled,
        reject_unknown_certs: body.reject_unknown_certs,
        auto_enroll: body.auto_enroll,
    };
    let policy = state
        .registry
        .set_policy(change, &caller, OffsetDateTime::now_utc())
        .await?;
    if !policy.enforcement_enabled {
        tracing::warn!("enforcement disabled: audit mode lets every certificate through");
    }
    Ok(HttpResponse::Ok().json(PolicyBody::from(policy)))
}
