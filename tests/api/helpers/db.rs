//! One database per test: a fresh SQLite file, or a fresh PostgreSQL database when
//! `CERTGATE_TEST_POSTGRES_URL` is set.

use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

/// The database of one test.
pub enum TestDb {
    Sqlite {
        url: String,
    },
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub async fn create(data_dir: &TempDir) -> Self {
        let Some(server_url) = std::env::var("CERTGATE_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            let path = data_dir.path().join("certgate.db");
            return Self::Sqlite {
                url: format!("sqlite://{}", path.display()),
            };
        };
        let name = format!("certgate_test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&server_url)
            .await
            .expect("CERTGATE_TEST_POSTGRES_URL accepts connections");
        connection
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap();
        connection.close().await.unwrap();
        let mut url = reqwest::Url::parse(&server_url).unwrap();
        url.set_path(&name);
        Self::Postgres {
            server_url,
            name,
            url: url.to_string(),
        }
    }

    /// Runs one statement on the test database, behind certgate's back (to age a row, say).
    pub async fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite { url } => {
                let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
                connection.execute(sql).await.unwrap();
            }
            Self::Postgres { url, .. } => {
                let mut connection = PgConnection::connect(url).await.unwrap();
                connection.execute(sql).await.unwrap();
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url } | Self::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDb {
    /// Drops the test's PostgreSQL database (best effort, on a thread of its own because
    /// `Drop` cannot await).
    fn drop(&mut self) {
        let Self::Postgres {
            server_url, name, ..
        } = self
        else {
            return;
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut connection) = PgConnection::connect(&server_url).await {
                    let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = connection.execute(sql.as_str()).await;
                }
            });
        });
        let _ = dropper.join();
    }
}
