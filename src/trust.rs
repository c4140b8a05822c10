//! The in-memory trust index that verify decides from: agents by fingerprint, the live CA
//! set and the policy. Admin writes apply their change here before they answer, and the
//! change-feed follower (`sync.rs`) applies other replicas' changes, so verify never waits
//! on the database.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use sha2::{Digest, Sha256};

use crate::domain::agent::Agent;
use crate::domain::ca::Ca;
use crate::domain::policy::Policy;
use crate::domain::verify::{AgentFacts, ChainInfo, PresentedCertificate, Rejection, TrustView};
use crate::domain::{AgentId, CaId, Fingerprint, Sha1Fingerprint};
use crate::x509::{self, PathOutcome};

/// Fingerprints are uniformly distributed digests: their first 8 bytes are a perfect hash,
/// so hashing them again with SipHash would only cost time on every verify.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8).take(1) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(buf);
        }
    }

    fn write_usize(&mut self, _: usize) {
        // Array lengths are hashed too; they are constant and carry no information.
    }
}

type DigestMap<K, V> = DashMap<K, V, BuildHasherDefault<DigestHasher>>;

/// One enrolled agent as verify sees it.
#[derive(Debug)]
pub struct AgentEntry {
    pub id: AgentId,
    pub hostname: Box<str>,
    /// Tags joined by `,`, ready for `X-Agent-Tags`.
    pub tags: Box<str>,
    pub facts: AgentFacts,
    created_at: i64,
    version: i64,
    /// Last second in which a sighting was queued, so a busy agent queues one per second.
    last_seen_second: AtomicI64,
}

impl AgentEntry {
    fn from_agent(agent: &Agent) -> Self {
        Self {
            id: agent.id,
            hostname: agent.hostname.as_str().into(),
            tags: agent.tags.joined().into_boxed_str(),
            facts: AgentFacts {
                fingerprint: agent.fingerprint,
                fingerprint_sha1: agent.fingerprint_sha1,
                ca_id: agent.ca_id,
                enabled: agent.enabled,
                revoked: agent.revoked_at.is_some(),
                ca_removed: agent.ca_removed_at.is_some(),
                not_before: agent.not_before.unix_timestamp(),
                not_after: agent.not_after.unix_timestamp(),
                allowed_ips: agent.allowed_ips.clone(),
            },
            created_at: agent.created_at.unix_timestamp(),
            version: agent.version,
            last_seen_second: AtomicI64::new(0),
        }
    }

    /// True the first time it is called within a given second.
    pub fn first_sighting_in(&self, second: i64) -> bool {
        self.last_seen_second.load(Ordering::Relaxed) != second
            && self.last_seen_second.swap(second, Ordering::Relaxed) != second
    }
}

/// An `Arc<AgentEntry>` is what lookups hand out.
#[derive(Debug, Clone)]
pub struct AgentRef(pub Arc<AgentEntry>);

impl AsRef<AgentFacts> for AgentRef {
    fn as_ref(&self) -> &AgentFacts {
        &self.0.facts
    }
}

/// The live CAs, replaced as a whole when one is added or removed.
#[derive(Default)]
struct CaSet {
    generation: u64,
    ders: Vec<(CaId, Vec<u8>)>,
}

impl CaSet {
    fn contains(&self, id: CaId) -> bool {
        self.ders.iter().any(|(ca, _)| *ca == id)
    }
}

type ChainResult = Result<ChainInfo, Rejection>;

pub struct TrustIndex {
    by_sha256: DigestMap<Fingerprint, AgentRef>,
    sha1_to_sha256: DigestMap<Sha1Fingerprint, Fingerprint>,
    cas: ArcSwap<CaSet>,
    policy: ArcSwap<Policy>,
    /// Chain results for certificates that are not enrolled, keyed by a digest of the leaf
    /// and the presented chain; entries from an older CA set are ignored.
    chain_cache: DigestMap<Fingerprint, (u64, ChainResult)>,
    chain_cache_capacity: usize,
}

impl TrustIndex {
    pub fn new(policy: Policy, chain_cache_capacity: usize) -> Self {
        Self {
            by_sha256: DigestMap::default(),
            sha1_to_sha256: DigestMap::default(),
            cas: ArcSwap::from_pointee(CaSet::default()),
            policy: ArcSwap::from_pointee(policy),
            chain_cache: DigestMap::default(),
            chain_cache_capacity,
        }
    }

    pub fn policy(&self) -> Policy {
        **self.policy.load()
    }

    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    pub fn agent_count(&self) -> usize {
        self.by_sha256.len()
    }

    pub fn ca_count(&self) -> usize {
        self.cas.load().ders.len()
    }

