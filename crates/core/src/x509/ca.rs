//! What a certificate may do as an issuer, and the rules for a CA certgate is asked to trust.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Version;

use super::canonical::is_der_certificate;
use super::strength::{weak_key, weak_signature};
use super::{CertificateInfo, parse_borrowed};

/// An issuer's limits, read from its certificate: what rustls-webpki checks on presented
/// intermediates itself, and certgate checks on the stored CA at the top of a path (webpki
/// takes a trust anchor to be a name and a key only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuerLimits {
    /// Unix seconds, both inclusive.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints CA:TRUE, or a self-signed v1 certificate (old roots).
    pub is_ca: bool,
    /// keyUsage is absent or includes keyCertSign.
    pub may_sign_certificates: bool,
    /// How many intermediates may follow below it (pathLenConstraint).
    pub path_len: Option<u32>,
    /// extendedKeyUsage is absent or includes clientAuth: EKUs nest down a path.
    pub allows_client_auth: bool,
    /// A key or signature [`super::strength`] calls weak.
    pub weak: bool,
}

impl IssuerLimits {
    /// `None` when an extension does not parse.
    pub fn of(certificate: &X509Certificate<'_>) -> Option<Self> {
        if certificate
            .extensions()
            .iter()
            .any(|extension| extension.parsed_extension().error().is_some())
        {
            return None;
        }
        let basic = certificate
            .basic_constraints()
            .ok()?
            .map(|ext| (ext.value.ca, ext.value.path_len_constraint));
        let self_signed_v1 = certificate.version() == X509Version::V1
            && certificate.subject().as_raw() == certificate.issuer().as_raw();
        let key_usage = certificate.key_usage().ok()?.map(|ext| *ext.value);
        let extended = certificate.extended_key_usage().ok()?;
        Some(Self {
            not_before: certificate.validity().not_before.timestamp(),
            not_after: certificate.validity().not_after.timestamp(),
            is_ca: basic.is_some_and(|(ca, _)| ca) || self_signed_v1,
            may_sign_certificates: key_usage.is_none_or(|usage| usage.key_cert_sign()),
            path_len: basic.and_then(|(_, path_len)| path_len),
            allows_client_auth: extended.is_none_or(|ext| ext.value.client_auth),
            weak: weak_key(certificate) || weak_signature(certificate),
        })
    }
}

/// Why a certificate cannot be trusted as a CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaRefusal {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("{0}")]
    NotACa(&'static str),
    #[error("the CA certificate has expired")]
    Expired,
    #[error("{0}")]
    WeakCrypto(&'static str),
}

/// The rules for a certificate to be stored as a trusted CA, at `now` (unix seconds): DER,
/// a CA allowed to sign certificates, not expired (one not valid yet may be staged), no key
/// or signature too weak to trust, no critical extension path validation does not know.
pub fn check_ca_certificate(info: &CertificateInfo, now: i64) -> Result<(), CaRefusal> {
    if !is_der_certificate(&info.der) {
        return Err(CaRefusal::Malformed(
            "the CA certificate is not DER (a non-canonical encoding)",
        ));
    }
    let certificate =
        parse_borrowed(&info.der).map_err(|_| CaRefusal::Malformed("does not parse"))?;
    let limits = IssuerLimits::of(&certificate).ok_or(CaRefusal::Malformed(
        "an extension of the CA certificate does not parse",
    ))?;
    if !limits.is_ca {
        return Err(CaRefusal::NotACa(
            "the certificate is not a CA (needs basicConstraints CA:TRUE, or a self-signed v1 root)",
        ));
    }
    if !limits.may_sign_certificates {
        return Err(CaRefusal::NotACa(
            "the CA certificate's keyUsage does not include keyCertSign",
        ));
    }
    if now > limits.not_after {
        return Err(CaRefusal::Expired);
    }
    if weak_key(&certificate) {
        return Err(CaRefusal::WeakCrypto(
            "the CA's key is too weak (RSA under 2048 bits, EC under 256 bits, or DSA)",
        ));
    }
    if weak_signature(&certificate) {
        return Err(CaRefusal::WeakCrypto(
            "the CA certificate is signed with SHA-1 or MD5",
        ));
    }
    let der = CertificateDer::from(info.der.as_slice());
    if certificate.version() != X509Version::V1 {
        match webpki::EndEntityCert::try_from(&der) {
            Ok(_) => {}
            Err(webpki::Error::UnsupportedCriticalExtension) => {
                return Err(CaRefusal::Malformed(
                    "the CA certificate has a critical extension certgate does not know",
                ));
            }
            Err(_) => return Err(CaRefusal::Malformed("the CA certificate does not parse")),
        }
    }
    webpki::anchor_from_trusted_cert(&der)
        .map(drop)
        .map_err(|_| CaRefusal::Malformed("the CA certificate cannot be a trust anchor"))
}
