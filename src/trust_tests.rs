//! The index and the decision together: a certificate, in every proxy spelling and in
//! every re-encoding of its bytes, names the agent it was enrolled as.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SerialNumber,
    SignatureAlgorithm,
};
use time::OffsetDateTime;

use super::*;
use crate::domain::agent::{AllowedIps, Hostname, Tags};
use crate::domain::verify::{Verdict, decide};
use crate::forge;
use crate::proxy::{IdentityHeader, IdentityHeaders};

struct Root {
    cert: rcgen::Certificate,
    key: KeyPair,
    ca: Ca,
}

fn root() -> Root {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "index test root");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = params.self_signed(&key).unwrap();
    let info = x509::parse(cert.der().to_vec()).unwrap();
    let ca = Ca {
        id: CaId::new_random(),
        name: "root".into(),
        fingerprint: info.fingerprint,
        subject: info.subject.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
        certificate_pem: info.to_pem(),
        created_at: OffsetDateTime::now_utc(),
        removed_at: None,
        internal: false,
    };
    Root { cert, key, ca }
}

fn leaf(root: &Root, cn: &str, serial: &[u8], alg: &'static SignatureAlgorithm) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from_slice(serial));
    let key = KeyPair::generate_for(alg).unwrap();
    params
        .signed_by(&key, &root.cert, &root.key)
        .unwrap()
        .der()
        .to_vec()
}

fn agent_for(der: &[u8], ca: &Ca) -> Agent {
    let info = x509::parse(der.to_vec()).unwrap();
    let now = OffsetDateTime::now_utc();
    Agent {
        id: AgentId::new_random(),
        hostname: Hostname::parse("agent.test").unwrap(),
        description: None,
        tags: Tags::default(),
        ca_id: ca.id,
        fingerprint: info.fingerprint,
        fingerprint_sha1: info.sha1,
        subject: info.subject,
        serial: info.serial,
        issuer_serial: Some(info.issuer_serial),
        not_before: info.not_before,
        not_after: info.not_after,
        ca_not_after: ca.not_after,
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

/// Every header a proxy may carry the certificate in.
fn spellings(der: &[u8]) -> Vec<(IdentityHeader, String)> {
    let pem = x509::der_to_pem(der);
    let escaped = crate::escape::nginx_escaped(&pem);
    let b64 = STANDARD.encode(der);
    vec![
        (IdentityHeader::ClientCert, escaped.clone()),
        (
            IdentityHeader::ClientCert,
            pem.trim_end().replace('\n', " "),
        ),
        (IdentityHeader::ClientCert, pem.replace('\n', "")),
        (IdentityHeader::ClientCert, b64.clone()),
        (IdentityHeader::ForwardedTlsClientCert, b64.clone()),
        (
            IdentityHeader::ForwardedClientCert,
            format!("By=spiffe://test;Cert=\"{escaped}\""),
        ),
        (IdentityHeader::Rfc9440ClientCert, format!(":{b64}:")),
    ]
}

/// The same certificate in other bytes: its ECDSA twin (the test root signs with P-256), and
/// encodings DER does not allow. Another fingerprint, one identity.
fn re_encodings(der: &[u8]) -> Vec<Vec<u8>> {
    let content = match der[1] {
        0x81 => &der[3..],
        0x82 => &der[4..],
        other => panic!("unexpected length octet {other:#x}"),
    };
    let length = u16::try_from(content.len()).unwrap().to_be_bytes();
    vec![
        [&[0x30, 0x83, 0x00][..], &length, content].concat(),
        [&[0x30, 0x84, 0x00, 0x00][..], &length, content].concat(),
        [&[0x30, 0x80][..], content, &[0, 0]].concat(),
        forge::ecdsa_twin(der),
    ]
}

/// The agent a decision names, allowed or refused.
fn named(verdict: Verdict<AgentRef>) -> (Option<AgentId>, Option<Rejection>) {
    match verdict {
        Verdict::Allow(agent) => (Some(agent.0.id), None),
        Verdict::Deny(reason, agent) => (agent.map(|a| a.0.id), Some(reason)),
        Verdict::AllowUnknown | Verdict::Enrol(_) => (None, None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn every_spelling_and_re_encoding_names_the_enrolled_agent(
        serial in proptest::collection::vec(any::<u8>(), 1..20),
        cn in "[a-z][a-z0-9-]{0,30}",
        algorithm in 0usize..3,
        reject_unknown in any::<bool>(),
        auto_enroll in any::<bool>(),
    ) {
        let alg = [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384, &PKCS_ED25519][algorithm];
        let root = root();
        let der = leaf(&root, &cn, &serial, alg);
        let agent = agent_for(&der, &root.ca);
        let index = TrustIndex::new(Policy::defaults(OffsetDateTime::UNIX_EPOCH), 16);
        index.set_cas(std::slice::from_ref(&root.ca));
        index.upsert(&agent);
        let mut policy = index.policy();
        policy.reject_unknown_certs = reject_unknown;
        policy.auto_enroll = auto_enroll;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let judge = |bytes: &[u8]| -> Vec<(Option<AgentId>, Option<Rejection>)> {
            spellings(bytes)
                .into_iter()
                .map(|(header, value)| {
                    let presented = crate::proxy::read_headers(
                        IdentityHeaders::all(),
                        &[(header, value.as_bytes())],
                    )
                    .unwrap()
                    .unwrap();
                    named(decide(&presented, &index, &policy, None, now))
                })
                .collect()
        };
        for outcome in judge(&der) {
            prop_assert_eq!(outcome, (Some(agent.id), None));
        }
        for twin in re_encodings(&der) {
            prop_assert_eq!(x509::issuer_serial(&twin), agent.issuer_serial);
            for outcome in judge(&twin) {
                prop_assert_eq!(outcome, (Some(agent.id), Some(Rejection::FingerprintMismatch)));
            }
        }
    }
}

/// What verify queues for `last_seen` (`LastSeen::record` asks this first): the latest
/// address always, the same address at most once a second.
#[test]
fn a_sighting_is_new_each_second_and_at_every_change_of_address() {
    let root = root();
    let agent = agent_for(
        &leaf(&root, "seen", &[7], &PKCS_ECDSA_P256_SHA256),
        &root.ca,
    );
    let index = TrustIndex::new(Policy::defaults(OffsetDateTime::UNIX_EPOCH), 16);
    index.upsert(&agent);
    let entry = index.lookup(&agent.fingerprint).unwrap().0;
    let first: IpAddr = "10.6.0.1".parse().unwrap();
    let second: IpAddr = "10.6.0.2".parse().unwrap();

    assert!(entry.sighting_is_new(100, Some(first)));
    assert!(
        !entry.sighting_is_new(100, Some(first)),
        "same second, same address"
    );
    assert!(
        entry.sighting_is_new(100, Some(second)),
        "a new address at once"
    );
    assert!(entry.sighting_is_new(100, Some(first)), "and back");
    assert!(
        entry.sighting_is_new(100, None),
        "no address is an address too"
    );
    assert!(entry.sighting_is_new(101, None), "a new second");
    assert!(!entry.sighting_is_new(101, None));
}
