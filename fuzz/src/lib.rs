//! Properties shared by the fuzz targets: what certgate's decoders guarantee about every
//! answer, checked with digests and encoders of our own rather than certgate's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certgate_core::domain::PresentedFingerprint;
use certgate_core::domain::verify::{Presented, Rejection};
use certgate_core::proxy::{self, IdentityHeader, IdentityHeaders, MAX_IDENTITY_HEADER_BYTES};
use certgate_core::x509::CertificateInfo;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The decision time of the targets that validate paths (2026-05-28), fixed so that a run
/// is reproducible.
pub const NOW: i64 = 1_780_000_000;

/// certgate looks at this many certificates after the leaf (`MAX_CHAIN_CERTIFICATES`).
pub const MAX_CHAIN: usize = 8;

pub type HeaderResult = Result<Option<Presented>, Rejection>;

/// An answer in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub leaf: Option<Vec<u8>>,
    pub chain: Vec<Vec<u8>>,
    pub fingerprints: Vec<PresentedFingerprint>,
    pub proxy_verified: Option<bool>,
}

impl Summary {
    pub fn of(presented: &Presented) -> Self {
        Self {
            leaf: presented.certificate.as_ref().map(|c| c.der.to_vec()),
            chain: presented
                .certificate
                .as_ref()
                .map(|c| c.chain.clone())
                .unwrap_or_default(),
            fingerprints: presented.fingerprints.clone(),
            proxy_verified: presented.proxy_verified,
        }
    }

    pub fn is_nothing(&self) -> bool {
        self.leaf.is_none() && self.fingerprints.is_empty() && self.proxy_verified.is_none()
    }
}

pub fn summary(result: &HeaderResult) -> Result<Option<Summary>, Rejection> {
    result
        .as_ref()
        .map(|presented| presented.as_ref().map(Summary::of))
        .map_err(|r| *r)
}

/// `proxy::means_no_certificate`, as documented: empty, `{placeholder}`, `(null)`, `-`.
pub fn means_no_certificate(text: &str) -> bool {
    text.is_empty()
        || (text.starts_with('{') && text.ends_with('}'))
        || text.eq_ignore_ascii_case("(null)")
        || text == "-"
}

