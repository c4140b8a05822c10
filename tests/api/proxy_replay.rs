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

/// `envoy/envoy.yaml`, with what the replay below relies on checked line by line: Envoy is
/// not packaged for Debian, so the recipe is never run here.
fn envoy_recipe() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/envoy.yaml");
    let recipe = std::fs::read_to_string(path).unwrap();
    for needed in [
        // The certificate header: Envoy's own element, never the client's.
        "forward_client_cert_details: SANITIZE_SET",
        "forward_client_cert_details: ALWAYS_FORWARD_ONLY",
        "- exact: x-forwarded-client-cert",
        // The client's address, set from the connection.
        "key: x-real-ip",
        "value: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\"",
        // The secret, written once.
        "- key: x-verify-secret",
        // Fail closed.
        "failure_mode_allow: false",
        // The client's credentials never reach certgate; the loopback hop is loopback.
        "request_headers_to_remove: [authorization, cookie]",
        "socket_address: { address: 127.0.0.1, port_value: 10001 }",
        // The application: no client copy of anything certgate or Envoy says.
        "headers_with_underscores_action: REJECT_REQUEST",
        "- remove: x-verify-secret",
        "- remove: x-agent-id",
        "- exact: x-agent-tags",
    ] {
        assert!(recipe.contains(needed), "envoy/envoy.yaml lacks `{needed}`");
    }
    assert_eq!(
        recipe.matches("key: x-verify-secret").count(),
        1,
        "the secret is written once"
    );
    recipe
}

/// The path every auth request is rewritten to by the recipe's loopback listener.
fn envoy_verify_path(recipe: &str) -> &str {
    recipe
        .lines()
        .find_map(|line| line.trim().strip_prefix("substitution: "))
        .expect("a regex_rewrite substitution")
}

/// Envoy HTTP ext_authz (`source/extensions/filters/common/ext_authz/ext_authz_http_impl.cc`)
/// as `envoy/envoy.yaml` sets it up: the client's method, `Content-Length: 0`, only the
/// allowed headers plus the secret, through the recipe's loopback hop, which rewrites the
/// path to verify's, drops `Authorization` and adds its own `X-Forwarded-Proto`. The XFCC
/// element is the connection manager's with `SANITIZE_SET`
/// (`source/common/http/conn_manager_utility.cc`): `Hash=<sha256>;Cert="<escaped PEM>";
/// Chain=…;Subject="…";URI=…;DNS=…`, the nearest proxy's element last.
#[tokio::test]
async fn envoy_ext_authz_request_with_xfcc() {
    let recipe = envoy_recipe();
    let verify_path = envoy_verify_path(&recipe);
    assert_eq!(verify_path, "/api/ext/cockpit-enterprise/mtls/verify");
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "X-Forwarded-Client-Cert")]).await;
    let root = app.add_ca(&pki().root).await;
    let leaf = pki()
        .root
        .leaf("envoy-agent.example")
        .dns_names(&["envoy-agent.example"])
        .issue();
    let agent = app.enrol(&leaf, &root).await;
    let pinned = pki().root.leaf("envoy-pinned.example").issue();
    let pinned_agent = app
        .enrol_with(&pinned, &root, json!({"allowed_ips": ["203.0.113.7"]}))
        .await;
    let element = |leaf: &TestCert| {
        format!(
            "Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN={},O=Test, Inc.\";URI=;DNS={}",
            leaf.sha256_hex(),
            leaf.nginx_escaped(),
            leaf.nginx_escaped(),
            "envoy-agent.example",
            "envoy-agent.example"
        )
    };
    let envoy = |method: Method, xfcc: String, client_ip: &'static str| {
        let url = format!("http://127.0.0.1:{}{verify_path}?id=1", app.port);
        crate::helpers::VerifyAnswer::from(
            app.client
                .request(method, url)
                .header("Content-Length", "0")
                .header("X-Forwarded-Client-Cert", xfcc)
                .header("X-Real-IP", client_ip)
                .header("X-Request-Id", "5c1c3a2e-envoy")
                .header("X-Verify-Secret", &app.verify_secret)
                .header("X-Forwarded-Proto", "http")
                .header("X-Envoy-Expected-Rq-Timeout-Ms", "1000"),
        )
    };
    let forged_upstream =
        "By=spiffe://other;Hash=0000000000000000000000000000000000000000000000000000000000000000";
    for (why, xfcc) in [
        ("one element", element(&leaf)),
        (
            "APPEND_FORWARD: earlier hops first",
            format!("{forged_upstream},{}", element(&leaf)),
        ),
        ("Hash only", format!("Hash={}", leaf.sha256_hex())),
    ] {
        for method in [Method::GET, Method::POST, Method::PUT] {
            let answer = envoy(method.clone(), xfcc.clone(), "198.51.100.20").await;
            assert_eq!(answer.status, 200, "{why} {method}: {}", answer.body);
            answer.assert_allowed(&agent);
        }
    }
    // The address the recipe writes from the connection is the one allowed_ips is held to.
    envoy(Method::GET, element(&pinned), "203.0.113.7")
        .await
        .assert_allowed(&pinned_agent);
    envoy(Method::GET, element(&pinned), "198.51.100.20")
        .await
        .assert_denied(403, "ip_not_allowed");
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
