//! Writes the seed corpora (`corpus/<target>/`) and the CRL target's CA
//! (`fixtures/crl_ca.der`):
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! Seeds are what proxies really send: the one certificate of the proxy notes (its DER and
//! nginx's bytes for it, verbatim) plus a small PKI made here with rcgen, spelled every way
//! the API tests spell certificates. Keys live only in memory: no key is written. Running
//! it again makes a new PKI, so every file changes; the CRL seeds and the CA stay a pair.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use certgate_fuzz::{base64, colon_hex, nginx_escape, pem, query_escape, sha1, sha256};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};

/// The proxy notes' test certificate, as standard base64 DER (Caddy, Traefik ≥ 2.9.2).
const VECTOR_DER_B64: &str = "MIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRlc3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdlbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6rKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD+GJXNwaWZmZTovL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxlLnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta/5HkB8ImKgn9yAcE1+owHQYDVR0OBBYEFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r+Cl4j3Bn5KknJGpoyBC0WVDOcjMElvWSrK++oe6AiEArd1MrWv/XYF7Mg1jFxwwVVdl6svovEvuNpM4izhWvJ0=";

/// nginx `$ssl_client_escaped_cert` for it, as captured (= Envoy XFCC `Cert` content).
const VECTOR_NGINX_ESCAPED: &str = "-----BEGIN%20CERTIFICATE-----%0AMIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQG%0AEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRl%0Ac3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTEL%0AMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdl%0AbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC%0AAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6%0ArKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB%2FwQCMAAwDgYDVR0PAQH%2F%0ABAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD%2BGJXNwaWZmZTov%0AL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxl%0ALnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta%2F5HkB8ImKgn9yAcE1%2BowHQYDVR0OBBYE%0AFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r%2BCl4j3B%0An5KknJGpoyBC0WVDOcjMElvWSrK%2B%2Boe6AiEArd1MrWv%2FXYF7Mg1jFxwwVVdl6svo%0AvEvuNpM4izhWvJ0%3D%0A-----END%20CERTIFICATE-----%0A";

const VECTOR_SUBJECT: &str = "CN=agent-001,OU=agents,O=Sidecar Test,C=US";
/// Caddy ≥ 2.11.2 sends SHA-256 of nothing when no certificate was presented.
const SHA256_OF_NOTHING: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Indices into `IdentityHeader::ALL`, for the combined target's input format.
const CLIENT_CERT: u8 = 0;
const TRAEFIK: u8 = 1;
const XFCC: u8 = 2;
const RFC9440: u8 = 3;
const RFC9440_CHAIN: u8 = 4;
const FINGERPRINT: u8 = 5;
const VERIFY: u8 = 6;

fn main() {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pki = Pki::generate();
    let vector = STANDARD.decode(VECTOR_DER_B64).expect("vector is base64");
    assert_eq!(
        nginx_escape(&pem(&vector)),
        VECTOR_NGINX_ESCAPED,
        "our nginx encoder reproduces the captured bytes"
    );
    let certs: Vec<(&str, &[u8])> = vec![
        ("vector", vector.as_slice()),
        ("p256", pki.leaf.as_slice()),
        ("p384", pki.leaf_p384.as_slice()),
        ("ed25519", pki.leaf_ed25519.as_slice()),
    ];
    let mut out = Seeds::new(&fuzz_dir);

    // X-Client-Cert
    out.target("header_client_cert");
    out.add("nginx-vector", VECTOR_NGINX_ESCAPED);
    for (name, der) in &certs {
        let spelling = Spellings(der);
        out.add(&format!("nginx-{name}"), spelling.nginx());
        out.add(&format!("pem-spaces-{name}"), spelling.pem_with_spaces());
        out.add(&format!("pem-one-line-{name}"), spelling.pem_one_line());
        out.add(&format!("der-base64-{name}"), base64(der));
    }
    let chain_pem = format!("{}{}", pem(&pki.leaf_p384), pem(&pki.intermediate));
    out.add("nginx-chain", nginx_escape(&chain_pem));
    out.add("pem-chain-one-line", chain_pem.replace('\n', ""));
    out.add("base64-query-escaped", query_escape(&base64(&vector)));
    out.add(
        "pem-text-around",
        format!("subject=x\n{}trailer", pem(&vector)),
    );
    out.add(
        "pem-tab-folded",
        pem(&vector).trim_end().replace('\n', "\n\t"),
    );
    out.add(
        "caddy-placeholder",
        "{http.request.tls.client.certificate_der_base64}",
    );
    out.add("null", "(null)");
    out.add("empty", "");

    // X-Forwarded-Tls-Client-Cert
    out.target("header_traefik");
    for (name, der) in &certs {
        out.add(&format!("current-{name}"), base64(der));
        out.add(&format!("before-2.9.2-{name}"), query_escape(&base64(der)));
    }
    let traefik_chain = [&pki.leaf_p384, &pki.intermediate, &pki.root];
    out.add(
        "current-chain",
        traefik_chain
            .iter()
            .map(|d| base64(d))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.add(
        "before-2.9.2-chain",
        traefik_chain
            .iter()
            .map(|d| query_escape(&base64(d)))
            .collect::<Vec<_>>()
            .join(","),
    );

    // X-Forwarded-Client-Cert
    out.target("header_xfcc");
    let vector_sha256 = hex(&sha256(&vector));
    out.add(
        "sanitize-set-all-details",
        format!(
            "Hash={vector_sha256};Cert=\"{VECTOR_NGINX_ESCAPED}\";Chain=\"{VECTOR_NGINX_ESCAPED}\";\
             Subject=\"{VECTOR_SUBJECT}\";URI=spiffe://example.test/agent/agent-001;\
             DNS=agent-001.example.test"
        ),
    );
    out.add("hash-only", format!("Hash={vector_sha256}"));
    out.add(
        "by-hash-subject-uri",
        format!(
            "By=spiffe://cluster.local/ns/default/sa/gateway;Hash={};Subject=\"\";URI=",
            hex(&sha256(&pki.leaf))
        ),
    );
    out.add(
        "append-forward-two-elements",
        format!(
            "By=spiffe://a.test/x;Hash={};Cert=\"{}\",By=spiffe://b.test/y;Hash={};Cert=\"{}\"",
            hex(&sha256(&pki.leaf_ed25519)),
            nginx_escape(&pem(&pki.leaf_ed25519)),
            hex(&sha256(&pki.leaf)),
            nginx_escape(&pem(&pki.leaf)),
        ),
    );
    out.add(
        "cert-and-chain",
        format!(
            "Hash={};Cert=\"{}\";Chain=\"{}\";DNS=p384.example.test;DNS=alt.example.test",
            hex(&sha256(&pki.leaf_p384)),
            nginx_escape(&pem(&pki.leaf_p384)),
            nginx_escape(&chain_pem),
        ),
    );
    out.add(
        "quoted-escapes",
        format!("Hash={vector_sha256};Subject=\"CN=a\\\"b,O=c;d\";URI=spiffe://x.test/a,b"),
    );
    out.add("hash-of-nothing", format!("Hash={SHA256_OF_NOTHING}"));

    // RFC 9440: mode byte, then the value(s).
    out.target("header_rfc9440");
    out.add_bytes("client-cert-vector", prefixed(0, &sf_binary(&vector)));
    out.add_bytes("client-cert-p256", prefixed(0, &sf_binary(&pki.leaf)));
    let sf_chain = format!("{}, {}", sf_binary(&pki.intermediate), sf_binary(&pki.root));
    out.add_bytes("chain-only", prefixed(1, &sf_chain));
    out.add_bytes(
        "cert-and-chain",
        prefixed(2, &format!("{}\n{sf_chain}", sf_binary(&pki.leaf_p384))),
    );

    // X-Client-Cert-Fingerprint
    out.target("header_fingerprint");
    for (name, der) in &certs {
        let sha256 = sha256(der);
        let sha1 = sha1(der);
        out.add(
            &format!("sha256-canonical-{name}"),
            format!("sha256:{}", hex(&sha256)),
        );
        out.add(&format!("sha256-caddy-{name}"), hex(&sha256));
        out.add(&format!("sha256-openssl-{name}"), colon_hex(&sha256));
        out.add(&format!("sha1-nginx-{name}"), hex(&sha1));
        out.add(&format!("sha1-haproxy-{name}"), hex(&sha1).to_uppercase());
        out.add(&format!("sha1-openssl-{name}"), colon_hex(&sha1));
    }
    out.add("sha1-prefixed", format!("sha1:{}", hex(&sha1(&vector))));
    out.add("sha256-of-nothing", SHA256_OF_NOTHING);
    out.add("caddy-placeholder", "{http.request.tls.client.fingerprint}");
    out.add("dash", "-");

    // Several headers at once.
    out.target("headers_combined");
    let vector_sha1 = hex(&sha1(&vector));
    out.add_bytes(
        "nginx",
        [
            pair(VERIFY, "SUCCESS"),
            pair(CLIENT_CERT, VECTOR_NGINX_ESCAPED),
            pair(FINGERPRINT, &vector_sha1),
        ]
        .concat(),
    );
    out.add_bytes(
        "nginx-optional-no-ca",
        [
            pair(VERIFY, "FAILED:unable to verify the first certificate"),
            pair(FINGERPRINT, &vector_sha1),
        ]
        .concat(),
    );
    out.add_bytes(
        "caddy",
        [
            pair(CLIENT_CERT, &base64(&pki.leaf)),
            pair(FINGERPRINT, &hex(&sha256(&pki.leaf))),
        ]
        .concat(),
    );
    out.add_bytes(
        "caddy-no-certificate",
        [
            pair(
                CLIENT_CERT,
                "{http.request.tls.client.certificate_der_base64}",
            ),
            pair(FINGERPRINT, "{http.request.tls.client.fingerprint}"),
        ]
        .concat(),
    );
    out.add_bytes(
        "traefik-and-envoy",
        [
            pair(
                TRAEFIK,
                &format!("{},{}", base64(&pki.leaf_p384), base64(&pki.intermediate)),
            ),
            pair(
                XFCC,
                &format!(
                    "Hash={};Cert=\"{}\"",
                    hex(&sha256(&pki.leaf_p384)),
                    nginx_escape(&pem(&pki.leaf_p384))
                ),
            ),
        ]
        .concat(),
    );
    out.add_bytes(
        "rfc9440",
        [
            pair(RFC9440, &sf_binary(&pki.leaf_p384)),
            pair(RFC9440_CHAIN, &sf_binary(&pki.intermediate)),
        ]
        .concat(),
    );
    out.add_bytes(
        "two-certificates",
        [
            pair(CLIENT_CERT, &base64(&pki.leaf)),
            pair(RFC9440, &sf_binary(&pki.leaf_ed25519)),
        ]
        .concat(),
    );
    out.add_bytes(
        "sha1-and-sha256-without-certificate",
        [
            pair(FINGERPRINT, &colon_hex(&sha256(&pki.leaf))),
            pair(FINGERPRINT, &hex(&sha1(&pki.leaf)).to_uppercase()),
            pair(VERIFY, "NONE"),
        ]
        .concat(),
    );

    // Certificate uploads.
    out.target("certificate_pem");
    for (name, der) in &certs {
        out.add(name, pem(der));
    }
    out.add("root-ca", pem(&pki.root));
    out.add("chain", &chain_pem);
    out.add("crlf", pem(&vector).replace('\n', "\r\n"));
    out.add(
        "trusted-certificate-tag",
        pem(&pki.leaf).replace(" CERTIFICATE-----", " TRUSTED CERTIFICATE-----"),
    );
    // Armour only, no key material: what a private key upload looks like to the parser.
    out.add(
        "private-key-armour",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );

    out.target("certificate_der");
    for (name, der) in &certs {
        out.add_bytes(name, der.to_vec());
    }
    out.add_bytes("root-ca", pki.root.clone());
    out.add_bytes("intermediate-ca", pki.intermediate.clone());

    out.target("csr");
    for (name, csr) in &pki.csrs {
        out.add(name, csr);
    }
    out.add(
        "new-certificate-request-tag",
        pki.csrs[0]
            .1
            .replace("CERTIFICATE REQUEST-----", "NEW CERTIFICATE REQUEST-----"),
    );

    out.target("crl");
    for (name, crl) in &pki.crls {
        out.add_bytes(&format!("{name}.der"), crl.clone());
        out.add(&format!("{name}.pem"), pem_block("X509 CRL", crl));
    }
    out.add("wrong-issuer.pem", pem_block("X509 CRL", &pki.other_crl));
    fs::create_dir_all(fuzz_dir.join("fixtures")).expect("fixtures dir");
    fs::write(fuzz_dir.join("fixtures/crl_ca.der"), &pki.root).expect("write the CA");

    // Path validation: a leaf and what follows it, against the fixture CA.
    out.target("path_validation");
    let chain_input = |certificates: &[&[u8]]| -> Vec<u8> {
        let mut input = vec![u8::try_from(certificates.len()).expect("a few")];
        for der in certificates {
            let len = u16::try_from(der.len()).expect("a certificate under 64 KiB");
            input.extend_from_slice(&len.to_le_bytes());
            input.extend_from_slice(der);
        }
        input
    };
    out.add_bytes("direct-p256", chain_input(&[&pki.leaf]));
    out.add_bytes("direct-ed25519", chain_input(&[&pki.leaf_ed25519]));
    out.add_bytes(
        "via-intermediate",
        chain_input(&[&pki.leaf_p384, &pki.intermediate]),
    );
    out.add_bytes(
        "intermediate-missing",
        chain_input(&[&pki.leaf_p384, &pki.leaf]),
    );
    out.add_bytes(
        "root-presented-too",
        chain_input(&[&pki.leaf_p384, &pki.root, &pki.intermediate]),
    );
    out.add_bytes("unrelated-issuer", chain_input(&[&vector]));

    // The verify JSON body.
    out.target("verify_body");
    out.add(
        "fingerprint-sha256",
        format!(r#"{{"fingerprint": "sha256:{vector_sha256}"}}"#),
    );
    out.add(
        "fingerprint-sha1-ip",
        format!(
            r#"{{"fingerprint": "{}", "ip": "203.0.113.7"}}"#,
            colon_hex(&sha1(&vector))
        ),
    );
    let json_pem = serde_json::to_string(&pem(&pki.leaf)).expect("string");
    out.add("certificate", format!(r#"{{"certificate": {json_pem}}}"#));
    out.add(
        "certificate-fingerprint-ip",
        format!(
            r#"{{"certificate": {json_pem}, "fingerprint": "{}", "ip": "[::1]:443"}}"#,
            hex(&sha256(&pki.leaf))
        ),
    );
    out.add(
        "certificate-nginx-escaped",
        format!(r#"{{"certificate": "{VECTOR_NGINX_ESCAPED}", "ip": null}}"#),
    );
    out.add(
        "array-form",
        format!(r#"["{}", null, "192.0.2.1"]"#, hex(&sha1(&vector))),
    );
    out.add("empty-object", "{}");

    println!("wrote {} seeds", out.count);
}

/// rcgen PKI: an ECDSA root and P-384 intermediate, leaves with P-256, P-384 and Ed25519
/// keys, CSRs and CRLs. Every key is dropped at the end.
struct Pki {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    leaf: Vec<u8>,
    leaf_p384: Vec<u8>,
    leaf_ed25519: Vec<u8>,
    csrs: Vec<(&'static str, String)>,
    crls: Vec<(&'static str, Vec<u8>)>,
    other_crl: Vec<u8>,
}

impl Pki {
    fn generate() -> Self {
        let root_key = KeyPair::generate().expect("key");
        let root = ca_params("certgate fuzz root CA")
            .self_signed(&root_key)
            .expect("root");
        let intermediate_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let mut params = ca_params("certgate fuzz intermediate CA");
        params.use_authority_key_identifier_extension = true;
        let intermediate = params
            .signed_by(&intermediate_key, &root, &root_key)
            .expect("intermediate");
        let leaf = |cn: &str, alg, issuer: &rcgen::Certificate, issuer_key: &KeyPair| {
            let key = KeyPair::generate_for(alg).expect("key");
            leaf_params(cn)
                .signed_by(&key, issuer, issuer_key)
                .expect("leaf")
                .der()
                .to_vec()
        };
        let p256 = leaf(
            "p256.example.test",
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &root,
            &root_key,
        );
        let p384 = leaf(
            "p384.example.test",
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &intermediate,
            &intermediate_key,
        );
        let ed25519 = leaf(
            "ed25519.example.test",
            &rcgen::PKCS_ED25519,
            &root,
            &root_key,
        );

        let csr = |cn: &str, alg| {
            let key = KeyPair::generate_for(alg).expect("key");
            let mut params = leaf_params(cn);
            // Extensions only a CA sets are not requested.
            params.use_authority_key_identifier_extension = false;
            params.is_ca = IsCa::NoCa;
            params
                .serialize_request(&key)
                .expect("csr")
                .pem()
                .expect("pem")
        };
        let csrs = vec![
            (
                "p256",
                csr("csr-p256.example.test", &rcgen::PKCS_ECDSA_P256_SHA256),
            ),
            (
                "p384",
                csr("csr-p384.example.test", &rcgen::PKCS_ECDSA_P384_SHA384),
            ),
            (
                "ed25519",
                csr("csr-ed25519.example.test", &rcgen::PKCS_ED25519),
            ),
        ];

        let serials: [&[u8]; 3] = [
            &[0x40, 0x04],
            &[0x00, 0x8f, 0x01],
            &[0x0a, 0x1b, 0x2c, 0x3d],
        ];
        let crl = |issuer: &rcgen::Certificate, key: &KeyPair, revoked: &[&[u8]]| {
            let now = rcgen::date_time_ymd(2026, 1, 1);
            CertificateRevocationListParams {
                this_update: now,
                next_update: rcgen::date_time_ymd(2026, 2, 1),
                crl_number: SerialNumber::from(7u64),
                issuing_distribution_point: None,
                revoked_certs: revoked
                    .iter()
                    .map(|serial| RevokedCertParams {
                        serial_number: SerialNumber::from_slice(serial),
                        revocation_time: now,
                        reason_code: Some(RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: KeyIdMethod::Sha256,
            }
            .signed_by(issuer, key)
            .expect("crl")
            .der()
            .to_vec()
        };
        let crls = vec![
            ("empty", crl(&root, &root_key, &[])),
            ("one-revoked", crl(&root, &root_key, &serials[..1])),
            ("three-revoked", crl(&root, &root_key, &serials)),
        ];
        let other_crl = crl(&intermediate, &intermediate_key, &serials[..1]);
        Self {
            root: root.der().to_vec(),
            intermediate: intermediate.der().to_vec(),
            leaf: p256,
            leaf_p384: p384,
            leaf_ed25519: ed25519,
            csrs,
            crls,
            other_crl,
        }
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "certgate fuzz");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    params
}

fn leaf_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.subject_alt_names = vec![
        SanType::DnsName(cn.to_owned().try_into().expect("DNS name")),
        SanType::URI(
            format!("spiffe://fuzz.test/agent/{cn}")
                .try_into()
                .expect("URI"),
        ),
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    params
}

/// The spellings of `tests/api/pki.rs`'s `TestCert`.
struct Spellings<'a>(&'a [u8]);

impl Spellings<'_> {
    fn nginx(&self) -> String {
        nginx_escape(&pem(self.0))
    }

    fn pem_with_spaces(&self) -> String {
        pem(self.0).trim_end().replace('\n', " ")
    }

    fn pem_one_line(&self) -> String {
        pem(self.0).replace('\n', "")
    }
}

fn sf_binary(der: &[u8]) -> String {
    format!(":{}:", base64(der))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    pem(der).replace("CERTIFICATE", tag)
}

/// `headers_combined` input: header index, u16 little-endian length, value.
fn pair(header: u8, value: &str) -> Vec<u8> {
    let len = u16::try_from(value.len()).expect("seed values are small");
    let mut out = vec![header];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    out
}

fn prefixed(mode: u8, value: &str) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(value.as_bytes());
    out
}

struct Seeds {
    corpus: PathBuf,
    dir: PathBuf,
    count: usize,
}

impl Seeds {
    fn new(fuzz_dir: &Path) -> Self {
        Self {
            corpus: fuzz_dir.join("corpus"),
            dir: PathBuf::new(),
            count: 0,
        }
    }

    /// Starts the corpus of `target` afresh: every file in it is written here.
    fn target(&mut self, target: &str) {
        self.dir = self.corpus.join(target);
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).expect("clear the old seeds");
        }
        fs::create_dir_all(&self.dir).expect("corpus dir");
    }

    fn add(&mut self, name: &str, value: impl AsRef<str>) {
        self.add_bytes(name, value.as_ref().as_bytes().to_vec());
    }

    fn add_bytes(&mut self, name: &str, value: Vec<u8>) {
        fs::write(self.dir.join(name), value).expect("write a seed");
        self.count += 1;
    }
}
