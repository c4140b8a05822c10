//! `B/agents`: enrol, list, get, update, revoke and toggle.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::pki::{TestCert, pki};

fn rfc3339(value: &Value) -> time::OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    assert!(text.ends_with('Z'), "`{text}` is not UTC");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("`{text}` is not RFC 3339: {e}"))
}

fn hostnames(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hostname"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn app_with_root() -> (TestApp, String) {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    (app, ca_id)
}

#[tokio::test]
async fn enrol_answers_201_with_every_field() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki()
        .root
        .leaf("web-01.internal")
        .serial(&[0x0A, 0x1B, 0x2C, 0x3D, 0x4E])
        .issue();
    let response = app
        .enrol_agent(&json!({
            "hostname": "web-01.internal",
            "description": "front web server",
            "certificate": cert.pem(),
            "ca_id": ca_id,
            "tags": ["prod", "web"],
            "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
        }))
        .await;
    response.assert_status(StatusCode::CREATED);
    let agent = &response.body;

    uuid::Uuid::parse_str(agent["id"].as_str().unwrap()).unwrap();
    assert_eq!(agent["hostname"], "web-01.internal");
    assert_eq!(agent["description"], "front web server");
    assert_eq!(agent["tags"], json!(["prod", "web"]));
    assert_eq!(agent["ca_id"], ca_id);
    assert_eq!(agent["fingerprint"], cert.fingerprint());
    assert_eq!(agent["fingerprint_sha1"], cert.sha1_hex());
    assert!(
        agent["subject"]
            .as_str()
            .unwrap()
            .contains("web-01.internal")
    );
    assert_eq!(agent["serial"], "0A1B2C3D4E");
    assert!(rfc3339(&agent["not_before"]) < time::OffsetDateTime::now_utc());
    assert!(rfc3339(&agent["not_after"]) > time::OffsetDateTime::now_utc());
    assert_eq!(agent["enabled"], true);
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["allowed_ips"], json!(["10.0.0.0/8", "2001:db8::/32"]));
    assert_eq!(rfc3339(&agent["created_at"]), rfc3339(&agent["updated_at"]));
    assert_eq!(agent["last_seen_at"], Value::Null);
    assert_eq!(agent["last_seen_ip"], Value::Null);

    let fetched = app.agent(agent["id"].as_str().unwrap()).await;
    assert_eq!(&fetched, agent, "GET answers the same item");
}

#[tokio::test]
async fn optional_fields_default_to_empty() {
    let (app, ca_id) = app_with_root().await;
    let cases = [
        ("fields absent", json!({})),
        (
            "fields null",
            json!({"description": null, "tags": null, "allowed_ips": null}),
        ),
        ("lists empty", json!({"tags": [], "allowed_ips": []})),
    ];
    for (why, extra) in cases {
        let agent = app.enrol_with(&pki().leaf("plain"), &ca_id, extra).await;
        assert_eq!(agent["description"], Value::Null, "{why}");
        assert_eq!(agent["tags"], json!([]), "{why}");
        assert_eq!(agent["allowed_ips"], json!([]), "{why}");
    }
}

#[tokio::test]
async fn a_leaf_without_eku_and_one_signed_by_an_uploaded_intermediate_enrol() {
    let (app, root_id) = app_with_root().await;
    let no_eku = pki().root.leaf("no-eku").without_eku().issue();
    app.enrol(&no_eku, &root_id).await;

    let intermediate_id = app.add_ca(&pki().intermediate).await;
    let leaf = pki().intermediate.leaf("behind-intermediate").issue();
    let response = app
        .enrol_agent(&json!({"hostname": "h", "certificate": leaf.pem(), "ca_id": root_id}))
        .await;
    response.assert_error(StatusCode::BAD_REQUEST, "issuer_mismatch");
    let agent = app.enrol(&leaf, &intermediate_id).await;
    assert_eq!(agent["ca_id"], intermediate_id);
}

