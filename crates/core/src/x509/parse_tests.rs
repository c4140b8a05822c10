//! Certificate parsing and identity, against a test PKI generated with rcgen at fixed dates
//! (no private key is checked in) and the real certificate of PROXIES.md §6.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType, SerialNumber, date_time_ymd};
use time::macros::datetime;

use super::*;
use crate::domain::CaId;
use crate::x509::test_pki::*;

// ---------------------------------------------------------------- PROXIES.md §6 vector

const PROXIES_DER_B64: &str = "MIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRlc3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdlbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6rKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD+GJXNwaWZmZTovL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxlLnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta/5HkB8ImKgn9yAcE1+owHQYDVR0OBBYEFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r+Cl4j3Bn5KknJGpoyBC0WVDOcjMElvWSrK++oe6AiEArd1MrWv/XYF7Mg1jFxwwVVdl6svovEvuNpM4izhWvJ0=";

#[test]
fn the_proxies_md_certificate_parses_with_its_published_values() {
    let der = STANDARD.decode(PROXIES_DER_B64).unwrap();
    assert_eq!(der.len(), 587, "PROXIES.md: DER 587 bytes");
    let info = parse(der).unwrap();
    assert_eq!(
        info.serial, "0A1B2C3D4E5F60718293",
        "nginx $ssl_client_serial"
    );
    assert_eq!(
        info.fingerprint.to_string(),
        "sha256:e370a13916749386369cdf14ce3e516412baa31f1c3bc2e07ca83a2e05a3ed62"
    );
    assert_eq!(
        info.sha1.to_string(),
        "e9a63c4a329eabd9fd9fa7ddd06e36eb4d592f41"
    );
    assert_eq!(info.common_name.as_deref(), Some("agent-001"));
    assert_eq!(
        info.dns_names,
        ["agent-001.example.test"],
        "URI SAN ignored"
    );
    assert_eq!(info.preferred_hostname(), Some("agent-001.example.test"));
    assert_eq!(info.not_before, datetime!(2020-01-01 00:00:00 UTC));
    assert_eq!(info.not_after, datetime!(2099-12-31 23:59:59 UTC));
    assert!(!info.is_ca);
    assert_eq!(
        info.extended_key_usage,
        Some(ExtendedKeyUsage {
            client_auth: true,
            any: false
        })
    );
    assert!(info.allows_client_auth());
    for part in ["C=US", "O=Sidecar Test", "OU=agents", "CN=agent-001"] {
        assert!(info.subject.contains(part), "{part} in {}", info.subject);
    }
    assert!(
        info.issuer.contains("CN=Sidecar Test Root CA"),
        "{}",
        info.issuer
    );
}

// ---------------------------------------------------------------- PEM text

#[test]
fn pem_certificates_returns_every_certificate_in_order() {
    let ca = root("Root");
    let agent = leaf(&ca);
    let text = format!("{}\n{}", agent.pem(), ca.pem());
    assert_eq!(pem_certificates(&text).unwrap(), [agent.der(), ca.der()]);
    // CRLF line endings and text around the blocks (openssl's "subject=" lines) are fine.
    let decorated = format!(
        "subject=CN = agent-001\r\n{}",
        agent.pem().replace('\n', "\r\n")
    );
    assert_eq!(pem_certificates(&decorated).unwrap(), [agent.der()]);
}

#[test]
fn pem_certificates_refuses_keys_other_blocks_and_oversized_text() {
    let ca = root("Root");
    let agent = leaf(&ca);
    let block = |tag: &str| pem::encode(&pem::Pem::new(tag, vec![1, 2, 3]));
    let cases: Vec<(&str, String, CertError)> = vec![
        (
            "pkcs8 key",
            agent.key.serialize_pem(),
            CertError::PrivateKey,
        ),
        (
            "certificate followed by its key",
            format!("{}{}", agent.pem(), agent.key.serialize_pem()),
            CertError::PrivateKey,
        ),
        ("sec1 key", block("EC PRIVATE KEY"), CertError::PrivateKey),
        ("pkcs1 key", block("RSA PRIVATE KEY"), CertError::PrivateKey),
        (
            "encrypted key",
            block("ENCRYPTED PRIVATE KEY"),
            CertError::PrivateKey,
        ),
        (
            "public key",
            agent.key.public_key_pem(),
            CertError::NotACertificate("PUBLIC KEY".into()),
        ),
        (
            "csr",
            block("CERTIFICATE REQUEST"),
            CertError::NotACertificate("CERTIFICATE REQUEST".into()),
        ),
        ("empty", String::new(), CertError::NotPem),
        ("prose", "hello, certificate".into(), CertError::NotPem),
        (
            "bare base64 DER",
            STANDARD.encode(agent.der()),
            CertError::NotPem,
        ),
        (
            "over 50 KiB",
            format!("{}{}", agent.pem(), "\n".repeat(MAX_PEM_BYTES)),
            CertError::TooLarge,
        ),
    ];
    for (name, text, expected) in cases {
        assert_eq!(pem_certificates(&text), Err(expected), "{name}");
    }
}

