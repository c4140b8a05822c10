//! `B/verify`: the proxy's question "may this certificate pass?". Answers only 200, 401,
//! 403 or 5xx, because nginx turns any other status into a 500.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use actix_web::body::BoxBody;
use actix_web::dev::Response;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use time::OffsetDateTime;

use crate::denial_log::DenialKind;
use crate::domain::AgentId;
use crate::domain::agent::canonical_ip;
use crate::domain::verify::{
    ChainInfo, Presented, PresentedCertificate, Rejection, TrustView, Verdict, cacheable_seconds,
    decide, unix_seconds,
};
use crate::metrics::Allowed;
use crate::proxy;
use crate::state::AppState;

pub static AGENT_ID: HeaderName = HeaderName::from_static("x-agent-id");
pub static AGENT_HOSTNAME: HeaderName = HeaderName::from_static("x-agent-hostname");
pub static AGENT_TAGS: HeaderName = HeaderName::from_static("x-agent-tags");
pub static REASON: HeaderName = HeaderName::from_static("x-certgate-reason");
pub static ENFORCED: HeaderName = HeaderName::from_static("x-certgate-enforced");
/// How long nginx's `proxy_cache` may keep the answer (`CERTGATE_DECISION_CACHE_SECONDS`).
pub static ACCEL_EXPIRES: HeaderName = HeaderName::from_static("x-accel-expires");

/// How long to wait for a JSON body a request announces (nginx without
/// `proxy_pass_request_body off` announces the client's body but never sends it).
const BODY_WAIT: Duration = Duration::from_secs(1);
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How an answer carries the decision. Headers alone keep every proxy's connection to
/// certgate reusable (nginx closes an upstream connection whose body `auth_request` left
/// unread); the seed's JSON body is written only to a caller that used the seed's JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Headers,
    Json,
}

/// The identity of an allowed agent, for the answer's body and headers.
struct Identity<'a> {
    id: AgentId,
    hostname: &'a str,
    tags: &'a str,
}

/// What verify reads from a request's head: its headers, the TCP peer and the request id.
/// Built by [`crate::front`] straight from the HTTP layer's request, without
/// actix-web's routing and extractors.
pub struct VerifyCall<'a> {
    pub headers: &'a HeaderMap,
    pub peer: Option<SocketAddr>,
    pub request_id: &'a str,
}

/// A verify that needs to wait before it can answer. Every proxy recipe sends the identity
/// in headers and never takes this path; it exists for the seed's JSON body and for the
/// first sighting of a certificate that is to be auto-enrolled.
pub struct Deferred {
    started: Instant,
    step: Step,
}

enum Step {
    /// The source and the secret passed, no identity header is present and the request
    /// announces a JSON body.
    ReadBody { peer: Option<IpAddr> },
    /// A certificate to enrol, then allow.
    Enrol(Box<AutoEnrolment>),
}

/// An unknown certificate that chains to a trusted CA, with `auto_enroll` on: what
/// enrolling it and answering needs.
struct AutoEnrolment {
    certificate: PresentedCertificate,
    chain: ChainInfo,
    now: SystemTime,
    client_ip: Option<IpAddr>,
    enforced: bool,
    form: Form,
}

/// Answers one verify from the request's head alone when it can (no await, no allocation
/// of a future), and records its latency; otherwise says what is left to wait for.
pub fn verify(call: &VerifyCall<'_>, state: &AppState) -> Result<Response<BoxBody>, Deferred> {
    let started = Instant::now();
    match answer_from_head(call, state) {
        Ok(response) => {
            state.metrics.observe_verify_latency(started.elapsed());
            Ok(response)
        }
        Err(step) => Err(Deferred { started, step }),
    }
}

