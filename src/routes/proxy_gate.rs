//! The gate every call from the proxy passes before certgate looks at a certificate: verify,
//! renewal and admin calls by client certificate. It checks the source
//! (`CERTGATE_TRUSTED_PROXIES`) and the verify secret, counts wrong secrets per TCP peer,
//! and reads what the proxy says: the identity headers certgate believes and the client's
//! address.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName};
use arc_swap::ArcSwap;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use smallvec::SmallVec;
use subtle::ConstantTimeEq;

use crate::domain::agent::canonical_ip;
use crate::domain::verify::{Presented, Rejection};
use crate::proxy::{self, IdentityHeader, IdentityHeaders};
use crate::proxy_memo;
use crate::rate_limit::FailureLimiter;

pub static VERIFY_SECRET: HeaderName = HeaderName::from_static("x-verify-secret");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The identity header names, parsed once (a lookup by `&str` parses the name every time).
static IDENTITY_HEADER_NAMES: LazyLock<[HeaderName; IdentityHeader::ALL.len()]> =
    LazyLock::new(|| IdentityHeader::ALL.map(|header| HeaderName::from_static(header.name())));

pub struct ProxyGate {
    trusted_proxies: Vec<IpNet>,
    /// Replaced whole on SIGHUP; a call sees the old list or the new one.
    secrets: ArcSwap<Vec<SecretString>>,
    failures: FailureLimiter,
    identity_headers: IdentityHeaders,
}

/// A call the gate turned away, and when the peer may try again if it is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub reason: Rejection,
    pub retry_after: Option<Duration>,
}

impl ProxyGate {
    pub fn new(
        trusted_proxies: Vec<IpNet>,
        secrets: Vec<SecretString>,
        failures_per_minute: u32,
        identity_headers: IdentityHeaders,
    ) -> Self {
        Self {
            trusted_proxies,
            secrets: ArcSwap::from_pointee(secrets),
            failures: FailureLimiter::per_minute(failures_per_minute),
            identity_headers,
        }
    }

    /// Whether `peer` is one of `CERTGATE_TRUSTED_PROXIES`.
    pub fn trusts_proxy(&self, peer: IpAddr) -> bool {
        let peer = canonical_ip(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The source first (when trusted proxies are configured, only they may call), then the
    /// secret, compared in constant time against every configured one; no secret
    /// configured admits nobody. A wrong secret counts against the TCP peer.
    pub fn admit(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<(), Refused> {
        if !self.trusted_proxies.is_empty() && !peer.is_some_and(|ip| self.trusts_proxy(ip)) {
            return Err(Refused {
                reason: Rejection::UntrustedSource,
                retry_after: None,
            });
        }
        if self.secret_matches(headers) {
            return Ok(());
        }
        match peer.map(|ip| self.failures.record_failure(canonical_ip(ip))) {
            Some(Err(wait)) => Err(Refused {
                reason: Rejection::RateLimited,
                retry_after: Some(wait),
            }),
            _ => Err(Refused {
                reason: Rejection::InvalidVerifySecret,
                retry_after: None,
            }),
        }
    }

    /// Swaps in new verify secrets; answers how many there were and are.
    pub fn replace_secrets(&self, secrets: Vec<SecretString>) -> (usize, usize) {
        let now = secrets.len();
        let before = self.secrets.swap(std::sync::Arc::new(secrets)).len();
        (before, now)
    }

    fn secret_matches(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers.get(&VERIFY_SECRET) else {
            return false;
        };
        let presented = presented.as_bytes();
        let mut matched = subtle::Choice::from(0);
        for secret in self.secrets.load().iter() {
            matched |= presented.ct_eq(secret.expose_secret().as_bytes());
        }
        matched.into()
    }

    /// What the enabled identity headers say; `None` when none of them is present.
    pub fn identity(&self, headers: &HeaderMap) -> Result<Option<Presented>, Rejection> {
        let enabled = self.identity_headers;
        // A proxy sends one or two of them: no allocation for the list.
        let present: SmallVec<[(IdentityHeader, &[u8]); 4]> = enabled
            .enabled()
            .flat_map(|header| {
                headers
                    .get_all(&IDENTITY_HEADER_NAMES[header.index()])
                    .map(move |value| (header, value.as_bytes()))
            })
            .collect();
        proxy_memo::read_headers(enabled, &present)
    }

    /// The client's address as the proxy reports it (see [`proxy::client_ip`]).
    pub fn client_ip(
        &self,
        headers: &HeaderMap,
        body_ip: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Option<IpAddr> {
        proxy::client_ip(
            body_ip,
            headers.get(&X_REAL_IP).map(|v| v.as_bytes()),
            headers.get(header::X_FORWARDED_FOR).map(|v| v.as_bytes()),
            peer,
        )
    }

    /// Forgets peers whose failure quota has refilled.
    pub fn forget_idle(&self) {
        self.failures.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn gate(trusted: &[&str]) -> ProxyGate {
        ProxyGate::new(
            trusted.iter().map(|net| net.parse().unwrap()).collect(),
            vec![SecretString::from("old"), SecretString::from("new")],
            2,
            IdentityHeaders::parse("X-Client-Cert").unwrap(),
        )
    }

    fn with_secret(secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            VERIFY_SECRET.clone(),
            HeaderValue::from_str(secret).unwrap(),
        );
        headers
    }

    fn reason(result: Result<(), Refused>) -> Option<Rejection> {
        result.err().map(|refused| refused.reason)
    }

    #[test]
    fn the_source_comes_before_the_secret() {
        let gate = gate(&["10.0.0.0/8"]);
        let inside = Some("10.1.2.3".parse().unwrap());
        let mapped = Some("::ffff:10.1.2.3".parse().unwrap());
        let outside = Some("192.0.2.1".parse().unwrap());
        assert_eq!(reason(gate.admit(&with_secret("new"), inside)), None);
        assert_eq!(reason(gate.admit(&with_secret("old"), mapped)), None);
        assert_eq!(
            reason(gate.admit(&with_secret("new"), outside)),
            Some(Rejection::UntrustedSource)
        );
        assert_eq!(
            reason(gate.admit(&with_secret("new"), None)),
            Some(Rejection::UntrustedSource)
        );
    }

    #[test]
    fn wrong_secrets_are_counted_per_peer() {
        let gate = gate(&[]);
        let peer = Some("192.0.2.1".parse().unwrap());
        let other = Some("192.0.2.2".parse().unwrap());
        for _ in 0..2 {
            assert_eq!(
                reason(gate.admit(&with_secret("wrong"), peer)),
                Some(Rejection::InvalidVerifySecret)
            );
        }
        let refused = gate.admit(&HeaderMap::new(), peer).unwrap_err();
        assert_eq!(refused.reason, Rejection::RateLimited);
        assert!(refused.retry_after.is_some());
        assert_eq!(
            reason(gate.admit(&with_secret("new"), peer)),
            None,
            "a right secret still passes"
        );
        assert_eq!(
            reason(gate.admit(&with_secret("wrong"), other)),
            Some(Rejection::InvalidVerifySecret)
        );
    }

    #[test]
    fn no_secret_configured_admits_nobody() {
        let gate = ProxyGate::new(vec![], vec![], 10, IdentityHeaders::all());
        assert_eq!(
            reason(gate.admit(&with_secret(""), None)),
            Some(Rejection::InvalidVerifySecret)
        );
    }
}
