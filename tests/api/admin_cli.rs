//! `certgate admin` run as an operator would, against a live certgate: tables, JSON for
//! scripts, and exit codes 0 (done), 1 (refused or unreachable), 2 (usage).

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::issuance::AgentHost;
use crate::pki::pki;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        &self.stdout
    }
}

/// Runs `certgate admin ARGS` with only `env` (and PATH) in its environment.
async fn certgate(env: Vec<(&str, String)>, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_certgate"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `certgate admin ARGS` against `app`, with its URL and token from the environment.
async fn admin(app: &TestApp, args: &[&str]) -> Run {
    let env = vec![
        ("CERTGATE_URL", app.address.clone()),
        ("CERTGATE_ADMIN_TOKEN", app.admin_token.clone()),
    ];
    let mut full = vec!["admin"];
    full.extend_from_slice(args);
    certgate(env, &full).await
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn operators_add_a_ca_enrol_update_and_revoke_agents() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let root_file = write(dir.path(), "root.pem", &pki().root.cert.pem());
    let added = admin(&app, &["ca", "add", "--name", "team root", &root_file]).await;
    assert!(added.ok().contains("team root"), "{}", added.stdout);
    let cas = admin(&app, &["ca", "list", "-o", "json"]).await.json();
    assert_eq!(cas["total"], 1);
    let ca_id = cas["items"][0]["id"].as_str().unwrap().to_owned();

    let cert = pki().root.leaf("cli-1.example").issue();
    let cert_file = write(dir.path(), "agent.pem", &cert.pem());
    let enrol = [
        "agents",
        "enrol",
        "--hostname",
        "cli-1.example",
        "--ca",
        &ca_id,
    ];
    let enrolled = admin(
        &app,
        &[&enrol[..], &["--tag", "db", "-o", "json", &cert_file]].concat(),
    )
    .await;
    let agent = enrolled.json();
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(agent["tags"], json!(["db"]));
    let again = admin(&app, &[&enrol[..], &[cert_file.as_str()]].concat()).await;
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("409 already_enrolled"),
        "{}",
        again.stderr
    );

    let table = admin(&app, &["agents", "list"]).await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("HOSTNAME"),
        "{}",
        table.stdout
    );
    assert!(lines[1].contains("cli-1.example") && lines[1].contains("active"));
    let listed = admin(&app, &["agents", "list", "--tag", "db", "-o", "json"])
        .await
        .json();
    assert_eq!(listed["items"][0]["id"], agent_id.as_str());

    let updated = admin(
        &app,
        &[
            "agents",
            "update",
            &agent_id,
            "--description",
            "rack 4",
            "--tag",
            "web",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(updated["tags"], json!(["web"]));
    assert_eq!(updated["description"], "rack 4");
    let disabled = admin(&app, &["agents", "disable", &agent_id]).await;
    assert!(disabled.ok().contains("disabled"));
    assert_eq!(app.agent(&agent_id).await["status"], "disabled");
    admin(&app, &["agents", "enable", &agent_id]).await.ok();
    app.verify_escaped_pem(&cert).await.assert_status(200);

    admin(&app, &["agents", "revoke", &agent_id]).await.ok();
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "agent_revoked");
    let shown = admin(&app, &["agents", "show", &agent_id]).await;
    assert!(shown.ok().contains("revoked"), "{}", shown.stdout);

    let trail = admin(&app, &["audit", "--action", "agent.revoke", "-o", "json"])
        .await
        .json();
    assert_eq!(trail["total"], 1);
    assert_eq!(trail["items"][0]["target_id"], agent_id.as_str());
    let table = admin(&app, &["audit"]).await;
    assert!(table.ok().contains("agent.enrol"), "{}", table.stdout);
}

