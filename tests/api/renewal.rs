//! `POST B/renew`: an agent that still holds a valid certificate gets a new one through the
//! proxy, and the old one keeps working for the grace window.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    ApiResponse, Headers, TestApp, VERIFY_SECRET, eventually, spawn_app, spawn_app_with,
};
use crate::issuance::{AgentHost, issued_cert};
use crate::pki::{TestCert, pki};

impl TestApp {
    /// What the proxy's renew location forwards: the verify secret, the client's
    /// certificate as nginx escapes it, and the body.
    pub async fn renew(&self, cert: &TestCert, csr: &str) -> ApiResponse {
        self.renew_with(
            &[
                ("X-Verify-Secret", VERIFY_SECRET.to_owned()),
                ("X-Client-Cert", cert.nginx_escaped()),
            ],
            &json!({ "csr": csr }).to_string(),
        )
        .await
    }

    async fn renew_with(&self, headers: &[(&str, String)], body: &str) -> ApiResponse {
        let mut request = self
            .client
            .post(self.url("/renew"))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        ApiResponse::from(request).await
    }
}

#[tokio::test]
async fn renewal_moves_the_agent_to_a_new_certificate_and_the_old_one_keeps_working() {
    let app = spawn_app().await;
    let (_, enrolled) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "renew.example.test"}))
        .await;
    let agent_id = enrolled.body["agent_id"].as_str().unwrap().to_owned();
    let old = issued_cert(&enrolled);

    let new_host = AgentHost::new();
    let renewed = app.renew(&old, &new_host.csr()).await;
    renewed.assert_status(StatusCode::CREATED);
    assert_eq!(renewed.body["agent_id"], agent_id.as_str());
    let new = issued_cert(&renewed);
    assert_ne!(new.fingerprint(), old.fingerprint());
    let parsed = x509_parser::parse_x509_certificate(&new.der).unwrap().1;
    assert_eq!(parsed.public_key().raw, new_host.key.public_key_der());

    let agent = app.agent(&agent_id).await;
    assert_eq!(agent["fingerprint"], new.fingerprint());
    assert_eq!(
        app.agent_total("").await,
        1,
        "the same agent, not a new one"
    );
    app.verify_escaped_pem(&new).await.assert_allowed(&agent);
    app.verify_escaped_pem(&old).await.assert_allowed(&agent);
    app.verify_nginx_fingerprint(&old)
        .await
        .assert_allowed(&agent);

    // Renewing again needs the current certificate.
    app.renew(&old, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::CONFLICT, "certificate_superseded");

    // Disabling the agent reaches the certificate in its grace window too.
    app.toggle_agent(&agent_id, Some(false))
        .await
        .assert_status(StatusCode::OK);
    app.verify_escaped_pem(&old)
        .await
        .assert_denied(403, "agent_disabled");
    app.renew(&new, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::FORBIDDEN, "agent_disabled");
    app.revoke_agent(&agent_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.verify_nginx_fingerprint(&old)
        .await
        .assert_denied(403, "agent_revoked");
    app.renew(&new, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::FORBIDDEN, "agent_revoked");
}

#[tokio::test]
async fn without_a_grace_window_the_old_certificate_stops_at_once() {
    let app = spawn_app_with(&[("CERTGATE_RENEWAL_GRACE_SECONDS", "0")]).await;
    let (_, enrolled) = app
        .enrol_host(
            &AgentHost::new(),
            json!({"hostname": "nograce.example.test"}),
        )
        .await;
    let old = issued_cert(&enrolled);
    let renewed = app.renew(&old, &AgentHost::new().csr()).await;
    renewed.assert_status(StatusCode::CREATED);
    app.verify_escaped_pem(&old)
        .await
        .assert_denied(403, "certificate_expired");
    app.renew(&old, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::FORBIDDEN, "certificate_expired");
}

/// What is wrong, the headers, the body, and the expected status and code.
type RefusalCase<'a> = (&'a str, Headers<'a>, &'a str, StatusCode, &'a str);

