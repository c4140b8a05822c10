//! What expires next: `expires_before` and `sort` on the agent and CA lists.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{TestApp, eventually, spawn_app_with};
use crate::pki::pki;

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&Rfc3339)
        .unwrap()
}

/// The hostnames of a list answer, in order.
async fn hostnames(app: &TestApp, query: &str) -> Vec<String> {
    let answer = app.list_agents(query).await;
    answer.assert_status(StatusCode::OK);
    answer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["hostname"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn agents_are_found_by_expiry_and_sorted_by_what_an_operator_asks() {
    let app = spawn_app_with(&[("CERTGATE_LAST_SEEN_FLUSH_MS", "100")]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let day = 86_400;
    let soon = pki().root.leaf("soon").expiring_in(5 * day).issue();
    let later = pki().root.leaf("later").expiring_in(40 * day).issue();
    let last = pki().root.leaf("last").expiring_in(400 * day).issue();
    for (cert, hostname) in [(&later, "Bravo"), (&soon, "charlie"), (&last, "alpha")] {
        app.enrol_agent(&serde_json::json!({
            "hostname": hostname, "certificate": cert.pem(), "ca_id": ca_id
        }))
        .await
        .assert_status(StatusCode::CREATED);
    }

    let within = |days| format!("expires_before={}", in_days(days));
    assert_eq!(hostnames(&app, &within(30)).await, ["charlie"]);
    assert_eq!(
        hostnames(&app, &format!("{}&sort=not_after", within(60))).await,
        ["charlie", "Bravo"]
    );
    assert_eq!(app.agent_total(&within(1)).await, 0);
    assert_eq!(
        hostnames(&app, "sort=not_after").await,
        ["charlie", "Bravo", "alpha"]
    );
    assert_eq!(
        hostnames(&app, "sort=-not_after").await,
        ["alpha", "Bravo", "charlie"]
    );
    assert_eq!(
        hostnames(&app, "sort=hostname").await,
        ["alpha", "Bravo", "charlie"],
        "case does not matter"
    );
    assert_eq!(
        hostnames(&app, "sort=-created_at").await,
        hostnames(&app, "").await,
        "newest first is the default"
    );
    assert_eq!(
        hostnames(&app, "sort=created_at").await,
        ["Bravo", "charlie", "alpha"]
    );
    let paged = app.list_agents("sort=not_after&limit=1&offset=1").await;
    assert_eq!(paged.body["items"][0]["hostname"], "Bravo");
    assert_eq!(paged.body["total"], 3);

    app.verify_escaped_pem(&later).await.assert_status(200);
    eventually(Duration::from_secs(6), || async {
        let agents = app.list_agents("sort=-last_seen_at").await;
        let first = &agents.body["items"][0];
        (first["hostname"] == "Bravo" && !first["last_seen_at"].is_null()).then_some(())
    })
    .await
    .expect("the agent seen comes first in -last_seen_at");
    let ascending = hostnames(&app, "sort=last_seen_at").await;
    assert_eq!(
        ascending.last().map(String::as_str),
        Some("Bravo"),
        "never seen first"
    );

    for bad in [
        "sort=colour",
        "sort=--not_after",
        "sort=name",
        "expires_before=soon",
        "expires_before=2026-02-30T00:00:00Z",
    ] {
        app.list_agents(bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
}

#[tokio::test]
async fn cas_are_found_by_expiry_and_sorted() {
    let app = spawn_app_with(&[]).await;
    for (ca, name) in [
        (&pki().root, "b-root"),
        (&pki().other_root, "A-other"),
        (&pki().rsa_root, "c-rsa"),
    ] {
        app.upload_ca(name, &ca.cert.pem())
            .await
            .assert_status(StatusCode::CREATED);
    }
    let names = |answer: Value| -> Vec<String> {
        answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ca| ca["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(app.get("/ca?sort=name").await.body),
        ["A-other", "b-root", "c-rsa"]
    );
    assert_eq!(
        names(app.get("/ca?sort=-name").await.body),
        ["c-rsa", "b-root", "A-other"]
    );

    let by_expiry = app.get("/ca?sort=not_after").await.body;
    let expiries: Vec<OffsetDateTime> = by_expiry["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ca| OffsetDateTime::parse(ca["not_after"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    assert!(expiries.windows(2).all(|w| w[0] <= w[1]), "{expiries:?}");
    let first = expiries[0].format(&Rfc3339).unwrap();
    let before_first = app.get(&format!("/ca?expires_before={first}")).await;
    assert_eq!(before_first.body["total"], 0, "exclusive");
    let far = app
        .get(&format!("/ca?expires_before={}", in_days(365 * 100)))
        .await;
    assert_eq!(far.body["total"], 3);

    for bad in [
        "sort=hostname",
        "sort=last_seen_at",
        "expires_before=tomorrow",
    ] {
        app.get(&format!("/ca?{bad}"))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    }
}
