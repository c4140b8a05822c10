//! `B/verify`: the decision table, the policy switches, and what every answer carries.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Headers, TestApp, VerifyAnswer, eventually, spawn_app, spawn_app_with};
use crate::pki::{TestCert, pki};

enum Expect<'a> {
    /// 200 naming this agent.
    Allow(&'a Value),
    /// 200 for a certificate that is not enrolled.
    AllowUnknown,
    Deny(u16, &'a str),
}

#[track_caller]
fn check(answer: &VerifyAnswer, expect: &Expect, why: &str) {
    match expect {
        Expect::Allow(agent) => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.body);
            answer.assert_allowed(agent);
        }
        Expect::AllowUnknown => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.body);
            answer.assert_allowed_unknown();
        }
        Expect::Deny(status, reason) => {
            assert_eq!(
                (answer.status, answer.reason()),
                (*status, Some(*reason)),
                "{why}: {}",
                answer.body
            );
            answer.assert_denied(*status, reason);
        }
    }
}

/// Verify with an explicit secret (`None`: no `X-Verify-Secret` header at all).
async fn verify_with_secret(
    app: &TestApp,
    secret: Option<&str>,
    headers: &[(&str, String)],
) -> VerifyAnswer {
    let mut request = app.verify_request(Method::GET);
    if let Some(secret) = secret {
        request = request.header("X-Verify-Secret", secret);
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    VerifyAnswer::from(request).await
}

fn escaped(cert: &TestCert) -> (&'static str, String) {
    ("X-Client-Cert", cert.nginx_escaped())
}

fn sha1(cert: &TestCert) -> (&'static str, String) {
    ("X-Client-Cert-Fingerprint", cert.sha1_hex())
}

#[tokio::test]
async fn every_row_of_the_decision_table() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let sub_id = app.add_ca(&pki().intermediate).await;

    let active = pki().leaf("active.example");
    let active_agent = app
        .enrol_with(&active, &root_id, json!({"tags": ["prod", "web"]}))
        .await;
    let disabled = pki().leaf("disabled.example");
    let disabled_id = app.enrol(&disabled, &root_id).await["id"].clone();
    app.toggle_agent(disabled_id.as_str().unwrap(), Some(false))
        .await
        .assert_status(StatusCode::OK);
    let revoked = pki().leaf("revoked.example");
    let revoked_id = app.enrol(&revoked, &root_id).await["id"].clone();
    app.revoke_agent(revoked_id.as_str().unwrap())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let restricted = pki().leaf("restricted.example");
    let restricted_agent = app
        .enrol_with(
            &restricted,
            &root_id,
            json!({"allowed_ips": ["10.1.0.0/16", "2001:db8::/32"]}),
        )
        .await;
    let orphan = pki().intermediate.leaf("orphan.example").issue();
    app.enrol(&orphan, &sub_id).await;
    app.delete_ca(&sub_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let unknown = pki().leaf("unknown.example");
    let stranger = pki().other_root.leaf("stranger.example").issue();
    let expired = pki().root.leaf("expired.example").expired().issue();
    let early = pki().root.leaf("early.example").not_yet_valid().issue();
    let server = pki().root.leaf("server.example").server_auth_only().issue();
    let secret = Some(app.verify_secret.as_str());
    let wrong_case = app.verify_secret.to_uppercase();
    let ip = |value: &str| ("X-Real-IP", value.to_owned());
    let xff = |value: &str| ("X-Forwarded-For", value.to_owned());

    let rows: Vec<(&str, Option<&str>, Headers, Expect)> = vec![
        (
            "enrolled, whole certificate",
            secret,
            vec![escaped(&active)],
            Expect::Allow(&active_agent),
        ),
        (
            "enrolled, nginx SHA-1 fingerprint",
            secret,
            vec![sha1(&active)],
            Expect::Allow(&active_agent),
        ),
        (
            "no secret",
            None,
            vec![escaped(&active)],
            Expect::Deny(401, "invalid_verify_secret"),
        ),
        (
            "wrong secret",
            Some("guess"),
            vec![escaped(&active)],
            Expect::Deny(401, "invalid_verify_secret"),
        ),
        (
            "secret in the wrong case",
            Some(wrong_case.as_str()),
            vec![escaped(&active)],
            Expect::Deny(401, "invalid_verify_secret"),
        ),
        (
            "empty secret",
            Some(""),
            vec![escaped(&active)],
            Expect::Deny(401, "invalid_verify_secret"),
        ),
        (
            "no certificate information",
            secret,
            vec![],
            Expect::Deny(401, "missing_certificate"),
        ),
        (
            "disabled",
            secret,
            vec![escaped(&disabled)],
            Expect::Deny(403, "agent_disabled"),
        ),
        (
            "disabled, by fingerprint",
            secret,
            vec![sha1(&disabled)],
            Expect::Deny(403, "agent_disabled"),
        ),
        (
            "revoked",
            secret,
            vec![escaped(&revoked)],
            Expect::Deny(403, "agent_revoked"),
        ),
        (
            "revoked, by fingerprint",
            secret,
            vec![sha1(&revoked)],
            Expect::Deny(403, "agent_revoked"),
        ),
        (
            "its CA was deleted",
            secret,
            vec![escaped(&orphan)],
            Expect::Deny(403, "ca_removed"),
        ),
        (
            "allow list, peer 127.0.0.1",
            secret,
            vec![escaped(&restricted)],
            Expect::Deny(403, "ip_not_allowed"),
        ),
        (
            "allow list, X-Real-IP outside",
            secret,
            vec![escaped(&restricted), ip("10.2.3.4")],
            Expect::Deny(403, "ip_not_allowed"),
        ),
        (
            "allow list, X-Real-IP inside",
            secret,
            vec![escaped(&restricted), ip("10.1.2.3")],
            Expect::Allow(&restricted_agent),
        ),
        (
            "allow list, IPv6 inside",
            secret,
            vec![escaped(&restricted), ip("2001:db8::5")],
            Expect::Allow(&restricted_agent),
        ),
        (
            "allow list, first X-Forwarded-For inside",
            secret,
            vec![escaped(&restricted), xff("10.1.2.3, 192.0.2.7")],
            Expect::Allow(&restricted_agent),
        ),
        (
            "allow list, first X-Forwarded-For outside",
            secret,
            vec![escaped(&restricted), xff("192.0.2.7, 10.1.2.3")],
            Expect::Deny(403, "ip_not_allowed"),
        ),
        (
            "X-Real-IP wins over X-Forwarded-For",
            secret,
            vec![escaped(&restricted), ip("192.0.2.7"), xff("10.1.2.3")],
            Expect::Deny(403, "ip_not_allowed"),
        ),
        (
            "unreadable X-Real-IP",
            secret,
            vec![escaped(&restricted), ip("somewhere")],
            Expect::Deny(403, "ip_not_allowed"),
        ),
        (
            "unknown, whole certificate",
            secret,
            vec![escaped(&unknown)],
            Expect::Deny(403, "unknown_certificate"),
        ),
        (
            "unknown, fingerprint only",
            secret,
            vec![sha1(&unknown)],
            Expect::Deny(403, "unknown_certificate"),
        ),
        (
            "issued by an untrusted CA",
            secret,
            vec![escaped(&stranger)],
            Expect::Deny(403, "untrusted_issuer"),
        ),
        (
            "certificate and fingerprint disagree",
            secret,
            vec![
                escaped(&active),
                ("X-Client-Cert-Fingerprint", unknown.fingerprint()),
            ],
            Expect::Deny(403, "fingerprint_mismatch"),
        ),
        (
            "certificate and fingerprint agree",
            secret,
            vec![
                escaped(&active),
                ("X-Client-Cert-Fingerprint", active.fingerprint()),
            ],
            Expect::Allow(&active_agent),
        ),
        (
            "serverAuth-only certificate",
            secret,
            vec![escaped(&server)],
            Expect::Deny(403, "wrong_key_usage"),
        ),
        (
            "expired certificate",
            secret,
            vec![escaped(&expired)],
            Expect::Deny(403, "certificate_expired"),
        ),
        (
            "not yet valid certificate",
            secret,
            vec![escaped(&early)],
            Expect::Deny(403, "certificate_not_yet_valid"),
        ),
        (
            "bytes that are not X.509",
            secret,
            vec![("X-Client-Cert", "aGVsbG8gd29ybGQ=".into())],
            Expect::Deny(403, "malformed_certificate"),
        ),
        (
            "fingerprint that is not one",
            secret,
            vec![("X-Client-Cert-Fingerprint", "not-a-fingerprint".into())],
            Expect::Deny(403, "malformed_request"),
        ),
    ];
    for (why, secret, headers, expect) in &rows {
        let answer = verify_with_secret(&app, *secret, headers).await;
        check(&answer, expect, why);
    }
    assert_eq!(
        active_agent["tags"],
        json!(["prod", "web"]),
        "X-Agent-Tags was checked as `prod,web`"
    );
}

#[tokio::test]
async fn denials_of_enrolled_agents_name_the_agent_in_the_json_form_only() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("named.example");
    let agent = app.enrol(&cert, &root_id).await;
    app.toggle_agent(agent["id"].as_str().unwrap(), Some(false))
        .await
        .assert_status(StatusCode::OK);
    let answer = app.verify_escaped_pem(&cert).await;
    answer.assert_denied(403, "agent_disabled");
    assert_eq!(
        answer.header("x-agent-id"),
        None,
        "the identity headers are for allowed agents only"
    );
    let seed_form = app
        .verify_request(Method::POST)
        .header("X-Verify-Secret", &app.verify_secret)
        .header("Content-Type", "application/json")
        .body(json!({"fingerprint": cert.fingerprint()}).to_string());
    let answer = VerifyAnswer::from(seed_form).await;
    assert!(answer.json);
    assert_eq!(
        answer.body,
        json!({"verified": false, "agent_id": agent["id"], "hostname": "named.example",
               "reason": "agent_disabled", "enforced": true})
    );
}

