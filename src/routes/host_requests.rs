//! `B/enroll/requests`: host self-enrolment with administrator approval. Submitting and
//! polling need no credential (the polling token is one); listing, approving and denying
//! are admin routes.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::admin::{ListResponse, OptionalAgentFields, field_error, optional_body, page, parse_id};
use crate::domain::agent::{Hostname, canonical_ip};
use crate::domain::approval::{HostRequest, HostRequestStatus, MAX_OS_DETAILS, parse_machine_id};
use crate::domain::{AgentId, HostRequestId};
use crate::error::ApiError;
use crate::issuance::{Approval, NewHostRequest, Poll};
use crate::routes::JsonObject;
use crate::routes::caller::RequestCaller;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// `fqdn` is the name the self-enrolment seed uses.
    #[serde(alias = "fqdn")]
    hostname: String,
    machine_id: String,
    ip_address: String,
    #[serde(default)]
    os_details: Option<serde_json::Value>,
    csr: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
    #[serde(default)]
    profile: Option<String>,
    /// Approve although an active agent was seen from or approved for the same address
    /// (hosts behind NAT or a shared egress). A hostname collision is refused regardless.
    #[serde(default)]
    allow_shared_ip: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Submitted<'a> {
    request_id: HostRequestId,
    polling_token: &'a str,
    key_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// A request as administrators see it (never its token).
#[derive(Serialize, utoipa::ToSchema)]
struct RequestItem {
    id: HostRequestId,
    hostname: String,
    machine_id: String,
    ip_address: String,
    os_details: serde_json::Value,
    key_sha256: String,
    status: &'static str,
    expired: bool,
    agent_id: Option<AgentId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    decided_at: Option<OffsetDateTime>,
}

impl RequestItem {
    fn new(request: HostRequest, now: OffsetDateTime) -> Self {
        Self {
            expired: request.status == HostRequestStatus::Pending && request.expired(now),
            id: request.id,
            hostname: request.hostname.as_str().to_owned(),
            machine_id: request.machine_id,
            ip_address: request.ip_address.to_string(),
            os_details: serde_json::from_str(&request.os_details)
                .unwrap_or(serde_json::Value::Null),
            key_sha256: request.key_sha256.to_string(),
            status: request.status.as_str(),
            agent_id: request.agent_id,
            created_at: request.created_at,
            expires_at: request.expires_at,
            decided_at: request.decided_at,
        }
    }
}

/// The polling answer: always 200, the status says what happened.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
enum PollAnswer {
    Pending,
    Approved {
        agent_id: AgentId,
        certificate: String,
        ca_certificate: String,
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    Denied,
    NotFound,
}

impl TryFrom<SubmitRequest> for NewHostRequest {
    type Error = ApiError;

    fn try_from(body: SubmitRequest) -> Result<Self, ApiError> {
        let os_details = match body.os_details {
            None | Some(serde_json::Value::Null) => "{}".to_owned(),
            Some(value @ (serde_json::Value::Object(_) | serde_json::Value::String(_))) => {
                value.to_string()
            }
            Some(_) => return Err(field_error("os_details must be an object or a string")),
        };
        if os_details.len() > MAX_OS_DETAILS {
            return Err(field_error("os_details must be at most 4096 bytes of JSON"));
        }
        Ok(NewHostRequest {
            hostname: Hostname::parse(&body.hostname).map_err(field_error)?,
            machine_id: parse_machine_id(&body.machine_id).map_err(field_error)?,
            ip_address: body
                .ip_address
                .trim()
                .parse()
                .map(canonical_ip)
                .map_err(|_| field_error("ip_address must be an IPv4 or IPv6 address"))?,
            os_details,
            csr_pem: body.csr,
        })
    }
}

/// `POST B/enroll/requests`: every attempt counts against the per-address limit, so a
/// stranger cannot flood administrators with requests.
#[utoipa::path(post, path = "/enroll/requests", tag = "self-enrolment", request_body = SubmitRequest, responses((status = 202, description = "Stored; the polling token is shown this once", body = Submitted), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn submit(
    state: web::Data<AppState>,
    caller: RequestCaller,
    body: web::Json<JsonObject<SubmitRequest>>,
) -> Result<HttpResponse, ApiError> {
    if let Some(source) = caller.source_ip {
        state
            .issuing_limits
            .host_requests
            .record_attempt(source)
            .map_err(|wait| {
                ApiError::too_many_requests(
                    wait,
                    "too many enrolment requests from this address; retry later",
                )
            })?;
    }
    let new = NewHostRequest::try_from(body.into_inner().0)?;
    let (stored, token) = state
        .issuance
        .submit_request(new, &caller, OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Accepted().json(Submitted {
        request_id: stored.id,
        polling_token: token.as_str(),
        key_sha256: stored.key_sha256.to_string(),
        expires_at: stored.expires_at,
    }))
}