#[test]
fn pem_text_of_exactly_the_limit_is_accepted() {
    let agent = leaf(&root("Root"));
    let pem = agent.pem();
    let text = format!("{pem}{}", "\n".repeat(MAX_PEM_BYTES - pem.len()));
    assert_eq!(text.len(), MAX_PEM_BYTES);
    assert_eq!(pem_certificates(&text).unwrap(), [agent.der()]);
}

#[test]
fn single_pem_certificate_wants_exactly_one() {
    let ca = root("Root");
    let agent = leaf(&ca);
    let info = single_pem_certificate(&agent.pem()).unwrap();
    assert_eq!(info.der, agent.der());
    assert_eq!(
        single_pem_certificate(&format!("{}{}", agent.pem(), ca.pem())).unwrap_err(),
        CertError::MultipleCertificates(2)
    );
    assert_eq!(
        single_pem_certificate(&agent.key.serialize_pem()).unwrap_err(),
        CertError::PrivateKey
    );
    let garbage = pem::encode(&pem::Pem::new("CERTIFICATE", b"not der".to_vec()));
    assert!(matches!(
        single_pem_certificate(&garbage),
        Err(CertError::Malformed(_))
    ));
}

#[test]
fn to_pem_round_trips() {
    let info = parse(leaf(&root("Root")).der()).unwrap();
    let pem = info.to_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(!pem.contains('\r'));
    assert_eq!(single_pem_certificate(&pem).unwrap().der, info.der);
}

// ---------------------------------------------------------------- parse

#[test]
fn parse_reads_names_serial_validity_and_digests() {
    let ca = root("Test Root");
    let agent = leaf_with(&ca, |p| {
        p.serial_number = Some(SerialNumber::from_slice(&[0x0A, 0x1B, 0x2C]));
        p.not_before = date_time_ymd(2025, 3, 4);
        p.not_after = date_time_ymd(2026, 5, 6);
        p.subject_alt_names = vec![
            dns("first.example.test"),
            SanType::IpAddress("10.0.0.1".parse().unwrap()),
            dns("second.example.test"),
        ];
    });
    let info = parse(agent.der()).unwrap();
    assert_eq!(info.der, agent.der());
    assert_eq!(info.fingerprint, Fingerprint::of_der(&agent.der()));
    assert_eq!(info.sha1, Sha1Fingerprint::of_der(&agent.der()));
    assert_eq!(info.serial, "0A1B2C");
    assert_eq!(info.not_before, datetime!(2025-03-04 00:00:00 UTC));
    assert_eq!(info.not_after, datetime!(2026-05-06 00:00:00 UTC));
    assert_eq!(info.common_name.as_deref(), Some("agent-001"));
    assert_eq!(
        info.dns_names,
        ["first.example.test", "second.example.test"]
    );
    assert_eq!(info.preferred_hostname(), Some("first.example.test"));
    assert!(info.subject.contains("CN=agent-001"), "{}", info.subject);
    assert!(info.issuer.contains("CN=Test Root"), "{}", info.issuer);
    assert!(!info.is_ca);
}

