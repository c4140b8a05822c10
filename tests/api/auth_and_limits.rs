//! Admin tokens, verify secrets, failure rate limits and trusted proxies: all fail closed.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::json;

use crate::helpers::{
    ApiResponse, BinaryApi, ServerProcess, TestApp, UNSET, VerifyAnswer, spawn_app, spawn_app_with,
};
use crate::pki::pki;

/// One request per admin route (method and path), for tables over every route.
fn every_admin_route(app: &TestApp) -> Vec<(Method, String)> {
    let id = uuid::Uuid::new_v4();
    vec![
        (Method::GET, "/ca".into()),
        (Method::POST, "/ca".into()),
        (Method::GET, format!("/ca/{id}")),
        (Method::DELETE, format!("/ca/{id}")),
        (Method::GET, "/agents".into()),
        (Method::POST, "/agents".into()),
        (Method::GET, format!("/agents/{id}")),
        (Method::PUT, format!("/agents/{id}")),
        (Method::DELETE, format!("/agents/{id}")),
        (Method::PUT, format!("/agents/{id}/toggle")),
        (Method::GET, "/config".into()),
        (Method::PUT, "/config".into()),
    ]
    .into_iter()
    .map(|(method, path)| (method, app.url(&path)))
    .collect()
}

fn with_body(method: &Method, request: RequestBuilder) -> RequestBuilder {
    if *method == Method::POST || *method == Method::PUT {
        request.json(&json!({"enforcement_enabled": false}))
    } else {
        request
    }
}

