//! The SQL both backends run, written once: [`SqlStore`] implements [`Store`] for any
//! sqlx database that is a [`Backend`], which supplies what differs (how writers are
//! serialised, how the trust index is streamed, how parameters are spelled).
//!
//! `$N` parameters are used throughout: SQLite accepts them too. The bounds on the two
//! `impl` blocks are what the queries need of a database: the column types (TEXT, INTEGER
//! and booleans) that mean the same on both.

use std::str::FromStr;
use std::sync::LazyLock;

use futures_util::stream::BoxStream;
use time::OffsetDateTime;

use super::group_commit::{AgentInsert, GroupCommit};
use super::rows::{
    AGENT_COLUMNS, AgentRow, AuditRow, CA_AGENT_COUNT, CA_COLUMNS, CaRow, CountedCaRow,
    ENROLMENT_COLUMNS, EnrolmentRow, PolicyRow, REQUEST_COLUMNS, RequestRow, SUPERSEDED_COLUMNS,
    SupersededRow, contains_pattern, from_micros, hex_of, identity_text, json_list, micros,
    superseded_certificate, tag_pattern,
};
use super::{
    AgentFilter, AuditFilter, CaFilter, Change, IdentityHolder, IdentityOfCertificate,
    IdentityUnderCa, ListedSerials, Page, RevokedCertificate, Sighting, Sort, SortKey, Store,
    StoreError, StoredAuditEvent, StoredCrl,
};
use crate::audit_log;
use crate::domain::agent::{Agent, IndexedAgent, SupersededCertificate};
use crate::domain::approval::{HostRequest, HostRequestStatus};
use crate::domain::audit::AuditEvent;
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, TokenDigest};
use crate::domain::policy::Policy;
use crate::domain::{AgentId, CaId, Fingerprint, HostRequestId, IssuerSerial};

/// What differs between the databases certgate runs on.
#[async_trait::async_trait]
pub trait Backend: sqlx::Database {
    const PARAMETERS: Parameters;
    /// Records a change-feed row (`$1` entity, `$2` id, `$3` time) and an audit event
    /// (`$4`..`$11` as in [`SqlStore::record_audit`]) in one round trip.
    const CHANGE_AND_AUDIT: &'static str;

    /// A transaction that serialises writers, so change-feed sequence numbers commit in
    /// the order they were assigned.
    async fn write_tx(
        pool: &sqlx::Pool<Self>,
    ) -> Result<sqlx::Transaction<'static, Self>, sqlx::Error>;

    /// Every agent as the trust index holds it, in pages.
    fn index_pages(pool: &sqlx::Pool<Self>)
    -> BoxStream<'_, Result<Vec<IndexedAgent>, StoreError>>;

    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// [`Store::check_writable`](super::Store::check_writable), without writing.
    async fn check_writable(pool: &sqlx::Pool<Self>) -> Result<(), StoreError>;

    /// What to do before the pool closes at shutdown.
    async fn before_close(pool: &sqlx::Pool<Self>);

    /// Tells other replicas, once `tx` commits, that the change feed has grown.
    async fn announce_change(tx: &mut sqlx::Transaction<'_, Self>) -> Result<(), sqlx::Error>;

    /// A signal each time another replica announces a change, where the database offers
    /// one; the feed stays the source of truth.
    async fn change_signals(pool: &sqlx::Pool<Self>) -> Option<BoxStream<'static, ()>>;
}

/// A store on one database: reads take any connection of `pool`, writes go through
/// `writer`.
pub struct SqlStore<DB: sqlx::Database> {
    pub(super) pool: sqlx::Pool<DB>,
    /// For SQLite a pool of one connection, so certgate's own writers queue in turn rather
    /// than poll for the database lock (SQLite's busy handler sleeps and retries, and a
    /// writer can lose every retry to the others); for PostgreSQL `pool` itself.
    pub(super) writer: sqlx::Pool<DB>,
    /// Enrolments, written through `writer` several to a transaction.
    agent_inserts: GroupCommit,
}

#[async_trait::async_trait]
impl<DB> Store for SqlStore<DB>
where
    DB: Backend + sqlx::database::HasStatementCache,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB>,
    for<'q> Option<bool>: sqlx::Encode<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
    for<'r> &'r str: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
{
    async fn check_writable(&self) -> Result<(), StoreError> {
        DB::check_writable(&self.pool).await
    }

    async fn close(&self) {
        DB::before_close(&self.writer).await;
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn change_signals(&self) -> Option<BoxStream<'static, ()>> {
        DB::change_signals(&self.pool).await
    }

    async fn insert_ca(&self, ca: &Ca, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        sqlx::query(
            "INSERT INTO cas (id, name, fingerprint, subject, not_before, not_after, \
             certificate_pem, created_at, removed_at, internal) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
        )
        .bind(ca.id.to_string())
        .bind(&ca.name)
        .bind(hex_of(&ca.fingerprint))
        .bind(&ca.subject)
        .bind(ca.not_before.unix_timestamp())
        .bind(ca.not_after.unix_timestamp())
        .bind(&ca.certificate_pem)
        .bind(micros(ca.created_at))
        .bind(ca.internal)
        .execute(&mut *tx)
        .await?;
        Self::record_audited_change(&mut tx, "ca", &ca.id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn ca(&self, id: CaId) -> Result<Ca, StoreError> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE id = $1 AND removed_at IS NULL");
        Self::one_row::<CaRow, _>(&self.pool, &sql, id.to_string()).await
    }

    async fn list_cas(
        &self,
        filter: &CaFilter,
        page: Page,
    ) -> Result<(Vec<(Ca, i64)>, i64), StoreError> {
        const WHERE: &str = "WHERE removed_at IS NULL AND ($1 IS NULL OR not_after < $1)";
        let order = order_by(filter.sort);
        let sql = format!(
            "SELECT {CA_COLUMNS}, {CA_AGENT_COUNT} AS agent_count FROM cas {WHERE} \
             ORDER BY {order} LIMIT $2 OFFSET $3"
        );
        let expires_before = filter.expires_before.map(|t| t.unix_timestamp());
        let rows = sqlx::query_as::<_, CountedCaRow>(&sql)
            .bind(expires_before)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM cas {WHERE}"))
            .bind(expires_before)
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(|row| Ok((Ca::try_from(row.ca)?, row.agent_count)))
            .collect::<Result<_, StoreError>>()?;
        Ok((items, total))
    }

    async fn ca_agent_count(&self, id: CaId) -> Result<i64, StoreError> {
        let sql = format!("SELECT {CA_AGENT_COUNT} FROM cas WHERE id = $1");
        let (count,): (i64,) = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(count)
    }

    async fn live_cas(&self) -> Result<Vec<Ca>, StoreError> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE removed_at IS NULL");
        sqlx::query_as::<_, CaRow>(&sql)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Ca::try_from)
            .collect()
    }

