//! The SQLite store failing: a full volume and a write lock held by another process under a
//! running certgate, a full or read-only volume at start. Verify keeps deciding from memory,
//! admin writes answer 503 `database_unavailable` (never a 2xx that is lost, never a 500),
//! `/readyz` says why, writes recover by themselves, and start-up refuses naming the path.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ApiResponse, Relay, TestApp, TestDb, Volume, eventually, spawn_app_with};
use crate::pki::pki;

async fn on_volume(volume: &Volume) -> TestApp {
    let data_dir = volume.path().to_str().unwrap().to_owned();
    spawn_app_with(&[
        ("CERTGATE_DATA_DIR", &data_dir),
        ("CERTGATE_DATABASE_URL", &volume.sqlite_url()),
    ])
    .await
}

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `certgate_sync_lag_seconds` from `/metrics`.
async fn sync_lag(app: &TestApp) -> f64 {
    app.metric("certgate_sync_lag_seconds")
        .await
        .expect("a sync lag in /metrics")
}

/// An admin write that changes a stored row: the agent's tags.
async fn tag(app: &TestApp, agent_id: &str, tag: usize) -> ApiResponse {
    app.update_agent(agent_id, &json!({"tags": [format!("t{tag}")]}))
        .await
}

/// A write refused with 503 `database_unavailable`, in under 2 s.
async fn refused_within_2_s(app: &TestApp, agent_id: &str, round: usize) {
    let started = std::time::Instant::now();
    tag(app, agent_id, round)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(2),
        "answered after {waited:?}"
    );
}

/// Once the store can be written again: ready, and `count` writes in a row land.
async fn writes_resume(app: &TestApp, agent_id: &str, count: usize) {
    let (status, body) = readiness(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for round in 1000..1000 + count {
        tag(app, agent_id, round)
            .await
            .assert_status(StatusCode::OK);
    }
    let last = format!("t{}", 1000 + count - 1);
    assert_eq!(app.agent(agent_id).await["tags"], json!([last]));
}

#[tokio::test]
async fn a_full_volume_answers_503_and_writes_recover_once_space_is_freed() {
    let Some(volume) = Volume::mount("6m") else {
        return;
    };
    let app = on_volume(&volume).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("full-disk.example");
    let agent = app.enrol(&cert, &ca_id).await;
    let agent_id = agent["id"].as_str().unwrap();

    volume.fill();
    let mut refused = 0;
    for round in 0..20 {
        let newcomer = pki().leaf(&format!("while-full-{round}.example"));
        let body = json!({"hostname": newcomer.cn, "certificate": newcomer.pem(), "ca_id": ca_id});
        for response in [
            app.enrol_agent(&body).await,
            tag(&app, agent_id, round).await,
        ] {
            match response.status {
                StatusCode::OK | StatusCode::CREATED => {}
                _ => {
                    response.assert_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
                    refused += 1;
                }
            }
        }
    }
    assert!(refused > 0, "no write failed on a full volume");
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["reason"], "storage_full", "{body}");
    app.verify_fingerprint(&cert).await.assert_allowed(&agent);

    volume.free();
    writes_resume(&app, agent_id, 40).await;
    let newcomer = pki().leaf("after-full.example");
    app.enrol(&newcomer, &ca_id).await;
    app.verify_fingerprint(&newcomer).await.assert_status(200);
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_answers_503_quickly_and_writes_resume_after() {
    use sqlx::{Connection, Executor};

    let data_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data_dir.path().join("certgate.db").display());
    let app = spawn_app_with(&[
        ("CERTGATE_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("CERTGATE_DATABASE_URL", &url),
    ])
    .await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("locked.example");
    let agent = app.enrol(&cert, &ca_id).await;
    let agent_id = agent["id"].as_str().unwrap();

    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    refused_within_2_s(&app, agent_id, 1).await;
    app.verify_fingerprint(&cert).await.assert_allowed(&agent);

    holder.execute("ROLLBACK").await.unwrap();
    writes_resume(&app, agent_id, 10).await;
}

/// PostgreSQL taken away (every connection closed, new ones refused) and given back, as a
/// stopped and restarted server would be, through a relay the test controls.
#[tokio::test]
async fn a_postgresql_outage_answers_503_within_2_s_and_writes_resume_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(&dir).await;
    let TestDb::Postgres { url, .. } = &db else {
        eprintln!("skipped: needs CERTGATE_TEST_POSTGRES_URL");
        return;
    };
    let mut relayed = reqwest::Url::parse(url).unwrap();
    let target = format!(
        "{}:{}",
        relayed.host_str().unwrap(),
        relayed.port().unwrap_or(5432)
    );
    let target = tokio::net::lookup_host(&target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::start(target).await;
    relayed.set_host(Some("127.0.0.1")).unwrap();
    relayed.set_port(Some(relay.port())).unwrap();
    let app = spawn_app_with(&[("CERTGATE_DATABASE_URL", relayed.as_str())]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("outage.example");
    let agent = app.enrol(&cert, &ca_id).await;
    let agent_id = agent["id"].as_str().unwrap();

    relay.cut();
    for round in 0..3 {
        refused_within_2_s(&app, agent_id, round).await;
        let started = std::time::Instant::now();
        let (status, body) = readiness(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let waited = started.elapsed();
        assert!(
            waited < std::time::Duration::from_secs(1),
            "readiness after {waited:?}"
        );
        app.verify_fingerprint(&cert).await.assert_allowed(&agent);
    }

    let lagging = eventually(std::time::Duration::from_secs(5), || async {
        (sync_lag(&app).await >= 1.5).then_some(())
    })
    .await;
    assert!(
        lagging.is_some(),
        "the feed goes unread, yet the lag stays at {}",
        sync_lag(&app).await
    );

    relay.restore();
    writes_resume(&app, agent_id, 10).await;
    let caught_up = eventually(std::time::Duration::from_secs(5), || async {
        (sync_lag(&app).await < 1.0).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the sync lag stays at {}",
        sync_lag(&app).await
    );
    app.revoke_agent(agent_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.verify_fingerprint(&cert)
        .await
        .assert_denied(403, "agent_revoked");
}

/// `certgate serve` on `volume`: its exit status and what it printed.
async fn serve_on(volume: &Volume) -> (std::process::ExitStatus, String) {
    let data_dir = volume.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
            .arg("serve")
            .env_clear()
            .env("CERTGATE_LISTEN", "127.0.0.1:0")
            .env("CERTGATE_DATA_DIR", &data_dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status, printed)
}

#[tokio::test]
async fn start_up_refuses_a_read_only_or_full_data_directory_naming_it() {
    let Some(volume) = Volume::mount("4m") else {
        return;
    };
    let named = volume.path().display().to_string();
    {
        let mut app = on_volume(&volume).await;
        app.add_ca(&pki().root).await;
        app.stop().await;
    }

    volume.fill();
    let (status, printed) = serve_on(&volume).await;
    assert!(!status.success(), "{printed}");
    assert!(
        printed.contains(&format!("{named} has 0 KiB free")),
        "{printed}"
    );
    assert_eq!(
        printed.matches("cannot store data").count(),
        1,
        "once: {printed}"
    );
    volume.free();

    volume.remount("ro");
    let (status, printed) = serve_on(&volume).await;
    assert!(!status.success(), "{printed}");
    assert!(
        printed.contains(&format!("{named} is on a read-only file system")),
        "{printed}"
    );
    volume.remount("rw");

    let mut app = on_volume(&volume).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        app.ca_total().await,
        1,
        "what was stored before is still there"
    );
    app.stop().await;
}
