//! A trusted CA certificate as stored.

use time::OffsetDateTime;

use super::{CaId, Fingerprint};

/// The name the internal CA is listed under in `GET B/ca`.
pub const INTERNAL_CA_NAME: &str = "certgate internal CA";

#[derive(Debug, Clone)]
pub struct Ca {
    pub id: CaId,
    pub name: String,
    pub fingerprint: Fingerprint,
    pub subject: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub certificate_pem: String,
    pub created_at: OffsetDateTime,
    /// Set when an operator deleted the CA; the row stays so its agents read `ca_removed`.
    pub removed_at: Option<OffsetDateTime>,
    /// certgate's own issuing CA (its key is in the data directory).
    pub internal: bool,
}

/// A CA name: 1–256 characters, no control characters.
pub fn parse_name(text: &str) -> Result<String, &'static str> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 256 {
        return Err("name must be 1 to 256 characters");
    }
    if trimmed.chars().any(char::is_control) {
        return Err("name must not contain control characters");
    }
    Ok(trimmed.to_owned())
}
