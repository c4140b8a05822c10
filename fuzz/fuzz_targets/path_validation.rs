//! RFC 5280 path validation: a leaf and the certificates presented after it, judged against
//! one stored CA (`fixtures/crl_ca.der`, the root of the seed corpus's leaves).
//!
//! Input: `[count][u16 LE length][certificate]…`, the first certificate the leaf; at most 9.
#![no_main]

use std::sync::LazyLock;

use certgate_core::domain::CaId;
use certgate_core::x509::{self, Anchors};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

const CA_DER: &[u8] = include_bytes!("../fixtures/crl_ca.der");

static STORED: LazyLock<(CaId, Anchors)> = LazyLock::new(|| {
    let id = CaId::new_random();
    (id, Anchors::new([(id, CA_DER)]))
});

fuzz_target!(|data: &[u8]| {
    let certificates = certificates(data);
    let Some((leaf, chain)) = certificates.split_first() else {
        return;
    };
    let (id, anchors) = &*STORED;
    assert_eq!(anchors.len(), 1, "the fixture CA anchors paths");
    let judgement = x509::validate(leaf, chain, anchors, NOW);
    assert!(
        judgement.holds_at(NOW),
        "the outcome holds when it was reached"
    );
    // Deterministic: the same input, the same outcome.
    assert_eq!(x509::validate(leaf, chain, anchors, NOW), judgement);
    if let Ok(path) = &judgement.outcome {
        assert_eq!(path.ca_id, *id);
        // Only DER certificates are trusted, and a trusted leaf parses.
        assert!(x509::is_der_certificate(leaf));
        assert!(x509::parse(leaf.clone()).is_ok());
        assert!(x509::issuer_serial(leaf).is_some());
    }
});

fn certificates(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&count, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for _ in 0..usize::from(count % 10) {
        let (len, after) = match rest {
            [low, high, after @ ..] => (usize::from(u16::from_le_bytes([*low, *high])), after),
            _ => break,
        };
        let len = len.min(after.len());
        out.push(after[..len].to_vec());
        rest = &after[len..];
    }
    out
}
