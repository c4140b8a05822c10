//! `B/verify`: every certificate and fingerprint encoding the proxies send, which header
//! names certgate believes, the "no certificate" spellings, size limits and the JSON body.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Headers, TestApp, VerifyAnswer, spawn_app, spawn_app_with};
use crate::pki::{TestCert, pki};

/// SHA-256 of empty input: Caddy ≥ 2.11.2 sends it when there is no client certificate.
const SHA256_OF_NOTHING: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An app with `identity_headers` and the root CA; `cert` enrolled as `agent`.
async fn app_with_agent(identity_headers: &str) -> (TestApp, TestCert, Value) {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", identity_headers)]).await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("formats.example");
    let agent = app
        .enrol_with(&cert, &root_id, json!({"tags": ["fmt"]}))
        .await;
    (app, cert, agent)
}

/// An Envoy XFCC element for `cert` with every detail set (`SANITIZE_SET`, all details).
fn xfcc_element(cert: &TestCert) -> String {
    format!(
        "By=spiffe://proxy.test/envoy;Hash={};Cert=\"{}\";Chain=\"{}\";\
         Subject=\"CN={},O=certgate tests\";URI=;DNS={}",
        cert.sha256_hex(),
        cert.nginx_escaped(),
        cert.nginx_escaped(),
        cert.cn,
        cert.cn
    )
}

fn headers<'a>(pairs: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[tokio::test]
async fn x_client_cert_accepts_every_spelling_of_the_leaf() {
    let (app, cert, agent) = app_with_agent("X-Client-Cert").await;
    let cases = [
        ("nginx $ssl_client_escaped_cert", cert.nginx_escaped()),
        (
            "plain PEM, line breaks replaced by spaces",
            cert.pem_with_spaces(),
        ),
        ("plain PEM, line breaks removed", cert.pem_one_line()),
        ("Caddy base64 DER", cert.der_base64()),
    ];
    for (why, value) in &cases {
        let answer = app.verify(&[("X-Client-Cert", value)]).await;
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
}

#[tokio::test]
async fn x_client_cert_fingerprint_accepts_every_spelling() {
    let (app, cert, agent) = app_with_agent("X-Client-Cert-Fingerprint").await;
    let cases = [
        ("canonical sha256:hex", cert.fingerprint()),
        ("bare 64 hex (Caddy)", cert.sha256_hex()),
        ("bare 64 hex, uppercase", cert.sha256_hex().to_uppercase()),
        ("openssl colon-separated, uppercase", cert.openssl_sha256()),
        (
            "openssl colon-separated, lowercase",
            cert.openssl_sha256().to_lowercase(),
        ),
        ("40 hex = SHA-1 (nginx)", cert.sha1_hex()),
        ("40 hex uppercase (HAProxy)", cert.sha1_hex().to_uppercase()),
        ("SHA-1 colon-separated (openssl)", cert.openssl_sha1()),
    ];
    for (why, value) in &cases {
        let answer = app.verify(&[("X-Client-Cert-Fingerprint", value)]).await;
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
    for bad in ["sha256:1234", "md5:0123456789abcdef0123456789abcdef", "zz"] {
        app.verify(&[("X-Client-Cert-Fingerprint", bad)])
            .await
            .assert_denied(403, "malformed_request");
    }
}

#[tokio::test]
async fn traefik_forwarded_tls_client_cert() {
    let (app, _, _) = app_with_agent("X-Forwarded-Tls-Client-Cert").await;
    let root_id = app.add_ca(&pki().rsa_root).await;
    // `+` is base64 data, never a form-encoded space: make sure the DER has one.
    let cert = (0..200)
        .map(|i| pki().rsa_root.leaf(&format!("traefik-{i}")).issue())
        .find(|c| c.der_base64().contains('+') && c.der_base64().contains('/'))
        .expect("a DER whose base64 has + and /");
    let agent = app.enrol(&cert, &root_id).await;
    let cases = [
        ("Traefik ≥ 2.9.2: base64 DER", cert.der_base64()),
        (
            "Traefik < 2.9.2: query-escaped base64",
            cert.traefik_escaped(),
        ),
        (
            "leaf first, then the chain",
            format!("{},{}", cert.der_base64(), pki().rsa_root.cert.der_base64()),
        ),
    ];
    for (why, value) in &cases {
        let answer = app.verify(&[("X-Forwarded-Tls-Client-Cert", value)]).await;
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
    app.verify(&[("X-Client-Cert", &cert.der_base64())])
        .await
        .assert_denied(401, "missing_certificate");
}

#[tokio::test]
async fn traefik_chains_build_a_path_through_the_intermediate() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "X-Forwarded-Tls-Client-Cert")]).await;
    app.add_ca(&pki().root).await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let leaf = pki().intermediate.leaf("behind.example").issue();
    let intermediate = &pki().intermediate.cert;
    let cases = [
        (
            "leaf,intermediate",
            format!("{},{}", leaf.der_base64(), intermediate.der_base64()),
            None,
        ),
        (
            "old escaped leaf,intermediate",
            format!(
                "{},{}",
                leaf.traefik_escaped(),
                intermediate.traefik_escaped()
            ),
            None,
        ),
        ("leaf alone", leaf.der_base64(), Some("untrusted_issuer")),
    ];
    for (why, value, denial) in &cases {
        let answer = app.verify(&[("X-Forwarded-Tls-Client-Cert", value)]).await;
        match denial {
            None => {
                assert_eq!(answer.status, 200, "{why}: {}", answer.body);
                answer.assert_allowed_unknown();
            }
            Some(reason) => answer.assert_denied(403, reason),
        }
    }
}