#[tokio::test]
async fn enrolling_the_same_certificate_twice_is_a_conflict() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("twice");
    app.enrol(&cert, &ca_id).await;
    let again = json!({"hostname": "other-name", "certificate": cert.pem(), "ca_id": ca_id});
    app.enrol_agent(&again)
        .await
        .assert_error(StatusCode::CONFLICT, "already_enrolled");
    assert_eq!(app.agent_total("").await, 1);
}

#[tokio::test]
async fn a_revoked_certificate_cannot_be_enrolled_again() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("revoked-once");
    let agent = app.enrol(&cert, &ca_id).await;
    app.revoke_agent(agent["id"].as_str().unwrap())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let again = json!({"hostname": "again", "certificate": cert.pem(), "ca_id": ca_id});
    app.enrol_agent(&again)
        .await
        .assert_error(StatusCode::CONFLICT, "certificate_revoked");
    assert_eq!(app.agent_total("include_revoked=true").await, 1);
}

#[tokio::test]
async fn enrol_refusals_have_their_own_codes_and_store_nothing() {
    let (app, root_id) = app_with_root().await;
    let valid = pki().leaf("valid");
    let other = pki().other_root.leaf("stranger").issue();
    let expired = pki().root.leaf("expired").expired().issue();
    let early = pki().root.leaf("early").not_yet_valid().issue();
    let server = pki().root.leaf("server").server_auth_only().issue();
    let root_pem = pki().root.cert.pem();
    let unknown_ca = uuid::Uuid::new_v4().to_string();
    let body = |cert: &TestCert, ca_id: &str| json!({"hostname": "h", "certificate": cert.pem(), "ca_id": ca_id});
    let with = |field: &str, value: Value| {
        let mut b = body(&valid, &root_id);
        b[field] = value;
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown ca_id", body(&valid, &unknown_ca), "unknown_ca"),
        ("ca_id not a UUID", body(&valid, "root"), "invalid_field"),
        (
            "signed by another CA",
            body(&other, &root_id),
            "issuer_mismatch",
        ),
        ("expired", body(&expired, &root_id), "certificate_expired"),
        (
            "not yet valid",
            body(&early, &root_id),
            "certificate_not_yet_valid",
        ),
        (
            "serverAuth-only EKU",
            body(&server, &root_id),
            "wrong_key_usage",
        ),
        (
            "garbage certificate",
            with("certificate", json!("nope")),
            "invalid_certificate",
        ),
        (
            "two certificates",
            with("certificate", json!(format!("{}{root_pem}", valid.pem()))),
            "multiple_certificates",
        ),
        (
            "empty hostname",
            with("hostname", json!("")),
            "invalid_field",
        ),
        (
            "hostname with a space",
            with("hostname", json!("a b")),
            "invalid_field",
        ),
        (
            "hostname of 254 chars",
            with("hostname", json!("h".repeat(254))),
            "invalid_field",
        ),
        (
            "non-ASCII hostname",
            with("hostname", json!("hôte")),
            "invalid_field",
        ),
        (
            "description of 1025 chars",
            with("description", json!("d".repeat(1025))),
            "invalid_field",
        ),
        (
            "tag with a comma",
            with("tags", json!(["a,b"])),
            "invalid_field",
        ),
        (
            "tag with a space",
            with("tags", json!(["a b"])),
            "invalid_field",
        ),
        ("empty tag", with("tags", json!([""])), "invalid_field"),
        (
            "tag of 65 chars",
            with("tags", json!(["t".repeat(65)])),
            "invalid_field",
        ),
        (
            "33 tags",
            with(
                "tags",
                json!((0..33).map(|i| format!("t{i}")).collect::<Vec<_>>()),
            ),
            "invalid_field",
        ),
        (
            "allowed_ips not an IP",
            with("allowed_ips", json!(["example.com"])),
            "invalid_field",
        ),
        (
            "allowed_ips bad prefix",
            with("allowed_ips", json!(["10.0.0.0/33"])),
            "invalid_field",
        ),
    ];
    for (why, body, code) in &cases {
        let response = app.enrol_agent(body).await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::BAD_REQUEST, Some(*code)),
            "{why}: {}",
            response.body
        );
        response.assert_error(StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(app.agent_total("include_revoked=true").await, 0);
    app.enrol_with(
        &valid,
        &root_id,
        json!({"hostname": "h".repeat(253), "tags": (0..32).map(|i| format!("t:{i}")).collect::<Vec<_>>(),
               "description": "d".repeat(1024)}),
    )
    .await;
}

