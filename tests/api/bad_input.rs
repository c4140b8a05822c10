//! Bad input on every admin route that takes a body: a clear 4xx in the admin error shape,
//! never a 500, and nothing stored.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ApiResponse, VerifyAnswer, spawn_app, spawn_app_with};
use crate::pki::pki;

/// A body over the 256 KiB admin limit, as valid JSON.
fn oversized(template: &Value) -> Vec<u8> {
    let mut body = template.clone();
    body["padding"] = json!("x".repeat(300 * 1024));
    serde_json::to_vec(&body).unwrap()
}

/// Why, content type, body, expected status and `error.code`.
type BodyRow<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);

struct Endpoint {
    method: Method,
    path: String,
    /// A body that would be accepted (the rows break it).
    valid: Value,
    unknown_field: Value,
    wrong_type: Value,
    missing_field: Option<Value>,
}

fn endpoints(ca_id: &str, agent_id: &str) -> Vec<Endpoint> {
    let pem = pki().rsa_root.cert.pem();
    let leaf = pki().leaf("never-stored").pem();
    vec![
        Endpoint {
            method: Method::POST,
            path: "/ca".into(),
            valid: json!({"name": "rsa", "certificate": pem}),
            unknown_field: json!({"name": "rsa", "certificate": pem, "trusted": true}),
            wrong_type: json!({"name": 5, "certificate": pem}),
            missing_field: Some(json!({"name": "rsa"})),
        },
        Endpoint {
            method: Method::POST,
            path: "/agents".into(),
            valid: json!({"hostname": "h", "certificate": leaf, "ca_id": ca_id}),
            unknown_field: json!({"hostname": "h", "certificate": leaf, "ca_id": ca_id, "enabled": false}),
            wrong_type: json!({"hostname": "h", "certificate": leaf, "ca_id": ca_id, "tags": "a,b"}),
            missing_field: Some(json!({"hostname": "h", "ca_id": ca_id})),
        },
        Endpoint {
            method: Method::PUT,
            path: format!("/agents/{agent_id}"),
            valid: json!({"hostname": "renamed"}),
            unknown_field: json!({"hostname": "renamed", "fingerprint": "sha256:00"}),
            wrong_type: json!({"allowed_ips": "10.0.0.0/8"}),
            missing_field: None,
        },
        Endpoint {
            method: Method::PUT,
            path: "/config".into(),
            valid: json!({"auto_enroll": true}),
            unknown_field: json!({"auto_enroll": true, "magic": true}),
            wrong_type: json!({"auto_enroll": "true"}),
            missing_field: None,
        },
    ]
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let agent = app.enrol(&pki().leaf("bystander"), &ca_id).await;
    let agent_id = agent["id"].as_str().unwrap();
    let config = app.config().await;
    let json = Some("application/json");

    for endpoint in endpoints(&ca_id, agent_id) {
        let mut rows: Vec<BodyRow> = vec![
            (
                "unknown field",
                json,
                endpoint.unknown_field.to_string().into(),
                StatusCode::BAD_REQUEST,
                "unknown_field",
            ),
            (
                "wrong type",
                json,
                endpoint.wrong_type.to_string().into(),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
            (
                "malformed JSON",
                json,
                b"{,}".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                "trailing garbage",
                json,
                format!("{} x", endpoint.valid).into(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                "empty body",
                json,
                Vec::new(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                "invalid UTF-8",
                json,
                b"{\"\xff\xfe\": 1}".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_json",
            ),
            (
                "JSON null",
                json,
                b"null".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
            (
                "JSON array",
                json,
                b"[]".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
            (
                "array of field values",
                json,
                b"[\"renamed\"]".to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
            (
                "no content type",
                None,
                endpoint.valid.to_string().into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                "text/plain",
                Some("text/plain"),
                endpoint.valid.to_string().into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                "over 256 KiB",
                json,
                oversized(&endpoint.valid),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
        ];
        if let Some(missing) = &endpoint.missing_field {
            rows.push((
                "missing field",
                json,
                missing.to_string().into(),
                StatusCode::BAD_REQUEST,
                "missing_field",
            ));
        }
        for (why, content_type, body, status, code) in rows {
            let mut request = app
                .admin(endpoint.method.clone(), &endpoint.path)
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = ApiResponse::from(request).await;
            assert_eq!(
                (response.status, response.code()),
                (status, Some(code)),
                "{} {}: {why}: {}",
                endpoint.method,
                endpoint.path,
                response.body
            );
            response.assert_error(status, code);
        }
    }

    assert_eq!(app.ca_total().await, 1, "no CA stored");
    assert_eq!(
        app.agent_total("include_revoked=true").await,
        1,
        "no agent stored"
    );
    assert_eq!(app.agent(agent_id).await, agent, "agent unchanged");
    assert_eq!(app.config().await, config, "configuration unchanged");
}

#[tokio::test]
async fn toggle_bodies_are_checked_too() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let agent = app.enrol(&pki().leaf("toggled"), &ca_id).await;
    let path = format!("/agents/{}/toggle", agent["id"].as_str().unwrap());
    let rows: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "unknown field",
            br#"{"enabled": false, "x": 1}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            "wrong type",
            br#"{"enabled": 0}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            "missing field",
            br#"{}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_field",
        ),
        (
            "malformed JSON",
            br#"{"enabled""#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "over 256 KiB",
            oversized(&json!({"enabled": false})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (why, body, status, code) in rows {
        let response = ApiResponse::from(
            app.admin(Method::PUT, &path)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            (response.status, response.code()),
            (status, Some(code)),
            "{why}: {}",
            response.body
        );
    }
    assert_eq!(app.agent(agent["id"].as_str().unwrap()).await, agent);
}

#[tokio::test]
async fn unsupported_methods_and_unknown_paths_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    let rows = [
        (
            Method::PATCH,
            "/ca".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            format!("/ca/{id}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::DELETE,
            "/agents".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            format!("/agents/{id}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            format!("/agents/{id}/toggle"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::POST,
            "/config".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/certificates".to_owned(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::GET,
            format!("/agents/{id}/history"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, path, status, code) in rows {
        let response = ApiResponse::from(app.admin(method.clone(), &path)).await;
        assert_eq!(
            (response.status, response.code()),
            (status, Some(code)),
            "{method} {path}: {}",
            response.body
        );
    }
    let outside = ApiResponse::from(app.client.get(format!("{}/nowhere", app.address))).await;
    outside.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn junk_in_identity_headers_is_a_denial_never_a_500() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    app.add_ca(&pki().root).await;
    let cert = pki().leaf("junk.example");
    let truncated = cert.pem_with_spaces()[..200].to_owned();
    let xfcc_sha1 = format!("Hash={}", cert.sha1_hex());
    let short_fingerprint = cert.sha256_hex()[..63].to_owned();
    let rows: Vec<(&str, &str, &[u8], u16, &str)> = vec![
        (
            "non-UTF-8 certificate",
            "X-Client-Cert",
            b"\xff\xfe-----BEGIN",
            403,
            "malformed_request",
        ),
        (
            "truncated PEM",
            "X-Client-Cert",
            truncated.as_bytes(),
            403,
            "malformed_certificate",
        ),
        (
            "bad percent-encoding",
            "X-Client-Cert",
            b"-----BEGIN%20CERTIFICATE-----%ZZ",
            403,
            "malformed_certificate",
        ),
        (
            "percent-encoded non-UTF-8",
            "X-Client-Cert",
            b"%FF%FE%FD",
            403,
            "malformed_request",
        ),
        (
            "base64 of nothing",
            "X-Client-Cert",
            b"====",
            403,
            "malformed_certificate",
        ),
        (
            "Traefik list of commas",
            "X-Forwarded-Tls-Client-Cert",
            b",,,",
            401,
            "missing_certificate",
        ),
        (
            "Traefik garbage",
            "X-Forwarded-Tls-Client-Cert",
            b"!!,??",
            403,
            "malformed_certificate",
        ),
        (
            "XFCC unterminated quote",
            "X-Forwarded-Client-Cert",
            b"Cert=\"-----BEGIN",
            403,
            "malformed_certificate",
        ),
        (
            "XFCC SHA-1 hash",
            "X-Forwarded-Client-Cert",
            xfcc_sha1.as_bytes(),
            403,
            "malformed_request",
        ),
        (
            "XFCC without pairs",
            "X-Forwarded-Client-Cert",
            b";;;,,,",
            401,
            "missing_certificate",
        ),
        (
            "RFC 9440 empty byte sequence",
            "Client-Cert",
            b"::",
            403,
            "malformed_certificate",
        ),
        (
            "RFC 9440 chain garbage",
            "Client-Cert-Chain",
            b":!!:",
            403,
            "malformed_certificate",
        ),
        (
            "fingerprint of 63 digits",
            "X-Client-Cert-Fingerprint",
            short_fingerprint.as_bytes(),
            403,
            "malformed_request",
        ),
    ];
    for (why, name, value, status, reason) in rows {
        let answer = VerifyAnswer::from(
            app.verify_request(Method::GET)
                .header("X-Verify-Secret", &app.verify_secret)
                .header(
                    name,
                    reqwest::header::HeaderValue::from_bytes(value).unwrap(),
                ),
        )
        .await;
        assert_eq!(
            (answer.status, answer.reason()),
            (status, Some(reason)),
            "{why}: {}",
            answer.body
        );
    }
}

/// The fuzzers' seed corpora (`fuzz/corpus/`), for the target named.
fn fuzz_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "{target} has seeds");
    seeds
}

/// Every seed of the header fuzzers, sent as the header it fuzzes, in the default policy and
/// with auto-enrolment under the seeds' own CA: a decision (200, 401, 403), never a 5xx.
#[tokio::test]
async fn every_fuzz_seed_is_answered_with_a_decision() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    let targets = [
        ("header_client_cert", "X-Client-Cert"),
        ("header_traefik", "X-Forwarded-Tls-Client-Cert"),
        ("header_xfcc", "X-Forwarded-Client-Cert"),
        ("header_fingerprint", "X-Client-Cert-Fingerprint"),
    ];
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/fixtures/crl_ca.der"
    ))
    .unwrap();
    let mut failures = Vec::new();
    for (policy, allowed) in [
        ("default", &[401, 403][..]),
        ("auto_enroll", &[200, 401, 403]),
    ] {
        if policy == "auto_enroll" {
            app.upload_ca(
                "fuzz CA",
                &pem::encode(&pem::Pem::new("CERTIFICATE", fixture.clone())),
            )
            .await
            .assert_status(StatusCode::CREATED);
            app.put_config(serde_json::json!({"reject_unknown_certs": false, "auto_enroll": true}))
                .await;
        }
        for (target, header) in targets {
            for (name, value) in fuzz_seeds(target) {
                // A value no HTTP client can send is no request a proxy makes.
                let Ok(value) = reqwest::header::HeaderValue::from_bytes(&value) else {
                    continue;
                };
                let answer = VerifyAnswer::from(
                    app.verify_request(Method::GET)
                        .header("X-Verify-Secret", &app.verify_secret)
                        .header(header, value),
                )
                .await;
                if !allowed.contains(&answer.status) {
                    failures.push(format!(
                        "{policy} {target}/{name}: {} {}",
                        answer.status, answer.body
                    ));
                }
            }
        }
        for (name, body) in fuzz_seeds("verify_body") {
            let answer = VerifyAnswer::from(
                app.verify_request(Method::POST)
                    .header("X-Verify-Secret", &app.verify_secret)
                    .header("Content-Type", "application/json")
                    .body(body),
            )
            .await;
            if !allowed.contains(&answer.status) {
                failures.push(format!(
                    "{policy} verify_body/{name}: {} {}",
                    answer.status, answer.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every certificate, CSR and CRL seed sent to the admin routes that take them: a 2xx or a
/// 4xx, never a 5xx.
#[tokio::test]
async fn every_fuzz_seed_upload_is_answered_with_a_client_status() {
    let app = spawn_app().await;
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/fixtures/crl_ca.der"
    ))
    .unwrap();
    let ca_id = app
        .upload_ca(
            "fuzz CA",
            &pem::encode(&pem::Pem::new("CERTIFICATE", fixture)),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut failures = Vec::new();
    let mut check = |what: String, status: StatusCode| {
        if status.is_server_error() {
            failures.push(format!("{what}: {status}"));
        }
    };
    for (name, seed) in fuzz_seeds("certificate_pem") {
        let text = String::from_utf8_lossy(&seed).into_owned();
        check(
            format!("POST B/ca {name}"),
            app.upload_ca(&name, &text).await.status,
        );
        let body =
            serde_json::json!({"hostname": "fuzz.test", "certificate": text, "ca_id": ca_id});
        check(
            format!("POST B/agents {name}"),
            app.enrol_agent(&body).await.status,
        );
    }
    for (name, seed) in fuzz_seeds("certificate_der") {
        let text = pem::encode(&pem::Pem::new("CERTIFICATE", seed));
        check(
            format!("POST B/ca der {name}"),
            app.upload_ca(&name, &text).await.status,
        );
    }
    for (name, seed) in fuzz_seeds("csr") {
        let body =
            serde_json::json!({"token": "not-a-token", "csr": String::from_utf8_lossy(&seed)});
        let response = ApiResponse::from(app.client.post(app.url("/enroll")).json(&body)).await;
        check(format!("POST B/enroll {name}"), response.status);
    }
    for (name, seed) in fuzz_seeds("crl") {
        let response = ApiResponse::from(
            app.admin(Method::PUT, &format!("/ca/{ca_id}/crl"))
                .body(seed),
        )
        .await;
        check(format!("PUT B/ca/:id/crl {name}"), response.status);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
