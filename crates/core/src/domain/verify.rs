//! The verify decision: a pure function of what the proxy presented, the trust index,
//! the policy, the client IP and the time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::agent::AllowedIps;
use super::policy::Policy;
use super::{CaId, Fingerprint, PresentedFingerprint, Sha1Fingerprint};

/// Why a verify call was refused. The `as_str` codes are stable: they appear in response
/// bodies, the `X-Certgate-Reason` header, logs and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The `X-Verify-Secret` header is missing or wrong.
    InvalidVerifySecret,
    /// Too many wrong secrets from this peer.
    RateLimited,
    /// The TCP peer is outside `CERTGATE_TRUSTED_PROXIES`.
    UntrustedSource,
    /// No certificate information at all.
    MissingCertificate,
    /// An identity header or body that cannot be read (oversized, garbage).
    MalformedRequest,
    /// Certificate bytes that do not parse as X.509.
    MalformedCertificate,
    /// The headers name more than one certificate.
    FingerprintMismatch,
    /// nginx's `X-Client-Verify` says its own check failed and only a fingerprint was sent.
    ProxyVerificationFailed,
    AgentDisabled,
    AgentRevoked,
    CertificateExpired,
    CertificateNotYetValid,
    /// The agent's CA was deleted.
    CaRemoved,
    /// The agent's CA, or a CA on the path of a certificate that is not enrolled, has
    /// expired or is not valid yet.
    CaExpired,
    IpNotAllowed,
    /// Not enrolled and unknown certificates are refused.
    UnknownCertificate,
    /// No valid path leads from the certificate to a trusted CA.
    UntrustedIssuer,
    /// The certificate may not be used by a TLS client: an EKU without clientAuth (on it or
    /// on a CA above it), or it is a CA certificate itself.
    WrongKeyUsage,
    /// A signature over SHA-1 or MD5, or a key too weak to trust, on the certificate's path.
    WeakCrypto,
}

impl Rejection {
    pub const ALL: [Rejection; 19] = [
        Self::InvalidVerifySecret,
        Self::RateLimited,
        Self::UntrustedSource,
        Self::MissingCertificate,
        Self::MalformedRequest,
        Self::MalformedCertificate,
        Self::FingerprintMismatch,
        Self::ProxyVerificationFailed,
        Self::AgentDisabled,
        Self::AgentRevoked,
        Self::CertificateExpired,
        Self::CertificateNotYetValid,
        Self::CaRemoved,
        Self::CaExpired,
        Self::IpNotAllowed,
        Self::UnknownCertificate,
        Self::UntrustedIssuer,
        Self::WrongKeyUsage,
        Self::WeakCrypto,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidVerifySecret => "invalid_verify_secret",
            Self::RateLimited => "rate_limited",
            Self::UntrustedSource => "untrusted_source",
            Self::MissingCertificate => "missing_certificate",
            Self::MalformedRequest => "malformed_request",
            Self::MalformedCertificate => "malformed_certificate",
            Self::FingerprintMismatch => "fingerprint_mismatch",
            Self::ProxyVerificationFailed => "proxy_verification_failed",
            Self::AgentDisabled => "agent_disabled",
            Self::AgentRevoked => "agent_revoked",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::CaRemoved => "ca_removed",
            Self::CaExpired => "ca_expired",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::UnknownCertificate => "unknown_certificate",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::WrongKeyUsage => "wrong_key_usage",
            Self::WeakCrypto => "weak_crypto",
        }
    }

    /// Position in [`Rejection::ALL`], for per-reason counters kept in arrays.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// Decisions about the certificate, which audit mode turns into a logged 200. The
    /// others protect certgate itself and are never relaxed.
    pub fn is_certificate_decision(self) -> bool {
        !matches!(
            self,
            Self::InvalidVerifySecret | Self::RateLimited | Self::UntrustedSource
        )
    }

    /// The HTTP status of this refusal: only 401 or 403, because nginx turns anything
    /// else into a 500.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidVerifySecret | Self::MissingCertificate => 401,
            _ => 403,
        }
    }
}

/// A whole certificate as the proxy forwarded it: the leaf and any certificates after it.
#[derive(Debug, Clone)]
pub struct PresentedCertificate {
    /// Shared, because each worker's memo of decoded headers hands out copies.
    pub der: Arc<[u8]>,
    pub fingerprint: Fingerprint,
    /// Certificates after the leaf: help to build a path, never trusted on their own.
    pub chain: Vec<Vec<u8>>,
}

