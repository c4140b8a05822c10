//! Header decoding, byte for byte against what each proxy sends (PROXIES.md §6: one real
//! certificate and its exact encodings), plus the rules that combine several headers.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use proptest::prelude::*;

use super::*;
use crate::domain::{Fingerprint, Sha1Fingerprint};

// ---------------------------------------------------------------- PROXIES.md §6 vectors

/// DER as standard base64: Caddy `certificate_der_base64`, Traefik ≥ 2.9.2, HAProxy.
const DER_B64: &str = "MIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRlc3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdlbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6rKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD+GJXNwaWZmZTovL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxlLnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta/5HkB8ImKgn9yAcE1+owHQYDVR0OBBYEFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r+Cl4j3Bn5KknJGpoyBC0WVDOcjMElvWSrK++oe6AiEArd1MrWv/XYF7Mg1jFxwwVVdl6svovEvuNpM4izhWvJ0=";

/// nginx `$ssl_client_escaped_cert` = Envoy XFCC `Cert="…"` content.
const NGINX_ESCAPED: &str = "-----BEGIN%20CERTIFICATE-----%0AMIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQG%0AEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRl%0Ac3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTEL%0AMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdl%0AbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC%0AAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6%0ArKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB%2FwQCMAAwDgYDVR0PAQH%2F%0ABAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD%2BGJXNwaWZmZTov%0AL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxl%0ALnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta%2F5HkB8ImKgn9yAcE1%2BowHQYDVR0OBBYE%0AFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r%2BCl4j3B%0An5KknJGpoyBC0WVDOcjMElvWSrK%2B%2Boe6AiEArd1MrWv%2FXYF7Mg1jFxwwVVdl6svo%0AvEvuNpM4izhWvJ0%3D%0A-----END%20CERTIFICATE-----%0A";

const SHA256_HEX: &str = "e370a13916749386369cdf14ce3e516412baa31f1c3bc2e07ca83a2e05a3ed62";
const SHA256_OPENSSL: &str = "E3:70:A1:39:16:74:93:86:36:9C:DF:14:CE:3E:51:64:12:BA:A3:1F:1C:3B:C2:E0:7C:A8:3A:2E:05:A3:ED:62";
const SHA1_HEX: &str = "e9a63c4a329eabd9fd9fa7ddd06e36eb4d592f41";
const SHA1_OPENSSL: &str = "E9:A6:3C:4A:32:9E:AB:D9:FD:9F:A7:DD:D0:6E:36:EB:4D:59:2F:41";
const SUBJECT: &str = "CN=agent-001,OU=agents,O=Sidecar Test,C=US";
const SHA256_OF_NOTHING: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn der() -> Vec<u8> {
    STANDARD.decode(DER_B64).unwrap()
}

/// The plain PEM nginx's `$ssl_client_raw_cert` holds: 64-character lines, LF, trailing LF.
fn pem() -> String {
    let body: Vec<String> = DER_B64
        .as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8(line.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        body.join("\n")
    )
}

/// Traefik before v2.9.2: `url.QueryEscape` of the base64.
fn traefik_escaped(b64: &str) -> String {
    b64.replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D")
}

/// Envoy XFCC with `SANITIZE_SET` and every detail on (PROXIES.md §6, 2018 bytes).
fn xfcc_full() -> String {
    format!(
        "Hash={SHA256_HEX};Cert=\"{NGINX_ESCAPED}\";Chain=\"{NGINX_ESCAPED}\";\
         Subject=\"{SUBJECT}\";URI=spiffe://example.test/agent/agent-001;\
         DNS=agent-001.example.test"
    )
}

/// nginx `ngx_escape_uri(…, NGX_ESCAPE_URI_COMPONENT)`; for PEM text also what Envoy's
/// `urlEncode` produces.
use crate::escape::nginx_escaped as nginx_escape;

/// Another real certificate, for "two different certificates" cases.
fn other_der() -> Vec<u8> {
    rcgen::generate_simple_self_signed(vec!["other.example.test".to_owned()])
        .unwrap()
        .cert
        .der()
        .to_vec()
}

// ---------------------------------------------------------------- helpers

fn enabled(list: &str) -> IdentityHeaders {
    IdentityHeaders::parse(list).unwrap()
}

/// `read_headers` over a list of (name, value) pairs; names match case-insensitively, as in
/// an HTTP header map, and a name may repeat.
fn read_raw(list: &str, headers: &[(&str, &[u8])]) -> Result<Option<Presented>, Rejection> {
    let enabled = enabled(list);
    let present: Vec<(IdentityHeader, &[u8])> = enabled
        .enabled()
        .flat_map(|header| {
            headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(header.name()))
                .map(move |(_, v)| (header, *v))
        })
        .collect();
    read_headers(enabled, &present)
}

fn read(list: &str, headers: &[(&str, &str)]) -> Result<Option<Presented>, Rejection> {
    let raw: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    read_raw(list, &raw)
}