#[tokio::test]
async fn a_hostname_with_json_metacharacters_is_escaped_in_the_body_and_sent_as_is() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("escaped.example");
    let hostname = r#"we"ird\host{}<>"#;
    let agent = app
        .enrol_with(
            &cert,
            &root_id,
            json!({"hostname": hostname, "tags": ["a:b", "c"]}),
        )
        .await;
    assert_eq!(agent["hostname"], hostname);
    let answer = app.verify_escaped_pem(&cert).await;
    answer.assert_allowed(&agent);
    assert_eq!(answer.header("x-agent-tags"), Some("a:b,c"));
}

#[tokio::test]
async fn an_enrolled_certificate_that_expires_is_denied_and_listed_expired() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().root.leaf("short-lived").expiring_in(3).issue();
    let agent = app.enrol(&cert, &root_id).await;
    let id = agent["id"].as_str().unwrap();
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);

    // Allowed until notAfter, denied from then on (bounded wait).
    let (asked, expired) = eventually(Duration::from_secs(10), || async {
        let asked = time::OffsetDateTime::now_utc();
        let answer = app.verify_escaped_pem(&cert).await;
        (answer.status != 200).then_some((asked, answer))
    })
    .await
    .expect("denied within 10 s");
    expired.assert_denied(403, "certificate_expired");
    let not_after = time::OffsetDateTime::parse(
        agent["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        asked >= not_after,
        "denied at {asked}, before notAfter {not_after}"
    );
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_denied(403, "certificate_expired");
    assert_eq!(app.agent(id).await["status"], "expired");
    assert_eq!(app.agent_total("status=expired").await, 1);
    assert_eq!(app.agent_total("status=active").await, 0);
}

