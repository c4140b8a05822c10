//! `B/config`: the three policy switches.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ApiResponse, spawn_app};

fn switches(config: &Value) -> Value {
    json!({
        "enforcement_enabled": config["enforcement_enabled"],
        "reject_unknown_certs": config["reject_unknown_certs"],
        "auto_enroll": config["auto_enroll"],
    })
}

#[tokio::test]
async fn defaults_enforce_and_reject_unknown_certificates() {
    let app = spawn_app().await;
    let config = app.config().await;
    assert_eq!(
        switches(&config),
        json!({"enforcement_enabled": true, "reject_unknown_certs": true, "auto_enroll": false})
    );
    let updated_at = config["updated_at"].as_str().unwrap();
    time::OffsetDateTime::parse(updated_at, &time::format_description::well_known::Rfc3339)
        .unwrap();
    let keys: Vec<&String> = config.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        4,
        "exactly the three switches and updated_at: {config}"
    );
}

#[tokio::test]
async fn put_changes_any_subset_and_answers_the_new_configuration() {
    let app = spawn_app().await;
    let before = app.config().await;
    let steps = [
        (
            json!({"auto_enroll": true}),
            json!({"enforcement_enabled": true, "reject_unknown_certs": true, "auto_enroll": true}),
        ),
        (
            json!({"enforcement_enabled": false, "reject_unknown_certs": false}),
            json!({"enforcement_enabled": false, "reject_unknown_certs": false, "auto_enroll": true}),
        ),
        (
            json!({}),
            json!({"enforcement_enabled": false, "reject_unknown_certs": false, "auto_enroll": true}),
        ),
        (
            json!({"enforcement_enabled": true, "reject_unknown_certs": true, "auto_enroll": false}),
            json!({"enforcement_enabled": true, "reject_unknown_certs": true, "auto_enroll": false}),
        ),
    ];
    for (change, expected) in steps {
        let answered = app.put_config(change.clone()).await;
        assert_eq!(switches(&answered), expected, "after {change}");
        assert_eq!(
            switches(&app.config().await),
            expected,
            "GET after {change}"
        );
    }
    let after = app.config().await;
    let at = |config: &Value| {
        time::OffsetDateTime::parse(
            config["updated_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(at(&after) >= at(&before), "{before} -> {after}");
}

#[tokio::test]
async fn put_refusals_change_nothing() {
    let app = spawn_app().await;
    app.put_config(json!({"auto_enroll": true})).await;
    let before = switches(&app.config().await);
    let cases: Vec<(&str, Option<&str>, String, StatusCode, &str)> = vec![
        (
            "unknown field",
            Some("application/json"),
            r#"{"auto_enroll": false, "allow_everyone": true}"#.into(),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            "string instead of a boolean",
            Some("application/json"),
            r#"{"enforcement_enabled": "false"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "number instead of a boolean",
            Some("application/json"),
            r#"{"auto_enroll": 0}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "an array",
            Some("application/json"),
            "[]".into(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "malformed JSON",
            Some("application/json"),
            r#"{"auto_enroll": fals"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "no content type",
            None,
            r#"{"auto_enroll": false}"#.into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            "auto_enroll=false".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (why, content_type, body, status, code) in cases {
        let mut request = app.admin(Method::PUT, "/config").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = ApiResponse::from(request).await;
        assert_eq!(
            (response.status, response.code()),
            (status, Some(code)),
            "{why}: {}",
            response.body
        );
    }
    assert_eq!(switches(&app.config().await), before);
}
