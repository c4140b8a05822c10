//! `B/ca`: list, get, upload and delete trusted CAs.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::pki::pki;

#[tokio::test]
async fn upload_answers_201_with_the_item_and_lists_it() {
    let app = spawn_app().await;
    let root = &pki().root.cert;

    let created = app.upload_ca("Team root", &root.pem()).await;
    created.assert_status(StatusCode::CREATED);
    let item = &created.body;
    let id = item["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(item["name"], "Team root");
    assert_eq!(item["fingerprint"], root.fingerprint());
    assert!(
        item["subject"].as_str().unwrap().contains(&root.cn),
        "{item}"
    );
    for field in ["not_before", "not_after", "created_at"] {
        let text = item[field].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{field} `{text}` is not RFC 3339: {e}"));
        assert!(text.ends_with('Z'), "{field} `{text}` is not UTC");
    }

    let list = app.get("/ca").await;
    list.assert_status(StatusCode::OK);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["limit"], 50);
    assert_eq!(list.body["offset"], 0);
    let listed = &list.body["items"][0];
    assert_eq!(listed["id"], id);
    assert_eq!(listed["fingerprint"], root.fingerprint());
    assert_eq!(listed["agent_count"], 0);
    assert!(listed.get("certificate").is_none(), "list omits the PEM");

    let one = app.get(&format!("/ca/{id}")).await;
    one.assert_status(StatusCode::OK);
    assert_eq!(one.body["id"], id);
    let pem = one.body["certificate"].as_str().unwrap();
    assert_eq!(pem.trim(), root.pem().trim());
}

