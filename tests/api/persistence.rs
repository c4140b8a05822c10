//! What survives a restart, `last_seen` bookkeeping, and replicas sharing one database.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{BinaryApi, ServerProcess, TestApp, eventually, spawn_app, spawn_app_with};
use crate::pki::pki;

fn at(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let sub_id = app.add_ca(&pki().intermediate).await;
    let active = pki().leaf("active.example");
    let active_id = app
        .enrol_with(
            &active,
            &root_id,
            json!({"description": "kept", "tags": ["a", "b"], "allowed_ips": ["10.0.0.0/8"]}),
        )
        .await["id"]
        .clone();
    let disabled = pki().leaf("disabled.example");
    let disabled_id = app.enrol(&disabled, &root_id).await["id"].clone();
    app.toggle_agent(disabled_id.as_str().unwrap(), Some(false))
        .await;
    let revoked = pki().leaf("revoked.example");
    let revoked_id = app.enrol(&revoked, &root_id).await["id"].clone();
    app.revoke_agent(revoked_id.as_str().unwrap()).await;
    let orphan = pki().intermediate.leaf("orphan.example").issue();
    let orphan_id = app.enrol(&orphan, &sub_id).await["id"].clone();
    app.delete_ca(&sub_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.put_config(json!({"auto_enroll": true})).await;

    let ids = [&active_id, &disabled_id, &revoked_id, &orphan_id];
    let mut before = Vec::new();
    for id in ids {
        before.push(app.agent(id.as_str().unwrap()).await);
    }
    let cas_before = app.get("/ca").await.body;
    let config_before = app.config().await;

    app.restart().await;

    let mut after = Vec::new();
    for id in ids {
        after.push(app.agent(id.as_str().unwrap()).await);
    }
    assert_eq!(after, before, "agents are read back unchanged");
    assert_eq!(app.get("/ca").await.body, cas_before);
    assert_eq!(app.config().await, config_before);
    assert_eq!(
        after
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["active", "disabled", "revoked", "ca_removed"]
    );

    // The trust index is rebuilt from the database.
    app.verify(&[
        ("X-Client-Cert", &active.nginx_escaped()),
        ("X-Real-IP", "10.0.0.7"),
    ])
    .await
    .assert_allowed(&after[0]);
    app.verify_nginx_fingerprint(&active)
        .await
        .assert_denied(403, "ip_not_allowed");
    app.verify_nginx_fingerprint(&disabled)
        .await
        .assert_denied(403, "agent_disabled");
    app.verify_nginx_fingerprint(&revoked)
        .await
        .assert_denied(403, "agent_revoked");
    app.verify_escaped_pem(&orphan)
        .await
        .assert_denied(403, "ca_removed");
    let newcomer = app
        .verify_escaped_pem(&pki().leaf("newcomer.example"))
        .await;
    assert_eq!(
        newcomer.body["hostname"], "newcomer.example",
        "auto_enroll kept"
    );
    let again = json!({"hostname": "x", "certificate": revoked.pem(), "ca_id": root_id});
    app.enrol_agent(&again)
        .await
        .assert_error(StatusCode::CONFLICT, "certificate_revoked");
}

async fn last_seen(app: &TestApp, id: &str) -> Option<Value> {
    let agent = app.agent(id).await;
    (!agent["last_seen_at"].is_null()).then_some(agent)
}

#[tokio::test]
async fn last_seen_is_recorded_within_five_seconds() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let forwarded = pki().leaf("forwarded.example");
    let forwarded_id = app.enrol(&forwarded, &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let direct = pki().leaf("direct.example");
    let direct_id = app.enrol(&direct, &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unseen_id = app.enrol(&pki().leaf("unseen.example"), &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    app.verify(&[
        ("X-Client-Cert", &forwarded.nginx_escaped()),
        ("X-Real-IP", "203.0.113.9"),
    ])
    .await
    .assert_status(200);
    app.verify_nginx_fingerprint(&direct)
        .await
        .assert_status(200);

    let seen = eventually(Duration::from_secs(6), || last_seen(&app, &forwarded_id))
        .await
        .expect("last_seen_at within 5 s");
    assert_eq!(seen["last_seen_ip"], "203.0.113.9");
    let when = at(&seen["last_seen_at"]);
    assert!(
        when >= started && when <= time::OffsetDateTime::now_utc(),
        "{when}"
    );
    let seen = eventually(Duration::from_secs(6), || last_seen(&app, &direct_id))
        .await
        .expect("last_seen_at within 5 s");
    assert_eq!(
        seen["last_seen_ip"], "127.0.0.1",
        "the peer when nothing is forwarded"
    );
    assert_eq!(app.agent(&unseen_id).await["last_seen_at"], Value::Null);
}

/// An agent seen from one address and a moment later from another is last seen at the
/// second: a new address is never dropped because the agent was seen in the same second.
#[tokio::test]
async fn the_latest_sighting_wins_even_within_a_second() {
    let mut app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("roaming.example");
    let id = app.enrol(&cert, &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for ip in ["10.6.0.1", "10.6.0.2", "10.6.0.1", "10.6.0.2"] {
        app.verify(&[("X-Client-Cert", &cert.nginx_escaped()), ("X-Real-IP", ip)])
            .await
            .assert_status(200);
    }
    app.restart().await;
    assert_eq!(app.agent(&id).await["last_seen_ip"], "10.6.0.2");
}

#[tokio::test]
async fn pending_last_seen_is_written_on_graceful_shutdown() {
    let spawned = Instant::now();
    let mut app = spawn_app_with(&[("CERTGATE_LAST_SEEN_FLUSH_MS", "5000")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("shutdown.example");
    let id = app.enrol(&cert, &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.verify(&[
        ("X-Client-Cert", &cert.nginx_escaped()),
        ("X-Real-IP", "198.51.100.4"),
    ])
    .await
    .assert_status(200);
    if spawned.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            app.agent(&id).await["last_seen_at"],
            Value::Null,
            "not flushed yet: the periodic flush is 5 s away"
        );
    }

    app.restart().await;

    let agent = app.agent(&id).await;
    assert!(!agent["last_seen_at"].is_null(), "flushed on stop: {agent}");
    assert_eq!(agent["last_seen_ip"], "198.51.100.4");
}

/// A stop that lands while a periodic flush is still waiting for the database cancels that
/// flush; its sightings are written by the last flush on the way out, not lost with it,
/// and that flush tries again while the database stays locked past its busy timeout.
#[tokio::test]
async fn a_flush_cut_short_by_a_stop_loses_no_sighting() {
    use sqlx::{Connection, Executor};

    let data_dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data_dir.path().join("certgate.db").display());
    let mut app = spawn_app_with(&[
        ("CERTGATE_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("CERTGATE_DATABASE_URL", &url),
        ("CERTGATE_LAST_SEEN_FLUSH_MS", "100"),
    ])
    .await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("cut-short.example");
    let id = app.enrol(&cert, &ca_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    app.verify(&[
        ("X-Client-Cert", &cert.nginx_escaped()),
        ("X-Real-IP", "198.51.100.7"),
    ])
    .await
    .assert_status(200);
    // The next periodic flush takes the sighting and waits for the lock (up to 1 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        holder.execute("ROLLBACK").await.unwrap();
    });
    app.restart().await;
    release.await.unwrap();

    let agent = app.agent(&id).await;
    assert_eq!(agent["last_seen_ip"], "198.51.100.7", "{agent}");
}

/// On PostgreSQL a replica hears of a change at once (NOTIFY), not at its next poll: with
/// polling a minute apart, a disable still reaches the other replica within seconds.
#[tokio::test]
async fn on_postgresql_a_change_is_announced_to_the_other_replicas() {
    if std::env::var("CERTGATE_TEST_POSTGRES_URL").map_or(true, |url| url.is_empty()) {
        eprintln!("SKIP: announcements need PostgreSQL (CERTGATE_TEST_POSTGRES_URL)");
        return;
    }
    let first = spawn_app_with(&[("CERTGATE_SYNC_INTERVAL_MS", "60000")]).await;
    let second = first.replica().await;
    let ca_id = first.add_ca(&pki().root).await;
    let cert = pki().leaf("announced.example");
    let agent = first.enrol(&cert, &ca_id).await;
    let allowed = eventually(Duration::from_secs(10), || async {
        let answer = second.verify_nginx_fingerprint(&cert).await;
        (answer.status == 200).then_some(answer)
    })
    .await
    .expect("the enrolment is announced to the replica");
    allowed.assert_allowed(&agent);

    first
        .toggle_agent(agent["id"].as_str().unwrap(), Some(false))
        .await;
    eventually(Duration::from_secs(10), || async {
        (second.verify_nginx_fingerprint(&cert).await.reason() == Some("agent_disabled"))
            .then_some(())
    })
    .await
    .expect("the disable is announced to the replica");
}

#[tokio::test]
async fn changes_through_one_replica_reach_the_others_within_a_second() {
    let first = spawn_app().await;
    let second = first.replica().await;
    let ca_id = first.add_ca(&pki().root).await;
    let cert = pki().leaf("replicated.example");
    let agent = first.enrol(&cert, &ca_id).await;
    let id = agent["id"].as_str().unwrap();
    assert_eq!(
        second.agent(id).await["hostname"],
        "replicated.example",
        "one database"
    );

    let reached = |expect: Option<&'static str>| {
        let second = &second;
        let cert = &cert;
        async move {
            eventually(Duration::from_secs(3), || async {
                let answer = second.verify_nginx_fingerprint(cert).await;
                (answer.reason() == expect).then_some(answer)
            })
            .await
        }
    };
    let allowed = reached(None)
        .await
        .expect("the enrolment reaches the replica");
    allowed.assert_allowed(&agent);

    first
        .toggle_agent(id, Some(false))
        .await
        .assert_status(StatusCode::OK);
    reached(Some("agent_disabled"))
        .await
        .expect("disabling reaches the replica");

    first
        .put_config(json!({"enforcement_enabled": false}))
        .await;
    let audited = eventually(Duration::from_secs(3), || async {
        let answer = second.verify_nginx_fingerprint(&cert).await;
        (answer.status == 200).then_some(answer)
    })
    .await
    .expect("audit mode reaches the replica");
    assert_eq!(audited.body["enforced"], false);
    first.put_config(json!({"enforcement_enabled": true})).await;

    first
        .revoke_agent(id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    reached(Some("agent_revoked"))
        .await
        .expect("revocation reaches the replica");

    let started = Instant::now();
    let other = pki().leaf("timed.example");
    let other_agent = second.enrol(&other, &ca_id).await;
    eventually(Duration::from_secs(3), || async {
        let answer = first.verify_nginx_fingerprint(&other).await;
        (answer.status == 200).then_some(answer)
    })
    .await
    .expect("an enrolment through the second reaches the first")
    .assert_allowed(&other_agent);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "target: within one second, took {:?}",
        started.elapsed()
    );

    second
        .delete_ca(&ca_id)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    eventually(Duration::from_secs(3), || async {
        let answer = first.verify_nginx_fingerprint(&other).await;
        (answer.reason() == Some("ca_removed")).then_some(())
    })
    .await
    .expect("removing the CA reaches the replica");
}

#[tokio::test]
async fn an_auto_enrolling_verify_records_last_seen_too() {
    let app = spawn_app().await;
    app.add_ca(&pki().root).await;
    app.put_config(json!({"auto_enroll": true})).await;
    let cert = pki().leaf("first-sight.example");
    let answer = app
        .verify(&[
            ("X-Client-Cert", &cert.nginx_escaped()),
            ("X-Real-IP", "192.0.2.44"),
        ])
        .await;
    answer.assert_status(200);
    let id = answer.body["agent_id"].as_str().unwrap().to_owned();
    let seen = eventually(Duration::from_secs(6), || last_seen(&app, &id))
        .await
        .expect("the verify that enrolled the agent saw it");
    assert_eq!(seen["last_seen_ip"], "192.0.2.44");
}

#[tokio::test]
async fn a_re_enrolment_after_a_ca_removal_survives_a_restart() {
    let mut app = spawn_app().await;
    let old_ca = app.add_ca(&pki().root).await;
    let cert = pki().leaf("phoenix.example");
    let old_agent = app.enrol(&cert, &old_ca).await;
    app.delete_ca(&old_ca)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let new_ca = app.add_ca(&pki().root).await;
    let new_agent = app.enrol(&cert, &new_ca).await;

    app.restart().await;

    app.verify_escaped_pem(&cert)
        .await
        .assert_allowed(&new_agent);
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_allowed(&new_agent);
    assert_eq!(
        app.agent(old_agent["id"].as_str().unwrap()).await["status"],
        "ca_removed"
    );
}

/// A SQLite database in a directory of the test's own (these tests are about its files,
/// whatever backend the rest of the suite runs on).
struct SqliteFiles {
    dir: tempfile::TempDir,
}

impl SqliteFiles {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path("certgate.db").display())
    }

    /// SQLite's write-ahead log and its index found beside `certgate.db`.
    fn write_ahead_files(&self) -> Vec<&'static str> {
        ["certgate.db-wal", "certgate.db-shm"]
            .into_iter()
            .filter(|name| self.path(name).exists())
            .collect()
    }
}

