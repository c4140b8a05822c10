//! The seed's JSON form of a verify call: `{"fingerprint": "…", "ip": "…"}` or
//! `{"certificate": "PEM", …}`.

use serde::Deserialize;

use super::read_body;
use crate::domain::verify::{Presented, Rejection};

#[derive(Deserialize)]
struct VerifyBody {
    fingerprint: Option<String>,
    certificate: Option<String>,
    ip: Option<String>,
}

/// The identity and the client address a JSON body names; an empty body names neither.
/// Anything but a JSON object of those fields is `malformed_request`.
pub fn identity_from_body(bytes: &[u8]) -> Result<(Presented, Option<String>), Rejection> {
    if bytes.is_empty() {
        return Ok((Presented::default(), None));
    }
    let body: VerifyBody =
        serde_json::from_slice(bytes).map_err(|_| Rejection::MalformedRequest)?;
    let presented = read_body(body.certificate.as_deref(), body.fingerprint.as_deref())?;
    Ok((presented, body.ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_bodies() {
        let (presented, ip) = identity_from_body(b"").unwrap();
        assert!(presented.certificate.is_none() && presented.fingerprints.is_empty());
        assert_eq!(ip, None);
        for junk in [&b"{"[..], b"[]", b"\"x\"", b"{\"fingerprint\": 5}", b"\xff"] {
            assert_eq!(
                identity_from_body(junk).err(),
                Some(Rejection::MalformedRequest),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_fingerprint_and_an_address() {
        let fingerprint = "ab".repeat(32);
        let body = format!(r#"{{"fingerprint": "sha256:{fingerprint}", "ip": "10.0.0.7"}}"#);
        let (presented, ip) = identity_from_body(body.as_bytes()).unwrap();
        assert_eq!(presented.fingerprints.len(), 1);
        assert_eq!(ip.as_deref(), Some("10.0.0.7"));
    }
}