/// Six agents over two CAs, one of them revoked and one disabled.
async fn fleet(app: &TestApp) -> (String, String) {
    let root_id = app.add_ca(&pki().root).await;
    let rsa_id = app.add_ca(&pki().rsa_root).await;
    let specs = [
        ("web-01.prod", &root_id, vec!["prod", "web"], true),
        ("web-02.prod", &root_id, vec!["prod", "web"], true),
        ("db-01.prod", &root_id, vec!["prod", "db"], false),
        ("WEB-03.staging", &rsa_id, vec!["staging", "web"], true),
        ("batch.staging", &rsa_id, vec!["staging"], true),
        ("web-old.prod", &root_id, vec!["prod", "web"], true),
    ];
    for (hostname, ca_id, tags, enabled) in specs {
        let ca = if *ca_id == root_id {
            &pki().root
        } else {
            &pki().rsa_root
        };
        let agent = app
            .enrol_with(&ca.leaf(hostname).issue(), ca_id, json!({"tags": tags}))
            .await;
        let id = agent["id"].as_str().unwrap();
        if !enabled {
            app.toggle_agent(id, Some(false))
                .await
                .assert_status(StatusCode::OK);
        }
        if hostname == "web-old.prod" {
            app.revoke_agent(id)
                .await
                .assert_status(StatusCode::NO_CONTENT);
        }
    }
    (root_id, rsa_id)
}

#[tokio::test]
async fn list_filters_combine() {
    let app = spawn_app().await;
    let (root_id, rsa_id) = fleet(&app).await;
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "no filter leaves revoked agents out",
            String::new(),
            vec![
                "WEB-03.staging",
                "batch.staging",
                "db-01.prod",
                "web-01.prod",
                "web-02.prod",
            ],
        ),
        (
            "include_revoked",
            "include_revoked=true".into(),
            vec![
                "WEB-03.staging",
                "batch.staging",
                "db-01.prod",
                "web-01.prod",
                "web-02.prod",
                "web-old.prod",
            ],
        ),
        (
            "status=revoked",
            "status=revoked".into(),
            vec!["web-old.prod"],
        ),
        (
            "status=disabled",
            "status=disabled".into(),
            vec!["db-01.prod"],
        ),
        (
            "status=active",
            "status=active".into(),
            vec![
                "WEB-03.staging",
                "batch.staging",
                "web-01.prod",
                "web-02.prod",
            ],
        ),
        ("enabled=false", "enabled=false".into(), vec!["db-01.prod"]),
        (
            "enabled=true",
            "enabled=true".into(),
            vec![
                "WEB-03.staging",
                "batch.staging",
                "web-01.prod",
                "web-02.prod",
            ],
        ),
        (
            "tag=web",
            "tag=web".into(),
            vec!["WEB-03.staging", "web-01.prod", "web-02.prod"],
        ),
        ("tag matches whole tags only", "tag=we".into(), vec![]),
        (
            "ca_id",
            format!("ca_id={rsa_id}"),
            vec!["WEB-03.staging", "batch.staging"],
        ),
        (
            "q is a case-insensitive hostname substring",
            "q=web".into(),
            vec!["WEB-03.staging", "web-01.prod", "web-02.prod"],
        ),
        (
            "filters combine",
            format!("q=web&tag=prod&ca_id={root_id}&include_revoked=true"),
            vec!["web-01.prod", "web-02.prod", "web-old.prod"],
        ),
        (
            "an unknown ca_id matches nothing",
            format!("ca_id={}", uuid::Uuid::new_v4()),
            vec![],
        ),
        (
            "q in upper case",
            "q=WEB-0".into(),
            vec!["WEB-03.staging", "web-01.prod", "web-02.prod"],
        ),
        (
            "q: % is a character, not a wildcard",
            "q=%25".into(),
            vec![],
        ),
        (
            "q: _ is a character, not a wildcard",
            "q=web_01".into(),
            vec![],
        ),
        (
            "tag: % is a character, not a wildcard",
            "tag=%25".into(),
            vec![],
        ),
    ];
    for (why, query, expected) in cases {
        let response = app.list_agents(&query).await;
        response.assert_status(StatusCode::OK);
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(hostnames(&response.body), expected, "{why} ({query})");
        assert_eq!(response.body["total"], expected.len(), "{why} ({query})");
    }
}