/// Agents and revoked agents in a SQLite file, read behind certgate's back.
async fn agents_in(path: &std::path::Path) -> (i64, i64) {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_as("SELECT COUNT(*), COUNT(revoked_at) FROM agents")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

/// Through the binary's API: a CA, `count` agents, the first `revoked` of them revoked.
async fn enrol_and_revoke(port: u64, token: &str, count: usize, revoked: usize) {
    let api = BinaryApi::new(port, token);
    let ca = api.add_root_ca().await;
    for n in 0..count {
        let agent: Value = api
            .enrol(&format!("durable-{n}.example"), &ca)
            .await
            .json()
            .await
            .unwrap();
        if n < revoked {
            let path = format!("/agents/{}", agent["id"].as_str().unwrap());
            let answer = api.admin(Method::DELETE, &path).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        }
    }
}

/// "Stop it, copy the file" is a backup: after SIGTERM no write-ahead log is left, and
/// `certgate.db` alone holds every agent and every revocation.
#[tokio::test]
async fn a_clean_stop_leaves_the_database_file_complete_on_its_own() {
    let files = SqliteFiles::new();
    let token = "admin-token-for-the-stop-test";
    let (mut server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("CERTGATE_DATABASE_URL", &files.url()),
    ])
    .await;
    enrol_and_revoke(port, token, 300, 100).await;
    let log = server.terminate();

    let wal = files.path("certgate.db-wal");
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "{} bytes of write-ahead log left:\n{log}", left);
    let copy = files.path("copied.db");
    std::fs::copy(files.path("certgate.db"), &copy).unwrap();
    assert_eq!(agents_in(&copy).await, (300, 100));
}