#[test]
fn serial_is_uppercase_hex_as_nginx_prints_it() {
    let ca = root("Root");
    // DER adds a 0x00 sign byte before a serial whose high bit is set; OpenSSL (and so
    // nginx's `$ssl_client_serial`) does not print it.
    let twenty_ff = "FF".repeat(20);
    for (serial, expected) in [
        (vec![0x0A, 0x1B], "0A1B"),
        (vec![0x80, 0x01], "8001"),
        (vec![0xFF; 20], twenty_ff.as_str()),
        (vec![0x00], "00"),
        (vec![0x00, 0x00, 0x42], "42"),
    ] {
        let agent = leaf_with(&ca, |p| {
            p.serial_number = Some(SerialNumber::from_slice(&serial));
        });
        assert_eq!(
            parse(agent.der()).unwrap().serial,
            expected,
            "{serial:02X?}"
        );
    }
}

#[test]
fn hostname_falls_back_to_the_common_name() {
    let agent = leaf_with(&root("Root"), |p| p.subject_alt_names.clear());
    let info = parse(agent.der()).unwrap();
    assert!(info.dns_names.is_empty());
    assert_eq!(info.preferred_hostname(), Some("agent-001"));
}

#[test]
fn is_ca_follows_basic_constraints() {
    let ca = root("Root");
    assert!(parse(ca.der()).unwrap().is_ca, "CA:TRUE");
    assert!(
        parse(intermediate("Intermediate", &ca).der())
            .unwrap()
            .is_ca,
        "intermediate CA:TRUE"
    );
    assert!(
        !parse(leaf(&ca).der()).unwrap().is_ca,
        "no basicConstraints"
    );
    let explicit = leaf_with(&ca, |p| p.is_ca = IsCa::ExplicitNoCa);
    assert!(!parse(explicit.der()).unwrap().is_ca, "CA:FALSE");
    // A self-signed end-entity certificate is v3 and not a CA (rcgen cannot write v1).
    let key = KeyPair::generate().unwrap();
    let self_signed = params("lonely").self_signed(&key).unwrap();
    assert!(!parse(self_signed.der().to_vec()).unwrap().is_ca);
}

#[test]
fn extended_key_usage_rules() {
    let ca = root("Root");
    use ExtendedKeyUsagePurpose as P;
    let cases: Vec<(&str, Vec<P>, Option<ExtendedKeyUsage>, bool)> = vec![
        (
            "clientAuth",
            vec![P::ClientAuth],
            Some(ExtendedKeyUsage {
                client_auth: true,
                any: false,
            }),
            true,
        ),
        (
            "serverAuth and clientAuth",
            vec![P::ServerAuth, P::ClientAuth],
            Some(ExtendedKeyUsage {
                client_auth: true,
                any: false,
            }),
            true,
        ),
        ("no EKU extension", vec![], None, true),
        (
            "serverAuth only",
            vec![P::ServerAuth],
            Some(ExtendedKeyUsage {
                client_auth: false,
                any: false,
            }),
            false,
        ),
        (
            "codeSigning only",
            vec![P::CodeSigning],
            Some(ExtendedKeyUsage {
                client_auth: false,
                any: false,
            }),
            false,
        ),
        (
            "anyExtendedKeyUsage",
            vec![P::Any],
            Some(ExtendedKeyUsage {
                client_auth: false,
                any: true,
            }),
            true,
        ),
    ];
    for (name, ekus, expected, allowed) in cases {
        let agent = leaf_with(&ca, |p| p.extended_key_usages = ekus);
        let info = parse(agent.der()).unwrap();
        assert_eq!(info.extended_key_usage, expected, "{name}");
        assert_eq!(info.allows_client_auth(), allowed, "{name}");
    }
}

#[test]
fn malformed_der_is_refused() {
    let der = leaf(&root("Root")).der();
    let mut trailing = der.clone();
    trailing.push(0);
    let mut flipped_tag = der.clone();
    flipped_tag[0] = 0x31;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated by one byte", der[..der.len() - 1].to_vec()),
        ("truncated to half", der[..der.len() / 2].to_vec()),
        ("one trailing byte", trailing),
        (
            "two certificates back to back",
            [der.clone(), der.clone()].concat(),
        ),
        ("SET instead of SEQUENCE", flipped_tag),
        ("text", b"-----BEGIN CERTIFICATE-----".to_vec()),
    ];
    for (name, bytes) in cases {
        assert!(
            matches!(parse(bytes), Err(CertError::Malformed(_))),
            "{name}"
        );
    }
    assert_eq!(
        parse([der.clone(), vec![0]].concat()).unwrap_err(),
        CertError::Malformed("trailing bytes after the certificate".into())
    );
}

