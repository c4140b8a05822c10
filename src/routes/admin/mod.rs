//! The admin API: bearer-token authentication, pagination, and the CA, agent and config
//! resources.

pub(super) mod agents;
pub(super) mod audit;
pub(super) mod cas;
pub(super) mod config;
pub(super) mod enrolments;

use std::str::FromStr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, ResponseError, Scope, web};
use serde::Serialize;

use crate::domain::AgentId;
use crate::domain::agent::{AllowedIps, Tags, parse_description};
use crate::domain::audit::Actor;
use crate::domain::enrolment::Profile;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Page, Sort, SortKey};

pub fn scope() -> Scope<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("")
        .wrap(from_fn(require_admin))
        // Outside the admin check, so that refused requests are counted too.
        .wrap(from_fn(count_request))
        .service(
            resource("/ca")
                .route(web::get().to(cas::list))
                .route(web::post().to(cas::create)),
        )
        .service(
            resource("/ca/{id}")
                .route(web::get().to(cas::get))
                .route(web::delete().to(cas::delete)),
        )
        .service(
            resource("/ca/{id}/crl")
                .app_data(web::PayloadConfig::new(cas::MAX_CRL_BYTES))
                .route(web::put().to(cas::put_crl)),
        )
        .service(
            resource("/agents")
                .route(web::get().to(agents::list))
                .route(web::post().to(agents::create)),
        )
        .service(
            resource("/agents/{id}")
                .route(web::get().to(agents::get))
                .route(web::put().to(agents::update))
                .route(web::delete().to(agents::revoke)),
        )
        .service(resource("/agents/{id}/toggle").route(web::put().to(agents::toggle)))
        .service(resource("/agents/{id}/token").route(web::post().to(enrolments::rotate)))
        .service(resource("/enroll/requests/{id}").route(web::get().to(super::host_requests::get)))
        .service(
            resource("/enroll/requests/{id}/approve")
                .route(web::post().to(super::host_requests::approve)),
        )
        .service(
            resource("/enroll/requests/{id}/deny")
                .route(web::post().to(super::host_requests::deny)),
        )
        .service(
            resource("/enrollments")
                .route(web::get().to(enrolments::list))
                .route(web::post().to(enrolments::create)),
        )
        .service(resource("/audit").route(web::get().to(audit::list)))
        .service(
            resource("/config")
                .route(web::get().to(config::get))
                .route(web::put().to(config::update)),
        )
        .default_service(web::to(super::not_found))
}

/// A resource whose unsupported methods get a JSON 405 like every other admin error.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not supported on this path",
    ))
}

/// Counts every admin request by its route pattern (never the raw path), method and status.
/// A request refused before routing counts under the admin API's own prefix.
async fn count_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_u16();
        state.metrics.admin_request(&route, method.as_str(), status);
    }
    Ok(response)
}

/// Every admin route needs one of the configured bearer tokens, or (through the proxy) a
/// client certificate of an enrolled agent with the `admin` profile, presented the way
/// verify reads it: identity headers plus the verify secret. Nothing configured refuses
/// everything. Failed attempts are rate limited per TCP peer.
pub async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Refusals are answered here (not returned as errors), so that the outer middleware
    // still sees a response and adds the request id to it.
    let refuse =
        |req: ServiceRequest, error: ApiError| Ok(req.into_response(error.error_response()));
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return refuse(req, ApiError::internal(&"application state missing"));
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let mut actor = presented.and_then(|presented| state.admin.token_actor(presented));
    if actor.is_none() {
        actor = admin_by_certificate(&req, &state).await.map(Actor::Agent);
    }
    let Some(actor) = actor else {
        if let Some(peer) = req.peer_addr()
            && let Err(wait) = state.admin.failures.record_failure(peer.ip())
        {
            return refuse(req, ApiError::rate_limited(wait));
        }
        let peer = req.peer_addr().map(|peer| peer.ip().to_string());
        tracing::warn!(peer, path = req.path(), "admin authentication failed");
        return refuse(req, ApiError::unauthorized());
    };
    req.extensions_mut().insert(actor);
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// The agent, when the proxy vouches for an enrolled, allowed agent whose profile is
/// `admin`. Only tried when the request carries the verify secret header (a proxy's
/// request).
async fn admin_by_certificate(req: &ServiceRequest, state: &AppState) -> Option<AgentId> {
    if !state.admin.certificate_auth
        || !req
            .headers()
            .contains_key(&super::proxy_gate::VERIFY_SECRET)
    {
        return None;
    }
    let agent = super::agent_auth::authenticate(req.request(), state).ok()?;
    match state.store.agent(agent.0.id).await {
        Ok(stored) if stored.profile == Profile::Admin => {
            tracing::info!(agent_id = %stored.id, path = req.path(), "admin call by certificate");
            Some(stored.id)
        }
        _ => None,
    }
}

