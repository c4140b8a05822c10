//! Issuing certificates: profiles, one-time enrolment tokens and pending enrolments.

use std::fmt;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::AgentId;
use super::agent::{AllowedIps, Hostname, Tags};

/// How long a one-time enrolment token (or a host's request) may stay redeemable.
pub const MIN_TOKEN_TTL: Duration = Duration::seconds(1);
pub const MAX_TOKEN_TTL: Duration = Duration::days(30);

/// The longest a renewed-away certificate may keep verifying.
pub const MAX_RENEWAL_GRACE: Duration = Duration::days(30);

/// What an issued certificate may be used for. Chosen at enrolment, shown on the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// clientAuth: a machine or service that calls through the proxy.
    #[default]
    Agent,
    /// clientAuth, and the holder may also call the admin API through the proxy.
    Admin,
    /// serverAuth and clientAuth: a service that also terminates TLS itself.
    Server,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Admin => "admin",
            Self::Server => "server",
        }
    }

    pub fn parse(text: &str) -> Result<Self, &'static str> {
        match text {
            "agent" => Ok(Self::Agent),
            "admin" => Ok(Self::Admin),
            "server" => Ok(Self::Server),
            _ => Err("profile must be agent, admin or server"),
        }
    }

    pub fn server_auth(self) -> bool {
        self == Self::Server
    }
}

/// A one-time enrolment token as handed out once; only its digest is stored.
pub struct EnrolmentToken(String);

/// Tokens carry 256 bits from the OS generator, written as 43 URL-safe base64 characters
/// behind a prefix that makes a leaked one easy to recognise in logs and secret scanners.
const TOKEN_PREFIX: &str = "cgt_";

impl EnrolmentToken {
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self(format!("{TOKEN_PREFIX}{body}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl fmt::Debug for EnrolmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrolmentToken(<redacted>)")
    }
}

/// SHA-256 of a token, lowercase hex: what the store keeps and looks up by. Tokens carry
/// enough entropy that an unsalted digest cannot be reversed by guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDigest(String);

impl TokenDigest {
    pub fn of(presented: &str) -> Self {
        Self(hex::encode(Sha256::digest(presented.trim().as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agent that may enrol (first time) or re-enrol (a rotated token) with a token.
#[derive(Debug, Clone)]
pub struct PendingEnrolment {
    pub agent_id: AgentId,
    pub hostname: Hostname,
    pub description: Option<String>,
    pub tags: Tags,
    pub allowed_ips: AllowedIps,
    pub profile: Profile,
    pub token_digest: TokenDigest,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("this enrolment token is not valid")]
    Unknown,
    #[error("this enrolment token was already used; ask an administrator for a new one")]
    Used,
    #[error("this enrolment token has expired; ask an administrator for a new one")]
    Expired,
}

impl PendingEnrolment {
    /// Whether this enrolment's token may be used at `now`.
    pub fn check_usable(&self, now: OffsetDateTime) -> Result<(), TokenRefusal> {
        if self.used_at.is_some() {
            return Err(TokenRefusal::Used);
        }
        if now >= self.expires_at {
            return Err(TokenRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_url_safe_and_digest_to_hex() {
        let token = EnrolmentToken::from_random_bytes([0xfb; 32]);
        assert!(token.as_str().starts_with("cgt_"));
        assert_eq!(token.as_str().len(), 4 + 43);
        assert!(
            token.as_str()[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(token.digest(), TokenDigest::of(token.as_str()));
        assert_eq!(token.digest().as_str().len(), 64);
        assert_ne!(
            token.digest(),
            EnrolmentToken::from_random_bytes([0xfa; 32]).digest()
        );
        assert_eq!(format!("{token:?}"), "EnrolmentToken(<redacted>)");
    }

    #[test]
    fn profiles_round_trip_and_refuse_unknown_names() {
        for profile in [Profile::Agent, Profile::Admin, Profile::Server] {
            assert_eq!(Profile::parse(profile.as_str()), Ok(profile));
        }
        assert!(Profile::parse("Admin").is_err());
        assert!(Profile::parse("").is_err());
    }
}
