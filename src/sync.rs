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

    /// Applies every change after the last applied one.
    pub async fn catch_up(&mut self) -> Result<(), StoreError> {
        loop {
            let changes = self.store.changes_after(self.applied, BATCH).await?;
            let Some((last, _)) = changes.last() else {
                return Ok(());
            };
            let last = *last;
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
                self.trust.set_cas(&self.store.live_cas().await?);
                self.trust
                    .set_revoked_serials(self.store.crl_serials().await?);
            }
            if policy {
                self.trust.set_policy(self.store.policy().await?);
            }
            let ids: Vec<AgentId> = agents.into_iter().collect();
            let stored = self.store.agents(&ids).await?;
            // Read after the agents, so each list is at least as new as its agent.
            let mut superseded = HashMap::<AgentId, Vec<_>>::new();
            for certificate in self.store.superseded_certificates_of(&ids).await? {
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
            self.applied = last;
            if (changes.len() as i64) < BATCH {
                return Ok(());
            }
        }
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
