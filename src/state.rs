//! What every handler can reach: the services, and how each kind of caller is admitted.

use std::sync::Arc;

use arc_swap::ArcSwap;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::named_token;
use crate::denial_log::DenialLog;
use crate::domain::audit::Actor;
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
    /// Replaced whole on SIGHUP; a call sees the old list or the new one.
    tokens: ArcSwap<Vec<AdminToken>>,
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
            tokens: ArcSwap::from_pointee(tokens.iter().map(AdminToken::from_entry).collect()),
            certificate_auth,
            failures: FailureLimiter::per_minute(failures_per_minute),
        }
    }

    /// Who `presented` is, if it is one of the configured tokens: compared in constant time
    /// against every one of them.
    pub fn token_actor(&self, presented: &str) -> Option<Actor> {
        let mut actor = None;
        for token in self.tokens.load().iter() {
            let matched = presented
                .as_bytes()
                .ct_eq(token.secret.expose_secret().as_bytes());
            if bool::from(matched) && actor.is_none() {
                actor = Some(Actor::Token(token.name.clone()));
            }
        }
        actor
    }

    /// The names the audit trail will give the configured tokens.
    pub fn token_names(&self) -> Vec<String> {
        self.tokens
            .load()
            .iter()
            .map(|token| token.name.clone())
            .collect()
    }

    /// Swaps in new tokens; answers which names came, went, or kept their name with a new
    /// token (never a token itself).
    pub fn replace_tokens(&self, tokens: &[SecretString]) -> TokenChanges {
        let new: Vec<AdminToken> = tokens.iter().map(AdminToken::from_entry).collect();
        let old = self.tokens.load_full();
        let named = |list: &[AdminToken], name: &str| {
            list.iter()
                .find(|token| token.name == name)
                .map(|token| token.secret.expose_secret().to_owned())
        };
        let changes = TokenChanges {
            added: names_missing_from(&new, &old),
            removed: names_missing_from(&old, &new),
            replaced: new
                .iter()
                .filter(|token| {
                    named(&old, &token.name)
                        .is_some_and(|before| before != token.secret.expose_secret())
                })
                .map(|token| token.name.clone())
                .collect(),
        };
        self.tokens.store(Arc::new(new));
        changes
    }
}

/// What a reload did to the admin tokens, by name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub replaced: Vec<String>,
}

/// The names in `these` that `those` lacks.
fn names_missing_from(these: &[AdminToken], those: &[AdminToken]) -> Vec<String> {
    these
        .iter()
        .filter(|token| !those.iter().any(|other| other.name == token.name))
        .map(|token| token.name.clone())
        .collect()
}

/// One admin token with the name the audit trail gives its holder.
struct AdminToken {
    name: String,
    secret: SecretString,
}

impl AdminToken {
    /// `name:token` names a token; a bare token is named `token:` and the first 8 hex digits
    /// of its SHA-256, which identifies it without revealing it.
    fn from_entry(entry: &SecretString) -> Self {
        let entry = entry.expose_secret();
        match named_token(entry) {
            Some((name, token)) => Self {
                name: name.to_owned(),
                secret: SecretString::from(token.to_owned()),
            },
            None => {
                let digest = Sha256::digest(entry.as_bytes());
                let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                Self {
                    name: format!("token:{hex}"),
                    secret: SecretString::from(entry.to_owned()),
                }
            }
        }
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

    fn actor(auth: &AdminAuth, presented: &str) -> Option<String> {
        auth.token_actor(presented).map(|actor| actor.to_string())
    }

    #[test]
    fn any_configured_token_is_accepted_and_nothing_near_one() {
        let auth = AdminAuth::new(vec!["old-token".into(), "new-token".into()], false, 10);
        assert!(actor(&auth, "old-token").is_some());
        assert!(actor(&auth, "new-token").is_some());
        for near in ["", "new", "new-token ", "new-tokens", "NEW-TOKEN"] {
            assert_eq!(actor(&auth, near), None, "{near:?}");
        }
        assert_eq!(actor(&AdminAuth::new(Vec::new(), false, 10), ""), None);
    }

    #[test]
    fn a_named_token_is_its_name_and_a_bare_one_a_digest_prefix() {
        let auth = AdminAuth::new(
            vec![
                "ops:s3cret-ops".into(),
                "bare-token".into(),
                "token:x".into(),
            ],
            false,
            10,
        );
        assert_eq!(actor(&auth, "s3cret-ops").as_deref(), Some("ops"));
        // The name is not part of the secret.
        assert_eq!(actor(&auth, "ops:s3cret-ops"), None);
        // A bare token shows the first 8 hex digits of its SHA-256.
        let bare = actor(&auth, "bare-token").unwrap();
        let expected: String = Sha256::digest(b"bare-token")[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(bare, format!("token:{expected}"));
        // A reserved word before the colon is no name: the whole entry is the token.
        assert!(actor(&auth, "token:x").unwrap().starts_with("token:"));
        assert_eq!(actor(&auth, "x"), None);
        assert_eq!(auth.token_names().len(), 3);
    }
}
