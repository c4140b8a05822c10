//! PostgreSQL: the shared store for several replicas. Writers take one transaction-scoped
//! advisory lock, so change-feed sequence numbers become visible in the order they were
//! assigned and a replica following the feed never skips a change.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres, Transaction};

use super::StoreError;
use super::rows::{INDEX_AGENTS_SQL, indexed_agent};
use super::sql::{Backend, Parameters, SqlStore};
use crate::domain::agent::IndexedAgent;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Arbitrary constant naming certgate's write lock ("cert" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6365_7274;

pub type PostgresStore = SqlStore<Postgres>;

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
}

#[async_trait::async_trait]
impl Backend for Postgres {
    const PARAMETERS: Parameters = Parameters::Numbered;

    async fn write_tx(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// The agents a row each, handed over in pages as they arrive.
    fn index_pages(pool: &PgPool) -> BoxStream<'_, Result<Vec<IndexedAgent>, StoreError>> {
        sqlx::query_scalar::<_, String>(INDEX_AGENTS_SQL)
            .fetch(pool)
            .map(|line| indexed_agent(&line?))
            .ready_chunks(INDEX_PAGE_ROWS)
            .map(|page| page.into_iter().collect())
            .boxed()
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn before_close(_: &PgPool) {}
}

/// Agents per page when the trust index is loaded.
const INDEX_PAGE_ROWS: usize = 8192;