/// ring (rcgen's backend here) cannot generate RSA keys, so this pair was made once with
/// `openssl req`/`openssl x509` (RSA 2048, sha256WithRSAEncryption) and the keys discarded.
/// The leaf's serial is 0x80FF01, which `openssl x509 -serial` prints as `80FF01`.
const RSA_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDHzCCAgegAwIBAgICAQAwDQYJKoZIhvcNAQELBQAwHzEdMBsGA1UEAwwUY2Vy
dGdhdGUgdGVzdCBSU0EgQ0EwIBcNMjYxMTIzMTg1NDI1WhgPMjEyNjEwMzAxODU0
MjVaMB8xHTAbBgNVBAMMFGNlcnRnYXRlIHRlc3QgUlNBIENBMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxIgjoepIyDB6vyMQ2Auk4j2ijngozGC+GwBv
OuDBsDHkUGJqsKyhG+i3yEjaIkdyDmcdSEGyDWQHbY7Lfv4DWZr8ralhDGBkTTcI
5sVCPitei1AgMDHpXWbxnzrvFeLxBVPpYLsN5ivXVMv03O7tY890K+89pWLoBO6z
JsKtyXu5YHkN/YSuq/bcm25jTsqZR51IiyGO7FrcFW+btWK/TxRGUvDF4AQKk2Tc
BMFrcDiHKNQ2IKcm4mfE5Lec15YzBPHBVEWhzeFCqXD9tdHqeBVdK/ATiie5MnZr
LBfrKJfFjPkyh2rRGXwQLZn6i1RPlZG0DKLrdfX/+9+gYYJazQIDAQABo2MwYTAd
BgNVHQ4EFgQU0cg3ZH0GakEcp6T48LtM+SQVcswwHwYDVR0jBBgwFoAU0cg3ZH0G
akEcp6T48LtM+SQVcswwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
DQYJKoZIhvcNAQELBQADggEBAANuCRTr4D6qlgM56EDmXn8zKN5ndBcvyY+4t+i1
zhatS9kISIq1SksB5aj83UNJ1Bnh1leYc2F0doZp+JX4ZZzv8xLAk7jm3JooZHNt
x7g8hpbdf9u+TMH10KChzOU/FXDN4hnAa33bv2E+aIwSxtEY2uTGxl8rXJk8+mVn
Ola3TwnfBsnD1sKEMf4bnsmzSqinha2Hta9+zWd3JZ48i4UnJDJfjzUAMzdnBD/Q
A0OM2/qJ8ms1vPu7pRYERcNgQuvke3gd2KAf/eSFEeUxE3oMIE8+l9C2IO1WfntU
OsNFt/B/1sQZpWNntOmLavnzhLAhyy6UYiLMZ36Skjy1KvI=
-----END CERTIFICATE-----
";

const RSA_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDOjCCAiKgAwIBAgIEAID/ATANBgkqhkiG9w0BAQsFADAfMR0wGwYDVQQDDBRj
ZXJ0Z2F0ZSB0ZXN0IFJTQSBDQTAgFw0yNjExMjMxODU0MjZaGA8yMTI2MTAzMDE4
NTQyNlowFDESMBAGA1UEAwwJcnNhLWFnZW50MIIBIjANBgkqhkiG9w0BAQEFAAOC
AQ8AMIIBCgKCAQEAn6chuGwVLku2ZgIa6RqekkwHUvnm9bHSUFzW9jyS5M1uN5cU
P2nsBSTJx360aoZpLqCF2CvxQkeK4Tw3dY4GcpG5wctlX01W+VnHagTwF1dAQlEZ
Ll6RbEbGI9b3XTEUnRfukePMD9ndgSrO5kqtc23XL9UpGzxrvkh4ZwTPF1dm8SFB
8U4J6U6nQSs/KuqwOMlBK3zSEapHR6jWB/FdzOnqtbn+IvDyH+/PEyrQX3w/SlxV
60a2YyPYS3KwCo2Pd+m3rp5Q1nl10X+FGAriJjk7WNXafZ0LQcW3K9EpV0DJ5hCF
3UIdsGNtGikX1n7/7ZFMAELQkNWk0Az7rTSHjQIDAQABo4GGMIGDMAkGA1UdEwQC
MAAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwIQYDVR0RBBowGIIWcnNhLWFnZW50LmV4
YW1wbGUudGVzdDAdBgNVHQ4EFgQUpzarlPXzbt4/pisZB4krycDMT9swHwYDVR0j
BBgwFoAU0cg3ZH0GakEcp6T48LtM+SQVcswwDQYJKoZIhvcNAQELBQADggEBAIyb
VYC+0bMHHx4cOihvdI52b3Z+JGi6CBvO4yLAPZ6P7xIzZzhZrcfTDFxRQqq6PLaR
k3ZCU4uIkE81Mz5PAeb6XZfT5X/SXa2mOdLA5PDLgaZXSFbK9Au4C1Y8/wa4iBDk
Thpi/rSW5+bYkS9T9brREiqJexboqdnjmHrB1Iz8J2ts6NjbTPE3rjmyoXR+yRNu
AWme5UpJQ5ACHSGCsRvLFzR6d+ru5R5lmrLY5D1hgOHRgKC2l/+zeMYaYEX+hsyu
RdSU8TixZeZ55AitwizUbwH00b5AUeVFK4NHDdd2P4x7hzE79qT0RuueCkhReDjG
Rv9nVz49hE5tkSKF2Pg=
-----END CERTIFICATE-----
";