    /// Replaces the live CA set. Cached chain results of the old set stop counting.
    pub fn set_cas(&self, cas: &[Ca]) {
        let generation = self.cas.load().generation + 1;
        let mut ders = Vec::with_capacity(cas.len());
        for ca in cas.iter().filter(|ca| ca.removed_at.is_none()) {
            if let Ok(blocks) = x509::pem_certificates(&ca.certificate_pem)
                && let Some(der) = blocks.into_iter().next()
            {
                ders.push((ca.id, der));
            }
        }
        self.cas.store(Arc::new(CaSet { generation, ders }));
        self.chain_cache.clear();
    }

    /// Adds or replaces an agent. Several rows may share a certificate (a re-enrolment after
    /// its CA was removed); the index keeps the one verify should judge by.
    pub fn upsert(&self, agent: &Agent) {
        let entry = AgentRef(Arc::new(AgentEntry::from_agent(agent)));
        let cas = self.cas.load();
        let is_live = |e: &AgentEntry| !e.facts.ca_removed && cas.contains(e.facts.ca_id);
        match self.by_sha256.entry(agent.fingerprint) {
            Entry::Occupied(mut slot) => {
                let current = &slot.get().0;
                let replace = if current.id == agent.id {
                    agent.version >= current.version
                } else {
                    let (new_live, old_live) = (is_live(&entry.0), is_live(current));
                    (new_live && !old_live)
                        || (new_live == old_live && entry.0.created_at >= current.created_at)
                };
                if replace {
                    slot.insert(entry);
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(entry);
            }
        }
        self.sha1_to_sha256
            .insert(agent.fingerprint_sha1, agent.fingerprint);
    }

    pub fn lookup(&self, fingerprint: &Fingerprint) -> Option<AgentRef> {
        self.by_sha256.get(fingerprint).map(|e| e.value().clone())
    }

    fn chain_key(certificate: &PresentedCertificate) -> Fingerprint {
        if certificate.chain.is_empty() {
            return certificate.fingerprint;
        }
        let mut digest = Sha256::new();
        digest.update(certificate.fingerprint.as_bytes());
        for der in &certificate.chain {
            digest.update(Sha256::digest(der));
        }
        Fingerprint::from_bytes(digest.finalize().into())
    }
}

impl TrustView for TrustIndex {
    type Entry = AgentRef;

    fn agent_by_sha256(&self, fingerprint: &Fingerprint) -> Option<AgentRef> {
        self.lookup(fingerprint)
    }

    fn agent_by_sha1(&self, fingerprint: &Sha1Fingerprint) -> Option<AgentRef> {
        let sha256 = *self.sha1_to_sha256.get(fingerprint)?;
        self.lookup(&sha256)
    }

    fn ca_trusted(&self, ca: CaId) -> bool {
        self.cas.load().contains(ca)
    }

    fn check_chain(&self, certificate: &PresentedCertificate) -> ChainResult {
        let cas = self.cas.load();
        let key = Self::chain_key(certificate);
        if let Some(cached) = self.chain_cache.get(&key)
            && cached.0 == cas.generation
        {
            return cached.1;
        }
        let result = match x509::find_path(&certificate.der, &certificate.chain, &cas.ders) {
            PathOutcome::Trusted {
                client_auth: false, ..
            } => Err(Rejection::WrongKeyUsage),
            PathOutcome::Trusted {
                ca_id,
                not_before,
                not_after,
                ..
            } => Ok(ChainInfo {
                ca_id,
                not_before,
                not_after,
            }),
            PathOutcome::Untrusted => Err(Rejection::UntrustedIssuer),
            PathOutcome::Malformed => Err(Rejection::MalformedCertificate),
        };
        if self.chain_cache.len() >= self.chain_cache_capacity {
            self.chain_cache.clear();
        }
        if self.chain_cache_capacity > 0 {
            self.chain_cache.insert(key, (cas.generation, result));
        }
        result
    }
}

/// How many agents a load reads per query.
const LOAD_BATCH: i64 = 10_000;

/// Builds the index from the store: policy, CAs, then every agent in id order.
pub async fn load(
    store: &dyn crate::store::Store,
    chain_cache_capacity: usize,
) -> Result<TrustIndex, crate::store::StoreError> {
    let index = TrustIndex::new(store.policy().await?, chain_cache_capacity);
    index.set_cas(&store.live_cas().await?);
    let mut after = None;
    loop {
        let batch = store.agents_after(after, LOAD_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        for agent in &batch {
            index.upsert(agent);
        }
        if (batch.len() as i64) < LOAD_BATCH {
            break;
        }
    }
    Ok(index)
}
