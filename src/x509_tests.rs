//! Certificate parsing and path building, against a test PKI generated with rcgen at fixed
//! dates (no private key is checked in) and the real certificate of PROXIES.md §6.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SanType, SerialNumber,
    SignatureAlgorithm, date_time_ymd,
};
use time::macros::datetime;

use super::*;

/// A certificate and the key that signs what it issues.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Issued {
    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate tests");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2034, 1, 1);
    params
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
}

fn root(common_name: &str, alg: &'static SignatureAlgorithm) -> Issued {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = ca_params(common_name).self_signed(&key).unwrap();
    Issued { cert, key }
}

fn issue(params: CertificateParams, alg: &'static SignatureAlgorithm, issuer: &Issued) -> Issued {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Issued { cert, key }
}

fn intermediate(common_name: &str, issuer: &Issued) -> Issued {
    issue(ca_params(common_name), &PKCS_ECDSA_P256_SHA256, issuer)
}

fn leaf_with(issuer: &Issued, tweak: impl FnOnce(&mut CertificateParams)) -> Issued {
    let mut params = params("agent-001");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    tweak(&mut params);
    issue(params, &PKCS_ECDSA_P256_SHA256, issuer)
}

fn leaf(issuer: &Issued) -> Issued {
    leaf_with(issuer, |_| {})
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

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
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let agent = leaf(&root("Root", &PKCS_ECDSA_P256_SHA256));
    let pem = agent.pem();
    let text = format!("{pem}{}", "\n".repeat(MAX_PEM_BYTES - pem.len()));
    assert_eq!(text.len(), MAX_PEM_BYTES);
    assert_eq!(pem_certificates(&text).unwrap(), [agent.der()]);
}

#[test]
fn single_pem_certificate_wants_exactly_one() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let info = parse(leaf(&root("Root", &PKCS_ECDSA_P256_SHA256)).der()).unwrap();
    let pem = info.to_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(!pem.contains('\r'));
    assert_eq!(single_pem_certificate(&pem).unwrap().der, info.der);
}

// ---------------------------------------------------------------- parse

#[test]
fn parse_reads_names_serial_validity_and_digests() {
    let ca = root("Test Root", &PKCS_ECDSA_P256_SHA256);
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
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let info = parse(leaf(&root("Root", &PKCS_ECDSA_P256_SHA256)).der()).unwrap();
    assert!(info.dns_names.is_empty());
    assert_eq!(info.preferred_hostname(), Some("agent-001"));
}

#[test]
fn is_ca_follows_basic_constraints() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
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
    let der = leaf(&root("Root", &PKCS_ECDSA_P256_SHA256)).der();
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

// ---------------------------------------------------------------- is_issued_by

#[test]
fn is_issued_by_checks_the_signature_not_just_the_name() {
    let ca = root("Shared Name Root", &PKCS_ECDSA_P256_SHA256);
    let impostor = root("Shared Name Root", &PKCS_ECDSA_P256_SHA256);
    let agent = leaf(&ca);
    assert_eq!(
        parse(ca.der()).unwrap().subject,
        parse(impostor.der()).unwrap().subject,
        "same subject name"
    );
    assert!(is_issued_by(&agent.der(), &ca.der()));
    assert!(!is_issued_by(&agent.der(), &impostor.der()), "other key");
    assert!(!is_issued_by(&ca.der(), &agent.der()), "reversed");
    assert!(is_issued_by(&ca.der(), &ca.der()), "a root signs itself");
    assert!(!is_issued_by(&impostor.der(), &ca.der()));
}

#[test]
fn is_issued_by_refuses_a_matching_key_under_another_name() {
    let ca = root("Real Root", &PKCS_ECDSA_P256_SHA256);
    // Same key, different subject: the signature verifies but the names do not chain.
    let renamed = ca_params("Other Name").self_signed(&ca.key).unwrap();
    assert!(!is_issued_by(&leaf(&ca).der(), renamed.der()));
}

#[test]
fn is_issued_by_is_false_for_garbage() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
    let agent = leaf(&ca).der();
    let mut tampered = agent.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(!is_issued_by(b"junk", &ca.der()));
    assert!(!is_issued_by(&agent, b"junk"));
    assert!(!is_issued_by(&tampered, &ca.der()), "signature bit flipped");
}

