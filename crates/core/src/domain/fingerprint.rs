//! Certificate fingerprints: SHA-256 (canonical) and SHA-1 (what nginx sends), both over DER;
//! and a certificate's identity, its issuer and serial number.

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// SHA-256 of a certificate's DER bytes, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

/// SHA-1 of a certificate's DER bytes: nginx's `$ssl_client_fingerprint`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha1Fingerprint([u8; 20]);

/// SHA-256 of empty input: Caddy 2.11.2+ sends it when the client presented no certificate.
const SHA256_OF_NOTHING: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// True for the digest of empty input, which means "no certificate".
    pub fn is_of_nothing(&self) -> bool {
        self.0 == SHA256_OF_NOTHING
    }

    /// Parses the canonical `sha256:<hex>` spelling (also accepts bare hex).
    pub fn parse(text: &str) -> Option<Self> {
        match PresentedFingerprint::parse(text)? {
            PresentedFingerprint::Sha256(fp) => Some(fp),
            PresentedFingerprint::Sha1(_) => None,
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Sha1Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha1::digest(der).into())
    }

    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for Sha1Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha1Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha1:{}", hex::encode(self.0))
    }
}

/// A certificate's identity as RFC 5280 defines it: its issuer's name and its serial
/// number. A re-encoded certificate, or one whose ECDSA signature was turned into the other
/// valid one, has another fingerprint but the same identity. Kept as SHA-256 over the
/// issuer name's DER and the serial's magnitude, so each entry of the index is 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IssuerSerial([u8; 32]);

impl IssuerSerial {
    /// `issuer` is the issuer Name's DER (tag, length and value); `serial` the serial
    /// number's content octets, with or without the sign byte DER puts before a serial whose
    /// high bit is set (it is dropped, as the uppercase hex agents store drops it).
    pub fn of(issuer: &[u8], serial: &[u8]) -> Self {
        let magnitude = serial
            .iter()
            .position(|byte| *byte != 0)
            .map_or(&serial[serial.len().saturating_sub(1)..], |first| {
                &serial[first..]
            });
        let mut digest = Sha256::new();
        digest.update(
            u32::try_from(issuer.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        digest.update(issuer);
        digest.update(magnitude);
        Self(digest.finalize().into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits [`Display`](fmt::Display) writes.
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for IssuerSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for IssuerSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "issuer-serial:{}", hex::encode(self.0))
    }
}

/// A fingerprint as a proxy or an operator writes it; the algorithm follows from the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentedFingerprint {
    Sha256(Fingerprint),
    Sha1(Sha1Fingerprint),
}

impl PresentedFingerprint {
    /// Accepts `sha256:<hex>`, `sha1:<hex>`, bare hex, and colon-separated hex in either case.
    /// 64 hex digits are SHA-256, 40 are SHA-1; anything else is refused.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (declared, digits) = match text.split_once(':') {
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case("sha256") => (Some(32), rest),
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case("sha1") => (Some(20), rest),
            _ => (None, text),
        };
        let mut buffer = [0u8; 64];
        let digits = strip_colons(digits, &mut buffer)?;
        if declared.is_some_and(|len| len * 2 != digits.len()) {
            return None;
        }
        match digits.len() {
            64 => {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(digits, &mut bytes).ok()?;
                Some(Self::Sha256(Fingerprint(bytes)))
            }
            40 => {
                let mut bytes = [0u8; 20];
                hex::decode_to_slice(digits, &mut bytes).ok()?;
                Some(Self::Sha1(Sha1Fingerprint(bytes)))
            }
            _ => None,
        }
    }

    /// Does this fingerprint name the certificate whose digests are given?
    pub fn matches(&self, sha256: &Fingerprint, sha1: &Sha1Fingerprint) -> bool {
        match self {
            Self::Sha256(fp) => fp == sha256,
            Self::Sha1(fp) => fp == sha1,
        }
    }
}

/// `AA:BB:CC` → `AABBCC` in `buffer` (verify parses one per request: no allocation);
/// refuses a mix of separated and run-together digits and anything longer than a SHA-256.
/// Digits without colons are handed back as they are.
fn strip_colons<'a>(text: &'a str, buffer: &'a mut [u8; 64]) -> Option<&'a [u8]> {
    if !text.contains(':') {
        return Some(text.as_bytes());
    }
    let mut len = 0;
    for pair in text.split(':') {
        if pair.len() != 2 {
            return None;
        }
        buffer
            .get_mut(len..len + 2)?
            .copy_from_slice(pair.as_bytes());
        len += 2;
    }
    buffer.get(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_HEX: &str = "e370a13916749386369cdf14ce3e516412baa31f1c3bc2e07ca83a2e05a3ed62";
    const SHA1_HEX: &str = "e9a63c4a329eabd9fd9fa7ddd06e36eb4d592f41";

    #[test]
    fn every_sha256_spelling_parses_to_the_same_value() {
        let canonical = PresentedFingerprint::parse(&format!("sha256:{SHA256_HEX}")).unwrap();
        let openssl = "E3:70:A1:39:16:74:93:86:36:9C:DF:14:CE:3E:51:64:12:BA:A3:1F:1C:3B:C2:E0:7C:A8:3A:2E:05:A3:ED:62";
        for spelling in [
            SHA256_HEX.to_owned(),
            SHA256_HEX.to_uppercase(),
            openssl.to_owned(),
            openssl.to_lowercase(),
            format!("SHA256:{openssl}"),
            format!("  sha256:{SHA256_HEX} "),
        ] {
            assert_eq!(
                PresentedFingerprint::parse(&spelling),
                Some(canonical),
                "{spelling}"
            );
        }
        let PresentedFingerprint::Sha256(fp) = canonical else {
            panic!("expected sha256")
        };
        assert_eq!(fp.to_string(), format!("sha256:{SHA256_HEX}"));
    }

    #[test]
    fn forty_hex_digits_are_sha1_as_nginx_and_haproxy_send_them() {
        let nginx = PresentedFingerprint::parse(SHA1_HEX).unwrap();
        let haproxy = PresentedFingerprint::parse(&SHA1_HEX.to_uppercase()).unwrap();
        let openssl = PresentedFingerprint::parse(
            "E9:A6:3C:4A:32:9E:AB:D9:FD:9F:A7:DD:D0:6E:36:EB:4D:59:2F:41",
        )
        .unwrap();
        assert!(matches!(nginx, PresentedFingerprint::Sha1(_)));
        assert_eq!(nginx, haproxy);
        assert_eq!(nginx, openssl);
    }

    #[test]
    fn malformed_spellings_are_refused() {
        for bad in [
            "",
            "sha256:",
            "abc",
            &SHA256_HEX[..63],
            &format!("{SHA256_HEX}00"),
            &format!("sha1:{SHA256_HEX}"),
            &format!("sha256:{SHA1_HEX}"),
            "E3:70A1",
            "zz70a13916749386369cdf14ce3e516412baa31f1c3bc2e07ca83a2e05a3ed62",
            "md5:e9a63c4a329eabd9fd9fa7ddd06e36eb",
        ] {
            assert_eq!(PresentedFingerprint::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests_over_der_match_openssl() {
        assert_eq!(
            Fingerprint::of_der(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Fingerprint::of_der(b"").is_of_nothing());
        assert_eq!(
            Sha1Fingerprint::of_der(b"abc").to_string(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(bytes in proptest::array::uniform32(proptest::num::u8::ANY)) {
            let fp = Fingerprint::from_bytes(bytes);
            proptest::prop_assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = PresentedFingerprint::parse(&text);
        }
    }
}
