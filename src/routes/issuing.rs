//! The agent-facing issuing routes. `POST B/enroll`: an agent redeems its one-time token
//! for a certificate over its own key; no bearer token: the enrolment token is the
//! credential, so failed redemptions are rate limited per TCP peer like failed admin
//! logins. `POST B/renew`: an agent authenticated by its current certificate (through the
//! proxy) gets a new one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::domain::audit::{Actor, Caller};
use crate::error::ApiError;
use crate::issuance::{self, Issued};
use crate::routes::agent_auth;
use crate::routes::caller::RequestCaller;
use crate::routes::{JsonObject, body_error, payload_error};
use crate::state::AppState;

/// `POST B/enroll`: a one-time token and the signing request it is redeemed with.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRedemption {
    token: String,
    csr: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    csr: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct IssuedAnswer {
    agent_id: AgentId,
    certificate: String,
    ca_certificate: String,
    fingerprint: String,
    fingerprint_sha1: String,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
}

#[utoipa::path(post, path = "/enroll", tag = "issuing", request_body = TokenRedemption, responses((status = 201, description = "The certificate issued over the signing request's key", body = IssuedAnswer), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn enrol(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: RequestCaller,
    body: web::Json<JsonObject<TokenRedemption>>,
) -> Result<HttpResponse, ApiError> {
    let peer = request.peer_addr().map(|addr| addr.ip());
    let TokenRedemption { token, csr } = body.into_inner().0;
    let issued = match state
        .issuance
        .enrol(&token, &csr, &caller, OffsetDateTime::now_utc())
        .await
    {
        Ok(issued) => issued,
        Err(issuance::Error::TokenRefused(refusal)) => {
            tracing::warn!(
                peer = peer.map(|ip| ip.to_string()),
                ?refusal,
                "enrolment token refused"
            );
            if let Some(peer) = peer
                && let Err(wait) = state.issuing_limits.token_failures.record_failure(peer)
            {
                return Err(ApiError::rate_limited(wait));
            }
            return Err(issuance::Error::TokenRefused(refusal).into());
        }
        Err(error) => return Err(error.into()),
    };
    Ok(created(issued))
}

#[utoipa::path(post, path = "/renew", tag = "issuing", request_body = RenewRequest, params(("X-Verify-Secret" = String, Header, description = "The proxy's verify secret; the current certificate comes in the identity headers verify reads")), responses((status = 201, description = "A certificate over the new key", body = IssuedAnswer), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn renew(
    state: web::Data<AppState>,
    request: HttpRequest,
    caller: RequestCaller,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    // Who is asking comes first: a stranger learns nothing about what a good body is.
    let agent = agent_auth::authenticate(&request, &state)?;
    let caller = Caller {
        actor: Actor::Agent(agent.0.id),
        ..caller.0
    };
    let body = body.map_err(|e| payload_error(&e))?;
    let RenewRequest { csr } = serde_json::from_slice::<JsonObject<RenewRequest>>(&body)
        .map_err(|e| body_error(&e))?
        .0;
    let issued = state
        .issuance
        .renew(
            agent.0.id,
            &agent.0.facts.fingerprint,
            &csr,
            &caller,
            OffsetDateTime::now_utc(),
        )
        .await?;
    Ok(created(issued))
}

fn created(issued: Issued) -> HttpResponse {
    HttpResponse::Created().json(IssuedAnswer {
        agent_id: issued.agent.id,
        fingerprint: issued.agent.fingerprint.to_string(),
        fingerprint_sha1: issued.agent.fingerprint_sha1.to_string(),
        not_after: issued.agent.not_after,
        certificate: issued.certificate_pem,
        ca_certificate: issued.ca_certificate_pem,
    })
}

/// `GET B/crl`: the internal CA's revocation list, PEM, for proxies (nginx `ssl_crl`) and
/// anyone checking an issued certificate. Public, as CRLs are.
#[utoipa::path(get, path = "/crl", tag = "issuing", responses((status = 200, description = "The internal CA's CRL, issued now", body = String, content_type = "application/x-pem-file"), (status = "4XX", description = "Refused; `error.code` says why", body = crate::error::ErrorBody), (status = "5XX", description = "certgate could not answer (`internal_error`, `database_unavailable`, `internal_ca_unavailable`)", body = crate::error::ErrorBody)))]
pub async fn crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pem = state.issuance.crl(OffsetDateTime::now_utc()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(pem))
}