/// The certgate binary run with `args` and `env`, and nothing else in its environment.
fn certgate_with(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The certgate binary run with `args` on the database at `url`.
fn certgate_on(url: &str, args: &[&str]) -> std::process::Output {
    certgate_with(&[("CERTGATE_DATABASE_URL", url)], args)
}

/// The one-shot commands that write the database (`migrate`, `ca init`) leave it as a
/// stopped `serve` does: one complete file, no `-wal` or `-shm` beside it.
#[test]
fn one_shot_commands_leave_a_self_contained_database() {
    let files = SqliteFiles::new();
    let data_dir = files.path("");
    let run = |args: &[&str]| {
        let output = certgate_with(&[("CERTGATE_DATA_DIR", data_dir.to_str().unwrap())], args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert_eq!(files.write_ahead_files(), Vec::<&str>::new(), "{args:?}");
    };
    // Creating the database, then opening an existing one.
    run(&["migrate"]);
    run(&["migrate"]);
    run(&["ca", "init"]);
    assert!(files.path("certgate.db").exists());
}

/// `certgate backup` copies a database certgate is serving, and the copy serves again.
#[tokio::test]
async fn backup_of_a_live_database_restores_every_agent_and_revocation() {
    let files = SqliteFiles::new();
    let token = "admin-token-for-the-backup-test";
    let (_server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("CERTGATE_DATABASE_URL", &files.url()),
    ])
    .await;
    enrol_and_revoke(port, token, 12, 4).await;

    let backup = files.path("backup.db");
    let run = || certgate_on(&files.url(), &["backup", backup.to_str().unwrap()]);
    let output = run();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(agents_in(&backup).await, (12, 4));
    let again = run();
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{again:?}"
    );

    // Restored: a certgate on the copy refuses the revoked agents and knows the others.
    let restored = format!("sqlite://{}", backup.display());
    let (_restored, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("CERTGATE_DATABASE_URL", &restored),
    ])
    .await;
    let listed: Value = BinaryApi::new(port, token)
        .admin(Method::GET, "/agents?include_revoked=true&limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 12, "{listed}");
    let revoked = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|agent| !agent["revoked_at"].is_null())
        .count();
    assert_eq!(revoked, 4);
}

