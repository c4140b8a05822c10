//! `B/agents`: enrolled agents.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use super::{
    ListResponse, OptionalAgentFields, field_error, optional_body, optional_time, page, parse_bool,
    parse_id, parse_sort,
};
use crate::domain::agent::{Agent, AgentStatus, AllowedIps, Hostname, Tags, parse_description};
use crate::domain::{AgentId, CaId};
use crate::error::ApiError;
use crate::registry::{self, AgentUpdate, ManualEnrolment};
use crate::routes::JsonObject;
use crate::routes::caller::RequestCaller;
use crate::state::AppState;
use crate::store::{AgentFilter, SortKey, StoreError};

use super::enrolments::{PendingItem, pending_page};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    enabled: Option<String>,
    tag: Option<String>,
    ca_id: Option<String>,
    q: Option<String>,
    status: Option<String>,
    include_revoked: Option<String>,
    expires_before: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// What `sort` may name for agents.
const SORT_KEYS: [(&str, SortKey); 4] = [
    ("not_after", SortKey::NotAfter),
    ("hostname", SortKey::Hostname),
    ("created_at", SortKey::CreatedAt),
    ("last_seen_at", SortKey::LastSeenAt),
];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    hostname: String,
    #[serde(default)]
    description: Option<String>,
    certificate: String,
    ca_id: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
}

/// Absent fields keep their value; `description: null` clears it; `allowed_ips: null` or
/// `[]` lifts the restriction.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    allowed_ips: Option<Option<Vec<String>>>,
}

/// Tells "field absent" (`None`) from "field is null" (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ToggleBody {
    enabled: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AgentItem {
    id: AgentId,
    hostname: String,
    description: Option<String>,
    tags: Vec<String>,
    ca_id: CaId,
    fingerprint: String,
    fingerprint_sha1: String,
    subject: String,
    serial: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    enabled: bool,
    status: AgentStatus,
    profile: &'static str,
    allowed_ips: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_seen_at: Option<OffsetDateTime>,
    last_seen_ip: Option<String>,
}

impl AgentItem {
    fn new(agent: Agent, now: OffsetDateTime) -> Self {
        Self {
            status: agent.status(now),
            id: agent.id,
            hostname: agent.hostname.as_str().to_owned(),
            description: agent.description,
            tags: agent.tags.as_slice().to_vec(),
            ca_id: agent.ca_id,
            fingerprint: agent.fingerprint.to_string(),
            fingerprint_sha1: agent.fingerprint_sha1.to_string(),
            subject: agent.subject,
            serial: agent.serial,
            not_before: agent.not_before,
            not_after: agent.not_after,
            enabled: agent.enabled,
            profile: agent.profile.as_str(),
            allowed_ips: agent.allowed_ips.to_strings(),
            created_at: agent.created_at,
            updated_at: agent.updated_at,
            revoked_at: agent.revoked_at,
            last_seen_at: agent.last_seen_at,
            last_seen_ip: agent.last_seen_ip,
        }
    }
}

fn filter(query: &ListQuery) -> Result<AgentFilter, ApiError> {
    let query_error = |m: &str| ApiError::bad_request("invalid_query", m.to_owned());
    Ok(AgentFilter {
        enabled: query
            .enabled
            .as_deref()
            .map(|v| parse_bool("enabled", v))
            .transpose()?,
        tag: query.tag.clone(),
        ca_id: query
            .ca_id
            .as_deref()
            .map(|v| {
                v.parse::<CaId>()
                    .map_err(|_| query_error("ca_id must be a UUID"))
            })
            .transpose()?,
        hostname_contains: query.q.clone().filter(|q| !q.is_empty()),
        status: query
            .status
            .as_deref()
            .map(|v| {
                AgentStatus::parse(v).ok_or_else(|| {
                    query_error(
                        "status must be active, disabled, revoked, expired, ca_removed, ca_expired or pending",
                    )
                })
            })
            .transpose()?,
        expires_before: optional_time("expires_before", query.expires_before.as_deref())?,
        sort: parse_sort(query.sort.as_deref(), &SORT_KEYS)?,
        include_revoked: query
            .include_revoked
            .as_deref()
            .map(|v| parse_bool("include_revoked", v))
            .transpose()?
            .unwrap_or(false),
    })
}

