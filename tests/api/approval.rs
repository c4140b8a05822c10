//! Host self-enrolment: a request with the host's signing request, a polling token, an
//! administrator's approval or denial.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ApiResponse, TestApp, spawn_app, spawn_app_with};
use crate::issuance::AgentHost;
use crate::pki::TestCert;

/// Enough requests per minute for tests that are not about the limit.
const MANY: (&str, &str) = ("CERTGATE_ENROLL_REQUESTS_PER_MINUTE", "1000");

impl TestApp {
    pub async fn submit_request(&self, body: Value) -> ApiResponse {
        ApiResponse::from(self.client.post(self.url("/enroll/requests")).json(&body)).await
    }

    async fn poll(&self, token: &str) -> ApiResponse {
        ApiResponse::from(
            self.client
                .get(self.url(&format!("/enroll/requests/status/{token}"))),
        )
        .await
    }

    pub async fn decide(&self, id: &str, decision: &str) -> ApiResponse {
        ApiResponse::from(self.admin(
            reqwest::Method::POST,
            &format!("/enroll/requests/{id}/{decision}"),
        ))
        .await
    }
}

pub fn request_body(host: &AgentHost, hostname: &str, ip: &str) -> Value {
    json!({
        "hostname": hostname,
        "machine_id": "4f2c7a9e0b1d4c3e8f6a5b7c9d0e1f2a",
        "ip_address": ip,
        "os_details": {"name": "Debian", "version_id": "12"},
        "csr": host.csr(),
    })
}

#[tokio::test]
async fn an_approved_host_collects_a_certificate_for_its_own_key() {
    let app = spawn_app_with(&[MANY]).await;
    let host = AgentHost::new();
    let submitted = app
        .submit_request(request_body(&host, "db-7.example.test", "10.1.2.3"))
        .await;
    submitted.assert_status(StatusCode::ACCEPTED);
    let token = submitted.body["polling_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
    let key_sha256 = format!(
        "sha256:{}",
        hex::encode(Sha256::digest(host.key.public_key_der()))
    );
    assert_eq!(submitted.body["key_sha256"], key_sha256.as_str());
    let id = submitted.body["request_id"].as_str().unwrap().to_owned();

    assert_eq!(app.poll(&token).await.body, json!({"status": "pending"}));
    let pending = app.get("/enroll/requests?status=pending").await;
    assert_eq!(pending.body["total"], 1);
    let item = &pending.body["items"][0];
    assert_eq!(item["hostname"], "db-7.example.test");
    assert_eq!(item["ip_address"], "10.1.2.3");
    assert_eq!(item["os_details"]["name"], "Debian");
    assert_eq!(item["key_sha256"], key_sha256.as_str());
    assert!(
        !item.to_string().contains(&token),
        "the token is never shown again"
    );

    let approved = app.decide(&id, "approve").await;
    approved.assert_status(StatusCode::OK);
    assert_eq!(approved.body["status"], "approved");
    let agent_id = approved.body["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/enroll/requests?status=pending").await.body["total"],
        0
    );

    let collected = app.poll(&token).await;
    collected.assert_status(StatusCode::OK);
    assert_eq!(collected.body["status"], "approved");
    assert_eq!(collected.body["agent_id"], agent_id.as_str());
    let pem_text = collected.body["certificate"].as_str().unwrap();
    let cert = TestCert::from_der(pem::parse(pem_text).unwrap().into_contents(), &agent_id);
    let parsed = x509_parser::parse_x509_certificate(&cert.der).unwrap().1;
    assert_eq!(parsed.public_key().raw, host.key.public_key_der());
    let ca_id = app.get("/ca").await.body["items"][0]["id"].clone();
    let ca = app.get(&format!("/ca/{}", ca_id.as_str().unwrap())).await;
    assert_eq!(collected.body["ca_certificate"], ca.body["certificate"]);

    let agent = app.agent(&agent_id).await;
    assert_eq!(agent["hostname"], "db-7.example.test");
    assert_eq!(agent["status"], "active");
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    assert_eq!(
        app.poll(&token).await.body["status"],
        "approved",
        "polling stays answerable"
    );
}

