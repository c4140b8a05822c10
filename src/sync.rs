//! Follows the store's change feed so that changes made through another replica reach this
//! replica's trust index: at once when the store announces them (PostgreSQL `NOTIFY`), and
//! at the latest within one `sync_interval_ms`, which also covers announcements lost while
//! the listener reconnected.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::metrics::Metrics;
use crate::store::{Change, Store, StoreError};
use crate::trust::TrustIndex;

const BATCH: i64 = 1000;
/// Change-feed rows older than this are pruned (every replica has long applied them).
const RETENTION: time::Duration = time::Duration::hours(24);

pub struct Follower {
    store: Arc<dyn Store>,
    trust: Arc<TrustIndex>,
    metrics: Arc<Metrics>,
    applied: i64,
}

impl Follower {
    /// `applied` is the feed position read *before* the index was loaded, so nothing that
    /// happened during the load is missed (applying a change twice is harmless).
    pub fn new(
        store: Arc<dyn Store>,
        trust: Arc<TrustIndex>,
        metrics: Arc<Metrics>,
        applied: i64,
    ) -> Self {
        Self {
            store,
            trust,
            metrics,
            applied,
        }
    }

    /// Applies every change after the last applied one. When the feed no longer holds the
    /// changes right after that one (another replica pruned them while this one could not
    /// read the feed), what they were cannot be known: everything is read again.
    pub async fn catch_up(&mut self) -> Result<(), StoreError> {
        loop {
            let changes = self.store.changes_after(self.applied, BATCH).await?;
            let Some(&(first, _)) = changes.first() else {
                return Ok(());
            };
            // A gap after the position is usually a sequence number a rolled-back write
            // took; only when the feed's oldest row lies beyond it was anything pruned.
            if first > self.applied + 1 && self.store.first_change().await? > self.applied + 1 {
                tracing::warn!(
                    applied = self.applied,
                    oldest = first,
                    "the change feed was pruned past this replica's position; reloading \
                     every agent, CA and the policy"
                );
                return self.reload().await;
            }
            let mut agents = BTreeSet::<AgentId>::new();
            let (mut cas, mut policy) = (false, false);
            for (_, change) in &changes {
                match change {
                    Change::Agent(id) => {
                        agents.insert(*id);
                    }
                    Change::Ca(_) => cas = true,
                    Change::Policy => policy = true,
                }
            }
            if cas {
                self.apply_cas().await?;
            }
            if policy {
                self.trust.set_policy(self.store.policy().await?);
            }
            self.apply_agents(&agents.into_iter().collect::<Vec<_>>())
                .await?;
            if let Some(&(last, _)) = changes.last() {
                self.applied = last;
            }
            if (changes.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }

    /// Reads the CAs, the policy and every agent again, as if each had changed.
    async fn reload(&mut self) -> Result<(), StoreError> {
        // Read first: what changes during the reload is applied once more after it.
        let position = self.store.last_change().await?;
        self.apply_cas().await?;
        self.trust.set_policy(self.store.policy().await?);
        // Every id first: the pages hold a connection, which the reads below may need.
        let mut ids = Vec::new();
        let mut pages = self.store.index_agents();
        while let Some(page) = pages.next().await {
            ids.extend(page?.into_iter().map(|agent| agent.id));
        }
        drop(pages);
        for ids in ids.chunks(BATCH as usize) {
            self.apply_agents(ids).await?;
        }
        self.applied = position;
        Ok(())
    }

    async fn apply_cas(&self) -> Result<(), StoreError> {
        self.trust.set_cas(&self.store.live_cas().await?);
        self.trust
            .set_revoked_serials(self.store.crl_serials().await?);
        Ok(())
    }

    /// Indexes the agents `ids` as stored now, with their superseded certificates.
    async fn apply_agents(&self, ids: &[AgentId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let stored = self.store.agents(ids).await?;
        // Read after the agents, so each list is at least as new as its agent.
        let mut superseded = HashMap::<AgentId, Vec<_>>::new();
        for certificate in self.store.superseded_certificates_of(ids).await? {
            superseded
                .entry(certificate.agent_id)
                .or_default()
                .push(certificate);
        }
        for agent in stored {
            let certificates = superseded.remove(&agent.id).unwrap_or_default();
            self.trust
                .set_superseded(agent.id, agent.version, certificates);
            self.trust.upsert(&agent);
        }
        Ok(())
    }

    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune = OffsetDateTime::now_utc();
            let mut signals = self.store.change_signals().await;
            loop {
                match signals.as_mut() {
                    Some(stream) => tokio::select! {
                        _ = ticker.tick() => {}
                        signal = stream.next() => signals = after_signal(signal, signals.take()),
                    },
                    None => {
                        ticker.tick().await;
                    }
                }
                match self.catch_up().await {
                    Ok(()) => self.metrics.feed_read(),
                    Err(error) => {
                        self.metrics.sync_errors.inc();
                        tracing::warn!(%error, "could not follow the change feed; retrying");
                    }
                }
                let now = OffsetDateTime::now_utc();
                if now - last_prune > time::Duration::hours(1) {
                    last_prune = now;
                    if let Err(error) = self.store.prune_changes(now - RETENTION).await {
                        tracing::warn!(%error, "could not prune the change feed");
                    }
                }
            }
        })
    }
}

