//! The registry's refusals as values, over a real SQLite store and no HTTP.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{AgentUpdate, Error, ManualEnrolment, Registry};
use crate::config::DatabaseUrl;
use crate::domain::CaId;
use crate::domain::agent::{AllowedIps, Hostname, Tags};
use crate::domain::audit::{Actor, Caller};
use crate::domain::ca::Ca;
use crate::domain::policy::Policy;
use crate::store::{self, StoreError};
use crate::test_pki;
use crate::trust::TrustIndex;

fn caller() -> Caller {
    Caller {
        actor: Actor::Token("test".into()),
        request_id: None,
        source_ip: None,
    }
}

/// Inside the test PKI's validity (2024..2034).
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

async fn registry(dir: &tempfile::TempDir) -> Registry {
    let database = DatabaseUrl::Sqlite(dir.path().join("certgate.db"));
    let store = store::connect(&database, 2, std::time::Duration::ZERO)
        .await
        .unwrap();
    let trust = Arc::new(TrustIndex::new(Policy::defaults(now()), 16));
    Registry::new(store, trust)
}

/// A registry that trusts one new root, with that root.
async fn registry_trusting_a_root(dir: &tempfile::TempDir) -> (Registry, Ca, test_pki::Issued) {
    let registry = registry(dir).await;
    let root = test_pki::root("Registry CA");
    let ca = registry
        .add_ca("ca".into(), &root.pem(), &caller(), now())
        .await
        .unwrap();
    (registry, ca, root)
}

fn enrolment(ca_id: CaId, certificate_pem: String) -> ManualEnrolment {
    ManualEnrolment {
        hostname: Hostname::parse("agent-001.test").unwrap(),
        description: None,
        certificate_pem,
        ca_id,
        tags: Tags::default(),
        allowed_ips: AllowedIps::default(),
    }
}

#[tokio::test]
async fn a_trusted_ca_cannot_be_added_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, _, root) = registry_trusting_a_root(&dir).await;
    let again = registry
        .add_ca("again".into(), &root.pem(), &caller(), now())
        .await;
    assert!(matches!(again, Err(Error::CaExists)), "{again:?}");
}

#[tokio::test]
async fn enrolment_refuses_an_unknown_ca_a_foreign_issuer_and_a_second_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, ca, root) = registry_trusting_a_root(&dir).await;
    let leaf = test_pki::leaf(&root);

    let unknown = registry
        .enrol(enrolment(CaId::new_random(), leaf.pem()), &caller(), now())
        .await;
    assert!(matches!(unknown, Err(Error::UnknownCa)), "{unknown:?}");

    let stranger = test_pki::leaf(&test_pki::root("Another CA"));
    let foreign = registry
        .enrol(enrolment(ca.id, stranger.pem()), &caller(), now())
        .await;
    assert!(matches!(foreign, Err(Error::PathRefused(_))), "{foreign:?}");

    registry
        .enrol(enrolment(ca.id, leaf.pem()), &caller(), now())
        .await
        .unwrap();
    let twice = registry
        .enrol(enrolment(ca.id, leaf.pem()), &caller(), now())
        .await;
    assert!(matches!(twice, Err(Error::AlreadyEnrolled)), "{twice:?}");
}

#[tokio::test]
async fn a_revoked_agent_cannot_be_changed_and_a_missing_one_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, ca, root) = registry_trusting_a_root(&dir).await;
    let agent = registry
        .enrol(
            enrolment(ca.id, test_pki::leaf(&root).pem()),
            &caller(),
            now(),
        )
        .await
        .unwrap();

    registry.revoke(agent.id, &caller(), now()).await.unwrap();
    let toggled = registry
        .toggle(agent.id, Some(true), &caller(), now())
        .await;
    assert!(matches!(toggled, Err(Error::AgentRevoked)), "{toggled:?}");
    let updated = registry
        .update(agent.id, AgentUpdate::default(), &caller(), now())
        .await;
    assert!(matches!(updated, Err(Error::AgentRevoked)), "{updated:?}");

    let missing = registry
        .revoke(crate::domain::AgentId::new_random(), &caller(), now())
        .await;
    assert!(
        matches!(missing, Err(Error::Store(StoreError::NotFound))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_ca_another_replica_removed_refuses_enrolment_here_too() {
    let dir = tempfile::tempdir().unwrap();
    let (here, ca, root) = registry_trusting_a_root(&dir).await;
    let elsewhere = registry(&dir).await;
    elsewhere.remove_ca(ca.id, &caller(), now()).await.unwrap();

    // This replica's index has not heard of the removal yet; the store refuses all the same.
    assert!(here.trust.live_ca(ca.id).is_some());
    let refused = here
        .enrol(
            enrolment(ca.id, test_pki::leaf(&root).pem()),
            &caller(),
            now(),
        )
        .await;
    assert!(matches!(refused, Err(Error::UnknownCa)), "{refused:?}");
    let page = store::Page {
        limit: 10,
        offset: 0,
    };
    let (_, stored) = here
        .store
        .list_agents(&store::AgentFilter::default(), page, now())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_even_after_its_ca_was_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, ca, root) = registry_trusting_a_root(&dir).await;
    let leaf = test_pki::leaf(&root);
    let agent = registry
        .enrol(enrolment(ca.id, leaf.pem()), &caller(), now())
        .await
        .unwrap();
    registry.revoke(agent.id, &caller(), now()).await.unwrap();
    registry.remove_ca(ca.id, &caller(), now()).await.unwrap();
    let again = registry
        .add_ca("again".into(), &root.pem(), &caller(), now())
        .await
        .unwrap();

    let refused = registry
        .enrol(enrolment(again.id, leaf.pem()), &caller(), now())
        .await;
    assert!(
        matches!(refused, Err(Error::CertificateRevoked)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_certificate_whose_ca_was_removed_may_be_enrolled_under_the_new_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, ca, root) = registry_trusting_a_root(&dir).await;
    let leaf = test_pki::leaf(&root);
    registry
        .enrol(enrolment(ca.id, leaf.pem()), &caller(), now())
        .await
        .unwrap();
    registry.remove_ca(ca.id, &caller(), now()).await.unwrap();
    let again = registry
        .add_ca("again".into(), &root.pem(), &caller(), now())
        .await
        .unwrap();

    let enrolled = registry
        .enrol(enrolment(again.id, leaf.pem()), &caller(), now())
        .await;
    assert!(enrolled.is_ok(), "{enrolled:?}");
}
