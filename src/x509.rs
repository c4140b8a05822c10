//! The only module that names x509-parser types: it turns DER into owned
//! [`CertificateInfo`] values and answers "was this signed by that?".

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Version;

use crate::domain::{CaId, Fingerprint, Sha1Fingerprint};

/// Largest PEM text accepted for one certificate upload.
pub const MAX_PEM_BYTES: usize = 50 * 1024;
/// Longest path from a leaf to a stored CA through presented intermediates.
const MAX_CHAIN_DEPTH: usize = 5;

/// Why certificate text or bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate text is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge,
    #[error("no PEM certificate found")]
    NotPem,
    #[error("expected exactly one certificate, found {0}")]
    MultipleCertificates(usize),
    #[error("a private key was sent where a certificate belongs")]
    PrivateKey,
    #[error("PEM block `{0}` is not a certificate")]
    NotACertificate(String),
    #[error("certificate does not parse as X.509: {0}")]
    Malformed(String),
}

/// What certgate keeps of a parsed certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    pub fingerprint: Fingerprint,
    pub sha1: Sha1Fingerprint,
    pub subject: String,
    pub issuer: String,
    /// Uppercase hex without separators, byte-aligned (nginx's `$ssl_client_serial`).
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// basicConstraints CA:TRUE, or a self-signed v1 certificate (old roots).
    pub is_ca: bool,
    /// None when the certificate has no EKU extension.
    pub extended_key_usage: Option<ExtendedKeyUsage>,
    pub dns_names: Vec<String>,
    pub common_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    pub client_auth: bool,
    pub any: bool,
}

impl CertificateInfo {
    /// A client certificate may carry no EKU at all, or one that includes clientAuth.
    pub fn allows_client_auth(&self) -> bool {
        self.extended_key_usage
            .is_none_or(|eku| eku.client_auth || eku.any)
    }

    /// The name an auto-enrolled agent takes: first DNS SAN, else the CN.
    pub fn preferred_hostname(&self) -> Option<&str> {
        self.dns_names
            .first()
            .map(String::as_str)
            .or(self.common_name.as_deref())
    }

    pub fn to_pem(&self) -> String {
        der_to_pem(&self.der)
    }
}

pub fn der_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())).replace("\r\n", "\n")
}

/// Every certificate in a PEM text, in order. Refuses private keys and other block types.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, CertError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(CertError::TooLarge);
    }
    let blocks = pem::parse_many(text).map_err(|_| CertError::NotPem)?;
    if blocks.is_empty() {
        return Err(CertError::NotPem);
    }
    blocks
        .into_iter()
        .map(|block| match block.tag() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => Ok(block.into_contents()),
            tag if tag.contains("PRIVATE KEY") => Err(CertError::PrivateKey),
            tag => Err(CertError::NotACertificate(tag.chars().take(40).collect())),
        })
        .collect()
}

/// Exactly one certificate from a PEM text, parsed.
pub fn single_pem_certificate(text: &str) -> Result<CertificateInfo, CertError> {
    let mut ders = pem_certificates(text)?;
    if ders.len() != 1 {
        return Err(CertError::MultipleCertificates(ders.len()));
    }
    parse(ders.remove(0))
}

/// Parses one DER certificate; trailing bytes are refused.
pub fn parse(der: Vec<u8>) -> Result<CertificateInfo, CertError> {
    let info = {
        let cert = parse_borrowed(&der)?;
        let basic_ca = cert
            .basic_constraints()
            .map_err(|e| CertError::Malformed(e.to_string()))?
            .is_some_and(|bc| bc.value.ca);
        let self_signed_v1 =
            cert.version() == X509Version::V1 && cert.subject().as_raw() == cert.issuer().as_raw();
        let extended_key_usage = cert
            .extended_key_usage()
            .map_err(|e| CertError::Malformed(e.to_string()))?
            .map(|eku| ExtendedKeyUsage {
                client_auth: eku.value.client_auth,
                any: eku.value.any,
            });
        let dns_names = cert
            .subject_alternative_name()
            .map_err(|e| CertError::Malformed(e.to_string()))?
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        PartialInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: basic_ca || self_signed_v1,
            extended_key_usage,
            dns_names,
            common_name,
        }
    };
    Ok(CertificateInfo {
        fingerprint: Fingerprint::of_der(&der),
        sha1: Sha1Fingerprint::of_der(&der),
        der,
        subject: info.subject,
        issuer: info.issuer,
        serial: info.serial,
        not_before: info.not_before,
        not_after: info.not_after,
        is_ca: info.is_ca,
        extended_key_usage: info.extended_key_usage,
        dns_names: info.dns_names,
        common_name: info.common_name,
    })
}

/// Uppercase hex of the serial's magnitude, as OpenSSL (and so nginx) prints it: DER puts a
/// 0x00 sign byte before a serial whose high bit is set, and that byte is not part of it.
fn serial_hex(raw: &[u8]) -> String {
    let first = raw
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode_upper(&raw[first..])
}