impl PresentedCertificate {
    pub fn new(der: Vec<u8>, chain: Vec<Vec<u8>>) -> Self {
        Self {
            fingerprint: Fingerprint::of_der(&der),
            der: der.into(),
            chain,
        }
    }

    /// Computed on demand: only needed when a SHA-1 fingerprint was sent alongside.
    pub fn sha1(&self) -> Sha1Fingerprint {
        Sha1Fingerprint::of_der(&self.der)
    }
}

/// Everything the identity headers (or the JSON body) said, already consistent: when both a
/// certificate and a fingerprint were sent, the fingerprint names that certificate.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    pub certificate: Option<PresentedCertificate>,
    /// Fingerprints sent without a whole certificate (distinct values, SHA-256 first is not
    /// guaranteed). Empty when a certificate was sent: they were checked against it.
    pub fingerprints: Vec<PresentedFingerprint>,
    /// nginx's `$ssl_client_verify`: `Some(true)` for `SUCCESS`.
    pub proxy_verified: Option<bool>,
}

impl Presented {
    /// The canonical fingerprint, when it is known (always with a whole certificate).
    pub fn sha256(&self) -> Option<Fingerprint> {
        if let Some(cert) = &self.certificate {
            return Some(cert.fingerprint);
        }
        self.fingerprints.iter().find_map(|fp| match fp {
            PresentedFingerprint::Sha256(fp) => Some(*fp),
            PresentedFingerprint::Sha1(_) => None,
        })
    }
}

/// What the decision needs to know about an enrolled agent.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    pub fingerprint: Fingerprint,
    pub fingerprint_sha1: Sha1Fingerprint,
    pub ca_id: CaId,
    pub enabled: bool,
    pub revoked: bool,
    pub ca_removed: bool,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub allowed_ips: AllowedIps,
}

/// Where path validation led a certificate that is not enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainInfo {
    /// The stored CA at the top of the path.
    pub ca_id: CaId,
    /// That CA's expiry, unix seconds.
    pub ca_not_after: i64,
}

/// Read access to the trusted state.
pub trait TrustView {
    type Entry: AsRef<AgentFacts>;
    fn agent_by_sha256(&self, fingerprint: &Fingerprint) -> Option<Self::Entry>;
    fn agent_by_sha1(&self, fingerprint: &Sha1Fingerprint) -> Option<Self::Entry>;
    /// The agent one of whose certificates has this certificate's issuer and serial number.
    fn agent_by_identity(&self, certificate: &PresentedCertificate) -> Option<Self::Entry>;
    /// A live CA's validity `(not_before, not_after)`, unix seconds; `None` once removed.
    fn ca_validity(&self, ca: CaId) -> Option<(i64, i64)>;
    /// RFC 5280 path validation at `now` (validity of every certificate on the path, CA
    /// and key-usage rules, weak crypto), plus the CAs' revocation lists.
    fn check_chain(
        &self,
        certificate: &PresentedCertificate,
        now: i64,
    ) -> Result<ChainInfo, Rejection>;
}

#[derive(Debug)]
pub enum Verdict<E> {
    /// An enrolled agent that may pass.
    Allow(E),
    /// Not enrolled, allowed because `reject_unknown_certs` is off.
    AllowUnknown,
    /// Not enrolled, chains to a trusted CA, and `auto_enroll` is on: enrol, then allow.
    Enrol(ChainInfo),
    /// Refused; carries the agent when the certificate was enrolled.
    Deny(Rejection, Option<E>),
}

/// How many seconds a proxy may reuse an allow of `agent` at `now` (unix seconds): at most
/// `limit`, never past the certificate's or its CA's expiry (`ca_not_after`; `None`, a CA no
/// longer trusted, allows nothing), and 0 for an agent restricted by `allowed_ips`, whose
/// decision depends on the client's address.
pub fn cacheable_seconds(
    agent: &AgentFacts,
    ca_not_after: Option<i64>,
    limit: u32,
    now: i64,
) -> u32 {
    let Some(ca_not_after) = ca_not_after else {
        return 0;
    };
    if !agent.allowed_ips.is_unrestricted() {
        return 0;
    }
    // Valid through `not_after` itself: the last second still allows.
    let until_expiry = agent
        .not_after
        .min(ca_not_after)
        .saturating_sub(now)
        .saturating_add(1);
    u32::try_from(until_expiry.clamp(0, i64::from(limit))).unwrap_or(0)
}