#[tokio::test]
async fn renewal_is_refused_without_the_secret_a_certificate_or_an_enrolment() {
    let app = spawn_app().await;
    let (_, enrolled) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "auth.example.test"}))
        .await;
    let cert = issued_cert(&enrolled);
    let body = json!({ "csr": AgentHost::new().csr() }).to_string();
    let cases: Vec<RefusalCase> = vec![
        (
            "no secret",
            vec![("X-Client-Cert", cert.nginx_escaped())],
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_verify_secret",
        ),
        (
            "wrong secret",
            vec![
                ("X-Verify-Secret", "guess".to_owned()),
                ("X-Client-Cert", cert.nginx_escaped()),
            ],
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_verify_secret",
        ),
        (
            "no certificate",
            vec![("X-Verify-Secret", VERIFY_SECRET.to_owned())],
            &body,
            StatusCode::UNAUTHORIZED,
            "missing_certificate",
        ),
        (
            "a header certgate does not believe by default",
            vec![
                ("X-Verify-Secret", VERIFY_SECRET.to_owned()),
                ("X-Forwarded-Tls-Client-Cert", cert.der_base64()),
            ],
            &body,
            StatusCode::UNAUTHORIZED,
            "missing_certificate",
        ),
        (
            "garbage body, but no secret: who asks is checked first",
            vec![("X-Client-Cert", cert.nginx_escaped())],
            "{not json",
            StatusCode::UNAUTHORIZED,
            "invalid_verify_secret",
        ),
        (
            "authenticated, garbage body",
            vec![
                ("X-Verify-Secret", VERIFY_SECRET.to_owned()),
                ("X-Client-Cert", cert.nginx_escaped()),
            ],
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "authenticated, not a signing request",
            vec![
                ("X-Verify-Secret", VERIFY_SECRET.to_owned()),
                ("X-Client-Cert", cert.nginx_escaped()),
            ],
            r#"{"csr": "nope"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_csr",
        ),
    ];
    for (what, headers, body, status, code) in cases {
        let answer = app.renew_with(&headers, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, Some(code)),
            "{what}: {}",
            answer.body
        );
    }
    assert_eq!(
        app.agent(enrolled.body["agent_id"].as_str().unwrap()).await["fingerprint"],
        cert.fingerprint(),
        "no refused renewal changed the agent"
    );

    // A certificate from a trusted CA that is not enrolled gets nothing, even when verify
    // would let unknown certificates pass.
    let root_id = app.add_ca(&pki().root).await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let stranger = pki().root.leaf("stranger.example.test").issue();
    app.renew(&stranger, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::FORBIDDEN, "unknown_certificate");

    // An agent whose certificate expired must enrol again.
    let short = pki().root.leaf("short.example.test").expiring_in(2).issue();
    app.enrol(&short, &root_id).await;
    let expired = eventually(Duration::from_secs(10), || async {
        let answer = app.verify_escaped_pem(&short).await;
        (answer.reason() == Some("certificate_expired")).then_some(())
    })
    .await;
    assert!(expired.is_some(), "the short-lived certificate expires");
    app.renew(&short, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::FORBIDDEN, "certificate_expired");
}

#[tokio::test]
async fn an_agent_with_an_external_certificate_moves_to_the_internal_ca() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().root.leaf("external.example.test").issue();
    let agent = app.enrol(&cert, &root_id).await;
    let renewed = app.renew(&cert, &AgentHost::new().csr()).await;
    renewed.assert_status(StatusCode::CREATED);
    let moved = app.agent(agent["id"].as_str().unwrap()).await;
    assert_ne!(moved["ca_id"], root_id.as_str());
    let internal = app
        .get(&format!("/ca/{}", moved["ca_id"].as_str().unwrap()))
        .await;
    assert_eq!(internal.body["internal"], true);
    app.verify_escaped_pem(&issued_cert(&renewed))
        .await
        .assert_allowed(&moved);
}

#[tokio::test]
async fn the_grace_window_survives_a_restart_and_reaches_replicas() {
    let mut app = spawn_app().await;
    let (_, enrolled) = app
        .enrol_host(
            &AgentHost::new(),
            json!({"hostname": "graced.example.test"}),
        )
        .await;
    let old = issued_cert(&enrolled);
    let replica = app.replica().await;
    let renewed = app.renew(&old, &AgentHost::new().csr()).await;
    renewed.assert_status(StatusCode::CREATED);
    let new = issued_cert(&renewed);
    let both = eventually(Duration::from_secs(5), || async {
        let old_ok = replica.verify_escaped_pem(&old).await.status == 200;
        let new_ok = replica.verify_escaped_pem(&new).await.status == 200;
        (old_ok && new_ok).then_some(())
    })
    .await;
    assert!(
        both.is_some(),
        "the replica accepts both during the grace window"
    );

    app.restart().await;
    let agent = app.agent(enrolled.body["agent_id"].as_str().unwrap()).await;
    app.verify_escaped_pem(&old).await.assert_allowed(&agent);
    app.verify_escaped_pem(&new).await.assert_allowed(&agent);

    // Re-enrolment (a lost key) revokes both at once, on every replica.
    let rotated = app
        .post_json(
            &format!("/agents/{}/token", agent["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    app.redeem(
        rotated.body["token"].as_str().unwrap(),
        &AgentHost::new().csr(),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.verify_escaped_pem(&old)
        .await
        .assert_denied(403, "agent_revoked");
    app.verify_escaped_pem(&new)
        .await
        .assert_denied(403, "agent_revoked");
    let gone = eventually(Duration::from_secs(5), || async {
        let old = replica.verify_escaped_pem(&old).await;
        let new = replica.verify_escaped_pem(&new).await;
        (old.reason() == Some("agent_revoked") && new.reason() == Some("agent_revoked"))
            .then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the replica drops the superseded certificate"
    );
}
