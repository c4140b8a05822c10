//! certgate as its own CA: enrolment tokens, certificates issued from the agent's signing
//! request, token rotation and re-enrolment.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{ApiResponse, TestApp, eventually, spawn_app, spawn_app_with};
use crate::pki::TestCert;

/// An agent host: its own key, and the signing request it sends.
pub struct AgentHost {
    pub key: KeyPair,
}

impl AgentHost {
    pub fn new() -> Self {
        Self {
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    pub fn csr(&self) -> String {
        CertificateParams::default()
            .serialize_request(&self.key)
            .unwrap()
            .pem()
            .unwrap()
    }
}

fn parse_time(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

pub fn issued_cert(answer: &ApiResponse) -> TestCert {
    let pem = answer.body["certificate"].as_str().unwrap();
    let der = pem::parse(pem).unwrap().into_contents();
    TestCert::from_der(der, answer.body["agent_id"].as_str().unwrap())
}

impl TestApp {
    pub async fn create_enrolment(&self, body: Value) -> ApiResponse {
        self.post_json("/enrollments", &body).await
    }

    /// `POST B/enroll`, which takes no bearer token.
    pub async fn redeem(&self, token: &str, csr: &str) -> ApiResponse {
        ApiResponse::from(
            self.client
                .post(self.url("/enroll"))
                .json(&json!({"token": token, "csr": csr})),
        )
        .await
    }

    /// Creates an enrolment and redeems it with `host`'s key; answers (token, enrol answer).
    pub async fn enrol_host(&self, host: &AgentHost, body: Value) -> (String, ApiResponse) {
        let created = self.create_enrolment(body).await;
        created.assert_status(StatusCode::CREATED);
        let token = created.body["token"].as_str().unwrap().to_owned();
        let answer = self.redeem(&token, &host.csr()).await;
        answer.assert_status(StatusCode::CREATED);
        (token, answer)
    }
}

#[tokio::test]
async fn a_token_enrols_a_pending_agent_whose_certificate_then_verifies() {
    let app = spawn_app().await;
    assert_eq!(
        app.ca_total().await,
        0,
        "nothing is registered before issuing"
    );

    let created = app
        .create_enrolment(json!({"hostname": "agent-7.example.test", "tags": ["edge"],
                                 "description": "rack 7", "allowed_ips": ["127.0.0.0/8"]}))
        .await;
    created.assert_status(StatusCode::CREATED);
    let agent_id = created.body["agent_id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("cgt_") && token.len() > 40, "{token}");
    assert_eq!(created.body["profile"], "agent");
    let ttl = parse_time(&created.body["expires_at"]) - OffsetDateTime::now_utc();
    assert!(ttl > time::Duration::hours(23) && ttl <= time::Duration::hours(24));

    let pending = app.agent(&agent_id).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["fingerprint"], Value::Null);
    assert_eq!(pending["hostname"], "agent-7.example.test");
    assert_eq!(app.agent_total("status=pending").await, 1);
    assert_eq!(app.get("/enrollments").await.body["total"], 1);

    let cas = app.get("/ca").await;
    assert_eq!(cas.body["total"], 1, "the internal CA is registered");
    assert_eq!(cas.body["items"][0]["internal"], true);
    let ca_id = cas.body["items"][0]["id"].as_str().unwrap().to_owned();

    let host = AgentHost::new();
    let answer = app.redeem(&token, &host.csr()).await;
    answer.assert_status(StatusCode::CREATED);
    assert_eq!(answer.body["agent_id"], agent_id.as_str());
    let cert = issued_cert(&answer);
    assert_eq!(answer.body["fingerprint"], cert.fingerprint());
    let ca = app.get(&format!("/ca/{ca_id}")).await;
    assert_eq!(answer.body["ca_certificate"], ca.body["certificate"]);
    let validity = parse_time(&answer.body["not_after"]) - OffsetDateTime::now_utc();
    assert!(validity > time::Duration::days(364) && validity <= time::Duration::days(365));

    let info = x509_parser::parse_x509_certificate(&cert.der).unwrap().1;
    let cn = info.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), agent_id, "CN is the agent id");
    assert_eq!(
        info.public_key().raw,
        host.key.public_key_der(),
        "the certificate is for the agent's own key"
    );
    let eku = info.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);

    let agent = app.agent(&agent_id).await;
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["fingerprint"], cert.fingerprint());
    assert_eq!(agent["ca_id"], ca_id.as_str());
    assert_eq!(agent["profile"], "agent");
    assert_eq!(agent["tags"], json!(["edge"]));
    assert_eq!(agent["allowed_ips"], json!(["127.0.0.0/8"]));
    assert_eq!(app.agent_total("status=pending").await, 0);

    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_allowed(&agent);
}

