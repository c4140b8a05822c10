//! Storage: one trait, one implementation per backend, chosen once at start-up from the URL.
//!
//! The SQL is portable (TEXT/BIGINT/BOOLEAN columns, `$N` placeholders), so both
//! implementations are generated from one body in `sql.rs`; each backend keeps its own
//! connection set-up, migrations and write serialisation.

/// The audit trail's insert up to its VALUES, spelled once for the plain insert and for each
/// backend's change-and-audit statement, which bind its columns in this order.
macro_rules! insert_audit_event {
    () => {
        "INSERT INTO audit_events (at, actor, action, target_type, target_id, request_id, \
         source_ip, details)"
    };
}

mod group_commit;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod volume;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use time::OffsetDateTime;

use crate::config::DatabaseUrl;
use crate::domain::agent::{Agent, AgentStatus, IndexedAgent, SupersededCertificate};
use crate::domain::approval::{HostRequest, HostRequestStatus};
use crate::domain::audit::{Action, AuditEvent};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, TokenDigest};
use crate::domain::policy::Policy;
use crate::domain::{AgentId, CaId, Fingerprint, HostRequestId, IssuerSerial};

pub use postgres::PostgresStore;
pub use sqlite::{SchemaState, SqliteStore};

/// Clone, so that one failure of a transaction that wrote for several callers (enrolments
/// committed together) reaches each of them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint said no (same certificate twice, for example).
    #[error("conflict")]
    Conflict,
    /// The row changed between read and write; the caller may retry.
    #[error("concurrent update")]
    Concurrent,
    /// The database cannot be reached, is busy or gave no connection in time; a retry may
    /// work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The database's storage has no room for a write; writing works again once space is
    /// freed.
    #[error("database storage is full: {0}")]
    Full(String),
    /// The database refuses writes (a read-only file system or file, a standby server).
    #[error("database is read-only: {0}")]
    ReadOnly(String),
    #[error("database: {0}")]
    Other(#[source] Arc<sqlx::Error>),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// What a database error says about the store, as far as the backend can tell.
enum Fault {
    Unavailable,
    Full,
    ReadOnly,
}

/// The kinds of database failure counted for the metrics.
pub const FAULT_KINDS: [&str; 4] = ["unavailable", "full", "read_only", "other"];

/// Database failures this process has met, in the order of [`FAULT_KINDS`].
static FAULTS: [AtomicU64; FAULT_KINDS.len()] = [const { AtomicU64::new(0) }; FAULT_KINDS.len()];

/// How many database failures of each kind this process has met (for the metrics).
pub fn fault_counts() -> impl Iterator<Item = (&'static str, u64)> {
    FAULT_KINDS
        .into_iter()
        .zip(&FAULTS)
        .map(|(kind, count)| (kind, count.load(Ordering::Relaxed)))
}

impl StoreError {
    /// Which of [`FAULT_KINDS`] this is, if it is a failure of the database rather than an
    /// answer (not found, conflict) or a finding about the data.
    fn fault_kind(&self) -> Option<usize> {
        match self {
            Self::Unavailable(_) => Some(0),
            Self::Full(_) => Some(1),
            Self::ReadOnly(_) => Some(2),
            Self::Other(_) => Some(3),
            Self::NotFound | Self::Conflict | Self::Concurrent | Self::Corrupt(_) => None,
        }
    }

    /// A failure of the store itself rather than of one statement's data: every write that
    /// meets it would meet it too.
    fn is_store_wide(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Full(_) | Self::ReadOnly(_)
        )
    }

    fn classify(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::Database(db) => {
                let fault = sqlite::fault(db.as_ref()).or_else(|| postgres::fault(db.as_ref()));
                match fault {
                    Some(Fault::Unavailable) => Self::Unavailable(Arc::new(error)),
                    Some(Fault::Full) => Self::Full(db.message().to_owned()),
                    Some(Fault::ReadOnly) => Self::ReadOnly(db.message().to_owned()),
                    None => Self::Other(Arc::new(error)),
                }
            }
            // Protocol and Tls: the connection broke off mid-handshake (a server or a
            // proxy in front of it going away).
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(Arc::new(error)),
            _ => Self::Other(Arc::new(error)),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let classified = Self::classify(error);
        if let Some(kind) = classified.fault_kind() {
            FAULTS[kind].fetch_add(1, Ordering::Relaxed);
        }
        classified
    }
}

