//! The in-memory trust index that verify decides from: agents by fingerprint, the live CA
//! set and the policy. Admin writes apply their change here before they answer, and the
//! change-feed follower (`sync.rs`) applies other replicas' changes, so verify never waits
//! on the database.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::domain::agent::{Agent, AgentStatus, IndexedAgent, SupersededCertificate};
use crate::domain::ca::Ca;
use crate::domain::policy::Policy;
use crate::domain::verify::{AgentFacts, ChainInfo, PresentedCertificate, Rejection, TrustView};
use crate::domain::{AgentId, CaId, Fingerprint, IssuerSerial, Sha1Fingerprint};
use crate::store::ListedSerials;
use crate::x509::{self, Anchors, Judgement};

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

/// The first half of an [`IssuerSerial`] digest. A match only ever refuses a certificate (as
/// the agent's whose identity it carries), so a collision could deny, never admit; half the
/// key keeps the map of a million identities some 35 MB smaller.
type IdentityKey = [u8; 16];

fn identity_key(identity: &IssuerSerial) -> IdentityKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(&identity.as_bytes()[..16]);
    key
}

/// One enrolled agent as verify sees it. Kept small: a million of them live in memory.
#[derive(Debug)]
pub struct AgentEntry {
    pub id: AgentId,
    /// The hostname followed by the tags joined by `,` (ready for `X-Agent-Tags`), in one
    /// allocation; hostnames are at most 253 bytes.
    names: Box<str>,
    hostname_len: u8,
    pub facts: AgentFacts,
    created_at: i64,
    version: i64,
    /// The last sighting queued, as its second and a hash of its address (see
    /// [`Self::sighting_is_new`]), so a busy agent at one address queues one per second.
    last_sighting: AtomicU64,
}

impl AgentEntry {
    fn new(agent: IndexedAgent) -> Self {
        let hostname_len = u8::try_from(agent.hostname.len()).unwrap_or(u8::MAX);
        let mut names = agent.hostname;
        names.push_str(&agent.tags);
        Self {
            id: agent.id,
            names: names.into_boxed_str(),
            hostname_len,
            facts: agent.facts,
            created_at: agent.created_at,
            version: agent.version,
            last_sighting: AtomicU64::new(0),
        }
    }

    pub fn hostname(&self) -> &str {
        self.names
            .get(..usize::from(self.hostname_len))
            .unwrap_or_default()
    }

    /// Tags joined by `,`.
    pub fn tags(&self) -> &str {
        self.names
            .get(usize::from(self.hostname_len)..)
            .unwrap_or_default()
    }

