//! PostgreSQL: the shared store for several replicas. Writers take one transaction-scoped
//! advisory lock, so change-feed sequence numbers become visible in the order they were
//! assigned and a replica following the feed never skips a change.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres, Transaction};

use super::rows::{INDEX_AGENTS_SQL, indexed_agent};
use super::sql::{Backend, Parameters, SqlStore};
use super::{Fault, StoreError};
use crate::domain::agent::IndexedAgent;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel writers announce changes on.
const CHANGES_CHANNEL: &str = "certgate_changes";

/// Arbitrary constant naming certgate's write lock ("cert" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6365_7274;

pub type PostgresStore = SqlStore<Postgres>;

/// How long a request waits for a pooled connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

/// The longest pause between two attempts to reach PostgreSQL at start-up.
const MAX_CONNECT_PAUSE: Duration = Duration::from_secs(5);

impl PostgresStore {
    /// Connects, waiting for PostgreSQL (with backoff) for up to `connect_timeout` while
    /// it cannot be reached or is still starting, then runs the migrations. Refusals that
    /// waiting cannot cure (a wrong password, no such database) fail at once.
    pub async fn open(
        url: &SecretString,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let options: PgConnectOptions = url
            .expose_secret()
            .parse()
            .map_err(|error| anyhow::anyhow!("the PostgreSQL URL does not parse: {error}"))?;
        let server = format!("{}:{}", options.get_host(), options.get_port());
        let deadline = Instant::now() + connect_timeout;
        let mut pause = Duration::from_millis(250);
        let pool = loop {
            let attempt = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await;
            match attempt {
                Ok(pool) => break pool,
                Err(error) if worth_waiting(&error) && Instant::now() + pause < deadline => {
                    tracing::warn!(%server, %error, retry_in_ms = pause.as_millis() as u64,
                        "waiting for PostgreSQL");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_CONNECT_PAUSE);
                }
                Err(error) => {
                    anyhow::bail!("cannot connect to PostgreSQL at {server}: {error}")
                }
            }
        };
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| anyhow::anyhow!("migrating PostgreSQL at {server}: {error}"))?;
        Ok(Self::new(pool.clone(), pool))
    }
}

/// Whether PostgreSQL may answer later: not reachable, starting or shutting down, out of
/// connections.
fn worth_waiting(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => matches!(fault(db.as_ref()), Some(Fault::Unavailable)),
        _ => false,
    }
}

/// What a PostgreSQL error says about the server, by SQLSTATE: 53100 disk_full, 25006
/// read_only_sql_transaction (a standby), and the classes a retry may cure: 08 connection
/// exception, 53 insufficient resources, 57 operator intervention (shutting down, say).
pub(super) fn fault(error: &dyn sqlx::error::DatabaseError) -> Option<Fault> {
    let error = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    match error.code() {
        "53100" => Some(Fault::Full),
        "25006" => Some(Fault::ReadOnly),
        code if ["08", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class)) =>
        {
            Some(Fault::Unavailable)
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl Backend for Postgres {
    const PARAMETERS: Parameters = Parameters::Numbered;
    const CHANGE_AND_AUDIT: &'static str = concat!(
        "WITH change AS (INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3)) ",
        insert_audit_event!(),
        " VALUES ($4, $5, $6, $7, $8, $9, $10, $11)"
    );

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

    /// Reachable, and not a standby that refuses every write.
    async fn check_writable(pool: &PgPool) -> Result<(), StoreError> {
        let read_only: String =
            sqlx::query_scalar("SELECT current_setting('transaction_read_only')")
                .fetch_one(pool)
                .await?;
        if read_only == "on" {
            return Err(StoreError::ReadOnly(
                "the PostgreSQL server accepts no writes (a standby?)".to_owned(),
            ));
        }
        Ok(())
    }

    async fn before_close(_: &PgPool) {}

    /// Delivered when the transaction commits; several in one transaction arrive as one.
    async fn announce_change(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANGES_CHANNEL)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// A listener on its own connection. It reconnects by itself after a lost connection
    /// (announcements sent meanwhile are lost); the error it reports then is a signal too,
    /// so the follower reads the feed at once.
    async fn change_signals(pool: &PgPool) -> Option<BoxStream<'static, ()>> {
        let listening = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(CHANGES_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listening.await {
            Ok(listener) => Some(listener.into_stream().map(|_| ()).boxed()),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes; following the feed by polling");
                None
            }
        }
    }
}

/// Agents per page when the trust index is loaded.
const INDEX_PAGE_ROWS: usize = 8192;
