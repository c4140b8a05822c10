//! What the public listener must never reach: verify (a client must not make certgate vouch
//! for anyone), certgate with a client's bearer token or cookie (a guessed admin token must
//! not be confirmable), under any spelling of the path. And an application outage is not
//! blamed on authentication.

use crate::harness::Stack;
use crate::harness::client::Client;
use crate::scenarios::Agents;

const BASE: &str = "/api/ext/cockpit-enterprise/mtls";

/// Spellings of `B/verify` a proxy may match differently from certgate.
const VERIFY_SPELLINGS: [&str; 6] = [
    "/verify",
    "/verify/",
    "//verify",
    "/%76erify",
    "/agents/..%2Fverify",
    "/VERIFY",
];

/// A client without a certificate (where the recipe lets one in), and one with its own
/// enrolled certificate, post the seed's JSON form naming the victim, with an address of
/// their choosing: certgate never takes it as a verify call.
pub async fn verify_is_not_reachable(stack: &Stack, port: u16, agents: &Agents) {
    const FORGED_IP: &str = "198.51.100.9";
    let pki = &stack.pki;
    let body = serde_json::json!({
        "fingerprint": format!("sha256:{}", pki.victim.cert.sha256_hex()),
        "ip": FORGED_IP,
    })
    .to_string();
    for client in [
        Client::new(pki, port, None),
        Client::new(pki, port, Some(&pki.enrolled)),
    ] {
        for spelling in VERIFY_SPELLINGS {
            let path = format!("{BASE}{spelling}");
            let Some((status, answer)) = client.try_post_to(&path, &[], &body).await else {
                continue; // the handshake itself refused a client without a certificate
            };
            assert!(
                !answer.contains("\"verified\""),
                "POST {path}: {status} {answer}"
            );
            if let Some((status, answer)) = client.try_get_path(&path, &[]).await {
                assert!(
                    !answer.contains("\"verified\""),
                    "GET {path}: {status} {answer}"
                );
            }
        }
    }
    let victim = stack.certgate.agent(&agents.victim).await;
    assert_ne!(
        victim["last_seen_ip"].as_str(),
        Some(FORGED_IP),
        "a client's body was read as a verify call: {victim}"
    );
}

/// Through the public listener, the real admin token, a wrong one and none give the same
/// answer on every path, spelled in every way: certgate never sees a client's
/// `Authorization` (nor its `Cookie`).
pub async fn bearer_tokens_are_useless_from_outside(stack: &Stack, port: u16) {
    let pki = &stack.pki;
    let right = format!("Bearer {}", stack.certgate.admin_token());
    let paths = [
        "/agents",
        "//agents",
        "/%61gents",
        "/config",
        "/ca",
        "/agents/..%2Fenroll%2Frequests%2Fstatus%2Fx",
        "/agents/..%2Frenew",
        "/enroll/requests/status/x",
        "/%76erify",
        "/renew",
        "/enroll",
        "/enroll/requests",
    ];
    for client in [
        Client::new(pki, port, None),
        Client::new(pki, port, Some(&pki.enrolled)),
    ] {
        for path in paths {
            let path = format!("{BASE}{path}");
            let mut answers = Vec::new();
            for token in [right.as_str(), "Bearer not-the-token", ""] {
                let mut headers = vec![("Cookie", format!("session={token}"))];
                if !token.is_empty() {
                    headers.push(("Authorization", token.to_owned()));
                }
                let get = client.try_get_path(&path, &headers).await;
                let post = client.try_post_to(&path, &headers, "{}").await;
                for (method, answer) in [("GET", &get), ("POST", &post)] {
                    if let Some((status, body)) = answer {
                        assert!(
                            !body.contains("\"items\"")
                                && !body.contains("\"enforcement_enabled\""),
                            "{method} {path} with {token:?}: {status} {body}"
                        );
                    }
                }
                answers.push((get.map(|a| a.0), post.map(|a| a.0)));
            }
            assert!(
                answers.windows(2).all(|pair| pair[0] == pair[1]),
                "{path}: answers differ with the right token, a wrong one and none: {answers:?}"
            );
        }
    }
}

/// The application down: the client hears so, not that authentication failed.
pub async fn application_outage_is_not_blamed_on_authentication(stack: &Stack, port: u16) {
    let client = Client::new(&stack.pki, port, Some(&stack.pki.enrolled));
    stack.upstream.stop().await;
    let (status, body) = client
        .try_get_path("/app/resource", &[])
        .await
        .expect("an HTTP answer");
    assert!((500..600).contains(&status), "{status} {body}");
    assert!(
        !body.to_lowercase().contains("authentication") && !body.contains("certificate"),
        "{status} {body}"
    );
}
