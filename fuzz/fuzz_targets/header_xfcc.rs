//! `X-Forwarded-Client-Cert` (Envoy/Istio XFCC): the last element's `Cert`, `Chain` and
//! `Hash`.
#![no_main]

use certgate_core::domain::PresentedFingerprint;
use certgate_core::proxy::{IdentityHeader, MAX_IDENTITY_HEADER_BYTES};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

const XFCC: IdentityHeader = IdentityHeader::ForwardedClientCert;

fuzz_target!(|data: &[u8]| {
    let result = read_one(XFCC, data);
    let Some(text) = readable(data) else {
        return;
    };
    let Ok(Some(presented)) = &result else {
        return;
    };
    // XFCC `Hash` is SHA-256 only; a SHA-1 there is refused.
    assert!(presented.fingerprints.len() <= 1);
    assert!(
        presented
            .fingerprints
            .iter()
            .all(|fp| matches!(fp, PresentedFingerprint::Sha256(_)))
    );
    let found = Summary::of(presented);
    if found.leaf.is_none() && found.fingerprints.is_empty() {
        return;
    }
    // Only the last element (the nearest proxy's) counts: an earlier one, naming another
    // certificate, changes nothing.
    let earlier = format!(
        "By=spiffe://fuzz.test/proxy;Hash={};Cert=\"not a certificate\",",
        "0".repeat(64)
    );
    let prefixed = format!("{earlier}{text}");
    if prefixed.len() <= MAX_IDENTITY_HEADER_BYTES {
        assert_eq!(
            summary(&read_one(XFCC, prefixed.as_bytes())),
            Ok(Some(found.clone()))
        );
    }
    // Envoy's own spelling of what was decoded decodes to the same answer.
    if let Some(leaf) = &found.leaf {
        let mut element = format!(
            "Hash={};Cert=\"{}\"",
            hex(&sha256(leaf)),
            nginx_escape(&pem(leaf))
        );
        if !found.chain.is_empty() {
            let chain: String = found
                .chain
                .iter()
                .map(|der| nginx_escape(&pem(der)))
                .collect();
            element.push_str(&format!(";Chain=\"{chain}\""));
        }
        element.push_str(";Subject=\"CN=a,O=b\";URI=;DNS=a.example.test");
        if element.len() <= MAX_IDENTITY_HEADER_BYTES {
            assert_eq!(
                summary(&read_one(XFCC, element.as_bytes())),
                Ok(Some(found))
            );
        }
    }
});

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