#[tokio::test]
async fn list_pagination_and_query_validation() {
    let app = spawn_app().await;
    fleet(&app).await;
    let page = app.list_agents("limit=2&offset=1").await;
    page.assert_status(StatusCode::OK);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["limit"], 2);
    assert_eq!(page.body["offset"], 1);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let past_end = app.list_agents("offset=10").await;
    assert_eq!(past_end.body["items"], json!([]));
    assert_eq!(past_end.body["total"], 5);
    let defaults = app.list_agents("").await;
    assert_eq!(
        (
            defaults.body["limit"].clone(),
            defaults.body["offset"].clone()
        ),
        (json!(50), json!(0))
    );
    app.list_agents("limit=500")
        .await
        .assert_status(StatusCode::OK);
    app.list_agents("limit=1")
        .await
        .assert_status(StatusCode::OK);

    let all_ids: Vec<Value> = app.list_agents("limit=5").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    let mut paged = Vec::new();
    for offset in 0..5 {
        let one = app.list_agents(&format!("limit=1&offset={offset}")).await;
        paged.push(one.body["items"][0]["id"].clone());
    }
    assert_eq!(paged, all_ids, "pages follow one stable order");

    for bad in [
        "limit=0",
        "limit=501",
        "limit=1000000000",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "offset=-1",
        "offset=abc",
        "enabled=maybe",
        "include_revoked=yes-please",
        "status=sleeping",
        "ca_id=not-a-uuid",
        "colour=blue",
    ] {
        let response = app.list_agents(bad).await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::BAD_REQUEST, Some("invalid_query")),
            "{bad}: {}",
            response.body
        );
    }
}

