//! `B/verify`: the proxy's question "may this certificate pass?". Answers only 200, 401,
//! 403 or 5xx, because nginx turns any other status into a 500.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::domain::agent::canonical_ip;
use crate::domain::verify::{Presented, Rejection, Verdict, decide};
use crate::metrics::Allowed;
use crate::proxy::{self, IdentityHeader};
use crate::routes::request_id_of;
use crate::startup::AppState;

pub static VERIFY_SECRET: HeaderName = HeaderName::from_static("x-verify-secret");
pub static AGENT_ID: HeaderName = HeaderName::from_static("x-agent-id");
pub static AGENT_HOSTNAME: HeaderName = HeaderName::from_static("x-agent-hostname");
pub static AGENT_TAGS: HeaderName = HeaderName::from_static("x-agent-tags");
pub static REASON: HeaderName = HeaderName::from_static("x-certgate-reason");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The identity header names, parsed once (a lookup by `&str` parses the name every time).
static IDENTITY_HEADER_NAMES: LazyLock<[HeaderName; IdentityHeader::ALL.len()]> =
    LazyLock::new(|| IdentityHeader::ALL.map(|header| HeaderName::from_static(header.name())));

/// How long to wait for a JSON body a request announces (nginx without
/// `proxy_pass_request_body off` announces the client's body but never sends it).
const BODY_WAIT: Duration = Duration::from_secs(1);
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The seed's JSON form.
#[derive(Deserialize)]
struct VerifyBody {
    fingerprint: Option<String>,
    certificate: Option<String>,
    ip: Option<String>,
}

#[derive(Serialize)]
struct Answer<'a> {
    verified: bool,
    agent_id: Option<&'a str>,
    hostname: Option<&'a str>,
    reason: Option<&'static str>,
    enforced: bool,
}

/// The identity of an allowed agent, for the answer's body and headers.
struct Identity<'a> {
    id: AgentId,
    hostname: &'a str,
    tags: &'a str,
}

pub async fn verify(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let response = answer(&req, payload, &state).await;
    state
        .metrics
        .verify_latency
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn answer(req: &HttpRequest, payload: web::Payload, state: &AppState) -> HttpResponse {
    let peer = req.peer_addr().map(|addr| canonical_ip(addr.ip()));
    if !state.trusted_proxies.is_empty()
        && !peer.is_some_and(|ip| state.trusted_proxies.iter().any(|net| net.contains(&ip)))
    {
        return refuse(req, state, Rejection::UntrustedSource, peer);
    }
    if !secret_matches(req, state) {
        let reason = match peer.map(|ip| state.verify_failures.record_failure(ip)) {
            Some(Err(_)) => Rejection::RateLimited,
            _ => Rejection::InvalidVerifySecret,
        };
        return refuse(req, state, reason, peer);
    }
    let (presented, body_ip) = match read_identity(req, payload, state).await {
        Ok(found) => found,
        Err(reason) => return deny_unreadable(req, state, reason),
    };
    let client_ip = client_ip(req, body_ip.as_deref(), peer);
    let now = OffsetDateTime::now_utc();
    let policy = state.trust.policy();
    match decide(
        &presented,
        &*state.trust,
        &policy,
        client_ip,
        now.unix_timestamp(),
    ) {
        Verdict::Allow(agent) => {
            state.last_seen.record(&agent.0, now, client_ip);
            state.metrics.allowed(Allowed::Enrolled);
            allow(
                policy.enforcement_enabled,
                Some(Identity {
                    id: agent.0.id,
                    hostname: agent.0.hostname(),
                    tags: agent.0.tags(),
                }),
            )
        }
        Verdict::AllowUnknown => {
            state.metrics.allowed(Allowed::Unknown);
            allow(policy.enforcement_enabled, None)
        }
        Verdict::Enrol(chain) => {
            let Some(certificate) = &presented.certificate else {
                return internal_error();
            };
            match state.registry.auto_enrol(certificate, chain, now).await {
                Ok(agent) => {
                    tracing::info!(agent_id = %agent.id, hostname = agent.hostname.as_str(),
                        fingerprint = %agent.fingerprint, "auto-enrolled");
                    state.metrics.allowed(Allowed::AutoEnrolled);
                    // The verify that enrolled the agent is its first sighting.
                    if let Some(entry) = state.trust.lookup(&agent.fingerprint) {
                        state.last_seen.record(&entry.0, now, client_ip);
                    }
                    let tags = agent.tags.joined();
                    allow(
                        policy.enforcement_enabled,
                        Some(Identity {
                            id: agent.id,
                            hostname: agent.hostname.as_str(),
                            tags: &tags,
                        }),
                    )
                }
                Err(_) => internal_error(),
            }
        }
        Verdict::Deny(reason, agent) => {
            let identity = agent.as_ref().map(|a| Identity {
                id: a.0.id,
                hostname: a.0.hostname(),
                tags: a.0.tags(),
            });
            let enforced = policy.enforcement_enabled;
            log_denial(req, reason, &presented, client_ip, enforced);
            state.metrics.denied(reason, enforced);
            if enforced {
                answer_with(reason.http_status(), false, identity, Some(reason), true)
            } else {
                answer_with(200, false, identity, Some(reason), false)
            }
        }
    }
}

/// Denials that happen before a certificate is looked at: the secret and the source are
/// never relaxed by audit mode.
fn refuse(
    req: &HttpRequest,
    state: &AppState,
    reason: Rejection,
    peer: Option<IpAddr>,
) -> HttpResponse {
    tracing::warn!(reason = reason.as_str(), peer = ?peer, request_id = %request_id_of(req),
        "verify refused");
    state.metrics.denied(reason, true);
    answer_with(reason.http_status(), false, None, Some(reason), true)
}

/// A certificate decision made before the trust index was consulted (unreadable headers):
/// audit mode applies as to any other certificate decision.
fn deny_unreadable(req: &HttpRequest, state: &AppState, reason: Rejection) -> HttpResponse {
    let enforced = state.trust.policy().enforcement_enabled;
    log_denial(req, reason, &Presented::default(), None, enforced);
    state.metrics.denied(reason, enforced);
    let status = if enforced { reason.http_status() } else { 200 };
    answer_with(status, false, None, Some(reason), enforced)
}

fn log_denial(
    req: &HttpRequest,
    reason: Rejection,
    presented: &Presented,
    client_ip: Option<IpAddr>,
    enforced: bool,
) {
    let fingerprint = proxy::describe(presented).unwrap_or_default();
    let request_id = request_id_of(req);
    if enforced {
        tracing::warn!(reason = reason.as_str(), %fingerprint, ip = ?client_ip, %request_id,
            "verify denied");
    } else {
        tracing::warn!(reason = reason.as_str(), %fingerprint, ip = ?client_ip, %request_id,
            "verify would deny (audit mode: allowed)");
    }
}

fn allow(enforced: bool, identity: Option<Identity<'_>>) -> HttpResponse {
    answer_with(200, true, identity, None, enforced)
}

fn internal_error() -> HttpResponse {
    HttpResponse::InternalServerError().json(Answer {
        verified: false,
        agent_id: None,
        hostname: None,
        reason: Some("internal_error"),
        enforced: true,
    })
}

fn answer_with(
    status: u16,
    verified: bool,
    identity: Option<Identity<'_>>,
    reason: Option<Rejection>,
    enforced: bool,
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(reason) = reason {
        response.insert_header((REASON.clone(), HeaderValue::from_static(reason.as_str())));
    }
    let mut id_buffer = uuid::Uuid::encode_buffer();
    let id = identity
        .as_ref()
        .map(|i| &*i.id.as_uuid().hyphenated().encode_lower(&mut id_buffer));
    if verified {
        // Always send all three on allow, so a proxy never keeps a client's own copy.
        let (hostname, tags) = identity.as_ref().map_or(("", ""), |i| (i.hostname, i.tags));
        for (name, value) in [
            (&AGENT_ID, id.unwrap_or_default()),
            (&AGENT_HOSTNAME, hostname),
            (&AGENT_TAGS, tags),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.insert_header((name.clone(), value));
            }
        }
    }
    response.json(Answer {
        verified,
        agent_id: id,
        hostname: identity.as_ref().map(|i| i.hostname),
        reason: reason.map(Rejection::as_str),
        enforced,
    })
}