impl Deferred {
    /// Finishes the verify: reads the body (`payload`) or enrols, answers, and records the
    /// latency from the start of the call.
    pub async fn finish<P>(
        self,
        call: &VerifyCall<'_>,
        payload: P,
        state: &AppState,
    ) -> Response<BoxBody>
    where
        P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    {
        let Deferred { started, step } = self;
        let response = match step {
            Step::Enrol(enrolment) => enrol(enrolment, state).await,
            Step::ReadBody { peer } => {
                let (read, form) = match read_body_identity(payload).await {
                    Some(read) => (read, Form::Json),
                    None => (Ok((Presented::default(), None)), Form::Headers),
                };
                match read {
                    Err(reason) => deny_unreadable(call.request_id, state, reason, form),
                    Ok((presented, body_ip)) => {
                        let client_ip =
                            state
                                .proxy_gate
                                .client_ip(call.headers, body_ip.as_deref(), peer);
                        match judge(presented, client_ip, call.request_id, state, form) {
                            Ok(response) => response,
                            Err(enrolment) => enrol(enrolment, state).await,
                        }
                    }
                }
            }
        };
        state.metrics.observe_verify_latency(started.elapsed());
        response
    }
}

fn answer_from_head(call: &VerifyCall<'_>, state: &AppState) -> Result<Response<BoxBody>, Step> {
    let VerifyCall {
        headers,
        peer,
        request_id,
    } = *call;
    let peer = peer.map(|addr| canonical_ip(addr.ip()));
    if let Err(refused) = state.proxy_gate.admit(headers, peer) {
        return Ok(refuse(request_id, state, refused.reason, peer));
    }
    let presented = match state.proxy_gate.identity(headers) {
        Ok(Some(presented)) => presented,
        Ok(None) if state.verify.read_body && announces_json_body(headers) => {
            return Err(Step::ReadBody { peer });
        }
        Ok(None) => Presented::default(),
        Err(reason) => return Ok(deny_unreadable(request_id, state, reason, Form::Headers)),
    };
    let client_ip = state.proxy_gate.client_ip(headers, None, peer);
    judge(presented, client_ip, request_id, state, Form::Headers).map_err(Step::Enrol)
}

/// The decision for a presented identity, answered; `Err` only for a certificate to enrol.
fn judge(
    presented: Presented,
    client_ip: Option<IpAddr>,
    request_id: &str,
    state: &AppState,
    form: Form,
) -> Result<Response<BoxBody>, Box<AutoEnrolment>> {
    // The wall clock as `SystemTime`: the calendar form is only needed off the hot path.
    let now = SystemTime::now();
    let policy = state.trust.policy();
    let enforced = policy.enforcement_enabled;
    match decide(
        &presented,
        &*state.trust,
        &policy,
        client_ip,
        unix_seconds(now),
    ) {
        Verdict::Allow(agent) => {
            state.last_seen.record(&agent.0, now, client_ip);
            state.metrics.allowed(Allowed::Enrolled);
            let cache_seconds = cache_limit(state).map(|limit| {
                let facts = agent.as_ref();
                let ca_not_after = state.trust.ca_validity(facts.ca_id).map(|(_, end)| end);
                cacheable_seconds(facts, ca_not_after, limit, unix_seconds(now))
            });
            Ok(allow(
                enforced,
                Some(Identity {
                    id: agent.0.id,
                    hostname: agent.0.hostname(),
                    tags: agent.0.tags(),
                }),
                cache_seconds,
                form,
            ))
        }
        Verdict::AllowUnknown => {
            state.metrics.allowed(Allowed::Unknown);
            Ok(allow(enforced, None, not_cached(state), form))
        }
        Verdict::Enrol(chain) => match presented.certificate {
            Some(certificate) => Err(Box::new(AutoEnrolment {
                certificate,
                chain,
                now,
                client_ip,
                enforced,
                form,
            })),
            None => Ok(internal_error(state, form)),
        },
        Verdict::Deny(reason, agent) => {
            let identity = agent.as_ref().map(|a| Identity {
                id: a.0.id,
                hostname: a.0.hostname(),
                tags: a.0.tags(),
            });
            let agent_id = identity.as_ref().map(|identity| identity.id);
            let denial = Denial {
                request_id,
                reason,
                agent_id,
                client_ip,
                enforced,
            };
            log_denial(state, &denial, &presented);
            state.metrics.denied(reason, enforced);
            let status = if enforced { reason.http_status() } else { 200 };
            Ok(answer_with(
                Answer {
                    status,
                    verified: false,
                    identity,
                    reason: Some(reason.as_str()),
                    enforced,
                    cache_seconds: not_cached(state),
                },
                form,
            ))
        }
    }
}

