//! An agent authenticated by its TLS client certificate, as the proxy reports it: the
//! verify secret and the identity headers, judged as verify judges them. Unlike verify,
//! nothing but an enrolled, allowed agent passes: audit mode and the unknown-certificate
//! policies never open these routes.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;

use super::verify::{client_ip, identity_from_headers, secret_matches};
use crate::domain::agent::canonical_ip;
use crate::domain::verify::{Rejection, Verdict, decide};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::trust::AgentRef;

/// The enrolled agent the request's certificate belongs to, or the refusal in the admin
/// error shape (the code is verify's reason).
pub fn authenticate(req: &HttpRequest, state: &AppState) -> Result<AgentRef, ApiError> {
    let peer = req.peer_addr().map(|addr| canonical_ip(addr.ip()));
    if !state.trusted_proxies.is_empty()
        && !peer.is_some_and(|ip| state.trusted_proxies.iter().any(|net| net.contains(&ip)))
    {
        return Err(refusal(Rejection::UntrustedSource));
    }
    if !secret_matches(req.headers(), state) {
        if let Some(peer) = peer
            && let Err(wait) = state.verify_failures.record_failure(peer)
        {
            return Err(ApiError::rate_limited(wait));
        }
        return Err(refusal(Rejection::InvalidVerifySecret));
    }
    let presented = identity_from_headers(req.headers(), state)
        .map_err(refusal)?
        .ok_or_else(|| refusal(Rejection::MissingCertificate))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let client_ip = client_ip(req.headers(), None, peer);
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
