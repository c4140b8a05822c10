//! SQLite: the embedded default. WAL, foreign keys on, writers serialised by
//! `BEGIN IMMEDIATE` so they queue on the busy timeout instead of failing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqlitePool, Transaction};

use super::rows::{SQLITE_INDEX_PAGE_SQL, indexed_agents};
use super::sql::{Backend, Parameters, SqlStore};
use super::{Fault, StoreError, volume};
use crate::domain::agent::IndexedAgent;

/// Agents per page when the trust index is loaded.
const INDEX_PAGE_ROWS: i64 = 8192;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub type SqliteStore = SqlStore<Sqlite>;

/// How long a request waits for a reading connection, and a write for the write lock,
/// before the store counts as unavailable: a lock held longer by another process (a stuck
/// backup tool) answers 503 after a second.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// How long a write waits for its turn on the one writing connection. Writes ahead of it
/// are certgate's own and each takes about a millisecond, so this only runs out when the
/// machine is starved of CPU or disk; it is longer than `MAX_WAIT` so that a burst of
/// writes on a busy machine is not refused as an outage.
const WRITER_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The directory a database file lives in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// What a SQLite error says about the database, by primary result code: SQLITE_FULL,
/// SQLITE_READONLY, and those a retry may cure (SQLITE_BUSY and SQLITE_LOCKED: a lock held
/// beyond the busy timeout; SQLITE_IOERR; SQLITE_CANTOPEN).
pub(super) fn fault(error: &dyn sqlx::error::DatabaseError) -> Option<Fault> {
    error.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let code: i32 = error.code()?.parse().ok()?;
    match code & 0xff {
        13 => Some(Fault::Full),
        8 => Some(Fault::ReadOnly),
        5 | 6 | 10 | 14 => Some(Fault::Unavailable),
        _ => None,
    }
}

impl SqliteStore {
    pub async fn open(path: &Path, max_connections: u32) -> anyhow::Result<Self> {
        let dir = directory_of(path);
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
        volume::check(dir).map_err(|error| anyhow::anyhow!("cannot store data: {error}"))?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged write (a revocation) survives a power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // After a burst the log is cut back to this once it restarts.
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            .busy_timeout(MAX_WAIT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITER_QUEUE_WAIT)
            .after_release(|connection, _| {
                Box::pin(async move {
                    // When COMMIT fails (a full disk), SQLite rolls the transaction back
                    // but sqlx-sqlite keeps counting it as open, and the ROLLBACK queued
                    // by the dropped transaction fails, so every later BEGIN on this
                    // connection would fail: such a connection is closed, never reused.
                    // A transaction still counted as open may be one whose ROLLBACK is
                    // merely queued: the ping lets it run before the second look.
                    if !connection.is_in_transaction() {
                        return Ok(true);
                    }
                    connection.ping().await?;
                    Ok(!connection.is_in_transaction())
                })
            })
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(MAX_WAIT)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool, writer))
    }
}

/// Where a database's schema stands against the migrations this binary carries, by version.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaState {
    /// Carried by this binary, not applied to the database: it applies them when it starts.
    pub pending: Vec<i64>,
    /// Applied to the database, unknown to this binary (a newer version applied them).
    pub unknown: Vec<i64>,
}

/// Writes a consistent copy of the SQLite database at `source` into the new file `target`
/// (`VACUUM INTO`: readers and writers go on meanwhile; the copy is compact and has no
/// write-ahead log), and says where its schema stands. The database is taken as it is,
/// never created and never migrated: a backup made with a newer binary before an upgrade
/// holds what the running version reads, and a mistyped path is an error, not the copy of
/// a database made up on the spot.
pub async fn backup(source: &Path, target: &str) -> anyhow::Result<SchemaState> {
    if !source.is_file() {
        anyhow::bail!(
            "no database at {} (backup never creates one; check CERTGATE_DATABASE_URL or \
             CERTGATE_DATA_DIR)",
            source.display()
        );
    }
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(MAX_WAIT);
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
    let is_certgate: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut connection)
    .await?;
    if !is_certgate {
        anyhow::bail!(
            "{} is not a certgate database (it records no migrations)",
            source.display()
        );
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut connection)
            .await?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&mut connection)
        .await?;
    // Closed before the process ends: when certgate is stopped this is the last
    // connection, and closing it is what makes SQLite remove the write-ahead log and
    // shared-memory files it made, instead of leaving them next to the database.
    connection.close().await?;
    Ok(schema_state(
        &applied,
        MIGRATOR.iter().map(|migration| migration.version),
    ))
}