/// A page request, already validated.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// Filters for `GET B/audit`; each one given narrows the list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<Action>,
    pub target_id: Option<String>,
    /// From this time on (inclusive).
    pub since: Option<OffsetDateTime>,
    /// Before this time (exclusive).
    pub until: Option<OffsetDateTime>,
}

/// An audit event as stored, with its number in the trail.
#[derive(Debug, Clone)]
pub struct StoredAuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    /// A JSON object.
    pub details: String,
}

/// Filters for `GET B/agents`.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    pub enabled: Option<bool>,
    pub tag: Option<String>,
    pub ca_id: Option<CaId>,
    pub hostname_contains: Option<String>,
    pub status: Option<AgentStatus>,
    pub include_revoked: bool,
    /// Only certificates that expire before this time.
    pub expires_before: Option<OffsetDateTime>,
    pub sort: Sort,
}

/// Filters for `GET B/ca`.
#[derive(Debug, Clone, Default)]
pub struct CaFilter {
    /// Only CAs that expire before this time.
    pub expires_before: Option<OffsetDateTime>,
    pub sort: Sort,
}

/// What a list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    NotAfter,
    CreatedAt,
    /// Agents only.
    Hostname,
    /// Agents only; agents never seen come first in ascending order.
    LastSeenAt,
    /// CAs only.
    Name,
}

/// A list's order: newest first unless asked otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::CreatedAt,
            descending: true,
        }
    }
}

/// What a live CA's uploaded CRL lists, and until when it is current.
#[derive(Debug, Clone)]
pub struct ListedSerials {
    pub ca_id: CaId,
    pub serials: Vec<String>,
    /// The CRL's nextUpdate, unix seconds, when it has one.
    pub next_update: Option<i64>,
}

/// What changed, as recorded in the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Agent(AgentId),
    Ca(CaId),
    Policy,
}

/// A certificate a CA's own CRL lists.
#[derive(Debug, Clone)]
pub struct RevokedCertificate {
    /// Uppercase hex.
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    /// No longer used by its agent (rather than revoked by an administrator).
    pub superseded: bool,
}

/// An external CA's CRL as kept.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    pub pem: String,
    pub serials: Vec<String>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
}

/// An agent holding, or having held, a certificate with a given identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHolder {
    pub agent_id: AgentId,
    /// The fingerprint of the certificate it holds with that identity.
    pub fingerprint: Fingerprint,
    /// The agent, or that certificate of it, is revoked.
    pub revoked: bool,
    /// The agent's CA was removed.
    pub ca_removed: bool,
}

/// Reads a certificate's identity from its PEM.
pub type IdentityOfCertificate = dyn Fn(&str) -> Option<IssuerSerial> + Send + Sync;
/// The identity of the certificate with this serial (uppercase hex) issued by the CA whose
/// certificate PEM is given.
pub type IdentityUnderCa = dyn Fn(&str, &str) -> Option<IssuerSerial> + Send + Sync;