#[tokio::test]
async fn revocation_disabling_and_ca_removal_apply_to_the_very_next_call() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    for round in 0..3 {
        let cert = pki().leaf(&format!("round-{round}"));
        let agent = app.enrol(&cert, &root_id).await;
        let id = agent["id"].as_str().unwrap();
        app.verify_nginx_fingerprint(&cert)
            .await
            .assert_allowed(&agent);
        app.toggle_agent(id, None)
            .await
            .assert_status(StatusCode::OK);
        app.verify_nginx_fingerprint(&cert)
            .await
            .assert_denied(403, "agent_disabled");
        let enabled = app.toggle_agent(id, None).await;
        app.verify_nginx_fingerprint(&cert)
            .await
            .assert_allowed(&enabled.body);
        app.revoke_agent(id)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        app.verify_nginx_fingerprint(&cert)
            .await
            .assert_denied(403, "agent_revoked");
    }
    let cert = pki().leaf("last");
    let agent = app.enrol(&cert, &root_id).await;
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    app.delete_ca(&root_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "ca_removed");
}

#[tokio::test]
async fn proxy_verification_failure_denies_a_bare_fingerprint() {
    let app = spawn_app_with(&[(
        "CERTGATE_IDENTITY_HEADERS",
        "X-Client-Cert,X-Client-Cert-Fingerprint,X-Client-Verify",
    )])
    .await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("nginx-client");
    let agent = app.enrol(&cert, &root_id).await;
    let unknown = pki().leaf("unknown");
    let failed = "FAILED:unable to verify the first certificate";
    let verify = |v: &str| ("X-Client-Verify", v.to_owned());
    let rows: Vec<(&str, Headers, Expect)> = vec![
        (
            "fingerprint, FAILED",
            vec![sha1(&cert), verify(failed)],
            Expect::Deny(403, "proxy_verification_failed"),
        ),
        (
            "fingerprint, NONE",
            vec![sha1(&cert), verify("NONE")],
            Expect::Deny(403, "proxy_verification_failed"),
        ),
        (
            "unknown fingerprint, FAILED",
            vec![sha1(&unknown), verify(failed)],
            Expect::Deny(403, "proxy_verification_failed"),
        ),
        (
            "fingerprint, SUCCESS",
            vec![sha1(&cert), verify("SUCCESS")],
            Expect::Allow(&agent),
        ),
        (
            "fingerprint, no verify header",
            vec![sha1(&cert)],
            Expect::Allow(&agent),
        ),
        (
            "whole certificate, FAILED: certgate checks it",
            vec![escaped(&cert), verify(failed)],
            Expect::Allow(&agent),
        ),
        (
            "whole certificate and fingerprint, FAILED",
            vec![escaped(&cert), sha1(&cert), verify(failed)],
            Expect::Allow(&agent),
        ),
        (
            "FAILED and nothing else",
            vec![verify(failed)],
            Expect::Deny(401, "missing_certificate"),
        ),
    ];
    for (why, headers, expect) in &rows {
        let answer = verify_with_secret(&app, Some(app.verify_secret.as_str()), headers).await;
        check(&answer, expect, why);
    }
}