/// `{"items": [...], "total": N, "limit": L, "offset": O}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    items: Vec<T>,
    total: i64,
    limit: i64,
    offset: i64,
}

impl<T> ListResponse<T> {
    pub fn new(items: Vec<T>, total: i64, page: Page) -> Self {
        Self {
            items,
            total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}

/// `limit` 1–500 (default 50) and `offset` ≥ 0 (default 0), from raw query text.
pub fn page(limit: Option<&str>, offset: Option<&str>) -> Result<Page, ApiError> {
    let number = |name: &str, text: Option<&str>, default: i64, min: i64, max: i64| {
        let Some(text) = text else { return Ok(default) };
        text.parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} must be a whole number from {min} to {max}"),
                )
            })
    };
    Ok(Page {
        limit: number("limit", limit, 50, 1, 500)?,
        offset: number("offset", offset, 0, 0, i64::from(i32::MAX))?,
    })
}

/// A UUID path segment, or 400 `invalid_id`.
pub fn parse_id<T: FromStr>(text: &str) -> Result<T, ApiError> {
    T::from_str(text).map_err(|_| ApiError::bad_request("invalid_id", "the id is not a UUID"))
}

/// 400 `invalid_field` with what is wrong.
pub fn field_error(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_field", message)
}

/// The optional agent fields several requests share, validated: absent means none, an
/// empty list, no restriction, the `agent` profile.
pub struct OptionalAgentFields {
    pub description: Option<String>,
    pub tags: Tags,
    pub allowed_ips: AllowedIps,
    pub profile: Profile,
}

impl OptionalAgentFields {
    pub fn parse(
        description: Option<&str>,
        tags: Option<Vec<String>>,
        allowed_ips: Option<Vec<String>>,
        profile: Option<&str>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            description: description
                .map(parse_description)
                .transpose()
                .map_err(field_error)?,
            tags: Tags::parse(&tags.unwrap_or_default()).map_err(field_error)?,
            allowed_ips: AllowedIps::parse(&allowed_ips.unwrap_or_default())
                .map_err(field_error)?,
            profile: profile
                .map(Profile::parse)
                .transpose()
                .map_err(field_error)?
                .unwrap_or_default(),
        })
    }
}

/// A JSON body that may be left out: `None` when the body is empty or only whitespace.
pub fn optional_body<T: serde::de::DeserializeOwned>(
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<Option<T>, ApiError> {
    let body = body.map_err(|e| crate::routes::payload_error(&e))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<crate::routes::JsonObject<T>>(&body)
        .map(|parsed| Some(parsed.0))
        .map_err(|e| crate::routes::body_error(&e))
}

/// An optional query parameter's RFC 3339 time, or 400 `invalid_query`.
pub fn optional_time(
    name: &str,
    text: Option<&str>,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    text.map(|text| parse_time(name, text)).transpose()
}

/// A query parameter's RFC 3339 time, or 400 `invalid_query`.
fn parse_time(name: &str, text: &str) -> Result<time::OffsetDateTime, ApiError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
        |_| {
            ApiError::bad_request(
                "invalid_query",
                format!("{name} must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z"),
            )
        },
    )
}

/// `sort`: one of `keys` by name, `-` before it for descending order; absent, newest first.
pub fn parse_sort(text: Option<&str>, keys: &[(&str, SortKey)]) -> Result<Sort, ApiError> {
    let Some(text) = text else {
        return Ok(Sort::default());
    };
    let (name, descending) = match text.strip_prefix('-') {
        Some(name) => (name, true),
        None => (text, false),
    };
    match keys.iter().find(|(known, _)| *known == name) {
        Some((_, key)) => Ok(Sort {
            key: *key,
            descending,
        }),
        None => {
            let names: Vec<&str> = keys.iter().map(|(known, _)| *known).collect();
            Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "sort must be one of {}, each optionally after - for descending order",
                    names.join(", ")
                ),
            ))
        }
    }
}

pub fn parse_bool(name: &str, text: &str) -> Result<bool, ApiError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be true or false"),
        )),
    }
}
