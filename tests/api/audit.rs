//! The audit trail: every change recorded with who made it, through which request and from
//! where, readable through `GET B/audit` with filters, never holding a secret.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ADMIN_TOKEN, ApiResponse, TestApp, spawn_app, spawn_app_with};
use crate::issuance::{AgentHost, issued_cert};
use crate::pki::pki;

/// What the trail names the test's bare admin token.
fn bare_token_actor() -> String {
    let digest = Sha256::digest(ADMIN_TOKEN.as_bytes());
    format!("token:{}", hex::encode(&digest[..4]))
}

impl TestApp {
    async fn audit(&self, query: &str) -> ApiResponse {
        self.get(&format!("/audit?{query}")).await
    }

    /// The trail, oldest first.
    async fn audit_trail(&self) -> Vec<Value> {
        let answer = self.audit("limit=500").await;
        answer.assert_status(StatusCode::OK);
        let mut items = answer.body["items"].as_array().unwrap().clone();
        items.reverse();
        items
    }
}

/// The trail's (action, actor, target type, target id) in order.
fn summary(trail: &[Value]) -> Vec<(String, String, String, String)> {
    trail
        .iter()
        .map(|event| {
            let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
            (
                text("action"),
                text("actor"),
                text("target_type"),
                text("target_id"),
            )
        })
        .collect()
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_admin_change_is_recorded_with_its_actor_target_and_request() {
    let app = spawn_app().await;
    let actor = bare_token_actor();
    let root = &pki().root;
    let ca_id = app.add_ca(root).await;
    let cert = root.leaf("audited.example.test").issue();
    let agent = app.enrol(&cert, &ca_id).await;
    let agent_id = id_of(&agent);
    app.update_agent(&agent_id, &json!({"tags": ["db"], "description": "rack 4"}))
        .await
        .assert_status(StatusCode::OK);
    app.toggle_agent(&agent_id, Some(false)).await;
    app.toggle_agent(&agent_id, Some(true)).await;
    app.put_config(json!({"auto_enroll": true})).await;
    let revoked = app
        .admin(Method::DELETE, &format!("/agents/{agent_id}"))
        .header("X-Request-Id", "change-ticket-42")
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let crl = root.crl(&[&cert]);
    app.put_crl(&ca_id, crl.into_bytes())
        .await
        .assert_status(StatusCode::OK);
    app.delete_ca(&ca_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let trail = app.audit_trail().await;
    let expected = [
        ("ca.add", "ca", &ca_id),
        ("agent.enrol", "agent", &agent_id),
        ("agent.update", "agent", &agent_id),
        ("agent.disable", "agent", &agent_id),
        ("agent.enable", "agent", &agent_id),
        ("config.update", "config", &"policy".to_owned()),
        ("agent.revoke", "agent", &agent_id),
        ("ca.crl_import", "ca", &ca_id),
        ("ca.remove", "ca", &ca_id),
    ]
    .map(|(action, kind, id)| {
        (
            action.to_owned(),
            actor.clone(),
            kind.to_owned(),
            id.to_owned(),
        )
    });
    assert_eq!(summary(&trail), expected);

    let enrolled = &trail[1];
    assert_eq!(enrolled["details"]["hostname"], "audited.example.test");
    assert_eq!(enrolled["details"]["fingerprint"], cert.fingerprint());
    assert_eq!(enrolled["details"]["ca_id"], ca_id.as_str());
    assert_eq!(enrolled["source_ip"], "127.0.0.1");
    assert!(
        enrolled["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(
        trail[2]["details"],
        json!({"tags": ["db"], "description": "rack 4"})
    );
    assert_eq!(trail[5]["details"]["auto_enroll"], true);
    assert_eq!(trail[6]["request_id"], "change-ticket-42");
    assert_eq!(trail[7]["details"]["listed_serials"], 1);
    let ids: Vec<i64> = trail.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // No certificate, token or key in any event.
    let text = serde_json::to_string(&trail).unwrap();
    assert!(!text.contains(ADMIN_TOKEN));
    assert!(!text.contains(&cert.der_base64()[..40]));
    assert!(!text.contains(&root.cert.der_base64()[..40]));
}

#[tokio::test]
async fn issuance_records_tokens_redemptions_renewals_and_cancellations() {
    let app = spawn_app().await;
    let actor = bare_token_actor();
    let host = AgentHost::new();
    let (token, enrolled) = app
        .enrol_host(&host, json!({"hostname": "issued.example.test"}))
        .await;
    let agent_id = enrolled.body["agent_id"].as_str().unwrap().to_owned();
    let renewed = app
        .renew(&issued_cert(&enrolled), &AgentHost::new().csr())
        .await;
    renewed.assert_status(StatusCode::CREATED);
    let rotated = app
        .admin(Method::POST, &format!("/agents/{agent_id}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    let pending = app
        .create_enrolment(json!({"hostname": "never.example.test"}))
        .await;
    let pending_id = pending.body["agent_id"].as_str().unwrap().to_owned();
    app.revoke_agent(&pending_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let trail = app.audit_trail().await;
    let internal_ca = app.get("/ca").await.body["items"][0]["id"].clone();
    let agent_actor = format!("agent:{agent_id}");
    let expected = [
        // Registering the internal CA on first use is certgate's own doing.
        ("ca.add", "system", "ca", internal_ca.as_str().unwrap()),
        ("token.issue", &actor, "agent", &agent_id),
        ("token.redeem", &agent_actor, "agent", &agent_id),
        ("certificate.renew", &agent_actor, "agent", &agent_id),
        ("token.issue", &actor, "agent", &agent_id),
        ("token.issue", &actor, "agent", &pending_id),
        ("enrolment.cancel", &actor, "agent", &pending_id),
    ]
    .map(|(action, actor, kind, id)| {
        (
            action.to_owned(),
            actor.to_owned(),
            kind.to_owned(),
            id.to_owned(),
        )
    });
    assert_eq!(summary(&trail), expected);
    assert_eq!(trail[1]["details"]["hostname"], "issued.example.test");
    assert_eq!(trail[1]["details"]["rotated"], false);
    assert_eq!(trail[4]["details"]["rotated"], true);
    assert_eq!(
        trail[2]["details"]["fingerprint"],
        enrolled.body["fingerprint"]
    );
    assert_eq!(
        trail[3]["details"]["previous_fingerprint"],
        enrolled.body["fingerprint"]
    );
    assert_eq!(
        trail[3]["details"]["fingerprint"],
        renewed.body["fingerprint"]
    );

    let text = serde_json::to_string(&trail).unwrap();
    for secret in [
        &token,
        rotated["token"].as_str().unwrap(),
        pending.body["token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "a token is in the trail");
    }
    assert!(!text.contains("BEGIN"), "a PEM is in the trail");
}

#[tokio::test]
async fn self_enrolment_and_auto_enrolment_name_their_actors() {
    let app = spawn_app_with(&[("CERTGATE_ENROLL_REQUESTS_PER_MINUTE", "100")]).await;
    let submit = |hostname: &'static str| {
        let app = &app;
        async move {
            let body = crate::approval::request_body(&AgentHost::new(), hostname, "10.9.8.7");
            let submitted = app.submit_request(body).await;
            submitted.assert_status(StatusCode::ACCEPTED);
            submitted.body["request_id"].as_str().unwrap().to_owned()
        }
    };
    let approved = submit("approved.example.test").await;
    let denied = submit("denied.example.test").await;
    app.decide(&approved, "approve")
        .await
        .assert_status(StatusCode::OK);
    app.decide(&denied, "deny")
        .await
        .assert_status(StatusCode::OK);

    let root_id = app.add_ca(&pki().root).await;
    app.put_config(json!({"auto_enroll": true})).await;
    let stranger = pki().root.leaf("auto.example.test").issue();
    let answer = app.verify_escaped_pem(&stranger).await;
    assert_eq!(answer.status, 200);
    let auto_id = answer.body["agent_id"].as_str().unwrap().to_owned();

    let trail = app.audit_trail().await;
    let of =
        |action: &str| -> Vec<&Value> { trail.iter().filter(|e| e["action"] == action).collect() };
    let submitted = of("request.submit");
    assert_eq!(submitted.len(), 2);
    assert!(submitted.iter().all(|e| e["actor"] == "anonymous"));
    assert_eq!(submitted[0]["target_type"], "request");
    assert_eq!(submitted[0]["target_id"], approved.as_str());
    assert_eq!(submitted[0]["details"]["hostname"], "approved.example.test");
    assert_eq!(submitted[0]["details"]["ip_address"], "10.9.8.7");
    let approval = of("request.approve");
    assert_eq!(approval[0]["target_id"], approved.as_str());
    assert_eq!(approval[0]["actor"], bare_token_actor());
    assert!(approval[0]["details"]["agent_id"].is_string());
    assert_eq!(of("request.deny")[0]["target_id"], denied.as_str());
    let auto = of("agent.auto_enrol");
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0]["actor"], "system");
    assert_eq!(auto[0]["target_id"], auto_id.as_str());
    assert_eq!(auto[0]["details"]["ca_id"], root_id.as_str());
    assert_eq!(auto[0]["details"]["fingerprint"], stranger.fingerprint());
}

#[tokio::test]
async fn a_named_token_is_the_actor_and_filters_narrow_the_trail() {
    let mut app = spawn_app_with(&[(
        "CERTGATE_ADMIN_TOKEN",
        "alice:alice-secret-token,bob:bob-secret-token",
    )])
    .await;
    // The harness's own calls are alice's: the name is not part of the token.
    app.admin_token = "alice-secret-token".to_owned();
    let as_bob = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth("bob-secret-token")
    };
    let ca_id = app.add_ca(&pki().root).await;
    let first = pki().root.leaf("one.example.test").issue();
    let second = pki().root.leaf("two.example.test").issue();
    let one = app.enrol(&first, &ca_id).await;
    let answer = as_bob(Method::POST, "/agents")
        .json(&json!({"hostname": "two", "certificate": second.pem(), "ca_id": ca_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let two: Value = answer.json().await.unwrap();
    let revoked = as_bob(Method::DELETE, &format!("/agents/{}", id_of(&one)))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let all = app.audit("").await;
    all.assert_status(StatusCode::OK);
    assert_eq!(all.body["total"], 4);
    assert_eq!(
        all.body["items"][0]["action"], "agent.revoke",
        "newest first"
    );
    assert_eq!(all.body["items"][0]["actor"], "bob");
    assert_eq!(all.body["items"][3]["actor"], "alice");

    let total = |answer: ApiResponse| {
        answer.assert_status(StatusCode::OK);
        answer.body["total"].as_i64().unwrap()
    };
    assert_eq!(total(app.audit("actor=bob").await), 2);
    assert_eq!(total(app.audit("actor=alice&action=agent.enrol").await), 1);
    assert_eq!(total(app.audit("action=agent.enrol").await), 2);
    assert_eq!(
        total(app.audit(&format!("target_id={}", id_of(&one))).await),
        2
    );
    assert_eq!(
        total(app.audit(&format!("target_id={}", id_of(&two))).await),
        1
    );
    assert_eq!(total(app.audit("since=2000-01-01T00:00:00Z").await), 4);
    assert_eq!(total(app.audit("until=2000-01-01T00:00:00Z").await), 0);
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(total(app.audit(&format!("since={tomorrow}")).await), 0);

    let page = app.audit("limit=2&offset=1").await;
    page.assert_status(StatusCode::OK);
    assert_eq!(page.body["total"], 4);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], all.body["items"][1]["id"]);

    for bad in [
        "action=agent.delete",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "limit=0",
        "colour=red",
    ] {
        app.audit(bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
    let anonymous = app.client.get(app.url("/audit")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_trail_survives_a_restart_and_a_refused_change_records_nothing() {
    let mut app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().root.leaf("kept.example.test").issue();
    app.enrol(&cert, &ca_id).await;
    app.enrol_agent(&json!({"hostname": "again", "certificate": cert.pem(), "ca_id": ca_id}))
        .await
        .assert_error(StatusCode::CONFLICT, "already_enrolled");
    app.restart().await;
    let trail = app.audit_trail().await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ca.add", "agent.enrol"]);
}

#[tokio::test]
async fn an_admin_certificate_acts_as_its_agent_from_the_client_the_proxy_names() {
    let app = spawn_app_with(&[("CERTGATE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let (_, admin) = app
        .enrol_host(
            &AgentHost::new(),
            json!({"hostname": "ops.example.test", "profile": "admin"}),
        )
        .await;
    let admin_id = admin.body["agent_id"].as_str().unwrap().to_owned();
    let changed = app
        .client
        .put(app.url("/config"))
        .header("X-Verify-Secret", crate::helpers::VERIFY_SECRET)
        .header("X-Client-Cert", issued_cert(&admin).nginx_escaped())
        .header("X-Real-IP", "198.51.100.23")
        .json(&json!({"reject_unknown_certs": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);

    let newest = app.audit("limit=1").await;
    let event = &newest.body["items"][0];
    assert_eq!(event["action"], "config.update");
    assert_eq!(event["actor"], format!("agent:{admin_id}"));
    assert_eq!(event["source_ip"], "198.51.100.23");
    assert_eq!(event["details"]["reject_unknown_certs"], false);
}