#[tokio::test]
async fn envoy_xfcc_only_the_last_element_counts() {
    let (app, cert, agent) = app_with_agent("X-Forwarded-Client-Cert").await;
    let other = pki().leaf("other.example");
    let mine = xfcc_element(&cert);
    let theirs = xfcc_element(&other);
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("every detail", mine.clone(), None),
        (
            "Hash only (no details configured)",
            format!("Hash={}", cert.sha256_hex()),
            None,
        ),
        (
            "Cert only",
            format!("Cert=\"{}\"", cert.nginx_escaped()),
            None,
        ),
        (
            "keys in lower case",
            format!(
                "hash={};cert=\"{}\"",
                cert.sha256_hex(),
                cert.nginx_escaped()
            ),
            None,
        ),
        (
            "a client's element first, the proxy's last",
            format!("{theirs},{mine}"),
            None,
        ),
        (
            "the agent's element first, another last",
            format!("{mine},{theirs}"),
            Some("unknown_certificate"),
        ),
        (
            "the agent's element first, another Hash last",
            format!("{mine},Hash={}", other.sha256_hex()),
            Some("unknown_certificate"),
        ),
        (
            "Hash and Cert of different certificates",
            format!(
                "Hash={};Cert=\"{}\"",
                other.sha256_hex(),
                cert.nginx_escaped()
            ),
            Some("fingerprint_mismatch"),
        ),
    ];
    for (why, value, denial) in &cases {
        let answer = app.verify(&[("X-Forwarded-Client-Cert", value)]).await;
        match denial {
            None => {
                assert_eq!(answer.status, 200, "{why}: {}", answer.body);
                answer.assert_allowed(&agent);
            }
            Some(reason) => {
                assert_eq!(answer.reason(), Some(*reason), "{why}: {}", answer.body);
                answer.assert_denied(403, reason);
            }
        }
    }
}

#[tokio::test]
async fn rfc9440_client_cert_and_chain() {
    let (app, cert, agent) = app_with_agent("Client-Cert").await;
    app.verify(&[("Client-Cert", &cert.sf_binary())])
        .await
        .assert_allowed(&agent);
    app.verify(&[("Client-Cert", &cert.der_base64())])
        .await
        .assert_denied(403, "malformed_request");
    app.verify(&[("Client-Cert-Chain", &pki().root.cert.sf_binary())])
        .await
        .assert_denied(401, "missing_certificate");

    app.put_config(json!({"reject_unknown_certs": false})).await;
    let leaf = pki().intermediate.leaf("rfc9440.example").issue();
    let chain = pki().intermediate.cert.sf_binary();
    app.verify(&[
        ("Client-Cert", &leaf.sf_binary()),
        ("Client-Cert-Chain", &chain),
    ])
    .await
    .assert_allowed_unknown();
    app.verify(&[("Client-Cert", &leaf.sf_binary())])
        .await
        .assert_denied(403, "untrusted_issuer");
}

