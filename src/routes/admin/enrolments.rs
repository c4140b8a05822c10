//! `B/enrollments` and `B/agents/:id/token`: agents that will receive a certificate from
//! certgate's internal CA by redeeming a one-time token.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{ListResponse, OptionalAgentFields, field_error, optional_body, page, parse_id};
use crate::domain::AgentId;
use crate::domain::agent::Hostname;
use crate::domain::enrolment::{EnrolmentToken, PendingEnrolment};
use crate::domain::enrolment::{MAX_TOKEN_TTL, MIN_TOKEN_TTL};
use crate::error::ApiError;
use crate::issuance::NewPendingEnrolment;
use crate::routes::JsonObject;
use crate::routes::caller::RequestCaller;
use crate::state::AppState;
use crate::store::Page;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrolment {
    hostname: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateToken {
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
}

/// The answer to creating an enrolment or rotating a token: the only time the token is
/// shown.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenIssued<'a> {
    agent_id: AgentId,
    token: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    hostname: &'a str,
    profile: &'static str,
}

impl<'a> TokenIssued<'a> {
    fn new(enrolment: &'a PendingEnrolment, token: &'a EnrolmentToken) -> Self {
        Self {
            agent_id: enrolment.agent_id,
            token: token.as_str(),
            expires_at: enrolment.expires_at,
            hostname: enrolment.hostname.as_str(),
            profile: enrolment.profile.as_str(),
        }
    }
}

/// An agent that has not enrolled yet, in the shape of an agent item: the certificate
/// fields are null until it redeems its token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PendingItem {
    id: AgentId,
    hostname: String,
    description: Option<String>,
    tags: Vec<String>,
    ca_id: Option<()>,
    fingerprint: Option<()>,
    fingerprint_sha1: Option<()>,
    subject: Option<()>,
    serial: Option<()>,
    not_before: Option<()>,
    not_after: Option<()>,
    enabled: bool,
    status: &'static str,
    profile: &'static str,
    allowed_ips: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    token_expires_at: OffsetDateTime,
    token_expired: bool,
    revoked_at: Option<()>,
    last_seen_at: Option<()>,
    last_seen_ip: Option<()>,
}

impl PendingItem {
    pub fn new(enrolment: PendingEnrolment, now: OffsetDateTime) -> Self {
        Self {
            id: enrolment.agent_id,
            hostname: enrolment.hostname.as_str().to_owned(),
            description: enrolment.description,
            tags: enrolment.tags.as_slice().to_vec(),
            ca_id: None,
            fingerprint: None,
            fingerprint_sha1: None,
            subject: None,
            serial: None,
            not_before: None,
            not_after: None,
            enabled: false,
            status: "pending",
            profile: enrolment.profile.as_str(),
            allowed_ips: enrolment.allowed_ips.to_strings(),
            created_at: enrolment.created_at,
            updated_at: enrolment.created_at,
            token_expires_at: enrolment.expires_at,
            token_expired: now >= enrolment.expires_at,
            revoked_at: None,
            last_seen_at: None,
            last_seen_ip: None,
        }
    }
}

fn ttl(seconds: Option<i64>) -> Result<Option<Duration>, ApiError> {
    seconds
        .map(Duration::seconds)
        .map(|ttl| {
            if (MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&ttl) {
                Ok(ttl)
            } else {
                Err(field_error(
                    "ttl_seconds must be between 1 and 2592000 (30 days)",
                ))
            }
        })
        .transpose()
}

impl TryFrom<CreateEnrolment> for NewPendingEnrolment {
    type Error = ApiError;

    fn try_from(body: CreateEnrolment) -> Result<Self, ApiError> {
        let fields = OptionalAgentFields::parse(
            body.description.as_deref(),
            body.tags,
            body.allowed_ips,
            body.profile.as_deref(),
        )?;
        Ok(NewPendingEnrolment {
            hostname: Hostname::parse(&body.hostname).map_err(field_error)?,
            description: fields.description,
            tags: fields.tags,
            allowed_ips: fields.allowed_ips,
            profile: fields.profile,
            ttl: ttl(body.ttl_seconds)?,
        })
    }
}

#[utoipa::path(post, path = "/enrollments", tag = "enrolment", request_body = CreateEnrolment, security(("bearer" = [])), responses((status = 201, description = "A pending agent and its one-time token, shown this once", body = TokenIssued), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: RequestCaller,
    body: web::Json<JsonObject<CreateEnrolment>>,
) -> Result<HttpResponse, ApiError> {
    let request = NewPendingEnrolment::try_from(body.into_inner().0)?;
    let (enrolment, token) = state
        .issuance
        .create_enrolment(request, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Created().json(TokenIssued::new(&enrolment, &token)))
}

#[utoipa::path(get, path = "/enrollments", tag = "enrolment", params(ListQuery), security(("bearer" = [])), responses((status = 200, body = ListResponse<PendingItem>), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    pending_page(&state, page).await
}

/// One page of agents that have not redeemed their token yet.
pub async fn pending_page(state: &AppState, page: Page) -> Result<HttpResponse, ApiError> {
    let (pending, total) = state.store.list_pending_enrolments(page).await?;
    let now = OffsetDateTime::now_utc();
    let items: Vec<_> = pending
        .into_iter()
        .map(|p| PendingItem::new(p, now))
        .collect();
    Ok(HttpResponse::Ok().json(ListResponse::new(items, total, page)))
}

/// `POST B/agents/:id/token`, body optional: a new one-time token for a pending agent, or
/// for an enrolled one that needs a new certificate.
#[utoipa::path(post, path = "/agents/{id}/token", tag = "enrolment", params(("id" = String, Path, format = Uuid)), request_body(content = Option<RotateToken>, description = "Optional"), security(("bearer" = [])), responses((status = 201, body = TokenIssued), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn rotate(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let ttl_seconds = optional_body::<RotateToken>(body)?.and_then(|body| body.ttl_seconds);
    let (enrolment, token) = state
        .issuance
        .rotate_token(id, ttl(ttl_seconds)?, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Created().json(TokenIssued::new(&enrolment, &token)))
}
