//! The verify decision as a table: one row per rule of SPEC.md §2, each with a message,
//! against a fake trust view (no x509 parsing: `check_chain` answers what the row says).

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;

use super::*;
use crate::domain::agent::{AgentStatus, AllowedIps};

const NOW: i64 = 1_750_000_000;
const HOUR: i64 = 3600;

/// One enrolled agent, one trusted CA and whatever chain building should answer.
struct FakeView {
    agents: Vec<Arc<AgentFacts>>,
    /// The CA's validity; `None` once it is removed.
    ca_validity: Option<(i64, i64)>,
    chain: Result<ChainInfo, Rejection>,
    chain_calls: Cell<usize>,
}

impl TrustView for FakeView {
    type Entry = Arc<AgentFacts>;

    fn agent_by_sha256(&self, fingerprint: &Fingerprint) -> Option<Self::Entry> {
        self.agents
            .iter()
            .find(|a| a.fingerprint == *fingerprint)
            .cloned()
    }

    fn agent_by_sha1(&self, fingerprint: &Sha1Fingerprint) -> Option<Self::Entry> {
        self.agents
            .iter()
            .find(|a| a.fingerprint_sha1 == *fingerprint)
            .cloned()
    }

    /// `TWIN_DER` has the enrolled agent's issuer and serial.
    fn agent_by_identity(&self, certificate: &PresentedCertificate) -> Option<Self::Entry> {
        (*certificate.der == *TWIN_DER)
            .then(|| self.agents.first().cloned())
            .flatten()
    }

    fn ca_validity(&self, id: CaId) -> Option<(i64, i64)> {
        self.ca_validity.filter(|_| id == ca())
    }

    fn check_chain(&self, _: &PresentedCertificate, _: i64) -> Result<ChainInfo, Rejection> {
        self.chain_calls.set(self.chain_calls.get() + 1);
        self.chain
    }
}

/// The decision with the agent reduced to its fingerprint, so rows can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Allow(Fingerprint),
    AllowUnknown,
    Enrol(ChainInfo),
    Deny(Rejection, Option<Fingerprint>),
}

fn outcome(verdict: Verdict<Arc<AgentFacts>>) -> Outcome {
    match verdict {
        Verdict::Allow(agent) => Outcome::Allow(agent.fingerprint),
        Verdict::AllowUnknown => Outcome::AllowUnknown,
        Verdict::Enrol(chain) => Outcome::Enrol(chain),
        Verdict::Deny(reason, agent) => Outcome::Deny(reason, agent.map(|a| a.fingerprint)),
    }
}

/// Everything a row may change, starting from "an enrolled, healthy agent presents its
/// whole certificate under the default policy".
struct World {
    presented: Presented,
    agent: Option<AgentFacts>,
    ca_validity: Option<(i64, i64)>,
    chain: Result<ChainInfo, Rejection>,
    policy: Policy,
    client_ip: Option<IpAddr>,
    now: i64,
}

fn ca() -> CaId {
    CaId::from_uuid(uuid::Uuid::from_u128(1))
}

const AGENT_DER: &[u8] = b"the enrolled agent's certificate";
const STRANGER_DER: &[u8] = b"a certificate nobody enrolled";
/// Another encoding of the agent's certificate (or its ECDSA twin): another fingerprint,
/// the agent's issuer and serial.
const TWIN_DER: &[u8] = b"the agent's certificate, encoded otherwise";

fn sha256(der: &[u8]) -> PresentedFingerprint {
    PresentedFingerprint::Sha256(Fingerprint::of_der(der))
}

fn sha1(der: &[u8]) -> PresentedFingerprint {
    PresentedFingerprint::Sha1(Sha1Fingerprint::of_der(der))
}

fn agent_fp() -> Fingerprint {
    Fingerprint::of_der(AGENT_DER)
}

fn whole(der: &[u8]) -> Presented {
    Presented {
        certificate: Some(PresentedCertificate::new(der.to_vec(), vec![])),
        ..Presented::default()
    }
}

fn fingerprints(fps: &[PresentedFingerprint]) -> Presented {
    Presented {
        fingerprints: fps.to_vec(),
        ..Presented::default()
    }
}

