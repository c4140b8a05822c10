//! What path validation of a certificate that is not enrolled costs: a leaf under a stored
//! root, a leaf six intermediates down, and hostile chains (a mesh of CAs that all name each
//! other, presented to reach a stored CA's name under other keys).
#![allow(
    clippy::expect_used,
    reason = "generated test PKI: a failure is a broken bench"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use certgate::domain::CaId;
use certgate::x509::{self, Anchors};

struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn params(cn: &str, ca: bool) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    } else {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    params
}

fn root(cn: &str) -> Issued {
    let key = KeyPair::generate().expect("key");
    let cert = params(cn, true).self_signed(&key).expect("root");
    Issued { cert, key }
}

fn issue(cn: &str, ca: bool, issuer: &Issued) -> Issued {
    let key = KeyPair::generate().expect("key");
    let cert = params(cn, ca)
        .signed_by(&key, &issuer.cert, &issuer.key)
        .expect("certificate");
    Issued { cert, key }
}

fn der(issued: &Issued) -> Vec<u8> {
    issued.cert.der().to_vec()
}

fn benches(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let stored = root("Root");
    let anchors = Anchors::new([(CaId::new_random(), stored.cert.der().as_ref())]);

    let direct = der(&issue("agent", false, &stored));
    c.bench_function("path/leaf under the stored root", |b| {
        b.iter(|| x509::validate(black_box(&direct), &[], &anchors, now))
    });

    let mut chain = vec![issue("Intermediate 1", true, &stored)];
    for n in 2..=6 {
        let next = issue(&format!("Intermediate {n}"), true, &chain[chain.len() - 1]);
        chain.push(next);
    }
    let deep = der(&issue("agent", false, &chain[5]));
    let presented: Vec<Vec<u8>> = chain.iter().rev().map(der).collect();
    c.bench_function("path/six intermediates, presented top first", |b| {
        b.iter(|| x509::validate(black_box(&deep), &presented, &anchors, now))
    });

    // Twelve CAs named alike, each signed by another one's key: every name reaches the
    // stored CA's name, no signature reaches its key.
    let namesake = root("Mesh");
    let mesh_anchors = Anchors::new([(CaId::new_random(), namesake.cert.der().as_ref())]);
    let selves: Vec<Issued> = (0..12).map(|_| root("Mesh")).collect();
    let mut mesh = Vec::new();
    for (i, issuer) in selves.iter().enumerate() {
        let subject = &selves[(i + 1) % selves.len()];
        let cert = params("Mesh", true)
            .signed_by(&subject.key, &issuer.cert, &issuer.key)
            .expect("mesh certificate");
        mesh.push(cert.der().to_vec());
    }
    let victim = der(&issue("agent", false, &selves[0]));
    c.bench_function("path/hostile mesh of twelve CAs", |b| {
        b.iter(|| x509::validate(black_box(&victim), &mesh, &mesh_anchors, now))
    });
}

criterion_group!(path, benches);
criterion_main!(path);