    async fn remove_ca(
        &self,
        id: CaId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let removed =
            sqlx::query("UPDATE cas SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL")
                .bind(id.to_string())
                .bind(micros(now))
                .execute(&mut *tx)
                .await?;
        if DB::rows_affected(&removed) == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE agents SET ca_removed_at = $2, updated_at = $2, version = version + 1 \
             WHERE ca_id = $1 AND ca_removed_at IS NULL",
        )
        .bind(id.to_string())
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        Self::record_audited_change(&mut tx, "ca", &id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn insert_agent(
        &self,
        agent: &Agent,
        certificate_pem: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.agent_inserts
            .insert(AgentInsert {
                agent: agent.clone(),
                certificate_pem: certificate_pem.to_owned(),
                event: event.clone(),
                span: tracing::Span::current(),
            })
            .await
    }

    async fn agent(&self, id: AgentId) -> Result<Agent, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        Self::one_row::<AgentRow, _>(&self.pool, &sql, id.to_string()).await
    }

    async fn agents(&self, ids: &[AgentId]) -> Result<Vec<Agent>, StoreError> {
        let select = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id");
        Self::rows_by_id::<AgentRow>(&self.pool, &select, ids)
            .await?
            .into_iter()
            .map(Agent::try_from)
            .collect()
    }

