//! What proxies send, decoded: one function per header format, and the rules that turn the
//! enabled headers of one request into a single consistent [`Presented`] identity.
//!
//! Formats (see the proxy recipes): nginx `$ssl_client_escaped_cert` (percent-encoded PEM),
//! Caddy `certificate_der_base64`, Traefik passTLSClientCert `pem: true`, Envoy XFCC,
//! RFC 9440 `Client-Cert`, and fingerprints in every common spelling; the seed's JSON body
//! (`body`) and the client's address (`client_ip`).

mod body;
mod client_ip;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{Engine, alphabet};

pub use body::identity_from_body;
pub use client_ip::client_ip;

use crate::domain::PresentedFingerprint;
use crate::domain::verify::{Presented, PresentedCertificate, Rejection};

/// Identity headers larger than this are refused as `malformed_request`.
pub const MAX_IDENTITY_HEADER_BYTES: usize = 16 * 1024;
/// Certificates after the leaf that are looked at; the rest are ignored.
const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Every identity header certgate knows, with the config spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityHeader {
    ClientCert,
    ForwardedTlsClientCert,
    ForwardedClientCert,
    Rfc9440ClientCert,
    Rfc9440ClientCertChain,
    ClientCertFingerprint,
    ClientVerify,
}

impl IdentityHeader {
    pub const ALL: [IdentityHeader; 7] = [
        Self::ClientCert,
        Self::ForwardedTlsClientCert,
        Self::ForwardedClientCert,
        Self::Rfc9440ClientCert,
        Self::Rfc9440ClientCertChain,
        Self::ClientCertFingerprint,
        Self::ClientVerify,
    ];

    /// The header name, lower case (as HTTP/2 and actix's header maps spell it).
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientCert => "x-client-cert",
            Self::ForwardedTlsClientCert => "x-forwarded-tls-client-cert",
            Self::ForwardedClientCert => "x-forwarded-client-cert",
            Self::Rfc9440ClientCert => "client-cert",
            Self::Rfc9440ClientCertChain => "client-cert-chain",
            Self::ClientCertFingerprint => "x-client-cert-fingerprint",
            Self::ClientVerify => "x-client-verify",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Whether the header can carry a whole certificate (not only a fingerprint).
    pub fn carries_certificate(self) -> bool {
        !matches!(self, Self::ClientCertFingerprint | Self::ClientVerify)
    }

    /// Position in [`IdentityHeader::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The set of header names certgate believes (`CERTGATE_IDENTITY_HEADERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityHeaders(u8);

impl IdentityHeaders {
    /// Comma-separated names, case-insensitive; `*` enables all. Unknown names are an error,
    /// also next to `*`: a typo must stop start-up, not hide behind the wildcard.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bits = 0u8;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                bits |= Self::all().0;
                continue;
            }
            let header = IdentityHeader::ALL
                .into_iter()
                .find(|h| h.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "unknown identity header `{name}`; known: {}",
                        IdentityHeader::ALL.map(IdentityHeader::name).join(", ")
                    )
                })?;
            bits |= header.bit();
            if header == IdentityHeader::Rfc9440ClientCert {
                bits |= IdentityHeader::Rfc9440ClientCertChain.bit();
            }
        }
        Ok(Self(bits))
    }

    pub fn all() -> Self {
        Self(IdentityHeader::ALL.iter().fold(0, |bits, h| bits | h.bit()))
    }

    pub fn enables(self, header: IdentityHeader) -> bool {
        self.0 & header.bit() != 0
    }

    pub fn enabled(self) -> impl Iterator<Item = IdentityHeader> {
        IdentityHeader::ALL
            .into_iter()
            .filter(move |h| self.enables(*h))
    }
}