#[tokio::test]
async fn denied_and_decided_requests() {
    let app = spawn_app_with(&[MANY]).await;
    let host = AgentHost::new();
    let submitted = app
        .submit_request(request_body(&host, "no.example.test", "10.9.9.9"))
        .await;
    let token = submitted.body["polling_token"].as_str().unwrap();
    let id = submitted.body["request_id"].as_str().unwrap();
    let denied = app.decide(id, "deny").await;
    denied.assert_status(StatusCode::OK);
    assert_eq!(denied.body["status"], "denied");
    assert_eq!(app.poll(token).await.body, json!({"status": "denied"}));
    app.decide(id, "approve")
        .await
        .assert_error(StatusCode::CONFLICT, "request_decided");
    app.decide(id, "deny")
        .await
        .assert_error(StatusCode::CONFLICT, "request_decided");
    assert_eq!(app.agent_total("").await, 0);

    assert_eq!(
        app.poll("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .body,
        json!({"status": "not_found"})
    );
    let late = app
        .submit_request(request_body(&host, "late.example.test", "10.9.9.10"))
        .await;
    let late_id = late.body["request_id"].as_str().unwrap();
    app.db
        .execute(&format!(
            "UPDATE enrollment_requests SET expires_at = 0 WHERE id = '{late_id}'"
        ))
        .await;
    assert_eq!(
        app.poll(late.body["polling_token"].as_str().unwrap())
            .await
            .body,
        json!({"status": "not_found"})
    );
    app.decide(late_id, "approve")
        .await
        .assert_error(StatusCode::GONE, "request_expired");
    app.decide(&uuid::Uuid::new_v4().to_string(), "approve")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn approval_is_refused_when_the_hostname_or_ip_belongs_to_an_active_agent() {
    let app = spawn_app_with(&[MANY]).await;
    let first = app
        .submit_request(request_body(
            &AgentHost::new(),
            "web.example.test",
            "10.0.0.5",
        ))
        .await;
    let first_id = first.body["request_id"].as_str().unwrap();
    let approved = app.decide(first_id, "approve").await;
    approved.assert_status(StatusCode::OK);
    let first_agent = approved.body["agent_id"].as_str().unwrap().to_owned();

    let same_name = app
        .submit_request(request_body(
            &AgentHost::new(),
            "WEB.example.test",
            "10.0.0.6",
        ))
        .await;
    let same_name_id = same_name.body["request_id"].as_str().unwrap();
    app.decide(same_name_id, "approve")
        .await
        .assert_error(StatusCode::CONFLICT, "hostname_conflict");
    let same_ip = app
        .submit_request(request_body(
            &AgentHost::new(),
            "other.example.test",
            "10.0.0.5",
        ))
        .await;
    let same_ip_id = same_ip.body["request_id"].as_str().unwrap();
    app.decide(same_ip_id, "approve")
        .await
        .assert_error(StatusCode::CONFLICT, "ip_address_conflict");
    assert_eq!(
        app.agent_total("").await,
        1,
        "a refused approval stores nothing"
    );

    app.revoke_agent(&first_agent)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.decide(same_name_id, "approve")
        .await
        .assert_status(StatusCode::OK);
}

/// Hosts behind NAT or a shared egress reach certgate from one address: only an active
/// agent's address blocks an approval, and the administrator can accept a shared one; a
/// hostname collision is refused either way.
#[tokio::test]
async fn a_shared_address_counts_only_against_active_agents_and_can_be_accepted() {
    let app = spawn_app_with(&[MANY]).await;
    let submit = |hostname: &'static str| {
        let app = &app;
        async move {
            let submitted = app
                .submit_request(request_body(&AgentHost::new(), hostname, "10.0.0.5"))
                .await;
            submitted.body["request_id"].as_str().unwrap().to_owned()
        }
    };
    let approve_with = |id: String, body: Value| {
        let app = &app;
        async move {
            ApiResponse::from(
                app.admin(
                    reqwest::Method::POST,
                    &format!("/enroll/requests/{id}/approve"),
                )
                .json(&body),
            )
            .await
        }
    };
    let first = app
        .decide(&submit("one.example.test").await, "approve")
        .await;
    first.assert_status(StatusCode::OK);
    let first_agent = first.body["agent_id"].as_str().unwrap().to_owned();

    let second = submit("two.example.test").await;
    app.decide(&second, "approve")
        .await
        .assert_error(StatusCode::CONFLICT, "ip_address_conflict");
    let shared = approve_with(second, json!({"allow_shared_ip": true})).await;
    shared.assert_status(StatusCode::OK);
    let second_agent = shared.body["agent_id"].as_str().unwrap().to_owned();

    approve_with(
        submit("ONE.example.test").await,
        json!({"allow_shared_ip": true}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "hostname_conflict");

    for agent in [&first_agent, &second_agent] {
        app.toggle_agent(agent, Some(false))
            .await
            .assert_status(StatusCode::OK);
    }
    app.decide(&submit("three.example.test").await, "approve")
        .await
        .assert_status(StatusCode::OK);
    let wrong_type = approve_with(
        submit("four.example.test").await,
        json!({"allow_shared_ip": "yes"}),
    )
    .await;
    assert_eq!(wrong_type.status.as_u16(), 400, "{}", wrong_type.body);
}

#[tokio::test]
async fn requests_are_validated_and_limited_per_address() {
    let app = spawn_app_with(&[MANY]).await;
    let host = AgentHost::new();
    let cases = [
        (json!({"hostname": "h"}), "missing_field"),
        (
            {
                let mut b = request_body(&host, "h", "10.0.0.1");
                b["extra"] = json!(1);
                b
            },
            "unknown_field",
        ),
        (request_body(&host, "a b", "10.0.0.1"), "invalid_field"),
        (request_body(&host, "h", "not-an-ip"), "invalid_field"),
        (
            {
                let mut b = request_body(&host, "h", "10.0.0.1");
                b["machine_id"] = json!("");
                b
            },
            "invalid_field",
        ),
        (
            {
                let mut b = request_body(&host, "h", "10.0.0.1");
                b["os_details"] = json!([1, 2]);
                b
            },
            "invalid_field",
        ),
        (
            {
                let mut b = request_body(&host, "h", "10.0.0.1");
                b["csr"] = json!("not a csr");
                b
            },
            "invalid_csr",
        ),
    ];
    for (body, code) in cases {
        let answer = app.submit_request(body.clone()).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {}",
            answer.body
        );
    }
    // The seed's name for the hostname is understood too.
    let mut seed_style = request_body(&host, "seed.example.test", "10.0.0.9");
    let hostname = seed_style
        .as_object_mut()
        .unwrap()
        .remove("hostname")
        .unwrap();
    seed_style["fqdn"] = hostname;
    app.submit_request(seed_style)
        .await
        .assert_status(StatusCode::ACCEPTED);

    // The default: one request per minute per address, whatever its outcome.
    let limited_app = spawn_app().await;
    limited_app
        .submit_request(request_body(&host, "one.example.test", "10.0.0.1"))
        .await
        .assert_status(StatusCode::ACCEPTED);
    let limited = limited_app
        .submit_request(request_body(&host, "two.example.test", "10.0.0.2"))
        .await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    let listed = limited_app.get("/enroll/requests").await;
    assert_eq!(
        listed.body["total"], 1,
        "the limited request was not stored"
    );
}

#[tokio::test]
async fn deciding_and_listing_need_the_admin_token() {
    let app = spawn_app_with(&[MANY]).await;
    let submitted = app
        .submit_request(request_body(
            &AgentHost::new(),
            "x.example.test",
            "10.0.0.1",
        ))
        .await;
    let id = submitted.body["request_id"].as_str().unwrap();
    for (method, path) in [
        (reqwest::Method::GET, "/enroll/requests".to_owned()),
        (reqwest::Method::GET, format!("/enroll/requests/{id}")),
        (
            reqwest::Method::POST,
            format!("/enroll/requests/{id}/approve"),
        ),
        (reqwest::Method::POST, format!("/enroll/requests/{id}/deny")),
    ] {
        let answer = ApiResponse::from(app.client.request(method.clone(), app.url(&path))).await;
        answer.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let one = app.get(&format!("/enroll/requests/{id}")).await;
    assert_eq!(one.body["status"], "pending");
    app.get("/enroll/requests?status=maybe")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn certgate_request_waits_for_approval_and_writes_the_files() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    let app = spawn_app_with(&[MANY]).await;
    let dir = tempfile::tempdir().unwrap();
    let machine_id = dir.path().join("machine-id");
    std::fs::write(&machine_id, "0f0e0d0c0b0a09080706050403020100\n").unwrap();
    let out = dir.path().join("host");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args([
            "request",
            "--server",
            &app.address,
            "--hostname",
            "cli.example.test",
        ])
        .args([
            "--ip",
            "10.20.30.40",
            "--poll-interval",
            "1",
            "--timeout",
            "60",
        ])
        .arg("--machine-id-file")
        .arg(&machine_id)
        .arg("--out")
        .arg(&out)
        .env_remove("CERTGATE_SERVER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request = crate::helpers::eventually(Duration::from_secs(20), || async {
        // The items, not the total: the two are read apart, and the request may land between.
        let listed = app.get("/enroll/requests?status=pending").await;
        let first = listed.body["items"][0].clone();
        (!first.is_null()).then_some(first)
    })
    .await;
    let Some(request) = request else {
        child.kill().ok();
        panic!("the request never arrived");
    };
    assert_eq!(request["machine_id"], "0f0e0d0c0b0a09080706050403020100");
    assert_eq!(request["ip_address"], "10.20.30.40");
    // The CLI writes the token once it has the answer, which may be after the listing saw
    // the request.
    let token_file = out.join("request.token");
    let kept = crate::helpers::eventually(Duration::from_secs(10), || {
        let exists = token_file.exists();
        async move { exists.then_some(()) }
    })
    .await;
    assert!(kept.is_some(), "the token is kept while waiting");
    app.decide(request["id"].as_str().unwrap(), "approve")
        .await
        .assert_status(StatusCode::OK);

    let mut status = None;
    for _ in 0..100 {
        if let Some(done) = child.try_wait().unwrap() {
            status = Some(done);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(status) = status else {
        child.kill().ok();
        panic!("certgate request did not finish after the approval");
    };
    let output = child.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mode = |name: &str| {
        std::fs::metadata(out.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("agent.key"), 0o600);
    assert_eq!(mode("agent.crt"), 0o644);
    assert!(!out.join("request.token").exists());
    let key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(out.join("agent.key")).unwrap()).unwrap();
    let der = pem::parse(std::fs::read_to_string(out.join("agent.crt")).unwrap())
        .unwrap()
        .into_contents();
    let parsed = x509_parser::parse_x509_certificate(&der).unwrap().1;
    assert_eq!(parsed.public_key().raw, key.public_key_der());
}
