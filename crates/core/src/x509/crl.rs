//! Certificate revocation lists uploaded for external CAs.

use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::{parse_borrowed, serial_hex};

/// A certificate revocation list as uploaded: its DER, who issued it, and what it lists.
#[derive(Debug, Clone)]
pub struct RevocationList {
    pub der: Vec<u8>,
    /// Serials in the form agents store theirs (uppercase hex, no sign byte).
    pub serials: Vec<String>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
}

/// Why a CRL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("the CRL does not parse (PEM `X509 CRL` or DER expected): {0}")]
    Malformed(String),
    #[error("the CRL was not issued by this CA (issuer name differs)")]
    WrongIssuer,
    #[error("the CRL's signature does not verify with this CA's key")]
    BadSignature,
}

/// Parses a CRL (PEM or DER) and checks it was issued and signed by `ca_der`.
pub fn revocation_list(input: &[u8], ca_der: &[u8]) -> Result<RevocationList, CrlError> {
    let der = match std::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN") => match pem::parse(text) {
            Ok(block) if block.tag() == "X509 CRL" => block.into_contents(),
            Ok(block) => return Err(CrlError::Malformed(format!("PEM block `{}`", block.tag()))),
            Err(e) => return Err(CrlError::Malformed(e.to_string())),
        },
        _ => input.to_vec(),
    };
    let (serials, this_update, next_update) = {
        let crl = match x509_parser::revocation_list::CertificateRevocationList::from_der(&der) {
            Ok(([], crl)) => crl,
            Ok(_) => return Err(CrlError::Malformed("trailing bytes after the CRL".into())),
            Err(e) => return Err(CrlError::Malformed(e.to_string())),
        };
        let ca = parse_borrowed(ca_der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        if crl.issuer().as_raw() != ca.subject().as_raw() {
            return Err(CrlError::WrongIssuer);
        }
        crl.verify_signature(ca.public_key())
            .map_err(|_| CrlError::BadSignature)?;
        let serials = crl
            .iter_revoked_certificates()
            .map(|revoked| serial_hex(revoked.raw_serial()))
            .collect();
        (
            serials,
            crl.last_update().to_datetime(),
            crl.next_update().map(|t| t.to_datetime()),
        )
    };
    Ok(RevocationList {
        der,
        serials,
        this_update,
        next_update,
    })
}