/// Every header enabled, and something must have been present.
fn read_all(headers: &[(&str, &str)]) -> Result<Presented, Rejection> {
    read("*", headers).map(|p| p.unwrap())
}

fn leaf(presented: &Presented) -> &[u8] {
    &presented.certificate.as_ref().unwrap().der
}

fn chain(presented: &Presented) -> &[Vec<u8>] {
    &presented.certificate.as_ref().unwrap().chain
}

fn is_nothing(presented: &Presented) -> bool {
    presented.certificate.is_none() && presented.fingerprints.is_empty()
}

fn sha256_fp() -> PresentedFingerprint {
    PresentedFingerprint::Sha256(Fingerprint::of_der(&der()))
}

fn sha1_fp() -> PresentedFingerprint {
    PresentedFingerprint::Sha1(Sha1Fingerprint::of_der(&der()))
}

// ---------------------------------------------------------------- the vectors themselves

#[test]
fn the_vectors_agree_with_each_other() {
    let der = der();
    assert_eq!(der.len(), 587);
    assert_eq!(
        hex::encode(Fingerprint::of_der(&der).as_bytes()),
        SHA256_HEX
    );
    assert_eq!(
        hex::encode(Sha1Fingerprint::of_der(&der).as_bytes()),
        SHA1_HEX
    );
    assert_eq!(NGINX_ESCAPED.len(), 905);
    assert_eq!(nginx_escape(&pem()), NGINX_ESCAPED);
    assert_eq!(crate::x509::der_to_pem(&der), pem());
    assert_eq!(xfcc_full().len(), 2018);
}

// ---------------------------------------------------------------- IdentityHeaders::parse

#[test]
fn identity_headers_parse() {
    use IdentityHeader as H;
    // None: refused with an error.
    let cases: Vec<(&str, &str, Option<Vec<H>>)> = vec![
        (
            "the default",
            "X-Client-Cert,X-Client-Cert-Fingerprint",
            Some(vec![H::ClientCert, H::ClientCertFingerprint]),
        ),
        (
            "case and spaces do not matter",
            "  x-CLIENT-cert ,X-CLIENT-VERIFY , ",
            Some(vec![H::ClientCert, H::ClientVerify]),
        ),
        ("star", "*", Some(IdentityHeader::ALL.to_vec())),
        (
            "star among names",
            "X-Client-Cert, *",
            Some(IdentityHeader::ALL.to_vec()),
        ),
        (
            "Client-Cert brings Client-Cert-Chain",
            "client-cert",
            Some(vec![H::Rfc9440ClientCert, H::Rfc9440ClientCertChain]),
        ),
        (
            "Client-Cert-Chain alone does not bring Client-Cert",
            "Client-Cert-Chain",
            Some(vec![H::Rfc9440ClientCertChain]),
        ),
        (
            "Traefik and Envoy",
            "X-Forwarded-Tls-Client-Cert,X-Forwarded-Client-Cert",
            Some(vec![H::ForwardedTlsClientCert, H::ForwardedClientCert]),
        ),
        (
            "a name twice",
            "X-Client-Cert,x-client-cert",
            Some(vec![H::ClientCert]),
        ),
        ("nothing", "", Some(vec![])),
        ("unknown name", "X-Client-Certificate", None),
        ("unknown after a good name", "X-Client-Cert,X-Bogus", None),
        ("unknown after star", "*,X-Bogus", None),
        ("unknown before star", "X-Bogus,*", None),
        ("underscore spelling", "X_Client_Cert", None),
    ];
    for (name, list, expected) in cases {
        let got = IdentityHeaders::parse(list)
            .ok()
            .map(|set| set.enabled().collect::<Vec<_>>());
        assert_eq!(got, expected, "{name}: {list:?}");
    }
}

#[test]
fn unknown_identity_header_error_names_it_and_the_known_ones() {
    let message = IdentityHeaders::parse("X-Client-Cert,X-Bogus").unwrap_err();
    assert!(message.contains("X-Bogus"), "{message}");
    for header in IdentityHeader::ALL {
        assert!(message.contains(header.name()), "{message}");
    }
}

#[test]
fn every_name_parses_to_itself() {
    for header in IdentityHeader::ALL {
        let set = enabled(&header.name().to_ascii_uppercase());
        assert!(set.enables(header), "{}", header.name());
        assert!(IdentityHeaders::all().enables(header));
    }
}

// ---------------------------------------------------------------- X-Client-Cert formats