fn schema_state(applied: &[i64], carried: impl Iterator<Item = i64>) -> SchemaState {
    let carried: Vec<i64> = carried.collect();
    SchemaState {
        pending: carried
            .iter()
            .copied()
            .filter(|version| !applied.contains(version))
            .collect(),
        unknown: applied
            .iter()
            .copied()
            .filter(|version| !carried.contains(version))
            .collect(),
    }
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    /// sqlx-sqlite looks up the name of every numbered parameter by scanning the
    /// statement's list of names: quadratic in a 1500-parameter upsert.
    const PARAMETERS: Parameters = Parameters::Positional;
    const CHANGE_AND_AUDIT: &'static str = concat!(
        "INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3); ",
        insert_audit_event!(),
        " VALUES ($4, $5, $6, $7, $8, $9, $10, $11)"
    );

    async fn write_tx(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// One process owns a SQLite database: no other replica announces anything.
    async fn announce_change(_: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn change_signals(_: &SqlitePool) -> Option<BoxStream<'static, ()>> {
        None
    }

    /// The volume has room and accepts writes, and the database answers.
    async fn check_writable(pool: &SqlitePool) -> Result<(), StoreError> {
        volume::check(directory_of(pool.connect_options().get_filename()))?;
        sqlx::query("SELECT 1").execute(pool).await?;
        Ok(())
    }

    /// Moves the write-ahead log into the database file and empties it: a clean stop
    /// leaves `certgate.db` complete on its own, for the operator who copies that file.
    async fn before_close(pool: &SqlitePool) {
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await
        {
            tracing::warn!(%error, "could not checkpoint the SQLite write-ahead log");
        }
    }

    /// Pages of [`SQLITE_INDEX_PAGE_SQL`]. A task asks for the next page as soon as it has
    /// handed over the last one, so SQLite's thread builds page n + 1 while the caller's
    /// thread decodes page n.
    fn index_pages(pool: &SqlitePool) -> BoxStream<'static, Result<Vec<IndexedAgent>, StoreError>> {
        let pool = pool.clone();
        let (pages, received) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            // One connection for every page: each connection keeps its own page cache.
            let mut connection = match pool.acquire().await {
                Ok(connection) => connection,
                Err(error) => {
                    let _ = pages.send(Err(StoreError::from(error))).await;
                    return;
                }
            };
            let mut after = 0_i64;
            loop {
                let page =
                    sqlx::query_as::<_, (Option<String>, Option<i64>)>(SQLITE_INDEX_PAGE_SQL)
                        .bind(after)
                        .bind(INDEX_PAGE_ROWS)
                        .fetch_one(&mut *connection)
                        .await;
                let lines = match page {
                    Ok((Some(lines), Some(last))) => {
                        after = last;
                        Ok(lines)
                    }
                    Ok(_) => return,
                    Err(error) => Err(StoreError::from(error)),
                };
                let failed = lines.is_err();
                if pages.send(lines).await.is_err() || failed {
                    return;
                }
            }
        });
        futures_util::stream::unfold(received, |mut received| async move {
            let page = received.recv().await?;
            Some((page.and_then(|lines| indexed_agents(&lines)), received))
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use time::OffsetDateTime;

    use super::*;
    use crate::domain::AgentId;
    use crate::domain::IssuerSerial;
    use crate::domain::agent::Agent;
    use crate::domain::audit::{Action, Actor, AuditEvent, Caller, Target};
    use crate::store::group_commit::AgentInsert;
    use crate::store::sql::SIGHTINGS_PER_STATEMENT;
    use crate::store::{Sighting, Store};

    const CA: &str = "00000000-0000-4000-8000-0000000000ca";

    async fn insert_ca(pool: &SqlitePool) {
        sqlx::query(
            "INSERT INTO cas (id, name, fingerprint, subject, not_before, not_after, \
             certificate_pem, created_at) VALUES ($1, 'ca', $2, 'CN=ca', 0, 1, '', 0)",
        )
        .bind(CA)
        .bind("ab".repeat(32))
        .execute(pool)
        .await
        .expect("ca");
    }

    /// More agents than one page holds, inserted by SQLite itself.
    async fn store_with_agents(dir: &Path, count: i64) -> SqliteStore {
        let store = SqliteStore::open(&dir.join("certgate.db"), 2)
            .await
            .expect("store");
        insert_ca(&store.pool).await;
        if count == 0 {
            return store;
        }
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1), \
             r(i, h) AS (SELECT i, lower(hex(randomblob(16))) FROM n) \
             INSERT INTO agents (id, hostname, tags, ca_id, fingerprint, fingerprint_sha1, \
                 subject, serial, not_before, not_after, certificate_pem, enabled, \
                 allowed_ips, created_at, updated_at, version) \
             SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) \
                    || '-8' || substr(h, 18, 3) || '-' || substr(h, 21, 12), \
                    'agent-' || i || '.example.test', '[\"bulk\"]', $2, \
                    lower(hex(randomblob(32))), lower(hex(randomblob(20))), 'CN=agent', '01', \
                    0, 1, '', 1, '[]', 0, 0, 1 FROM r",
        )
        .bind(count)
        .bind(CA)
        .execute(&store.pool)
        .await
        .expect("agents");
        store
    }

    #[tokio::test]
    async fn the_index_is_read_in_pages_that_cover_every_agent_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = 2 * INDEX_PAGE_ROWS + 17;
        let store = store_with_agents(dir.path(), count).await;
        let mut pages = store.index_agents();
        let mut ids = HashSet::new();
        let mut page_count = 0;
        while let Some(page) = pages.next().await {
            let page = page.expect("page");
            assert!(!page.is_empty() && page.len() <= INDEX_PAGE_ROWS as usize);
            for agent in page {
                assert!(agent.hostname.ends_with(".example.test"));
                assert!(ids.insert(agent.id), "agent read twice");
            }
            page_count += 1;
        }
        assert_eq!(ids.len() as i64, count);
        assert_eq!(page_count, 3);
    }

    #[tokio::test]
    async fn agents_sharing_an_identity_are_grouped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_agents(dir.path(), 5).await;
        assert!(store.shared_identities().await.expect("query").is_empty());
        let ids = ids(&store).await;
        let same = "ab".repeat(32);
        for id in &ids[..3] {
            sqlx::query("UPDATE agents SET issuer_serial = $1 WHERE id = $2")
                .bind(&same)
                .bind(id.to_string())
                .execute(&store.pool)
                .await
                .expect("update");
        }
        sqlx::query("UPDATE agents SET revoked_at = 1 WHERE id = $1")
            .bind(ids[2].to_string())
            .execute(&store.pool)
            .await
            .expect("revoke");
        let groups = store.shared_identities().await.expect("query");
        assert_eq!(
            groups,
            vec![ids[..2].to_vec()],
            "a revoked agent does not count"
        );
    }

    async fn ids(store: &SqliteStore) -> Vec<AgentId> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM agents ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .expect("ids");
        rows.iter().map(|(id,)| id.parse().expect("id")).collect()
    }

    fn sighting(agent_id: AgentId, at: i64, ip: &str) -> Sighting {
        Sighting {
            agent_id,
            at: OffsetDateTime::from_unix_timestamp(at).expect("time"),
            ip: Some(ip.to_owned()),
        }
    }

    async fn seen(store: &SqliteStore, id: AgentId) -> (Option<i64>, Option<String>) {
        let agent = store.agent(id).await.expect("agent");
        (
            agent.last_seen_at.map(OffsetDateTime::unix_timestamp),
            agent.last_seen_ip,
        )
    }

    #[tokio::test]
    async fn a_flush_of_many_statements_records_every_sighting_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = 2 * SIGHTINGS_PER_STATEMENT + 3;
        let store = store_with_agents(dir.path(), count as i64).await;
        let ids = ids(&store).await;
        let mut first: Vec<Sighting> = ids
            .iter()
            .map(|id| sighting(*id, 1_000_000, "192.0.2.1"))
            .collect();
        first.push(sighting(AgentId::new_random(), 1_000_000, "192.0.2.9"));
        store.record_sightings(&first).await.expect("first flush");
        for id in &ids {
            assert_eq!(
                seen(&store, *id).await,
                (Some(1_000_000), Some("192.0.2.1".to_owned()))
            );
        }

        let (newer, older) = ids.split_at(SIGHTINGS_PER_STATEMENT + 1);
        let second: Vec<Sighting> = newer
            .iter()
            .map(|id| sighting(*id, 1_000_005, "192.0.2.2"))
            .chain(older.iter().map(|id| sighting(*id, 999_990, "192.0.2.3")))
            .collect();
        store.record_sightings(&second).await.expect("second flush");
        for id in newer {
            assert_eq!(
                seen(&store, *id).await,
                (Some(1_000_005), Some("192.0.2.2".to_owned()))
            );
        }
        for id in older {
            assert_eq!(
                seen(&store, *id).await,
                (Some(1_000_000), Some("192.0.2.1".to_owned())),
                "an older sighting replaced a newer one"
            );
        }
    }

    #[tokio::test]
    async fn agents_are_read_by_id_in_lists_longer_than_one_statement_takes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_agents(dir.path(), 1203).await;
        let mut wanted = ids(&store).await;
        wanted.truncate(1201);
        let unknown = AgentId::new_random();
        wanted.push(unknown);
        let found: HashSet<AgentId> = store
            .agents(&wanted)
            .await
            .expect("agents")
            .into_iter()
            .map(|agent| agent.id)
            .collect();
        assert_eq!(found.len(), 1201);
        assert!(wanted[..1201].iter().all(|id| found.contains(id)));
        assert!(!found.contains(&unknown));
        assert!(store.agents(&[]).await.expect("no ids").is_empty());
    }

    #[tokio::test]
    async fn sightings_stored_before_their_own_table_existed_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("certgate.db");
        let older = dir.path().join("migrations");
        std::fs::create_dir(&older).expect("dir");
        let sources = format!("{}/migrations/sqlite", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&sources).expect("migrations") {
            let name = entry.expect("entry").file_name();
            if name.to_string_lossy().as_ref() < "0004" {
                std::fs::copy(
                    format!("{sources}/{}", name.to_string_lossy()),
                    older.join(&name),
                )
                .expect("copy");
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .expect("options")
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("pool");
        sqlx::migrate::Migrator::new(older.as_path())
            .await
            .expect("older migrations")
            .run(&pool)
            .await
            .expect("migrate");
        insert_ca(&pool).await;
        let id = AgentId::new_random();
        sqlx::query(
            "INSERT INTO agents (id, hostname, tags, ca_id, fingerprint, fingerprint_sha1, \
             subject, serial, not_before, not_after, certificate_pem, enabled, allowed_ips, \
             created_at, updated_at, last_seen_at, last_seen_ip, version) \
             VALUES ($1, 'old.example.test', '[]', $2, $3, $4, 'CN=old', '01', 0, 1, '', \
             1, '[]', 0, 0, 7000000, '198.51.100.4', 1)",
        )
        .bind(id.to_string())
        .bind(CA)
        .bind("cd".repeat(32))
        .bind("ef".repeat(20))
        .execute(&pool)
        .await
        .expect("agent");
        pool.close().await;

        let store = SqliteStore::open(&path, 2).await.expect("store");
        assert_eq!(
            seen(&store, id).await,
            (Some(7), Some("198.51.100.4".to_owned()))
        );
    }

    /// An agent to insert beside the one bulk agent of `store_with_agents(_, 1)`: a new id
    /// and certificate, of the identity given.
    fn another_agent(template: &Agent, identity: u8) -> AgentInsert {
        let id = AgentId::new_random();
        let agent = Agent {
            id,
            fingerprint: crate::domain::Fingerprint::of_der(id.to_string().as_bytes()),
            issuer_serial: Some(IssuerSerial::of(b"issuer", &[identity])),
            ..template.clone()
        };
        insert_of(agent)
    }

    fn insert_of(agent: Agent) -> AgentInsert {
        let caller = Caller {
            actor: Actor::Token("test".into()),
            request_id: None,
            source_ip: None,
        };
        let event = AuditEvent::new(
            &caller,
            OffsetDateTime::now_utc(),
            Action::AgentEnrol,
            Target::Agent(agent.id),
        );
        AgentInsert {
            agent,
            certificate_pem: String::new(),
            event,
            span: tracing::Span::none(),
        }
    }

    /// The bulk agent of `store_with_agents(_, 1)`.
    async fn the_one_agent(store: &SqliteStore) -> Agent {
        let (id,): (String,) = sqlx::query_as("SELECT id FROM agents")
            .fetch_one(&store.pool)
            .await
            .expect("id");
        store.agent(id.parse().expect("uuid")).await.expect("agent")
    }

    /// Which of `inserts` are stored, each with its change-feed row and its audit event.
    async fn stored(store: &SqliteStore, inserts: &[AgentInsert]) -> Vec<bool> {
        let mut stored = Vec::new();
        for insert in inserts {
            let id = insert.agent.id.to_string();
            let count = |sql: &'static str| {
                let id = id.clone();
                async move {
                    let (n,): (i64,) = sqlx::query_as(sql)
                        .bind(id)
                        .fetch_one(&store.pool)
                        .await
                        .expect("count");
                    n
                }
            };
            let agent = count("SELECT COUNT(*) FROM agents WHERE id = $1").await;
            let change = count("SELECT COUNT(*) FROM changes WHERE entity_id = $1").await;
            let audit = count(
                "SELECT COUNT(*) FROM audit_events WHERE target_id = $1 \
                 AND action = 'agent.enrol'",
            )
            .await;
            assert_eq!((agent, change), (audit, audit), "agent {id} stored in part");
            stored.push(agent == 1);
        }
        stored
    }

    fn outcomes_in_short(outcomes: &[Result<(), StoreError>]) -> Vec<&'static str> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(()) => "stored",
                Err(StoreError::Conflict) => "conflict",
                Err(_) => "failed",
            })
            .collect()
    }

    #[tokio::test]
    async fn enrolments_committed_together_are_each_refused_or_stored_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_agents(dir.path(), 1).await;
        let template = the_one_agent(&store).await;
        let first = another_agent(&template, 1);
        // The same certificate's identity under another id: the insert's own check refuses
        // it, and the transaction goes on.
        let twin = another_agent(&template, 1);
        let other = another_agent(&template, 2);
        let inserts = [first, twin, other];
        let outcomes = SqliteStore::insert_agents(&store.writer, &inserts).await;
        assert_eq!(
            outcomes_in_short(&outcomes),
            ["stored", "conflict", "stored"]
        );
        assert_eq!(stored(&store, &inserts).await, [true, false, true]);
    }

    #[tokio::test]
    async fn a_statement_failing_for_one_enrolment_leaves_the_others_of_its_batch_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_agents(dir.path(), 1).await;
        let template = the_one_agent(&store).await;
        // The stored agent again: its id is taken, so its INSERT fails outright.
        let inserts = [
            another_agent(&template, 1),
            insert_of(template.clone()),
            another_agent(&template, 2),
        ];
        let outcomes = SqliteStore::insert_agents(&store.writer, &inserts).await;
        assert_eq!(
            outcomes_in_short(&outcomes),
            ["stored", "conflict", "stored"]
        );
        assert_eq!(stored(&store, &inserts[..1]).await, [true]);
        assert_eq!(stored(&store, &inserts[2..]).await, [true]);
        let (audited,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(audited, 2, "an event for the refused insert");
    }

    #[tokio::test]
    async fn concurrent_enrolments_are_all_answered_and_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = std::sync::Arc::new(store_with_agents(dir.path(), 1).await);
        let template = the_one_agent(&store).await;
        let inserts: Vec<AgentInsert> = (0..40).map(|n| another_agent(&template, n)).collect();
        let agents: Vec<Agent> = inserts.iter().map(|insert| insert.agent.clone()).collect();
        let calls = agents.iter().map(|agent| {
            let store = std::sync::Arc::clone(&store);
            let agent = agent.clone();
            tokio::spawn(async move {
                let event = insert_of(agent.clone()).event;
                store.insert_agent(&agent, "", &event).await
            })
        });
        for outcome in futures_util::future::join_all(calls).await {
            assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
        }
        assert!(stored(&store, &inserts).await.into_iter().all(|s| s));
    }

    #[tokio::test]
    async fn an_empty_store_has_no_pages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_agents(dir.path(), 0).await;
        assert!(store.index_agents().next().await.is_none());
    }

    #[test]
    fn a_schema_is_behind_or_ahead_by_the_versions_only_one_side_has() {
        assert_eq!(schema_state(&[1, 2, 3], 1..=3), SchemaState::default());
        assert_eq!(
            schema_state(&[1, 2], 1..=4),
            SchemaState {
                pending: vec![3, 4],
                unknown: vec![],
            }
        );
        assert_eq!(
            schema_state(&[1, 2, 3, 5], 1..=3),
            SchemaState {
                pending: vec![],
                unknown: vec![5],
            }
        );
    }
}
