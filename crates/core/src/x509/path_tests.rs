//! Path validation against a test PKI generated with rcgen at fixed dates: every rule of
//! RFC 5280 certgate relies on, as a table with the exact outcome per case.

use rcgen::{
    BasicConstraints, CustomExtension, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    SanType, SignatureAlgorithm, date_time_ymd,
};
use time::OffsetDateTime;

use super::*;
use crate::x509::test_pki::*;
use crate::x509::{CaRefusal, check_ca_certificate, parse};

/// The decision time of every case: inside 2024..2034, the default validity.
fn now() -> i64 {
    date_time_ymd(2026, 6, 1).unix_timestamp()
}

fn ids(count: usize) -> Vec<CaId> {
    (0..count).map(|_| CaId::new_random()).collect()
}

/// Anchors over `cas`, and their ids in the same order.
fn anchors(cas: &[&Issued]) -> (Anchors, Vec<CaId>) {
    let ids = ids(cas.len());
    let ders: Vec<Vec<u8>> = cas.iter().map(|ca| ca.der()).collect();
    let anchors = Anchors::new(ids.iter().copied().zip(ders.iter().map(Vec::as_slice)));
    (anchors, ids)
}

/// What a case expects: the index of the stored CA that anchors the path, or the error's
/// variant (messages are free text).
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    TrustedBy(usize),
    Refused(&'static str),
}

fn kind(error: &PathError) -> &'static str {
    match error {
        PathError::Malformed(_) => "malformed",
        PathError::Expired => "expired",
        PathError::NotYetValid => "not_yet_valid",
        PathError::IssuerOutsideValidity => "issuer_outside_validity",
        PathError::WrongKeyUsage(_) => "wrong_key_usage",
        PathError::WeakCrypto(_) => "weak_crypto",
        PathError::Untrusted(_) => "untrusted",
    }
}

