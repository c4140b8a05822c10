//! An agent authenticated by its TLS client certificate, as the proxy reports it: the
//! verify secret and the identity headers, judged as verify judges them. Unlike verify,
//! nothing but an enrolled, allowed agent passes: audit mode and the unknown-certificate
//! policies never open these routes.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use crate::domain::agent::canonical_ip;
use crate::domain::verify::{Rejection, Verdict, decide};
use crate::error::ApiError;
use crate::state::AppState;
use crate::trust::AgentRef;

/// The enrolled agent the request's certificate belongs to, or the refusal in the admin
/// error shape (the code is verify's reason; an exhausted failure quota is 429).
pub fn authenticate(req: &HttpRequest, state: &AppState) -> Result<AgentRef, ApiError> {
    let gate = &state.proxy_gate;
    let peer = req.peer_addr().map(|addr| canonical_ip(addr.ip()));
    gate.admit(req.headers(), peer)
        .map_err(|refused| match refused.retry_after {
            Some(wait) => ApiError::rate_limited(wait),
            None => refusal(refused.reason),
        })?;
    let presented = gate
        .identity(req.headers())
        .map_err(refusal)?
        .ok_or_else(|| refusal(Rejection::MissingCertificate))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let client_ip = gate.client_ip(req.headers(), None, peer);
    match decide(
        &presented,
        &*state.trust,
        &state.trust.policy(),
        client_ip,
        now,
    ) {
        Verdict::Allow(agent) => Ok(agent),
        Verdict::AllowUnknown | Verdict::Enrol(_) => Err(refusal(Rejection::UnknownCertificate)),
        Verdict::Deny(reason, _) => Err(refusal(reason)),
    }
}

fn refusal(reason: Rejection) -> ApiError {
    let status = StatusCode::from_u16(reason.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let message = match reason {
        Rejection::InvalidVerifySecret => "the proxy did not send a valid X-Verify-Secret",
        Rejection::MissingCertificate => "no client certificate was forwarded by the proxy",
        _ => "this client certificate is not allowed",
    };
    ApiError::new(status, reason.as_str(), message)
}