async fn enrol(enrolment: Box<AutoEnrolment>, state: &AppState) -> Response<BoxBody> {
    let AutoEnrolment {
        certificate,
        chain,
        now,
        client_ip,
        enforced,
        form,
    } = *enrolment;
    let agent = match state
        .registry
        .auto_enrol(&certificate, chain, OffsetDateTime::from(now))
        .await
    {
        Ok(agent) => agent,
        Err(error) => {
            tracing::error!(%error, "auto-enrolment failed");
            return internal_error(state, form);
        }
    };
    state.metrics.allowed(Allowed::AutoEnrolled);
    // The verify that enrolled the agent is its first sighting.
    if let Some(entry) = state.trust.lookup(&agent.fingerprint) {
        state.last_seen.record(&entry.0, now, client_ip);
    }
    let tags = agent.tags.joined();
    allow(
        enforced,
        Some(Identity {
            id: agent.id,
            hostname: agent.hostname.as_str(),
            tags: &tags,
        }),
        // The first sighting: the next request is answered from the index, and cached.
        not_cached(state),
        form,
    )
}

/// Denials that happen before a certificate is looked at: the secret and the source are
/// never relaxed by audit mode.
fn refuse(
    request_id: &str,
    state: &AppState,
    reason: Rejection,
    peer: Option<IpAddr>,
) -> Response<BoxBody> {
    if tracing::enabled!(tracing::Level::WARN) {
        let kind = DenialKind {
            reason: reason.as_str(),
            subject: peer.map(|ip| ip.to_string()).unwrap_or_default(),
            enforced: true,
        };
        if state.denial_log.first_of_kind(&kind) {
            tracing::warn!(
                reason = reason.as_str(),
                peer = kind.subject.as_str(),
                request_id,
                "verify refused"
            );
        }
    }
    state.metrics.denied(reason, true);
    answer_with(
        Answer {
            status: reason.http_status(),
            verified: false,
            identity: None,
            reason: Some(reason.as_str()),
            enforced: true,
            cache_seconds: not_cached(state),
        },
        Form::Headers,
    )
}

/// A certificate decision made before the trust index was consulted (unreadable headers):
/// audit mode applies as to any other certificate decision.
fn deny_unreadable(
    request_id: &str,
    state: &AppState,
    reason: Rejection,
    form: Form,
) -> Response<BoxBody> {
    let enforced = state.trust.policy().enforcement_enabled;
    let denial = Denial {
        request_id,
        reason,
        agent_id: None,
        client_ip: None,
        enforced,
    };
    log_denial(state, &denial, &Presented::default());
    state.metrics.denied(reason, enforced);
    answer_with(
        Answer {
            status: if enforced { reason.http_status() } else { 200 },
            verified: false,
            identity: None,
            reason: Some(reason.as_str()),
            enforced,
            cache_seconds: not_cached(state),
        },
        form,
    )
}

/// What a denial's log line says.
struct Denial<'a> {
    request_id: &'a str,
    reason: Rejection,
    /// The enrolled agent the certificate belongs to, when it is one.
    agent_id: Option<AgentId>,
    client_ip: Option<IpAddr>,
    enforced: bool,
}

/// The first denial of a kind in a window is logged; its repeats are counted (see
/// [`crate::denial_log`]).
fn log_denial(state: &AppState, denial: &Denial<'_>, presented: &Presented) {
    let Denial {
        request_id,
        reason,
        agent_id,
        client_ip,
        enforced,
    } = *denial;
    // Naming the fingerprint allocates: only when the line may be written.
    if !tracing::enabled!(tracing::Level::WARN) {
        return;
    }
    let kind = DenialKind {
        reason: reason.as_str(),
        subject: proxy::describe(presented).unwrap_or_default(),
        enforced,
    };
    if !state.denial_log.first_of_kind(&kind) {
        return;
    }
    let fingerprint = &kind.subject;
    let ip = client_ip.map(|ip| ip.to_string());
    let agent_id = agent_id.map(|id| id.to_string());
    if enforced {
        tracing::warn!(reason = reason.as_str(), %fingerprint, agent_id, ip, %request_id,
            "verify denied");
    } else {
        tracing::warn!(reason = reason.as_str(), %fingerprint, agent_id, ip, %request_id,
            "verify would deny (audit mode: allowed)");
    }
}