#[tokio::test]
async fn unknown_certificates_pass_when_reject_unknown_certs_is_off() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let revoked = pki().leaf("revoked");
    let revoked_id = app.enrol(&revoked, &root_id).await["id"].clone();
    app.revoke_agent(revoked_id.as_str().unwrap()).await;

    let unknown = pki().leaf("unknown");
    let stranger = pki().other_root.leaf("stranger").issue();
    let behind = pki().intermediate.leaf("behind-intermediate").issue();
    let with_chain = format!("{}{}", behind.pem(), pki().intermediate.cert.pem());
    let forged_chain = format!("{}{}", stranger.pem(), pki().other_root.cert.pem());
    let header = |value: String| vec![("X-Client-Cert", value)];
    let fp = |value: String| vec![("X-Client-Cert-Fingerprint", value)];
    let rows: Vec<(&str, Headers, Expect)> = vec![
        (
            "fingerprint only, SHA-256: the proxy checked the chain",
            fp(unknown.sha256_hex()),
            Expect::AllowUnknown,
        ),
        (
            "fingerprint only, SHA-1",
            fp(unknown.sha1_hex()),
            Expect::AllowUnknown,
        ),
        (
            "fingerprint only, even of a foreign certificate",
            fp(stranger.sha256_hex()),
            Expect::AllowUnknown,
        ),
        (
            "whole certificate chaining to a trusted CA",
            header(unknown.nginx_escaped()),
            Expect::AllowUnknown,
        ),
        (
            "leaf plus intermediate chaining to the root",
            header(with_chain.replace('\n', " ")),
            Expect::AllowUnknown,
        ),
        (
            "leaf of an intermediate, without it",
            header(behind.nginx_escaped()),
            Expect::Deny(403, "untrusted_issuer"),
        ),
        (
            "whole certificate of another CA",
            header(stranger.nginx_escaped()),
            Expect::Deny(403, "untrusted_issuer"),
        ),
        (
            "a presented CA is never trusted on its own",
            header(forged_chain.replace('\n', " ")),
            Expect::Deny(403, "untrusted_issuer"),
        ),
        (
            "expired",
            header(pki().root.leaf("x").expired().issue().nginx_escaped()),
            Expect::Deny(403, "certificate_expired"),
        ),
        (
            "not yet valid",
            header(pki().root.leaf("x").not_yet_valid().issue().nginx_escaped()),
            Expect::Deny(403, "certificate_not_yet_valid"),
        ),
        (
            "serverAuth only",
            header(
                pki()
                    .root
                    .leaf("x")
                    .server_auth_only()
                    .issue()
                    .nginx_escaped(),
            ),
            Expect::Deny(403, "wrong_key_usage"),
        ),
        (
            "enrolled agents are still judged",
            header(revoked.nginx_escaped()),
            Expect::Deny(403, "agent_revoked"),
        ),
        (
            "no certificate is still missing",
            vec![],
            Expect::Deny(401, "missing_certificate"),
        ),
    ];
    for (why, headers, expect) in &rows {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        check(&app.verify(&headers).await, expect, why);
    }
    assert_eq!(
        app.agent_total("include_revoked=true").await,
        1,
        "nothing enrolled"
    );
}

