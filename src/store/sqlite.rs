//! SQLite: the embedded default. WAL, foreign keys on, writers serialised by
//! `BEGIN IMMEDIATE` so they queue on the busy timeout instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use super::rows::*;
use super::sql::{impl_store, parse_change};
use super::{AgentFilter, Change, Page, RevokedCertificate, Sighting, StoreError, StoredCrl};
use crate::domain::agent::{Agent, IndexedAgent, SupersededCertificate};
use crate::domain::approval::{EnrolmentRequest, RequestStatus};
use crate::domain::ca::Ca;
use crate::domain::enrolment::{PendingEnrolment, TokenDigest};
use crate::domain::policy::Policy;
use crate::domain::{AgentId, CaId, Fingerprint, RequestId};

type Db = Sqlite;

const LOAD_BATCH_ROWS: usize = 1024;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(path: &Path, max_connections: u32) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                anyhow::anyhow!("cannot create data directory {}: {e}", parent.display())
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Rows cross from SQLite's thread to ours through this buffer: start-up streams
            // a million agents, and reads them in batches (see `trust::load`).
            .row_buffer_size(LOAD_BATCH_ROWS);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Db>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

impl_store!(SqliteStore);