/// Reads the identity header values present in a request, as (header, value) pairs in the
/// order of [`IdentityHeaders::enabled`]; values of headers `enabled` does not list are
/// ignored.
///
/// `Ok(None)`: no enabled identity header is present at all (the JSON body may be read).
/// `Ok(Some(_))`: headers were present; the result may still hold no certificate.
pub fn read_headers(
    enabled: IdentityHeaders,
    present: &[(IdentityHeader, &[u8])],
) -> Result<Option<Presented>, Rejection> {
    let mut collector = Collector::default();
    let mut any_present = false;
    for &(header, raw) in present {
        if !enabled.enables(header) {
            continue;
        }
        any_present = true;
        if raw.len() > MAX_IDENTITY_HEADER_BYTES {
            return Err(Rejection::MalformedRequest);
        }
        let text = std::str::from_utf8(raw).map_err(|_| Rejection::MalformedRequest)?;
        let text = text.trim();
        if means_no_certificate(text) {
            continue;
        }
        match header {
            IdentityHeader::ClientCert => collector.certificate(decode_client_cert(text)?)?,
            IdentityHeader::ForwardedTlsClientCert => {
                collector.certificate(decode_traefik(text)?)?
            }
            IdentityHeader::ForwardedClientCert => decode_xfcc(text, &mut collector)?,
            IdentityHeader::Rfc9440ClientCert => {
                collector.certificate(vec![decode_sf_binary(text)?])?
            }
            IdentityHeader::Rfc9440ClientCertChain => {
                collector.chain.extend(decode_sf_binary_list(text)?)
            }
            IdentityHeader::ClientCertFingerprint => {
                collector.fingerprint(decode_fingerprint(text)?)?
            }
            IdentityHeader::ClientVerify => {
                // Several values: any one that is not SUCCESS wins (fail closed).
                let success = text.eq_ignore_ascii_case("SUCCESS");
                collector.proxy_verified =
                    Some(collector.proxy_verified.unwrap_or(true) && success);
            }
        }
    }
    if !any_present {
        return Ok(None);
    }
    collector.finish().map(Some)
}

/// The seed's JSON form: `{"certificate": "PEM"}` and/or `{"fingerprint": "…"}`.
pub fn read_body(
    certificate: Option<&str>,
    fingerprint: Option<&str>,
) -> Result<Presented, Rejection> {
    let mut collector = Collector::default();
    if let Some(text) = certificate
        .map(str::trim)
        .filter(|t| !means_no_certificate(t))
    {
        collector.certificate(decode_client_cert(text)?)?;
    }
    if let Some(text) = fingerprint
        .map(str::trim)
        .filter(|t| !means_no_certificate(t))
    {
        collector.fingerprint(decode_fingerprint(text)?)?;
    }
    collector.finish()
}

/// Empty values and unexpanded placeholders (Caddy 2.6 sends `{http.request.tls.client.…}`
/// literally when the client sent no certificate) mean "no certificate".
fn means_no_certificate(text: &str) -> bool {
    text.is_empty()
        || (text.starts_with('{') && text.ends_with('}'))
        || text.eq_ignore_ascii_case("(null)")
        || text == "-"
}

#[derive(Default)]
struct Collector {
    leaf: Option<Vec<u8>>,
    chain: Vec<Vec<u8>>,
    fingerprints: Vec<PresentedFingerprint>,
    proxy_verified: Option<bool>,
}

impl Collector {
    /// Leaf first, then any chain. A second, different leaf is a mismatch.
    fn certificate(&mut self, mut ders: Vec<Vec<u8>>) -> Result<(), Rejection> {
        if ders.is_empty() {
            return Ok(());
        }
        let leaf = ders.remove(0);
        match &self.leaf {
            Some(existing) if *existing != leaf => return Err(Rejection::FingerprintMismatch),
            Some(_) => {}
            None => self.leaf = Some(leaf),
        }
        self.chain.extend(ders);
        Ok(())
    }

    /// Two different fingerprints of one algorithm name two certificates: a mismatch.
    fn fingerprint(&mut self, fingerprint: Option<PresentedFingerprint>) -> Result<(), Rejection> {
        let Some(fp) = fingerprint else {
            return Ok(());
        };
        if self.fingerprints.contains(&fp) {
            return Ok(());
        }
        let same_algorithm = |other: &PresentedFingerprint| {
            std::mem::discriminant(other) == std::mem::discriminant(&fp)
        };
        if self.fingerprints.iter().any(same_algorithm) {
            return Err(Rejection::FingerprintMismatch);
        }
        self.fingerprints.push(fp);
        Ok(())
    }

