//! `X-Forwarded-Tls-Client-Cert`: Traefik's base64 DER per certificate joined by `,`,
//! percent-encoded before v2.9.2.
#![no_main]

use certgate_core::proxy::{self, IdentityHeader};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = read_one(IdentityHeader::ForwardedTlsClientCert, data);
    let Some(text) = readable(data) else {
        return;
    };
    let Some((leaf, chain)) = certificate_ders(&result) else {
        return;
    };
    let ders = proxy::decode_traefik(text).expect("read_headers decoded it");
    assert!(ders.len() <= MAX_CHAIN + 1);
    assert_eq!(ders[0], leaf);
    assert_eq!(finished_chain(&leaf, &ders[1..]), chain);
    // Both Traefik spellings of what was decoded decode to the same bytes.
    let current: Vec<String> = ders.iter().map(|der| base64(der)).collect();
    let old: Vec<String> = current.iter().map(|b64| query_escape(b64)).collect();
    for spelling in [current.join(","), old.join(","), current.join(", ")] {
        assert_eq!(proxy::decode_traefik(&spelling).as_ref(), Ok(&ders));
    }
});