#[tokio::test]
async fn auto_enroll_enrols_certificates_that_chain_to_a_trusted_ca() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    app.put_config(json!({"auto_enroll": true})).await;

    let with_san = pki()
        .root
        .leaf("auto-cn")
        .dns_names(&["auto-1.example.test", "alt.example.test"])
        .issue();
    let first = app.verify_escaped_pem(&with_san).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["verified"], true);
    assert_eq!(first.body["hostname"], "auto-1.example.test");
    assert_eq!(first.header("x-agent-tags"), Some("auto-enrolled"));
    let listed = app.list_agents("").await;
    assert_eq!(listed.body["total"], 1);
    let agent = &listed.body["items"][0];
    assert_eq!(agent["id"], first.body["agent_id"]);
    assert_eq!(agent["hostname"], "auto-1.example.test");
    assert_eq!(agent["tags"], json!(["auto-enrolled"]));
    assert_eq!(agent["ca_id"], root_id);
    assert_eq!(agent["fingerprint"], with_san.fingerprint());
    assert_eq!(agent["status"], "active");
    first.assert_allowed(agent);
    app.verify_escaped_pem(&with_san)
        .await
        .assert_allowed(agent);
    app.verify_nginx_fingerprint(&with_san)
        .await
        .assert_allowed(agent);
    assert_eq!(app.agent_total("").await, 1, "enrolled once");

    let cn_only = pki().root.leaf("cn-only-host").dns_names(&[]).issue();
    let answer = app.verify_escaped_pem(&cn_only).await;
    assert_eq!(answer.body["hostname"], "cn-only-host", "{}", answer.body);

    let behind = pki().intermediate.leaf("chained.example").issue();
    let chain = format!("{}{}", behind.pem(), pki().intermediate.cert.pem());
    let answer = app
        .verify(&[("X-Client-Cert", &chain.replace('\n', " "))])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let chained = app.agent(answer.body["agent_id"].as_str().unwrap()).await;
    assert_eq!(chained["ca_id"], root_id, "enrolled under the stored CA");
    assert_eq!(app.agent_total("").await, 3);

    let refusals: Vec<(&str, VerifyAnswer, &str)> = vec![
        (
            "fingerprint only",
            app.verify_fingerprint(&pki().leaf("fp")).await,
            "unknown_certificate",
        ),
        (
            "another CA",
            app.verify_escaped_pem(&pki().other_root.leaf("x").issue())
                .await,
            "untrusted_issuer",
        ),
        (
            "serverAuth only",
            app.verify_escaped_pem(&pki().root.leaf("x").server_auth_only().issue())
                .await,
            "wrong_key_usage",
        ),
        (
            "expired",
            app.verify_escaped_pem(&pki().root.leaf("x").expired().issue())
                .await,
            "certificate_expired",
        ),
    ];
    for (why, answer, reason) in &refusals {
        assert_eq!(
            (answer.status, answer.reason()),
            (403, Some(*reason)),
            "{why}: {}",
            answer.body
        );
    }
    assert_eq!(
        app.agent_total("").await,
        3,
        "refused certificates are not enrolled"
    );

    app.put_config(json!({"reject_unknown_certs": false})).await;
    let answer = app.verify_escaped_pem(&pki().leaf("still-enrols")).await;
    assert_eq!(answer.body["hostname"], "still-enrols", "{}", answer.body);
    assert_eq!(app.agent_total("").await, 4);
}