/// `certgate backup` takes the database as it is: a mistyped path is an error that creates
/// nothing, a database behind this binary's migrations is copied without being migrated
/// (so a backup made with a newer binary before an upgrade is what the old one reads), and
/// a file that is not certgate's is refused.
#[tokio::test]
async fn backup_never_creates_or_migrates_the_database() {
    use sqlx::Connection;
    let files = SqliteFiles::new();

    // Refused with exit status 1 and `says` on stderr, and no backup written.
    let refused = |database: &std::path::Path, says: &str| {
        let backup = database.with_extension("backup");
        let output = certgate_on(
            &format!("sqlite://{}", database.display()),
            &["backup", backup.to_str().unwrap()],
        );
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(says),
            "{output:?}"
        );
        assert!(!backup.exists(), "no backup is written");
    };

    let missing = files.path("mistyped.db");
    refused(&missing, "no database at");
    assert!(!missing.exists(), "no database is created");

    // A database one migration behind, as an older certgate left it.
    let migrated = certgate_on(&files.url(), &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    let versions = |path: std::path::PathBuf| async move {
        let url = format!("sqlite://{}?mode=ro", path.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await
            .unwrap()
    };
    let all = versions(files.path("certgate.db")).await;
    let latest = *all.last().unwrap();
    {
        let mut connection = sqlx::SqliteConnection::connect(&files.url()).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
            .bind(latest)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let backup = files.path("backup.db");
    let copied = certgate_on(&files.url(), &["backup", backup.to_str().unwrap()]);
    assert!(copied.status.success(), "{copied:?}");
    assert!(
        String::from_utf8_lossy(&copied.stderr)
            .contains(&format!("has not applied migration {latest} ")),
        "{copied:?}"
    );
    assert_eq!(
        files.write_ahead_files(),
        Vec::<&str>::new(),
        "left behind next to a stopped database"
    );
    let behind = all[..all.len() - 1].to_vec();
    assert_eq!(
        versions(files.path("certgate.db")).await,
        behind,
        "not migrated"
    );
    assert_eq!(versions(backup.clone()).await, behind);

    let foreign = files.path("foreign.db");
    {
        let url = format!("sqlite://{}?mode=rwc", foreign.display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE notes (body TEXT)")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    refused(&foreign, "is not a certgate database");
}

/// The ids of `count` agents enrolled under one new CA, named `<prefix>-<n>.example`.
async fn enrolled(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    let ca_id = app.add_ca(&pki().root).await;
    let mut ids = Vec::new();
    for n in 0..count {
        let cert = pki().leaf(&format!("{prefix}-{n}.example"));
        let agent = app.enrol(&cert, &ca_id).await;
        ids.push(agent["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Writers arriving together queue for the database rather than race for it: none is
/// refused while the store is healthy, however many there are.
#[tokio::test]
async fn concurrent_admin_writes_all_land() {
    const WRITERS: usize = 32;
    const WRITES_EACH: usize = 20;
    let app =
        std::sync::Arc::new(spawn_app_with(&[("CERTGATE_DATABASE_MAX_CONNECTIONS", "8")]).await);
    let agents = enrolled(&app, "busy", WRITERS).await;
    let tasks: Vec<_> = agents
        .into_iter()
        .map(|id| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut refused = Vec::new();
                for round in 0..WRITES_EACH {
                    let body = json!({"tags": [format!("round-{round}")]});
                    let answer = app.update_agent(&id, &body).await;
                    if answer.status != StatusCode::OK {
                        refused.push(format!("{}: {}", answer.status, answer.body));
                    }
                }
                (id, refused)
            })
        })
        .collect();
    for task in tasks {
        let (id, refused) = task.await.unwrap();
        assert!(refused.is_empty(), "writes refused: {refused:?}");
        assert_eq!(
            app.agent(&id).await["tags"],
            json!([format!("round-{}", WRITES_EACH - 1)])
        );
    }
}

/// SQLite's write-ahead log is reused from its start once a checkpoint has copied it into
/// the database and no reader still needs it: under writes that never pause, with readers
/// reading all along, it stays small instead of growing with every commit.
#[tokio::test]
async fn the_write_ahead_log_stays_bounded_under_continuous_writes() {
    const WRITERS: usize = 4;
    const WRITES_EACH: usize = 625;
    // Every commit appends at least two 4 KiB pages (the agent's row, the change feed), so
    // a log that were never reused would pass this after 2,000 of the 2,500 writes.
    const BOUND: u64 = 16 * 1024 * 1024;
    let data_dir = tempfile::tempdir().unwrap();
    let db = data_dir.path().join("certgate.db");
    let app = std::sync::Arc::new(
        spawn_app_with(&[
            ("CERTGATE_DATA_DIR", data_dir.path().to_str().unwrap()),
            (
                "CERTGATE_DATABASE_URL",
                &format!("sqlite://{}", db.display()),
            ),
        ])
        .await,
    );
    let wal = data_dir.path().join("certgate.db-wal");
    let agents = enrolled(&app, "wal", WRITERS).await;
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let readers: Vec<_> = ["/agents?limit=100", "/ca"]
        .into_iter()
        .map(|path| {
            let (app, writing) = (app.clone(), writing.clone());
            tokio::spawn(async move {
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    app.get(path).await.assert_status(StatusCode::OK);
                }
            })
        })
        .collect();
    let writers: Vec<_> = agents
        .into_iter()
        .map(|id| {
            let (app, wal) = (app.clone(), wal.clone());
            tokio::spawn(async move {
                let mut largest = 0;
                for round in 0..WRITES_EACH {
                    let body = json!({"description": format!("{round:04}").repeat(250)});
                    app.update_agent(&id, &body)
                        .await
                        .assert_status(StatusCode::OK);
                    largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                }
                largest
            })
        })
        .collect();
    let mut largest = 0;
    for writer in writers {
        largest = largest.max(writer.await.unwrap());
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(largest > 0, "no write-ahead log at {}", wal.display());
    assert!(
        largest < BOUND,
        "the write-ahead log reached {largest} bytes"
    );
}