#[test]
fn rsa_signatures_verify() {
    let ca = single_pem_certificate(RSA_CA_PEM).unwrap();
    let agent = single_pem_certificate(RSA_LEAF_PEM).unwrap();
    assert!(ca.is_ca);
    assert_eq!(agent.serial, "80FF01");
    assert_eq!(agent.dns_names, ["rsa-agent.example.test"]);
    let ca_id = CaId::new_random();
    let at = datetime!(2027-01-01 00:00:00 UTC).unix_timestamp();
    let anchors = Anchors::new([(ca_id, ca.der.as_slice())]);
    assert_eq!(
        validate(&agent.der, &[], &anchors, at)
            .outcome
            .map(|p| p.ca_id),
        Ok(ca_id)
    );
    let ecdsa_namesake = root("certgate test RSA CA");
    let namesake = Anchors::new(
        [(ca_id, ecdsa_namesake.der())]
            .iter()
            .map(|(id, der)| (*id, der.as_slice())),
    );
    assert!(validate(&agent.der, &[], &namesake, at).outcome.is_err());
}

// ---------------------------------------------------------------- identity

#[test]
fn identity_is_the_issuer_and_serial_whatever_the_encoding() {
    let ca = root("Root");
    let agent = leaf_with(&ca, |p| {
        p.serial_number = Some(SerialNumber::from_slice(&[0x80, 1]))
    });
    let info = parse(agent.der()).unwrap();
    assert_eq!(info.serial, "8001");
    assert_eq!(Some(info.issuer_serial), issuer_serial(&agent.der()));
    assert_eq!(
        issuer_serial_under(&ca.der(), "8001"),
        Some(info.issuer_serial),
        "computed from the CA's subject and the stored serial"
    );
    assert_ne!(
        issuer_serial_under(&ca.der(), "8002"),
        Some(info.issuer_serial)
    );
    let other = root("Other Root");
    assert_ne!(
        issuer_serial_under(&other.der(), "8001"),
        Some(info.issuer_serial)
    );
    // The outer SEQUENCE in long form: another fingerprint, the same identity.
    let der = agent.der();
    assert_eq!(der[1], 0x82, "rcgen writes a two-byte length");
    let mut long_form = vec![0x30, 0x83, 0x00];
    long_form.extend_from_slice(&der[2..]);
    assert_eq!(issuer_serial(&long_form), Some(info.issuer_serial));
    assert!(!is_der_certificate(&long_form));
    assert!(is_der_certificate(&der));
    // BER's indefinite length on the outer SEQUENCE: the same identity too.
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(&der[4..]);
    indefinite.extend_from_slice(&[0, 0]);
    assert_eq!(issuer_serial(&indefinite), Some(info.issuer_serial));
    assert!(!is_der_certificate(&indefinite));
    for junk in [&b""[..], b"\x30\x00", b"\x30\x03\x02\x01\x05"] {
        assert_eq!(issuer_serial(junk), None, "{junk:?}");
    }
}