#[tokio::test]
async fn headers_that_are_not_enabled_are_ignored() {
    let (app, cert, agent) = app_with_agent("X-Client-Cert,X-Client-Cert-Fingerprint").await;
    let not_enabled = [
        ("X-Forwarded-Tls-Client-Cert", cert.der_base64()),
        ("X-Forwarded-Client-Cert", xfcc_element(&cert)),
        ("Client-Cert", cert.sf_binary()),
        ("X-Forwarded-Tls-Client-Cert", "A".repeat(17 * 1024)),
    ];
    for (name, value) in &not_enabled {
        app.verify(&[(name, value)])
            .await
            .assert_denied(401, "missing_certificate");
    }
    // X-Client-Verify is not enabled by default, so a FAILED one changes nothing.
    app.verify(&[
        ("X-Client-Cert-Fingerprint", &cert.sha1_hex()),
        (
            "X-Client-Verify",
            "FAILED:unable to verify the first certificate",
        ),
    ])
    .await
    .assert_allowed(&agent);

    let (app, cert, _) = app_with_agent("x-forwarded-tls-client-cert").await;
    for (name, value) in [
        ("X-Client-Cert", cert.nginx_escaped()),
        ("X-Client-Cert-Fingerprint", cert.sha1_hex()),
    ] {
        app.verify(&[(name, &value)])
            .await
            .assert_denied(401, "missing_certificate");
    }
}

#[tokio::test]
async fn star_enables_every_identity_header() {
    let (app, cert, agent) = app_with_agent("*").await;
    let each = [
        ("X-Client-Cert", cert.nginx_escaped()),
        ("X-Forwarded-Tls-Client-Cert", cert.der_base64()),
        ("X-Forwarded-Client-Cert", xfcc_element(&cert)),
        ("Client-Cert", cert.sf_binary()),
        ("X-Client-Cert-Fingerprint", cert.sha1_hex()),
    ];
    for (name, value) in &each {
        let answer = app.verify(&[(name, value)]).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
    let all = headers(&each);
    app.verify(&all).await.assert_allowed(&agent);

    let other = pki().leaf("other.example");
    let two_certificates = [
        ("X-Client-Cert", cert.nginx_escaped()),
        ("Client-Cert", other.sf_binary()),
    ];
    app.verify(&headers(&two_certificates))
        .await
        .assert_denied(403, "fingerprint_mismatch");
}

#[tokio::test]
async fn an_unknown_identity_header_name_stops_start_up() {
    for list in [
        "X-Client-Cert,X-Client-Certificate",
        "*,X-Typo",
        "Client-Cert-Fingerprint",
    ] {
        let env = [("CERTGATE_IDENTITY_HEADERS".to_owned(), list.to_owned())]
            .into_iter()
            .collect();
        let error = certgate::config::Settings::from_sources(None, &env)
            .expect_err(list)
            .to_string();
        assert!(error.contains("identity_headers"), "{list}: {error}");
    }
}

#[tokio::test]
async fn no_certificate_spellings_mean_missing_certificate() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    // With unknown certificates allowed, a spelling misread as a fingerprint would pass.
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let fp = "X-Client-Cert-Fingerprint";
    let rows: Vec<(&str, Headers)> = vec![
        (
            "Caddy 2.6 placeholder, fingerprint",
            vec![(fp, "{http.request.tls.client.fingerprint}".into())],
        ),
        (
            "Caddy 2.6 placeholder, certificate",
            vec![(
                "X-Client-Cert",
                "{http.request.tls.client.certificate_der_base64}".into(),
            )],
        ),
        (
            "SHA-256 of empty input, bare",
            vec![(fp, SHA256_OF_NOTHING.into())],
        ),
        (
            "SHA-256 of empty input, prefixed",
            vec![(fp, format!("sha256:{SHA256_OF_NOTHING}"))],
        ),
        (
            "SHA-256 of empty input, XFCC Hash",
            vec![(
                "X-Forwarded-Client-Cert",
                format!("Hash={SHA256_OF_NOTHING}"),
            )],
        ),
        (
            "empty values",
            vec![(fp, String::new()), ("X-Client-Cert", String::new())],
        ),
        (
            "blank values",
            vec![(fp, "   ".into()), ("Client-Cert", " ".into())],
        ),
    ];
    for (why, pairs) in &rows {
        let answer = app.verify(&headers(pairs)).await;
        assert_eq!(
            (answer.status, answer.reason()),
            (401, Some("missing_certificate")),
            "{why}: {}",
            answer.body
        );
    }
    // Caddy sends both placeholders; with a certificate only one may be unexpanded.
    let cert = pki().leaf("caddy.example");
    let agent = app.enrol(&cert, &ca_id).await;
    app.verify(&[
        (
            "X-Client-Cert",
            "{http.request.tls.client.certificate_der_base64}",
        ),
        (fp, &cert.sha256_hex()),
    ])
    .await
    .assert_allowed(&agent);
}