    fn finish(mut self) -> Result<Presented, Rejection> {
        let certificate = self.leaf.take().map(|leaf| {
            self.chain.retain(|der| *der != leaf);
            self.chain.truncate(MAX_CHAIN_CERTIFICATES);
            PresentedCertificate::new(leaf, self.chain)
        });
        if let Some(cert) = &certificate {
            if !self.fingerprints.is_empty()
                && self
                    .fingerprints
                    .iter()
                    .any(|fp| !fp.matches(&cert.fingerprint, &cert.sha1()))
            {
                return Err(Rejection::FingerprintMismatch);
            }
            self.fingerprints.clear();
        }
        Ok(Presented {
            certificate,
            fingerprints: self.fingerprints,
            proxy_verified: self.proxy_verified,
        })
    }
}

fn decode_fingerprint(text: &str) -> Result<Option<PresentedFingerprint>, Rejection> {
    match PresentedFingerprint::parse(text) {
        Some(PresentedFingerprint::Sha256(fp)) if fp.is_of_nothing() => Ok(None),
        Some(fp) => Ok(Some(fp)),
        None => Err(Rejection::MalformedRequest),
    }
}

/// `X-Client-Cert`: percent-encoded PEM (nginx), plain PEM with line breaks replaced by
/// spaces or removed, or standard base64 DER (Caddy). A PEM may carry a chain after the leaf.
pub fn decode_client_cert(text: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    let compact = unescaped_compact(text)?;
    // Base64 has no `-`: any dash means PEM armour.
    if compact.contains(&b'-') {
        return decode_compact_pem(&compact);
    }
    decode_base64(&compact).map(|der| vec![der])
}

/// Traefik passTLSClientCert `pem: true`: base64 DER per certificate, joined by `,`, leaf
/// first; before v2.9.2 each was also percent-encoded.
pub fn decode_traefik(text: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .take(MAX_CHAIN_CERTIFICATES + 1)
        .map(|part| decode_base64(&unescaped_compact(part)?))
        .collect()
}

/// Envoy/Istio `X-Forwarded-Client-Cert`: only the last element (the nearest proxy's)
/// counts; its `Cert` gives the certificate and `Chain` the rest, else `Hash` a SHA-256.
fn decode_xfcc(text: &str, collector: &mut Collector) -> Result<(), Rejection> {
    let element = split_unquoted(text, ',')
        .into_iter()
        .rev()
        .find(|e| !e.trim().is_empty())
        .unwrap_or_default();
    let mut cert = None;
    let mut chain = None;
    let mut hash = None;
    for pair in split_unquoted(element, ';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "cert" if !value.is_empty() => cert = Some(value),
            "chain" if !value.is_empty() => chain = Some(value),
            "hash" if !value.is_empty() => hash = Some(value),
            _ => {}
        }
    }
    if let Some(cert) = cert {
        let mut ders = decode_compact_pem(&unescaped_compact(&cert)?)?;
        if let Some(chain) = chain {
            ders.extend(decode_compact_pem(&unescaped_compact(&chain)?)?);
        }
        collector.certificate(ders)?;
    }
    if let Some(hash) = hash {
        match decode_fingerprint(&hash)? {
            Some(PresentedFingerprint::Sha1(_)) => return Err(Rejection::MalformedRequest),
            sha256_or_nothing => collector.fingerprint(sha256_or_nothing)?,
        }
    }
    Ok(())
}

/// RFC 9440 / RFC 8941 byte sequence `:base64:`.
fn decode_sf_binary(text: &str) -> Result<Vec<u8>, Rejection> {
    let inner = text
        .trim()
        .strip_prefix(':')
        .and_then(|t| t.strip_suffix(':'))
        .ok_or(Rejection::MalformedRequest)?;
    decode_base64(inner.as_bytes())
}

fn decode_sf_binary_list(text: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .take(MAX_CHAIN_CERTIFICATES)
        .map(decode_sf_binary)
        .collect()
}

