//! `x509::parse` on raw DER, and what certgate derives from a parsed certificate.
#![no_main]

use certgate::x509::{self, CertError, PathOutcome};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match x509::parse(data.to_vec()) {
        Ok(info) => {
            assert_eq!(info.der, data, "the DER kept is the DER given");
            check_certificate_info(&info);
            assert!(x509::public_key_der(data).is_ok());
            // No CA stored, no intermediates: a parsed leaf is untrusted, never malformed.
            assert_eq!(x509::find_path(data, &[], &[]), PathOutcome::Untrusted);
            let _ = info.allows_client_auth();
            let _ = info.preferred_hostname();
        }
        Err(e) => {
            assert!(matches!(e, CertError::Malformed(_)), "{e:?}");
            assert_eq!(x509::find_path(data, &[], &[]), PathOutcome::Malformed);
        }
    }
});
