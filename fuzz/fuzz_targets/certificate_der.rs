//! `x509::parse` on raw DER, and what certgate derives from a parsed certificate.
#![no_main]

use certgate_core::x509::{self, Anchors, CertError, PathError};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let no_cas = Anchors::default();
    let judgement = x509::validate(data, &[], &no_cas, NOW);
    assert!(judgement.holds_at(NOW));
    match x509::parse(data.to_vec()) {
        Ok(info) => {
            assert_eq!(info.der, data, "the DER kept is the DER given");
            check_certificate_info(&info);
            assert!(x509::public_key_der(data).is_ok());
            assert_eq!(x509::issuer_serial(data), Some(info.issuer_serial));
            // No CA stored: never trusted.
            assert!(judgement.outcome.is_err());
            let _ = info.preferred_hostname();
        }
        Err(e) => {
            assert!(matches!(e, CertError::Malformed(_)), "{e:?}");
            assert!(matches!(judgement.outcome, Err(PathError::Malformed(_))));
        }
    }
});