/// One `last_seen` observation to persist.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub agent_id: AgentId,
    pub at: OffsetDateTime,
    pub ip: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether a write could be stored now: the database answers, and (where it can be
    /// told without writing) has room and accepts writes.
    async fn check_writable(&self) -> Result<(), StoreError>;
    /// Closes the pool once everything is written (SQLite first moves its write-ahead log
    /// into the database file, so that file alone is a complete copy).
    async fn close(&self);
    /// A signal each time another replica writes, where the database can say so
    /// (PostgreSQL `NOTIFY`); `None` where only polling the change feed works.
    async fn change_signals(&self) -> Option<BoxStream<'static, ()>>;

    async fn insert_ca(&self, ca: &Ca, event: &AuditEvent) -> Result<(), StoreError>;
    async fn ca(&self, id: CaId) -> Result<Ca, StoreError>;
    /// A page of live CAs, each with its count of agents that are not revoked.
    async fn list_cas(
        &self,
        filter: &CaFilter,
        page: Page,
    ) -> Result<(Vec<(Ca, i64)>, i64), StoreError>;
    /// The CA's agents that are not revoked (it counts them: for the admin API only).
    async fn ca_agent_count(&self, id: CaId) -> Result<i64, StoreError>;
    /// Every CA that has not been removed.
    async fn live_cas(&self) -> Result<Vec<Ca>, StoreError>;
    /// Marks the CA removed and its agents `ca_removed`; `NotFound` if already removed.
    async fn remove_ca(
        &self,
        id: CaId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;

    async fn insert_agent(
        &self,
        agent: &Agent,
        certificate_pem: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    async fn agent(&self, id: AgentId) -> Result<Agent, StoreError>;
    /// Those of `ids` that are stored, in no particular order.
    async fn agents(&self, ids: &[AgentId]) -> Result<Vec<Agent>, StoreError>;
    /// Every row for this certificate, including revoked and `ca_removed` ones.
    async fn agents_by_fingerprint(&self, fp: &Fingerprint) -> Result<Vec<Agent>, StoreError>;
    /// Every agent whose current or superseded certificate has this identity.
    async fn identity_holders(
        &self,
        identity: &IssuerSerial,
    ) -> Result<Vec<IdentityHolder>, StoreError>;
    /// Records the identity of every certificate an older certgate stored without one;
    /// answers how many rows it filled in. Runs at start, before the trust index is read,
    /// so the feed needs no entry. A certificate whose identity cannot be read gets an empty
    /// one, so it is read once.
    async fn fill_identities(
        &self,
        of_certificate: &IdentityOfCertificate,
        under_ca: &IdentityUnderCa,
    ) -> Result<u64, StoreError>;
    /// Agents that are not revoked and whose certificate has the identity of another such
    /// agent's certificate (enrolled before identities were checked), grouped.
    async fn shared_identities(&self) -> Result<Vec<Vec<AgentId>>, StoreError>;
    async fn list_agents(
        &self,
        filter: &AgentFilter,
        page: Page,
        now: OffsetDateTime,
    ) -> Result<(Vec<Agent>, i64), StoreError>;
    /// Every agent, streamed in pages in no particular order, with only the fields the trust
    /// index keeps (see `rows::INDEX_AGENTS_SQL`): start-up reads a million agents, so it
    /// reads no more than it needs and holds no more than a few pages.
    fn index_agents(&self) -> BoxStream<'_, Result<Vec<IndexedAgent>, StoreError>>;
    /// Writes the mutable fields if `agent.version` is still the stored one; the stored
    /// version becomes `agent.version + 1`. `Concurrent` otherwise.
    async fn update_agent(&self, agent: &Agent, event: &AuditEvent) -> Result<(), StoreError>;
    async fn record_sightings(&self, sightings: &[Sighting]) -> Result<(), StoreError>;

    /// The live internal CA, if one is registered.
    async fn internal_ca(&self) -> Result<Option<Ca>, StoreError>;

    /// Creates the enrolment of `enrolment.agent_id`, or replaces it (a rotated token).
    async fn put_enrolment(
        &self,
        enrolment: &PendingEnrolment,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    async fn enrolment(&self, agent_id: AgentId) -> Result<PendingEnrolment, StoreError>;
    async fn enrolment_by_token(
        &self,
        digest: &TokenDigest,
    ) -> Result<PendingEnrolment, StoreError>;
    /// Unused enrolments of agents that have no certificate yet.
    async fn list_pending_enrolments(
        &self,
        page: Page,
    ) -> Result<(Vec<PendingEnrolment>, i64), StoreError>;
    /// In one transaction: marks the token used (`Conflict` if it already was) and stores
    /// the agent: a new one, or (re-enrolment) one whose certificate `replaced` is revoked
    /// with every certificate it superseded before (`NotFound` if the agent was revoked).
    async fn complete_enrolment(
        &self,
        digest: &TokenDigest,
        agent: &Agent,
        certificate_pem: &str,
        replaced: Option<&SupersededCertificate>,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Moves the agent to a new certificate (`agent` carries it) and keeps the one it had
    /// as `superseded`. `Conflict` if the agent's certificate is no longer that one,
    /// `NotFound` if the agent was revoked.
    async fn renew_certificate(
        &self,
        agent: &Agent,
        certificate_pem: &str,
        superseded: &SupersededCertificate,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Every certificate an agent (or every agent) no longer uses.
    async fn superseded_certificates(
        &self,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<SupersededCertificate>, StoreError>;
    /// Every certificate the agents `ids` no longer use.
    async fn superseded_certificates_of(
        &self,
        ids: &[AgentId],
    ) -> Result<Vec<SupersededCertificate>, StoreError>;
    /// Withdraws an unused enrolment of an agent that has no certificate yet.
    async fn cancel_enrolment(
        &self,
        agent_id: AgentId,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// The PEM of the agent's current certificate.
    async fn certificate_pem(&self, agent_id: AgentId) -> Result<String, StoreError>;

    async fn insert_request(
        &self,
        request: &HostRequest,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    async fn request(&self, id: HostRequestId) -> Result<HostRequest, StoreError>;
    async fn request_by_token(&self, digest: &TokenDigest) -> Result<HostRequest, StoreError>;
    async fn list_requests(
        &self,
        status: Option<HostRequestStatus>,
        page: Page,
    ) -> Result<(Vec<HostRequest>, i64), StoreError>;
    /// Marks a pending request approved and stores its agent, in one transaction;
    /// `Conflict` if it was decided meanwhile.
    async fn approve_request(
        &self,
        id: HostRequestId,
        agent: &Agent,
        certificate_pem: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// `Conflict` if the request is no longer pending.
    async fn deny_request(
        &self,
        id: HostRequestId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The agent a new host would collide with: one not revoked (CA not removed) with this
    /// hostname (case-insensitive), else an active one (enabled, unexpired at `now`) last
    /// seen from or approved for `ip_address`; `true` when the hostname matched.
    async fn conflicting_agent(
        &self,
        hostname: &str,
        ip_address: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(AgentId, bool)>, StoreError>;

    /// What the CA's CRL lists: revoked agents' certificates, and certificates agents no
    /// longer use that were revoked or whose grace window ended.
    async fn revoked_certificates(
        &self,
        ca_id: CaId,
        now: OffsetDateTime,
    ) -> Result<Vec<RevokedCertificate>, StoreError>;
    /// Stores the CA's latest CRL and revokes the agents whose serial it lists; answers them.
    /// `Conflict` when the stored CRL is newer (an older list must not undo a newer one).
    async fn put_crl(
        &self,
        ca_id: CaId,
        crl: &StoredCrl,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<Vec<AgentId>, StoreError>;
    /// The listed serials of every live CA that has a CRL.
    async fn crl_serials(&self) -> Result<Vec<ListedSerials>, StoreError>;

    async fn policy(&self) -> Result<Policy, StoreError>;
    async fn update_policy(&self, policy: &Policy, event: &AuditEvent) -> Result<(), StoreError>;

    /// Changes after `seq`, oldest first, with their sequence numbers.
    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, Change)>, StoreError>;
    async fn last_change(&self) -> Result<i64, StoreError>;
    /// The sequence number of the oldest change the feed still holds (0 when empty).
    async fn first_change(&self) -> Result<i64, StoreError>;
    /// Drops change-feed rows older than `before`, always keeping the newest.
    async fn prune_changes(&self, before: OffsetDateTime) -> Result<(), StoreError>;

    /// A page of the audit trail, newest first, with the total that match.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<(Vec<StoredAuditEvent>, i64), StoreError>;
}

/// Writes a consistent copy of a live SQLite database to `target` (a new file), without
/// creating or migrating it, and says where its schema stands. PostgreSQL has its own tools
/// for this.
pub async fn backup(
    database: &DatabaseUrl,
    target: &std::path::Path,
) -> anyhow::Result<SchemaState> {
    match database {
        DatabaseUrl::Sqlite(path) => {
            if target.exists() {
                anyhow::bail!("{} exists; name a new file", target.display());
            }
            let text = target
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("{} is not a UTF-8 path", target.display()))?;
            sqlite::backup(path, text).await
        }
        DatabaseUrl::Postgres(_) => anyhow::bail!(
            "the database is PostgreSQL: back it up with its own tools, e.g. \
             `pg_dump --format=custom --file=certgate.dump <database>` (restore with pg_restore)"
        ),
    }
}

/// Opens the database, creating it and running migrations, with a pool of at most
/// `max_connections`; waits up to `connect_timeout` for a PostgreSQL server to come up.
pub async fn connect(
    database: &DatabaseUrl,
    max_connections: u32,
    connect_timeout: std::time::Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match database {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path, max_connections).await?),
        DatabaseUrl::Postgres(url) => {
            Arc::new(PostgresStore::open(url, max_connections, connect_timeout).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(dir: &str) -> BTreeSet<String> {
        std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        assert_eq!(names("sqlite"), names("postgres"));
        assert!(!names("sqlite").is_empty());
    }
}