#[tokio::test]
async fn a_token_works_once_and_wrong_or_expired_ones_change_nothing() {
    let app = spawn_app().await;
    let host = AgentHost::new();
    let (token, first) = app
        .enrol_host(&host, json!({"hostname": "once.example.test"}))
        .await;
    let agent_id = first.body["agent_id"].as_str().unwrap();

    app.redeem(&token, &AgentHost::new().csr())
        .await
        .assert_error(StatusCode::GONE, "token_used");
    assert_eq!(
        app.agent(agent_id).await["fingerprint"],
        first.body["fingerprint"],
        "a second use changes nothing"
    );
    assert_eq!(app.agent_total("").await, 1);

    app.redeem("cgt_not-a-token-anyone-was-given", &host.csr())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");

    let created = app
        .create_enrolment(json!({"hostname": "late.example.test", "ttl_seconds": 60}))
        .await;
    let late_id = created.body["agent_id"].as_str().unwrap().to_owned();
    app.db
        .execute(&format!(
            "UPDATE enrollments SET expires_at = 0 WHERE agent_id = '{late_id}'"
        ))
        .await;
    app.redeem(created.body["token"].as_str().unwrap(), &host.csr())
        .await
        .assert_error(StatusCode::GONE, "token_expired");
    let late = app.agent(&late_id).await;
    assert_eq!(
        (late["status"].as_str(), late["token_expired"].as_bool()),
        (Some("pending"), Some(true))
    );
    assert_eq!(app.agent_total("").await, 1);
}

#[tokio::test]
async fn signing_requests_are_checked_and_a_refused_one_leaves_the_token_usable() {
    let app = spawn_app().await;
    let created = app
        .create_enrolment(json!({"hostname": "csr.example.test"}))
        .await;
    let token = created.body["token"].as_str().unwrap();

    let host = AgentHost::new();
    let good = host.csr();
    // Flip one bit inside the signature (the last bytes of the DER).
    let mut der = pem::parse(&good).unwrap().into_contents();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let forged = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
    // A request signed by one key that names another: whoever sent it does not hold the
    // key it asks a certificate for.
    let other = AgentHost::new();
    let good_der = pem::parse(&good).unwrap().into_contents();
    let (own, theirs) = (host.key.public_key_der(), other.key.public_key_der());
    let at = good_der
        .windows(own.len())
        .position(|w| w == own.as_slice())
        .unwrap();
    let mut swapped = good_der.clone();
    swapped[at..at + own.len()].copy_from_slice(&theirs);
    let another_key = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", swapped));
    let certificate_instead = crate::pki::pki().leaf("not-a-csr").pem();
    let cases: [(&str, &str, &str); 5] = [
        ("for another key", &another_key, "csr_signature_invalid"),
        ("garbage", "not a PEM at all", "invalid_csr"),
        ("a certificate", &certificate_instead, "invalid_csr"),
        ("a bad signature", &forged, "csr_signature_invalid"),
        (
            "truncated",
            "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAjCB\n-----END CERTIFICATE REQUEST-----\n",
            "invalid_csr",
        ),
    ];
    for (what, csr, code) in cases {
        let answer = app.redeem(token, csr).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{what}: {}",
            answer.body
        );
    }
    let ed25519 = AgentHost {
        key: KeyPair::generate_for(&PKCS_ED25519).unwrap(),
    };
    app.redeem(token, &ed25519.csr())
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn enrolment_requests_are_validated() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "missing_field"),
        (json!({"hostname": "a b"}), "invalid_field"),
        (json!({"hostname": "h", "profile": "root"}), "invalid_field"),
        (json!({"hostname": "h", "ttl_seconds": 0}), "invalid_field"),
        (
            json!({"hostname": "h", "ttl_seconds": 99_999_999}),
            "invalid_field",
        ),
        (json!({"hostname": "h", "tags": ["a,b"]}), "invalid_field"),
        (
            json!({"hostname": "h", "allowed_ips": ["nope"]}),
            "invalid_field",
        ),
        (
            json!({"hostname": "h", "certificate": "x"}),
            "unknown_field",
        ),
    ];
    for (body, code) in cases {
        let answer = app.create_enrolment(body.clone()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {}",
            answer.body
        );
    }
    assert_eq!(app.agent_total("status=pending").await, 0);

    let no_token = ApiResponse::from(
        app.client
            .post(app.url("/enrollments"))
            .json(&json!({"hostname": "h"})),
    )
    .await;
    no_token.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let extra = ApiResponse::from(
        app.client
            .post(app.url("/enroll"))
            .json(&json!({"token": "t", "csr": "c", "hostname": "h"})),
    )
    .await;
    extra.assert_error(StatusCode::BAD_REQUEST, "unknown_field");
    let get = ApiResponse::from(app.client.get(app.url("/enroll"))).await;
    get.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn profiles_set_the_key_usages_and_are_shown_on_the_agent() {
    let app = spawn_app().await;
    let host = AgentHost::new();
    let (_, answer) = app
        .enrol_host(
            &host,
            json!({"hostname": "svc.example.test", "profile": "server"}),
        )
        .await;
    let cert = issued_cert(&answer);
    let info = x509_parser::parse_x509_certificate(&cert.der).unwrap().1;
    let eku = info.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    let agent = app.agent(answer.body["agent_id"].as_str().unwrap()).await;
    assert_eq!(agent["profile"], "server");
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
}