#[tokio::test]
async fn without_a_configured_token_every_admin_call_is_refused() {
    let app = spawn_app_with(&[
        ("CERTGATE_ADMIN_TOKEN", UNSET),
        ("CERTGATE_ADMIN_AUTH_FAILURES_PER_MINUTE", "1000"),
    ])
    .await;
    for (method, url) in every_admin_route(&app) {
        for authorization in [None, Some("Bearer "), Some("Bearer anything")] {
            let mut request = with_body(&method, app.client.request(method.clone(), &url));
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = ApiResponse::from(request).await;
            assert_eq!(
                (response.status, response.code()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{method} {url} with {authorization:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_on_every_route() {
    let app = spawn_app_with(&[("CERTGATE_ADMIN_AUTH_FAILURES_PER_MINUTE", "1000")]).await;
    let token = app.admin_token.clone();
    let refused = [
        ("no Authorization header", None),
        ("another token", Some("Bearer not-the-token".to_owned())),
        ("empty bearer", Some("Bearer ".to_owned())),
        (
            "the token in another case",
            Some(format!("Bearer {}", token.to_uppercase())),
        ),
        (
            "a prefix of the token",
            Some(format!("Bearer {}", &token[..token.len() - 1])),
        ),
        ("the token plus more", Some(format!("Bearer {token}x"))),
        ("not a bearer scheme", Some(format!("Basic {token}"))),
        ("the bare token", Some(token.clone())),
    ];
    for (method, url) in every_admin_route(&app) {
        for (why, authorization) in &refused {
            let mut request = with_body(&method, app.client.request(method.clone(), &url));
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            let response = ApiResponse::from(request).await;
            assert_eq!(
                (response.status, response.code()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{method} {url}: {why}"
            );
        }
    }
    assert_eq!(
        app.config().await["enforcement_enabled"],
        true,
        "nothing changed"
    );
}

#[tokio::test]
async fn every_configured_token_works() {
    let app = spawn_app_with(&[("CERTGATE_ADMIN_TOKEN", "old-token, new-token,third")]).await;
    for token in ["old-token", "new-token", "third"] {
        let response =
            ApiResponse::from(app.client.get(app.url("/config")).bearer_auth(token)).await;
        assert_eq!(response.status, StatusCode::OK, "{token}");
    }
}

#[tokio::test]
async fn failed_admin_authentications_are_rate_limited_per_peer() {
    let app = spawn_app_with(&[("CERTGATE_ADMIN_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let wrong = || ApiResponse::from(app.client.get(app.url("/config")).bearer_auth("wrong"));
    for attempt in 1..=3 {
        let response = wrong().await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    for _ in 0..2 {
        let limited = wrong().await;
        limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(limited.headers.contains_key("x-request-id"));
        let retry_after: u64 = limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=60).contains(&retry_after),
            "Retry-After: {retry_after}"
        );
    }
    let unauthenticated = ApiResponse::from(app.client.get(app.url("/config"))).await;
    unauthenticated.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Correct calls are never limited.
    for _ in 0..5 {
        app.get("/config").await.assert_status(StatusCode::OK);
    }
    // Verify has its own limiter.
    app.verify(&[])
        .await
        .assert_denied(401, "missing_certificate");
}

async fn verify_with_secret(app: &TestApp, secret: &str) -> VerifyAnswer {
    VerifyAnswer::from(
        app.verify_request(Method::GET)
            .header("X-Verify-Secret", secret)
            .header("X-Client-Cert-Fingerprint", pki().leaf("x").sha1_hex()),
    )
    .await
}

#[tokio::test]
async fn wrong_verify_secrets_are_rate_limited_with_403() {
    let app = spawn_app_with(&[("CERTGATE_VERIFY_SECRET_FAILURES_PER_MINUTE", "3")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("limited.example");
    let agent = app.enrol(&cert, &ca_id).await;
    for attempt in 1..=3 {
        let answer = verify_with_secret(&app, "wrong").await;
        assert_eq!(
            (answer.status, answer.reason()),
            (401, Some("invalid_verify_secret")),
            "attempt {attempt}"
        );
    }
    for _ in 0..2 {
        // Verify answers only 200, 401, 403 or 5xx: a limited caller gets 403.
        verify_with_secret(&app, "wrong")
            .await
            .assert_denied(403, "rate_limited");
    }
    let no_secret = VerifyAnswer::from(app.verify_request(Method::GET)).await;
    no_secret.assert_denied(403, "rate_limited");
    for _ in 0..5 {
        app.verify_nginx_fingerprint(&cert)
            .await
            .assert_allowed(&agent);
    }
    // Admin has its own limiter.
    app.get("/config").await.assert_status(StatusCode::OK);
}

#[tokio::test]
async fn every_configured_verify_secret_works_and_the_alias_is_read() {
    let app = spawn_app_with(&[("MTLS_VERIFY_SECRET", "one,two")]).await;
    for secret in ["one", "two"] {
        verify_with_secret(&app, secret)
            .await
            .assert_denied(403, "unknown_certificate");
    }
    verify_with_secret(&app, "one,two")
        .await
        .assert_denied(401, "invalid_verify_secret");

    let alias = spawn_app_with(&[
        ("MTLS_VERIFY_SECRET", UNSET),
        ("CERTGATE_VERIFY_SECRET", "alias-secret"),
    ])
    .await;
    verify_with_secret(&alias, "alias-secret")
        .await
        .assert_denied(403, "unknown_certificate");

    let both = spawn_app_with(&[
        ("MTLS_VERIFY_SECRET", "seed-secret"),
        ("CERTGATE_VERIFY_SECRET", "alias-secret"),
    ])
    .await;
    verify_with_secret(&both, "seed-secret")
        .await
        .assert_denied(403, "unknown_certificate");
    verify_with_secret(&both, "alias-secret")
        .await
        .assert_denied(401, "invalid_verify_secret");
}

#[tokio::test]
async fn without_a_configured_secret_every_verify_call_is_refused() {
    let app = spawn_app_with(&[
        ("MTLS_VERIFY_SECRET", UNSET),
        ("CERTGATE_VERIFY_SECRET_FAILURES_PER_MINUTE", "1000"),
    ])
    .await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("no-secret.example");
    app.enrol(&cert, &ca_id).await;
    app.put_config(json!({"enforcement_enabled": false})).await;
    for secret in [
        None,
        Some(""),
        Some("anything"),
        Some(crate::helpers::VERIFY_SECRET),
    ] {
        let mut request = app
            .verify_request(Method::GET)
            .header("X-Client-Cert", cert.nginx_escaped());
        if let Some(secret) = secret {
            request = request.header("X-Verify-Secret", secret);
        }
        VerifyAnswer::from(request)
            .await
            .assert_denied(401, "invalid_verify_secret");
    }
}

#[tokio::test]
async fn trusted_proxies_refuse_other_peers_before_anything_else() {
    let app = spawn_app_with(&[("CERTGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("behind-proxy.example");
    app.enrol(&cert, &ca_id).await;
    let header = ("X-Client-Cert-Fingerprint", cert.sha1_hex());
    let forged = [("X-Real-IP", "10.0.0.1"), ("X-Forwarded-For", "10.0.0.1")];
    let cases = [
        ("right secret", Some(app.verify_secret.as_str())),
        ("wrong secret", Some("wrong")),
        ("no secret", None),
    ];
    // Audit mode never relaxes untrusted_source.
    app.put_config(json!({"enforcement_enabled": false})).await;
    for (why, secret) in cases {
        let mut request = app.verify_request(Method::GET).header(header.0, &header.1);
        for (name, value) in forged {
            request = request.header(name, value);
        }
        if let Some(secret) = secret {
            request = request.header("X-Verify-Secret", secret);
        }
        let answer = VerifyAnswer::from(request).await;
        assert_eq!(
            answer.reason(),
            Some("untrusted_source"),
            "{why}: {}",
            answer.body
        );
        answer.assert_denied(403, "untrusted_source");
    }
    // The admin API is not a verify caller.
    app.get("/config").await.assert_status(StatusCode::OK);

    let local = spawn_app_with(&[("CERTGATE_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    local
        .verify_nginx_fingerprint(&cert)
        .await
        .assert_denied(403, "unknown_certificate");
}

#[tokio::test]
async fn spawn_app_defaults_are_what_these_tests_assume() {
    let app = spawn_app().await;
    assert!(!app.admin_token.is_empty());
    assert!(!app.verify_secret.is_empty());
    assert_eq!(app.base_path, crate::helpers::BASE_PATH);
}

/// The real binary, its log captured: a secret, a token, a private key or a whole
/// certificate never appears at info level.
#[tokio::test]
async fn the_log_never_shows_secrets_tokens_or_certificates() {
    let token = "token-that-must-not-leak-4711";
    let secret = "secret-that-must-not-leak-0815";
    let (mut server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("MTLS_VERIFY_SECRET", secret),
    ])
    .await;

    let api = BinaryApi::new(port, token);
    let (base, client) = (&api.base, &api.client);
    let root = &pki().root.cert;
    let leaf = pki().leaf("log-check.example");
    let unknown = pki().leaf("unknown.example");
    let private_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let ca = api.add_root_ca().await;
    let admin_calls = [
        (
            token,
            "agents",
            json!({"hostname": "h", "certificate": leaf.pem(), "ca_id": ca["id"]}),
        ),
        (
            token,
            "ca",
            json!({"name": "key", "certificate": private_key}),
        ),
        ("wrong-token-that-must-not-leak", "ca", json!({})),
    ];
    for (bearer, path, body) in admin_calls {
        let request = client.post(format!("{base}/{path}")).bearer_auth(bearer);
        request.json(&body).send().await.unwrap();
    }
    let verify_calls = [
        (secret, &leaf),
        (secret, &unknown),
        ("wrong-secret-that-must-not-leak", &leaf),
    ];
    for (secret, cert) in verify_calls {
        client
            .get(format!("{base}/verify"))
            .header("X-Verify-Secret", secret)
            .header("X-Client-Cert", cert.nginx_escaped())
            .send()
            .await
            .unwrap();
    }

    let log = server.stop();
    assert!(log.contains("agent.enrol"), "the log was captured:\n{log}");
    let key_line = private_key.lines().nth(1).unwrap().to_owned();
    for (what, needle) in [
        ("the admin token", token.to_owned()),
        (
            "a wrong admin token",
            "wrong-token-that-must-not-leak".to_owned(),
        ),
        ("the verify secret", secret.to_owned()),
        (
            "a wrong verify secret",
            "wrong-secret-that-must-not-leak".to_owned(),
        ),
        ("a private key", key_line),
        ("a certificate (base64)", leaf.der_base64()[..48].to_owned()),
        (
            "a certificate (escaped)",
            unknown.nginx_escaped()[..80].to_owned(),
        ),
        ("the CA certificate", root.der_base64()[..48].to_owned()),
    ] {
        assert!(!log.contains(&needle), "{what} appears in the log:\n{log}");
    }
}

/// A log line of an admin request can be matched to the `X-Request-Id` its client got:
/// the proxy's id when it sent one, else the one certgate made up.
#[tokio::test]
async fn an_admin_requests_log_lines_name_its_request_id() {
    let token = "admin-token-for-the-span-test";
    let (mut server, port) =
        ServerProcess::start_with_json_log(&[("CERTGATE_ADMIN_TOKEN", token)]).await;
    let api = BinaryApi::new(port, token);
    let ca = api.add_root_ca().await;
    let enrolled = api.enrol("span.example", &ca).await;
    assert_eq!(enrolled.status(), StatusCode::CREATED);
    let made_up = enrolled.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let agent: serde_json::Value = enrolled.json().await.unwrap();
    let revoked = api
        .admin(
            Method::DELETE,
            &format!("/agents/{}", agent["id"].as_str().unwrap()),
        )
        .header("X-Request-Id", "proxy-id-0815")
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);

    let log = server.stop();
    // The audit line of each change, in its request's span and naming the id itself.
    let request_ids_of = |action: &str| {
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|event| event["message"] == "audit" && event["action"] == action)
            .map(|event| {
                (
                    event["span"]["request_id"].clone(),
                    event["request_id"].clone(),
                )
            })
            .unwrap_or_else(|| panic!("no {action:?} line in:\n{log}"))
    };
    assert_eq!(
        request_ids_of("agent.enrol"),
        (json!(made_up), json!(made_up))
    );
    let proxy_id = json!("proxy-id-0815");
    assert_eq!(request_ids_of("agent.revoke"), (proxy_id.clone(), proxy_id));
}

/// A client repeating a denied certificate cannot drive the log: its first denial is one
/// line at once, the repeats one line with their count (here at SIGTERM, otherwise when the
/// window ends), while the metrics count every one.
#[tokio::test]
async fn repeated_denials_are_logged_once_with_a_count() {
    let token = "admin-token-for-the-denial-test";
    let secret = "secret-for-the-denial-test";
    let (mut server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("MTLS_VERIFY_SECRET", secret),
    ])
    .await;
    let api = BinaryApi::new(port, token);
    let (base, client) = (&api.base, &api.client);
    let unknown = pki().leaf("flood.example");
    for _ in 0..30 {
        let answer = client
            .get(format!("{base}/verify"))
            .header("X-Verify-Secret", secret)
            .header("X-Client-Cert", unknown.nginx_escaped())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    }
    let metrics = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = metrics
        .lines()
        .find(|line| {
            line.starts_with("certgate_verify_decisions_total{outcome=\"denied\"")
                && !line.ends_with(" 0")
        })
        .unwrap_or_else(|| panic!("no denial counted in:\n{metrics}"));
    assert!(counted.ends_with(" 30"), "{counted}");

    let log = server.terminate();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|event: &serde_json::Value| event["reason"] == "untrusted_issuer")
        .collect();
    // Normally one denial and one count; a 10 s window may end during the test.
    let denials = events
        .iter()
        .filter(|event| event["message"] == "verify denied")
        .count();
    let repeats: u64 = events.iter().filter_map(|e| e["repeats"].as_u64()).sum();
    assert!((1..=2).contains(&denials), "{log}");
    assert_eq!(
        denials as u64 + repeats,
        30,
        "every denial accounted for:\n{log}"
    );
    for counted in events.iter().filter(|e| e["repeats"].is_u64()) {
        assert_eq!(counted["subject"], events[0]["fingerprint"], "{counted}");
    }
}

#[tokio::test]
async fn start_up_explains_a_missing_token_and_secret() {
    let mut server = ServerProcess::start(&[]).await;
    while !server.next_line().contains("certgate listening") {}
    let log = server.stop();
    assert!(
        log.contains("CERTGATE_ADMIN_TOKEN"),
        "how to set the token:\n{log}"
    );
    assert!(
        log.contains("MTLS_VERIFY_SECRET"),
        "how to set the secret:\n{log}"
    );
}

/// A proxy matches its locations on the decoded, normalised path and may forward the path
/// as the client spelled it: certgate refuses every unusual spelling before routing (and so
/// before authentication, so that a guessed admin token cannot be tried through one), verify
/// included, which proxies call by its plain path.
#[tokio::test]
async fn unusual_spellings_of_a_path_are_refused_before_authentication() {
    let app = spawn_app().await;
    let root_id = app.add_ca(&pki().root).await;
    let cert = pki().leaf("spelled.example");
    app.enrol(&cert, &root_id).await;
    let base = app.base_path.clone();
    let request = |path: &str, headers: &str| {
        format!("GET {base}{path} HTTP/1.1\r\nHost: certgate\r\nConnection: close\r\n{headers}\r\n")
    };
    let verify_headers = format!(
        "X-Verify-Secret: {}\r\nX-Client-Cert: {}\r\n",
        app.verify_secret,
        cert.nginx_escaped()
    );
    let (status, _) = app.raw_request(&request("/verify", &verify_headers)).await;
    assert_eq!(status, 200, "the plain spelling of verify");
    for spelled in [
        "/%76erify",
        "//verify",
        "/./verify",
        "/agents/../verify",
        "/agents/..%2Fverify",
    ] {
        let (status, _) = app.raw_request(&request(spelled, &verify_headers)).await;
        assert_eq!(status, 400, "{spelled}");
    }
    let right = format!("Authorization: Bearer {}\r\n", app.admin_token);
    let wrong = "Authorization: Bearer not-the-token\r\n";
    for spelled in [
        "/%61gents",
        "//agents",
        "/./agents",
        "/agents/..%2Fenroll%2Frequests%2Fstatus%2Fx",
        "/agents/..%2Frenew",
        "/agents/%2e%2e/config",
        "/ca%2F",
    ] {
        for token in [right.as_str(), wrong, ""] {
            let (status, _) = app.raw_request(&request(spelled, token)).await;
            assert_eq!(status, 400, "{spelled} with {token:?}");
        }
    }
    let (status, _) = app.raw_request(&request("/agents", &right)).await;
    assert_eq!(status, 200, "the plain spelling still works");
}

/// A denial of an enrolled agent names the agent; addresses are plain strings.
#[tokio::test]
async fn a_denial_line_names_the_agent_and_the_address_plainly() {
    let token = "admin-token-for-the-agent-denial-test";
    let secret = "secret-for-the-agent-denial-test";
    let (mut server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN", token),
        ("MTLS_VERIFY_SECRET", secret),
        ("CERTGATE_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let api = BinaryApi::new(port, token);
    let ca = api.add_root_ca().await;
    let cert = pki().leaf("denied-agent.example");
    let body = json!({"hostname": "denied-agent.example", "ca_id": ca["id"],
                      "certificate": cert.pem()});
    let enrolled = api
        .admin(Method::POST, "/agents")
        .json(&body)
        .send()
        .await
        .unwrap();
    let agent: serde_json::Value = enrolled.json().await.unwrap();
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let disabled = api
        .admin(Method::PUT, &format!("/agents/{agent_id}/toggle"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    let answer = api
        .client
        .get(format!("{}/verify", api.base))
        .header("X-Verify-Secret", secret)
        .header("X-Client-Cert", cert.nginx_escaped())
        .header("X-Real-IP", "192.0.2.44")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);

    let log = server.terminate();
    let denial = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["message"] == "verify denied")
        .unwrap_or_else(|| panic!("no denial in:\n{log}"));
    assert_eq!(denial["reason"], "agent_disabled", "{denial}");
    assert_eq!(denial["agent_id"], agent_id.as_str(), "{denial}");
    assert_eq!(denial["ip"], "192.0.2.44", "{denial}");
}

/// Secrets rotate without a restart: on SIGHUP certgate reads the files named by
/// `CERTGATE_ADMIN_TOKEN_FILE` and `MTLS_VERIFY_SECRET_FILE` again, the new tokens and secret
/// work at once and the old ones stop; the log names tokens and counts secrets, never shows
/// one. A file that cannot be read keeps the secrets in use.
#[tokio::test]
async fn sighup_rotates_admin_tokens_and_verify_secrets_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-token");
    let secrets = dir.path().join("verify-secret");
    std::fs::write(&tokens, "ops:first-admin-token-value\n").unwrap();
    std::fs::write(&secrets, "first-verify-secret-value\n").unwrap();
    let (mut server, port) = ServerProcess::start_with_json_log(&[
        ("CERTGATE_ADMIN_TOKEN_FILE", tokens.to_str().unwrap()),
        ("MTLS_VERIFY_SECRET_FILE", secrets.to_str().unwrap()),
    ])
    .await;
    let admin_status = |token: &'static str| async move {
        BinaryApi::new(port, token)
            .admin(Method::GET, "/agents")
            .send()
            .await
            .unwrap()
            .status()
    };
    let verify_reason = |secret: &'static str| async move {
        let api = BinaryApi::new(port, "");
        let answer = api
            .client
            .get(format!("{}/verify", api.base))
            .header("X-Verify-Secret", secret)
            .send()
            .await
            .unwrap();
        answer.headers()["x-certgate-reason"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        admin_status("first-admin-token-value").await,
        StatusCode::OK
    );
    assert_eq!(
        verify_reason("first-verify-secret-value").await,
        "missing_certificate"
    );

    std::fs::write(
        &tokens,
        "ops:second-admin-token-value,ci:third-admin-token-value\n",
    )
    .unwrap();
    std::fs::write(&secrets, "second-verify-secret-value\n").unwrap();
    server.signal("HUP");
    let reloaded = server.next_event("SIGHUP: secrets reloaded");
    assert_eq!(
        reloaded["admin_tokens_added"],
        json!("[\"ci\"]"),
        "{reloaded}"
    );
    assert_eq!(reloaded["admin_tokens_replaced"], json!("[\"ops\"]"));
    assert_eq!(reloaded["admin_tokens_removed"], json!("[]"));
    assert_eq!(reloaded["verify_secrets"], 1);
    assert_eq!(
        admin_status("first-admin-token-value").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        admin_status("second-admin-token-value").await,
        StatusCode::OK
    );
    assert_eq!(
        admin_status("third-admin-token-value").await,
        StatusCode::OK
    );
    assert_eq!(
        verify_reason("first-verify-secret-value").await,
        "invalid_verify_secret"
    );
    assert_eq!(
        verify_reason("second-verify-secret-value").await,
        "missing_certificate"
    );

    std::fs::remove_file(&tokens).unwrap();
    server.signal("HUP");
    let refused = server.next_event("SIGHUP: configuration: cannot read");
    assert!(refused.is_object());
    assert_eq!(
        admin_status("second-admin-token-value").await,
        StatusCode::OK
    );

    let log = server.stop();
    for value in [
        "first-admin",
        "second-admin",
        "third-admin",
        "verify-secret-value",
    ] {
        assert!(!log.contains(value), "{value} appears in the log:\n{log}");
    }
}
