//! Revocation lists: the internal CA's own (`GET B/crl`) and external CAs' uploaded ones
//! (`PUT B/ca/:id/crl`).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ApiResponse, TestApp, spawn_app, spawn_app_with};
use crate::issuance::{AgentHost, issued_cert};
use crate::pki::{TestCert, pki};

impl TestApp {
    /// `GET B/crl` (no credential), checked against the internal CA; answers its serials.
    async fn internal_crl_serials(&self) -> Vec<String> {
        let response = self.client.get(self.url("/crl")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let pem = response.text().await.unwrap();
        assert!(pem.starts_with("-----BEGIN X509 CRL-----"), "{pem}");
        let cas = self.get("/ca").await;
        let internal = cas.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ca| ca["internal"] == true)
            .expect("the internal CA is listed")
            .clone();
        let ca = self
            .get(&format!("/ca/{}", internal["id"].as_str().unwrap()))
            .await;
        let ca_der = pem::parse(ca.body["certificate"].as_str().unwrap())
            .unwrap()
            .into_contents();
        certgate::x509::revocation_list(pem.as_bytes(), &ca_der)
            .expect("signed by the internal CA")
            .serials
    }

    pub async fn put_crl(&self, ca_id: &str, body: Vec<u8>) -> ApiResponse {
        ApiResponse::from(
            self.admin(reqwest::Method::PUT, &format!("/ca/{ca_id}/crl"))
                .header("Content-Type", "application/pkix-crl")
                .body(body),
        )
        .await
    }
}

fn serial_of(cert: &TestCert) -> String {
    let parsed = x509_parser::parse_x509_certificate(&cert.der).unwrap().1;
    let raw = parsed.raw_serial();
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len() - 1);
    hex::encode_upper(&raw[first..])
}

