//! RFC 5280 path validation through the HTTP API: every case a strict verifier refuses,
//! judged on verify (unknown certificates allowed, and auto-enrolment) in every header
//! format that carries a chain, and on enrolment. Each row names the exact reason.

use rcgen::{
    BasicConstraints, CustomExtension, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints,
};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::forge::{self, NonDer, RsaCa, RsaKey, WeakOr};
use crate::helpers::{TestApp, spawn_app_with};
use crate::pki::{TestCa, TestCert, now, pki};

/// An RSA root whose signatures the tests can make over any bytes (SHA-1, MD5, re-signed
/// encodings DER forbids), uploaded next to the test root.
fn rsa_root() -> &'static RsaCa {
    static ROOT: std::sync::LazyLock<RsaCa> = std::sync::LazyLock::new(|| {
        RsaCa::root(
            "certgate forged RSA root",
            2048,
            now() - Duration::days(1),
            now() + Duration::days(365),
        )
    });
    &ROOT
}

fn forged(der: Vec<u8>, cn: &str) -> TestCert {
    TestCert::from_der(der, cn)
}

fn rsa_leaf(cn: &str) -> Vec<u8> {
    rsa_root().leaf(forge::leaf_params(
        cn,
        now() - Duration::hours(1),
        now() + Duration::days(30),
    ))
}

/// A leaf under the RSA root whose own key is RSA-1024.
fn rsa_1024_leaf(cn: &str) -> Vec<u8> {
    forge::leaf_params(cn, now() - Duration::hours(1), now() + Duration::days(30))
        .signed_by(
            &RsaKey::generate(1024).key_pair(),
            &rsa_root().cert,
            &rsa_root().key,
        )
        .unwrap()
        .der()
        .to_vec()
}

/// One presented leaf and the certificates the client sent after it.
struct Presented {
    leaf: TestCert,
    chain: Vec<TestCert>,
}

/// A row: what is presented under the shared root, and the reason verify gives (`None`:
/// allowed).
struct Row {
    name: &'static str,
    presented: Presented,
    reason: Option<&'static str>,
}

fn leaf_of(ca: &TestCa, cn: &str) -> TestCert {
    ca.leaf(cn).issue()
}

fn row(
    name: &'static str,
    leaf: TestCert,
    chain: Vec<&TestCa>,
    reason: Option<&'static str>,
) -> Row {
    Row {
        name,
        presented: Presented {
            leaf,
            chain: chain.into_iter().map(|ca| ca.cert.clone()).collect(),
        },
        reason,
    }
}

