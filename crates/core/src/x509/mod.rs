//! The only module that names x509-parser and rustls-webpki types: it turns DER into owned
//! [`CertificateInfo`] values, validates certification paths (`path`), and reads CRLs and
//! signing requests.

mod ca;
mod canonical;
mod crl;
mod csr;
mod path;
mod strength;

pub use ca::{CaRefusal, check_ca_certificate};
pub use canonical::is_der_certificate;
pub use crl::{CrlError, RevocationList, revocation_list};
pub use csr::{CsrError, SigningRequest, signing_request};
pub use path::{Anchors, Judgement, MAX_INTERMEDIATES, PathError, ValidPath, validate};

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Version;

use crate::domain::{Fingerprint, IssuerSerial, Sha1Fingerprint};

/// Largest PEM text accepted for one certificate upload.
pub const MAX_PEM_BYTES: usize = 50 * 1024;

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
    /// The issuer and serial number: what the certificate is, whatever its encoding.
    pub issuer_serial: IssuerSerial,
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
    let info = partial_info(&parse_borrowed(&der)?)?;
    let issuer_serial =
        issuer_serial(&der).ok_or_else(|| CertError::Malformed("no issuer or serial".into()))?;
    Ok(CertificateInfo {
        issuer_serial,
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
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let first = raw
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode_upper(&raw[first..])
}

/// What certgate reads of a certificate beyond its bytes. Every extension x509-parser knows
/// must parse, whether certgate reads it or not: a value of the wrong type is no value.
pub(crate) fn partial_info(cert: &X509Certificate<'_>) -> Result<PartialInfo, CertError> {
    if let Some(error) = cert
        .extensions()
        .iter()
        .find_map(|extension| extension.parsed_extension().error())
    {
        return Err(CertError::Malformed(format!(
            "an extension does not parse: {error}"
        )));
    }
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
    Ok(PartialInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: serial_hex(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        is_ca: basic_ca || self_signed_v1,
        extended_key_usage,
        dns_names,
        common_name,
    })
}

pub(crate) struct PartialInfo {
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

pub(crate) fn parse_borrowed(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
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

/// The certificate's issuer and serial number; `None` when the bytes do not hold a
/// certificate's first fields. Read leniently (BER), so that every encoding of one
/// certificate names the same identity.
pub fn issuer_serial(certificate: &[u8]) -> Option<IssuerSerial> {
    let fields = leading_fields(certificate)?;
    Some(IssuerSerial::of(fields.issuer, fields.serial))
}

/// The (issuer, serial) a certificate issued by `ca_der` with `serial` (uppercase hex, as
/// agents store it) carries: the issuer name of a certificate is its CA's subject name.
pub fn issuer_serial_under(ca_der: &[u8], serial: &str) -> Option<IssuerSerial> {
    let fields = leading_fields(ca_der)?;
    let serial = hex::decode(serial).ok()?;
    Some(IssuerSerial::of(fields.subject, &serial))
}

/// The first fields of a certificate, as the bytes they occupy in it.
struct LeadingFields<'a> {
    /// The serial number's content octets.
    serial: &'a [u8],
    /// The issuer Name: tag, length and value.
    issuer: &'a [u8],
    /// The subject Name: tag, length and value.
    subject: &'a [u8],
}

/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity, subject, … }, … }`, read without parsing the
/// rest (the identity lookup runs this on every verify of a certificate that is not
/// enrolled).
fn leading_fields(bytes: &[u8]) -> Option<LeadingFields<'_>> {
    use x509_parser::der_parser::asn1_rs::{Any, Class, FromBer, Tag};
    /// The next element and the bytes it occupies.
    fn next<'a>(input: &mut &'a [u8]) -> Option<(Any<'a>, &'a [u8])> {
        let (rest, any) = Any::from_ber(input).ok()?;
        let raw = input.get(..input.len() - rest.len())?;
        *input = rest;
        Some((any, raw))
    }
    let (certificate, _) = next(&mut &bytes[..])?;
    let mut outer = certificate.data;
    let (tbs, _) = next(&mut outer)?;
    let mut fields = tbs.data;
    let (mut serial, _) = next(&mut fields)?;
    if serial.header.class() == Class::ContextSpecific && serial.tag() == Tag(0) {
        serial = next(&mut fields)?.0;
    }
    if serial.tag() != Tag::Integer {
        return None;
    }
    let _signature = next(&mut fields)?;
    let (_, issuer) = next(&mut fields)?;
    let _validity = next(&mut fields)?;
    let (_, subject) = next(&mut fields)?;
    Some(LeadingFields {
        serial: serial.data,
        issuer,
        subject,
    })
}

#[cfg(test)]
pub(crate) mod test_pki;

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
