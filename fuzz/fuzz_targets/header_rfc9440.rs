//! RFC 9440 `Client-Cert` and `Client-Cert-Chain` (RFC 8941 byte sequences `:base64:`).
//!
//! Input: a first byte choosing the headers present (`% 3`: Client-Cert alone, the chain
//! alone, both), then the value; for both, the first `\n` separates the two values.
#![no_main]

use certgate_core::proxy::{self, IdentityHeader, IdentityHeaders, MAX_IDENTITY_HEADER_BYTES};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

const CERT: IdentityHeader = IdentityHeader::Rfc9440ClientCert;
const CHAIN: IdentityHeader = IdentityHeader::Rfc9440ClientCertChain;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => one(CERT, rest),
        1 => one(CHAIN, rest),
        _ => {
            let (cert, chain) = match rest.iter().position(|&b| b == b'\n') {
                Some(newline) => (&rest[..newline], &rest[newline + 1..]),
                None => (rest, &[][..]),
            };
            both(cert, chain);
        }
    }
});

fn one(header: IdentityHeader, value: &[u8]) {
    let result = read_one(header, value);
    if header == CHAIN {
        return;
    }
    let Some((leaf, chain)) = certificate_ders(&result) else {
        return;
    };
    assert!(chain.is_empty(), "Client-Cert carries one certificate");
    let spelling = format!(":{}:", base64(&leaf));
    if spelling.len() <= MAX_IDENTITY_HEADER_BYTES {
        assert_eq!(
            certificate_ders(&read_one(CERT, spelling.as_bytes())),
            Some((leaf, chain))
        );
    }
}

fn both(cert: &[u8], chain: &[u8]) {
    // `client-cert` in the config enables the chain header too.
    let enabled = IdentityHeaders::parse("client-cert").expect("known name");
    assert!(enabled.enables(CHAIN));
    let result = proxy::read_headers(enabled, &[(CERT, cert), (CHAIN, chain)]);
    let alone = read_one(CERT, cert);
    let chain_alone = read_one(CHAIN, chain);
    match &result {
        Ok(presented) => {
            let presented = presented.as_ref().expect("headers were present");
            check_presented(presented);
            assert!(presented.fingerprints.is_empty());
            assert_eq!(presented.proxy_verified, None);
            // The leaf is Client-Cert's; the chain never makes one of its own.
            let leaf = certificate_ders(&alone).map(|(leaf, _)| leaf);
            assert_eq!(presented.certificate.as_ref().map(|c| c.der.to_vec()), leaf);
            assert!(chain_alone.is_ok());
            // Round trip of what was decoded.
            if let Some(found) = &presented.certificate {
                let cert_value = format!(":{}:", base64(&found.der));
                let chain_value = found
                    .chain
                    .iter()
                    .map(|der| format!(":{}:", base64(der)))
                    .collect::<Vec<_>>()
                    .join(", ");
                if cert_value.len().max(chain_value.len()) <= MAX_IDENTITY_HEADER_BYTES {
                    let again = proxy::read_headers(
                        enabled,
                        &[
                            (CERT, cert_value.as_bytes()),
                            (CHAIN, chain_value.as_bytes()),
                        ],
                    );
                    assert_eq!(summary(&again), Ok(Some(Summary::of(presented))));
                }
            }
        }
        Err(reason) => {
            assert_decoding_rejection(*reason);
            // Two values that each decode cannot disagree: the chain names no leaf.
            assert!(alone.is_err() || chain_alone.is_err(), "{reason:?}");
        }
    }
}
