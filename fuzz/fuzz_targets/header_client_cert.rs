//! `X-Client-Cert`: nginx percent-encoded PEM, PEM with spaces or without line breaks,
//! standard base64 DER (Caddy, HAProxy).
#![no_main]

use certgate_core::proxy::{self, IdentityHeader, MAX_IDENTITY_HEADER_BYTES};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = read_one(IdentityHeader::ClientCert, data);
    let Some(text) = readable(data) else {
        return;
    };
    match certificate_ders(&result) {
        None => {
            // Anything but a "no certificate" spelling either decodes or is refused.
            if result.is_ok() {
                assert!(means_no_certificate(text), "{text:?} gave no certificate");
            }
        }
        Some((leaf, chain)) => {
            // The header answer is the decoder's answer, finished.
            let ders = proxy::decode_client_cert(text).expect("read_headers decoded it");
            assert_eq!(ders[0], leaf);
            assert_eq!(finished_chain(&leaf, &ders[1..]), chain);
            // Every proxy spelling of what was decoded decodes to the same bytes.
            let all_pem: String = ders.iter().map(|der| pem(der)).collect();
            for spelling in [
                nginx_escape(&all_pem),
                all_pem.replace('\n', " "),
                all_pem.replace('\n', ""),
                all_pem.replace('\n', "\r\n"),
            ] {
                assert_eq!(proxy::decode_client_cert(&spelling).as_ref(), Ok(&ders));
            }
            for spelling in [base64(&leaf), query_escape(&base64(&leaf))] {
                assert_eq!(proxy::decode_client_cert(&spelling), Ok(vec![leaf.clone()]));
                if spelling.len() <= MAX_IDENTITY_HEADER_BYTES {
                    let again = read_one(IdentityHeader::ClientCert, spelling.as_bytes());
                    assert_eq!(certificate_ders(&again), Some((leaf.clone(), Vec::new())));
                }
            }
        }
    }
});