struct PartialInfo {
    subject: String,
    issuer: String,
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
    extended_key_usage: Option<ExtendedKeyUsage>,
    dns_names: Vec<String>,
    common_name: Option<String>,
}

fn parse_borrowed(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertError::Malformed(
            "trailing bytes after the certificate".into(),
        )),
        Err(e) => Err(CertError::Malformed(e.to_string())),
    }
}

/// A certificate's key as a DER SubjectPublicKeyInfo.
pub fn public_key_der(der: &[u8]) -> Result<Vec<u8>, CertError> {
    Ok(parse_borrowed(der)?.public_key().raw.to_vec())
}

/// True when `child` names `issuer` as its issuer and `issuer`'s key verifies its signature.
pub fn is_issued_by(child_der: &[u8], issuer_der: &[u8]) -> bool {
    match (parse_borrowed(child_der), parse_borrowed(issuer_der)) {
        (Ok(child), Ok(issuer)) => signed_by(&child, &issuer),
        _ => false,
    }
}

fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

fn is_ca_cert(cert: &X509Certificate<'_>) -> bool {
    cert.is_ca()
        || (cert.version() == X509Version::V1 && cert.subject().as_raw() == cert.issuer().as_raw())
}

/// Outcome of building a path from a presented leaf to a stored CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOutcome {
    /// The stored CA at the top of the path, and the leaf's validity in unix seconds.
    Trusted {
        ca_id: CaId,
        not_before: i64,
        not_after: i64,
        client_auth: bool,
        /// The leaf's serial, to check against the CA's revocation list.
        serial: String,
    },
    Untrusted,
    Malformed,
}

/// Builds a signature path from `leaf_der` through `presented` intermediates (which must be
/// CAs themselves) to one of `stored` (id, DER). Presented certificates are never trusted on
/// their own: only a stored CA ends a path.
pub fn find_path(
    leaf_der: &[u8],
    presented: &[Vec<u8>],
    stored: &[(CaId, Vec<u8>)],
) -> PathOutcome {
    let Ok(leaf) = parse_borrowed(leaf_der) else {
        return PathOutcome::Malformed;
    };
    let Ok(leaf_info) = parse(leaf_der.to_vec()) else {
        return PathOutcome::Malformed;
    };
    let stored: Vec<(CaId, X509Certificate<'_>)> = stored
        .iter()
        .filter_map(|(id, der)| parse_borrowed(der).ok().map(|cert| (*id, cert)))
        .collect();
    let intermediates: Vec<X509Certificate<'_>> = presented
        .iter()
        .filter_map(|der| parse_borrowed(der).ok())
        .filter(is_ca_cert)
        .collect();
    let mut current = &leaf;
    for _ in 0..MAX_CHAIN_DEPTH {
        if let Some((ca_id, _)) = stored.iter().find(|(_, ca)| signed_by(current, ca)) {
            return PathOutcome::Trusted {
                ca_id: *ca_id,
                not_before: leaf_info.not_before.unix_timestamp(),
                not_after: leaf_info.not_after.unix_timestamp(),
                client_auth: leaf_info.allows_client_auth(),
                serial: leaf_info.serial.clone(),
            };
        }
        match intermediates
            .iter()
            .find(|next| !std::ptr::eq(*next, current) && signed_by(current, next))
        {
            Some(next) => current = next,
            None => break,
        }
    }
    PathOutcome::Untrusted
}

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

/// A PKCS#10 certificate signing request whose signature, made with the key it carries,
/// checked out: its holder has that private key.
#[derive(Debug, Clone)]
pub struct SigningRequest {
    /// The requested key as a DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
}

/// Why a certificate signing request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the request is larger than {MAX_PEM_BYTES} bytes")]
    TooLarge,
    #[error("expected one PEM `CERTIFICATE REQUEST` block")]
    NotPem,
    #[error("the request does not parse as PKCS#10: {0}")]
    Malformed(String),
    #[error("the request's signature does not verify with the key it carries")]
    BadSignature,
}

/// Parses a PEM PKCS#10 request and checks its self-signature.
pub fn signing_request(text: &str) -> Result<SigningRequest, CsrError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(CsrError::TooLarge);
    }
    let block = match pem::parse_many(text).as_deref() {
        Ok([block])
            if matches!(
                block.tag(),
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
            ) =>
        {
            block.clone()
        }
        _ => return Err(CsrError::NotPem),
    };
    let request = match X509CertificationRequest::from_der(block.contents()) {
        Ok(([], request)) => request,
        Ok(_) => {
            return Err(CsrError::Malformed(
                "trailing bytes after the request".into(),
            ));
        }
        Err(e) => return Err(CsrError::Malformed(e.to_string())),
    };
    request
        .verify_signature()
        .map_err(|_| CsrError::BadSignature)?;
    Ok(SigningRequest {
        public_key_der: request.certification_request_info.subject_pki.raw.to_vec(),
    })
}

#[cfg(test)]
#[path = "x509_tests.rs"]
mod tests;
