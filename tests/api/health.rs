//! Liveness, readiness and metrics: no auth, outside the base path.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{UNSET, spawn_app, spawn_app_with};
use crate::issuance::{AgentHost, issued_cert};
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

#[tokio::test]
async fn agents_are_counted_once_by_status_with_what_expires_soon() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let day = 86_400;
    let soon = pki().root.leaf("soon").expiring_in(5 * day).issue();
    let month = pki().root.leaf("month").expiring_in(20 * day).issue();
    let disabled = pki().root.leaf("disabled").issue();
    let revoked = pki().root.leaf("revoked").issue();
    let soon_agent = app.enrol(&soon, &ca_id).await;
    app.enrol(&month, &ca_id).await;
    let disabled_id = app.enrol(&disabled, &ca_id).await["id"].clone();
    let revoked_id = app.enrol(&revoked, &ca_id).await["id"].clone();
    app.toggle_agent(disabled_id.as_str().unwrap(), Some(false))
        .await;
    app.revoke_agent(revoked_id.as_str().unwrap()).await;
    // Renewal leaves a superseded certificate in the index: still one agent.
    let (_, enrolled) = app
        .enrol_host(&AgentHost::new(), json!({"hostname": "renewing"}))
        .await;
    app.renew(&issued_cert(&enrolled), &AgentHost::new().csr())
        .await
        .assert_status(StatusCode::CREATED);

    let status = |name: &str| format!(r#"certgate_agents{{status="{name}"}}"#);
    assert_eq!(app.metric(&status("active")).await, Some(3.0));
    assert_eq!(app.metric(&status("disabled")).await, Some(1.0));
    assert_eq!(app.metric(&status("revoked")).await, Some(1.0));
    assert_eq!(app.metric(&status("expired")).await, Some(0.0));
    assert_eq!(app.metric(&status("ca_removed")).await, Some(0.0));
    assert_eq!(
        app.metric(r#"certgate_agents_expiring{within="7d"}"#).await,
        Some(1.0)
    );
    assert_eq!(
        app.metric(r#"certgate_agents_expiring{within="30d"}"#)
            .await,
        Some(2.0)
    );
    let soon_not_after = time::OffsetDateTime::parse(
        soon_agent["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        app.metric("certgate_agents_earliest_expiry_timestamp_seconds")
            .await,
        Some(soon_not_after.unix_timestamp() as f64)
    );

    assert_eq!(app.metric("certgate_cas").await, Some(2.0));
    let cas = app.get("/ca").await.body;
    for ca in cas["items"].as_array().unwrap() {
        let series = format!(
            r#"certgate_ca_expiry_timestamp_seconds{{ca_id="{}",internal="{}",name="{}"}}"#,
            ca["id"].as_str().unwrap(),
            ca["internal"],
            ca["name"].as_str().unwrap()
        );
        let not_after = time::OffsetDateTime::parse(
            ca["not_after"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(
            app.metric(&series).await,
            Some(not_after.unix_timestamp() as f64),
            "{series}"
        );
    }
    assert_eq!(
        app.metric(r#"certgate_cas_expiring{within="30d"}"#).await,
        Some(0.0)
    );

    // A removed CA leaves the family and its agents count as ca_removed.
    app.delete_ca(&ca_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert_eq!(app.metric(&status("ca_removed")).await, Some(3.0));
    assert_eq!(app.metric(&status("active")).await, Some(1.0));
    let text = app.metrics_text().await;
    assert!(!text.contains(&ca_id), "{text}");
}

#[tokio::test]
async fn admin_requests_changes_build_and_process_are_exported() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    app.enrol(&pki().leaf("label-probe-7f3a"), &ca_id).await;
    app.get("/agents").await.assert_status(StatusCode::OK);
    app.get("/agents").await.assert_status(StatusCode::OK);
    let refused = app
        .client
        .get(app.url("/agents"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let base = &app.base_path;
    let series = |route: &str, method: &str, status: u16| {
        format!(
            r#"certgate_admin_requests_total{{method="{method}",route="{base}{route}",status="{status}"}}"#
        )
    };
    assert_eq!(app.metric(&series("/agents", "GET", 200)).await, Some(2.0));
    assert_eq!(app.metric(&series("/agents", "POST", 201)).await, Some(1.0));
    assert_eq!(app.metric(&series("/ca", "POST", 201)).await, Some(1.0));
    let text = app.metrics_text().await;
    assert!(
        text.contains(r#"status="401""#),
        "a refused request is counted:\n{text}"
    );
    assert!(
        !text.contains("label-probe-7f3a"),
        "no raw value becomes a label"
    );

    // Process-wide counters (other tests in this binary add to them too).
    let enrolled = app
        .metric(r#"certgate_changes_total{action="agent.enrol"}"#)
        .await;
    assert!(enrolled.is_some_and(|count| count >= 1.0), "{enrolled:?}");
    for present in [
        r#"certgate_changes_total{action="config.update"}"#,
        r#"certgate_certificates_issued_total{reason="renewal"}"#,
        r#"certgate_store_errors_total{kind="unavailable"}"#,
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(app.metric(present).await.is_some(), "no {present}");
    }
    let (version, revision) = (env!("CARGO_PKG_VERSION"), env!("CERTGATE_GIT_REVISION"));
    assert_eq!(
        app.metric(&format!(
            r#"certgate_build_info{{revision="{revision}",version="{version}"}}"#
        ))
        .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn an_uploaded_crls_next_update_is_exported_with_its_ca() {
    let mut app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let series = format!(
        r#"certgate_crl_next_update_timestamp_seconds{{ca_id="{ca_id}",name="{}"}}"#,
        pki().root.cert.cn
    );
    assert_eq!(app.metric(&series).await, None, "no CRL uploaded yet");
    let answer = app.put_crl(&ca_id, pki().root.crl(&[]).into_bytes()).await;
    answer.assert_status(StatusCode::OK);
    let next_update = time::OffsetDateTime::parse(
        answer.body["next_update"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expected = Some(next_update.unix_timestamp() as f64);
    assert_eq!(app.metric(&series).await, expected);
    app.restart().await;
    assert_eq!(app.metric(&series).await, expected, "read back at start");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_auth_under_the_configured_base_path() {
    let app = spawn_app_with(&[("CERTGATE_BASE_PATH", "/mtls")]).await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/mtls/audit"), "{:?}", paths.keys());
    assert!(paths.contains_key("/mtls/verify"));
    assert_eq!(
        document["paths"]["/mtls/agents"]["get"]["security"][0]["bearer"],
        json!([])
    );
    // GET B/agents?status=pending lists pending agents (null certificate fields): the
    // list's items are documented as either kind.
    let listed = document["paths"]["/mtls/agents"]["get"]["responses"]["200"].to_string();
    assert!(listed.contains("AgentAnswer"), "{listed}");
    let answer = document["components"]["schemas"]["AgentAnswer"].to_string();
    assert!(
        answer.contains("AgentItem") && answer.contains("PendingItem"),
        "{answer}"
    );
}

/// `certgate --version` names the release and the revision it was built from; the manual
/// pages a package installs are generated from the same command definitions.
#[test]
fn the_version_names_the_revision_and_the_manual_pages_are_generated() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("--version")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed.trim(),
        format!(
            "certgate {} ({})",
            env!("CARGO_PKG_VERSION"),
            env!("CERTGATE_GIT_REVISION")
        )
    );

    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .arg("manpages")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(dir.path().join("certgate-renew.1")).unwrap();
    assert!(page.contains("\\-\\-daemon"), "{page}");
    assert!(dir.path().join("certgate.1").exists());
}

/// `certgate healthcheck`, a container's HEALTHCHECK: 0 while certgate answers /healthz
/// (found where the settings say it listens: CERTGATE_LISTEN, as in the image, or the
/// configuration file), 1 when nothing does.
#[tokio::test]
async fn the_healthcheck_command_tells_a_live_certgate_from_none() {
    let app = crate::helpers::spawn_app().await;
    let port = app.port;
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let check = move |listen: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
                .arg("healthcheck")
                .env("CERTGATE_LISTEN", listen)
                .output()
                .unwrap()
                .status
                .code()
        })
    };
    assert_eq!(check(format!("0.0.0.0:{port}")).await.unwrap(), Some(0));
    assert_eq!(check(format!("0.0.0.0:{unused}")).await.unwrap(), Some(1));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{port}\"\nverify_secret = \"healthcheck-secret\"\n"),
    )
    .unwrap();
    let from_file = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
            .args(["--config", config.to_str().unwrap(), "healthcheck"])
            .env_remove("CERTGATE_LISTEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        from_file.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
}
