//! ns-per-call measurements of the pure pieces of the verify path: header decoding,
//! fingerprinting, and the decision against an index of 100k agents.
#![allow(
    clippy::expect_used,
    reason = "fixed test vectors: a failure is a broken bench"
)]

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;

use certgate::domain::agent::{Agent, AllowedIps, Hostname, Tags};
use certgate::domain::ca::Ca;
use certgate::domain::policy::Policy;
use certgate::domain::verify::decide;
use certgate::domain::{AgentId, CaId, Fingerprint, Sha1Fingerprint};
use certgate::proxy::{IdentityHeader, IdentityHeaders, read_headers};
use certgate::trust::TrustIndex;
use certgate::x509;

/// The certificate of the proxy test vectors (PROXIES.md §6), issued by its own root.
const LEAF_B64: &str = "MIICRzCCAe2gAwIBAgIKChssPU5fYHGCkzAKBggqhkjOPQQDAjBDMQswCQYDVQQGEwJVUzEVMBMGA1UECgwMU2lkZWNhciBUZXN0MR0wGwYDVQQDDBRTaWRlY2FyIFRlc3QgUm9vdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMDk5MTIzMTIzNTk1OVowSTELMAkGA1UEBhMCVVMxFTATBgNVBAoMDFNpZGVjYXIgVGVzdDEPMA0GA1UECwwGYWdlbnRzMRIwEAYDVQQDDAlhZ2VudC0wMDEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATbwuMgkYpfui6tn2bqgEpKuuQaeY4iyxyohjsrnTWUyGUuINbC8CA7bAGm1AB6rKx5SVKlt3FJ1Lvwdf6Qh1qSo4HAMIG9MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMCMEgGA1UdEQRBMD+GJXNwaWZmZTovL2V4YW1wbGUudGVzdC9hZ2VudC9hZ2VudC0wMDGCFmFnZW50LTAwMS5leGFtcGxlLnRlc3QwHwYDVR0jBBgwFoAUR6MjqTta/5HkB8ImKgn9yAcE1+owHQYDVR0OBBYEFIQWwxOq5siirA7cd0rf4EsUcOMhMAoGCCqGSM49BAMCA0gAMEUCIBZ8r+Cl4j3Bn5KknJGpoyBC0WVDOcjMElvWSrK++oe6AiEArd1MrWv/XYF7Mg1jFxwwVVdl6svovEvuNpM4izhWvJ0=";

fn leaf_der() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(LEAF_B64)
        .expect("test vector is base64")
}

#[path = "../tests/support/escape.rs"]
mod escape;

fn escaped_pem(der: &[u8]) -> String {
    escape::nginx_escaped(&x509::der_to_pem(der))
}

fn agent(fingerprint: Fingerprint, sha1: Sha1Fingerprint, ca_id: CaId, n: usize) -> Agent {
    let now = OffsetDateTime::now_utc();
    Agent {
        id: AgentId::new_random(),
        hostname: Hostname::parse(&format!("agent-{n}.bench")).expect("valid hostname"),
        description: None,
        tags: Tags::parse(&["bench".to_owned()]).expect("valid tag"),
        ca_id,
        fingerprint,
        fingerprint_sha1: sha1,
        subject: String::new(),
        serial: String::new(),
        issuer_serial: None,
        not_before: now - time::Duration::days(1),
        not_after: now + time::Duration::days(365),
        ca_not_after: now + time::Duration::days(365),
        enabled: true,
        allowed_ips: AllowedIps::default(),
        profile: Default::default(),
        created_at: now,
        updated_at: now,
        revoked_at: None,
        ca_removed_at: None,
        last_seen_at: None,
        last_seen_ip: None,
        version: 1,
    }
}

fn index_with(agents: usize, leaf: &[u8]) -> TrustIndex {
    let now = OffsetDateTime::now_utc();
    let index = TrustIndex::new(Policy::defaults(now), 1000);
    let ca_id = CaId::new_random();
    index.set_cas(&[Ca {
        id: ca_id,
        name: "bench".into(),
        fingerprint: Fingerprint::of_der(b"ca"),
        subject: String::new(),
        not_before: now - time::Duration::days(1),
        not_after: now + time::Duration::days(365),
        certificate_pem: x509::der_to_pem(leaf),
        created_at: now,
        removed_at: None,
        internal: false,
    }]);
    for n in 0..agents {
        let seed = (n as u64).to_le_bytes();
        index.upsert(&agent(
            Fingerprint::of_der(&seed),
            Sha1Fingerprint::of_der(&seed),
            ca_id,
            n,
        ));
    }
    index.upsert(&agent(
        Fingerprint::of_der(leaf),
        Sha1Fingerprint::of_der(leaf),
        ca_id,
        agents,
    ));
    index
}

fn benches(c: &mut Criterion) {
    let der = leaf_der();
    let escaped = escaped_pem(&der);
    let sha1 = Sha1Fingerprint::of_der(&der).to_string();
    let headers =
        IdentityHeaders::parse("X-Client-Cert,X-Client-Cert-Fingerprint").expect("known headers");

    c.bench_function("fingerprint/sha256+sha1 of DER", |b| {
        b.iter(|| {
            (
                Fingerprint::of_der(black_box(&der)),
                Sha1Fingerprint::of_der(&der),
            )
        })
    });
    c.bench_function("decode/X-Client-Cert escaped PEM", |b| {
        b.iter(|| {
            read_headers(
                headers,
                &[(IdentityHeader::ClientCert, black_box(escaped.as_bytes()))],
            )
        })
    });
    c.bench_function("decode/X-Client-Cert-Fingerprint SHA-1", |b| {
        b.iter(|| {
            read_headers(
                headers,
                &[(
                    IdentityHeader::ClientCertFingerprint,
                    black_box(sha1.as_bytes()),
                )],
            )
        })
    });

    let index = index_with(100_000, &der);
    let policy = index.policy();
    let ip: Option<IpAddr> = "127.0.0.1".parse().ok();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let by_sha1 = read_headers(
        headers,
        &[(IdentityHeader::ClientCertFingerprint, sha1.as_bytes())],
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    let by_cert = read_headers(headers, &[(IdentityHeader::ClientCert, escaped.as_bytes())])
        .ok()
        .flatten()
        .unwrap_or_default();
    c.bench_function("decide/100k agents, SHA-1 fingerprint", |b| {
        b.iter(|| decide(black_box(&by_sha1), &index, &policy, ip, now))
    });
    c.bench_function("decide/100k agents, whole certificate", |b| {
        b.iter(|| decide(black_box(&by_cert), &index, &policy, ip, now))
    });
}

criterion_group!(verify, benches);
criterion_main!(verify);