/// `time` as the whole Unix seconds [`decide`] works in.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

pub fn decide<V: TrustView>(
    presented: &Presented,
    view: &V,
    policy: &Policy,
    client_ip: Option<IpAddr>,
    now: i64,
) -> Verdict<V::Entry> {
    let entry = match &presented.certificate {
        Some(cert) => view.agent_by_sha256(&cert.fingerprint),
        None if presented.fingerprints.is_empty() => {
            return Verdict::Deny(Rejection::MissingCertificate, None);
        }
        None if presented.proxy_verified == Some(false) => {
            return Verdict::Deny(Rejection::ProxyVerificationFailed, None);
        }
        None => match lookup_fingerprints(&presented.fingerprints, view) {
            Ok(entry) => entry,
            Err(reason) => return Verdict::Deny(reason, None),
        },
    };
    if let Some(entry) = entry {
        return match enrolled_rejection(entry.as_ref(), view, client_ip, now) {
            None => Verdict::Allow(entry),
            Some(reason) => Verdict::Deny(reason, Some(entry)),
        };
    }
    let Some(certificate) = &presented.certificate else {
        return if policy.reject_unknown_certs {
            Verdict::Deny(Rejection::UnknownCertificate, None)
        } else {
            Verdict::AllowUnknown
        };
    };
    // Another encoding of an enrolled certificate, or its ECDSA twin: it is that agent's
    // certificate, never an unknown one.
    if let Some(entry) = view.agent_by_identity(certificate) {
        let reason = enrolled_rejection(entry.as_ref(), view, client_ip, now)
            .unwrap_or(Rejection::FingerprintMismatch);
        return Verdict::Deny(reason, Some(entry));
    }
    let chain = match view.check_chain(certificate, now) {
        Ok(chain) => chain,
        Err(reason) => return Verdict::Deny(reason, None),
    };
    if policy.auto_enroll {
        Verdict::Enrol(chain)
    } else if policy.reject_unknown_certs {
        Verdict::Deny(Rejection::UnknownCertificate, None)
    } else {
        Verdict::AllowUnknown
    }
}

/// Fingerprints sent without the certificate must all name the same agent (or none).
fn lookup_fingerprints<V: TrustView>(
    fingerprints: &[PresentedFingerprint],
    view: &V,
) -> Result<Option<V::Entry>, Rejection> {
    let lookup = |fp: &PresentedFingerprint| match fp {
        PresentedFingerprint::Sha256(fp) => view.agent_by_sha256(fp),
        PresentedFingerprint::Sha1(fp) => view.agent_by_sha1(fp),
    };
    let mut found = None;
    for fp in fingerprints {
        let Some(entry) = lookup(fp) else {
            if found.is_some() {
                return Err(Rejection::FingerprintMismatch);
            }
            continue;
        };
        let facts = entry.as_ref();
        if fingerprints
            .iter()
            .any(|other| !other.matches(&facts.fingerprint, &facts.fingerprint_sha1))
        {
            return Err(Rejection::FingerprintMismatch);
        }
        found = Some(entry);
        break;
    }
    Ok(found)
}

fn enrolled_rejection<V: TrustView>(
    agent: &AgentFacts,
    view: &V,
    client_ip: Option<IpAddr>,
    now: i64,
) -> Option<Rejection> {
    if agent.revoked {
        return Some(Rejection::AgentRevoked);
    }
    if agent.ca_removed {
        return Some(Rejection::CaRemoved);
    }
    match view.ca_validity(agent.ca_id) {
        None => return Some(Rejection::CaRemoved),
        Some((not_before, not_after)) if now < not_before || now > not_after => {
            return Some(Rejection::CaExpired);
        }
        Some(_) => {}
    }
    if !agent.enabled {
        return Some(Rejection::AgentDisabled);
    }
    if let Some(reason) = validity_rejection(agent.not_before, agent.not_after, now) {
        return Some(reason);
    }
    if !agent.allowed_ips.allows(client_ip) {
        return Some(Rejection::IpNotAllowed);
    }
    None
}

fn validity_rejection(not_before: i64, not_after: i64, now: i64) -> Option<Rejection> {
    if now < not_before {
        Some(Rejection::CertificateNotYetValid)
    } else if now > not_after {
        Some(Rejection::CertificateExpired)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