#[tokio::test]
async fn audit_mode_answers_200_but_tells_the_truth() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let active = pki().leaf("active");
    let active_agent = app.enrol(&active, &root_id).await;
    let revoked = pki().leaf("revoked");
    let revoked_agent = app.enrol(&revoked, &root_id).await;
    app.revoke_agent(revoked_agent["id"].as_str().unwrap())
        .await;
    let config = app.put_config(json!({"enforcement_enabled": false})).await;
    assert_eq!(config["enforcement_enabled"], false);

    let audited = |answer: &VerifyAnswer, reason: &str, why: &str| {
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        assert_eq!(answer.body["verified"], false, "{why}");
        assert_eq!(answer.body["reason"], reason, "{why}");
        assert_eq!(answer.body["enforced"], false, "{why}");
        assert_eq!(answer.header("x-agent-id"), None, "{why}: no identity");
    };
    audited(
        &app.verify(&[]).await,
        "missing_certificate",
        "no certificate",
    );
    audited(
        &app.verify_escaped_pem(&pki().leaf("unknown")).await,
        "unknown_certificate",
        "unknown",
    );
    let answer = app.verify_escaped_pem(&revoked).await;
    audited(&answer, "agent_revoked", "revoked");
    audited(
        &app.verify(&[("X-Client-Cert-Fingerprint", "zzz")]).await,
        "malformed_request",
        "unreadable header",
    );

    let allowed = app.verify_escaped_pem(&active).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.body,
        json!({"verified": true, "agent_id": active_agent["id"], "hostname": "active",
               "reason": null, "enforced": false})
    );
    assert_eq!(allowed.header("x-agent-id"), active_agent["id"].as_str());

    for secret in [None, Some("wrong")] {
        let answer =
            verify_with_secret(&app, secret, &[("X-Client-Cert", active.nginx_escaped())]).await;
        answer.assert_denied(401, "invalid_verify_secret");
    }
}

#[tokio::test]
async fn any_method_is_answered_and_allow_is_always_200() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("any-method");
    let agent = app.enrol(&cert, &root_id).await;
    let unknown = pki().leaf("unknown");
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        app.verify_as(method.clone(), &[("X-Client-Cert", &cert.nginx_escaped())])
            .await
            .assert_allowed(&agent);
        app.verify_as(
            method.clone(),
            &[("X-Client-Cert", &unknown.nginx_escaped())],
        )
        .await
        .assert_denied(403, "unknown_certificate");
        app.verify_as(method.clone(), &[])
            .await
            .assert_denied(401, "missing_certificate");
    }
}

/// The nginx recipes send the auth subrequest as HEAD, so that nginx can reuse the
/// connection: the decision must travel in the status and headers alone.
#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("head-method");
    let agent = app.enrol(&cert, &root_id).await;
    let unknown = pki().leaf("head-unknown");
    let cases = [
        (cert.nginx_escaped(), app.verify_secret.clone(), 200, None),
        (
            unknown.nginx_escaped(),
            app.verify_secret.clone(),
            403,
            Some("unknown_certificate"),
        ),
        (
            String::new(),
            app.verify_secret.clone(),
            401,
            Some("missing_certificate"),
        ),
        (
            cert.nginx_escaped(),
            "wrong".to_owned(),
            401,
            Some("invalid_verify_secret"),
        ),
    ];
    for (value, secret, status, reason) in cases {
        let response = app
            .verify_request(Method::HEAD)
            .header("X-Verify-Secret", secret)
            .header("X-Client-Cert", value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{reason:?}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("x-certgate-reason").as_deref(), reason);
        if status == 200 {
            assert_eq!(header("x-agent-id").as_deref(), agent["id"].as_str());
            assert_eq!(
                header("x-agent-hostname").as_deref(),
                agent["hostname"].as_str()
            );
        } else {
            assert_eq!(header("x-agent-id"), None);
        }
        assert!(response.bytes().await.unwrap().is_empty(), "{reason:?}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let cases = [
        ("verify", app.verify_request(Method::GET)),
        (
            "verify with the secret",
            app.verify_request(Method::GET)
                .header("X-Verify-Secret", &app.verify_secret),
        ),
        ("admin", app.admin(Method::GET, "/config")),
        ("admin without a token", app.client.get(app.url("/config"))),
        (
            "admin, unknown route",
            app.admin(Method::GET, "/nothing-here"),
        ),
        (
            "admin, unsupported method",
            app.admin(Method::PATCH, "/config"),
        ),
        (
            "admin, body too large",
            app.admin(Method::PUT, "/config")
                .header("content-type", "application/json")
                .body(format!("{{\"x\": \"{}\"}}", "x".repeat(300 * 1024))),
        ),
        (
            "admin, malformed body",
            app.admin(Method::PUT, "/config")
                .header("content-type", "application/json")
                .body("{"),
        ),
        ("health", app.client.get(format!("{}/healthz", app.address))),
        (
            "outside every route",
            app.client.get(format!("{}/nope", app.address)),
        ),
    ];
    for (why, request) in cases {
        let kept = request
            .try_clone()
            .unwrap()
            .header("X-Request-Id", "proxy-req-42")
            .send()
            .await
            .unwrap();
        assert_eq!(
            kept.headers().get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"proxy-req-42"[..]),
            "{why}"
        );
        let mut fresh = Vec::new();
        for _ in 0..2 {
            let response = request.try_clone().unwrap().send().await.unwrap();
            let id = response
                .headers()
                .get("x-request-id")
                .unwrap_or_else(|| panic!("{why}: no X-Request-Id"))
                .to_str()
                .unwrap()
                .to_owned();
            uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("{why}: `{id}`"));
            fresh.push(id);
        }
        assert_ne!(fresh[0], fresh[1], "{why}: a new id per request");
    }
}