#[test]
fn signature_algorithms_ecdsa_p256_p384_and_ed25519() {
    let algorithms: [(&str, &'static SignatureAlgorithm); 3] = [
        ("ECDSA P-256", &PKCS_ECDSA_P256_SHA256),
        ("ECDSA P-384", &PKCS_ECDSA_P384_SHA384),
        ("Ed25519", &PKCS_ED25519),
    ];
    for (ca_name, ca_alg) in algorithms {
        let ca = root("Root", ca_alg);
        let impostor = root("Root", ca_alg);
        for (leaf_name, leaf_alg) in algorithms {
            let agent = issue(params("agent"), leaf_alg, &ca);
            let label = format!("{leaf_name} leaf under {ca_name} CA");
            assert!(is_issued_by(&agent.der(), &ca.der()), "{label}");
            assert!(!is_issued_by(&agent.der(), &impostor.der()), "{label}");
            assert!(
                matches!(
                    find_path(&agent.der(), &[], &[(CaId::new_random(), ca.der())]),
                    PathOutcome::Trusted { .. }
                ),
                "{label}"
            );
        }
    }
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
    assert!(is_issued_by(&agent.der, &ca.der));
    assert!(!is_issued_by(&ca.der, &agent.der));
    let ecdsa_namesake = root("certgate test RSA CA", &PKCS_ECDSA_P256_SHA256);
    assert!(!is_issued_by(&agent.der, &ecdsa_namesake.der()));
    let ca_id = CaId::new_random();
    assert!(matches!(
        find_path(&agent.der, &[], &[(ca_id, ca.der.clone())]),
        PathOutcome::Trusted { ca_id: id, client_auth: true, .. } if id == ca_id
    ));
}

// ---------------------------------------------------------------- find_path

fn trusted_by(outcome: PathOutcome) -> Option<CaId> {
    match outcome {
        PathOutcome::Trusted { ca_id, .. } => Some(ca_id),
        _ => None,
    }
}

#[test]
fn find_path_directly_under_a_stored_ca() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
    let other = root("Other Root", &PKCS_ECDSA_P256_SHA256);
    let agent = leaf_with(&ca, |p| {
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2027, 1, 1);
    });
    let (ca_id, other_id) = (CaId::new_random(), CaId::new_random());
    let stored = [(other_id, other.der()), (ca_id, ca.der())];
    assert_eq!(
        find_path(&agent.der(), &[], &stored),
        PathOutcome::Trusted {
            ca_id,
            not_before: datetime!(2025-01-01 00:00:00 UTC).unix_timestamp(),
            not_after: datetime!(2027-01-01 00:00:00 UTC).unix_timestamp(),
            client_auth: true,
            serial: parse(agent.der().to_vec()).unwrap().serial,
        }
    );
}

#[test]
fn find_path_reports_key_usage_of_the_leaf() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
    let server_only = leaf_with(&ca, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let no_eku = leaf_with(&ca, |p| p.extended_key_usages = vec![]);
    let stored = [(CaId::new_random(), ca.der())];
    assert!(matches!(
        find_path(&server_only.der(), &[], &stored),
        PathOutcome::Trusted {
            client_auth: false,
            ..
        }
    ));
    assert!(matches!(
        find_path(&no_eku.der(), &[], &stored),
        PathOutcome::Trusted {
            client_auth: true,
            ..
        }
    ));
}

