//! The web console's files as certgate serves them: every one the pages load, with headers
//! that let them run nothing but themselves; the API's base path handed to the pages; and
//! the switch that turns the console off.

use std::collections::BTreeSet;

use crate::helpers::spawn_app_with;

/// The files `text` refers to: `src="…"`, `href="…"` and `from "./…"`, relative ones only.
fn referenced(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["src=\"", "href=\"", "from \"./"] {
        for piece in text.split(marker).skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            if !name.is_empty() && !name.contains(':') && !name.starts_with('#') {
                found.push(name.trim_start_matches("./").to_owned());
            }
        }
    }
    found
}

#[tokio::test]
async fn every_console_file_is_served_with_its_type_and_a_strict_policy() {
    let app = spawn_app_with(&[]).await;
    let client = reqwest::Client::new();
    let root = format!("http://127.0.0.1:{}/console", app.port);

    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/console/");

    let mut pending = vec![String::new()];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let answer = client.get(format!("{root}/{name}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{name}");
        let headers = answer.headers().clone();
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("default-src 'none'")
                && policy.contains("script-src 'self'")
                && policy.contains("frame-ancestors 'none'")
                && !policy.contains("unsafe"),
            "{name}: {policy}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{name}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{name}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{name}");
        let expected_type = match name.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            _ => "text/html",
        };
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(expected_type),
            "{name}"
        );
        let text = answer.text().await.unwrap();
        assert!(
            !text.contains("innerHTML") && !text.contains("eval("),
            "{name} builds markup from strings"
        );
        pending.extend(referenced(&text));
    }
    assert!(seen.len() >= 11, "{seen:?}");

    let missing = client.get(format!("{root}/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn the_pages_are_told_the_api_base_path() {
    let app = spawn_app_with(&[("CERTGATE_BASE_PATH", "/mtls-api")]).await;
    let index = reqwest::get(format!("http://127.0.0.1:{}/console/", app.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        index.contains(r#"<meta name="certgate-base-path" content="/mtls-api">"#),
        "{index}"
    );
}

#[tokio::test]
async fn the_console_can_be_turned_off_or_moved() {
    let off = spawn_app_with(&[("CERTGATE_CONSOLE", "false")]).await;
    let answer = reqwest::get(format!("http://127.0.0.1:{}/console/", off.port))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);

    let moved = spawn_app_with(&[("CERTGATE_CONSOLE_PATH", "/ops/console")]).await;
    let answer = reqwest::get(format!(
        "http://127.0.0.1:{}/ops/console/app.js",
        moved.port
    ))
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
}