#[tokio::test]
async fn list_is_paginated() {
    let app = spawn_app().await;
    for ca in [&pki().root, &pki().other_root, &pki().rsa_root] {
        app.add_ca(ca).await;
    }
    let page = app.get("/ca?limit=2&offset=1").await;
    page.assert_status(StatusCode::OK);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    for bad in ["limit=0", "limit=501", "offset=-1", "limit=x"] {
        app.get(&format!("/ca?{bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
}

#[tokio::test]
async fn get_and_delete_refuse_unknown_and_malformed_ids() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    let cases = [
        (format!("/ca/{unknown}"), StatusCode::NOT_FOUND, "not_found"),
        (
            "/ca/not-a-uuid".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ];
    for (path, status, code) in &cases {
        app.get(path).await.assert_error(*status, code);
        app.delete(path).await.assert_error(*status, code);
    }
}

#[tokio::test]
async fn the_same_ca_twice_is_a_conflict() {
    let app = spawn_app().await;
    app.add_ca(&pki().root).await;
    app.upload_ca("again", &pki().root.cert.pem())
        .await
        .assert_error(StatusCode::CONFLICT, "ca_exists");
    assert_eq!(app.ca_total().await, 1);
}

#[tokio::test]
async fn upload_refusals_have_their_own_codes_and_store_nothing() {
    let app = spawn_app().await;
    let root = pki().root.cert.pem();
    let leaf = pki().leaf("not-a-ca").pem();
    let private_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let padding = "x".repeat(51 * 1024);
    let not_x509 = pem::encode(&pem::Pem::new("CERTIFICATE", b"not a certificate".to_vec()));
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "a leaf is not a CA",
            leaf.clone(),
            StatusCode::BAD_REQUEST,
            "not_a_ca",
        ),
        (
            "two certificates in one PEM",
            format!("{root}{}", pki().other_root.cert.pem()),
            StatusCode::BAD_REQUEST,
            "multiple_certificates",
        ),
        (
            "a private key alone",
            private_key.clone(),
            StatusCode::BAD_REQUEST,
            "private_key_not_accepted",
        ),
        (
            "a certificate with its private key",
            format!("{root}{private_key}"),
            StatusCode::BAD_REQUEST,
            "private_key_not_accepted",
        ),
        (
            "more than 50 KiB of PEM text",
            format!("{padding}\n{root}"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "certificate_too_large",
        ),
        (
            "garbage",
            "hello, I am a CA".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
        (
            "empty text",
            String::new(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
        (
            "PEM armour around bytes that are not X.509",
            not_x509,
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
        (
            "PEM armour around broken base64",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
    ];
    for (why, certificate, status, code) in &cases {
        let response = app.upload_ca(why, certificate).await;
        assert_eq!(
            (response.status, response.code()),
            (*status, Some(*code)),
            "{why}: {}",
            response.body
        );
        response.assert_error(*status, code);
    }
    let bad_names = [
        ("", "empty name"),
        ("   ", "blank name"),
        (&*"n".repeat(257), "257 characters"),
        ("tab\there", "control character"),
    ];
    for (name, why) in bad_names {
        let response = app.upload_ca(name, &root).await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::BAD_REQUEST, Some("invalid_field")),
            "{why}: {}",
            response.body
        );
    }
    assert_eq!(app.ca_total().await, 0, "no refused upload is stored");
    let long_name = "é".repeat(256);
    let created = app.upload_ca(&long_name, &root).await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.body["name"], long_name, "256 characters, not bytes");
}

#[tokio::test]
async fn intermediate_rsa_and_ed25519_cas_can_be_uploaded() {
    let app = spawn_app().await;
    for ca in [&pki().intermediate, &pki().rsa_root, &pki().ed25519_root] {
        let response = app.upload_ca(&ca.cert.cn, &ca.cert.pem()).await;
        response.assert_status(StatusCode::CREATED);
        assert_eq!(response.body["fingerprint"], ca.cert.fingerprint());
    }
    assert_eq!(app.ca_total().await, 3);
}

#[tokio::test]
async fn leaves_of_rsa_ed25519_and_p384_cas_enrol_and_verify() {
    let app = spawn_app().await;
    let cases = [
        ("RSA PKCS#1 SHA-256 signature", &pki().rsa_root),
        ("Ed25519 signature", &pki().ed25519_root),
        ("ECDSA P-384 signature", &pki().intermediate),
    ];
    for (why, ca) in cases {
        let ca_id = app.add_ca(ca).await;
        let cert = ca
            .leaf(&format!("{}-leaf", ca.cert.cn.replace(' ', "-")))
            .issue();
        let response = app
            .enrol_agent(&json!({"hostname": "x", "certificate": cert.pem(), "ca_id": ca_id}))
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{why}: {}",
            response.body
        );
        app.verify_escaped_pem(&cert)
            .await
            .assert_allowed(&response.body);
    }
    let root_id = app.add_ca(&pki().root).await;
    for (why, key) in [
        ("Ed25519 leaf key", &rcgen::PKCS_ED25519),
        ("P-384 leaf key", &rcgen::PKCS_ECDSA_P384_SHA384),
    ] {
        let cert = pki().root.leaf("odd-key").key(key).issue();
        let agent = app.enrol(&cert, &root_id).await;
        let answer = app.verify_escaped_pem(&cert).await;
        assert_eq!(answer.status, 200, "{why}: {}", answer.body);
        answer.assert_allowed(&agent);
    }
}

#[tokio::test]
async fn delete_removes_trust_in_every_agent_of_the_ca() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("doomed");
    let agent = app.enrol(&cert, &ca_id).await;
    let agent_id = agent["id"].as_str().unwrap();
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    let revoked = app.enrol(&pki().leaf("revoked"), &ca_id).await;
    app.revoke_agent(revoked["id"].as_str().unwrap()).await;
    let listed = app.get("/ca").await;
    assert_eq!(
        listed.body["items"][0]["agent_count"], 1,
        "revoked agents do not count"
    );
    let shown = app.get(&format!("/ca/{ca_id}")).await;
    assert_eq!(shown.body["agent_count"], 1, "{}", shown.body);

    app.delete_ca(&ca_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);

    app.get(&format!("/ca/{ca_id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.delete_ca(&ca_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.ca_total().await, 0);
    assert_eq!(app.agent(agent_id).await["status"], "ca_removed");
    assert_eq!(app.agent_total("status=ca_removed").await, 1);
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "ca_removed");
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_denied(403, "ca_removed");
    let enrol_again =
        json!({"hostname": "h", "certificate": pki().leaf("late").pem(), "ca_id": ca_id});
    app.enrol_agent(&enrol_again)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unknown_ca");
}

#[tokio::test]
async fn uploading_a_removed_ca_again_creates_a_new_ca_and_revives_nobody() {
    let app = spawn_app().await;
    let old_ca = app.add_ca(&pki().root).await;
    let cert = pki().leaf("re-enrolled");
    let old_agent = app.enrol(&cert, &old_ca).await;
    let old_agent_id = old_agent["id"].as_str().unwrap();
    app.delete_ca(&old_ca)
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let new_ca = app.add_ca(&pki().root).await;
    assert_ne!(new_ca, old_ca, "a new CA, not the old one restored");
    assert_eq!(app.agent(old_agent_id).await["status"], "ca_removed");
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "ca_removed");

    // The agent re-enrols: a new row; the old one stays for audit.
    let new_agent = app.enrol(&cert, &new_ca).await;
    assert_ne!(new_agent["id"], old_agent["id"]);
    app.verify_escaped_pem(&cert)
        .await
        .assert_allowed(&new_agent);
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_allowed(&new_agent);
    assert_eq!(app.agent(old_agent_id).await["status"], "ca_removed");
    assert_eq!(app.agent_total("").await, 2);
}
