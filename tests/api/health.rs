//! Liveness, readiness and metrics: no auth, outside the base path.

use reqwest::StatusCode;

use crate::helpers::{UNSET, spawn_app, spawn_app_with};
use crate::pki::pki;

#[tokio::test]
async fn healthz_and_readyz_answer_without_auth() {
    let app = spawn_app_with(&[("CERTGATE_ADMIN_TOKEN", UNSET)]).await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn metrics_count_verify_decisions_by_outcome_and_reason() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("metrics-agent");
    app.enrol(&cert, &ca_id).await;
    app.verify_fingerprint(&cert).await;
    app.verify(&[]).await;

    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    for line in [
        r#"certgate_verify_decisions_total{outcome="allowed",reason="enrolled"} 1"#,
        r#"certgate_verify_decisions_total{outcome="denied",reason="missing_certificate"} 1"#,
        r#"certgate_verify_decisions_total{outcome="audited",reason="missing_certificate"} 0"#,
        r#"certgate_verify_duration_seconds_bucket{le="+Inf"} 2"#,
        "certgate_verify_duration_seconds_count 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn health_routes_are_not_under_the_base_path() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    response.assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn base_path_is_configurable() {
    let app = spawn_app_with(&[("CERTGATE_BASE_PATH", "/mtls/")]).await;
    assert_eq!(app.base_path, "/mtls");
    app.get("/config").await.assert_status(StatusCode::OK);
    let cert = pki().leaf("anywhere");
    app.verify_fingerprint(&cert)
        .await
        .assert_denied(403, "unknown_certificate");
    let old = app
        .client
        .get(format!(
            "{}/api/ext/cockpit-enterprise/mtls/config",
            app.address
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn start_up_fails_closed_when_the_database_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let url = format!("sqlite://{}/certgate.db", blocker.display());
    let env = [
        ("CERTGATE_LISTEN", "127.0.0.1:0"),
        ("CERTGATE_DATABASE_URL", url.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = certgate::config::Settings::from_sources(None, &env).unwrap();
    let result = certgate::startup::Application::build(settings).await;
    assert!(result.is_err(), "an unusable database must stop start-up");
}

/// Start-up before PostgreSQL is up: certgate waits (saying for which server), then gives up
/// after `CERTGATE_DATABASE_CONNECT_TIMEOUT_SECONDS` with one message naming it.
#[tokio::test]
async fn start_up_waits_for_postgresql_and_names_it_when_it_gives_up() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
            .arg("serve")
            .env_clear()
            .env("CERTGATE_LISTEN", "127.0.0.1:0")
            .env(
                "CERTGATE_DATABASE_URL",
                format!("postgres://certgate:secret-password@127.0.0.1:{port}/certgate"),
            )
            .env("CERTGATE_DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        waited >= std::time::Duration::from_secs(1),
        "gave up after {waited:?}"
    );
    let server = format!("127.0.0.1:{port}");
    assert!(stderr.contains("waiting for PostgreSQL"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to PostgreSQL at {server}")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("cannot connect").count(),
        1,
        "printed once: {stderr}"
    );
    assert!(!stderr.contains("secret-password"), "{stderr}");
}