#[tokio::test]
async fn several_certificates_or_fingerprints_are_a_mismatch() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    app.add_ca(&pki().root).await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let a = pki().leaf("a.example");
    let b = pki().leaf("b.example");
    let fp = "X-Client-Cert-Fingerprint";
    let rows: Vec<(&str, Headers)> = vec![
        (
            "certificate A, fingerprint B",
            vec![("X-Client-Cert", a.nginx_escaped()), (fp, b.fingerprint())],
        ),
        (
            "certificate A, SHA-1 of B",
            vec![("X-Client-Cert", a.nginx_escaped()), (fp, b.sha1_hex())],
        ),
        (
            "two certificates",
            vec![
                ("X-Client-Cert", a.der_base64()),
                ("X-Forwarded-Tls-Client-Cert", b.der_base64()),
            ],
        ),
        (
            "two SHA-256 fingerprints",
            vec![
                (fp, a.sha256_hex()),
                (
                    "X-Forwarded-Client-Cert",
                    format!("Hash={}", b.sha256_hex()),
                ),
            ],
        ),
    ];
    for (why, pairs) in &rows {
        let answer = app.verify(&headers(pairs)).await;
        assert_eq!(
            (answer.status, answer.reason()),
            (403, Some("fingerprint_mismatch")),
            "{why}: {}",
            answer.body
        );
    }
    let consistent = [
        ("X-Client-Cert", a.nginx_escaped()),
        (fp, a.sha1_hex()),
        (
            "X-Forwarded-Client-Cert",
            format!("Hash={}", a.sha256_hex()),
        ),
    ];
    app.verify(&headers(&consistent))
        .await
        .assert_allowed_unknown();
}

/// The certificate of PROXIES.md section 6, as each proxy really sends it.
mod vectors {
    pub const DER_BASE64: &str = "MIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRlc3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdlbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6rKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD+GJXNwaWZmZTovL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxlLnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta/5HkB8ImKgn9yAcE1+owHQYDVR0OBBYEFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r+Cl4j3Bn5KknJGpoyBC0WVDOcjMElvWSrK++oe6AiEArd1MrWv/XYF7Mg1jFxwwVVdl6svovEvuNpM4izhWvJ0=";
    pub const NGINX_ESCAPED: &str = "-----BEGIN%20CERTIFICATE-----%0AMIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQG%0AEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRl%0Ac3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTEL%0AMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdl%0AbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC%0AAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6%0ArKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB%2FwQCMAAwDgYDVR0PAQH%2F%0ABAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD%2BGJXNwaWZmZTov%0AL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxl%0ALnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta%2F5HkB8ImKgn9yAcE1%2BowHQYDVR0OBBYE%0AFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r%2BCl4j3B%0An5KknJGpoyBC0WVDOcjMElvWSrK%2B%2Boe6AiEArd1MrWv%2FXYF7Mg1jFxwwVVdl6svo%0AvEvuNpM4izhWvJ0%3D%0A-----END%20CERTIFICATE-----%0A";
    pub const SHA256: &str = "e370a13916749386369cdf14ce3e516412baa31f1c3bc2e07ca83a2e05a3ed62";
    pub const SHA256_OPENSSL: &str = "E3:70:A1:39:16:74:93:86:36:9C:DF:14:CE:3E:51:64:12:BA:A3:1F:1C:3B:C2:E0:7C:A8:3A:2E:05:A3:ED:62";
    pub const SHA1_NGINX: &str = "e9a63c4a329eabd9fd9fa7ddd06e36eb4d592f41";
    pub const SHA1_HAPROXY: &str = "E9A63C4A329EABD9FD9FA7DDD06E36EB4D592F41";
    pub const SHA1_OPENSSL: &str = "E9:A6:3C:4A:32:9E:AB:D9:FD:9F:A7:DD:D0:6E:36:EB:4D:59:2F:41";
    pub const ROOT_SHA256: &str =
        "4acaa47fe3e44e422f206a9a7ecc55b548d67c609b4cb1a281e482cd06f505f2";

