//! `X-Client-Cert-Fingerprint`: SHA-256 or SHA-1, bare hex, `sha256:`/`sha1:` prefixes,
//! OpenSSL's colon pairs, either case.
#![no_main]

use certgate_core::domain::PresentedFingerprint;
use certgate_core::domain::verify::Rejection;
use certgate_core::proxy::IdentityHeader;
use certgate_fuzz::*;
use libfuzzer_sys::fuzz_target;

const HEADER: IdentityHeader = IdentityHeader::ClientCertFingerprint;

fuzz_target!(|data: &[u8]| {
    let result = read_one(HEADER, data);
    if let Err(reason) = &result {
        assert_eq!(
            *reason,
            Rejection::MalformedRequest,
            "a fingerprint is never a certificate"
        );
    }
    let Some(text) = readable(data) else {
        return;
    };
    // The header and the parser agree.
    let parsed = PresentedFingerprint::parse(text);
    match summary(&result) {
        Ok(Some(found)) => {
            assert!(found.fingerprints.len() <= 1);
            match found.fingerprints.first() {
                Some(fp) => assert_eq!(parsed, Some(*fp)),
                None => assert!(
                    means_no_certificate(text)
                        || matches!(parsed, Some(PresentedFingerprint::Sha256(fp)) if fp.is_of_nothing())
                ),
            }
        }
        Ok(None) => unreachable!("checked by read_one"),
        Err(_) => assert_eq!(parsed, None),
    }
    // Case does not matter (ASCII only: Unicode case mapping could make `sha256` out of
    // letters that are not ASCII).
    let upper = text.to_ascii_uppercase();
    assert_eq!(
        summary(&read_one(HEADER, upper.as_bytes())),
        summary(&result)
    );
    let Some(fp) = parsed else {
        return;
    };
    // Every spelling of the parsed value parses back to it.
    let (bytes, spellings): (Vec<u8>, Vec<String>) = match fp {
        PresentedFingerprint::Sha256(fp) => {
            let hex = fp.to_string()["sha256:".len()..].to_owned();
            (
                fp.as_bytes().to_vec(),
                vec![
                    fp.to_string(),
                    hex.clone(),
                    format!("SHA256:{}", hex.to_uppercase()),
                ],
            )
        }
        PresentedFingerprint::Sha1(fp) => (
            fp.as_bytes().to_vec(),
            vec![
                fp.to_string(),
                format!("sha1:{fp}"),
                fp.to_string().to_uppercase(),
            ],
        ),
    };
    let colons = colon_hex(&bytes);
    for spelling in spellings.iter().chain([&colons, &format!(" {colons}\t")]) {
        assert_eq!(
            PresentedFingerprint::parse(spelling),
            Some(fp),
            "{spelling:?}"
        );
    }
});