#[test]
fn x_client_cert_every_format_decodes_to_the_same_der() {
    let der = der();
    let pem = pem();
    let cases: Vec<(&str, String)> = vec![
        ("nginx $ssl_client_escaped_cert", NGINX_ESCAPED.to_owned()),
        (
            "nginx escaped, lowercase hex escapes",
            NGINX_ESCAPED
                .replace("%2F", "%2f")
                .replace("%2B", "%2b")
                .replace("%0A", "%0a")
                .replace("%3D", "%3d"),
        ),
        ("plain PEM, line breaks as spaces", pem.replace('\n', " ")),
        ("plain PEM, line breaks removed", pem.replace('\n', "")),
        (
            "nginx $ssl_client_cert folding, tabs kept",
            pem.trim_end().replace('\n', "\t"),
        ),
        ("Caddy certificate_der_base64", DER_B64.to_owned()),
        (
            "base64 DER without padding",
            DER_B64.trim_end_matches('=').to_owned(),
        ),
        ("surrounding whitespace", format!("  {DER_B64}  ")),
    ];
    for (name, value) in cases {
        let presented = read("X-Client-Cert", &[("X-Client-Cert", &value)])
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .unwrap();
        assert_eq!(leaf(&presented), der, "{name}");
        assert!(chain(&presented).is_empty(), "{name}");
        let cert = presented.certificate.as_ref().unwrap();
        assert_eq!(
            hex::encode(cert.fingerprint.as_bytes()),
            SHA256_HEX,
            "{name}"
        );
        assert_eq!(hex::encode(cert.sha1().as_bytes()), SHA1_HEX, "{name}");
    }
}

#[test]
fn x_client_cert_pem_may_carry_a_chain() {
    let other = other_der();
    let value = nginx_escape(&format!("{}{}", pem(), crate::x509::der_to_pem(&other)));
    let presented = read("X-Client-Cert", &[("X-Client-Cert", &value)])
        .unwrap()
        .unwrap();
    assert_eq!(leaf(&presented), der());
    assert_eq!(chain(&presented), [other]);
}

#[test]
fn x_client_cert_pem_text_around_the_armour() {
    // `openssl x509 -text` or `-subject` output before the block, dashes included.
    let annotated = format!("subject=CN = agent-001, O = Sidecar-Test\n{}", pem());
    let presented = read(
        "X-Client-Cert",
        &[("X-Client-Cert", &nginx_escape(&annotated))],
    )
    .unwrap()
    .unwrap();
    assert_eq!(leaf(&presented), der());

    let mismatched_end = pem().replace("END CERTIFICATE", "END PRIVATE KEY");
    assert_eq!(
        read("X-Client-Cert", &[("X-Client-Cert", &mismatched_end)]).unwrap_err(),
        Rejection::MalformedCertificate,
        "a certificate block closed by another label"
    );
}

#[test]
fn unescaping_keeps_what_is_not_an_escape_and_drops_whitespace() {
    let cases: [(&str, &[u8]); 7] = [
        ("AB%2FCD", b"AB/CD"),
        ("AB%2fcd", b"AB/cd"),
        ("a b\tc\r\nd", b"abcd"),
        ("a%0Ab%20c", b"abc"),
        ("50%", b"50%"),
        ("%zz%4", b"%zz%4"),
        ("+/=", b"+/="),
    ];
    for (text, expected) in cases {
        assert_eq!(unescaped_compact(text).unwrap(), expected, "{text:?}");
    }
}

// ---------------------------------------------------------------- Traefik

#[test]
fn traefik_current_and_pre_2_9_2_forms() {
    let der = der();
    let other = other_der();
    let other_b64 = STANDARD.encode(&other);
    let cases: Vec<(&str, String, Vec<Vec<u8>>)> = vec![
        ("v2.9.2+, leaf only", DER_B64.to_owned(), vec![]),
        ("before v2.9.2, leaf only", traefik_escaped(DER_B64), vec![]),
        (
            "v2.9.2+, leaf and intermediate",
            format!("{DER_B64},{other_b64}"),
            vec![other.clone()],
        ),
        (
            "before v2.9.2, leaf and intermediate",
            format!(
                "{},{}",
                traefik_escaped(DER_B64),
                traefik_escaped(&other_b64)
            ),
            vec![other.clone()],
        ),
        (
            "stray separators",
            format!(",{DER_B64}, ,{other_b64},"),
            vec![other.clone()],
        ),
    ];
    for (name, value, expected_chain) in cases {
        let presented = read(
            "X-Forwarded-Tls-Client-Cert",
            &[("X-Forwarded-Tls-Client-Cert", &value)],
        )
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .unwrap();
        assert_eq!(leaf(&presented), der, "{name}");
        assert_eq!(chain(&presented), expected_chain, "{name}");
    }
}

#[test]
fn traefik_plus_is_base64_data_not_a_space() {
    // The vector holds `+` in several places; form-decoding would turn them into spaces
    // and change the certificate.
    assert!(DER_B64.contains('+'));
    let with_space = DER_B64.replace('+', " ");
    let presented = read(
        "X-Forwarded-Tls-Client-Cert",
        &[("X-Forwarded-Tls-Client-Cert", DER_B64)],
    )
    .unwrap()
    .unwrap();
    assert_eq!(leaf(&presented), der());
    assert_ne!(
        read(
            "X-Forwarded-Tls-Client-Cert",
            &[("X-Forwarded-Tls-Client-Cert", &with_space)],
        )
        .ok()
        .flatten()
        .and_then(|p| p.certificate)
        .map(|c| c.der.to_vec()),
        Some(der())
    );
}

