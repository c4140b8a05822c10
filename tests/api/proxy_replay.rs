//! The exact requests proxies that are not run here send to certgate, replayed byte for
//! byte: Traefik's forwardAuth with passTLSClientCert, and Envoy's HTTP ext_authz.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with};
use crate::pki::{TestCert, pki};

/// Traefik forwardAuth (`pkg/middlewares/auth/forward.go`): a new request to the configured
/// address, method GET (or the client's with `preserveRequestMethod`), Go's client headers,
/// the client headers that `authRequestHeaders` lets through (here the recipe's list), then
/// X-Forwarded-For/-Method/-Proto/-Host/-Uri/-Port set by Traefik itself.
/// passTLSClientCert with `pem: true` (`pkg/middlewares/passtlsclientcert/pass_tls_client_cert.go`)
/// writes each presented certificate's PEM without armour or line breaks — its standard
/// base64 DER — joined by `,`, leaf first.
async fn traefik_forward_auth(
    app: &TestApp,
    method: Method,
    chain: &[&TestCert],
) -> crate::helpers::VerifyAnswer {
    let certificates: Vec<String> = chain.iter().map(|c| c.der_base64()).collect();
    let request = app
        .verify_request(method.clone())
        .header("User-Agent", "Go-http-client/1.1")
        .header("Accept-Encoding", "gzip")
        .header("X-Forwarded-Tls-Client-Cert", certificates.join(","))
        .header("X-Verify-Secret", &app.verify_secret)
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Host", "app.example.test")
        .header("X-Forwarded-Method", method.as_str())
        .header("X-Forwarded-Port", "443")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Uri", "/orders?id=1");
    crate::helpers::VerifyAnswer::from(request).await
}

async fn traefik_app() -> (TestApp, String) {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "X-Forwarded-Tls-Client-Cert")]).await;
    let root = app.add_ca(&pki().root).await;
    (app, root)
}

#[tokio::test]
async fn traefik_forward_auth_request_for_an_enrolled_agent() {
    let (app, root) = traefik_app().await;
    let leaf = pki().root.leaf("traefik-agent.example").issue();
    let agent = app.enrol(&leaf, &root).await;
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let answer = traefik_forward_auth(&app, method.clone(), &[&leaf]).await;
        assert_eq!(answer.status, 200, "{method}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
    // The recipe's authResponseHeaders names exactly what certgate sends on allow.
    let answer = traefik_forward_auth(&app, Method::GET, &[&leaf]).await;
    for header in ["x-agent-id", "x-agent-hostname", "x-agent-tags"] {
        assert!(answer.header(header).is_some(), "{header} missing");
    }
    // The client IP comes from Traefik's X-Forwarded-For.
    let ip_restricted = pki().root.leaf("traefik-ip.example").issue();
    app.enrol_with(
        &ip_restricted,
        &root,
        json!({"allowed_ips": ["203.0.113.0/24"]}),
    )
    .await;
    traefik_forward_auth(&app, Method::GET, &[&ip_restricted])
        .await
        .assert_status(200);
}

#[tokio::test]
async fn traefik_chain_through_an_uploaded_intermediate_and_refusals() {
    let (app, _) = traefik_app().await;
    let intermediate_id = app.add_ca(&pki().intermediate).await;
    let leaf = pki()
        .intermediate
        .leaf("behind-intermediate.example")
        .issue();
    let agent = app.enrol(&leaf, &intermediate_id).await;
    traefik_forward_auth(&app, Method::GET, &[&leaf, &pki().intermediate.cert])
        .await
        .assert_allowed(&agent);

    app.toggle_agent(agent["id"].as_str().unwrap(), Some(false))
        .await;
    traefik_forward_auth(&app, Method::GET, &[&leaf, &pki().intermediate.cert])
        .await
        .assert_denied(403, "agent_disabled");

    let stranger = pki().other_root.leaf("stranger.example").issue();
    traefik_forward_auth(&app, Method::GET, &[&stranger, &pki().other_root.cert])
        .await
        .assert_denied(403, "untrusted_issuer");

    // No client certificate: passTLSClientCert sets nothing.
    let answer = crate::helpers::VerifyAnswer::from(
        app.verify_request(Method::GET)
            .header("X-Verify-Secret", &app.verify_secret)
            .header("X-Forwarded-For", "203.0.113.7")
            .header("X-Forwarded-Method", "GET"),
    )
    .await;
    answer.assert_denied(401, "missing_certificate");
}

/// Envoy HTTP ext_authz (`source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc`):
/// the client's method and path behind a prefix, `Content-Length: 0`, and only allowed
/// headers — here the XFCC written by the connection manager with `SANITIZE_SET`
/// (`source/common/http/conn_manager_utility.cc`): `Hash=<sha256>;Cert="<escaped PEM>";
/// Chain=…;Subject="…";URI=…;DNS=…`, the nearest proxy's element last.
#[tokio::test]
async fn envoy_ext_authz_request_with_xfcc() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "X-Forwarded-Client-Cert")]).await;
    let root = app.add_ca(&pki().root).await;
    let leaf = pki()
        .root
        .leaf("envoy-agent.example")
        .dns_names(&["envoy-agent.example"])
        .issue();
    let agent = app.enrol(&leaf, &root).await;
    let element = format!(
        "Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN=envoy-agent.example,O=Test, Inc.\";URI=;DNS=envoy-agent.example",
        leaf.sha256_hex(),
        leaf.nginx_escaped(),
        leaf.nginx_escaped()
    );
    let forged_upstream =
        "By=spiffe://other;Hash=0000000000000000000000000000000000000000000000000000000000000000";
    for (why, xfcc) in [
        ("one element", element.clone()),
        (
            "APPEND_FORWARD: earlier hops first",
            format!("{forged_upstream},{element}"),
        ),
        ("Hash only", format!("Hash={}", leaf.sha256_hex())),
    ] {
        for method in [Method::GET, Method::POST, Method::PUT] {
            let answer = crate::helpers::VerifyAnswer::from(
                app.verify_request(method.clone())
                    .header("X-Verify-Secret", &app.verify_secret)
                    .header("Content-Length", "0")
                    .header("X-Forwarded-Client-Cert", &xfcc),
            )
            .await;
            assert_eq!(answer.status, 200, "{why} {method}: {}", answer.body);
            answer.assert_allowed(&agent);
        }
    }
}

#[tokio::test]
async fn fingerprint_command_prints_both_digests() {
    let leaf = pki().root.leaf("cli.example").issue();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("agent.pem");
    std::fs::write(&pem_path, leaf.pem()).unwrap();
    let der_path = dir.path().join("agent.der");
    std::fs::write(&der_path, &leaf.der).unwrap();
    for path in [&pem_path, &der_path] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
            .arg("fingerprint")
            .arg(path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains(&leaf.fingerprint()), "{stdout}");
        assert!(stdout.contains(&leaf.sha1_hex()), "{stdout}");
    }
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("fingerprint")
        .arg(&garbage)
        .output()
        .unwrap();
    assert!(!output.status.success());
}
