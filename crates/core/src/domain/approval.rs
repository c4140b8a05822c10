//! Host self-enrolment: a host asks with its signing request, an administrator approves or
//! denies, the host polls with a token until it has its certificate.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::agent::Hostname;
use super::enrolment::TokenDigest;
use super::{AgentId, Fingerprint, HostRequestId};

pub const POLLING_TOKEN_LENGTH: usize = 64;
const MAX_MACHINE_ID: usize = 128;
/// Largest `os_details` accepted, as JSON text.
pub const MAX_OS_DETAILS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRequestStatus {
    Pending,
    Approved,
    Denied,
}

impl HostRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            _ => None,
        }
    }
}

/// 64 random alphanumerics (about 380 bits), handed to the host once; only its digest is
/// stored.
pub struct PollingToken(String);

impl PollingToken {
    /// `pick(n)` must return a uniformly random index below `n`.
    pub fn generate(mut pick: impl FnMut(usize) -> usize) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        Self(
            (0..POLLING_TOKEN_LENGTH)
                .map(|_| char::from(ALPHABET[pick(ALPHABET.len()) % ALPHABET.len()]))
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl std::fmt::Debug for PollingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PollingToken(<redacted>)")
    }
}

/// A host's self-enrolment request, as stored.
#[derive(Debug, Clone)]
pub struct HostRequest {
    pub id: HostRequestId,
    pub hostname: Hostname,
    pub machine_id: String,
    pub ip_address: IpAddr,
    /// The host's description of itself, as JSON text.
    pub os_details: String,
    pub csr_pem: String,
    /// SHA-256 of the requested public key (DER SubjectPublicKeyInfo), so an administrator
    /// can compare it with what the host printed before approving.
    pub key_sha256: Fingerprint,
    pub token_digest: TokenDigest,
    pub status: HostRequestStatus,
    pub agent_id: Option<AgentId>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
}

impl HostRequest {
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

/// `/etc/machine-id` and the like: 1–128 printable ASCII characters, no spaces.
pub fn parse_machine_id(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_MACHINE_ID {
        return Err("machine_id must be 1 to 128 characters");
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("machine_id must be printable ASCII without spaces");
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_tokens_are_64_alphanumerics() {
        let mut n = 0;
        let token = PollingToken::generate(|len| {
            n += 7;
            n % len
        });
        assert_eq!(token.as_str().len(), POLLING_TOKEN_LENGTH);
        assert!(token.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(token.digest(), TokenDigest::of(token.as_str()));
        assert_eq!(format!("{token:?}"), "PollingToken(<redacted>)");
    }

    #[test]
    fn machine_ids_are_short_printable_words() {
        assert_eq!(parse_machine_id(" 0123abcd \n").unwrap(), "0123abcd");
        assert!(parse_machine_id("").is_err());
        assert!(parse_machine_id("a b").is_err());
        assert!(parse_machine_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            HostRequestStatus::Pending,
            HostRequestStatus::Approved,
            HostRequestStatus::Denied,
        ] {
            assert_eq!(HostRequestStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(HostRequestStatus::parse("expired"), None);
    }
}