struct Case {
    name: &'static str,
    leaf: Vec<u8>,
    presented: Vec<Vec<u8>>,
    stored: Vec<Vec<u8>>,
    expect: Expect,
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let ids = ids(case.stored.len());
        let anchors = Anchors::new(
            ids.iter()
                .copied()
                .zip(case.stored.iter().map(Vec::as_slice)),
        );
        let judgement = validate(&case.leaf, &case.presented, &anchors, now());
        let got = match &judgement.outcome {
            Ok(path) => Expect::TrustedBy(ids.iter().position(|id| *id == path.ca_id).unwrap()),
            Err(error) => Expect::Refused(kind(error)),
        };
        if got != case.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}",
                case.name, case.expect, judgement.outcome
            ));
        }
        assert!(
            judgement.holds_at(now()),
            "{}: the window holds now",
            case.name
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

use Expect::{Refused, TrustedBy};

#[test]
fn paths_through_presented_and_stored_certificates() {
    let ca = root("Root");
    let other = root("Other Root");
    let inter = intermediate("Intermediate", &ca);
    let not_a_ca = leaf_with(&ca, |p| p.is_ca = IsCa::ExplicitNoCa);
    let rogue = root("Rogue Root");
    let namesake = root("Root");
    let direct = leaf(&ca);
    let via_inter = leaf(&inter);
    run(vec![
        Case {
            name: "directly under a stored CA",
            leaf: direct.der(),
            presented: vec![],
            stored: vec![other.der(), ca.der()],
            expect: TrustedBy(1),
        },
        Case {
            name: "via a presented intermediate",
            leaf: via_inter.der(),
            presented: vec![inter.der()],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "intermediate presented after junk, the leaf again and a duplicate",
            leaf: via_inter.der(),
            presented: vec![b"junk".to_vec(), via_inter.der(), inter.der(), inter.der()],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "intermediate not presented",
            leaf: via_inter.der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "a stored intermediate ends the path",
            leaf: via_inter.der(),
            presented: vec![],
            stored: vec![inter.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "presented issuer is not a CA",
            leaf: leaf(&not_a_ca).der(),
            presented: vec![not_a_ca.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "presented self-signed root that is not stored",
            leaf: leaf(&rogue).der(),
            presented: vec![rogue.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "stored CA with the same name but another key",
            leaf: leaf(&namesake).der(),
            presented: vec![namesake.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "no stored CA at all",
            leaf: via_inter.der(),
            presented: vec![inter.der()],
            stored: vec![],
            expect: Refused("untrusted"),
        },
        Case {
            name: "an unusable stored CA is skipped",
            leaf: direct.der(),
            presented: vec![],
            stored: vec![b"junk".to_vec(), ca.der()],
            expect: TrustedBy(1),
        },
        Case {
            name: "garbage leaf",
            leaf: b"junk".to_vec(),
            presented: vec![inter.der()],
            stored: vec![ca.der()],
            expect: Refused("malformed"),
        },
        Case {
            name: "leaf with trailing bytes",
            leaf: [direct.der(), vec![0]].concat(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("malformed"),
        },
    ]);
}

#[test]
fn every_certificate_on_the_path_must_be_within_its_validity() {
    let ca = root("Root");
    let expired_root = root_with("Expired Root", |p| {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2025, 1, 1);
    });
    let future_root = root_with("Future Root", |p| p.not_before = date_time_ymd(2027, 1, 1));
    let expired_inter = intermediate_with("Expired Intermediate", &ca, |p| {
        p.not_after = date_time_ymd(2025, 1, 1);
    });
    let future_inter = intermediate_with("Future Intermediate", &ca, |p| {
        p.not_before = date_time_ymd(2027, 1, 1);
    });
    run(vec![
        Case {
            name: "expired leaf",
            leaf: leaf_with(&ca, |p| p.not_after = date_time_ymd(2025, 1, 1)).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("expired"),
        },
        Case {
            name: "leaf not valid yet",
            leaf: leaf_with(&ca, |p| p.not_before = date_time_ymd(2027, 1, 1)).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("not_yet_valid"),
        },
        Case {
            name: "expired presented intermediate",
            leaf: leaf(&expired_inter).der(),
            presented: vec![expired_inter.der()],
            stored: vec![ca.der()],
            expect: Refused("issuer_outside_validity"),
        },
        Case {
            name: "presented intermediate not valid yet",
            leaf: leaf(&future_inter).der(),
            presented: vec![future_inter.der()],
            stored: vec![ca.der()],
            expect: Refused("issuer_outside_validity"),
        },
        Case {
            name: "expired stored CA",
            leaf: leaf(&expired_root).der(),
            presented: vec![],
            stored: vec![expired_root.der()],
            expect: Refused("issuer_outside_validity"),
        },
        Case {
            name: "stored CA not valid yet",
            leaf: leaf(&future_root).der(),
            presented: vec![],
            stored: vec![future_root.der()],
            expect: Refused("issuer_outside_validity"),
        },
        Case {
            name: "expired stored intermediate",
            leaf: leaf(&expired_inter).der(),
            presented: vec![],
            stored: vec![expired_inter.der()],
            expect: Refused("issuer_outside_validity"),
        },
    ]);
}

#[test]
fn issuers_must_be_cas_allowed_to_sign_within_their_constraints() {
    let ca = root("Root");
    let no_cert_sign = root_with("No keyCertSign Root", |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    });
    let inter_no_cert_sign = intermediate_with("No keyCertSign Intermediate", &ca, |p| {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    });
    let no_key_usage = root_with("Root Without keyUsage", |p| p.key_usages = vec![]);
    let len0_root = root_with("pathLen 0 Root", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let len1_root = root_with("pathLen 1 Root", |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    });
    let under_len0 = intermediate("Under pathLen 0", &len0_root);
    let under_len1 = intermediate("Under pathLen 1", &len1_root);
    let len0_inter = intermediate_with("pathLen 0 Intermediate", &ca, |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    });
    let below_len0_inter = intermediate("Below pathLen 0 Intermediate", &len0_inter);
    run(vec![
        Case {
            name: "stored CA whose keyUsage lacks keyCertSign",
            leaf: leaf(&no_cert_sign).der(),
            presented: vec![],
            stored: vec![no_cert_sign.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "presented intermediate whose keyUsage lacks keyCertSign",
            leaf: leaf(&inter_no_cert_sign).der(),
            presented: vec![inter_no_cert_sign.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "a CA without keyUsage may sign",
            leaf: leaf(&no_key_usage).der(),
            presented: vec![],
            stored: vec![no_key_usage.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "stored CA with pathLen 0 and an intermediate below",
            leaf: leaf(&under_len0).der(),
            presented: vec![under_len0.der()],
            stored: vec![len0_root.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "stored CA with pathLen 0 signing the leaf itself",
            leaf: leaf(&len0_root).der(),
            presented: vec![],
            stored: vec![len0_root.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "stored CA with pathLen 1 and one intermediate",
            leaf: leaf(&under_len1).der(),
            presented: vec![under_len1.der()],
            stored: vec![len1_root.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "presented intermediate with pathLen 0 and another below it",
            leaf: leaf(&below_len0_inter).der(),
            presented: vec![below_len0_inter.der(), len0_inter.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
    ]);
}

#[test]
fn key_usage_and_extensions() {
    let ca = root("Root");
    let server_inter = intermediate_with("serverAuth Intermediate", &ca, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let client_inter = intermediate_with("clientAuth Intermediate", &ca, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    let server_root = root_with("serverAuth Root", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let constrained = root_with("Constrained Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("allowed.test".into())],
            excluded_subtrees: vec![],
        });
    });
    let mut unknown = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
    unknown.set_criticality(true);
    let mut known_unknown =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 2], vec![5, 0]);
    known_unknown.set_criticality(false);
    run(vec![
        Case {
            name: "leaf with serverAuth only",
            leaf: leaf_with(&ca, |p| {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            })
            .der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("wrong_key_usage"),
        },
        Case {
            name: "leaf without an EKU extension",
            leaf: leaf_with(&ca, |p| p.extended_key_usages = vec![]).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "leaf with serverAuth and clientAuth",
            leaf: leaf_with(&ca, |p| {
                p.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
            })
            .der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "intermediate restricted to serverAuth",
            leaf: leaf(&server_inter).der(),
            presented: vec![server_inter.der()],
            stored: vec![ca.der()],
            expect: Refused("wrong_key_usage"),
        },
        Case {
            name: "intermediate restricted to clientAuth",
            leaf: leaf(&client_inter).der(),
            presented: vec![client_inter.der()],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "stored CA restricted to serverAuth",
            leaf: leaf(&server_root).der(),
            presented: vec![],
            stored: vec![server_root.der()],
            expect: Refused("wrong_key_usage"),
        },
        Case {
            name: "leaf with CA:TRUE",
            leaf: leaf_with(&ca, |p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("wrong_key_usage"),
        },
        Case {
            name: "leaf with an unknown critical extension",
            leaf: leaf_with(&ca, |p| p.custom_extensions = vec![unknown]).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("malformed"),
        },
        Case {
            name: "leaf with an unknown extension that is not critical",
            leaf: leaf_with(&ca, |p| p.custom_extensions = vec![known_unknown]).der(),
            presented: vec![],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "SAN outside the CA's permitted subtree",
            leaf: leaf_with(&constrained, |p| {
                p.subject_alt_names = vec![SanType::DnsName("evil.test".try_into().unwrap())];
            })
            .der(),
            presented: vec![],
            stored: vec![constrained.der()],
            expect: Refused("untrusted"),
        },
        Case {
            name: "SAN inside the CA's permitted subtree",
            leaf: leaf_with(&constrained, |p| {
                p.subject_alt_names =
                    vec![SanType::DnsName("host.allowed.test".try_into().unwrap())];
            })
            .der(),
            presented: vec![],
            stored: vec![constrained.der()],
            expect: TrustedBy(0),
        },
    ]);
}

#[test]
fn path_building_tries_every_candidate() {
    let ca = root("Root");
    let untrusted = root("Untrusted Root");
    let inter_key = key(&PKCS_ECDSA_P256_SHA256);
    let inter_key_der = inter_key.serialize_der();
    let inter = signed(
        ca_params("Intermediate"),
        KeyPair::try_from(inter_key_der.as_slice()).unwrap(),
        &ca,
    );
    // The same subject and key, cross-signed by a root certgate does not trust.
    let cross = signed(
        ca_params("Intermediate"),
        KeyPair::try_from(inter_key_der.as_slice()).unwrap(),
        &untrusted,
    );
    let agent = leaf(&inter);
    // A certificate named like the intermediate whose issuer names a CA that names the
    // intermediate back: a loop webpki must leave.
    let loop_key = key(&PKCS_ECDSA_P256_SHA256);
    let loop_ca = Issued {
        cert: ca_params("Loop").self_signed(&loop_key).unwrap(),
        key: loop_key,
    };
    let looped = signed(
        ca_params("Intermediate"),
        KeyPair::try_from(inter_key_der.as_slice()).unwrap(),
        &loop_ca,
    );
    let loop_back = signed(
        ca_params("Loop"),
        KeyPair::try_from(loop_ca.key.serialize_der().as_slice()).unwrap(),
        &inter,
    );
    let namesake = root("Root");
    run(vec![
        Case {
            name: "cross-signed duplicate presented before the trusted intermediate",
            leaf: agent.der(),
            presented: vec![cross.der(), inter.der()],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "a loop presented before the real path",
            leaf: agent.der(),
            presented: vec![looped.der(), loop_back.der(), inter.der()],
            stored: vec![ca.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "two stored CAs with one name: the one whose key signed wins",
            leaf: agent.der(),
            presented: vec![inter.der()],
            stored: vec![namesake.der(), ca.der()],
            expect: TrustedBy(1),
        },
        Case {
            name: "only the cross-signed duplicate presented",
            leaf: agent.der(),
            presented: vec![cross.der()],
            stored: vec![ca.der()],
            expect: Refused("untrusted"),
        },
    ]);
}

#[test]
fn six_intermediates_are_followed_and_seven_are_not() {
    let ca = root("Root");
    let mut chain: Vec<Issued> = Vec::new();
    let mut cases = Vec::new();
    for depth in 1..=7 {
        let next = intermediate(
            &format!("Intermediate {depth}"),
            chain.last().unwrap_or(&ca),
        );
        chain.push(next);
        // Presented top first, as a sloppy client might.
        let presented: Vec<Vec<u8>> = chain.iter().rev().map(Issued::der).collect();
        cases.push(Case {
            name: ["1", "2", "3", "4", "5", "6", "7"][depth - 1],
            leaf: leaf(chain.last().unwrap()).der(),
            presented,
            stored: vec![ca.der()],
            expect: if depth <= MAX_INTERMEDIATES {
                TrustedBy(0)
            } else {
                Refused("untrusted")
            },
        });
    }
    run(cases);
}

#[test]
fn a_mesh_of_certificates_naming_each_other_ends_quickly() {
    let ca = root("Root");
    let names: Vec<String> = (0..4).map(|i| format!("Mesh {i}")).collect();
    let keys: Vec<Vec<u8>> = names
        .iter()
        .map(|_| key(&PKCS_ECDSA_P256_SHA256).serialize_der())
        .collect();
    let selves: Vec<Issued> = names
        .iter()
        .zip(&keys)
        .map(|(name, der)| {
            let key = KeyPair::try_from(der.as_slice()).unwrap();
            Issued {
                cert: ca_params(name).self_signed(&key).unwrap(),
                key,
            }
        })
        .collect();
    // Every mesh CA signed by every other: 12 certificates, every name reachable from
    // every other, none reaching the stored root.
    let mut presented = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (j, issuer) in selves.iter().enumerate() {
            if i != j {
                let key = KeyPair::try_from(keys[i].as_slice()).unwrap();
                presented.push(signed(ca_params(name), key, issuer).der());
            }
        }
    }
    let agent = leaf(&selves[0]);
    // No name reaches the stored root: nothing is even tried.
    let (unreachable, _) = anchors(&[&ca]);
    let judgement = validate(&agent.der(), &presented, &unreachable, now());
    assert!(matches!(judgement.outcome, Err(PathError::Untrusted(_))));
    // The stored CA carries a mesh name but another key: every path through the mesh
    // reaches its name and fails its signature.
    let namesake = root("Mesh 3");
    let (reachable, _) = anchors(&[&namesake]);
    let started = std::time::Instant::now();
    let judgement = validate(&agent.der(), &presented, &reachable, now());
    assert!(matches!(judgement.outcome, Err(PathError::Untrusted(_))));
    eprintln!(
        "mesh of {} certificates refused in {:?}",
        presented.len(),
        started.elapsed()
    );
    // With the real mesh CA stored, the path through the mesh is found.
    let (real, _) = anchors(&[&selves[3]]);
    let judgement = validate(&agent.der(), &presented, &real, now());
    assert!(judgement.outcome.is_ok(), "{:?}", judgement.outcome);
}

#[test]
fn signature_algorithms_ecdsa_p256_p384_and_ed25519() {
    let algorithms: [(&str, &'static SignatureAlgorithm); 3] = [
        ("ECDSA P-256", &PKCS_ECDSA_P256_SHA256),
        ("ECDSA P-384", &PKCS_ECDSA_P384_SHA384),
        ("Ed25519", &PKCS_ED25519),
    ];
    for (ca_name, ca_alg) in algorithms {
        let ca_key = key(ca_alg);
        let ca = Issued {
            cert: ca_params("Root").self_signed(&ca_key).unwrap(),
            key: ca_key,
        };
        let (anchors, ids) = anchors(&[&ca]);
        for (leaf_name, leaf_alg) in algorithms {
            let mut params = params("agent");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let agent = signed(params, key(leaf_alg), &ca);
            let outcome = validate(&agent.der(), &[], &anchors, now()).outcome;
            assert_eq!(
                outcome.map(|path| path.ca_id),
                Ok(ids[0]),
                "{leaf_name} leaf under {ca_name} CA"
            );
        }
    }
}

#[test]
fn the_verdict_holds_until_a_certificate_involved_changes_state() {
    let ca = root_with("Root", |p| p.not_after = date_time_ymd(2030, 1, 1));
    let inter = intermediate_with("Intermediate", &ca, |p| {
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2028, 1, 1);
    });
    let agent = leaf_with(&inter, |p| {
        p.not_before = date_time_ymd(2026, 1, 1);
        p.not_after = date_time_ymd(2027, 1, 1);
    });
    let (anchors, _) = anchors(&[&ca]);
    let at = |time: OffsetDateTime| {
        validate(
            &agent.der(),
            &[inter.der()],
            &anchors,
            time.unix_timestamp(),
        )
    };
    let judgement = at(date_time_ymd(2026, 6, 1));
    assert!(judgement.outcome.is_ok());
    assert_eq!(
        judgement.holds_from,
        date_time_ymd(2026, 1, 1).unix_timestamp()
    );
    assert_eq!(
        judgement.holds_until,
        date_time_ymd(2027, 1, 1).unix_timestamp() + 1,
        "until the leaf's last second has passed"
    );
    let expired = at(date_time_ymd(2027, 6, 1));
    assert_eq!(expired.outcome, Err(PathError::Expired));
    assert_eq!(
        expired.holds_from,
        date_time_ymd(2027, 1, 1).unix_timestamp() + 1
    );
    assert_eq!(
        expired.holds_until,
        date_time_ymd(2030, 1, 1).unix_timestamp() + 1,
        "an expired leaf is refused before the intermediate is looked at"
    );
}

#[test]
fn the_serial_under_the_stored_ca_is_the_one_its_crl_would_list() {
    let ca = root("Root");
    let inter = intermediate("Intermediate", &ca);
    let agent = leaf(&inter);
    let (anchors, _) = anchors(&[&ca]);
    let path = validate(&agent.der(), &[inter.der()], &anchors, now())
        .outcome
        .unwrap();
    assert_eq!(path.serial_under_ca, parse(inter.der()).unwrap().serial);
    let direct = leaf(&ca);
    let path = validate(&direct.der(), &[], &anchors, now())
        .outcome
        .unwrap();
    assert_eq!(path.serial_under_ca, parse(direct.der()).unwrap().serial);
}

#[test]
fn ca_certificates_to_store() {
    let at = now();
    let check = |issued: &Issued| check_ca_certificate(&parse(issued.der()).unwrap(), at);
    assert_eq!(check(&root("Root")), Ok(()));
    assert_eq!(
        check(&root_with("Future Root", |p| p.not_before = date_time_ymd(2027, 1, 1))),
        Ok(()),
        "a CA not valid yet may be staged"
    );
    assert_eq!(
        check(&root_with("Expired Root", |p| p.not_after = date_time_ymd(2025, 1, 1))),
        Err(CaRefusal::Expired)
    );
    assert!(matches!(
        check(&root_with("No keyCertSign", |p| {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        })),
        Err(CaRefusal::NotACa(_))
    ));
    assert!(matches!(
        check(&leaf(&root("Root"))),
        Err(CaRefusal::NotACa(_))
    ));
    let mut unknown = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![5, 0]);
    unknown.set_criticality(true);
    assert!(matches!(
        check(&root_with("Odd Root", |p| p.custom_extensions = vec![unknown])),
        Err(CaRefusal::Malformed(_))
    ));
}

use crate::forge::{self, NonDer, RsaCa, WeakOr};

fn forged_leaf(ca: &RsaCa, cn: &str) -> Vec<u8> {
    ca.leaf(forge::leaf_params(
        cn,
        date_time_ymd(2024, 1, 1),
        date_time_ymd(2034, 1, 1),
    ))
}

#[test]
fn weak_signatures_and_keys_are_refused_anywhere_on_the_path() {
    let (from, until) = (date_time_ymd(2024, 1, 1), date_time_ymd(2034, 1, 1));
    let rsa_root = RsaCa::root("RSA Root", 2048, from, until);
    let strong = forged_leaf(&rsa_root, "strong.test");
    let ecdsa_root = root("Root");
    let weak_key = forge::RsaKey::generate(1024).key_pair();
    let weak_leaf_key = forge::leaf_params("weak-key.test", from, until)
        .signed_by(&weak_key, &ecdsa_root.cert, &ecdsa_root.key)
        .unwrap()
        .der()
        .to_vec();
    let weak_intermediate = RsaCa::under(
        "RSA-1024 Intermediate",
        1024,
        (&ecdsa_root.cert, &ecdsa_root.key),
        from,
        until,
    );
    let weak_root = RsaCa::root("RSA-1024 Root", 1024, from, until);
    let sha1_intermediate = {
        let inter = RsaCa::under(
            "SHA-1 Intermediate",
            2048,
            (&rsa_root.cert, &rsa_root.key),
            from,
            until,
        );
        let sha1_der = rsa_root.signed_with(&inter.der(), WeakOr::Sha1);
        (inter, sha1_der)
    };
    run(vec![
        Case {
            name: "SHA-256 signature by an RSA-2048 CA",
            leaf: rsa_root.signed_with(&strong, WeakOr::Sha256),
            presented: vec![],
            stored: vec![rsa_root.der()],
            expect: TrustedBy(0),
        },
        Case {
            name: "SHA-1 signature on the leaf",
            leaf: rsa_root.signed_with(&strong, WeakOr::Sha1),
            presented: vec![],
            stored: vec![rsa_root.der()],
            expect: Refused("weak_crypto"),
        },
        Case {
            name: "MD5 signature on the leaf",
            leaf: rsa_root.signed_with(&strong, WeakOr::Md5),
            presented: vec![],
            stored: vec![rsa_root.der()],
            expect: Refused("weak_crypto"),
        },
        Case {
            name: "RSA-1024 key in the leaf",
            leaf: weak_leaf_key,
            presented: vec![],
            stored: vec![ecdsa_root.der()],
            expect: Refused("weak_crypto"),
        },
        Case {
            name: "RSA-1024 presented intermediate",
            leaf: forged_leaf(&weak_intermediate, "under-weak.test"),
            presented: vec![weak_intermediate.der()],
            stored: vec![ecdsa_root.der()],
            expect: Refused("weak_crypto"),
        },
        Case {
            name: "RSA-1024 stored CA",
            leaf: forged_leaf(&weak_root, "under-weak-root.test"),
            presented: vec![],
            stored: vec![weak_root.der()],
            expect: Refused("weak_crypto"),
        },
        Case {
            name: "intermediate signed with SHA-1",
            leaf: forged_leaf(&sha1_intermediate.0, "under-sha1.test"),
            presented: vec![sha1_intermediate.1.clone()],
            stored: vec![rsa_root.der()],
            expect: Refused("weak_crypto"),
        },
    ]);
}

#[test]
fn encodings_der_forbids_are_malformed() {
    let (from, until) = (date_time_ymd(2024, 1, 1), date_time_ymd(2034, 1, 1));
    let ca = RsaCa::root("RSA Root", 2048, from, until);
    let leaf = forged_leaf(&ca, "agent.test");
    let mut cases = vec![Case {
        name: "the DER original",
        leaf: leaf.clone(),
        presented: vec![],
        stored: vec![ca.der()],
        expect: TrustedBy(0),
    }];
    for way in NonDer::ALL {
        let bytes = forge::non_der(&leaf, way, Some(&ca));
        // A lenient parser reads them all (the indefinite length aside): only DER tells.
        assert!(
            parse(bytes.clone()).is_ok() || way == NonDer::OuterIndefinite,
            "{way:?}"
        );
        cases.push(Case {
            name: Box::leak(format!("{way:?}").into_boxed_str()),
            leaf: bytes,
            presented: vec![],
            stored: vec![ca.der()],
            expect: Refused("malformed"),
        });
    }
    run(cases);
    // Presented as an intermediate, a non-DER CA certificate is not used.
    let inter = RsaCa::under("Intermediate", 2048, (&ca.cert, &ca.key), from, until);
    let under = forged_leaf(&inter, "under.test");
    let (anchors, _) = anchors_of(&[ca.der()]);
    let re_encoded = forge::non_der(&inter.der(), NonDer::SerialPadded, Some(&ca));
    assert!(
        validate(&under, &[inter.der()], &anchors, now())
            .outcome
            .is_ok()
    );
    assert!(matches!(
        validate(&under, &[re_encoded], &anchors, now()).outcome,
        Err(PathError::Untrusted(_))
    ));
}

#[test]
fn the_ecdsa_twin_is_a_valid_certificate_with_the_same_identity() {
    for alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ECDSA_P384_SHA384] {
        let ca_key = key(alg);
        let issuer = Issued {
            cert: ca_params("Twin Root").self_signed(&ca_key).unwrap(),
            key: ca_key,
        };
        let original = leaf(&issuer).der();
        let twin = forge::ecdsa_twin(&original);
        assert_ne!(twin, original);
        let (anchors, _) = anchors_of(&[issuer.der()]);
        assert!(
            validate(&twin, &[], &anchors, now()).outcome.is_ok(),
            "a valid signature"
        );
        assert_eq!(
            crate::x509::issuer_serial(&twin),
            crate::x509::issuer_serial(&original)
        );
    }
}

fn anchors_of(ders: &[Vec<u8>]) -> (Anchors, Vec<CaId>) {
    let ids = ids(ders.len());
    let anchors = Anchors::new(ids.iter().copied().zip(ders.iter().map(Vec::as_slice)));
    (anchors, ids)
}

/// Found by fuzzing: a certificate whose subjectKeyIdentifier appeared twice, once with a
/// value of the wrong type, validated (webpki ignores that extension) although certgate
/// could not read it. RFC 5280 allows each extension once, each value of its own type.
#[test]
fn an_extension_twice_or_of_the_wrong_type_is_malformed() {
    let (from, until) = (date_time_ymd(2024, 1, 1), date_time_ymd(2034, 1, 1));
    let ca = RsaCa::root("RSA Root", 2048, from, until);
    let leaf = forged_leaf(&ca, "agent.test");
    let (anchors, _) = anchors_of(&[ca.der()]);
    assert!(validate(&leaf, &[], &anchors, now()).outcome.is_ok());
    fn extensions(tbs: &mut forge::Node) -> &mut Vec<forge::Node> {
        forge::tbs_field(tbs, forge::EXTENSIONS).children_mut()[0].children_mut()
    }
    let doubled = ca.resigned(&leaf, |tbs| {
        let first = extensions(tbs)[0].clone();
        extensions(tbs).push(first);
        tbs.encode()
    });
    // subjectKeyIdentifier (2.5.29.14) holding a SEQUENCE where an OCTET STRING belongs.
    const SKI: [u8; 3] = [0x55, 0x1d, 0x0e];
    let mistyped = ca.resigned(&leaf, |tbs| {
        let ski = extensions(tbs)
            .iter_mut()
            .find(|ext| {
                ext.children()[0]
                    == forge::Node::Primitive {
                        tag: 0x06,
                        content: SKI.to_vec(),
                    }
            })
            .expect("rcgen writes a subjectKeyIdentifier");
        let value = ski.children_mut().last_mut().unwrap();
        *value.content_mut() = hex::decode("300a06082b06010505070302").unwrap();
        tbs.encode()
    });
    for (name, certificate) in [("doubled", doubled), ("mistyped", mistyped)] {
        let outcome = validate(&certificate, &[], &anchors, now()).outcome;
        assert!(
            matches!(outcome, Err(PathError::Malformed(_))),
            "{name}: {outcome:?}"
        );
    }
}
