//! The verify JSON body: `{"fingerprint": "…", "ip": "…"}` or `{"certificate": "PEM", …}`.
#![no_main]

use certgate_core::proxy::{self, identity_from_body};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let result = identity_from_body(data);
    if data.is_empty() {
        let (presented, ip) = result.expect("an empty body is no identity");
        assert!(Summary::of(&presented).is_nothing());
        assert_eq!(ip, None);
        return;
    }
    let (presented, ip) = match result {
        Ok(found) => found,
        Err(reason) => {
            assert_decoding_rejection(reason);
            return;
        }
    };
    check_presented(&presented);
    assert!(presented.fingerprints.len() <= 1);
    assert_eq!(presented.proxy_verified, None);
    // Read as plain JSON values, the fields give the same answer. (serde skips fields it
    // does not know without checking them: a body accepted here may still hold invalid
    // UTF-8 or an out-of-range number in an unknown field, which `Value` refuses.)
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let field = |name: &str, index: usize| -> Option<String> {
        match &value {
            Value::Object(map) => map.get(name).and_then(Value::as_str).map(str::to_owned),
            Value::Array(items) => items.get(index).and_then(Value::as_str).map(str::to_owned),
            other => panic!("accepted a body that is neither object nor array: {other}"),
        }
    };
    // Field order of `VerifyBody` (an array body is read by position).
    let fingerprint = field("fingerprint", 0);
    let certificate = field("certificate", 1);
    assert_eq!(field("ip", 2), ip);
    let expected = proxy::read_body(certificate.as_deref(), fingerprint.as_deref());
    assert_eq!(
        expected.as_ref().map(Summary::of).map_err(|r| *r),
        Ok(Summary::of(&presented))
    );
});
