//! `B/ca`: trusted CA certificates.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ListResponse, optional_time, page, parse_id, parse_sort};
use crate::domain::ca::{Ca, parse_name};
use crate::domain::{AgentId, CaId};
use crate::error::ApiError;
use crate::routes::JsonObject;
use crate::routes::caller::RequestCaller;
use crate::state::AppState;
use crate::store::{CaFilter, SortKey};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    expires_before: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// What `sort` may name for CAs.
const SORT_KEYS: [(&str, SortKey); 3] = [
    ("not_after", SortKey::NotAfter),
    ("name", SortKey::Name),
    ("created_at", SortKey::CreatedAt),
];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCa {
    name: String,
    certificate: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CaItem {
    id: CaId,
    name: String,
    fingerprint: String,
    subject: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    agent_count: i64,
    /// certgate's own issuing CA.
    internal: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<String>,
}

impl CaItem {
    fn new(ca: Ca, agent_count: i64, with_certificate: bool) -> Self {
        Self {
            id: ca.id,
            name: ca.name,
            fingerprint: ca.fingerprint.to_string(),
            subject: ca.subject,
            not_before: ca.not_before,
            not_after: ca.not_after,
            created_at: ca.created_at,
            agent_count,
            internal: ca.internal,
            certificate: with_certificate.then_some(ca.certificate_pem),
        }
    }
}

#[utoipa::path(get, path = "/ca", tag = "cas", params(ListQuery), security(("bearer" = [])), responses((status = 200, description = "A page of trusted CAs", body = ListResponse<CaItem>), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let filter = CaFilter {
        expires_before: optional_time("expires_before", query.expires_before.as_deref())?,
        sort: parse_sort(query.sort.as_deref(), &SORT_KEYS)?,
    };
    let (cas, total) = state.store.list_cas(&filter, page).await?;
    let items = cas
        .into_iter()
        .map(|(ca, agents)| CaItem::new(ca, agents, false))
        .collect();
    Ok(HttpResponse::Ok().json(ListResponse::new(items, total, page)))
}

#[utoipa::path(get, path = "/ca/{id}", tag = "cas", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 200, description = "The CA with its certificate", body = CaItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let ca = state.store.ca(id).await?;
    let agents = state.store.ca_agent_count(id).await?;
    Ok(HttpResponse::Ok().json(CaItem::new(ca, agents, true)))
}

#[utoipa::path(post, path = "/ca", tag = "cas", request_body = CreateCa, security(("bearer" = [])), responses((status = 201, body = CaItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: RequestCaller,
    body: web::Json<JsonObject<CreateCa>>,
) -> Result<HttpResponse, ApiError> {
    let CreateCa { name, certificate } = body.into_inner().0;
    let name = parse_name(&name).map_err(|m| ApiError::bad_request("invalid_field", m))?;
    let ca = state
        .registry
        .add_ca(name, &certificate, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Created().json(CaItem::new(ca, 0, true)))
}

#[utoipa::path(delete, path = "/ca/{id}", tag = "cas", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 204, description = "Removed: its agents are denied as ca_removed"), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
) -> Result<HttpResponse, ApiError> {
    state
        .registry
        .remove_ca(parse_id(&id)?, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Largest CRL accepted: an external CA may list many thousands of serials.
pub const MAX_CRL_BYTES: usize = 4 * 1024 * 1024;

#[derive(Serialize, utoipa::ToSchema)]
struct CrlAnswer {
    ca_id: CaId,
    serials: usize,
    #[serde(with = "time::serde::rfc3339")]
    this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    next_update: Option<OffsetDateTime>,
    revoked_agents: Vec<AgentId>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CrlBody {
    crl: String,
}

/// `PUT B/ca/:id/crl`: the body is the CRL itself, PEM or DER, or JSON `{"crl": "PEM"}`.
#[utoipa::path(put, path = "/ca/{id}/crl", tag = "cas", params(("id" = String, Path, format = Uuid)), request_body(content((CrlBody = "application/json"), (String = "application/x-pem-file"), (Vec<u8> = "application/pkix-crl")), description = "The CRL: PEM, DER, or JSON with the PEM"), security(("bearer" = [])), responses((status = 200, body = CrlAnswer), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn put_crl(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let ca_id: CaId = parse_id(&id)?;
    let body = body.map_err(|e| crate::routes::payload_error(&e))?;
    let crl_bytes = if body.trim_ascii_start().starts_with(b"{") {
        serde_json::from_slice::<JsonObject<CrlBody>>(&body)
            .map_err(|e| crate::routes::body_error(&e))?
            .0
            .crl
            .into_bytes()
    } else {
        body.to_vec()
    };
    let (crl, revoked_agents) = state
        .registry
        .import_crl(ca_id, &crl_bytes, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Ok().json(CrlAnswer {
        ca_id,
        serials: crl.serials.len(),
        this_update: crl.this_update,
        next_update: crl.next_update,
        revoked_agents,
    }))
}