    /// True unless the last sighting queued was in the same second from the same address.
    /// The address is kept as a 32-bit hash next to the second in one atomic word: a new
    /// address hashing like the last one within the same second (one chance in 2^32) is
    /// queued at the agent's next request in a later second.
    pub fn sighting_is_new(&self, second: i64, ip: Option<IpAddr>) -> bool {
        let address = foldhash::fast::FixedState::default().hash_one(ip);
        // The second's low 32 bits: they differ from one second to the next.
        let packed = (second as u64) << 32 | (address & 0xffff_ffff);
        self.last_sighting.load(Ordering::Relaxed) != packed
            && self.last_sighting.swap(packed, Ordering::Relaxed) != packed
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

/// Windows the metrics report expiring certificates in, in days.
pub const EXPIRY_WINDOWS_DAYS: [i64; 2] = [7, 30];

/// The agents of the trust index, counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Agents by status, in the order of [`AgentStatus::ALL`].
    pub by_status: [u64; AgentStatus::ALL.len()],
    /// Active agents whose certificate expires within each of [`EXPIRY_WINDOWS_DAYS`].
    pub expiring: [u64; EXPIRY_WINDOWS_DAYS.len()],
    /// The soonest expiry among active agents, unix seconds.
    pub earliest_expiry: Option<i64>,
}

impl Census {
    fn count(&mut self, status: AgentStatus, not_after: i64, now: i64) {
        if let Some(slot) = AgentStatus::ALL.iter().position(|s| *s == status) {
            self.by_status[slot] += 1;
        }
        if status != AgentStatus::Active {
            return;
        }
        for (days, count) in EXPIRY_WINDOWS_DAYS.iter().zip(&mut self.expiring) {
            if not_after <= now + days * 86_400 {
                *count += 1;
            }
        }
        self.earliest_expiry = Some(self.earliest_expiry.map_or(not_after, |t| t.min(not_after)));
    }
}

/// The live CAs, replaced as a whole when one is added or removed.
#[derive(Default)]
struct CaSet {
    generation: u64,
    /// Every live CA with its validity `(not_before, not_after)`, unix seconds.
    validity: Vec<(CaId, (i64, i64))>,
    anchors: Arc<Anchors>,
    /// The live CAs as stored, for enrolment to read without a database round trip.
    live: Arc<[Arc<Ca>]>,
}

impl CaSet {
    fn contains(&self, id: CaId) -> bool {
        self.validity.iter().any(|(ca, _)| *ca == id)
    }
}

type ChainResult = Result<ChainInfo, Rejection>;

/// A path validation's answer, kept while the CA set is the same and the time is inside the
/// stretch in which no certificate involved starts or stops being valid.
#[derive(Clone, Copy)]
struct CachedChain {
    generation: u64,
    holds_from: i64,
    holds_until: i64,
    result: ChainResult,
}

pub struct TrustIndex {
    by_sha256: DigestMap<Fingerprint, AgentRef>,
    /// The same entries by SHA-1 (nginx's `$ssl_client_fingerprint`); both maps always name
    /// the same entry for a certificate.
    by_sha1: DigestMap<Sha1Fingerprint, AgentRef>,
    /// The same entries by the certificate's issuer and serial number, which its
    /// re-encodings share (see [`identity_key`]).
    by_identity: DigestMap<IdentityKey, AgentRef>,
    cas: ArcSwap<CaSet>,
    policy: ArcSwap<Policy>,
    /// Path validations of certificates that are not enrolled, keyed by a digest of the leaf
    /// and the presented chain.
    chain_cache: DigestMap<Fingerprint, CachedChain>,
    chain_cache_capacity: usize,
    /// Certificates agents no longer use, by agent, with the agent version the list was read
    /// at: only agents that renewed or re-enrolled have any.
    superseded: DashMap<AgentId, (i64, Vec<SupersededCertificate>)>,
    /// Serials listed by external CAs' uploaded CRLs.
    revoked_serials: ArcSwap<HashMap<CaId, HashSet<String>>>,
    /// When each uploaded CRL stops being current (its nextUpdate), for the metrics.
    crl_next_updates: ArcSwap<Vec<(CaId, i64)>>,
}

impl TrustIndex {
    pub fn new(policy: Policy, chain_cache_capacity: usize) -> Self {
        Self {
            by_sha256: DigestMap::default(),
            by_sha1: DigestMap::default(),
            by_identity: DigestMap::default(),
            cas: ArcSwap::from_pointee(CaSet::default()),
            policy: ArcSwap::from_pointee(policy),
            chain_cache: DigestMap::default(),
            chain_cache_capacity,
            superseded: DashMap::new(),
            revoked_serials: ArcSwap::from_pointee(HashMap::new()),
            crl_next_updates: ArcSwap::from_pointee(Vec::new()),
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
        self.cas.load().validity.len()
    }

    /// A live CA as this replica last read the store. A CA another replica added may not
    /// be here yet, and one it removed may still be: callers that write check the store.
    pub fn live_ca(&self, id: CaId) -> Option<Arc<Ca>> {
        self.cas.load().live.iter().find(|ca| ca.id == id).cloned()
    }

    /// Every live CA as this replica last read the store.
    pub fn live_cas(&self) -> Arc<[Arc<Ca>]> {
        Arc::clone(&self.cas.load().live)
    }

    /// The agents counted for the metrics at `now` (unix seconds): each agent once, by its
    /// current certificate. Reads the whole index, so it is for a scrape, not for verify.
    pub fn census(&self, now: i64) -> Census {
        let superseded: HashSet<Fingerprint> = self
            .superseded
            .iter()
            .flat_map(|entry| {
                let certificates = &entry.value().1;
                certificates
                    .iter()
                    .map(|c| c.fingerprint)
                    .collect::<Vec<_>>()
            })
            .collect();
        let cas = self.cas.load();
        let mut census = Census::default();
        for entry in self.by_sha256.iter() {
            let facts = &entry.value().0.facts;
            if superseded.contains(&facts.fingerprint) {
                continue;
            }
            let ca_not_after = cas
                .validity
                .iter()
                .find(|(id, _)| *id == facts.ca_id)
                .map(|(_, (_, not_after))| *not_after);
            let status = AgentStatus::of(facts, ca_not_after, now);
            census.count(status, facts.not_after, now);
        }
        census
    }

    /// Replaces the live CA set. Cached chain results of the old set stop counting.
    pub fn set_cas(&self, cas: &[Ca]) {
        let generation = self.cas.load().generation + 1;
        let live: Vec<&Ca> = cas.iter().filter(|ca| ca.removed_at.is_none()).collect();
        let ders: Vec<(CaId, Vec<u8>)> = live
            .iter()
            .filter_map(|ca| {
                let der = x509::pem_certificates(&ca.certificate_pem)
                    .ok()?
                    .into_iter()
                    .next()?;
                Some((ca.id, der))
            })
            .collect();
        let anchors = Anchors::new(ders.iter().map(|(id, der)| (*id, der.as_slice())));
        if anchors.len() < live.len() {
            tracing::warn!(
                stored = live.len(),
                usable = anchors.len(),
                "some stored CA certificates cannot anchor a path (their agents still verify \
                 by fingerprint); remove and upload them again"
            );
        }
        let validity = live
            .iter()
            .map(|ca| {
                let window = (
                    ca.not_before.unix_timestamp(),
                    ca.not_after.unix_timestamp(),
                );
                (ca.id, window)
            })
            .collect();
        let live = live.into_iter().map(|ca| Arc::new(ca.clone())).collect();
        self.cas.store(Arc::new(CaSet {
            generation,
            validity,
            anchors: Arc::new(anchors),
            live,
        }));
        self.chain_cache.clear();
    }

    /// Replaces the CRL-listed serials. Cached chain results stop counting, since a listed
    /// certificate may be among them.
    pub fn set_revoked_serials(&self, lists: Vec<ListedSerials>) {
        let next_updates = lists
            .iter()
            .filter_map(|list| Some((list.ca_id, list.next_update?)))
            .collect();
        self.crl_next_updates.store(Arc::new(next_updates));
        let lists = lists
            .into_iter()
            .map(|list| (list.ca_id, list.serials.into_iter().collect()))
            .collect();
        self.revoked_serials.store(Arc::new(lists));
        // A new generation, stored after the serials: a chain check that raced with this
        // and judged by the old lists caches its result under the old generation, which
        // lookups then ignore.
        let cas = self.cas.load();
        self.cas.store(Arc::new(CaSet {
            generation: cas.generation + 1,
            validity: cas.validity.clone(),
            anchors: Arc::clone(&cas.anchors),
            live: Arc::clone(&cas.live),
        }));
        self.chain_cache.clear();
    }

    /// Each uploaded CRL's nextUpdate (unix seconds), by CA, for those that have one.
    pub fn crl_next_updates(&self) -> Arc<Vec<(CaId, i64)>> {
        self.crl_next_updates.load_full()
    }

    /// Whether `ca`'s uploaded CRL lists `serial`.
    pub fn serial_revoked(&self, ca: CaId, serial: &str) -> bool {
        self.revoked_serials
            .load()
            .get(&ca)
            .is_some_and(|serials| serials.contains(serial))
    }

    /// Adds or replaces an agent. Several rows may share a certificate (a re-enrolment after
    /// its CA was removed); the index keeps the one verify should judge by.
    /// The certificates the agent no longer uses are indexed too, under the same version:
    /// with the agent's state (so disabling or revoking it reaches them) and their own
    /// window. Entries are only ever replaced by newer versions, never removed, so a stale
    /// read (another replica's change applied late) cannot bring a certificate back.
    pub fn upsert(&self, agent: &Agent) {
        self.insert(IndexedAgent::from(agent));
        if let Some(superseded) = self.superseded.get(&agent.id) {
            for certificate in &superseded.1 {
                self.insert(IndexedAgent::from(agent).presenting(certificate));
            }
        }
    }

    /// Records the agent's superseded certificates as read at agent `version`; an older read
    /// never replaces a newer one. Indexed by the next `upsert` of the agent.
    pub fn set_superseded(
        &self,
        agent: AgentId,
        version: i64,
        certificates: Vec<SupersededCertificate>,
    ) {
        match self.superseded.entry(agent) {
            dashmap::mapref::entry::Entry::Occupied(mut slot) => {
                if version >= slot.get().0 {
                    slot.insert((version, certificates));
                }
            }
            dashmap::mapref::entry::Entry::Vacant(slot) => {
                if !certificates.is_empty() {
                    slot.insert((version, certificates));
                }
            }
        }
    }

    fn insert(&self, agent: IndexedAgent) {
        let (fingerprint, fingerprint_sha1) =
            (agent.facts.fingerprint, agent.facts.fingerprint_sha1);
        let identity = agent.issuer_serial;
        let entry = AgentRef(Arc::new(AgentEntry::new(agent)));
        let cas = self.cas.load();
        // The SHA-1 map is written under the SHA-256 entry's lock, so two concurrent
        // upserts of one certificate cannot leave the maps naming different entries.
        match self.by_sha256.entry(fingerprint) {
            Entry::Occupied(mut slot) => {
                if replaces(&entry.0, &slot.get().0, &cas) {
                    self.by_sha1.insert(fingerprint_sha1, entry.clone());
                    slot.insert(entry.clone());
                }
            }
            Entry::Vacant(slot) => {
                self.by_sha1.insert(fingerprint_sha1, entry.clone());
                slot.insert(entry.clone());
            }
        }
        // Another certificate with this identity may be indexed under its own fingerprint
        // (rows written before identities were checked): the same rule picks one.
        if let Some(identity) = identity {
            match self.by_identity.entry(identity_key(&identity)) {
                Entry::Occupied(mut slot) => {
                    if replaces(&entry.0, &slot.get().0, &cas) {
                        slot.insert(entry);
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(entry);
                }
            }
        }
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

/// Whether `new` should replace `current` for one certificate: a newer version of the same
/// agent does; of two agents, a live one beats one whose CA is gone, then the newer one.
fn replaces(new: &AgentEntry, current: &AgentEntry, cas: &CaSet) -> bool {
    if new.id == current.id {
        return new.version >= current.version;
    }
    let is_live = |e: &AgentEntry| !e.facts.ca_removed && cas.contains(e.facts.ca_id);
    let (new_live, old_live) = (is_live(new), is_live(current));
    (new_live && !old_live) || (new_live == old_live && new.created_at >= current.created_at)
}

impl TrustView for TrustIndex {
    type Entry = AgentRef;

    fn agent_by_sha256(&self, fingerprint: &Fingerprint) -> Option<AgentRef> {
        self.lookup(fingerprint)
    }

    fn agent_by_sha1(&self, fingerprint: &Sha1Fingerprint) -> Option<AgentRef> {
        self.by_sha1.get(fingerprint).map(|e| e.value().clone())
    }

    fn agent_by_identity(&self, certificate: &PresentedCertificate) -> Option<AgentRef> {
        let identity = x509::issuer_serial(&certificate.der)?;
        self.by_identity
            .get(&identity_key(&identity))
            .map(|e| e.value().clone())
    }

    fn ca_validity(&self, ca: CaId) -> Option<(i64, i64)> {
        let cas = self.cas.load();
        cas.validity
            .iter()
            .find(|(id, _)| *id == ca)
            .map(|(_, window)| *window)
    }

    fn check_chain(&self, certificate: &PresentedCertificate, now: i64) -> ChainResult {
        let cas = self.cas.load();
        let key = Self::chain_key(certificate);
        if let Some(cached) = self.chain_cache.get(&key)
            && cached.generation == cas.generation
            && (cached.holds_from..cached.holds_until).contains(&now)
        {
            return cached.result;
        }
        let judgement = x509::validate(&certificate.der, &certificate.chain, &cas.anchors, now);
        let result = self.chain_result(&judgement);
        if self.chain_cache.len() >= self.chain_cache_capacity {
            self.chain_cache.clear();
        }
        if self.chain_cache_capacity > 0 {
            self.chain_cache.insert(
                key,
                CachedChain {
                    generation: cas.generation,
                    holds_from: judgement.holds_from,
                    holds_until: judgement.holds_until,
                    result,
                },
            );
        }
        result
    }
}

impl TrustIndex {
    /// A path validation in verify's terms; a valid path whose certificate under the
    /// stored CA is on that CA's revocation list is a revoked certificate.
    fn chain_result(&self, judgement: &Judgement) -> ChainResult {
        match &judgement.outcome {
            Ok(path) if self.serial_revoked(path.ca_id, &path.serial_under_ca) => {
                Err(Rejection::AgentRevoked)
            }
            Ok(path) => Ok(ChainInfo {
                ca_id: path.ca_id,
                ca_not_after: path.ca_not_after,
            }),
            Err(error) => Err(error.rejection()),
        }
    }
}

/// Builds the index from the store: policy, CAs, then every agent.
pub async fn load(
    store: &dyn crate::store::Store,
    chain_cache_capacity: usize,
) -> Result<TrustIndex, crate::store::StoreError> {
    let index = TrustIndex::new(store.policy().await?, chain_cache_capacity);
    index.set_cas(&store.live_cas().await?);
    index.set_revoked_serials(store.crl_serials().await?);
    let mut pages = store.index_agents();
    while let Some(page) = pages.next().await {
        for agent in page? {
            index.insert(agent);
        }
    }
    let mut superseded: std::collections::HashMap<AgentId, Vec<SupersededCertificate>> =
        std::collections::HashMap::new();
    for certificate in store.superseded_certificates(None).await? {
        superseded
            .entry(certificate.agent_id)
            .or_default()
            .push(certificate);
    }
    for (agent, certificates) in superseded {
        let agent = store.agent(agent).await?;
        index.set_superseded(agent.id, agent.version, certificates);
        index.upsert(&agent);
    }
    Ok(index)
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