/// Constant-time comparison against every configured secret. No secret configured: nothing
/// matches (fail closed).
pub(super) fn secret_matches(req: &HttpRequest, state: &AppState) -> bool {
    let Some(presented) = req.headers().get(&VERIFY_SECRET) else {
        return false;
    };
    let presented = presented.as_bytes();
    let mut matched = subtle::Choice::from(0);
    for secret in &state.verify_secrets {
        matched |= presented.ct_eq(secret.expose_secret().as_bytes());
    }
    matched.into()
}

/// Identity from the enabled headers, else from the seed's JSON body when one is announced.
async fn read_identity(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Presented, Option<String>), Rejection> {
    if let Some(presented) = identity_from_headers(req, state)? {
        return Ok((presented, None));
    }
    if !state.verify_body || !announces_json_body(req) {
        return Ok((Presented::default(), None));
    }
    let Ok(bytes) = tokio::time::timeout(BODY_WAIT, read_body(payload)).await else {
        return Ok((Presented::default(), None));
    };
    let bytes = bytes?;
    if bytes.is_empty() {
        return Ok((Presented::default(), None));
    }
    let body: VerifyBody =
        serde_json::from_slice(&bytes).map_err(|_| Rejection::MalformedRequest)?;
    let presented = proxy::read_body(body.certificate.as_deref(), body.fingerprint.as_deref())?;
    Ok((presented, body.ip))
}

/// What the enabled identity headers say; `None` when none of them is present.
pub(super) fn identity_from_headers(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Presented>, Rejection> {
    let headers = req.headers();
    proxy::read_headers(state.identity_headers, |header| {
        headers
            .get_all(&IDENTITY_HEADER_NAMES[header.index()])
            .map(HeaderValue::as_bytes)
            .collect()
    })
}

fn announces_json_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    let has_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > 0);
    is_json && (has_length || headers.contains_key(header::TRANSFER_ENCODING))
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, Rejection> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Rejection::MalformedRequest)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Rejection::MalformedRequest);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Body `ip`, else `X-Real-IP`, else the first `X-Forwarded-For` entry, else the peer. A
/// value that is present but unreadable gives no IP at all (an allow list then refuses),
/// never a fallback to the peer, which is the proxy.
pub(super) fn client_ip(
    req: &HttpRequest,
    body_ip: Option<&str>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if let Some(ip) = body_ip {
        return parse_ip(ip);
    }
    let headers = req.headers();
    if let Some(value) = headers.get(&X_REAL_IP) {
        return value.to_str().ok().and_then(parse_ip);
    }
    if let Some(value) = headers.get(header::X_FORWARDED_FOR) {
        return value
            .to_str()
            .ok()
            .and_then(|v| v.split(',').next())
            .and_then(parse_ip);
    }
    peer
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
        .map(canonical_ip)
}
