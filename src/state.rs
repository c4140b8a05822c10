//! What every handler can reach: the services, and how each kind of caller is admitted.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::denial_log::DenialLog;
use crate::issuance::Issuance;
use crate::last_seen::LastSeen;
use crate::metrics::Metrics;
use crate::rate_limit::FailureLimiter;
use crate::registry::Registry;
use crate::routes::proxy_gate::ProxyGate;
use crate::store::Store;
use crate::trust::TrustIndex;

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub trust: Arc<TrustIndex>,
    pub registry: Arc<Registry>,
    pub issuance: Issuance,
    pub metrics: Arc<Metrics>,
    pub last_seen: Arc<LastSeen>,
    pub denial_log: Arc<DenialLog>,
    /// Source, secret and identity headers of every call from the proxy.
    pub proxy_gate: ProxyGate,
    pub verify: VerifyOptions,
    pub admin: AdminAuth,
    pub issuing_limits: IssuingLimits,
}

/// How verify reads and answers, from the settings.
pub struct VerifyOptions {
    /// Whether the seed's JSON body form is read when no identity header is present.
    pub read_body: bool,
    /// `X-Accel-Expires` on verify answers; 0: not sent.
    pub decision_cache_seconds: u32,
}

/// Who may call the admin API, and how often one may fail to.
pub struct AdminAuth {
    tokens: Vec<SecretString>,
    /// Whether agents with the `admin` profile may call the admin API by certificate.
    pub certificate_auth: bool,
    /// Failed attempts per TCP peer.
    pub failures: FailureLimiter,
}

impl AdminAuth {
    pub fn new(
        tokens: Vec<SecretString>,
        certificate_auth: bool,
        failures_per_minute: u32,
    ) -> Self {
        Self {
            tokens,
            certificate_auth,
            failures: FailureLimiter::per_minute(failures_per_minute),
        }
    }

    /// Whether `presented` is one of the configured tokens, compared in constant time
    /// against every one of them.
    pub fn accepts_token(&self, presented: &str) -> bool {
        let mut matched = subtle::Choice::from(0);
        for token in &self.tokens {
            matched |= presented.as_bytes().ct_eq(token.expose_secret().as_bytes());
        }
        bool::from(matched)
    }
}

/// The rate limits of the routes that need no admin token.
pub struct IssuingLimits {
    /// Failed enrolment-token redemptions per TCP peer (guessing tokens).
    pub token_failures: FailureLimiter,
    /// Host self-enrolment requests per client address (every attempt counts).
    pub host_requests: FailureLimiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_token_is_accepted_and_nothing_near_one() {
        let auth = AdminAuth::new(vec!["old-token".into(), "new-token".into()], false, 10);
        assert!(auth.accepts_token("old-token"));
        assert!(auth.accepts_token("new-token"));
        for near in ["", "new", "new-token ", "new-tokens", "NEW-TOKEN"] {
            assert!(!auth.accepts_token(near), "{near:?}");
        }
        assert!(!AdminAuth::new(Vec::new(), false, 10).accepts_token(""));
    }
}