#[utoipa::path(get, path = "/agents", tag = "agents", params(ListQuery), security(("bearer" = [])), responses((status = 200, description = "A page of agents (pending ones with status=pending)", body = ListResponse<AgentAnswer>), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let now = OffsetDateTime::now_utc();
    if query.status.as_deref() == Some("pending") {
        return pending_page(&state, page).await;
    }
    let filter = filter(&query)?;
    let (agents, total) = state.store.list_agents(&filter, page, now).await?;
    let items = agents.into_iter().map(|a| AgentItem::new(a, now)).collect();
    Ok(HttpResponse::Ok().json(ListResponse::new(items, total, page)))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 200, description = "The agent, or a pending one", body = AgentAnswer), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = OffsetDateTime::now_utc();
    let answer = match state.store.agent(id).await {
        Ok(agent) => AgentAnswer::Enrolled(AgentItem::new(agent, now)),
        Err(StoreError::NotFound) => match state.store.enrolment(id).await? {
            pending if pending.used_at.is_none() => {
                AgentAnswer::Pending(PendingItem::new(pending, now))
            }
            _ => return Err(ApiError::not_found()),
        },
        Err(other) => return Err(other.into()),
    };
    Ok(HttpResponse::Ok().json(answer))
}

/// An enrolled agent, or one whose token is not redeemed yet.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AgentAnswer {
    Enrolled(AgentItem),
    Pending(PendingItem),
}

impl TryFrom<CreateAgent> for ManualEnrolment {
    type Error = ApiError;

    fn try_from(body: CreateAgent) -> Result<Self, ApiError> {
        let fields = OptionalAgentFields::parse(
            body.description.as_deref(),
            body.tags,
            body.allowed_ips,
            None,
        )?;
        Ok(ManualEnrolment {
            hostname: Hostname::parse(&body.hostname).map_err(field_error)?,
            description: fields.description,
            certificate_pem: body.certificate,
            ca_id: body
                .ca_id
                .parse()
                .map_err(|_| field_error("ca_id must be a UUID"))?,
            tags: fields.tags,
            allowed_ips: fields.allowed_ips,
        })
    }
}

#[utoipa::path(post, path = "/agents", tag = "agents", request_body = CreateAgent, security(("bearer" = [])), responses((status = 201, body = AgentItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: RequestCaller,
    body: web::Json<JsonObject<CreateAgent>>,
) -> Result<HttpResponse, ApiError> {
    let enrolment = ManualEnrolment::try_from(body.into_inner().0)?;
    let now = OffsetDateTime::now_utc();
    let agent = state.registry.enrol(enrolment, &caller, now).await?;
    Ok(HttpResponse::Created().json(AgentItem::new(agent, now)))
}

impl TryFrom<UpdateAgent> for AgentUpdate {
    type Error = ApiError;

    fn try_from(body: UpdateAgent) -> Result<Self, ApiError> {
        Ok(AgentUpdate {
            hostname: body
                .hostname
                .as_deref()
                .map(Hostname::parse)
                .transpose()
                .map_err(field_error)?,
            description: match body.description {
                None => None,
                Some(None) => Some(None),
                Some(Some(text)) => Some(Some(parse_description(&text).map_err(field_error)?)),
            },
            tags: body
                .tags
                .as_deref()
                .map(Tags::parse)
                .transpose()
                .map_err(field_error)?,
            allowed_ips: body
                .allowed_ips
                .map(|ips| AllowedIps::parse(&ips.unwrap_or_default()))
                .transpose()
                .map_err(field_error)?,
        })
    }
}

#[utoipa::path(put, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, format = Uuid)), request_body = UpdateAgent, security(("bearer" = [])), responses((status = 200, body = AgentItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
    body: web::Json<JsonObject<UpdateAgent>>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let update = AgentUpdate::try_from(body.into_inner().0)?;
    let now = OffsetDateTime::now_utc();
    let agent = state.registry.update(id, update, &caller, now).await?;
    Ok(HttpResponse::Ok().json(AgentItem::new(agent, now)))
}

#[utoipa::path(delete, path = "/agents/{id}", tag = "agents", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 204, description = "Revoked for good (a pending agent's enrolment is withdrawn)"), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = OffsetDateTime::now_utc();
    match state.registry.revoke(id, &caller, now).await {
        Err(registry::Error::Store(StoreError::NotFound)) => {
            state.issuance.cancel(id, &caller, now).await?;
        }
        other => {
            other?;
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Without a body: flip `enabled`. With `{"enabled": bool}`: set it.
#[utoipa::path(put, path = "/agents/{id}/toggle", tag = "agents", params(("id" = String, Path, format = Uuid)), request_body(content = Option<ToggleBody>, description = "Optional: without a body, enabled flips"), security(("bearer" = [])), responses((status = 200, body = AgentItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn toggle(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let enabled = optional_body::<ToggleBody>(body)?.map(|body| body.enabled);
    let now = OffsetDateTime::now_utc();
    let agent = state.registry.toggle(id, enabled, &caller, now).await?;
    Ok(HttpResponse::Ok().json(AgentItem::new(agent, now)))
}
