//! Every identity header at once, as a request may carry them.
//!
//! Input: repeated `[header][length: u16 little-endian][value]`; the header byte picks from
//! `IdentityHeader::ALL` (`% 7`), a length past the end takes the rest. At most 16 pairs.
#![no_main]

use certgate_core::domain::PresentedFingerprint;
use certgate_core::proxy::{self, IdentityHeader, IdentityHeaders};
use certgate_core::proxy_memo;
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

const MAX_PAIRS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let present = pairs(data);
    let result = proxy::read_headers(IdentityHeaders::all(), &present);

    if present.is_empty() {
        assert!(matches!(result, Ok(None)));
        return;
    }
    // The per-thread memo answers exactly what a fresh decode does, hit or miss.
    for _ in 0..2 {
        assert_eq!(
            summary(&proxy_memo::read_headers(IdentityHeaders::all(), &present)),
            summary(&result)
        );
    }
    // The order of the headers changes nothing but the order of the chain.
    let reversed: Vec<_> = present.iter().rev().copied().collect();
    let other_order = proxy::read_headers(IdentityHeaders::all(), &reversed);
    assert_eq!(result.is_ok(), other_order.is_ok());
    if let (Ok(Some(a)), Ok(Some(b))) = (&result, &other_order) {
        let (a, b) = (Summary::of(a), Summary::of(b));
        assert_eq!(a.leaf, b.leaf);
        assert_eq!(a.proxy_verified, b.proxy_verified);
        assert_eq!(sorted(a.fingerprints), sorted(b.fingerprints));
    }

    let presented = match &result {
        Ok(Some(presented)) => presented,
        Ok(None) => panic!("headers were present, yet Ok(None)"),
        Err(reason) => {
            assert_decoding_rejection(*reason);
            return;
        }
    };
    check_presented(presented);
    let found = Summary::of(presented);
    let cert = presented.certificate.as_ref();

    let mut verified = None;
    let mut any_leaf = false;
    for &(header, value) in &present {
        // Each header read alone agrees with the whole.
        let alone = summary(&read_one(header, value))
            .expect("a header that decodes with the others decodes alone")
            .expect("present");
        if let Some(leaf) = &alone.leaf {
            assert_eq!(
                found.leaf.as_ref(),
                Some(leaf),
                "{header:?} named another leaf"
            );
            any_leaf = true;
        }
        for fp in &alone.fingerprints {
            match cert {
                // A certificate and a fingerprint that does not name it are never both
                // accepted.
                Some(cert) => assert!(
                    fp.matches(&cert.fingerprint, &cert.sha1()),
                    "{header:?} fingerprint {fp:?} does not name the certificate"
                ),
                None => assert!(found.fingerprints.contains(fp)),
            }
        }
        if header == IdentityHeader::ClientVerify {
            let text = readable(value).expect("accepted");
            if !means_no_certificate(text) {
                let success = text.eq_ignore_ascii_case("SUCCESS");
                verified = Some(verified.unwrap_or(true) && success);
            }
        }
    }
    // The leaf comes from some header, and X-Client-Verify fails closed: any value but
    // SUCCESS wins.
    assert_eq!(found.leaf.is_some(), any_leaf);
    assert_eq!(found.proxy_verified, verified);
});

fn pairs(mut data: &[u8]) -> Vec<(IdentityHeader, &[u8])> {
    let mut pairs = Vec::new();
    while let [selector, rest @ ..] = data {
        if pairs.len() == MAX_PAIRS {
            break;
        }
        let header = IdentityHeader::ALL[usize::from(*selector) % IdentityHeader::ALL.len()];
        let (len, rest) = match rest {
            [low, high, rest @ ..] => (usize::from(u16::from_le_bytes([*low, *high])), rest),
            _ => (rest.len(), rest),
        };
        let len = len.min(rest.len());
        pairs.push((header, &rest[..len]));
        data = &rest[len..];
    }
    pairs
}

fn sorted(mut fingerprints: Vec<PresentedFingerprint>) -> Vec<PresentedFingerprint> {
    fingerprints.sort_by_key(|fp| format!("{fp:?}"));
    fingerprints
}
