//! `POST B/enroll`: an agent redeems its one-time token for a certificate over its own key.
//! No bearer token: the enrolment token is the credential, so failed redemptions are rate
//! limited per TCP peer like failed admin logins.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::error::ApiError;
use crate::routes::JsonObject;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    token: String,
    csr: String,
}

#[derive(Serialize)]
struct EnrolAnswer {
    agent_id: AgentId,
    certificate: String,
    ca_certificate: String,
    fingerprint: String,
    fingerprint_sha1: String,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
}

pub async fn enrol(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<JsonObject<EnrolRequest>>,
) -> Result<HttpResponse, ApiError> {
    let peer = request.peer_addr().map(|addr| addr.ip());
    let EnrolRequest { token, csr } = body.into_inner().0;
    let issued = match state
        .issuance
        .enrol(&token, &csr, OffsetDateTime::now_utc())
        .await
    {
        Ok(issued) => issued,
        Err(error) => {
            if matches!(
                error.code(),
                "invalid_token" | "token_used" | "token_expired"
            ) {
                tracing::warn!(?peer, code = error.code(), "enrolment token refused");
                if let Some(peer) = peer
                    && let Err(wait) = state.token_failures.record_failure(peer)
                {
                    return Err(ApiError::rate_limited(wait));
                }
            }
            return Err(error);
        }
    };
    Ok(HttpResponse::Created().json(EnrolAnswer {
        agent_id: issued.agent.id,
        fingerprint: issued.agent.fingerprint.to_string(),
        fingerprint_sha1: issued.agent.fingerprint_sha1.to_string(),
        not_after: issued.agent.not_after,
        certificate: issued.certificate_pem,
        ca_certificate: issued.ca_certificate_pem,
    }))
}
