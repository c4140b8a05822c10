//! `x509::signing_request`: a PEM PKCS#10 request and its self-signature.
#![no_main]

use certgate_core::x509::{self, CsrError, MAX_PEM_BYTES};
use libfuzzer_sys::fuzz_target;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match x509::signing_request(text) {
        Ok(request) => {
            assert!(text.len() <= MAX_PEM_BYTES);
            // The key handed on is exactly one DER SubjectPublicKeyInfo.
            let parsed = SubjectPublicKeyInfo::from_der(&request.public_key_der);
            assert!(matches!(parsed, Ok(([], _))), "{parsed:?}");
        }
        Err(CsrError::TooLarge) => assert!(text.len() > MAX_PEM_BYTES),
        Err(_) => assert!(text.len() <= MAX_PEM_BYTES),
    }
});