#[test]
fn find_path_cases() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
    let ca_id = CaId::new_random();
    let stored = vec![(ca_id, ca.der())];
    let inter = intermediate("Intermediate", &ca);
    let via_inter = leaf(&inter);
    let not_a_ca = leaf_with(&ca, |p| p.is_ca = IsCa::ExplicitNoCa);
    let under_not_a_ca = leaf(&not_a_ca);
    let rogue = root("Rogue Root", &PKCS_ECDSA_P256_SHA256);
    let rogue_leaf = leaf(&rogue);
    let namesake = root("Root", &PKCS_ECDSA_P256_SHA256);
    let namesake_leaf = leaf(&namesake);
    let inter_id = CaId::new_random();

    type Case<'a> = (
        &'a str,
        Vec<u8>,
        Vec<Vec<u8>>,
        Vec<(CaId, Vec<u8>)>,
        PathOutcome,
    );
    let trusted = |id, leaf_der: Vec<u8>| PathOutcome::Trusted {
        ca_id: id,
        not_before: datetime!(2024-01-01 00:00:00 UTC).unix_timestamp(),
        not_after: datetime!(2034-01-01 00:00:00 UTC).unix_timestamp(),
        client_auth: true,
        serial: parse(leaf_der).unwrap().serial,
    };
    let direct = leaf(&ca);
    let cases: Vec<Case> = vec![
        (
            "via a presented intermediate",
            via_inter.der(),
            vec![inter.der()],
            stored.clone(),
            trusted(ca_id, via_inter.der()),
        ),
        (
            "intermediate presented with junk and the leaf again",
            via_inter.der(),
            vec![b"junk".to_vec(), via_inter.der(), inter.der()],
            stored.clone(),
            trusted(ca_id, via_inter.der()),
        ),
        (
            "intermediate not presented",
            via_inter.der(),
            vec![],
            stored.clone(),
            PathOutcome::Untrusted,
        ),
        (
            "stored intermediate ends the path",
            via_inter.der(),
            vec![],
            vec![(inter_id, inter.der())],
            trusted(inter_id, via_inter.der()),
        ),
        (
            "presented issuer is not a CA",
            under_not_a_ca.der(),
            vec![not_a_ca.der()],
            stored.clone(),
            PathOutcome::Untrusted,
        ),
        (
            "presented self-signed root that is not stored",
            rogue_leaf.der(),
            vec![rogue.der()],
            stored.clone(),
            PathOutcome::Untrusted,
        ),
        (
            "stored CA with the same name but another key",
            namesake_leaf.der(),
            vec![namesake.der()],
            stored.clone(),
            PathOutcome::Untrusted,
        ),
        (
            "no stored CA at all",
            via_inter.der(),
            vec![inter.der()],
            vec![],
            PathOutcome::Untrusted,
        ),
        (
            "unparsable stored CA is skipped",
            direct.der(),
            vec![],
            vec![(inter_id, b"junk".to_vec()), (ca_id, ca.der())],
            trusted(ca_id, direct.der()),
        ),
        (
            "garbage leaf",
            b"junk".to_vec(),
            vec![inter.der()],
            stored.clone(),
            PathOutcome::Malformed,
        ),
        (
            "leaf with trailing bytes",
            [leaf(&ca).der(), vec![0]].concat(),
            vec![],
            stored.clone(),
            PathOutcome::Malformed,
        ),
    ];
    for (name, leaf_der, presented, stored, expected) in cases {
        assert_eq!(
            find_path(&leaf_der, &presented, &stored),
            expected,
            "{name}"
        );
    }
}

#[test]
fn find_path_follows_at_most_four_presented_intermediates() {
    let ca = root("Root", &PKCS_ECDSA_P256_SHA256);
    let ca_id = CaId::new_random();
    let stored = [(ca_id, ca.der())];
    let mut chain: Vec<Issued> = Vec::new();
    for depth in 1..=5 {
        let issuer = chain.last().unwrap_or(&ca);
        let next = intermediate(&format!("Intermediate {depth}"), issuer);
        chain.push(next);
        let agent = leaf(chain.last().unwrap());
        // Presented in reverse order, as a sloppy client might.
        let presented: Vec<Vec<u8>> = chain.iter().rev().map(Issued::der).collect();
        let outcome = find_path(&agent.der(), &presented, &stored);
        if depth <= 4 {
            assert_eq!(trusted_by(outcome), Some(ca_id), "{depth} intermediates");
        } else {
            assert_eq!(outcome, PathOutcome::Untrusted, "{depth} intermediates");
        }
    }
}

#[test]
fn find_path_survives_intermediates_that_sign_each_other() {
    // Two CAs with each other's names: A's issuer is B, B's issuer is A. A path through
    // them never reaches a stored CA and must end.
    let a_key = KeyPair::generate().unwrap();
    let b_key = KeyPair::generate().unwrap();
    let a_self = ca_params("Loop A").self_signed(&a_key).unwrap();
    let b_self = ca_params("Loop B").self_signed(&b_key).unwrap();
    let a = ca_params("Loop A")
        .signed_by(&a_key, &b_self, &b_key)
        .unwrap();
    let b = ca_params("Loop B")
        .signed_by(&b_key, &a_self, &a_key)
        .unwrap();
    let a = Issued {
        cert: a,
        key: a_key,
    };
    let agent = leaf(&a);
    let stored = [(
        CaId::new_random(),
        root("Root", &PKCS_ECDSA_P256_SHA256).der(),
    )];
    assert_eq!(
        find_path(&agent.der(), &[a.der(), b.der().to_vec()], &stored),
        PathOutcome::Untrusted
    );
}
