//! `B/verify`: the proxy's question "may this certificate pass?". Answers only 200, 401,
//! 403 or 5xx, because nginx turns any other status into a 500.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::dev::Response;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::domain::agent::canonical_ip;
use crate::domain::verify::{Presented, Rejection, Verdict, decide};
use crate::metrics::Allowed;
use crate::proxy::{self, IdentityHeader};
use crate::proxy_memo;
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

/// What verify reads from a request: its headers, the TCP peer and the body stream (read
/// only for the seed's JSON form). Built by [`super::verify_service`] straight from the HTTP
/// layer's request, without actix-web's routing and extractors.
pub struct VerifyCall<'a, P> {
    pub headers: &'a HeaderMap,
    pub peer: Option<SocketAddr>,
    pub payload: P,
    pub request_id: &'a str,
}

/// Answers one verify call and records its latency.
pub async fn verify<P>(call: VerifyCall<'_, P>, state: &AppState) -> Response<BoxBody>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let started = Instant::now();
    let response = answer(call, state).await;
    state.metrics.observe_verify_latency(started.elapsed());
    response
}

async fn answer<P>(call: VerifyCall<'_, P>, state: &AppState) -> Response<BoxBody>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let VerifyCall {
        headers,
        peer,
        payload,
        request_id,
    } = call;
    let peer = peer.map(|addr| canonical_ip(addr.ip()));
    if !state.trusted_proxies.is_empty()
        && !peer.is_some_and(|ip| state.trusted_proxies.iter().any(|net| net.contains(&ip)))
    {
        return refuse(request_id, state, Rejection::UntrustedSource, peer);
    }
    if !secret_matches(headers, state) {
        let reason = match peer.map(|ip| state.verify_failures.record_failure(ip)) {
            Some(Err(_)) => Rejection::RateLimited,
            _ => Rejection::InvalidVerifySecret,
        };
        return refuse(request_id, state, reason, peer);
    }
    let (presented, body_ip) = match read_identity(headers, payload, state).await {
        Ok(found) => found,
        Err(reason) => return deny_unreadable(request_id, state, reason),
    };
    let client_ip = client_ip(headers, body_ip.as_deref(), peer);
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
            log_denial(request_id, reason, &presented, client_ip, enforced);
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
    request_id: &str,
    state: &AppState,
    reason: Rejection,
    peer: Option<IpAddr>,
) -> Response<BoxBody> {
    tracing::warn!(reason = reason.as_str(), peer = ?peer, request_id,
        "verify refused");
    state.metrics.denied(reason, true);
    answer_with(reason.http_status(), false, None, Some(reason), true)
}

/// A certificate decision made before the trust index was consulted (unreadable headers):
/// audit mode applies as to any other certificate decision.
fn deny_unreadable(request_id: &str, state: &AppState, reason: Rejection) -> Response<BoxBody> {
    let enforced = state.trust.policy().enforcement_enabled;
    log_denial(request_id, reason, &Presented::default(), None, enforced);
    state.metrics.denied(reason, enforced);
    let status = if enforced { reason.http_status() } else { 200 };
    answer_with(status, false, None, Some(reason), enforced)
}

fn log_denial(
    request_id: &str,
    reason: Rejection,
    presented: &Presented,
    client_ip: Option<IpAddr>,
    enforced: bool,
) {
    // Naming the fingerprint allocates: only when the line is going to be written.
    if !tracing::enabled!(tracing::Level::WARN) {
        return;
    }
    let fingerprint = proxy::describe(presented).unwrap_or_default();
    if enforced {
        tracing::warn!(reason = reason.as_str(), %fingerprint, ip = ?client_ip, %request_id,
            "verify denied");
    } else {
        tracing::warn!(reason = reason.as_str(), %fingerprint, ip = ?client_ip, %request_id,
            "verify would deny (audit mode: allowed)");
    }
}

fn allow(enforced: bool, identity: Option<Identity<'_>>) -> Response<BoxBody> {
    answer_with(200, true, identity, None, enforced)
}

fn internal_error() -> Response<BoxBody> {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &Answer {
            verified: false,
            agent_id: None,
            hostname: None,
            reason: Some("internal_error"),
            enforced: true,
        },
    )
}

fn answer_with(
    status: u16,
    verified: bool,
    identity: Option<Identity<'_>>,
    reason: Option<Rejection>,
    enforced: bool,
) -> Response<BoxBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let mut id_buffer = uuid::Uuid::encode_buffer();
    let id = identity
        .as_ref()
        .map(|i| &*i.id.as_uuid().hyphenated().encode_lower(&mut id_buffer));
    let mut response = json_response(
        status,
        &Answer {
            verified,
            agent_id: id,
            hostname: identity.as_ref().map(|i| i.hostname),
            reason: reason.map(Rejection::as_str),
            enforced,
        },
    );
    let headers = response.headers_mut();
    if let Some(reason) = reason {
        headers.insert(REASON.clone(), HeaderValue::from_static(reason.as_str()));
    }
    if verified {
        // Always send all three on allow, so a proxy never keeps a client's own copy.
        let (hostname, tags) = identity.as_ref().map_or(("", ""), |i| (i.hostname, i.tags));
        for (name, value) in [
            (&AGENT_ID, id.unwrap_or_default()),
            (&AGENT_HOSTNAME, hostname),
            (&AGENT_TAGS, tags),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
    }
    response
}

/// A verify answer: the JSON body, `Content-Type` and `Cache-Control: no-store`.
fn json_response(status: StatusCode, answer: &Answer<'_>) -> Response<BoxBody> {
    let Ok(body) = serde_json::to_vec(answer) else {
        // Serialising this struct of strings and booleans cannot fail; answer 500 if it did.
        return Response::with_body(StatusCode::INTERNAL_SERVER_ERROR, BoxBody::new(()));
    };
    let mut response = Response::with_body(status, BoxBody::new(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Constant-time comparison against every configured secret. No secret configured: nothing
/// matches (fail closed).
pub(super) fn secret_matches(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(presented) = headers.get(&VERIFY_SECRET) else {
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
async fn read_identity<P>(
    headers: &HeaderMap,
    payload: P,
    state: &AppState,
) -> Result<(Presented, Option<String>), Rejection>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    if let Some(presented) = identity_from_headers(headers, state)? {
        return Ok((presented, None));
    }
    if !state.verify_body || !announces_json_body(headers) {
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
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<Presented>, Rejection> {
    let enabled = state.identity_headers;
    let present: Vec<(IdentityHeader, &[u8])> = enabled
        .enabled()
        .flat_map(|header| {
            headers
                .get_all(&IDENTITY_HEADER_NAMES[header.index()])
                .map(move |value| (header, value.as_bytes()))
        })
        .collect();
    proxy_memo::read_headers(enabled, &present)
}

fn announces_json_body(headers: &HeaderMap) -> bool {
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

async fn read_body<P>(mut payload: P) -> Result<Vec<u8>, Rejection>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
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
    headers: &HeaderMap,
    body_ip: Option<&str>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if let Some(ip) = body_ip {
        return parse_ip(ip);
    }
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