#[tokio::test]
async fn rotating_a_token_replaces_the_old_one_and_re_enrols_an_active_agent() {
    let app = spawn_app().await;

    // Pending: the new token works, the old one no longer does.
    let created = app
        .create_enrolment(json!({"hostname": "rotate.example.test"}))
        .await;
    let pending_id = created.body["agent_id"].as_str().unwrap().to_owned();
    let rotated = app
        .post_json(
            &format!("/agents/{pending_id}/token"),
            &json!({"ttl_seconds": 600}),
        )
        .await;
    rotated.assert_status(StatusCode::CREATED);
    assert_eq!(rotated.body["agent_id"], pending_id.as_str());
    let host = AgentHost::new();
    app.redeem(created.body["token"].as_str().unwrap(), &host.csr())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    let first = app
        .redeem(rotated.body["token"].as_str().unwrap(), &host.csr())
        .await;
    first.assert_status(StatusCode::CREATED);
    let old_cert = issued_cert(&first);

    // Active: a new token re-enrols the same agent with a new key; the old certificate
    // is revoked at once.
    let again = ApiResponse::from(app.admin(
        reqwest::Method::POST,
        &format!("/agents/{pending_id}/token"),
    ))
    .await;
    again.assert_status(StatusCode::CREATED);
    let new_host = AgentHost::new();
    let second = app
        .redeem(again.body["token"].as_str().unwrap(), &new_host.csr())
        .await;
    second.assert_status(StatusCode::CREATED);
    assert_eq!(second.body["agent_id"], pending_id.as_str());
    let new_cert = issued_cert(&second);
    assert_ne!(new_cert.fingerprint(), old_cert.fingerprint());
    let agent = app.agent(&pending_id).await;
    assert_eq!(agent["fingerprint"], new_cert.fingerprint());
    app.verify_escaped_pem(&new_cert)
        .await
        .assert_allowed(&agent);
    // Denied as revoked (a re-enrolment assumes the old key is lost), whatever the policy
    // for unknown certificates says.
    app.put_config(json!({"reject_unknown_certs": false})).await;
    app.verify_escaped_pem(&old_cert)
        .await
        .assert_denied(403, "agent_revoked");
    app.verify_nginx_fingerprint(&old_cert)
        .await
        .assert_denied(403, "agent_revoked");
    assert_eq!(app.agent_total("").await, 1);

    app.post_json(
        &format!("/agents/{}/token", uuid::Uuid::new_v4()),
        &json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.post_json("/agents/not-a-uuid/token", &json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_id");
}

#[tokio::test]
async fn revoked_agents_cannot_re_enrol_and_pending_ones_can_be_withdrawn() {
    let app = spawn_app().await;
    let host = AgentHost::new();
    let (_, answer) = app
        .enrol_host(&host, json!({"hostname": "gone.example.test"}))
        .await;
    let agent_id = answer.body["agent_id"].as_str().unwrap().to_owned();

    // A token handed out before the revocation is worthless after it.
    let rotated = app
        .post_json(&format!("/agents/{agent_id}/token"), &json!({}))
        .await;
    rotated.assert_status(StatusCode::CREATED);
    app.revoke_agent(&agent_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.redeem(
        rotated.body["token"].as_str().unwrap(),
        &AgentHost::new().csr(),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "agent_revoked");
    app.post_json(&format!("/agents/{agent_id}/token"), &json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "agent_revoked");
    app.verify_escaped_pem(&issued_cert(&answer))
        .await
        .assert_denied(403, "agent_revoked");

    let created = app
        .create_enrolment(json!({"hostname": "never.example.test"}))
        .await;
    let pending_id = created.body["agent_id"].as_str().unwrap();
    app.revoke_agent(pending_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.get(&format!("/agents/{pending_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.redeem(created.body["token"].as_str().unwrap(), &host.csr())
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

#[tokio::test]
async fn failed_redemptions_are_rate_limited_per_peer() {
    let app = spawn_app_with(&[("CERTGATE_ADMIN_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let csr = AgentHost::new().csr();
    for _ in 0..3 {
        app.redeem("cgt_wrong", &csr)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
    }
    let limited = app.redeem("cgt_wrong", &csr).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn the_internal_ca_lives_in_the_data_directory_and_survives_a_restart() {
    let mut app = spawn_app().await;
    let dir = app.data_dir.path().to_owned();
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("internal-ca.key"), 0o400);
    assert_eq!(mode("internal-ca.crt"), 0o644);
    let on_disk = std::fs::read_to_string(dir.join("internal-ca.crt")).unwrap();

    let host = AgentHost::new();
    let (_, answer) = app
        .enrol_host(&host, json!({"hostname": "keep.example.test"}))
        .await;
    assert_eq!(answer.body["ca_certificate"], on_disk.as_str());
    let cert = issued_cert(&answer);
    app.restart().await;

    let agent = app.agent(answer.body["agent_id"].as_str().unwrap()).await;
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    assert_eq!(app.ca_total().await, 1, "the same CA, not a second one");
    let (_, later) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "later.example.test"}))
        .await;
    assert_eq!(later.body["ca_certificate"], on_disk.as_str());
}

#[tokio::test]
async fn a_replica_stops_accepting_a_replaced_certificate() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let (_, first) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "moved.example.test"}))
        .await;
    let agent_id = first.body["agent_id"].as_str().unwrap().to_owned();
    let old_cert = issued_cert(&first);
    let seen = eventually(Duration::from_secs(5), || async {
        (replica.verify_escaped_pem(&old_cert).await.status == 200).then_some(())
    })
    .await;
    assert!(seen.is_some(), "the replica learns of the new agent");

    let rotated = app
        .post_json(&format!("/agents/{agent_id}/token"), &json!({}))
        .await;
    let second = app
        .redeem(
            rotated.body["token"].as_str().unwrap(),
            &AgentHost::new().csr(),
        )
        .await;
    second.assert_status(StatusCode::CREATED);
    let new_cert = issued_cert(&second);
    let switched = eventually(Duration::from_secs(5), || async {
        let old = replica.verify_escaped_pem(&old_cert).await;
        let new = replica.verify_escaped_pem(&new_cert).await;
        (old.reason() == Some("agent_revoked") && new.status == 200).then_some(())
    })
    .await;
    assert!(switched.is_some(), "the replica follows the re-enrolment");
}

#[tokio::test]
async fn issuing_routes_answer_503_when_the_internal_ca_is_off() {
    let app = spawn_app_with(&[("CERTGATE_INTERNAL_CA", "false")]).await;
    app.create_enrolment(json!({"hostname": "h"}))
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "internal_ca_unavailable");
    assert!(!app.data_dir.path().join("internal-ca.key").exists());
    assert_eq!(app.ca_total().await, 0);
}

/// An admin call the way the proxy forwards it for a client certificate: no bearer token,
/// the verify secret and the certificate.
async fn admin_by_certificate(app: &TestApp, cert: &TestCert) -> ApiResponse {
    ApiResponse::from(
        app.client
            .get(app.url("/agents"))
            .header("X-Verify-Secret", crate::helpers::VERIFY_SECRET)
            .header("X-Client-Cert", cert.nginx_escaped()),
    )
    .await
}

#[tokio::test]
async fn agents_with_the_admin_profile_may_use_the_admin_api_by_certificate() {
    let app = spawn_app().await;
    let (_, admin) = app
        .enrol_host(
            &AgentHost::new(),
            json!({"hostname": "ops.example.test", "profile": "admin"}),
        )
        .await;
    let admin_cert = issued_cert(&admin);
    let (_, plain) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "plain.example.test"}))
        .await;
    let plain_cert = issued_cert(&plain);

    let listed = admin_by_certificate(&app, &admin_cert).await;
    listed.assert_status(StatusCode::OK);
    assert_eq!(listed.body["total"], 2);

    admin_by_certificate(&app, &plain_cert)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong_secret = ApiResponse::from(
        app.client
            .get(app.url("/agents"))
            .header("X-Verify-Secret", "guess")
            .header("X-Client-Cert", admin_cert.nginx_escaped()),
    )
    .await;
    wrong_secret.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let no_secret = ApiResponse::from(
        app.client
            .get(app.url("/agents"))
            .header("X-Client-Cert", admin_cert.nginx_escaped()),
    )
    .await;
    no_secret.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    app.toggle_agent(admin.body["agent_id"].as_str().unwrap(), Some(false))
        .await
        .assert_status(StatusCode::OK);
    admin_by_certificate(&app, &admin_cert)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let off = spawn_app_with(&[("CERTGATE_DANGER_ADMIN_CERTIFICATE_AUTH", "false")]).await;
    let (_, admin) = off
        .enrol_host(
            &AgentHost::new(),
            json!({"hostname": "ops.example.test", "profile": "admin"}),
        )
        .await;
    admin_by_certificate(&off, &issued_cert(&admin))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}