#[tokio::test]
async fn the_internal_crl_lists_revoked_and_replaced_certificates() {
    let app = spawn_app_with(&[("CERTGATE_RENEWAL_GRACE_SECONDS", "0")]).await;
    let (_, first) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "a.example.test"}))
        .await;
    let (_, second) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "b.example.test"}))
        .await;
    assert!(app.internal_crl_serials().await.is_empty());

    let first_cert = issued_cert(&first);
    app.revoke_agent(first.body["agent_id"].as_str().unwrap())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(app.internal_crl_serials().await, [serial_of(&first_cert)]);

    // A re-enrolment replaces (and revokes) the certificate the agent had.
    let second_cert = issued_cert(&second);
    let rotated = app
        .post_json(
            &format!(
                "/agents/{}/token",
                second.body["agent_id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    let third = app
        .redeem(
            rotated.body["token"].as_str().unwrap(),
            &AgentHost::new().csr(),
        )
        .await;
    third.assert_status(StatusCode::CREATED);
    let mut listed = app.internal_crl_serials().await;
    listed.sort();
    let mut expected = vec![serial_of(&first_cert), serial_of(&second_cert)];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(!listed.contains(&serial_of(&issued_cert(&third))));
}

#[tokio::test]
async fn an_external_crl_revokes_listed_agents_and_denies_listed_serials() {
    let mut app = spawn_app().await;
    let root = &pki().root;
    let root_id = app.add_ca(root).await;
    let listed_agent = root.leaf("listed.example.test").issue();
    let kept_agent = root.leaf("kept.example.test").issue();
    let listed_stranger = root.leaf("stranger.example.test").issue();
    let other_stranger = root.leaf("other.example.test").issue();
    let listed = app.enrol(&listed_agent, &root_id).await;
    let kept = app.enrol(&kept_agent, &root_id).await;

    let crl = root.crl(&[&listed_agent, &listed_stranger]);
    let answer = app.put_crl(&root_id, crl.into_bytes()).await;
    answer.assert_status(StatusCode::OK);
    assert_eq!(answer.body["serials"], 2);
    assert_eq!(answer.body["revoked_agents"], json!([listed["id"]]));

    app.verify_escaped_pem(&listed_agent)
        .await
        .assert_denied(403, "agent_revoked");
    assert_eq!(
        app.agent(listed["id"].as_str().unwrap()).await["status"],
        "revoked"
    );
    app.verify_escaped_pem(&kept_agent)
        .await
        .assert_allowed(&kept);
    app.put_config(json!({"reject_unknown_certs": false})).await;
    app.verify_escaped_pem(&listed_stranger)
        .await
        .assert_denied(403, "agent_revoked");
    app.verify_escaped_pem(&other_stranger)
        .await
        .assert_allowed_unknown();
    app.enrol_agent(
        &json!({"hostname": "stranger", "certificate": listed_stranger.pem(),
                             "ca_id": root_id}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "certificate_revoked");

    // DER is accepted too, and the list survives a restart.
    let der = pem::parse(root.crl(&[&listed_stranger]))
        .unwrap()
        .into_contents();
    app.put_crl(&root_id, der)
        .await
        .assert_status(StatusCode::OK);
    app.restart().await;
    app.verify_escaped_pem(&listed_stranger)
        .await
        .assert_denied(403, "agent_revoked");

    // An older list must not undo a newer one.
    let older = root.crl_issued(
        &[],
        time::OffsetDateTime::now_utc() - time::Duration::days(2),
    );
    app.put_crl(&root_id, older.into_bytes())
        .await
        .assert_error(StatusCode::CONFLICT, "crl_outdated");
    app.verify_escaped_pem(&listed_stranger)
        .await
        .assert_denied(403, "agent_revoked");
}

#[tokio::test]
async fn refused_crls_change_nothing() {
    let app = spawn_app().await;
    let root = &pki().root;
    let root_id = app.add_ca(root).await;
    let agent_cert = root.leaf("victim.example.test").issue();
    let agent = app.enrol(&agent_cert, &root_id).await;
    let cases = [
        (
            "garbage",
            b"not a crl".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_crl",
        ),
        (
            "signed by another CA",
            pki().other_root.crl(&[&agent_cert]).into_bytes(),
            StatusCode::BAD_REQUEST,
            "issuer_mismatch",
        ),
        (
            "a forger's CA with the same name",
            root.namesake().crl(&[&agent_cert]).into_bytes(),
            StatusCode::BAD_REQUEST,
            "crl_signature_invalid",
        ),
        (
            "a certificate instead",
            agent_cert.pem().into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_crl",
        ),
    ];
    for (what, body, status, code) in cases {
        let answer = app.put_crl(&root_id, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, Some(code)),
            "{what}: {}",
            answer.body
        );
    }
    app.verify_escaped_pem(&agent_cert)
        .await
        .assert_allowed(&agent);

    app.put_crl(
        &uuid::Uuid::new_v4().to_string(),
        root.crl(&[]).into_bytes(),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
    let unauthenticated = ApiResponse::from(
        app.client
            .put(app.url(&format!("/ca/{root_id}/crl")))
            .body(root.crl(&[&agent_cert])),
    )
    .await;
    unauthenticated.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    app.verify_escaped_pem(&agent_cert)
        .await
        .assert_allowed(&agent);

    app.enrol_host(&AgentHost::new(), json!({"hostname": "i.example.test"}))
        .await;
    let internal_id = app.get("/ca").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ca| ca["internal"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.put_crl(&internal_id, root.crl(&[]).into_bytes())
        .await
        .assert_error(StatusCode::CONFLICT, "internal_ca");
}

#[tokio::test]
async fn reading_the_crl_of_a_fresh_install_registers_nothing() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/crl")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pem = response.text().await.unwrap();
    let ca_pem = std::fs::read_to_string(app.data_dir.path().join("internal-ca.crt")).unwrap();
    let ca_der = pem::parse(ca_pem).unwrap().into_contents();
    let list = certgate::x509::revocation_list(pem.as_bytes(), &ca_der).unwrap();
    assert!(list.serials.is_empty());
    assert_eq!(
        app.ca_total().await,
        0,
        "a fresh install keeps an empty CA list"
    );
}