    /// Traefik before 2.9.2: the DER base64 with `/`, `+`, `=` escaped.
    pub fn traefik_escaped() -> String {
        DER_BASE64
            .replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D")
    }
}

#[tokio::test]
async fn every_proxy_spelling_of_the_reference_certificate_names_the_same_certificate() {
    // Its root is not trusted here, so a certificate that is read correctly and
    // consistently is refused as `untrusted_issuer`; a misread gives another reason.
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    let fp = "X-Client-Cert-Fingerprint";
    let nginx = ("X-Client-Cert", vectors::NGINX_ESCAPED.to_owned());
    let rows: Vec<(&str, Headers)> = vec![
        ("nginx escaped PEM", vec![nginx.clone()]),
        (
            "Caddy base64 DER",
            vec![("X-Client-Cert", vectors::DER_BASE64.into())],
        ),
        (
            "Traefik base64 DER",
            vec![("X-Forwarded-Tls-Client-Cert", vectors::DER_BASE64.into())],
        ),
        (
            "Traefik < 2.9.2",
            vec![("X-Forwarded-Tls-Client-Cert", vectors::traefik_escaped())],
        ),
        (
            "Envoy XFCC Cert",
            vec![(
                "X-Forwarded-Client-Cert",
                format!(
                    "Hash={};Cert=\"{}\"",
                    vectors::SHA256,
                    vectors::NGINX_ESCAPED
                ),
            )],
        ),
        (
            "RFC 9440",
            vec![("Client-Cert", format!(":{}:", vectors::DER_BASE64))],
        ),
        (
            "with nginx's SHA-1",
            vec![nginx.clone(), (fp, vectors::SHA1_NGINX.into())],
        ),
        (
            "with HAProxy's SHA-1",
            vec![nginx.clone(), (fp, vectors::SHA1_HAPROXY.into())],
        ),
        (
            "with openssl's SHA-1",
            vec![nginx.clone(), (fp, vectors::SHA1_OPENSSL.into())],
        ),
        (
            "with openssl's SHA-256",
            vec![nginx.clone(), (fp, vectors::SHA256_OPENSSL.into())],
        ),
        (
            "with Caddy's SHA-256",
            vec![nginx.clone(), (fp, vectors::SHA256.into())],
        ),
        (
            "every spelling at once",
            vec![
                nginx.clone(),
                ("X-Forwarded-Tls-Client-Cert", vectors::DER_BASE64.into()),
                ("Client-Cert", format!(":{}:", vectors::DER_BASE64)),
                (
                    "X-Forwarded-Client-Cert",
                    format!("Hash={}", vectors::SHA256),
                ),
                (fp, vectors::SHA1_NGINX.into()),
            ],
        ),
    ];
    for (why, pairs) in &rows {
        let answer = app.verify(&headers(pairs)).await;
        assert_eq!(
            (answer.status, answer.reason()),
            (403, Some("untrusted_issuer")),
            "{why}: {}",
            answer.body
        );
    }
    let root_fingerprint = [nginx.clone(), (fp, vectors::ROOT_SHA256.to_owned())];
    app.verify(&headers(&root_fingerprint))
        .await
        .assert_denied(403, "fingerprint_mismatch");

    app.put_config(json!({"reject_unknown_certs": false})).await;
    for value in [
        vectors::SHA256,
        vectors::SHA256_OPENSSL,
        vectors::SHA1_NGINX,
        vectors::SHA1_HAPROXY,
        vectors::SHA1_OPENSSL,
    ] {
        app.verify(&[(fp, value)]).await.assert_allowed_unknown();
    }
}

