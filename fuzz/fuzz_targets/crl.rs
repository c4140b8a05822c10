//! `x509::revocation_list`: a CRL upload (PEM or DER) checked against one fixed CA.
//!
//! The CA is a public certificate (`fixtures/crl_ca.der`, written by `examples/seeds.rs`
//! with the CRLs of the seed corpus; its key was never stored).
#![no_main]

use certgate_core::x509;
use libfuzzer_sys::fuzz_target;

const CA_DER: &[u8] = include_bytes!("../fixtures/crl_ca.der");

fuzz_target!(|data: &[u8]| {
    let Ok(list) = x509::revocation_list(data, CA_DER) else {
        return;
    };
    let is_pem = std::str::from_utf8(data).is_ok_and(|text| text.contains("-----BEGIN"));
    if !is_pem {
        assert_eq!(list.der, data, "a DER upload is kept as sent");
    }
    for serial in &list.serials {
        assert!(serial.len().is_multiple_of(2), "serial {serial:?}");
        assert!(
            serial
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "serial {serial:?}"
        );
    }
    // The DER kept is itself an acceptable upload, with the same content.
    let again = x509::revocation_list(&list.der, CA_DER).expect("the kept DER is accepted");
    assert_eq!(again.der, list.der);
    assert_eq!(again.serials, list.serials);
    assert_eq!(again.this_update, list.this_update);
    assert_eq!(again.next_update, list.next_update);
});