/// The command printed with a token is the one to run on the agent host: the proxy's
/// address (`--agent-url`) and the base path the server uses.
#[tokio::test]
async fn the_printed_enrol_command_names_the_agents_address_and_base_path() {
    let app = spawn_app_with(&[("CERTGATE_BASE_PATH", "/edge/mtls")]).await;
    let env = vec![
        ("CERTGATE_URL", app.address.clone()),
        ("CERTGATE_ADMIN_TOKEN", app.admin_token.clone()),
        ("CERTGATE_BASE_PATH", "/edge/mtls".to_owned()),
    ];
    let args = [
        "admin",
        "enrollments",
        "create",
        "--hostname",
        "host-3.example",
        "--agent-url",
        "https://proxy.example.test",
    ];
    let shown = certgate(env, &args).await;
    let text = shown.ok();
    assert!(
        text.contains(
            "certgate enroll --server https://proxy.example.test --base-path /edge/mtls \
             --token cgt_"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn enrolment_tokens_and_self_enrolment_requests_are_handled_from_the_cli() {
    let app = spawn_app_with(&[("CERTGATE_ENROLL_REQUESTS_PER_MINUTE", "100")]).await;
    let created = admin(
        &app,
        &[
            "enrollments",
            "create",
            "--hostname",
            "host-1.example",
            "--ttl",
            "1h",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    let token = created["token"].as_str().unwrap();
    app.redeem(token, &AgentHost::new().csr())
        .await
        .assert_status(StatusCode::CREATED);

    let shown = admin(
        &app,
        &["enrollments", "create", "--hostname", "host-2.example"],
    )
    .await;
    let text = shown.ok();
    assert!(
        text.contains(&format!(
            "certgate enroll --server {} --token cgt_",
            app.address
        )),
        "{text}"
    );
    assert!(text.contains("cgt_"), "the token is shown once: {text}");
    let pending = admin(&app, &["enrollments", "list", "-o", "json"])
        .await
        .json();
    assert_eq!(pending["total"], 1);
    assert_eq!(pending["items"][0]["hostname"], "host-2.example");

    let body = crate::approval::request_body(&AgentHost::new(), "asks.example", "10.4.4.4");
    let submitted = app.submit_request(body).await;
    let request_id = submitted.body["request_id"].as_str().unwrap().to_owned();
    let listed = admin(&app, &["requests", "list"]).await;
    assert!(listed.ok().contains("asks.example"), "{}", listed.stdout);
    let approved = admin(
        &app,
        &[
            "requests",
            "approve",
            &request_id,
            "--tag",
            "new",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(approved["status"], "approved");
    let agent = app.agent(approved["agent_id"].as_str().unwrap()).await;
    assert_eq!(agent["tags"], json!(["new"]));
    let twice = admin(&app, &["requests", "deny", &request_id]).await;
    assert_eq!(twice.code, 1);
    assert!(twice.stderr.contains("request_decided"), "{}", twice.stderr);

    // A second host behind the same address: refused, then accepted explicitly.
    let body = crate::approval::request_body(&AgentHost::new(), "next.example", "10.4.4.4");
    let submitted = app.submit_request(body).await;
    let request_id = submitted.body["request_id"].as_str().unwrap().to_owned();
    let conflict = admin(&app, &["requests", "approve", &request_id]).await;
    assert_eq!(conflict.code, 1);
    assert!(
        conflict.stderr.contains("ip_address_conflict"),
        "{}",
        conflict.stderr
    );
    let shared = admin(
        &app,
        &[
            "requests",
            "approve",
            &request_id,
            "--allow-shared-ip",
            "-o",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(shared["status"], "approved");
}

#[tokio::test]
async fn expiring_lists_active_agents_and_cas_soonest_first() {
    let app = spawn_app().await;
    let ca_id = app.add_ca(&pki().root).await;
    let day = 86_400;
    for (name, days) in [
        ("later.example", 20),
        ("soon.example", 5),
        ("far.example", 400),
    ] {
        let cert = pki().root.leaf(name).expiring_in(days * day).issue();
        app.enrol_agent(&json!({"hostname": name, "certificate": cert.pem(), "ca_id": ca_id}))
            .await
            .assert_status(StatusCode::CREATED);
    }
    let expiring = admin(&app, &["expiring", "--within", "30d", "-o", "json"])
        .await
        .json();
    let hostnames: Vec<&str> = expiring["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hostnames, ["soon.example", "later.example"]);
    assert_eq!(expiring["cas"], json!([]));
    let table = admin(&app, &["expiring", "--within", "7d"]).await;
    let text = table.ok();
    assert!(text.contains("Expiring within 7 days"), "{text}");
    assert!(
        text.contains("soon.example") && !text.contains("later.example"),
        "{text}"
    );
    assert!(text.contains("CAs: none"), "{text}");
}

#[tokio::test]
async fn exit_codes_tell_refused_from_usage_errors() {
    let app = spawn_app().await;
    let with = |token: &str| {
        vec![
            ("CERTGATE_URL", app.address.clone()),
            ("CERTGATE_ADMIN_TOKEN", token.to_owned()),
        ]
    };
    let refused = certgate(with("wrong"), &["admin", "ca", "list"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("401 unauthorized"),
        "{}",
        refused.stderr
    );

    let usage = certgate(with(&app.admin_token), &["admin", "agents", "frobnicate"]).await;
    assert_eq!(usage.code, 2);
    let nothing = certgate(with(&app.admin_token), &["admin", "config", "set"]).await;
    assert_eq!(nothing.code, 2);
    assert!(
        nothing.stderr.contains("nothing to change"),
        "{}",
        nothing.stderr
    );
    let bad_id = certgate(
        with(&app.admin_token),
        &["admin", "agents", "show", "../config"],
    )
    .await;
    assert_eq!(bad_id.code, 2);
    let no_token = certgate(
        vec![("CERTGATE_URL", app.address.clone())],
        &["admin", "ca", "list"],
    )
    .await;
    assert_eq!(no_token.code, 2);
    assert!(
        no_token.stderr.contains("no admin token"),
        "{}",
        no_token.stderr
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = certgate(
        vec![
            ("CERTGATE_URL", format!("http://127.0.0.1:{port}")),
            ("CERTGATE_ADMIN_TOKEN", "x".to_owned()),
        ],
        &["admin", "ca", "list"],
    )
    .await;
    assert_eq!(unreachable.code, 1);
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );

    let audit_mode = certgate(
        with(&app.admin_token),
        &["admin", "config", "set", "--enforcement", "false"],
    )
    .await;
    assert!(
        audit_mode.ok().contains("warning: audit mode"),
        "{}",
        audit_mode.stdout
    );
    assert_eq!(app.config().await["enforcement_enabled"], false);

    let completions = certgate(vec![], &["completions", "bash"]).await;
    assert!(completions.ok().contains("certgate"));
    assert!(
        completions.stdout.contains("expiring"),
        "admin subcommands complete"
    );
}

#[tokio::test]
async fn the_servers_named_token_and_a_token_file_work_and_name_the_actor() {
    let app =
        spawn_app_with(&[("CERTGATE_ADMIN_TOKEN", "ops:ops-token-for-cli,ci:ci-token")]).await;
    let named = certgate(
        vec![
            ("CERTGATE_URL", app.address.clone()),
            (
                "CERTGATE_ADMIN_TOKEN",
                "ops:ops-token-for-cli,ci:ci-token".to_owned(),
            ),
        ],
        &["admin", "config", "set", "--reject-unknown", "false"],
    )
    .await;
    named.ok();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "token", "ci:ci-token\n");
    let from_file = certgate(
        vec![
            ("CERTGATE_URL", app.address.clone()),
            ("CERTGATE_ADMIN_TOKEN_FILE", file),
        ],
        &["admin", "audit", "-o", "json"],
    )
    .await
    .json();
    assert_eq!(from_file["items"][0]["actor"], "ops");
    assert_eq!(from_file["items"][0]["action"], "config.update");
}
