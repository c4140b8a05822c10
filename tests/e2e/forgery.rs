//! Clients that send identity headers of their own: certgate believes every identity header
//! name it knows in these tests, so only the recipe stands between a forged header and
//! certgate, and between a forged `X-Agent-*` header and the application. The client's
//! address is forged too, against agents restricted by `allowed_ips`.

use crate::harness::Stack;
use crate::harness::client::Client;
use crate::harness::pki::Leaf;
use crate::harness::sidecar::Agent;
use crate::scenarios::{Agents, assert_passes_as, assert_refused};

/// One way of claiming to be someone else.
struct Forgery {
    what: &'static str,
    headers: Vec<(&'static str, String)>,
}

/// Every spelling of `victim`'s identity a proxy could send certgate, and the identity
/// headers certgate sends the application.
fn forgeries(leaf: &Leaf, victim: &Agent) -> Vec<Forgery> {
    let forgery = |what, headers: &[(&'static str, String)]| Forgery {
        what,
        headers: headers.to_vec(),
    };
    let sha1 = leaf.cert.sha1_hex();
    let sha256 = leaf.cert.sha256_hex();
    let b64 = leaf.cert.der_base64();
    let escaped = leaf.cert.nginx_escaped();
    let mut list = vec![
        forgery(
            "X-Client-Cert-Fingerprint: SHA-1",
            &[("X-Client-Cert-Fingerprint", sha1.clone())],
        ),
        forgery(
            "X-Client-Cert-Fingerprint: sha256:",
            &[("X-Client-Cert-Fingerprint", format!("sha256:{sha256}"))],
        ),
        forgery(
            "X-Client-Cert: escaped PEM",
            &[("X-Client-Cert", escaped.clone())],
        ),
        forgery(
            "X-Client-Cert: base64 DER",
            &[("X-Client-Cert", b64.clone())],
        ),
        forgery(
            "X-Forwarded-Tls-Client-Cert",
            &[("X-Forwarded-Tls-Client-Cert", b64.clone())],
        ),
        forgery(
            "X-Forwarded-Client-Cert",
            &[(
                "X-Forwarded-Client-Cert",
                format!("By=spiffe://e2e.test/proxy;Hash={sha256};Cert=\"{escaped}\""),
            )],
        ),
        forgery("Client-Cert", &[("Client-Cert", format!(":{b64}:"))]),
        forgery(
            "Client-Cert-Chain",
            &[("Client-Cert-Chain", format!(":{b64}:"))],
        ),
        forgery(
            "X-Client-Verify: SUCCESS with a SHA-1 fingerprint",
            &[
                ("X-Client-Verify", "SUCCESS".to_owned()),
                ("X-Client-Cert-Fingerprint", sha1.clone()),
            ],
        ),
        forgery(
            "X-Agent-Id, X-Agent-Hostname, X-Agent-Tags",
            &[
                ("X-Agent-Id", victim.id.clone()),
                ("X-Agent-Hostname", victim.hostname.clone()),
                ("X-Agent-Tags", victim.tags.join(",")),
            ],
        ),
        forgery(
            "X_Agent_Id, X-Agent_Hostname, X_Agent-Tags (underscore spellings)",
            &[
                ("X_Agent_Id", victim.id.clone()),
                ("X-Agent_Hostname", victim.hostname.clone()),
                ("X_Agent-Tags", victim.tags.join(",")),
            ],
        ),
        forgery(
            "X_Client_Cert, X_Client_Cert_Fingerprint (underscore spellings)",
            &[
                ("X_Client_Cert", escaped.clone()),
                ("X_Client_Cert_Fingerprint", sha1.clone()),
            ],
        ),
        forgery(
            "X-Verify-Secret and X_Verify_Secret",
            &[
                ("X-Verify-Secret", "change-me".to_owned()),
                ("X_Verify_Secret", "change-me".to_owned()),
            ],
        ),
    ];
    let everything = list.iter().flat_map(|f| f.headers.clone()).collect();
    list.push(Forgery {
        what: "all of them at once",
        headers: everything,
    });
    list
}

/// Without a certificate, with an unenrolled one, and with an enrolled one of its own, a
/// client that forges another agent's identity never gets it.
pub async fn forged_identity_headers_are_ignored(stack: &Stack, port: u16, agents: &Agents) {
    let pki = &stack.pki;
    let forgeries = forgeries(&pki.victim, &agents.victim);

    let anonymous = Client::new(pki, port, None);
    let unenrolled = Client::new(pki, port, Some(&pki.unenrolled));
    let own = Client::new(pki, port, Some(&pki.enrolled));
    for forgery in &forgeries {
        let what = forgery.what;
        assert_refused(
            stack,
            &anonymous,
            &forgery.headers,
            &format!("no certificate, forged {what}"),
        )
        .await;
        assert_refused(
            stack,
            &unenrolled,
            &forgery.headers,
            &format!("unenrolled certificate, forged {what}"),
        )
        .await;
        assert_passes_as(
            &own,
            &forgery.headers,
            &agents.enrolled,
            &format!("own enrolled certificate, forged {what}"),
        )
        .await;
    }
}

/// certgate reads the client IP from `X-Real-IP`, then `X-Forwarded-For`: the recipe must
/// set them from the connection, so a client can neither borrow an allowed address nor
/// lose its own.
pub async fn forged_client_address_is_ignored(stack: &Stack, port: u16, agents: &Agents) {
    const ELSEWHERE: &str = "192.0.2.7";
    let (pki, certgate) = (&stack.pki, &stack.certgate);
    let root = &agents.root_ca;
    let loopback = certgate
        .enrol_from(&pki.loopback_only, root, &["e2e"], Some(&["127.0.0.1/32"]))
        .await;
    certgate
        .enrol_from(&pki.elsewhere_only, root, &["e2e"], Some(&[ELSEWHERE]))
        .await;
    let forged = [
        ("X-Real-IP", ELSEWHERE.to_owned()),
        ("X-Forwarded-For", ELSEWHERE.to_owned()),
    ];

    let client = Client::new(pki, port, Some(&pki.loopback_only));
    assert_passes_as(&client, &[], &loopback, "agent allowed from 127.0.0.1").await;
    assert_passes_as(
        &client,
        &forged,
        &loopback,
        "agent allowed from 127.0.0.1, forged address",
    )
    .await;

    let client = Client::new(pki, port, Some(&pki.elsewhere_only));
    assert_refused(stack, &client, &[], "agent allowed from elsewhere only").await;
    assert_refused(
        stack,
        &client,
        &forged,
        "agent allowed from elsewhere only, forging that address",
    )
    .await;
}