fn rows() -> Vec<Row> {
    let root = &pki().root;
    let expired = root.child("expired intermediate", |p| {
        p.not_before = now() - Duration::days(60);
        p.not_after = now() - Duration::days(1);
    });
    let future = root.child("future intermediate", |p| {
        p.not_before = now() + Duration::days(1);
    });
    let no_cert_sign = root.child("no keyCertSign intermediate", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let len0 = root.child("pathLen 0 intermediate", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let below_len0 = len0.child("below pathLen 0", |_| {});
    let server_only = root.child("serverAuth intermediate", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let constrained = root.child("constrained intermediate", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("allowed.test".into())],
            excluded_subtrees: vec![],
        });
    });
    let inter = root.child("cross-signed intermediate", |_| {});
    let cross = TestCa::new_root("untrusted cross-signer", |_| {}).child_with_key(
        "cross-signed intermediate",
        KeyPair::try_from(inter.key_der().as_slice()).unwrap(),
        |_| {},
    );
    let loop_ca = TestCa::new_root("loop", |_| {});
    let looped = loop_ca.child_with_key(
        "cross-signed intermediate",
        KeyPair::try_from(inter.key_der().as_slice()).unwrap(),
        |_| {},
    );
    let loop_back = inter.child_with_key(
        "loop",
        KeyPair::try_from(loop_ca.key_der().as_slice()).unwrap(),
        |_| {},
    );
    let mut depth = vec![root.child("depth 1", |_| {})];
    for n in 2..=7 {
        let next = depth.last().unwrap().child(&format!("depth {n}"), |_| {});
        depth.push(next);
    }
    let mut unknown = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
    unknown.set_criticality(true);
    vec![
        row(
            "direct under the stored root",
            leaf_of(root, "direct.test"),
            vec![],
            None,
        ),
        row(
            "expired leaf",
            root.leaf("expired.test").expired().issue(),
            vec![],
            Some("certificate_expired"),
        ),
        row(
            "leaf not valid yet",
            root.leaf("future.test").not_yet_valid().issue(),
            vec![],
            Some("certificate_not_yet_valid"),
        ),
        row(
            "expired intermediate",
            leaf_of(&expired, "under-expired.test"),
            vec![&expired],
            Some("ca_expired"),
        ),
        row(
            "intermediate not valid yet",
            leaf_of(&future, "under-future.test"),
            vec![&future],
            Some("ca_expired"),
        ),
        row(
            "intermediate whose keyUsage lacks keyCertSign",
            leaf_of(&no_cert_sign, "under-no-cert-sign.test"),
            vec![&no_cert_sign],
            Some("untrusted_issuer"),
        ),
        row(
            "a path longer than an intermediate's pathLenConstraint",
            leaf_of(&below_len0, "below-len0.test"),
            vec![&below_len0, &len0],
            Some("untrusted_issuer"),
        ),
        row(
            "intermediate restricted to serverAuth",
            leaf_of(&server_only, "under-server-only.test"),
            vec![&server_only],
            Some("wrong_key_usage"),
        ),
        row(
            "leaf with CA:TRUE",
            root.leaf("ca-leaf.test")
                .tweak(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained))
                .issue(),
            vec![],
            Some("wrong_key_usage"),
        ),
        row(
            "leaf with serverAuth only",
            root.leaf("server.test").server_auth_only().issue(),
            vec![],
            Some("wrong_key_usage"),
        ),
        row(
            "leaf with an unknown critical extension",
            root.leaf("critical.test")
                .tweak(move |p| p.custom_extensions = vec![unknown])
                .issue(),
            vec![],
            Some("malformed_certificate"),
        ),
        row(
            "SAN outside the intermediate's permitted subtree",
            constrained.leaf("evil.test").issue(),
            vec![&constrained],
            Some("untrusted_issuer"),
        ),
        row(
            "SAN inside the intermediate's permitted subtree",
            constrained.leaf("host.allowed.test").issue(),
            vec![&constrained],
            None,
        ),
        row(
            "cross-signed duplicate presented before the trusted intermediate",
            leaf_of(&inter, "cross.test"),
            vec![&cross, &inter],
            None,
        ),
        row(
            "a loop presented before the real path",
            leaf_of(&inter, "loop.test"),
            vec![&looped, &loop_back, &inter],
            None,
        ),
        row(
            "six intermediates",
            leaf_of(&depth[5], "depth6.test"),
            depth[..6].iter().rev().collect(),
            None,
        ),
        row(
            "seven intermediates",
            leaf_of(&depth[6], "depth7.test"),
            depth[..7].iter().rev().collect(),
            Some("untrusted_issuer"),
        ),
        row(
            "SHA-256 signature of the RSA root",
            forged(rsa_leaf("rsa.test"), "rsa.test"),
            vec![],
            None,
        ),
        row(
            "SHA-1 signature",
            forged(
                rsa_root().signed_with(&rsa_leaf("sha1.test"), WeakOr::Sha1),
                "sha1.test",
            ),
            vec![],
            Some("weak_crypto"),
        ),
        row(
            "MD5 signature",
            forged(
                rsa_root().signed_with(&rsa_leaf("md5.test"), WeakOr::Md5),
                "md5.test",
            ),
            vec![],
            Some("weak_crypto"),
        ),
        row(
            "RSA-1024 key in the leaf",
            forged(rsa_1024_leaf("rsa1024.test"), "rsa1024.test"),
            vec![],
            Some("weak_crypto"),
        ),
        Row {
            name: "RSA-1024 intermediate",
            presented: {
                let weak = RsaCa::under(
                    "RSA-1024 intermediate",
                    1024,
                    (&rsa_root().cert, &rsa_root().key),
                    now() - Duration::days(1),
                    now() + Duration::days(30),
                );
                let leaf = weak.leaf(forge::leaf_params(
                    "under-rsa1024.test",
                    now() - Duration::hours(1),
                    now() + Duration::days(30),
                ));
                Presented {
                    leaf: forged(leaf, "under-rsa1024.test"),
                    chain: vec![forged(weak.der(), "RSA-1024 intermediate")],
                }
            },
            reason: Some("weak_crypto"),
        },
        row(
            "a leaf of an unrelated root, with that root presented",
            leaf_of(&pki().other_root, "rogue.test"),
            vec![&pki().other_root],
            Some("untrusted_issuer"),
        ),
    ]
    .into_iter()
    .chain(NonDer::ALL.into_iter().map(|way| {
        let der = forge::non_der(&rsa_leaf("non-der.test"), way, Some(rsa_root()));
        Row {
            name: Box::leak(format!("not DER: {way:?}").into_boxed_str()),
            presented: Presented {
                leaf: forged(der, "non-der.test"),
                chain: vec![],
            },
            reason: Some("malformed_certificate"),
        }
    }))
    .collect()
}