#[tokio::test]
async fn concurrent_first_sightings_auto_enrol_once() {
    let app = spawn_app().await;
    app.add_ca(&pki().root).await;
    app.put_config(json!({"auto_enroll": true})).await;
    let cert = pki().leaf("stampede.example");
    let escaped = cert.nginx_escaped();
    let headers = [("X-Client-Cert", escaped.as_str())];
    let answers = futures_util::future::join_all((0..8).map(|_| app.verify(&headers))).await;
    let listed = app.list_agents("").await;
    assert_eq!(listed.body["total"], 1, "enrolled once: {}", listed.body);
    for answer in &answers {
        answer.assert_allowed(&listed.body["items"][0]);
    }
}

#[tokio::test]
async fn ca_changes_apply_to_the_next_call_for_unknown_certificates_too() {
    let app = spawn_app().await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let cert = pki().leaf("unknown.example");
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "untrusted_issuer");
    let ca_id = app.add_ca(&pki().root).await;
    app.verify_escaped_pem(&cert).await.assert_allowed_unknown();
    app.delete_ca(&ca_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "untrusted_issuer");
    app.add_ca(&pki().root).await;
    app.verify_escaped_pem(&cert).await.assert_allowed_unknown();
    app.put_config(json!({"reject_unknown_certs": true})).await;
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "unknown_certificate");
}

#[tokio::test]
async fn answers_are_status_and_headers_with_an_empty_body() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("bodyless.example");
    let agent = app.enrol(&cert, &root_id).await;
    let unknown = pki().leaf("unknown.example");
    // `VerifyAnswer::from` checks every answer's form: `Content-Length: 0`, no
    // `Content-Type`, unless the call itself sent the seed's JSON body.
    for method in [Method::GET, Method::HEAD, Method::POST, Method::DELETE] {
        app.verify_as(method.clone(), &[("X-Client-Cert", &cert.nginx_escaped())])
            .await
            .assert_allowed(&agent);
        let denied = app
            .verify_as(
                method.clone(),
                &[("X-Client-Cert", &unknown.nginx_escaped())],
            )
            .await;
        assert_eq!(denied.status, 403, "{method}");
        assert_eq!(
            denied.header("x-certgate-reason"),
            Some("unknown_certificate")
        );
        let refused = verify_with_secret(&app, Some("wrong"), &[escaped(&cert)]).await;
        assert_eq!(refused.reason(), Some("invalid_verify_secret"));
    }
    // An identity header wins over a JSON body, and the answer has none.
    let with_body = app
        .verify_request(Method::POST)
        .header("X-Verify-Secret", &app.verify_secret)
        .header("X-Client-Cert", cert.nginx_escaped())
        .header("Content-Type", "application/json")
        .body(json!({"fingerprint": unknown.fingerprint()}).to_string());
    let answer = VerifyAnswer::from(with_body).await;
    assert!(!answer.json);
    answer.assert_allowed(&agent);

    app.put_config(json!({"enforcement_enabled": false})).await;
    let audit = app.verify_escaped_pem(&unknown).await;
    assert_eq!(audit.status, 200);
    assert_eq!(audit.header("x-certgate-enforced"), Some("false"));
    assert_eq!(
        audit.header("x-certgate-reason"),
        Some("unknown_certificate")
    );
    let audit_allow = app.verify_escaped_pem(&cert).await;
    assert_eq!(audit_allow.header("x-certgate-enforced"), Some("false"));
    assert_eq!(audit_allow.header("x-certgate-reason"), None);
}