/// The header value as `read_headers` reads it: UTF-8, within the size cap, trimmed.
pub fn readable(value: &[u8]) -> Option<&str> {
    if value.len() > MAX_IDENTITY_HEADER_BYTES {
        return None;
    }
    std::str::from_utf8(value).ok().map(str::trim)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// The only refusals header and body decoding can give.
pub fn assert_decoding_rejection(reason: Rejection) {
    assert!(
        matches!(
            reason,
            Rejection::MalformedRequest
                | Rejection::MalformedCertificate
                | Rejection::FingerprintMismatch
        ),
        "unexpected refusal from decoding: {reason:?}"
    );
}

/// What holds for every decoded identity, whatever header or body it came from.
pub fn check_presented(presented: &Presented) {
    if let Some(cert) = &presented.certificate {
        assert!(!cert.der.is_empty(), "an empty leaf was accepted");
        assert_eq!(
            cert.fingerprint.as_bytes(),
            &sha256(&cert.der),
            "the fingerprint is not SHA-256 of the DER"
        );
        assert_eq!(cert.sha1().as_bytes(), &sha1(&cert.der));
        assert_eq!(presented.sha256(), Some(cert.fingerprint));
        assert!(
            presented.fingerprints.is_empty(),
            "fingerprints left next to a certificate: {:?}",
            presented.fingerprints
        );
        assert!(
            cert.chain.len() <= MAX_CHAIN,
            "chain of {}",
            cert.chain.len()
        );
        for der in &cert.chain {
            assert!(!der.is_empty(), "an empty chain certificate was accepted");
            assert_ne!(**der, *cert.der, "the leaf is repeated in the chain");
        }
    } else {
        let fingerprints = &presented.fingerprints;
        assert!(fingerprints.len() <= 2, "{fingerprints:?}");
        for (i, a) in fingerprints.iter().enumerate() {
            if let PresentedFingerprint::Sha256(fp) = a {
                assert!(
                    !fp.is_of_nothing(),
                    "SHA-256 of nothing kept as a fingerprint"
                );
            }
            for b in &fingerprints[i + 1..] {
                assert!(
                    std::mem::discriminant(a) != std::mem::discriminant(b),
                    "two fingerprints of one algorithm: {fingerprints:?}"
                );
            }
        }
    }
}

/// The set holding `header` alone, by its config spelling.
pub fn only(header: IdentityHeader) -> IdentityHeaders {
    IdentityHeaders::parse(header.name()).expect("every header name parses")
}

/// `read_headers` with just `header` enabled and present once, plus what holds for any
/// single header value.
pub fn read_one(header: IdentityHeader, value: &[u8]) -> HeaderResult {
    let result = proxy::read_headers(only(header), &[(header, value)]);
    match &result {
        Ok(None) => panic!("a present, enabled header gave Ok(None)"),
        Ok(Some(presented)) => {
            check_presented(presented);
            let text = readable(value).expect("an unreadable value was accepted");
            if means_no_certificate(text) {
                assert!(
                    Summary::of(presented).is_nothing(),
                    "{text:?} means nothing"
                );
            }
            if header != IdentityHeader::ClientVerify {
                assert_eq!(presented.proxy_verified, None);
            }
            if !header.carries_certificate() || header == IdentityHeader::Rfc9440ClientCertChain {
                assert!(presented.certificate.is_none());
            }
            if !matches!(
                header,
                IdentityHeader::ClientCertFingerprint | IdentityHeader::ForwardedClientCert
            ) {
                assert!(presented.fingerprints.is_empty());
            }
        }
        Err(reason) => {
            assert_decoding_rejection(*reason);
            if let Some(text) = readable(value) {
                assert!(
                    !means_no_certificate(text),
                    "{text:?} means no certificate, yet was refused"
                );
            }
        }
    }
    if readable(value).is_none() {
        assert_eq!(result.as_ref().err(), Some(&Rejection::MalformedRequest));
    }
    result
}

/// The decoded leaf and chain of a result, when it holds a certificate.
pub fn certificate_ders(result: &HeaderResult) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let cert = result.as_ref().ok()?.as_ref()?.certificate.as_ref()?;
    Some((cert.der.to_vec(), cert.chain.clone()))
}

/// What `Collector::finish` makes of a leaf and the certificates after it.
pub fn finished_chain(leaf: &[u8], rest: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut chain: Vec<Vec<u8>> = rest.iter().filter(|d| **d != *leaf).cloned().collect();
    chain.truncate(MAX_CHAIN);
    chain
}

// ---------------------------------------------------------------- encoders, our own

pub fn base64(der: &[u8]) -> String {
    STANDARD.encode(der)
}

/// PEM with 64-character lines, LF line ends and a trailing LF.
pub fn pem(der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// nginx `$ssl_client_escaped_cert`: letters, digits and `-` kept, the rest `%XX`.
pub fn nginx_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Traefik before 2.9.2: `url.QueryEscape` of base64 (`+`, `/`, `=` escaped).
pub fn query_escape(b64: &str) -> String {
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// OpenSSL's `AA:BB:…` spelling.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What holds for every parsed certificate: digests over the DER it kept, a serial in
/// nginx's spelling, and a PEM that parses back to the same certificate.
pub fn check_certificate_info(info: &CertificateInfo) {
    assert_eq!(info.fingerprint.as_bytes(), &sha256(&info.der));
    assert_eq!(info.sha1.as_bytes(), &sha1(&info.der));
    assert!(
        info.serial.len().is_multiple_of(2),
        "serial {:?}",
        info.serial
    );
    assert!(
        info.serial
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "serial {:?}",
        info.serial
    );
    if info.der.len() <= 30 * 1024 {
        let again = certgate_core::x509::single_pem_certificate(&info.to_pem())
            .expect("certgate's own PEM of a parsed certificate parses");
        assert_eq!(again.der, info.der);
        assert_eq!(again.subject, info.subject);
        assert_eq!(again.serial, info.serial);
        assert_eq!(again.dns_names, info.dns_names);
        // The header decoder reads the same PEM to the same bytes.
        assert_eq!(
            proxy::decode_client_cert(&info.to_pem()).expect("PEM decodes as a header"),
            vec![info.der.clone()]
        );
    }
}