/// Percent-decodes and drops ASCII whitespace in one pass, leaving PEM armour and base64
/// contiguous whatever the proxy did to line breaks. `+` stays `+`: it is base64 data, not a
/// space. A `%` not followed by two hex digits stays as it is (and base64 then refuses it).
/// Percent-encoded bytes that are not UTF-8 are a malformed request.
///
/// Written out rather than chaining a percent-decoding iterator and a filter: this runs on
/// every full-certificate verify over ~1.8 KB, and copying the runs between escapes in bulk
/// is several times faster than going byte by byte through two adapters.
fn unescaped_compact(text: &str) -> Result<Vec<u8>, Rejection> {
    let mut rest = text.as_bytes();
    let mut compact = Vec::with_capacity(rest.len());
    while let Some(special) = rest
        .iter()
        .position(|&b| b == b'%' || b.is_ascii_whitespace())
    {
        compact.extend_from_slice(&rest[..special]);
        rest = &rest[special..];
        let escaped = match rest {
            [b'%', high, low, ..] => hex_digit(*high).zip(hex_digit(*low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                let byte = high << 4 | low;
                if !byte.is_ascii_whitespace() {
                    compact.push(byte);
                }
                rest = &rest[3..];
            }
            None => {
                if rest[0] == b'%' {
                    compact.push(b'%');
                }
                rest = &rest[1..];
            }
        }
    }
    compact.extend_from_slice(rest);
    if !compact.is_ascii() && std::str::from_utf8(&compact).is_err() {
        return Err(Rejection::MalformedRequest);
    }
    Ok(compact)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Every `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` block of a PEM without
/// whitespace (see [`unescaped_compact`]), in order. Text before an armour line is ignored;
/// armour of anything but a certificate is refused.
fn decode_compact_pem(compact: &[u8]) -> Result<Vec<Vec<u8>>, Rejection> {
    const BEGIN: &[u8] = b"-----BEGINCERTIFICATE-----";
    const END: &[u8] = b"-----ENDCERTIFICATE-----";
    let mut ders = Vec::new();
    let mut rest = compact;
    while let Some(dash) = rest.iter().position(|&b| b == b'-') {
        let armour = &rest[dash..];
        if !armour.starts_with(b"-----BEGIN") {
            rest = &armour[1..];
            continue;
        }
        let body = armour
            .strip_prefix(BEGIN)
            .ok_or(Rejection::MalformedCertificate)?;
        // The base64 body runs to the next dash, which must open the END line.
        let end = body
            .iter()
            .position(|&b| b == b'-')
            .ok_or(Rejection::MalformedCertificate)?;
        if !body[end..].starts_with(END) {
            return Err(Rejection::MalformedCertificate);
        }
        ders.push(decode_base64(&body[..end])?);
        rest = &body[end + END.len()..];
        if ders.len() > MAX_CHAIN_CERTIFICATES {
            break;
        }
    }
    if ders.is_empty() {
        return Err(Rejection::MalformedCertificate);
    }
    Ok(ders)
}

/// Standard base64 alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 without whitespace, padding optional.
fn decode_base64(compact: &[u8]) -> Result<Vec<u8>, Rejection> {
    let der = BASE64
        .decode(compact)
        .map_err(|_| Rejection::MalformedCertificate)?;
    if der.is_empty() {
        return Err(Rejection::MalformedCertificate);
    }
    Ok(der)
}

/// Splits on `sep` outside double quotes (XFCC `Subject="CN=a,O=b"` holds commas).
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

/// The fingerprint to write in logs: SHA-256 when known, else what the proxy sent.
pub fn describe(presented: &Presented) -> Option<String> {
    presented
        .certificate
        .as_ref()
        .map(|c| c.fingerprint.to_string())
        .or_else(|| {
            presented.fingerprints.first().map(|fp| match fp {
                PresentedFingerprint::Sha256(fp) => fp.to_string(),
                PresentedFingerprint::Sha1(fp) => format!("sha1:{fp}"),
            })
        })
}

#[cfg(test)]
mod tests;