#[test]
fn chains_are_bounded() {
    let other = STANDARD.encode(other_der());
    let long = std::iter::once(DER_B64.to_owned())
        .chain(std::iter::repeat_n(other, 20))
        .collect::<Vec<_>>()
        .join(",");
    let presented = read_all(&[("X-Forwarded-Tls-Client-Cert", &long)]).unwrap();
    assert_eq!(leaf(&presented), der());
    assert_eq!(chain(&presented).len(), 8);
}

// ---------------------------------------------------------------- Envoy XFCC

#[test]
fn xfcc_full_element_gives_the_certificate() {
    let presented = read(
        "X-Forwarded-Client-Cert",
        &[("X-Forwarded-Client-Cert", &xfcc_full())],
    )
    .unwrap()
    .unwrap();
    assert_eq!(leaf(&presented), der());
    assert!(
        chain(&presented).is_empty(),
        "Chain repeats the leaf, which is not kept twice"
    );
    assert!(
        presented.fingerprints.is_empty(),
        "Hash was checked and dropped"
    );
}

#[test]
fn xfcc_cases() {
    let other = other_der();
    let other_escaped = nginx_escape(&crate::x509::der_to_pem(&other));
    let other_hash = hex::encode(Fingerprint::of_der(&other).as_bytes());
    let forged = format!("Hash={other_hash};Cert=\"{other_escaped}\"");
    enum Want {
        Cert,
        Sha256Only,
        Nothing,
        Fails(Rejection),
    }
    let cases: Vec<(&str, String, Want)> = vec![
        (
            "nearest proxy's element is last; earlier (forged) ones are ignored",
            format!("{forged},{}", xfcc_full()),
            Want::Cert,
        ),
        (
            "three hops",
            format!("By=spiffe://a;{forged},{forged},{}", xfcc_full()),
            Want::Cert,
        ),
        (
            "commas inside a quoted Subject do not split elements",
            format!(
                "{forged},By=spiffe://proxy;Hash={SHA256_HEX};Subject=\"{SUBJECT}\";\
                 Cert=\"{NGINX_ESCAPED}\""
            ),
            Want::Cert,
        ),
        (
            "escaped quote inside a quoted Subject",
            format!("Subject=\"CN=a\\\",b,O=x\";Cert=\"{NGINX_ESCAPED}\""),
            Want::Cert,
        ),
        ("Hash only", format!("Hash={SHA256_HEX}"), Want::Sha256Only),
        (
            "Hash only, nearest proxy, after a forged full element",
            format!("{forged},By=spiffe://proxy;Hash={SHA256_HEX}"),
            Want::Sha256Only,
        ),
        (
            "keys are case-insensitive",
            format!("hash={SHA256_HEX};CERT=\"{NGINX_ESCAPED}\""),
            Want::Cert,
        ),
        (
            "empty Subject and URI as Envoy writes them",
            format!("Hash={SHA256_HEX};Subject=\"\";URI=;Cert=\"{NGINX_ESCAPED}\""),
            Want::Cert,
        ),
        (
            "last element without certificate details",
            format!("{},By=spiffe://proxy", xfcc_full()),
            Want::Nothing,
        ),
        (
            "Hash that does not match Cert",
            format!("Hash={other_hash};Cert=\"{NGINX_ESCAPED}\""),
            Want::Fails(Rejection::FingerprintMismatch),
        ),
        (
            "Hash that is SHA-1",
            format!("Hash={SHA1_HEX}"),
            Want::Fails(Rejection::MalformedRequest),
        ),
        (
            "Hash that is not hex",
            "Hash=nothex".to_owned(),
            Want::Fails(Rejection::MalformedRequest),
        ),
        (
            "Cert that is not PEM",
            "Cert=\"garbage\"".to_owned(),
            Want::Fails(Rejection::MalformedCertificate),
        ),
        (
            "Hash of empty input means no certificate",
            format!("Hash={SHA256_OF_NOTHING}"),
            Want::Nothing,
        ),
    ];
    for (name, value, want) in cases {
        let got = read(
            "X-Forwarded-Client-Cert",
            &[("X-Forwarded-Client-Cert", &value)],
        )
        .map(Option::unwrap);
        match (want, got) {
            (Want::Cert, Ok(p)) => {
                assert_eq!(leaf(&p), der(), "{name}");
                assert!(p.fingerprints.is_empty(), "{name}");
            }
            (Want::Sha256Only, Ok(p)) => {
                assert!(p.certificate.is_none(), "{name}");
                assert_eq!(p.fingerprints, [sha256_fp()], "{name}");
            }
            (Want::Nothing, Ok(p)) => assert!(is_nothing(&p), "{name}: {p:?}"),
            (Want::Fails(expected), Err(got)) => assert_eq!(got, expected, "{name}"),
            (_, got) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

// ---------------------------------------------------------------- RFC 9440

#[test]
fn rfc9440_client_cert_and_chain() {
    let other = other_der();
    let chain_value = format!(":{}:, :{}:", STANDARD.encode(&other), DER_B64);
    let presented = read(
        "Client-Cert",
        &[
            ("Client-Cert", &format!(":{DER_B64}:")),
            ("Client-Cert-Chain", &chain_value),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(leaf(&presented), der());
    assert_eq!(
        chain(&presented),
        [other],
        "the leaf is not kept in the chain"
    );

    for (name, value, expected) in [
        ("no colons", DER_B64.to_owned(), Rejection::MalformedRequest),
        (
            "one colon",
            format!(":{DER_B64}"),
            Rejection::MalformedRequest,
        ),
        (
            "not base64",
            ":***:".to_owned(),
            Rejection::MalformedCertificate,
        ),
        (
            "empty byte sequence",
            "::".to_owned(),
            Rejection::MalformedCertificate,
        ),
    ] {
        assert_eq!(
            read("Client-Cert", &[("Client-Cert", &value)]).unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn rfc9440_chain_without_a_leaf_is_no_certificate() {
    let presented = read(
        "Client-Cert",
        &[("Client-Cert-Chain", &format!(":{DER_B64}:"))],
    )
    .unwrap()
    .unwrap();
    assert!(is_nothing(&presented));
}

// ---------------------------------------------------------------- fingerprints

#[test]
fn fingerprint_header_spellings() {
    let cases: Vec<(&str, String, PresentedFingerprint)> = vec![
        ("Caddy SHA-256", SHA256_HEX.to_owned(), sha256_fp()),
        ("canonical", format!("sha256:{SHA256_HEX}"), sha256_fp()),
        ("OpenSSL SHA-256", SHA256_OPENSSL.to_owned(), sha256_fp()),
        (
            "OpenSSL SHA-256 lowercase",
            SHA256_OPENSSL.to_lowercase(),
            sha256_fp(),
        ),
        ("nginx SHA-1", SHA1_HEX.to_owned(), sha1_fp()),
        ("HAProxy SHA-1", SHA1_HEX.to_uppercase(), sha1_fp()),
        ("OpenSSL SHA-1", SHA1_OPENSSL.to_owned(), sha1_fp()),
    ];
    for (name, value, expected) in cases {
        let presented = read_all(&[("X-Client-Cert-Fingerprint", &value)]).unwrap();
        assert!(presented.certificate.is_none(), "{name}");
        assert_eq!(presented.fingerprints, [expected], "{name}");
    }
    assert_eq!(
        read_all(&[("X-Client-Cert-Fingerprint", "forged")]).unwrap_err(),
        Rejection::MalformedRequest
    );
}

#[test]
fn sha1_and_sha256_of_one_certificate_without_it_are_both_kept() {
    let presented = read_all(&[
        ("X-Client-Cert-Fingerprint", SHA1_HEX),
        ("X-Forwarded-Client-Cert", &format!("Hash={SHA256_HEX}")),
    ])
    .unwrap();
    assert_eq!(presented.fingerprints.len(), 2);
    assert!(presented.fingerprints.contains(&sha1_fp()));
    assert!(presented.fingerprints.contains(&sha256_fp()));
}

#[test]
fn the_same_fingerprint_twice_is_kept_once() {
    let presented = read_all(&[
        ("X-Client-Cert-Fingerprint", SHA256_HEX),
        ("X-Client-Cert-Fingerprint", SHA256_OPENSSL),
    ])
    .unwrap();
    assert_eq!(presented.fingerprints, [sha256_fp()]);
}

// ---------------------------------------------------------------- "no certificate"

#[test]
fn no_certificate_spellings_mean_absent() {
    let spellings = [
        "",
        "   ",
        "{http.request.tls.client.fingerprint}",
        "{http.request.tls.client.certificate_der_base64}",
        SHA256_OF_NOTHING,
        &format!("sha256:{SHA256_OF_NOTHING}"),
        &SHA256_OF_NOTHING.to_uppercase(),
    ];
    for header in ["X-Client-Cert-Fingerprint", "X-Client-Cert"] {
        for value in spellings {
            if header == "X-Client-Cert" && value.to_lowercase().contains(SHA256_OF_NOTHING) {
                continue; // a fingerprint spelling, not a certificate one
            }
            let presented = read_all(&[(header, value)])
                .unwrap_or_else(|e| panic!("{header}: {value:?}: {e:?}"));
            assert!(is_nothing(&presented), "{header}: {value:?}");
        }
    }
    for header in [
        "X-Forwarded-Tls-Client-Cert",
        "X-Forwarded-Client-Cert",
        "Client-Cert",
        "Client-Cert-Chain",
    ] {
        let presented = read_all(&[(header, "")]).unwrap();
        assert!(is_nothing(&presented), "{header}");
    }
}

#[test]
fn a_no_certificate_spelling_does_not_hide_a_real_one() {
    let presented = read_all(&[
        (
            "X-Client-Cert-Fingerprint",
            "{http.request.tls.client.fingerprint}",
        ),
        ("X-Client-Cert", DER_B64),
    ])
    .unwrap();
    assert_eq!(leaf(&presented), der());
}

// ---------------------------------------------------------------- several headers at once

#[test]
fn certificate_and_fingerprints_that_agree() {
    for (name, fingerprint) in [
        ("Caddy SHA-256", SHA256_HEX),
        ("nginx SHA-1", SHA1_HEX),
        ("OpenSSL SHA-1", SHA1_OPENSSL),
    ] {
        let presented = read_all(&[
            ("X-Client-Cert", NGINX_ESCAPED),
            ("X-Client-Cert-Fingerprint", fingerprint),
        ])
        .unwrap();
        assert_eq!(leaf(&presented), der(), "{name}");
        assert!(
            presented.fingerprints.is_empty(),
            "{name}: checked, then dropped"
        );
    }
    let same_cert_everywhere = read_all(&[
        ("X-Client-Cert", NGINX_ESCAPED),
        ("X-Forwarded-Tls-Client-Cert", DER_B64),
        ("X-Forwarded-Client-Cert", &xfcc_full()),
        ("Client-Cert", &format!(":{DER_B64}:")),
        ("X-Client-Cert-Fingerprint", SHA1_HEX),
    ])
    .unwrap();
    assert_eq!(leaf(&same_cert_everywhere), der());
}

#[test]
fn headers_naming_two_certificates_are_a_mismatch() {
    let other = other_der();
    let other_b64 = STANDARD.encode(&other);
    let other_sha256 = hex::encode(Fingerprint::of_der(&other).as_bytes());
    let other_sha1 = hex::encode(Sha1Fingerprint::of_der(&other).as_bytes());
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "certificate and another SHA-256",
            vec![
                ("X-Client-Cert", NGINX_ESCAPED.into()),
                ("X-Client-Cert-Fingerprint", other_sha256.clone()),
            ],
        ),
        (
            "certificate and another SHA-1",
            vec![
                ("X-Client-Cert", DER_B64.into()),
                ("X-Client-Cert-Fingerprint", other_sha1.clone()),
            ],
        ),
        (
            "certificate, its SHA-1, and another SHA-256",
            vec![
                ("X-Client-Cert", DER_B64.into()),
                ("X-Client-Cert-Fingerprint", SHA1_HEX.into()),
                ("X-Client-Cert-Fingerprint", other_sha256.clone()),
            ],
        ),
        (
            "two X-Client-Cert lines",
            vec![
                ("X-Client-Cert", DER_B64.into()),
                ("X-Client-Cert", other_b64.clone()),
            ],
        ),
        (
            "nginx certificate and a different Traefik one",
            vec![
                ("X-Client-Cert", NGINX_ESCAPED.into()),
                ("X-Forwarded-Tls-Client-Cert", other_b64.clone()),
            ],
        ),
        (
            "XFCC certificate and a different RFC 9440 one",
            vec![
                ("X-Forwarded-Client-Cert", xfcc_full()),
                ("Client-Cert", format!(":{other_b64}:")),
            ],
        ),
        (
            "XFCC Hash and a different X-Client-Cert",
            vec![
                ("X-Forwarded-Client-Cert", format!("Hash={SHA256_HEX}")),
                ("X-Client-Cert", other_b64.clone()),
            ],
        ),
        (
            "two different SHA-256 fingerprints, no certificate",
            vec![
                ("X-Client-Cert-Fingerprint", SHA256_HEX.into()),
                ("X-Forwarded-Client-Cert", format!("Hash={other_sha256}")),
            ],
        ),
        (
            "two different SHA-1 fingerprints, no certificate",
            vec![
                ("X-Client-Cert-Fingerprint", SHA1_HEX.into()),
                ("X-Client-Cert-Fingerprint", other_sha1.clone()),
            ],
        ),
    ];
    for (name, headers) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            read_all(&headers).unwrap_err(),
            Rejection::FingerprintMismatch,
            "{name}"
        );
    }
}

// ---------------------------------------------------------------- refusals

#[test]
fn oversized_identity_headers_are_malformed_requests() {
    let at_limit = "A".repeat(MAX_IDENTITY_HEADER_BYTES);
    let over = "A".repeat(MAX_IDENTITY_HEADER_BYTES + 1);
    assert!(
        read_all(&[("X-Client-Cert", &at_limit)]).is_ok(),
        "16 KiB exactly is read"
    );
    for header in IdentityHeader::ALL {
        assert_eq!(
            read_all(&[(header.name(), &over)]).unwrap_err(),
            Rejection::MalformedRequest,
            "{}",
            header.name()
        );
    }
    let blank = " ".repeat(MAX_IDENTITY_HEADER_BYTES + 1);
    assert_eq!(
        read_all(&[("X-Client-Cert", &blank)]).unwrap_err(),
        Rejection::MalformedRequest,
        "size is checked before anything else"
    );
    assert!(
        read("X-Client-Cert", &[("X-Forwarded-Client-Cert", &over)])
            .unwrap()
            .is_none(),
        "a header that is not enabled is not even measured"
    );
}

#[test]
fn unreadable_values_are_refused() {
    let cases: Vec<(&str, &str, &str, Rejection)> = vec![
        (
            "garbage base64",
            "X-Client-Cert",
            "not base64 at all!",
            Rejection::MalformedCertificate,
        ),
        (
            "base64 of nothing",
            "X-Client-Cert",
            "====",
            Rejection::MalformedCertificate,
        ),
        (
            "PEM armour around garbage",
            "X-Client-Cert",
            "-----BEGIN CERTIFICATE-----!!!-----END CERTIFICATE-----",
            Rejection::MalformedCertificate,
        ),
        (
            "PEM without its END line",
            "X-Client-Cert",
            "-----BEGIN CERTIFICATE-----MIIC",
            Rejection::MalformedCertificate,
        ),
        (
            "a private key",
            "X-Client-Cert",
            "-----BEGIN PRIVATE KEY-----AAAA-----END PRIVATE KEY-----",
            Rejection::MalformedCertificate,
        ),
        (
            "percent-encoding of invalid UTF-8",
            "X-Client-Cert",
            "%FF%FE",
            Rejection::MalformedRequest,
        ),
        (
            "Traefik garbage",
            "X-Forwarded-Tls-Client-Cert",
            "%%%,???",
            Rejection::MalformedCertificate,
        ),
        (
            "fingerprint garbage",
            "X-Client-Cert-Fingerprint",
            "abc",
            Rejection::MalformedRequest,
        ),
        (
            "fingerprint of the wrong length",
            "X-Client-Cert-Fingerprint",
            &SHA256_HEX[..62],
            Rejection::MalformedRequest,
        ),
    ];
    for (name, header, value, expected) in cases {
        assert_eq!(
            read_all(&[(header, value)]).unwrap_err(),
            expected,
            "{name}"
        );
    }
    assert_eq!(
        read_raw("*", &[("X-Client-Cert", b"\xff\xfe")]).unwrap_err(),
        Rejection::MalformedRequest,
        "not UTF-8"
    );
}

// ---------------------------------------------------------------- enabled or not

#[test]
fn headers_not_enabled_are_ignored() {
    let other = STANDARD.encode(other_der());
    let default = "X-Client-Cert,X-Client-Cert-Fingerprint";
    for header in [
        "X-Forwarded-Tls-Client-Cert",
        "X-Forwarded-Client-Cert",
        "Client-Cert",
        "Client-Cert-Chain",
        "X-Client-Verify",
    ] {
        assert!(
            read(default, &[(header, "garbage that would be refused")])
                .unwrap()
                .is_none(),
            "{header}"
        );
    }
    // A forged certificate in a header that is not enabled cannot cause a mismatch either.
    let presented = read(
        default,
        &[
            ("X-Client-Cert", DER_B64),
            ("X-Forwarded-Tls-Client-Cert", &other),
            ("Client-Cert", &format!(":{other}:")),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(leaf(&presented), der());
    assert!(
        read(
            "X-Client-Cert",
            &[("X-Client-Cert-Fingerprint", SHA256_HEX)]
        )
        .unwrap()
        .is_none()
    );
    assert!(read("", &[("X-Client-Cert", DER_B64)]).unwrap().is_none());
}

#[test]
fn ok_none_only_when_no_enabled_header_is_present() {
    assert!(read("*", &[]).unwrap().is_none());
    assert!(read("*", &[("X-Agent-Id", "forged")]).unwrap().is_none());
    let present_but_empty = read("*", &[("X-Client-Cert", "")]).unwrap();
    assert!(present_but_empty.is_some_and(|p| is_nothing(&p)));
}

// ---------------------------------------------------------------- X-Client-Verify

#[test]
fn x_client_verify() {
    let cases: Vec<(&str, Vec<&str>, Option<bool>)> = vec![
        ("absent", vec![], None),
        ("SUCCESS", vec!["SUCCESS"], Some(true)),
        ("lower case", vec!["success"], Some(true)),
        (
            "FAILED",
            vec!["FAILED:unable to verify the first certificate"],
            Some(false),
        ),
        ("NONE", vec!["NONE"], Some(false)),
        (
            "SUCCESS then FAILED",
            vec!["SUCCESS", "FAILED:x"],
            Some(false),
        ),
        (
            "FAILED then SUCCESS",
            vec!["FAILED:x", "SUCCESS"],
            Some(false),
        ),
        ("empty", vec![""], None),
    ];
    for (name, values, expected) in cases {
        let mut headers = vec![("X-Client-Cert-Fingerprint", SHA1_HEX)];
        headers.extend(values.iter().map(|v| ("X-Client-Verify", *v)));
        let presented = read_all(&headers).unwrap();
        assert_eq!(presented.proxy_verified, expected, "{name}");
        assert_eq!(presented.fingerprints, [sha1_fp()], "{name}");
    }
    let only_verify = read_all(&[("X-Client-Verify", "NONE")]).unwrap();
    assert!(is_nothing(&only_verify));
    assert_eq!(only_verify.proxy_verified, Some(false));
}

// ---------------------------------------------------------------- the JSON body

#[test]
fn read_body_cases() {
    let other = other_der();
    let other_sha256 = format!(
        "sha256:{}",
        hex::encode(Fingerprint::of_der(&other).as_bytes())
    );
    let pem = pem();

    let p = read_body(Some(&pem), None).unwrap();
    assert_eq!(
        leaf(&p),
        der(),
        "PEM with real line breaks, as JSON carries it"
    );
    let p = read_body(Some(DER_B64), Some(SHA1_HEX)).unwrap();
    assert_eq!(leaf(&p), der(), "base64 DER and its SHA-1");
    assert!(p.fingerprints.is_empty());
    let p = read_body(None, Some(SHA256_OPENSSL)).unwrap();
    assert_eq!(p.fingerprints, [sha256_fp()]);
    assert_eq!(p.proxy_verified, None);

    for (name, certificate, fingerprint) in [
        ("nothing", None, None),
        ("empty strings", Some(""), Some("")),
        ("SHA-256 of nothing", None, Some(SHA256_OF_NOTHING)),
        (
            "placeholder",
            Some("{http.request.tls.client.certificate_der_base64}"),
            None,
        ),
    ] {
        assert!(
            is_nothing(&read_body(certificate, fingerprint).unwrap()),
            "{name}"
        );
    }
    assert_eq!(
        read_body(Some(&pem), Some(&other_sha256)).unwrap_err(),
        Rejection::FingerprintMismatch
    );
    assert_eq!(
        read_body(Some("garbage!"), None).unwrap_err(),
        Rejection::MalformedCertificate
    );
    assert_eq!(
        read_body(None, Some("garbage")).unwrap_err(),
        Rejection::MalformedRequest
    );
}

#[test]
fn describe_names_what_was_presented() {
    let with_cert = read_all(&[("X-Client-Cert", DER_B64)]).unwrap();
    assert_eq!(describe(&with_cert), Some(format!("sha256:{SHA256_HEX}")));
    let sha1_only = read_all(&[("X-Client-Cert-Fingerprint", SHA1_HEX)]).unwrap();
    assert_eq!(describe(&sha1_only), Some(format!("sha1:{SHA1_HEX}")));
    assert_eq!(describe(&Presented::default()), None);
}

// ---------------------------------------------------------------- properties

/// Every header name, each with the same value, every header enabled.
fn read_everywhere(value: &[u8]) -> Result<Option<Presented>, Rejection> {
    let headers: Vec<(&str, &[u8])> = IdentityHeader::ALL
        .iter()
        .map(|h| (h.name(), value))
        .collect();
    read_raw("*", &headers)
}

proptest! {
    #[test]
    fn decoding_never_panics_on_arbitrary_bytes(
        value in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let _ = read_everywhere(&value);
        let _ = read_body(std::str::from_utf8(&value).ok(), std::str::from_utf8(&value).ok());
    }

    #[test]
    fn decoding_never_panics_on_header_like_text(
        value in "(-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----|%[0-9A-Fa-f]{0,2}|[A-Za-z0-9+/=]{0,8}|[,;:=\" \\\\{}]|Hash=|Cert=|Chain=|sha256:|é){0,80}",
    ) {
        let _ = read_everywhere(value.as_bytes());
        let _ = read_body(Some(&value), Some(&value));
    }

    #[test]
    fn every_encoding_of_the_same_bytes_decodes_to_them(
        der in proptest::collection::vec(any::<u8>(), 1..3000),
    ) {
        let b64 = STANDARD.encode(&der);
        let pem = crate::x509::der_to_pem(&der);
        let escaped = nginx_escape(&pem);
        let encodings = [
            ("X-Client-Cert", b64.clone()),
            ("X-Client-Cert", STANDARD_NO_PAD.encode(&der)),
            ("X-Client-Cert", escaped.clone()),
            ("X-Client-Cert", pem.replace('\n', " ")),
            ("X-Forwarded-Tls-Client-Cert", b64.clone()),
            ("X-Forwarded-Tls-Client-Cert", traefik_escaped(&b64)),
            ("X-Forwarded-Client-Cert", format!("Cert=\"{escaped}\"")),
            ("Client-Cert", format!(":{b64}:")),
        ];
        for (header, value) in encodings {
            let presented = read_all(&[(header, &value)]);
            prop_assert!(presented.is_ok(), "{} {:?}", header, presented);
            let presented = presented.unwrap();
            prop_assert_eq!(leaf(&presented), der.as_slice(), "{}", header);
        }
    }
}
