//! A certificate is its issuer and serial number: another encoding of an enrolled
//! certificate is judged as that agent's, in every policy mode, and cannot be enrolled.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::pki::{TestCert, pki};

/// The modes in which certgate judges an unknown certificate itself, and the default.
const MODES: [(&str, bool, bool); 3] = [
    ("reject_unknown_certs on", true, false),
    ("reject_unknown_certs off", false, false),
    ("auto_enroll on", true, true),
];

/// What a twin of an agent in each state is refused for.
const STATES: [(&str, &str); 4] = [
    ("active", "fingerprint_mismatch"),
    ("disabled", "agent_disabled"),
    ("revoked", "agent_revoked"),
    ("ca_removed", "ca_removed"),
];

fn twins(cert: &TestCert) -> Vec<(&'static str, TestCert)> {
    vec![
        ("ECDSA (r, n - s)", ecdsa_twin(cert)),
        ("long-form outer length", cert.long_form_twin()),
        ("indefinite outer length", cert.indefinite_twin()),
    ]
}

/// The same certificate with the other valid ECDSA signature: DER, another fingerprint.
fn ecdsa_twin(cert: &TestCert) -> TestCert {
    TestCert::from_der(crate::forge::ecdsa_twin(&cert.der), &cert.cn)
}

/// An agent in `state`, its certificate issued by the test root or (for `ca_removed`) by an
/// intermediate uploaded as a CA and then removed.
async fn agent_in(app: &TestApp, state: &str) -> (TestCert, Value) {
    let (cert, ca_id) = if state == "ca_removed" {
        let ca_id = app.add_ca(&pki().intermediate).await;
        (
            pki().intermediate.leaf(&format!("{state}.test")).issue(),
            ca_id,
        )
    } else {
        let ca_id = app.add_ca(&pki().root).await;
        (pki().root.leaf(&format!("{state}.test")).issue(), ca_id)
    };
    let agent = app.enrol(&cert, &ca_id).await;
    let id = agent["id"].as_str().unwrap();
    match state {
        "disabled" => {
            app.toggle_agent(id, Some(false))
                .await
                .assert_status(StatusCode::OK);
        }
        "revoked" => {
            app.revoke_agent(id)
                .await
                .assert_status(StatusCode::NO_CONTENT);
        }
        "ca_removed" => {
            app.delete_ca(&ca_id)
                .await
                .assert_status(StatusCode::NO_CONTENT);
            // The root stays trusted: the twin would chain through the intermediate.
            app.add_ca(&pki().root).await;
        }
        _ => {}
    }
    (cert, agent)
}

#[tokio::test]
async fn a_twin_is_judged_as_its_agent_in_every_mode_and_header_format() {
    let mut failures = Vec::new();
    for (state, reason) in STATES {
        let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
        let (cert, _) = agent_in(&app, state).await;
        let chain = pki().intermediate.cert.der_base64();
        for (mode, reject_unknown, auto_enroll) in MODES {
            app.put_config(
                json!({"reject_unknown_certs": reject_unknown, "auto_enroll": auto_enroll}),
            )
            .await;
            for (kind, twin) in twins(&cert) {
                let spellings: Vec<(&str, Vec<(&str, String)>)> = vec![
                    (
                        "X-Client-Cert base64",
                        vec![("X-Client-Cert", twin.der_base64())],
                    ),
                    (
                        "Traefik with the chain",
                        vec![(
                            "X-Forwarded-Tls-Client-Cert",
                            format!("{},{chain}", twin.der_base64()),
                        )],
                    ),
                    ("RFC 9440", vec![("Client-Cert", twin.sf_binary())]),
                ];
                for (format, headers) in spellings {
                    let headers: Vec<(&str, &str)> =
                        headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                    let answer = app.verify(&headers).await;
                    if (answer.status, answer.reason()) != (403, Some(reason)) {
                        failures.push(format!(
                            "{state} agent, {mode}, {kind}, {format}: expected {reason}, got {} {:?}",
                            answer.status,
                            answer.reason()
                        ));
                    }
                }
            }
        }
        let total = app.agent_total("include_revoked=true").await;
        if total != 1 {
            failures.push(format!("{state}: a twin was enrolled ({total} agents)"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn enrolment_refuses_a_certificate_whose_identity_is_held() {
    let app = spawn_app_with(&[]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let active = pki().root.leaf("active.test").issue();
    app.enrol(&active, &ca_id).await;
    let revoked = pki().root.leaf("revoked.test").issue();
    let revoked_agent = app.enrol(&revoked, &ca_id).await;
    app.revoke_agent(revoked_agent["id"].as_str().unwrap())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    // The CA issued another certificate (another key) with the active agent's serial.
    let serial = x509_parser::parse_x509_certificate(&active.der)
        .unwrap()
        .1
        .raw_serial()
        .to_vec();
    let reused = pki().root.leaf("reused.test").serial(&serial).issue();
    let cases = [
        (
            "the same certificate again",
            active.clone(),
            StatusCode::CONFLICT,
            "already_enrolled",
        ),
        (
            "a revoked one again",
            revoked.clone(),
            StatusCode::CONFLICT,
            "certificate_revoked",
        ),
        (
            "the serial of an enrolled one",
            reused.clone(),
            StatusCode::CONFLICT,
            "serial_in_use",
        ),
        // A re-encoding is not DER: refused for that before its identity is looked at.
        (
            "a re-encoding of an enrolled one",
            active.long_form_twin(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
        (
            "a re-encoding of a revoked one",
            revoked.indefinite_twin(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
    ];
    let mut failures = Vec::new();
    for (name, cert, status, code) in cases {
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", cert.der.clone()));
        let response = app
            .enrol_agent(&json!({"hostname": "twin.test", "certificate": pem, "ca_id": ca_id}))
            .await;
        if (response.status, response.code()) != (status, Some(code)) {
            failures.push(format!(
                "{name}: expected {status} {code}, got {response:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(app.agent_total("include_revoked=true").await, 2);
    // The reused serial is refused on verify as the agent's, not as an unknown certificate.
    app.put_config(json!({"reject_unknown_certs": false})).await;
    app.verify_escaped_pem(&reused)
        .await
        .assert_denied(403, "fingerprint_mismatch");
}

#[tokio::test]
async fn identities_of_rows_written_before_they_were_recorded_are_filled_in_at_start() {
    let mut app = spawn_app_with(&[]).await;
    let ca_id = app.add_ca(&pki().root).await;
    let cert = pki().root.leaf("old.test").issue();
    let agent = app.enrol(&cert, &ca_id).await;
    app.revoke_agent(agent["id"].as_str().unwrap())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.db
        .execute("UPDATE agents SET issuer_serial = NULL")
        .await;
    app.restart().await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    for twin in twins(&cert) {
        app.verify(&[("X-Client-Cert", &twin.1.der_base64())])
            .await
            .assert_denied(403, "agent_revoked");
    }
}