/// The signals to wait on after `signal` arrived: none once the stream ended, and the
/// announcements already waiting are taken too, so a burst of writes is one catch-up.
fn after_signal(
    signal: Option<()>,
    signals: Option<BoxStream<'static, ()>>,
) -> Option<BoxStream<'static, ()>> {
    let Some(mut signals) = signal.and(signals) else {
        tracing::warn!("change announcements stopped; polling the feed");
        return None;
    };
    while let Some(Some(())) = signals.next().now_or_never() {}
    Some(signals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::domain::agent::{AllowedIps, Hostname, Tags};
    use crate::domain::audit::Caller;
    use crate::domain::policy::Policy;
    use crate::registry::{ManualEnrolment, Registry};
    use crate::test_pki;

    fn enrolment(hostname: &str, ca_id: crate::domain::CaId, pem: String) -> ManualEnrolment {
        ManualEnrolment {
            hostname: Hostname::parse(hostname).expect("hostname"),
            description: None,
            certificate_pem: pem,
            ca_id,
            tags: Tags::default(),
            allowed_ips: AllowedIps::default(),
        }
    }

    /// One replica writes, the other follows; the feed is pruned while the follower is away.
    #[tokio::test]
    async fn a_replica_behind_the_pruned_feed_reads_everything_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = DatabaseUrl::Sqlite(dir.path().join("certgate.db"));
        let store = crate::store::connect(&database, 2, Duration::ZERO)
            .await
            .expect("store");
        let now = OffsetDateTime::now_utc();
        let caller = Caller::system();
        let writer = Registry::new(
            Arc::clone(&store),
            Arc::new(TrustIndex::new(Policy::defaults(now), 16)),
        );
        let root = test_pki::root("Follower CA");
        let ca = writer
            .add_ca("ca".into(), &root.pem(), &caller, now)
            .await
            .expect("ca");
        let (revoked, kept) = (test_pki::leaf(&root), test_pki::leaf(&root));
        let revoked_agent = writer
            .enrol(
                enrolment("revoked.test", ca.id, revoked.pem()),
                &caller,
                now,
            )
            .await
            .expect("enrolled");

        let position = store.last_change().await.expect("position");
        let follower_index = Arc::new(crate::trust::load(store.as_ref(), 16).await.expect("index"));
        let mut follower = Follower::new(
            Arc::clone(&store),
            Arc::clone(&follower_index),
            Arc::new(Metrics::new().expect("metrics")),
            position,
        );
        writer
            .revoke(revoked_agent.id, &caller, now)
            .await
            .expect("revoked");
        writer
            .enrol(enrolment("kept.test", ca.id, kept.pem()), &caller, now)
            .await
            .expect("enrolled");
        // Only the newest row is left: the revocation's row is gone.
        store
            .prune_changes(OffsetDateTime::now_utc() + time::Duration::hours(1))
            .await
            .expect("pruned");

        follower.catch_up().await.expect("caught up");
        let facts = |pem: &str| {
            let der = &crate::x509::pem_certificates(pem).expect("pem")[0];
            follower_index
                .lookup(&crate::domain::Fingerprint::of_der(der))
                .map(|agent| agent.0.facts.clone())
        };
        assert!(
            facts(&revoked.pem()).expect("indexed").revoked,
            "the revocation whose feed row was pruned"
        );
        assert!(!facts(&kept.pem()).expect("indexed").revoked);
        assert_eq!(follower.applied, store.last_change().await.expect("last"));
    }
}