fn allow(
    enforced: bool,
    identity: Option<Identity<'_>>,
    cache_seconds: Option<u32>,
    form: Form,
) -> Response<BoxBody> {
    answer_with(
        Answer {
            status: 200,
            verified: true,
            identity,
            reason: None,
            enforced,
            cache_seconds,
        },
        form,
    )
}

fn internal_error(state: &AppState, form: Form) -> Response<BoxBody> {
    state.metrics.verify_errors.inc();
    answer_with(
        Answer {
            status: 500,
            verified: false,
            identity: None,
            reason: Some("internal_error"),
            enforced: true,
            cache_seconds: not_cached(state),
        },
        form,
    )
}

/// The configured decision cache lifetime; `None` when caching is off.
fn cache_limit(state: &AppState) -> Option<u32> {
    (state.verify.decision_cache_seconds > 0).then_some(state.verify.decision_cache_seconds)
}

/// `X-Accel-Expires: 0` when caching is on: nothing but an allow of an enrolled agent is
/// cached.
fn not_cached(state: &AppState) -> Option<u32> {
    cache_limit(state).map(|_| 0)
}

/// One verify decision as the proxy receives it.
struct Answer<'a> {
    status: u16,
    verified: bool,
    identity: Option<Identity<'a>>,
    reason: Option<&'static str>,
    enforced: bool,
    /// `X-Accel-Expires`, when decision caching is on.
    cache_seconds: Option<u32>,
}

/// Renders a verify answer: `Cache-Control: no-store`, the identity headers on allow,
/// `X-Certgate-Reason` on deny, `X-Certgate-Enforced: false` in audit mode,
/// `X-Accel-Expires` with decision caching on, and an empty body, or in the JSON form the
/// seed's body.
///
/// The identity header values (and the body) are written into one buffer and shared from
/// it, one allocation instead of one per value: this runs on every protected request.
fn answer_with(answer: Answer<'_>, form: Form) -> Response<BoxBody> {
    let Answer {
        status,
        verified,
        identity,
        reason,
        enforced,
        cache_seconds,
    } = answer;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let mut id_buffer = uuid::Uuid::encode_buffer();
    let id = identity
        .as_ref()
        .map(|i| &*i.id.as_uuid().hyphenated().encode_lower(&mut id_buffer));
    let hostname = identity.as_ref().map(|i| i.hostname);
    let tags = identity.as_ref().map_or("", |i| i.tags);

    let mut buffer = Vec::new();
    if form == Form::Json {
        buffer.reserve(160 + 2 * hostname.map_or(0, str::len) + tags.len());
        write_body(&mut buffer, verified, id, hostname, reason, enforced);
    }
    let body_end = buffer.len();
    let mut values = [0..0, 0..0, 0..0];
    if verified {
        buffer.reserve(36 + hostname.map_or(0, str::len) + tags.len());
        for (range, value) in
            values
                .iter_mut()
                .zip([id.unwrap_or_default(), hostname.unwrap_or_default(), tags])
        {
            let start = buffer.len();
            buffer.extend_from_slice(value.as_bytes());
            *range = start..buffer.len();
        }
    }
    let buffer = Bytes::from(buffer);

    let mut response = match form {
        Form::Json => Response::with_body(status, BoxBody::new(buffer.slice(..body_end))),
        Form::Headers => Response::with_body(status, BoxBody::new(())),
    };
    let headers = response.headers_mut();
    if form == Form::Json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    // An allow nginx may cache says so in X-Accel-Expires alone: nginx (1.22, as Debian 12
    // ships it) does not store an answer marked no-store, whatever X-Accel-Expires says.
    if cache_seconds.is_none_or(|seconds| seconds == 0) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(reason) = reason {
        headers.insert(REASON.clone(), HeaderValue::from_static(reason));
    }
    if !enforced {
        headers.insert(ENFORCED.clone(), HeaderValue::from_static("false"));
    }
    if let Some(seconds) = cache_seconds {
        headers.insert(ACCEL_EXPIRES.clone(), HeaderValue::from(seconds));
    }
    if verified {
        // Always send all three on allow, so a proxy never keeps a client's own copy; a
        // value that cannot be a header value is sent empty.
        for (name, range) in [&AGENT_ID, &AGENT_HOSTNAME, &AGENT_TAGS]
            .into_iter()
            .zip(values)
        {
            let value = HeaderValue::from_maybe_shared(buffer.slice(range))
                .unwrap_or_else(|_| HeaderValue::from_static(""));
            headers.insert(name.clone(), value);
        }
    }
    response
}