fn chains() -> ChainInfo {
    ChainInfo {
        ca_id: ca(),
        ca_not_after: NOW + 100 * HOUR,
    }
}

fn ips(items: &[&str]) -> AllowedIps {
    AllowedIps::parse(&items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
}

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

impl World {
    fn new() -> Self {
        Self {
            presented: whole(AGENT_DER),
            agent: Some(AgentFacts {
                fingerprint: agent_fp(),
                fingerprint_sha1: Sha1Fingerprint::of_der(AGENT_DER),
                ca_id: ca(),
                enabled: true,
                revoked: false,
                ca_removed: false,
                not_before: NOW - HOUR,
                not_after: NOW + HOUR,
                allowed_ips: AllowedIps::default(),
            }),
            ca_validity: Some((NOW - 100 * HOUR, NOW + 100 * HOUR)),
            chain: Ok(chains()),
            policy: Policy::defaults(OffsetDateTime::UNIX_EPOCH),
            client_ip: ip("192.0.2.10"),
            now: NOW,
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }

    fn agent(self, change: impl FnOnce(&mut AgentFacts)) -> Self {
        self.with(|w| change(w.agent.as_mut().unwrap()))
    }

    fn presenting(self, presented: Presented) -> Self {
        self.with(|w| w.presented = presented)
    }

    fn policy(self, reject_unknown: bool, auto_enroll: bool) -> Self {
        self.with(|w| {
            w.policy.reject_unknown_certs = reject_unknown;
            w.policy.auto_enroll = auto_enroll;
        })
    }

    /// The decision, and how many times chain building was asked.
    fn decide(&self) -> (Outcome, usize) {
        let view = FakeView {
            agents: self.agent.iter().cloned().map(Arc::new).collect(),
            ca_validity: self.ca_validity,
            chain: self.chain,
            chain_calls: Cell::new(0),
        };
        let verdict = decide(
            &self.presented,
            &view,
            &self.policy,
            self.client_ip,
            self.now,
        );
        (outcome(verdict), view.chain_calls.get())
    }
}

fn deny(reason: Rejection) -> Outcome {
    Outcome::Deny(reason, None)
}

fn deny_agent(reason: Rejection) -> Outcome {
    Outcome::Deny(reason, Some(agent_fp()))
}

fn allow() -> Outcome {
    Outcome::Allow(agent_fp())
}

#[test]
fn decision_table() {
    use Rejection as R;
    let enrolled = World::new;
    let stranger = || World::new().presenting(whole(STRANGER_DER));
    let stranger_fp = || World::new().presenting(fingerprints(&[sha256(STRANGER_DER)]));
    let twin = || World::new().presenting(whole(TWIN_DER));
    let failed_proxy = |mut p: Presented| {
        p.proxy_verified = Some(false);
        p
    };

    let rows: Vec<(&str, World, Outcome)> = vec![
        // --- nothing usable was sent
        (
            "no certificate information at all",
            enrolled().presenting(Presented::default()),
            deny(R::MissingCertificate),
        ),
        (
            "X-Client-Verify NONE and nothing else is still a missing certificate",
            enrolled().presenting(failed_proxy(Presented::default())),
            deny(R::MissingCertificate),
        ),
        (
            "audit mode does not change the decision itself (the route relaxes it)",
            enrolled()
                .presenting(Presented::default())
                .with(|w| w.policy.enforcement_enabled = false),
            deny(R::MissingCertificate),
        ),
        // --- the proxy's own verification
        (
            "proxy failed its check and only a fingerprint was sent",
            enrolled().presenting(failed_proxy(fingerprints(&[sha1(AGENT_DER)]))),
            deny(R::ProxyVerificationFailed),
        ),
        (
            "proxy failed its check but the whole certificate was sent: certgate decides",
            enrolled().presenting(failed_proxy(whole(AGENT_DER))),
            allow(),
        ),
        (
            "proxy said SUCCESS with a fingerprint",
            enrolled().presenting(Presented {
                proxy_verified: Some(true),
                ..fingerprints(&[sha1(AGENT_DER)])
            }),
            allow(),
        ),
        // --- enrolled agents
        ("enrolled, whole certificate", enrolled(), allow()),
        (
            "enrolled, SHA-256 fingerprint only",
            enrolled().presenting(fingerprints(&[sha256(AGENT_DER)])),
            allow(),
        ),
        (
            "enrolled, SHA-1 fingerprint only (nginx)",
            enrolled().presenting(fingerprints(&[sha1(AGENT_DER)])),
            allow(),
        ),
        (
            "enrolled, SHA-1 and SHA-256 of the same certificate",
            enrolled().presenting(fingerprints(&[sha1(AGENT_DER), sha256(AGENT_DER)])),
            allow(),
        ),
        (
            "enrolled and auto_enroll on: allowed, not enrolled twice",
            enrolled().policy(false, true),
            allow(),
        ),
        (
            "revoked",
            enrolled().agent(|a| a.revoked = true),
            deny_agent(R::AgentRevoked),
        ),
        (
            "revoked wins over disabled and expired",
            enrolled().agent(|a| {
                a.revoked = true;
                a.enabled = false;
                a.not_after = NOW - 1;
            }),
            deny_agent(R::AgentRevoked),
        ),
        (
            "revoked stays revoked when unknown certificates are allowed",
            enrolled().policy(false, true).agent(|a| a.revoked = true),
            deny_agent(R::AgentRevoked),
        ),
        (
            "revoked, by SHA-1 fingerprint",
            enrolled()
                .presenting(fingerprints(&[sha1(AGENT_DER)]))
                .agent(|a| a.revoked = true),
            deny_agent(R::AgentRevoked),
        ),
        (
            "CA removed (flag on the agent)",
            enrolled().agent(|a| a.ca_removed = true),
            deny_agent(R::CaRemoved),
        ),
        (
            "CA removed (no longer in the trusted set)",
            enrolled().with(|w| w.ca_validity = None),
            deny_agent(R::CaRemoved),
        ),
        (
            "CA removed, fingerprint only",
            enrolled()
                .presenting(fingerprints(&[sha256(AGENT_DER)]))
                .with(|w| w.ca_validity = None),
            deny_agent(R::CaRemoved),
        ),
        (
            "CA expired",
            enrolled().with(|w| w.ca_validity = Some((NOW - 2 * HOUR, NOW - 1))),
            deny_agent(R::CaExpired),
        ),
        (
            "CA expired, SHA-1 fingerprint only",
            enrolled()
                .presenting(fingerprints(&[sha1(AGENT_DER)]))
                .with(|w| w.ca_validity = Some((NOW - 2 * HOUR, NOW - 1))),
            deny_agent(R::CaExpired),
        ),
        (
            "CA not valid yet",
            enrolled().with(|w| w.ca_validity = Some((NOW + 1, NOW + 2 * HOUR))),
            deny_agent(R::CaExpired),
        ),
        (
            "last second of the CA's validity",
            enrolled().with(|w| w.ca_validity = Some((NOW - HOUR, NOW))),
            allow(),
        ),
        (
            "revoked wins over an expired CA",
            enrolled()
                .agent(|a| a.revoked = true)
                .with(|w| w.ca_validity = Some((NOW - 2 * HOUR, NOW - 1))),
            deny_agent(R::AgentRevoked),
        ),
        (
            "an expired CA wins over disabled",
            enrolled()
                .agent(|a| a.enabled = false)
                .with(|w| w.ca_validity = Some((NOW - 2 * HOUR, NOW - 1))),
            deny_agent(R::CaExpired),
        ),
        (
            "disabled",
            enrolled().agent(|a| a.enabled = false),
            deny_agent(R::AgentDisabled),
        ),
        (
            "expired",
            enrolled().agent(|a| a.not_after = NOW - 1),
            deny_agent(R::CertificateExpired),
        ),
        (
            "last second of validity",
            enrolled().agent(|a| a.not_after = NOW),
            allow(),
        ),
        (
            "not yet valid",
            enrolled().agent(|a| a.not_before = NOW + 1),
            deny_agent(R::CertificateNotYetValid),
        ),
        (
            "first second of validity",
            enrolled().agent(|a| a.not_before = NOW),
            allow(),
        ),
        (
            "IP outside the allow list",
            enrolled().agent(|a| a.allowed_ips = ips(&["10.0.0.0/8"])),
            deny_agent(R::IpNotAllowed),
        ),
        (
            "IP inside an allowed CIDR",
            enrolled()
                .agent(|a| a.allowed_ips = ips(&["10.0.0.0/8", "2001:db8::/32"]))
                .with(|w| w.client_ip = ip("10.20.30.40")),
            allow(),
        ),
        (
            "IPv6 inside an allowed CIDR",
            enrolled()
                .agent(|a| a.allowed_ips = ips(&["10.0.0.0/8", "2001:db8::/32"]))
                .with(|w| w.client_ip = ip("2001:db8::7")),
            allow(),
        ),
        (
            "no client IP at all with a restriction",
            enrolled()
                .agent(|a| a.allowed_ips = ips(&["10.0.0.0/8"]))
                .with(|w| w.client_ip = None),
            deny_agent(R::IpNotAllowed),
        ),
        (
            "no client IP and no restriction",
            enrolled().with(|w| w.client_ip = None),
            allow(),
        ),
        // --- fingerprints that disagree
        (
            "SHA-256 of the agent with SHA-1 of another certificate",
            enrolled().presenting(fingerprints(&[sha256(AGENT_DER), sha1(STRANGER_DER)])),
            deny(R::FingerprintMismatch),
        ),
        (
            "unknown SHA-256 first, then the agent's SHA-1",
            enrolled().presenting(fingerprints(&[sha256(STRANGER_DER), sha1(AGENT_DER)])),
            deny(R::FingerprintMismatch),
        ),
        (
            "disagreeing fingerprints are refused even when unknown ones are allowed",
            enrolled()
                .policy(false, false)
                .presenting(fingerprints(&[sha1(STRANGER_DER), sha256(AGENT_DER)])),
            deny(R::FingerprintMismatch),
        ),
        // --- unknown, fingerprint only
        (
            "unknown fingerprint, reject_unknown on",
            stranger_fp(),
            deny(R::UnknownCertificate),
        ),
        (
            "unknown fingerprint, reject_unknown off",
            stranger_fp().policy(false, false),
            Outcome::AllowUnknown,
        ),
        (
            "unknown SHA-1 fingerprint, reject_unknown off",
            World::new()
                .presenting(fingerprints(&[sha1(STRANGER_DER)]))
                .policy(false, false),
            Outcome::AllowUnknown,
        ),
        (
            "unknown fingerprint, auto_enroll cannot enrol without the certificate",
            stranger_fp().policy(true, true),
            deny(R::UnknownCertificate),
        ),
        (
            "unknown fingerprint, auto_enroll on and reject_unknown off",
            stranger_fp().policy(false, true),
            Outcome::AllowUnknown,
        ),
        // --- unknown, whole certificate
        (
            "unknown certificate that chains, reject_unknown on",
            stranger(),
            deny(R::UnknownCertificate),
        ),
        (
            "unknown certificate that chains, reject_unknown off",
            stranger().policy(false, false),
            Outcome::AllowUnknown,
        ),
        (
            "unknown certificate that chains, auto_enroll on",
            stranger().policy(true, true),
            Outcome::Enrol(chains()),
        ),
        (
            "auto_enroll on whatever reject_unknown says",
            stranger().policy(false, true),
            Outcome::Enrol(chains()),
        ),
        // --- another encoding of an enrolled certificate: it is that agent's
        (
            "twin of a healthy agent",
            twin(),
            deny_agent(R::FingerprintMismatch),
        ),
        (
            "twin of a healthy agent, unknown certificates allowed",
            twin().policy(false, false),
            deny_agent(R::FingerprintMismatch),
        ),
        (
            "twin of a healthy agent is never auto-enrolled",
            twin().policy(false, true),
            deny_agent(R::FingerprintMismatch),
        ),
        (
            "twin of a revoked agent, unknown certificates allowed",
            twin().policy(false, false).agent(|a| a.revoked = true),
            deny_agent(R::AgentRevoked),
        ),
        (
            "twin of a revoked agent, auto_enroll on",
            twin().policy(true, true).agent(|a| a.revoked = true),
            deny_agent(R::AgentRevoked),
        ),
        (
            "twin of a disabled agent, unknown certificates allowed",
            twin().policy(false, false).agent(|a| a.enabled = false),
            deny_agent(R::AgentDisabled),
        ),
        (
            "twin of an agent whose CA was removed",
            twin().policy(false, true).agent(|a| a.ca_removed = true),
            deny_agent(R::CaRemoved),
        ),
        (
            "twin of an expired agent",
            twin().policy(false, false).agent(|a| a.not_after = NOW - 1),
            deny_agent(R::CertificateExpired),
        ),
    ];
    let mut failures = Vec::new();
    for (name, world, expected) in rows {
        let (got, _) = world.decide();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn chain_errors_pass_through_for_unknown_certificates() {
    for reason in [
        Rejection::UntrustedIssuer,
        Rejection::WrongKeyUsage,
        Rejection::MalformedCertificate,
        Rejection::CertificateExpired,
        Rejection::CertificateNotYetValid,
        Rejection::CaExpired,
        Rejection::WeakCrypto,
        Rejection::AgentRevoked,
    ] {
        for (reject_unknown, auto_enroll) in [(true, false), (false, false), (true, true)] {
            let world = World::new()
                .presenting(whole(STRANGER_DER))
                .policy(reject_unknown, auto_enroll)
                .with(|w| w.chain = Err(reason));
            assert_eq!(
                world.decide().0,
                deny(reason),
                "{reason:?} reject_unknown={reject_unknown} auto_enroll={auto_enroll}"
            );
        }
    }
}

#[test]
fn chain_building_runs_only_for_unknown_whole_certificates() {
    let cases = [
        ("enrolled, whole certificate", World::new(), 0),
        (
            "enrolled, fingerprint",
            World::new().presenting(fingerprints(&[sha1(AGENT_DER)])),
            0,
        ),
        (
            "unknown fingerprint, reject_unknown off",
            World::new()
                .presenting(fingerprints(&[sha256(STRANGER_DER)]))
                .policy(false, false),
            0,
        ),
        (
            "unknown whole certificate",
            World::new().presenting(whole(STRANGER_DER)),
            1,
        ),
        (
            "another encoding of the agent's certificate",
            World::new().presenting(whole(TWIN_DER)).policy(false, true),
            0,
        ),
    ];
    for (name, world, calls) in cases {
        assert_eq!(world.decide().1, calls, "{name}");
    }
}

#[test]
fn presented_sha256_prefers_the_certificate() {
    assert_eq!(whole(AGENT_DER).sha256(), Some(agent_fp()));
    assert_eq!(
        fingerprints(&[sha1(AGENT_DER), sha256(AGENT_DER)]).sha256(),
        Some(agent_fp())
    );
    assert_eq!(fingerprints(&[sha1(AGENT_DER)]).sha256(), None);
    assert_eq!(Presented::default().sha256(), None);
}

// ---------------------------------------------------------------- Rejection

/// The stable code of each variant. The match has no wildcard, so a new variant does not
/// compile until it is given a code here (and then `ALL`'s length check below fails until it
/// is listed there too).
fn documented_code(reason: Rejection) -> &'static str {
    match reason {
        Rejection::InvalidVerifySecret => "invalid_verify_secret",
        Rejection::RateLimited => "rate_limited",
        Rejection::UntrustedSource => "untrusted_source",
        Rejection::MissingCertificate => "missing_certificate",
        Rejection::MalformedRequest => "malformed_request",
        Rejection::MalformedCertificate => "malformed_certificate",
        Rejection::FingerprintMismatch => "fingerprint_mismatch",
        Rejection::ProxyVerificationFailed => "proxy_verification_failed",
        Rejection::AgentDisabled => "agent_disabled",
        Rejection::AgentRevoked => "agent_revoked",
        Rejection::CertificateExpired => "certificate_expired",
        Rejection::CertificateNotYetValid => "certificate_not_yet_valid",
        Rejection::CaRemoved => "ca_removed",
        Rejection::CaExpired => "ca_expired",
        Rejection::IpNotAllowed => "ip_not_allowed",
        Rejection::UnknownCertificate => "unknown_certificate",
        Rejection::UntrustedIssuer => "untrusted_issuer",
        Rejection::WrongKeyUsage => "wrong_key_usage",
        Rejection::WeakCrypto => "weak_crypto",
    }
}

#[test]
fn every_rejection_has_a_stable_code_and_a_proxy_safe_status() {
    let mut codes = HashSet::new();
    for (position, reason) in Rejection::ALL.into_iter().enumerate() {
        let code = reason.as_str();
        assert_eq!(code, documented_code(reason), "{reason:?}");
        assert!(codes.insert(code), "{code} is used twice");
        assert!(
            !code.is_empty()
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !code.starts_with('_')
                && !code.ends_with('_')
                && !code.contains("__"),
            "{code} is not snake_case"
        );
        let expected_status = match reason {
            Rejection::InvalidVerifySecret | Rejection::MissingCertificate => 401,
            _ => 403,
        };
        assert_eq!(reason.http_status(), expected_status, "{code}");
        assert_eq!(reason.index(), position, "{code}");
        assert_eq!(Rejection::ALL[reason.index()], reason, "{code}");
        assert_eq!(
            reason.is_certificate_decision(),
            !matches!(
                reason,
                Rejection::InvalidVerifySecret
                    | Rejection::RateLimited
                    | Rejection::UntrustedSource
            ),
            "{code}: audit mode relaxes certificate decisions only"
        );
    }
    assert_eq!(codes.len(), Rejection::ALL.len());
    assert_eq!(
        Rejection::ALL.len(),
        19,
        "one entry per arm of documented_code"
    );
}

#[test]
fn an_allow_is_cacheable_within_the_limit_and_never_past_an_expiry() {
    let agent = World::new().agent.unwrap();
    let ca_end = Some(NOW + 100 * HOUR);
    assert_eq!(cacheable_seconds(&agent, ca_end, 5, NOW), 5, "the limit");
    let expiring = AgentFacts {
        not_after: NOW + 2,
        ..agent.clone()
    };
    assert_eq!(
        cacheable_seconds(&expiring, ca_end, 5, NOW),
        3,
        "through the certificate's last valid second"
    );
    assert_eq!(
        cacheable_seconds(&agent, Some(NOW), 5, NOW),
        1,
        "the CA expires at the end of this second"
    );
    assert_eq!(
        cacheable_seconds(&expiring, ca_end, 5, NOW + 3),
        0,
        "expired"
    );
    assert_eq!(cacheable_seconds(&agent, None, 5, NOW), 0, "CA gone");
    let restricted = AgentFacts {
        allowed_ips: AllowedIps::parse(&["192.0.2.0/24".to_owned()]).unwrap(),
        ..agent
    };
    assert_eq!(
        cacheable_seconds(&restricted, ca_end, 5, NOW),
        0,
        "the decision depends on the address"
    );
}

#[test]
fn a_certificates_status_is_the_first_reason_verify_would_refuse_it() {
    let active = World::new().agent.unwrap();
    let ca_end = Some(NOW + 100 * HOUR);
    let status = |facts: &AgentFacts, ca: Option<i64>| AgentStatus::of(facts, ca, NOW);
    assert_eq!(status(&active, ca_end), AgentStatus::Active);
    let expired = AgentFacts {
        not_after: NOW - 1,
        ..active.clone()
    };
    assert_eq!(status(&expired, ca_end), AgentStatus::Expired);
    let disabled = AgentFacts {
        enabled: false,
        ..expired.clone()
    };
    assert_eq!(status(&disabled, ca_end), AgentStatus::Disabled);
    assert_eq!(status(&disabled, Some(NOW - 1)), AgentStatus::CaExpired);
    assert_eq!(status(&disabled, None), AgentStatus::CaRemoved, "CA gone");
    let ca_removed = AgentFacts {
        ca_removed: true,
        ..disabled.clone()
    };
    assert_eq!(status(&ca_removed, ca_end), AgentStatus::CaRemoved);
    let revoked = AgentFacts {
        revoked: true,
        ..ca_removed
    };
    assert_eq!(status(&revoked, None), AgentStatus::Revoked);
}