    async fn agents_by_fingerprint(&self, fp: &Fingerprint) -> Result<Vec<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE fingerprint = $1");
        sqlx::query_as::<_, AgentRow>(&sql)
            .bind(hex_of(fp))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Agent::try_from)
            .collect()
    }

    async fn identity_holders(
        &self,
        identity: &IssuerSerial,
    ) -> Result<Vec<IdentityHolder>, StoreError> {
        // A superseded certificate's agent is looked up per row, not joined (see
        // `insert_agent_row`).
        let rows: Vec<(String, String, bool, bool)> = sqlx::query_as(
            "SELECT id, fingerprint, revoked_at IS NOT NULL, ca_removed_at IS NOT NULL \
             FROM agents WHERE issuer_serial = $1 \
             UNION ALL \
             SELECT s.agent_id, s.fingerprint, \
                 s.revoked OR (SELECT revoked_at IS NOT NULL FROM agents a \
                     WHERE a.id = s.agent_id), \
                 (SELECT ca_removed_at IS NOT NULL FROM agents a WHERE a.id = s.agent_id) \
             FROM superseded_certificates s WHERE s.issuer_serial = $1",
        )
        .bind(identity.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, fingerprint, revoked, ca_removed)| {
                Ok(IdentityHolder {
                    agent_id: id
                        .parse()
                        .map_err(|_| StoreError::Corrupt("agent id".into()))?,
                    fingerprint: Fingerprint::parse(&fingerprint)
                        .ok_or_else(|| StoreError::Corrupt("fingerprint".into()))?,
                    revoked,
                    ca_removed,
                })
            })
            .collect()
    }

    async fn fill_identities(
        &self,
        of_certificate: &IdentityOfCertificate,
        under_ca: &IdentityUnderCa,
    ) -> Result<u64, StoreError> {
        let mut filled = 0;
        loop {
            let page: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, certificate_pem FROM agents \
                 WHERE issuer_serial IS NULL AND certificate_pem <> '' LIMIT 1000",
            )
            .fetch_all(&self.pool)
            .await?;
            if page.is_empty() {
                break;
            }
            let mut tx = DB::write_tx(&self.writer).await?;
            for (id, pem) in &page {
                // A certificate that cannot be read is marked, so it is not read again.
                let identity = of_certificate(pem).map_or_else(String::new, |i| i.to_string());
                sqlx::query("UPDATE agents SET issuer_serial = $2 WHERE id = $1")
                    .bind(id)
                    .bind(identity)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            filled += page.len() as u64;
        }
        let superseded: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.fingerprint, s.serial, cas.certificate_pem \
             FROM superseded_certificates s JOIN cas ON cas.id = s.ca_id \
             WHERE s.issuer_serial IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        if !superseded.is_empty() {
            let mut tx = DB::write_tx(&self.writer).await?;
            for (fingerprint, serial, ca_pem) in &superseded {
                let identity = under_ca(ca_pem, serial).map_or_else(String::new, |i| i.to_string());
                sqlx::query(
                    "UPDATE superseded_certificates SET issuer_serial = $2 \
                     WHERE fingerprint = $1",
                )
                .bind(fingerprint)
                .bind(identity)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            filled += superseded.len() as u64;
        }
        Ok(filled)
    }

    async fn shared_identities(&self) -> Result<Vec<Vec<AgentId>>, StoreError> {
        // The inner query reads the identity index alone (fast over a million
        // agents); only the few duplicates are then looked up.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT issuer_serial, id FROM agents \
             WHERE revoked_at IS NULL AND ca_removed_at IS NULL AND issuer_serial IN \
             (SELECT issuer_serial FROM agents WHERE issuer_serial <> '' \
              GROUP BY issuer_serial HAVING COUNT(*) > 1) \
             ORDER BY issuer_serial, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut groups: Vec<(String, Vec<AgentId>)> = Vec::new();
        for (identity, id) in rows {
            let id = id
                .parse::<AgentId>()
                .map_err(|_| StoreError::Corrupt("agent id".into()))?;
            match groups.last_mut() {
                Some((last, ids)) if *last == identity => ids.push(id),
                _ => groups.push((identity, vec![id])),
            }
        }
        Ok(groups
            .into_iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(_, ids)| ids)
            .collect())
    }

    async fn list_agents(
        &self,
        filter: &AgentFilter,
        page: Page,
        now: OffsetDateTime,
    ) -> Result<(Vec<Agent>, i64), StoreError> {
        // One WHERE for both queries; NULL parameters switch a condition off.
        const WHERE: &str = "WHERE ($1 IS NULL OR enabled = $1) \
            AND ($2 IS NULL OR tags LIKE $2 ESCAPE '\\') \
            AND ($3 IS NULL OR ca_id = $3) \
            AND ($4 IS NULL OR LOWER(hostname) LIKE $4 ESCAPE '\\') \
            AND ($5 IS NULL OR $5 = CASE WHEN revoked_at IS NOT NULL THEN 'revoked' \
                WHEN ca_removed_at IS NOT NULL THEN 'ca_removed' \
                WHEN (SELECT not_after FROM cas WHERE cas.id = agents.ca_id) < $6 \
                    THEN 'ca_expired' \
                WHEN NOT enabled THEN 'disabled' \
                WHEN not_after < $6 THEN 'expired' ELSE 'active' END) \
            AND ($7 OR revoked_at IS NULL) \
            AND ($8 IS NULL OR not_after < $8)";
        let order = order_by(filter.sort);
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM agents {WHERE} \
             ORDER BY {order} LIMIT $9 OFFSET $10"
        );
        let rows = Self::bind_filter(sqlx::query_as::<_, AgentRow>(&sql), filter, now)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let count_sql = format!("SELECT COUNT(*) FROM agents {WHERE}");
        let (total,): (i64,) = Self::bind_filter(sqlx::query_as(&count_sql), filter, now)
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(Agent::try_from)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    fn index_agents(
        &self,
    ) -> futures_util::stream::BoxStream<'_, Result<Vec<IndexedAgent>, StoreError>> {
        DB::index_pages(&self.pool)
    }

    async fn update_agent(&self, agent: &Agent, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let updated = sqlx::query(
            "UPDATE agents SET hostname = $2, description = $3, tags = $4, enabled = $5, \
             allowed_ips = $6, updated_at = $7, revoked_at = $8, version = version + 1 \
             WHERE id = $1 AND version = $9",
        )
        .bind(agent.id.to_string())
        .bind(agent.hostname.as_str())
        .bind(agent.description.as_deref())
        .bind(json_list(agent.tags.as_slice()))
        .bind(agent.enabled)
        .bind(json_list(&agent.allowed_ips.to_strings()))
        .bind(micros(agent.updated_at))
        .bind(agent.revoked_at.map(micros))
        .bind(agent.version)
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&updated) == 0 {
            return Err(StoreError::Concurrent);
        }
        Self::record_audited_change(&mut tx, "agent", &agent.id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn record_sightings(&self, sightings: &[Sighting]) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        for chunk in sightings.chunks(SIGHTINGS_PER_STATEMENT) {
            let full = chunk.len() == SIGHTINGS_PER_STATEMENT;
            let tail;
            let sql = if full {
                full_sightings_sql(DB::PARAMETERS)
            } else {
                tail = record_sightings_sql(chunk.len(), DB::PARAMETERS);
                tail.as_str()
            };
            // Only the full-size statement recurs often enough to keep prepared.
            let mut query = sqlx::query(sql).persistent(full);
            for sighting in chunk {
                query = query
                    .bind(sighting.agent_id.to_string())
                    .bind(micros(sighting.at))
                    .bind(sighting.ip.as_deref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn internal_ca(&self) -> Result<Option<Ca>, StoreError> {
        let sql = format!("SELECT {CA_COLUMNS} FROM cas WHERE internal AND removed_at IS NULL");
        sqlx::query_as::<_, CaRow>(&sql)
            .fetch_optional(&self.pool)
            .await?
            .map(Ca::try_from)
            .transpose()
    }

    async fn put_enrolment(
        &self,
        enrolment: &PendingEnrolment,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        sqlx::query(
            "INSERT INTO enrollments (agent_id, hostname, description, tags, allowed_ips, \
             profile, token_hash, expires_at, created_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL) \
             ON CONFLICT (agent_id) DO UPDATE SET hostname = $2, description = $3, \
             tags = $4, allowed_ips = $5, profile = $6, token_hash = $7, \
             expires_at = $8, created_at = $9, used_at = NULL",
        )
        .bind(enrolment.agent_id.to_string())
        .bind(enrolment.hostname.as_str())
        .bind(enrolment.description.as_deref())
        .bind(json_list(enrolment.tags.as_slice()))
        .bind(json_list(&enrolment.allowed_ips.to_strings()))
        .bind(enrolment.profile.as_str())
        .bind(enrolment.token_digest.as_str())
        .bind(micros(enrolment.expires_at))
        .bind(micros(enrolment.created_at))
        .execute(&mut *tx)
        .await?;
        Self::record_audit(&mut tx, event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn enrolment(&self, agent_id: AgentId) -> Result<PendingEnrolment, StoreError> {
        let sql = format!("SELECT {ENROLMENT_COLUMNS} FROM enrollments WHERE agent_id = $1");
        Self::one_row::<EnrolmentRow, _>(&self.pool, &sql, agent_id.to_string()).await
    }

    async fn enrolment_by_token(
        &self,
        digest: &TokenDigest,
    ) -> Result<PendingEnrolment, StoreError> {
        let sql = format!("SELECT {ENROLMENT_COLUMNS} FROM enrollments WHERE token_hash = $1");
        Self::one_row::<EnrolmentRow, _>(&self.pool, &sql, digest.as_str().to_owned()).await
    }

    async fn list_pending_enrolments(
        &self,
        page: Page,
    ) -> Result<(Vec<PendingEnrolment>, i64), StoreError> {
        const PENDING: &str = "used_at IS NULL AND agent_id NOT IN (SELECT id FROM agents)";
        let sql = format!(
            "SELECT {ENROLMENT_COLUMNS} FROM enrollments WHERE {PENDING} \
             ORDER BY created_at DESC, agent_id LIMIT $1 OFFSET $2"
        );
        let rows = sqlx::query_as::<_, EnrolmentRow>(&sql)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM enrollments WHERE {PENDING}"))
                .fetch_one(&self.pool)
                .await?;
        let items = rows
            .into_iter()
            .map(PendingEnrolment::try_from)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    async fn complete_enrolment(
        &self,
        digest: &TokenDigest,
        agent: &Agent,
        certificate_pem: &str,
        replaced: Option<&SupersededCertificate>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let claimed = sqlx::query(
            "UPDATE enrollments SET used_at = $3 \
             WHERE agent_id = $1 AND token_hash = $2 AND used_at IS NULL",
        )
        .bind(agent.id.to_string())
        .bind(digest.as_str())
        .bind(micros(agent.updated_at))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&claimed) == 0 {
            return Err(StoreError::Conflict);
        }
        if let Some(replaced) = replaced {
            // A re-enrolment replaces the key: neither the current certificate nor
            // one still in its renewal grace window may verify any more.
            Self::replace_certificate(&mut tx, agent, certificate_pem, &replaced.fingerprint)
                .await?;
            sqlx::query("UPDATE superseded_certificates SET revoked = TRUE WHERE agent_id = $1")
                .bind(agent.id.to_string())
                .execute(&mut *tx)
                .await?;
            Self::insert_superseded(&mut tx, replaced, agent.updated_at).await?;
        } else {
            Self::insert_agent_row(&mut tx, agent, certificate_pem).await?;
        }
        Self::record_audited_change(&mut tx, "agent", &agent.id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn renew_certificate(
        &self,
        agent: &Agent,
        certificate_pem: &str,
        superseded: &SupersededCertificate,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        Self::replace_certificate(&mut tx, agent, certificate_pem, &superseded.fingerprint).await?;
        Self::insert_superseded(&mut tx, superseded, agent.updated_at).await?;
        Self::record_audited_change(&mut tx, "agent", &agent.id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn superseded_certificates(
        &self,
        agent_id: Option<AgentId>,
    ) -> Result<Vec<SupersededCertificate>, StoreError> {
        let sql = format!(
            "SELECT {SUPERSEDED_COLUMNS} FROM superseded_certificates \
             WHERE ($1 IS NULL OR agent_id = $1)"
        );
        let rows: Vec<SupersededRow> = sqlx::query_as(&sql)
            .bind(agent_id.map(|id| id.to_string()))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(superseded_certificate).collect()
    }

    async fn superseded_certificates_of(
        &self,
        ids: &[AgentId],
    ) -> Result<Vec<SupersededCertificate>, StoreError> {
        let select =
            format!("SELECT {SUPERSEDED_COLUMNS} FROM superseded_certificates WHERE agent_id");
        Self::rows_by_id::<SupersededRow>(&self.pool, &select, ids)
            .await?
            .into_iter()
            .map(superseded_certificate)
            .collect()
    }

    async fn cancel_enrolment(
        &self,
        agent_id: AgentId,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let deleted = sqlx::query(
            "DELETE FROM enrollments WHERE agent_id = $1 AND used_at IS NULL \
             AND agent_id NOT IN (SELECT id FROM agents)",
        )
        .bind(agent_id.to_string())
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&deleted) == 0 {
            return Err(StoreError::NotFound);
        }
        Self::record_audit(&mut tx, event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn certificate_pem(&self, agent_id: AgentId) -> Result<String, StoreError> {
        let (pem,): (String,) = sqlx::query_as("SELECT certificate_pem FROM agents WHERE id = $1")
            .bind(agent_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(pem)
    }

    async fn insert_request(
        &self,
        request: &HostRequest,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        sqlx::query(
            "INSERT INTO enrollment_requests (id, hostname, machine_id, ip_address, \
             os_details, csr_pem, key_sha256, token_hash, status, agent_id, created_at, \
             expires_at, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, NULL)",
        )
        .bind(request.id.to_string())
        .bind(request.hostname.as_str())
        .bind(&request.machine_id)
        .bind(request.ip_address.to_string())
        .bind(&request.os_details)
        .bind(&request.csr_pem)
        .bind(hex_of(&request.key_sha256))
        .bind(request.token_digest.as_str())
        .bind(request.status.as_str())
        .bind(micros(request.created_at))
        .bind(micros(request.expires_at))
        .execute(&mut *tx)
        .await?;
        Self::record_audit(&mut tx, event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn request(&self, id: HostRequestId) -> Result<HostRequest, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM enrollment_requests WHERE id = $1");
        Self::one_row::<RequestRow, _>(&self.pool, &sql, id.to_string()).await
    }

    async fn request_by_token(&self, digest: &TokenDigest) -> Result<HostRequest, StoreError> {
        let sql =
            format!("SELECT {REQUEST_COLUMNS} FROM enrollment_requests WHERE token_hash = $1");
        Self::one_row::<RequestRow, _>(&self.pool, &sql, digest.as_str().to_owned()).await
    }

    async fn list_requests(
        &self,
        status: Option<HostRequestStatus>,
        page: Page,
    ) -> Result<(Vec<HostRequest>, i64), StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM enrollment_requests \
             WHERE ($1 IS NULL OR status = $1) \
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
        );
        let status = status.map(HostRequestStatus::as_str);
        let rows = sqlx::query_as::<_, RequestRow>(&sql)
            .bind(status)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM enrollment_requests WHERE ($1 IS NULL OR status = $1)",
        )
        .bind(status)
        .fetch_one(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(HostRequest::try_from)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    async fn approve_request(
        &self,
        id: HostRequestId,
        agent: &Agent,
        certificate_pem: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let decided = sqlx::query(
            "UPDATE enrollment_requests SET status = 'approved', agent_id = $2, \
             decided_at = $3 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(agent.id.to_string())
        .bind(micros(agent.created_at))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&decided) == 0 {
            return Err(StoreError::Conflict);
        }
        Self::insert_agent_row(&mut tx, agent, certificate_pem).await?;
        Self::record_audited_change(&mut tx, "agent", &agent.id.to_string(), event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn deny_request(
        &self,
        id: HostRequestId,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let decided = sqlx::query(
            "UPDATE enrollment_requests SET status = 'denied', decided_at = $2 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&decided) == 0 {
            return Err(StoreError::Conflict);
        }
        Self::record_audit(&mut tx, event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn conflicting_agent(
        &self,
        hostname: &str,
        ip_address: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(AgentId, bool)>, StoreError> {
        let row: Option<(String, bool)> = sqlx::query_as(
            "SELECT id, LOWER(hostname) = LOWER($1) FROM agents \
             WHERE revoked_at IS NULL AND ca_removed_at IS NULL \
             AND (LOWER(hostname) = LOWER($1) OR (enabled AND not_after > $3 AND (id IN \
             (SELECT agent_id FROM agent_sightings WHERE last_seen_ip = $2) OR id IN \
             (SELECT agent_id FROM enrollment_requests \
              WHERE status = 'approved' AND ip_address = $2)))) \
             ORDER BY 2 DESC LIMIT 1",
        )
        .bind(hostname)
        .bind(ip_address)
        .bind(now.unix_timestamp())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, by_name)| {
            id.parse::<AgentId>()
                .map(|id| (id, by_name))
                .map_err(|_| StoreError::Corrupt("agent id".into()))
        })
        .transpose()
    }

    async fn revoked_certificates(
        &self,
        ca_id: CaId,
        now: OffsetDateTime,
    ) -> Result<Vec<RevokedCertificate>, StoreError> {
        let rows: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT serial, revoked_at, FALSE FROM agents \
             WHERE ca_id = $1 AND revoked_at IS NOT NULL \
             UNION ALL \
             SELECT serial, superseded_at, TRUE FROM superseded_certificates \
             WHERE ca_id = $1 AND (revoked OR not_after < $2)",
        )
        .bind(ca_id.to_string())
        .bind(now.unix_timestamp())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(serial, at, superseded)| {
                Ok(RevokedCertificate {
                    serial,
                    revoked_at: from_micros(at)?,
                    superseded,
                })
            })
            .collect()
    }

    async fn put_crl(
        &self,
        ca_id: CaId,
        crl: &StoredCrl,
        now: OffsetDateTime,
        event: &AuditEvent,
    ) -> Result<Vec<AgentId>, StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        let stored = sqlx::query(
            "INSERT INTO crls (ca_id, crl_pem, serials, this_update, next_update, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (ca_id) DO UPDATE SET crl_pem = $2, serials = $3, \
             this_update = $4, next_update = $5, updated_at = $6 \
             WHERE crls.this_update <= $4",
        )
        .bind(ca_id.to_string())
        .bind(&crl.pem)
        .bind(json_list(&crl.serials))
        .bind(crl.this_update.unix_timestamp())
        .bind(crl.next_update.map(|t| t.unix_timestamp()))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        if DB::rows_affected(&stored) == 0 {
            return Err(StoreError::Conflict);
        }
        // Listed serials revoke their agents for good, as an administrator would.
        let listed: std::collections::HashSet<&str> =
            crl.serials.iter().map(String::as_str).collect();
        let candidates: Vec<(String, String)> =
            sqlx::query_as("SELECT id, serial FROM agents WHERE ca_id = $1 AND revoked_at IS NULL")
                .bind(ca_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let mut revoked = Vec::new();
        for (id, serial) in candidates {
            if !listed.contains(serial.as_str()) {
                continue;
            }
            sqlx::query(
                "UPDATE agents SET revoked_at = $2, updated_at = $2, version = version + 1 \
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(&id)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
            Self::record_change(&mut tx, "agent", &id).await?;
            revoked.push(
                id.parse::<AgentId>()
                    .map_err(|_| StoreError::Corrupt("agent id".into()))?,
            );
        }
        let event = event.clone().with("revoked_agents", revoked.len());
        Self::record_audited_change(&mut tx, "ca", &ca_id.to_string(), &event).await?;
        Self::commit_audited(tx, &event).await?;
        Ok(revoked)
    }

    async fn crl_serials(&self) -> Result<Vec<ListedSerials>, StoreError> {
        let rows: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT c.ca_id, c.serials, c.next_update FROM crls c JOIN cas ON cas.id = c.ca_id \
             WHERE cas.removed_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(ca_id, serials, next_update)| {
                let ca_id = ca_id
                    .parse::<CaId>()
                    .map_err(|_| StoreError::Corrupt("ca id".into()))?;
                let serials = serde_json::from_str(&serials)
                    .map_err(|_| StoreError::Corrupt("crl serials".into()))?;
                Ok(ListedSerials {
                    ca_id,
                    serials,
                    next_update,
                })
            })
            .collect()
    }

    async fn policy(&self) -> Result<Policy, StoreError> {
        sqlx::query_as::<_, PolicyRow>(
            "SELECT enforcement_enabled, reject_unknown_certs, auto_enroll, updated_at \
             FROM policy WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    async fn update_policy(&self, policy: &Policy, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = DB::write_tx(&self.writer).await?;
        sqlx::query(
            "UPDATE policy SET enforcement_enabled = $1, reject_unknown_certs = $2, \
             auto_enroll = $3, updated_at = $4 WHERE id = 1",
        )
        .bind(policy.enforcement_enabled)
        .bind(policy.reject_unknown_certs)
        .bind(policy.auto_enroll)
        .bind(micros(policy.updated_at))
        .execute(&mut *tx)
        .await?;
        Self::record_audited_change(&mut tx, "policy", "1", event).await?;
        Self::commit_audited(tx, event).await
    }

    async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, Change)>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, entity, entity_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(seq, entity, id)| parse_change(&entity, &id).map(|c| (seq, c)))
            .collect()
    }

    async fn last_change(&self) -> Result<i64, StoreError> {
        let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    async fn first_change(&self) -> Result<i64, StoreError> {
        let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MIN(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<(Vec<StoredAuditEvent>, i64), StoreError> {
        // NULL parameters switch a condition off, as in `list_agents`.
        const WHERE: &str = "WHERE ($1 IS NULL OR actor = $1) \
            AND ($2 IS NULL OR action = $2) \
            AND ($3 IS NULL OR target_id = $3) \
            AND ($4 IS NULL OR at >= $4) \
            AND ($5 IS NULL OR at < $5)";
        static LIST: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id, at, actor, action, target_type, target_id, request_id, source_ip, \
                 details FROM audit_events {WHERE} ORDER BY id DESC LIMIT $6 OFFSET $7"
            )
        });
        static COUNT: LazyLock<String> =
            LazyLock::new(|| format!("SELECT COUNT(*) FROM audit_events {WHERE}"));
        let rows: Vec<AuditRow> = Self::bind_audit_filter(sqlx::query_as(&LIST), filter)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        let (total,): (i64,) = Self::bind_audit_filter(sqlx::query_as(&COUNT), filter)
            .fetch_one(&self.pool)
            .await?;
        let items = rows
            .into_iter()
            .map(StoredAuditEvent::try_from)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    async fn prune_changes(&self, before: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM changes WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(micros(before))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// The queries the `Store` methods share, under the same bounds (Rust does not carry a
/// where clause from one impl to another).
impl<DB> SqlStore<DB>
where
    DB: Backend + sqlx::database::HasStatementCache,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB>,
    for<'q> Option<bool>: sqlx::Encode<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
    for<'r> &'r str: sqlx::ColumnIndex<<DB as sqlx::Database>::Row>,
{
    /// A store reading through `pool` and writing through `writer`; starts the task that
    /// writes enrolments.
    pub(super) fn new(pool: sqlx::Pool<DB>, writer: sqlx::Pool<DB>) -> Self {
        let batch_writer = writer.clone();
        let agent_inserts = GroupCommit::start(move |inserts| {
            let writer = batch_writer.clone();
            async move { Self::insert_agents(&writer, &inserts).await }
        });
        Self {
            pool,
            writer,
            agent_inserts,
        }
    }

    /// Inserts agents in one transaction, each with its change-feed row and audit event,
    /// and answers for each: a conflict refuses only its own agent. When a statement fails
    /// for one of them, the others must not share its fate, so each is written again in a
    /// transaction of its own; a failure of the store itself (unreachable, full,
    /// read-only) is every insert's.
    pub(super) async fn insert_agents(
        writer: &sqlx::Pool<DB>,
        inserts: &[AgentInsert],
    ) -> Vec<Result<(), StoreError>> {
        match Self::insert_agents_together(writer, inserts).await {
            Ok(outcomes) => outcomes,
            Err(error) if inserts.len() == 1 || error.is_store_wide() => {
                vec![Err(error); inserts.len()]
            }
            Err(_) => {
                let mut outcomes = Vec::with_capacity(inserts.len());
                for insert in inserts {
                    match Self::insert_agents_together(writer, std::slice::from_ref(insert)).await {
                        Ok(alone) => outcomes.extend(alone),
                        Err(error) => outcomes.push(Err(error)),
                    }
                }
                outcomes
            }
        }
    }

    /// One transaction for all of `inserts`; `Err` when any statement failed (nothing is
    /// then written).
    async fn insert_agents_together(
        writer: &sqlx::Pool<DB>,
        inserts: &[AgentInsert],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut tx = DB::write_tx(writer).await?;
        let mut outcomes = Vec::with_capacity(inserts.len());
        for AgentInsert {
            agent,
            certificate_pem,
            event,
            ..
        } in inserts
        {
            outcomes.push(
                if Self::try_insert_agent_row(&mut tx, agent, certificate_pem).await? {
                    Self::record_change_and_audit(&mut tx, "agent", &agent.id.to_string(), event)
                        .await?;
                    Ok(())
                } else {
                    // The statement ran and inserted nothing: only this agent is refused.
                    Err(StoreError::Conflict)
                },
            );
        }
        if outcomes.iter().any(Result::is_ok) {
            DB::announce_change(&mut tx).await?;
        }
        tx.commit().await?;
        for (insert, outcome) in inserts.iter().zip(&outcomes) {
            if outcome.is_ok() {
                insert.span.in_scope(|| audit_log::recorded(&insert.event));
            }
        }
        Ok(outcomes)
    }

    /// Inserts an agent; `Conflict` when its CA is no longer live, or when its
    /// certificate's identity was revoked or is held under a live CA (the rule of
    /// `registry::refusal_for`). Writers are serialised, so the checks and the insert
    /// cannot interleave; one statement does them all, which spares round trips per
    /// enrolment. Superseded certificates are found by their identity and their agent looked
    /// up per row: joined, PostgreSQL planned the join from the agents' side while the tables
    /// were young and unanalysed, reading every agent for each enrolment.
    async fn insert_agent_row<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        agent: &Agent,
        certificate_pem: &str,
    ) -> Result<(), StoreError> {
        if Self::try_insert_agent_row(tx, agent, certificate_pem).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    /// [`Self::insert_agent_row`], saying `false` rather than `Conflict` when the checks
    /// refused the agent: the statement then ran without error, and the transaction may go
    /// on (a failed statement aborts a PostgreSQL transaction).
    async fn try_insert_agent_row<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        agent: &Agent,
        certificate_pem: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO agents (id, hostname, description, tags, ca_id, fingerprint, \
             fingerprint_sha1, subject, serial, not_before, not_after, certificate_pem, \
             enabled, allowed_ips, created_at, updated_at, version, profile, issuer_serial) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19 \
             WHERE EXISTS (SELECT 1 FROM cas WHERE id = $5 AND removed_at IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM agents WHERE issuer_serial = $19 \
                 AND (ca_removed_at IS NULL OR revoked_at IS NOT NULL)) \
             AND NOT EXISTS (SELECT 1 FROM superseded_certificates s \
                 WHERE s.issuer_serial = $19 AND (s.revoked OR (SELECT \
                     a.ca_removed_at IS NULL OR a.revoked_at IS NOT NULL \
                     FROM agents a WHERE a.id = s.agent_id)))",
        )
        .bind(agent.id.to_string())
        .bind(agent.hostname.as_str())
        .bind(agent.description.as_deref())
        .bind(json_list(agent.tags.as_slice()))
        .bind(agent.ca_id.to_string())
        .bind(hex_of(&agent.fingerprint))
        .bind(agent.fingerprint_sha1.to_string())
        .bind(&agent.subject)
        .bind(&agent.serial)
        .bind(agent.not_before.unix_timestamp())
        .bind(agent.not_after.unix_timestamp())
        .bind(certificate_pem)
        .bind(agent.enabled)
        .bind(json_list(&agent.allowed_ips.to_strings()))
        .bind(micros(agent.created_at))
        .bind(micros(agent.updated_at))
        .bind(agent.version)
        .bind(agent.profile.as_str())
        .bind(identity_text(agent.issuer_serial.as_ref()))
        .execute(&mut **tx)
        .await?;
        Ok(DB::rows_affected(&inserted) != 0)
    }

    /// An agent's new certificate. `NotFound` if the agent was revoked meanwhile,
    /// `Conflict` if its certificate is no longer `previous`.
    async fn replace_certificate<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        agent: &Agent,
        certificate_pem: &str,
        previous: &Fingerprint,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE agents SET fingerprint = $2, fingerprint_sha1 = $3, subject = $4, \
             serial = $5, not_before = $6, not_after = $7, certificate_pem = $8, \
             updated_at = $9, ca_id = $10, issuer_serial = $12, version = version + 1 \
             WHERE id = $1 AND revoked_at IS NULL AND fingerprint = $11",
        )
        .bind(agent.id.to_string())
        .bind(hex_of(&agent.fingerprint))
        .bind(agent.fingerprint_sha1.to_string())
        .bind(&agent.subject)
        .bind(&agent.serial)
        .bind(agent.not_before.unix_timestamp())
        .bind(agent.not_after.unix_timestamp())
        .bind(certificate_pem)
        .bind(micros(agent.updated_at))
        .bind(agent.ca_id.to_string())
        .bind(hex_of(previous))
        .bind(identity_text(agent.issuer_serial.as_ref()))
        .execute(&mut **tx)
        .await?;
        if DB::rows_affected(&updated) == 1 {
            return Ok(());
        }
        let (revoked,): (bool,) =
            sqlx::query_as("SELECT revoked_at IS NOT NULL FROM agents WHERE id = $1")
                .bind(agent.id.to_string())
                .fetch_one(&mut **tx)
                .await?;
        Err(if revoked {
            StoreError::NotFound
        } else {
            StoreError::Conflict
        })
    }

    async fn insert_superseded<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        superseded: &SupersededCertificate,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO superseded_certificates (fingerprint, fingerprint_sha1, agent_id, \
             not_before, not_after, superseded_at, revoked, ca_id, serial, issuer_serial) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(hex_of(&superseded.fingerprint))
        .bind(superseded.fingerprint_sha1.to_string())
        .bind(superseded.agent_id.to_string())
        .bind(superseded.not_before)
        .bind(superseded.not_after)
        .bind(micros(at))
        .bind(superseded.revoked)
        .bind(superseded.ca_id.to_string())
        .bind(&superseded.serial)
        .bind(identity_text(superseded.issuer_serial.as_ref()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The rows of `select`, a query ending in the column to match, whose column is one of
    /// `ids`: `IN` lists of up to [`IDS_PER_STATEMENT`].
    async fn rows_by_id<R>(
        pool: &sqlx::Pool<DB>,
        select: &str,
        ids: &[AgentId],
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    {
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "{select} IN ({})",
                parameter_list(1, chunk.len(), DB::PARAMETERS)
            );
            let mut query = sqlx::query_as::<_, R>(&sql).persistent(false);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            rows.extend(query.fetch_all(pool).await?);
        }
        Ok(rows)
    }

    /// The one row `sql` selects by its single parameter `key`, converted; `NotFound`
    /// when there is none.
    async fn one_row<R, T>(pool: &sqlx::Pool<DB>, sql: &str, key: String) -> Result<T, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
        T: TryFrom<R, Error = StoreError>,
    {
        sqlx::query_as::<_, R>(sql)
            .bind(key)
            .fetch_optional(pool)
            .await?
            .ok_or(StoreError::NotFound)?
            .try_into()
    }

    async fn record_change<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        entity: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3)")
            .bind(entity)
            .bind(id)
            .bind(micros(OffsetDateTime::now_utc()))
            .execute(&mut **tx)
            .await?;
        DB::announce_change(tx).await?;
        Ok(())
    }

    /// [`Self::record_change`] and [`Self::record_audit`] in one round trip.
    async fn record_audited_change<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        entity: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        Self::record_change_and_audit(tx, entity, id, event).await?;
        DB::announce_change(tx).await?;
        Ok(())
    }

    /// The change-feed row and the audit event of a change, without telling other replicas
    /// (see [`Backend::announce_change`]).
    async fn record_change_and_audit<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        entity: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(DB::CHANGE_AND_AUDIT)
            .bind(entity)
            .bind(id)
            .bind(micros(OffsetDateTime::now_utc()));
        Self::bind_audit(query, event).execute(&mut **tx).await?;
        Ok(())
    }

    /// Records an audit event in the transaction of the change it describes.
    async fn record_audit<'c>(
        tx: &mut sqlx::Transaction<'c, DB>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(AUDIT_INSERT);
        Self::bind_audit(query, event).execute(&mut **tx).await?;
        Ok(())
    }

    /// Binds an audit event's eight columns, in the order of `insert_audit_event!`.
    fn bind_audit<'q>(
        query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
        event: &AuditEvent,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>> {
        query
            .bind(micros(event.at))
            .bind(event.actor.clone())
            .bind(event.action.as_str())
            .bind(event.target.kind())
            .bind(event.target.id())
            .bind(event.request_id.clone())
            .bind(event.source_ip.map(|ip| ip.to_string()))
            .bind(event.details_json())
    }

    /// Commits, then logs the event: one log line for each event the trail holds.
    async fn commit_audited(
        tx: sqlx::Transaction<'_, DB>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        tx.commit().await?;
        audit_log::recorded(event);
        Ok(())
    }

    /// Binds `$1`..`$5` of the audit list's WHERE.
    fn bind_audit_filter<'q, O>(
        query: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>,
        filter: &'q AuditFilter,
    ) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>> {
        query
            .bind(filter.actor.as_deref())
            .bind(filter.action.map(|action| action.as_str()))
            .bind(filter.target_id.as_deref())
            .bind(filter.since.map(micros))
            .bind(filter.until.map(micros))
    }

    /// Binds `$1`..`$8` of the agent list's WHERE.
    fn bind_filter<'q, O>(
        query: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>,
        filter: &'q AgentFilter,
        now: OffsetDateTime,
    ) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>> {
        query
            .bind(filter.enabled)
            .bind(filter.tag.as_deref().map(tag_pattern))
            .bind(filter.ca_id.map(|id| id.to_string()))
            .bind(filter.hostname_contains.as_deref().map(contains_pattern))
            .bind(filter.status.map(|s| s.as_str()))
            .bind(now.unix_timestamp())
            .bind(filter.include_revoked || filter.status.is_some())
            .bind(filter.expires_before.map(|t| t.unix_timestamp()))
    }
}

/// The ORDER BY of a list, from the sort's fixed spellings (never from request text); the
/// id last, so that pages do not overlap. Agents' last sighting comes from its own table,
/// and agents never seen sort before all others in ascending order on both databases.
fn order_by(sort: Sort) -> String {
    let direction = if sort.descending { "DESC" } else { "ASC" };
    let column = match sort.key {
        SortKey::NotAfter => "not_after",
        SortKey::CreatedAt => "created_at",
        SortKey::Hostname => "LOWER(hostname)",
        SortKey::Name => "LOWER(name)",
        SortKey::LastSeenAt => {
            const SEEN: &str =
                "(SELECT last_seen_at FROM agent_sightings s WHERE s.agent_id = agents.id)";
            return format!(
                "CASE WHEN {SEEN} IS NULL THEN 0 ELSE 1 END {direction}, {SEEN} {direction}, id"
            );
        }
    };
    format!("{column} {direction}, id")
}

/// Sightings one statement writes: one statement per sighting cost a busy fleet's flush a
/// round trip to the database for every agent seen.
pub const SIGHTINGS_PER_STATEMENT: usize = 500;

/// How a backend's SQL spells a statement's parameters.
#[derive(Clone, Copy)]
pub enum Parameters {
    /// `$1`, `$2`, …
    Numbered,
    /// `?`, bound in order. For SQLite: sqlx looks up the name of every numbered parameter,
    /// and SQLite finds a name by scanning the statement's list of names, so binding n
    /// numbered parameters costs n².
    Positional,
}

/// An audit event alone, bound by [`SqlStore::bind_audit`].
const AUDIT_INSERT: &str = concat!(
    insert_audit_event!(),
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

/// At most this many ids in one `IN (…)` list.
const IDS_PER_STATEMENT: usize = 500;

/// Parameters `first` to `first + count - 1`, comma-separated, as the backend spells them.
fn parameter_list(first: usize, count: usize, parameters: Parameters) -> String {
    let list: Vec<String> = (first..first + count)
        .map(|n| match parameters {
            Parameters::Numbered => format!("${n}"),
            Parameters::Positional => "?".to_owned(),
        })
        .collect();
    list.join(", ")
}

/// Upserts `rows` sightings, three parameters each (agent id, microseconds, IP), for distinct
/// agents. A sighting never replaces a newer one, and one of an agent that is not stored is
/// dropped.
pub fn record_sightings_sql(rows: usize, parameters: Parameters) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| format!("({})", parameter_list(3 * row + 1, 3, parameters)))
        .collect();
    // `WHERE TRUE` keeps SQLite from reading `ON CONFLICT` as the join's constraint.
    format!(
        "WITH seen (agent_id, seen_at, ip) AS (VALUES {}) \
         INSERT INTO agent_sightings (agent_id, last_seen_at, last_seen_ip) \
         SELECT seen.agent_id, seen.seen_at, seen.ip FROM seen \
         JOIN agents ON agents.id = seen.agent_id WHERE TRUE \
         ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
         last_seen_ip = excluded.last_seen_ip \
         WHERE agent_sightings.last_seen_at < excluded.last_seen_at",
        values.join(", ")
    )
}

/// The full-size sightings statement of a backend, built once: a busy fleet's flush runs it
/// hundreds of times.
fn full_sightings_sql(parameters: Parameters) -> &'static str {
    static NUMBERED: LazyLock<String> =
        LazyLock::new(|| record_sightings_sql(SIGHTINGS_PER_STATEMENT, Parameters::Numbered));
    static POSITIONAL: LazyLock<String> =
        LazyLock::new(|| record_sightings_sql(SIGHTINGS_PER_STATEMENT, Parameters::Positional));
    match parameters {
        Parameters::Numbered => &NUMBERED,
        Parameters::Positional => &POSITIONAL,
    }
}

/// Reads one change-feed row.
pub fn parse_change(entity: &str, id: &str) -> Result<Change, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("change {entity}/{id}"));
    match entity {
        "agent" => AgentId::from_str(id)
            .map(Change::Agent)
            .map_err(|_| corrupt()),
        "ca" => CaId::from_str(id).map(Change::Ca).map_err(|_| corrupt()),
        "policy" => Ok(Change::Policy),

        _ => Err(corrupt()),
    }
}
