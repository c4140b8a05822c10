//! `last_seen_at` / `last_seen_ip`, recorded off the request path: verify queues the latest
//! sighting of each agent in memory (at most one per second from one address, every change
//! of address at once), and a background task writes the queue in one transaction every
//! flush interval and once more on shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use crate::domain::AgentId;
use crate::domain::verify::unix_seconds;
use crate::metrics::Metrics;
use crate::store::{Sighting, Store};
use crate::trust::AgentEntry;

/// Between attempts of the flush at shutdown.
const EXIT_RETRY_PAUSE: Duration = Duration::from_millis(250);

type Pending = HashMap<AgentId, (OffsetDateTime, Option<IpAddr>), foldhash::fast::RandomState>;

#[derive(Default)]
pub struct LastSeen {
    pending: Mutex<Pending>,
}

/// Sightings taken from the queue and not yet written: dropped unwritten (a failed or a
/// cancelled flush), they go back to the queue, where a newer sighting of the same agent
/// stays.
struct Unwritten<'a> {
    last_seen: &'a LastSeen,
    batch: Pending,
}

impl Unwritten<'_> {
    fn written(mut self) {
        self.batch.clear();
    }
}

impl Drop for Unwritten<'_> {
    fn drop(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut pending = self
            .last_seen
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (id, seen) in self.batch.drain() {
            pending.entry(id).or_insert(seen);
        }
    }
}

impl LastSeen {
    /// Takes the clock as `SystemTime`: the calendar form is only worked out for a sighting
    /// that is kept.
    pub fn record(&self, agent: &AgentEntry, now: SystemTime, ip: Option<IpAddr>) {
        if agent.sighting_is_new(unix_seconds(now), ip) {
            let at = OffsetDateTime::from(now);
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(agent.id)
                // Workers race: a sighting queued after this one may have been made before it.
                .and_modify(|queued| {
                    if at >= queued.0 {
                        *queued = (at, ip);
                    }
                })
                .or_insert((at, ip));
        }
    }

    /// What is queued, leaving a queue as large as the last one was: a fleet sees about as
    /// many agents in one interval as in the next, and growing the map again on the request
    /// path would rehash it over and over.
    fn take(&self) -> Pending {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = Pending::with_capacity_and_hasher(pending.len(), Default::default());
        std::mem::replace(&mut *pending, fresh)
    }

    /// Writes everything queued, and says whether it did. On failure the sightings are
    /// queued again (newer ones win), and so they are when the flush is cancelled (a stop
    /// aborts the flushing task).
    pub async fn flush(&self, store: &dyn Store, metrics: &Metrics) -> bool {
        let unwritten = Unwritten {
            last_seen: self,
            batch: self.take(),
        };
        if unwritten.batch.is_empty() {
            return true;
        }
        let mut sightings: Vec<Sighting> = unwritten
            .batch
            .iter()
            .map(|(id, (at, ip))| Sighting {
                agent_id: *id,
                at: *at,
                ip: ip.map(|ip| ip.to_string()),
            })
            .collect();
        // In key order the database walks its index once instead of jumping about it.
        sightings.sort_unstable_by_key(|sighting| sighting.agent_id);
        match store.record_sightings(&sightings).await {
            Ok(()) => {
                unwritten.written();
                true
            }
            Err(error) => {
                metrics.last_seen_flush_errors.inc();
                tracing::warn!(%error, count = sightings.len(), "could not record last_seen; will retry");
                false
            }
        }
    }

    /// The flush at shutdown: nothing flushes after it, so a failure (a database that
    /// answers slowly for a moment) is retried for up to `patience`.
    pub async fn flush_before_exit(
        &self,
        store: &dyn Store,
        metrics: &Metrics,
        patience: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + patience;
        while !self.flush(store, metrics).await {
            if tokio::time::Instant::now() + EXIT_RETRY_PAUSE > deadline {
                tracing::error!("last_seen of some agents was not recorded before the stop");
                return;
            }
            tokio::time::sleep(EXIT_RETRY_PAUSE).await;
        }
    }

    /// Flushes every `interval` until the task is aborted.
    pub fn spawn_flusher(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let last_seen = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                last_seen.flush(store.as_ref(), &metrics).await;
            }
        })
    }
}