#[tokio::test]
async fn get_refuses_unknown_and_malformed_ids() {
    let app = spawn_app().await;
    let unknown = uuid::Uuid::new_v4();
    let cases = [
        (
            format!("/agents/{unknown}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/agents/42".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            format!("/agents/{unknown}x"),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
    ];
    for (path, status, code) in &cases {
        app.get(path).await.assert_error(*status, code);
        app.put_json(path, &json!({"hostname": "x"}))
            .await
            .assert_error(*status, code);
        app.delete(path).await.assert_error(*status, code);
        app.put_json(&format!("{path}/toggle"), &json!({"enabled": true}))
            .await
            .assert_error(*status, code);
    }
}

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("before.example");
    let agent = app
        .enrol_with(
            &cert,
            &ca_id,
            json!({"description": "old", "tags": ["a"], "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await;
    let id = agent["id"].as_str().unwrap();

    let response = app
        .update_agent(
            id,
            &json!({"hostname": "after.example", "tags": ["b", "c"]}),
        )
        .await;
    response.assert_status(StatusCode::OK);
    let updated = &response.body;
    assert_eq!(updated["hostname"], "after.example");
    assert_eq!(updated["tags"], json!(["b", "c"]));
    assert_eq!(updated["description"], "old", "absent field kept");
    assert_eq!(
        updated["allowed_ips"],
        json!(["10.0.0.0/8"]),
        "absent field kept"
    );
    for unchanged in [
        "id",
        "fingerprint",
        "ca_id",
        "created_at",
        "not_after",
        "enabled",
    ] {
        assert_eq!(updated[unchanged], agent[unchanged], "{unchanged}");
    }
    assert!(rfc3339(&updated["updated_at"]) >= rfc3339(&agent["updated_at"]));
    assert_eq!(&app.agent(id).await, updated);

    // The very next verify call sees the new identity.
    app.verify(&[
        ("X-Client-Cert", &cert.nginx_escaped()),
        ("X-Real-IP", "10.1.1.1"),
    ])
    .await
    .assert_allowed(updated);

    let cleared = app
        .update_agent(id, &json!({"description": null, "allowed_ips": null}))
        .await;
    cleared.assert_status(StatusCode::OK);
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["allowed_ips"], json!([]));
    let restricted = app
        .update_agent(
            id,
            &json!({"allowed_ips": ["192.0.2.0/24"], "description": "new"}),
        )
        .await;
    assert_eq!(restricted.body["allowed_ips"], json!(["192.0.2.0/24"]));
    assert_eq!(restricted.body["description"], "new");
    let lifted = app.update_agent(id, &json!({"allowed_ips": []})).await;
    assert_eq!(lifted.body["allowed_ips"], json!([]));
    let unchanged = app.update_agent(id, &json!({})).await;
    unchanged.assert_status(StatusCode::OK);
    assert_eq!(unchanged.body["hostname"], "after.example");
}

#[tokio::test]
async fn update_refusals_leave_the_agent_unchanged() {
    let (app, ca_id) = app_with_root().await;
    let agent = app.enrol(&pki().leaf("steady"), &ca_id).await;
    let id = agent["id"].as_str().unwrap();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("empty hostname", json!({"hostname": ""}), "invalid_field"),
        (
            "hostname with a space",
            json!({"hostname": "a b"}),
            "invalid_field",
        ),
        (
            "hostname of 254 chars",
            json!({"hostname": "h".repeat(254)}),
            "invalid_field",
        ),
        (
            "description of 1025 chars",
            json!({"description": "d".repeat(1025)}),
            "invalid_field",
        ),
        (
            "tag with a comma",
            json!({"tags": ["x,y"]}),
            "invalid_field",
        ),
        (
            "33 tags",
            json!({"tags": (0..33).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "invalid_field",
        ),
        (
            "allowed_ips not an IP",
            json!({"allowed_ips": ["nope"]}),
            "invalid_field",
        ),
        (
            "the certificate cannot change",
            json!({"certificate": "x"}),
            "unknown_field",
        ),
        (
            "enabled is not updated here",
            json!({"enabled": false}),
            "unknown_field",
        ),
        (
            "hostname of the wrong type",
            json!({"hostname": 7}),
            "invalid_field",
        ),
        (
            "tags of the wrong type",
            json!({"tags": "a,b"}),
            "invalid_field",
        ),
    ];
    for (why, body, code) in &cases {
        let response = app.update_agent(id, body).await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::BAD_REQUEST, Some(*code)),
            "{why}: {}",
            response.body
        );
    }
    assert_eq!(app.agent(id).await, agent);
}

#[tokio::test]
async fn revoke_keeps_the_row_and_freezes_it() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("to-revoke");
    let agent = app.enrol(&cert, &ca_id).await;
    let id = agent["id"].as_str().unwrap();

    let response = app.revoke_agent(id).await;
    response.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(response.body, Value::Null, "204 has no body");

    let revoked = app.agent(id).await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["fingerprint"], agent["fingerprint"]);
    assert_eq!(app.agent_total("").await, 0);
    assert_eq!(app.agent_total("include_revoked=true").await, 1);
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "agent_revoked");

    app.update_agent(id, &json!({"hostname": "revived"}))
        .await
        .assert_error(StatusCode::CONFLICT, "agent_revoked");
    for enabled in [None, Some(true), Some(false)] {
        app.toggle_agent(id, enabled)
            .await
            .assert_error(StatusCode::CONFLICT, "agent_revoked");
    }
    app.revoke_agent(id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(app.agent(id).await["status"], "revoked");
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "agent_revoked");
}