/// `{"verified":…,"agent_id":…,"hostname":…,"reason":…,"enforced":…}`. Only the hostname
/// can need escaping: the id is a UUID and reasons are fixed snake_case words.
fn write_body(
    out: &mut Vec<u8>,
    verified: bool,
    agent_id: Option<&str>,
    hostname: Option<&str>,
    reason: Option<&str>,
    enforced: bool,
) {
    fn boolean(value: bool) -> &'static [u8] {
        if value { b"true" } else { b"false" }
    }
    fn plain_string(out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            Some(value) => {
                out.push(b'"');
                out.extend_from_slice(value.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b"{\"verified\":");
    out.extend_from_slice(boolean(verified));
    out.extend_from_slice(b",\"agent_id\":");
    plain_string(out, agent_id);
    out.extend_from_slice(b",\"hostname\":");
    match hostname {
        // Writing a string into a Vec cannot fail.
        Some(hostname) => serde_json::to_writer(&mut *out, hostname).unwrap_or_default(),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"reason\":");
    plain_string(out, reason);
    out.extend_from_slice(b",\"enforced\":");
    out.extend_from_slice(boolean(enforced));
    out.push(b'}');
}

/// The identity (and client address) in the seed's JSON body; `None` when no body arrives
/// in time or it is empty: then the call did not use the JSON form.
async fn read_body_identity<P>(payload: P) -> Option<Result<(Presented, Option<String>), Rejection>>
where
    P: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let bytes = match tokio::time::timeout(BODY_WAIT, read_body(payload)).await {
        Err(_) => return None,
        Ok(Err(reason)) => return Some(Err(reason)),
        Ok(Ok(bytes)) if bytes.is_empty() => return None,
        Ok(Ok(bytes)) => bytes,
    };
    Some(proxy::identity_from_body(&bytes))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(
        verified: bool,
        agent_id: Option<&str>,
        hostname: Option<&str>,
        reason: Option<&str>,
        enforced: bool,
    ) -> serde_json::Value {
        let mut out = Vec::new();
        write_body(&mut out, verified, agent_id, hostname, reason, enforced);
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn the_body_has_the_five_fields_with_nulls_for_what_is_absent() {
        assert_eq!(
            body(false, None, None, Some("unknown_certificate"), true),
            serde_json::json!({"verified": false, "agent_id": null, "hostname": null,
                               "reason": "unknown_certificate", "enforced": true})
        );
        let id = "6ce9168d-87b2-4984-b956-2eba5211c559";
        assert_eq!(
            body(true, Some(id), Some("web-1"), None, false),
            serde_json::json!({"verified": true, "agent_id": id, "hostname": "web-1",
                               "reason": null, "enforced": false})
        );
    }

    #[test]
    fn hostnames_are_escaped() {
        for hostname in [r#"a"b"#, r"a\b", "a\u{7f}b", "tab\there", "ünï", "}{,:"] {
            assert_eq!(
                body(true, None, Some(hostname), None, true)["hostname"],
                hostname,
                "{hostname:?}"
            );
        }
    }
}
