//! Certificate uploads: `x509::pem_certificates` and `x509::single_pem_certificate`.
#![no_main]

use certgate_core::x509::{self, CertError, MAX_PEM_BYTES};
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let all = x509::pem_certificates(text);
    let single = x509::single_pem_certificate(text);
    if text.len() > MAX_PEM_BYTES {
        assert_eq!(all.as_ref().err(), Some(&CertError::TooLarge));
    }
    match &all {
        Ok(ders) => {
            assert!(!ders.is_empty());
            // Our own PEM of the blocks found reads back to the same blocks.
            let again: String = ders.iter().map(|der| pem(der)).collect();
            if again.len() <= MAX_PEM_BYTES {
                assert_eq!(x509::pem_certificates(&again).as_ref(), Ok(ders));
            }
            match &single {
                Ok(info) => {
                    assert_eq!(ders.len(), 1);
                    assert_eq!(info.der, ders[0]);
                    check_certificate_info(info);
                }
                Err(CertError::MultipleCertificates(n)) => {
                    assert_eq!(*n, ders.len());
                    assert_ne!(*n, 1);
                }
                Err(CertError::Malformed(_)) => {
                    assert_eq!(ders.len(), 1);
                    assert!(x509::parse(ders[0].clone()).is_err());
                }
                Err(other) => panic!("PEM read, yet {other:?}"),
            }
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    CertError::TooLarge
                        | CertError::NotPem
                        | CertError::PrivateKey
                        | CertError::NotACertificate(_)
                ),
                "{e:?}"
            );
            assert_eq!(single.as_ref().err(), Some(e));
        }
    }
});