#[tokio::test]
async fn toggle_flips_without_a_body_and_sets_with_one() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("switch");
    let agent = app.enrol(&cert, &ca_id).await;
    let id = agent["id"].as_str().unwrap();
    let steps: [(Option<bool>, bool, &str); 6] = [
        (None, false, "disabled"),
        (None, true, "active"),
        (Some(false), false, "disabled"),
        (Some(false), false, "disabled"),
        (Some(true), true, "active"),
        (Some(true), true, "active"),
    ];
    for (i, (body, enabled, status)) in steps.into_iter().enumerate() {
        let response = app.toggle_agent(id, body).await;
        response.assert_status(StatusCode::OK);
        assert_eq!(response.body["id"], id, "step {i} answers the agent");
        assert_eq!(
            (
                response.body["enabled"].as_bool(),
                response.body["status"].as_str()
            ),
            (Some(enabled), Some(status)),
            "step {i}"
        );
        let answer = app.verify_escaped_pem(&cert).await;
        if enabled {
            answer.assert_allowed(&response.body);
        } else {
            answer.assert_denied(403, "agent_disabled");
        }
    }
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "enabled of the wrong type",
            r#"{"enabled": "yes"}"#,
            "invalid_field",
        ),
        (
            "unknown field",
            r#"{"enabled": true, "why": "x"}"#,
            "unknown_field",
        ),
        ("missing field", r#"{}"#, "missing_field"),
        ("malformed JSON", r#"{"enabled": tru"#, "invalid_json"),
    ];
    for (why, body, code) in cases {
        let response = crate::helpers::ApiResponse::from(
            app.admin(reqwest::Method::PUT, &format!("/agents/{id}/toggle"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{why}: {}",
            response.body
        );
    }
    assert_eq!(app.agent(id).await["enabled"], true);
}

#[tokio::test]
async fn concurrent_writes_never_fail_with_500() {
    let (app, ca_id) = app_with_root().await;
    let cert = pki().leaf("raced.example");
    let body = json!({"hostname": "raced", "certificate": cert.pem(), "ca_id": ca_id});
    let enrolments = futures_util::future::join_all((0..8).map(|_| app.enrol_agent(&body))).await;
    let mut statuses: Vec<u16> = enrolments.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    for conflict in enrolments
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
    {
        conflict.assert_error(StatusCode::CONFLICT, "already_enrolled");
    }
    assert_eq!(app.agent_total("").await, 1);

    let rsa_pem = pki().rsa_root.cert.pem();
    let uploads =
        futures_util::future::join_all((0..4).map(|_| app.upload_ca("raced CA", &rsa_pem))).await;
    let created = uploads
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "one upload wins");
    for other in uploads.iter().filter(|r| r.status != StatusCode::CREATED) {
        other.assert_error(StatusCode::CONFLICT, "ca_exists");
    }

    let id = enrolments
        .iter()
        .find(|r| r.status == StatusCode::CREATED)
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let toggles = futures_util::future::join_all((0..8).map(|_| app.toggle_agent(&id, None))).await;
    for toggle in &toggles {
        assert!(
            toggle.status == StatusCode::OK || toggle.code() == Some("concurrent_update"),
            "{} {}",
            toggle.status,
            toggle.body
        );
    }
    let flips = toggles
        .iter()
        .filter(|t| t.status == StatusCode::OK)
        .count();
    let enabled = app.agent(&id).await["enabled"].as_bool().unwrap();
    assert_eq!(
        enabled,
        flips % 2 == 0,
        "every answered flip happened exactly once"
    );
}