#[tokio::test]
async fn one_connection_carries_check_after_check_when_no_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("keepalive.example");
    app.enrol(&cert, &root_id).await;
    let unknown = pki().leaf("unknown.example");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // What nginx's auth_request does with an upstream keepalive connection: send a GET, read
    // the head, and send the next request on the same connection. A body left behind would
    // be read as the start of the next answer.
    for (round, (leaf, status)) in [(&cert, 200), (&unknown, 403), (&cert, 200)]
        .iter()
        .enumerate()
    {
        let request = format!(
            "GET {}/verify HTTP/1.1\r\nHost: certgate\r\nX-Verify-Secret: {}\r\nX-Client-Cert: {}\r\n\r\n",
            app.base_path,
            app.verify_secret,
            leaf.nginx_escaped()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        let read_head = async {
            while !head.ends_with(b"\r\n\r\n") {
                assert!(head.len() < 16 * 1024, "an answer head this long");
                stream.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read_head)
            .await
            .unwrap_or_else(|_| panic!("round {round}: no answer on the kept connection"));
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with(&format!("http/1.1 {status} ")),
            "round {round}: {head}"
        );
        assert!(
            head.contains("\r\ncontent-length: 0\r\n"),
            "round {round}: {head}"
        );
        assert!(!head.contains("connection: close"), "round {round}: {head}");
    }
}

#[tokio::test]
async fn with_decision_caching_only_allows_of_enrolled_agents_may_be_cached() {
    let app = spawn_app_with(&[("CERTGATE_DECISION_CACHE_SECONDS", "5")]).await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("cached.example");
    let agent = app.enrol(&cert, &root_id).await;
    let allowed = app.verify_escaped_pem(&cert).await;
    allowed.assert_allowed(&agent);
    assert_eq!(allowed.header("x-accel-expires"), Some("5"));
    assert_eq!(
        allowed.header("cache-control"),
        None,
        "nginx stores nothing marked no-store"
    );

    let expiring = pki()
        .intermediate
        .leaf("expiring.example")
        .expiring_in(2)
        .issue();
    let intermediate_id = app.add_ca(&pki().intermediate).await;
    app.enrol(&expiring, &intermediate_id).await;
    let answer = app.verify_escaped_pem(&expiring).await;
    assert_eq!(answer.status, 200);
    let seconds: u32 = answer.header("x-accel-expires").unwrap().parse().unwrap();
    assert!(
        (1..=3).contains(&seconds),
        "never past the certificate's expiry: {seconds}"
    );

    let restricted = pki().leaf("restricted.example");
    app.enrol_with(&restricted, &root_id, json!({"allowed_ips": ["127.0.0.1"]}))
        .await;
    let answer = app.verify_escaped_pem(&restricted).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("x-accel-expires"),
        Some("0"),
        "an address-bound decision"
    );

    let unknown = app.verify_escaped_pem(&pki().leaf("unknown.example")).await;
    unknown.assert_denied(403, "unknown_certificate");
    assert_eq!(unknown.header("x-accel-expires"), Some("0"));
    assert_eq!(unknown.header("cache-control"), Some("no-store"));
    let refused = verify_with_secret(&app, Some("wrong"), &[escaped(&cert)]).await;
    assert_eq!(refused.header("x-accel-expires"), Some("0"));

    app.revoke_agent(agent["id"].as_str().unwrap()).await;
    let revoked = app.verify_escaped_pem(&cert).await;
    revoked.assert_denied(403, "agent_revoked");
    assert_eq!(revoked.header("x-accel-expires"), Some("0"));
}

#[tokio::test]
async fn without_decision_caching_no_answer_says_how_long_to_cache() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("uncached.example");
    app.enrol(&cert, &root_id).await;
    let answer = app.verify_escaped_pem(&cert).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-accel-expires"), None);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}