#[utoipa::path(get, path = "/enroll/requests/status/{token}", tag = "self-enrolment", params(("token" = String, Path, description = "The polling token")), responses((status = 200, description = "Always 200; `status` says what happened", body = PollAnswer), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn status(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let answer = match state
        .issuance
        .poll(&token, OffsetDateTime::now_utc())
        .await?
    {
        Poll::Pending => PollAnswer::Pending,
        Poll::Denied => PollAnswer::Denied,
        Poll::NotFound => PollAnswer::NotFound,
        Poll::Approved {
            agent_id,
            certificate_pem,
            ca_certificate_pem,
            not_after,
        } => PollAnswer::Approved {
            agent_id,
            certificate: certificate_pem,
            ca_certificate: ca_certificate_pem,
            not_after,
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

#[utoipa::path(get, path = "/enroll/requests", tag = "self-enrolment", params(ListQuery), security(("bearer" = [])), responses((status = 200, description = "A page of requests", body = ListResponse<RequestItem>), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page(query.limit.as_deref(), query.offset.as_deref())?;
    let status = query
        .status
        .as_deref()
        .map(|text| {
            HostRequestStatus::parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    "status must be pending, approved or denied",
                )
            })
        })
        .transpose()?;
    let (requests, total) = state.store.list_requests(status, page).await?;
    let now = OffsetDateTime::now_utc();
    let items = requests
        .into_iter()
        .map(|r| RequestItem::new(r, now))
        .collect();
    Ok(HttpResponse::Ok().json(ListResponse::new(items, total, page)))
}

#[utoipa::path(get, path = "/enroll/requests/{id}", tag = "self-enrolment", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 200, body = RequestItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let request = state.store.request(parse_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(RequestItem::new(request, OffsetDateTime::now_utc())))
}

/// Body optional: the agent's description, tags, allowed IPs and profile, and
/// `allow_shared_ip` to accept an address an active agent uses too.
#[utoipa::path(post, path = "/enroll/requests/{id}/approve", tag = "self-enrolment", params(("id" = String, Path, format = Uuid)), request_body(content = Option<ApproveBody>, description = "Optional"), security(("bearer" = [])), responses((status = 200, description = "Approved; the host collects its certificate by polling", body = RequestItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn approve(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (fields, allow_shared_ip) = match optional_body::<ApproveBody>(body)? {
        Some(body) => (
            OptionalAgentFields::parse(
                body.description.as_deref(),
                body.tags,
                body.allowed_ips,
                body.profile.as_deref(),
            )?,
            body.allow_shared_ip,
        ),
        None => (OptionalAgentFields::parse(None, None, None, None)?, false),
    };
    let approval = Approval {
        description: fields.description,
        tags: fields.tags,
        allowed_ips: fields.allowed_ips,
        profile: fields.profile,
        allow_shared_ip,
    };
    let now = OffsetDateTime::now_utc();
    let (request, _) = state.issuance.approve(id, approval, &caller, now).await?;
    Ok(HttpResponse::Ok().json(RequestItem::new(request, now)))
}

#[utoipa::path(post, path = "/enroll/requests/{id}/deny", tag = "self-enrolment", params(("id" = String, Path, format = Uuid)), security(("bearer" = [])), responses((status = 200, body = RequestItem), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn deny(
    state: web::Data<AppState>,
    id: web::Path<String>,
    caller: RequestCaller,
) -> Result<HttpResponse, ApiError> {
    let now = OffsetDateTime::now_utc();
    let request = state.issuance.deny(parse_id(&id)?, &caller, now).await?;
    Ok(HttpResponse::Ok().json(RequestItem::new(request, now)))
}