/// Every way a proxy forwards a leaf with its chain.
fn spellings(presented: &Presented) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let Presented { leaf, chain } = presented;
    let pems: String = std::iter::once(leaf)
        .chain(chain)
        .map(TestCert::pem)
        .collect();
    let escaped = crate::support::escape::nginx_escaped;
    let mut spellings = vec![
        (
            "X-Client-Cert, PEM bundle percent-encoded",
            vec![("X-Client-Cert", escaped(&pems))],
        ),
        (
            "Traefik",
            vec![(
                "X-Forwarded-Tls-Client-Cert",
                std::iter::once(leaf)
                    .chain(chain)
                    .map(TestCert::der_base64)
                    .collect::<Vec<_>>()
                    .join(","),
            )],
        ),
        (
            "Envoy XFCC",
            vec![(
                "X-Forwarded-Client-Cert",
                format!(
                    "Hash={};Cert=\"{}\";Chain=\"{}\"",
                    leaf.sha256_hex(),
                    leaf.nginx_escaped(),
                    escaped(&pems)
                ),
            )],
        ),
    ];
    let mut rfc9440 = vec![("Client-Cert", leaf.sf_binary())];
    if !chain.is_empty() {
        rfc9440.push((
            "Client-Cert-Chain",
            chain
                .iter()
                .map(TestCert::sf_binary)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    spellings.push(("RFC 9440", rfc9440));
    if chain.is_empty() {
        spellings.push((
            "Caddy base64 DER",
            vec![("X-Client-Cert", leaf.der_base64())],
        ));
    }
    spellings
}

async fn app() -> TestApp {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    app.add_ca(&pki().root).await;
    let pem = forge_pem(&rsa_root().der());
    app.upload_ca("forged RSA root", &pem)
        .await
        .assert_status(StatusCode::CREATED);
    app
}

fn forge_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

#[tokio::test]
async fn unknown_certificates_are_judged_by_rfc_5280_in_every_header_format() {
    let app = app().await;
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let mut failures = Vec::new();
    for row in rows() {
        for (format, headers) in spellings(&row.presented) {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let answer = app.verify(&headers).await;
            let got = (answer.status, answer.reason().map(str::to_owned));
            let expected = match row.reason {
                None => (200, None),
                Some(reason) => (403, Some(reason.to_owned())),
            };
            if got != expected {
                failures.push(format!(
                    "{} ({format}): expected {expected:?}, got {got:?}",
                    row.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn auto_enrolment_enrols_only_what_validates() {
    let app = app().await;
    app.put_config(json!({"auto_enroll": true})).await;
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        // Traefik carries the chain; one format is enough to enrol, the table above covers
        // the others.
        let (_, headers) = spellings(&row.presented).remove(1);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = app.verify(&headers).await;
        let got = (answer.status, answer.reason().map(str::to_owned));
        let expected = match row.reason {
            None => (200, None),
            Some(reason) => (403, Some(reason.to_owned())),
        };
        if got != expected {
            failures.push(format!("{}: expected {expected:?}, got {got:?}", row.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let allowed = rows.iter().filter(|row| row.reason.is_none()).count();
    assert_eq!(
        app.agent_total("tag=auto-enrolled").await,
        allowed as i64,
        "exactly the certificates that validate were enrolled"
    );
}

#[tokio::test]
async fn enrolment_applies_the_same_validation() {
    let app = app().await;
    let root_id = app.add_ca(&pki().other_root).await;
    let other = &pki().other_root;
    let mut unknown = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
    unknown.set_criticality(true);
    let cases: Vec<(&str, TestCert, StatusCode, &str)> = vec![
        (
            "expired",
            other.leaf("expired.test").expired().issue(),
            StatusCode::BAD_REQUEST,
            "certificate_expired",
        ),
        (
            "not valid yet",
            other.leaf("future.test").not_yet_valid().issue(),
            StatusCode::BAD_REQUEST,
            "certificate_not_yet_valid",
        ),
        (
            "serverAuth only",
            other.leaf("server.test").server_auth_only().issue(),
            StatusCode::BAD_REQUEST,
            "wrong_key_usage",
        ),
        (
            "CA:TRUE leaf",
            other
                .leaf("ca.test")
                .tweak(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained))
                .issue(),
            StatusCode::BAD_REQUEST,
            "wrong_key_usage",
        ),
        (
            "unknown critical extension",
            other
                .leaf("critical.test")
                .tweak(move |p| p.custom_extensions = vec![unknown])
                .issue(),
            StatusCode::BAD_REQUEST,
            "invalid_certificate",
        ),
        (
            "issued by another CA",
            pki().root.leaf("elsewhere.test").issue(),
            StatusCode::BAD_REQUEST,
            "issuer_mismatch",
        ),
    ];
    let mut failures = Vec::new();
    for (name, cert, status, code) in cases {
        let response = app
            .enrol_agent(&json!({"hostname": cert.cn, "certificate": cert.pem(), "ca_id": root_id}))
            .await;
        if (response.status, response.code()) != (status, Some(code)) {
            failures.push(format!(
                "{name}: expected {status} {code}, got {response:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let good = other.leaf("good.test").issue();
    app.enrol(&good, &root_id).await;

    let cas = app.get("/ca").await.body;
    let rsa_id = cas["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ca| ca["name"] == "forged RSA root")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut forged_cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "SHA-1".into(),
            rsa_root().signed_with(&rsa_leaf("sha1.test"), WeakOr::Sha1),
            "weak_crypto",
        ),
        (
            "RSA-1024 key".into(),
            rsa_1024_leaf("weak.test"),
            "weak_crypto",
        ),
    ];
    for way in NonDer::ALL {
        forged_cases.push((
            format!("{way:?}"),
            forge::non_der(&rsa_leaf("non-der.test"), way, Some(rsa_root())),
            "invalid_certificate",
        ));
    }
    for (name, der, code) in forged_cases {
        let response = app
            .enrol_agent(&json!({"hostname": "forged.test", "certificate": forge_pem(&der), "ca_id": rsa_id}))
            .await;
        if (response.status, response.code()) != (StatusCode::BAD_REQUEST, Some(code)) {
            failures.push(format!("{name}: expected 400 {code}, got {response:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn ca_uploads_follow_the_rules_for_an_anchor() {
    let app = spawn_app_with(&[]).await;
    let mut unknown = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
    unknown.set_criticality(true);
    let cases: Vec<(&str, TestCa, StatusCode, Option<&str>)> = vec![
        (
            "expired root",
            TestCa::new_root("expired root", |p| {
                p.not_before = now() - Duration::days(60);
                p.not_after = now() - Duration::days(1);
            }),
            StatusCode::BAD_REQUEST,
            Some("certificate_expired"),
        ),
        (
            "keyUsage without keyCertSign",
            TestCa::new_root("no keyCertSign root", |p| {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
            }),
            StatusCode::BAD_REQUEST,
            Some("not_a_ca"),
        ),
        (
            "unknown critical extension",
            TestCa::new_root("odd root", move |p| p.custom_extensions = vec![unknown]),
            StatusCode::BAD_REQUEST,
            Some("invalid_certificate"),
        ),
        (
            "not valid yet: may be staged",
            TestCa::new_root("future root", |p| p.not_before = now() + Duration::days(1)),
            StatusCode::CREATED,
            None,
        ),
    ];
    let (from, until) = (now() - Duration::days(1), now() + Duration::days(365));
    let weak_root = RsaCa::root("RSA-1024 root", 1024, from, until);
    let sha1_root = RsaCa::root("SHA-1 root", 2048, from, until);
    let forged_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("RSA-1024 root", weak_root.der(), "weak_crypto"),
        (
            "root signed with SHA-1",
            sha1_root.signed_with(&sha1_root.der(), WeakOr::Sha1),
            "weak_crypto",
        ),
        (
            "root not in DER",
            forge::non_der(&sha1_root.der(), NonDer::SerialPadded, Some(&sha1_root)),
            "invalid_certificate",
        ),
        (
            "root with a padded outer length",
            forge::non_der(&sha1_root.der(), NonDer::OuterLengthPadded, None),
            "invalid_certificate",
        ),
    ];
    let mut failures = Vec::new();
    for (name, der, code) in forged_cases {
        let response = app.upload_ca(name, &forge_pem(&der)).await;
        if (response.status, response.code()) != (StatusCode::BAD_REQUEST, Some(code)) {
            failures.push(format!("{name}: expected 400 {code}, got {response:?}"));
        }
    }
    for (name, ca, status, code) in cases {
        let response = app.upload_ca(name, &ca.cert.pem()).await;
        if response.status != status || code.is_some_and(|code| response.code() != Some(code)) {
            failures.push(format!(
                "{name}: expected {status} {code:?}, got {response:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(app.ca_total().await, 1, "only the staged CA is stored");
}

#[tokio::test]
async fn an_expired_ca_locks_its_agents_out_as_ca_expired() {
    let app = spawn_app_with(&[("CERTGATE_IDENTITY_HEADERS", "*")]).await;
    let short = TestCa::new_root("short-lived root", |p| {
        p.not_after = now() + Duration::seconds(3);
    });
    let ca_id = app.add_ca(&short).await;
    let cert = short.leaf("short.test").issue();
    let agent = app.enrol(&cert, &ca_id).await;
    let id = agent["id"].as_str().unwrap();
    app.verify_escaped_pem(&cert).await.assert_allowed(&agent);
    app.put_config(json!({"reject_unknown_certs": false})).await;
    let stranger = short.leaf("stranger.test").issue();
    app.verify_escaped_pem(&stranger)
        .await
        .assert_allowed_unknown();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    app.verify_escaped_pem(&cert)
        .await
        .assert_denied(403, "ca_expired");
    app.verify_nginx_fingerprint(&cert)
        .await
        .assert_denied(403, "ca_expired");
    app.verify_escaped_pem(&stranger)
        .await
        .assert_denied(403, "ca_expired");
    assert_eq!(app.agent(id).await["status"], "ca_expired");
    assert_eq!(app.agent_total("status=ca_expired").await, 1);
    assert_eq!(app.agent_total("status=active").await, 0);
    app.enrol_agent(&json!({"hostname": "late.test", "certificate": short.leaf("late.test").issue().pem(), "ca_id": ca_id}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "ca_expired");
}
