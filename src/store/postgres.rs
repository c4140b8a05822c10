//! PostgreSQL: the shared store for several replicas. Writers take one transaction-scoped
//! advisory lock, so change-feed sequence numbers become visible in the order they were
//! assigned and a replica following the feed never skips a change.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::rows::*;
use super::sql::{
    Parameters, SIGHTINGS_PER_STATEMENT, impl_store, parse_change, record_sightings_sql,
};
use super::{
    AgentFilter, Change, IdentityHolder, IdentityOfCertificate, IdentityUnderCa, Page,
    RevokedCertificate, Sighting, StoreError, StoredCrl,
};
use crate::domain::agent::{Agent, IndexedAgent, SupersededCertificate};
use crate::domain::approval::{HostRequest, HostRequestStatus};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, TokenDigest};
use crate::domain::policy::Policy;
use crate::domain::{AgentId, CaId, Fingerprint, HostRequestId, IssuerSerial};

const PARAMETERS: Parameters = Parameters::Numbered;

type Db = Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Arbitrary constant naming certgate's write lock ("cert" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6365_7274;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &SecretString, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url.expose_secret())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Db>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// The agents a row each, handed over in pages as they arrive.
    fn index_pages(&self) -> BoxStream<'_, Result<Vec<IndexedAgent>, StoreError>> {
        sqlx::query_scalar::<_, String>(INDEX_AGENTS_SQL)
            .fetch(&self.pool)
            .map(|line| indexed_agent(&line?))
            .ready_chunks(INDEX_PAGE_ROWS)
            .map(|page| page.into_iter().collect())
            .boxed()
    }
}

/// Agents per page when the trust index is loaded.
const INDEX_PAGE_ROWS: usize = 8192;

impl_store!(PostgresStore);
