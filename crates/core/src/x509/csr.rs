//! PKCS#10 certificate signing requests: how an agent asks for a certificate without its
//! key leaving the host.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::MAX_PEM_BYTES;

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