#[tokio::test]
async fn an_identity_header_over_16_kib_is_malformed() {
    let (app, cert, _) = app_with_agent("*").await;
    // A real certificate, its line breaks widened past the limit (HTTP trims only the ends).
    let padded_pem = cert.pem().trim_end().replace('\n', &" ".repeat(2048));
    assert!(padded_pem.len() > 16 * 1024);
    let cases = [
        ("X-Client-Cert", "A".repeat(16 * 1024 + 1)),
        ("X-Client-Cert", padded_pem),
        ("X-Client-Cert-Fingerprint", "a".repeat(17 * 1024)),
        (
            "X-Forwarded-Client-Cert",
            format!("Hash={};By={}", cert.sha256_hex(), "x".repeat(17 * 1024)),
        ),
    ];
    for (name, value) in &cases {
        let answer = app.verify(&[(name, value)]).await;
        assert_eq!(
            answer.reason(),
            Some("malformed_request"),
            "{name}: {}",
            answer.body
        );
        answer.assert_denied(403, "malformed_request");
    }
}

#[tokio::test]
async fn a_header_block_over_64_kib_gets_431_on_every_route() {
    let app = spawn_app().await;
    let padding: Vec<(String, String)> = (0..5)
        .map(|i| (format!("X-Padding-{i}"), "p".repeat(14 * 1024)))
        .collect();
    let requests = [
        (
            "verify",
            app.verify_request(Method::GET)
                .header("X-Verify-Secret", &app.verify_secret),
        ),
        ("admin", app.admin(Method::GET, "/config")),
        ("health", app.client.get(format!("{}/healthz", app.address))),
    ];
    for (why, mut request) in requests {
        for (name, value) in &padding {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{why}"
        );
        assert!(response.headers().contains_key("x-request-id"), "{why}");
    }
    // Just under the limit is fine.
    let mut request = app.admin(Method::GET, "/config");
    for (name, value) in padding.iter().take(4) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn an_announced_body_that_never_comes_does_not_hang_verify() {
    let (app, cert, _) = app_with_agent("X-Client-Cert,X-Client-Cert-Fingerprint").await;
    let request = |method: &str, framing: &str, extra: &str| {
        format!(
            "{method} {}/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Verify-Secret: {}\r\n\
             Content-Type: application/json\r\n{framing}\r\n{extra}\r\n",
            app.base_path, app.verify_secret
        )
    };
    let fingerprint = format!("X-Client-Cert-Fingerprint: {}\r\n", cert.sha1_hex());
    let cases = [
        // nginx without `proxy_pass_request_body off`: the client's length, no body.
        (
            "nginx, no identity header",
            request("GET", "Content-Length: 15", ""),
            401,
        ),
        (
            "nginx, identity header",
            request("GET", "Content-Length: 15", &fingerprint),
            200,
        ),
        // Envoy: the client's method, Content-Length: 0.
        (
            "Envoy, no identity header",
            request("POST", "Content-Length: 0", ""),
            401,
        ),
        (
            "Envoy, identity header",
            request("PUT", "Content-Length: 0", &fingerprint),
            200,
        ),
        // A chunked body that never arrives.
        (
            "chunked, no identity header",
            request("POST", "Transfer-Encoding: chunked", ""),
            401,
        ),
    ];
    for (why, raw, status) in &cases {
        let (answered, took) = app.raw_request(raw).await;
        assert_eq!(answered, *status, "{why}");
        assert!(took < Duration::from_secs(3), "{why}: took {took:?}");
    }
}

async fn verify_body(app: &TestApp, content_type: &str, body: String) -> VerifyAnswer {
    verify_body_with(app, content_type, body, &[]).await
}

async fn verify_body_with(
    app: &TestApp,
    content_type: &str,
    body: String,
    headers: &[(&str, &str)],
) -> VerifyAnswer {
    let mut request = app
        .verify_request(Method::POST)
        .header("X-Verify-Secret", &app.verify_secret)
        .header("Content-Type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    VerifyAnswer::from(request).await
}

#[tokio::test]
async fn the_seed_json_body_form() {
    let (app, cert, agent) = app_with_agent("X-Client-Cert,X-Client-Cert-Fingerprint").await;
    let ca_id = agent["ca_id"].as_str().unwrap().to_owned();
    let restricted = pki().leaf("restricted.example");
    let restricted_agent = app
        .enrol_with(&restricted, &ca_id, json!({"allowed_ips": ["10.1.0.0/16"]}))
        .await;
    let revoked = pki().leaf("revoked.example");
    let revoked_id = app.enrol(&revoked, &ca_id).await["id"].clone();
    app.revoke_agent(revoked_id.as_str().unwrap()).await;
    let json = "application/json";
    let allowed: Vec<(&str, &str, Value, &Value)> = vec![
        (
            "SHA-256 fingerprint",
            json,
            json!({"fingerprint": cert.fingerprint()}),
            &agent,
        ),
        (
            "SHA-1 fingerprint",
            json,
            json!({"fingerprint": cert.sha1_hex()}),
            &agent,
        ),
        (
            "PEM certificate",
            json,
            json!({"certificate": cert.pem()}),
            &agent,
        ),
        (
            "certificate and its fingerprint",
            json,
            json!({"certificate": cert.pem(), "fingerprint": cert.fingerprint()}),
            &agent,
        ),
        (
            "charset parameter",
            "application/json; charset=utf-8",
            json!({"fingerprint": cert.fingerprint()}),
            &agent,
        ),
        (
            "body ip inside the allow list",
            json,
            json!({"fingerprint": restricted.fingerprint(), "ip": "10.1.2.3"}),
            &restricted_agent,
        ),
    ];
    for (why, content_type, body, agent) in &allowed {
        let answer = verify_body(&app, content_type, body.to_string()).await;
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        assert!(answer.json, "{why}: the JSON form is answered in JSON");
        answer.assert_allowed(agent);
    }
    let denied: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "body ip outside the allow list",
            json,
            json!({"fingerprint": restricted.fingerprint(), "ip": "192.0.2.1"}).to_string(),
            403,
            "ip_not_allowed",
        ),
        (
            "certificate and another fingerprint",
            json,
            json!({"certificate": cert.pem(), "fingerprint": revoked.fingerprint()}).to_string(),
            403,
            "fingerprint_mismatch",
        ),
        (
            "revoked",
            json,
            json!({"fingerprint": revoked.sha1_hex()}).to_string(),
            403,
            "agent_revoked",
        ),
        (
            "malformed JSON",
            json,
            "{\"fingerprint\": ".into(),
            403,
            "malformed_request",
        ),
        (
            "a JSON string",
            json,
            "\"hello\"".into(),
            403,
            "malformed_request",
        ),
        (
            "no identity in the body",
            json,
            "{}".into(),
            401,
            "missing_certificate",
        ),
        (
            "not declared as JSON",
            "text/plain",
            json!({"fingerprint": cert.fingerprint()}).to_string(),
            401,
            "missing_certificate",
        ),
        (
            "a body over 64 KiB",
            json,
            json!({"fingerprint": cert.fingerprint(), "pad": "x".repeat(70 * 1024)}).to_string(),
            403,
            "malformed_request",
        ),
    ];
    for (why, content_type, body, status, reason) in &denied {
        let answer = verify_body(&app, content_type, body.clone()).await;
        assert_eq!(
            (answer.status, answer.reason()),
            (*status, Some(*reason)),
            "{why}: {}",
            answer.body
        );
        assert_eq!(
            answer.json,
            *content_type != "text/plain",
            "{why}: JSON only to a JSON body"
        );
    }
    // The body ip wins over X-Real-IP.
    verify_body_with(
        &app,
        json,
        json!({"fingerprint": restricted.fingerprint(), "ip": "10.1.2.3"}).to_string(),
        &[("X-Real-IP", "192.0.2.1")],
    )
    .await
    .assert_allowed(&restricted_agent);
    // An enabled identity header wins: the body is not read at all.
    verify_body_with(
        &app,
        json,
        json!({"fingerprint": revoked.fingerprint()}).to_string(),
        &[("X-Client-Cert-Fingerprint", &cert.sha1_hex())],
    )
    .await
    .assert_allowed(&agent);
}

#[tokio::test]
async fn the_json_body_can_be_switched_off() {
    let app = spawn_app_with(&[("CERTGATE_DANGER_VERIFY_BODY", "false")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("body-off.example");
    let agent = app.enrol(&cert, &ca_id).await;
    verify_body(
        &app,
        "application/json",
        json!({"fingerprint": cert.fingerprint()}).to_string(),
    )
    .await
    .assert_denied(401, "missing_certificate");
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_allowed(&agent);
}
