//! The harness: one certgate per test on 127.0.0.1 port 0, with its own database (a fresh
//! SQLite file, or a fresh PostgreSQL database when `CERTGATE_TEST_POSTGRES_URL` is set),
//! and typed helpers for the admin API and verify.

use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use certgate::config::{LogFormat, Settings};
use certgate::startup::Application;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::pki::{TestCa, TestCert};

pub const BASE_PATH: &str = "/api/ext/cockpit-enterprise/mtls";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const VERIFY_SECRET: &str = "verify-secret-for-tests";
/// As an override value: remove the variable instead of setting it.
pub const UNSET: &str = "\0unset";

/// Header name and value pairs, for tables of verify requests.
pub type Headers<'a> = Vec<(&'a str, String)>;

/// Every HTTP call of the harness gives up after this long: no test can hang.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub verify_secret: String,
    pub base_path: String,
    pub data_dir: Arc<TempDir>,
    pub db: Arc<TestDb>,
    env: HashMap<String, String>,
    handle: ServerHandle,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts certgate with the test defaults changed by `overrides` (`UNSET` removes one).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    init_logging();
    let data_dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(&data_dir).await;
    let mut env: HashMap<String, String> = [
        ("CERTGATE_LISTEN", "127.0.0.1:0"),
        ("CERTGATE_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("CERTGATE_DATABASE_URL", db.url()),
        ("CERTGATE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("MTLS_VERIFY_SECRET", VERIFY_SECRET),
        ("CERTGATE_WORKERS", "2"),
        ("CERTGATE_DATABASE_MAX_CONNECTIONS", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (key, value) in overrides {
        if *value == UNSET {
            env.remove(*key);
        } else {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
    }
    TestApp::start(env, Arc::new(data_dir), Arc::new(db)).await
}

/// `TEST_LOG=1 cargo test --test api` shows the server's log.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            certgate::telemetry::init(LogFormat::Human, "debug");
        }
    });
}

fn first_of(env: &HashMap<String, String>, key: &str) -> String {
    env.get(key)
        .and_then(|v| v.split(',').next())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

impl TestApp {
    async fn start(env: HashMap<String, String>, data_dir: Arc<TempDir>, db: Arc<TestDb>) -> Self {
        let settings = Settings::from_sources(None, &env).expect("test settings are valid");
        let base_path = settings.base_path.clone();
        let app = Application::build(settings).await.expect("certgate starts");
        let port = app.port();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: http_client(),
            admin_token: first_of(&env, "CERTGATE_ADMIN_TOKEN"),
            verify_secret: first_of(&env, "MTLS_VERIFY_SECRET"),
            base_path,
            data_dir,
            db,
            env,
            handle,
            task: Some(task),
        }
    }

    /// Stops gracefully, as SIGTERM does, and waits until pending writes are flushed.
    pub async fn stop(&mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("certgate stops within 20 s")
                .unwrap()
                .expect("certgate stops cleanly");
        }
    }

    /// Stops, then starts a new process on the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let next = Self::start(
            self.env.clone(),
            Arc::clone(&self.data_dir),
            Arc::clone(&self.db),
        )
        .await;
        *self = next;
    }

    /// A second certgate sharing this one's database and configuration.
    pub async fn replica(&self) -> TestApp {
        Self::start(
            self.env.clone(),
            Arc::clone(&self.data_dir),
            Arc::clone(&self.db),
        )
        .await
    }

    /// `B` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.address, self.base_path, path)
    }

    /// An admin request with the bearer token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    pub async fn get(&self, path: &str) -> ApiResponse {
        ApiResponse::from(self.admin(Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> ApiResponse {
        ApiResponse::from(self.admin(Method::POST, path).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> ApiResponse {
        ApiResponse::from(self.admin(Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> ApiResponse {
        ApiResponse::from(self.admin(Method::DELETE, path)).await
    }

    // --- CAs ---

    pub async fn upload_ca(&self, name: &str, pem: &str) -> ApiResponse {
        self.post_json("/ca", &json!({"name": name, "certificate": pem}))
            .await
    }

    /// Uploads a CA and returns its id.
    pub async fn add_ca(&self, ca: &TestCa) -> String {
        let response = self.upload_ca(&ca.cert.cn, &ca.cert.pem()).await;
        response.assert_status(StatusCode::CREATED);
        response.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn delete_ca(&self, id: &str) -> ApiResponse {
        self.delete(&format!("/ca/{id}")).await
    }

    pub async fn ca_total(&self) -> i64 {
        let response = self.get("/ca").await;
        response.assert_status(StatusCode::OK);
        response.body["total"].as_i64().unwrap()
    }

    // --- agents ---

    pub async fn enrol_agent(&self, body: &Value) -> ApiResponse {
        self.post_json("/agents", body).await
    }

    /// Enrols `cert` under `ca_id` with its CN as hostname; returns the agent.
    pub async fn enrol(&self, cert: &TestCert, ca_id: &str) -> Value {
        self.enrol_with(cert, ca_id, json!({})).await
    }

    /// Like [`enrol`](Self::enrol), with more request fields (`tags`, `allowed_ips`, …).
    pub async fn enrol_with(&self, cert: &TestCert, ca_id: &str, extra: Value) -> Value {
        let mut body = json!({"hostname": cert.cn, "certificate": cert.pem(), "ca_id": ca_id});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response = self.enrol_agent(&body).await;
        response.assert_status(StatusCode::CREATED);
        response.body
    }

    pub async fn agent(&self, id: &str) -> Value {
        let response = self.get(&format!("/agents/{id}")).await;
        response.assert_status(StatusCode::OK);
        response.body
    }

    /// `GET B/agents?<query>`.
    pub async fn list_agents(&self, query: &str) -> ApiResponse {
        self.get(&format!("/agents?{query}")).await
    }

    pub async fn agent_total(&self, query: &str) -> i64 {
        let response = self.list_agents(query).await;
        response.assert_status(StatusCode::OK);
        response.body["total"].as_i64().unwrap()
    }

    pub async fn update_agent(&self, id: &str, body: &Value) -> ApiResponse {
        self.put_json(&format!("/agents/{id}"), body).await
    }

    pub async fn revoke_agent(&self, id: &str) -> ApiResponse {
        self.delete(&format!("/agents/{id}")).await
    }

    /// `PUT B/agents/:id/toggle`, without a body or with `{"enabled": …}`.
    pub async fn toggle_agent(&self, id: &str, enabled: Option<bool>) -> ApiResponse {
        let request = self.admin(Method::PUT, &format!("/agents/{id}/toggle"));
        let request = match enabled {
            Some(enabled) => request.json(&json!({"enabled": enabled})),
            None => request,
        };
        ApiResponse::from(request).await
    }

    // --- config ---

    pub async fn config(&self) -> Value {
        let response = self.get("/config").await;
        response.assert_status(StatusCode::OK);
        response.body
    }

    pub async fn put_config(&self, body: Value) -> Value {
        let response = self.put_json("/config", &body).await;
        response.assert_status(StatusCode::OK);
        response.body
    }

    // --- verify ---

    /// `GET B/verify` with the right secret and the given headers.
    pub async fn verify(&self, headers: &[(&str, &str)]) -> VerifyAnswer {
        self.verify_as(Method::GET, headers).await
    }

    pub async fn verify_as(&self, method: Method, headers: &[(&str, &str)]) -> VerifyAnswer {
        let mut request = self
            .client
            .request(method, self.url("/verify"))
            .header("X-Verify-Secret", &self.verify_secret);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        VerifyAnswer::from(request).await
    }

    /// A verify request without the secret, for the caller to finish.
    pub fn verify_request(&self, method: Method) -> RequestBuilder {
        self.client.request(method, self.url("/verify"))
    }

    /// nginx full-certificate mode: `X-Client-Cert: $ssl_client_escaped_cert`.
    pub async fn verify_escaped_pem(&self, cert: &TestCert) -> VerifyAnswer {
        self.verify(&[("X-Client-Cert", &cert.nginx_escaped())])
            .await
    }

    /// nginx fingerprint mode: `X-Client-Cert-Fingerprint: $ssl_client_fingerprint` (SHA-1).
    pub async fn verify_nginx_fingerprint(&self, cert: &TestCert) -> VerifyAnswer {
        self.verify(&[("X-Client-Cert-Fingerprint", &cert.sha1_hex())])
            .await
    }

    /// Caddy: `X-Client-Cert-Fingerprint: {…client.fingerprint}` (SHA-256, bare hex).
    pub async fn verify_fingerprint(&self, cert: &TestCert) -> VerifyAnswer {
        self.verify(&[("X-Client-Cert-Fingerprint", &cert.sha256_hex())])
            .await
    }

    /// Sends raw bytes on a fresh connection; returns the status line's code and the time
    /// the answer took. Used where reqwest cannot express the request (a `Content-Length`
    /// without a body, for example).
    pub async fn raw_request(&self, request: &str) -> (u16, Duration) {
        let started = std::time::Instant::now();
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.unwrap();
                assert!(n > 0, "connection closed before an answer");
                received.extend_from_slice(&buffer[..n]);
            }
            let head = String::from_utf8_lossy(&received).into_owned();
            head.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("an answer within 10 s");
        (status, started.elapsed())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.task.is_some() {
            // Sends the stop command now; nobody waits for it.
            drop(self.handle.stop(false));
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        // A fresh connection per request: a graceful stop never waits on idle keep-alives.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// An admin answer: status, headers and the JSON body (`Value::Null` when there is none).
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl ApiResponse {
    pub async fn from(request: RequestBuilder) -> Self {
        let response = request.send().await.expect("certgate answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Self {
            status,
            headers,
            body,
        }
    }

    #[track_caller]
    pub fn assert_status(&self, status: StatusCode) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// The admin error shape: `{"error": {"code": code, "message": "…"}}`.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(
            (self.status, self.body["error"]["code"].as_str()),
            (status, Some(code)),
            "body: {}",
            self.body
        );
        let message = self.body["error"]["message"].as_str();
        assert!(
            message.is_some_and(|m| !m.is_empty()),
            "error.message missing: {}",
            self.body
        );
    }

    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

/// A verify answer. `body` is the decision in the seed's five fields: the JSON body where
/// certgate sent one, else read from the headers, which carry the decision on every answer.
#[derive(Debug)]
pub struct VerifyAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    /// Whether certgate answered with the seed's JSON body (only to a JSON request body).
    pub json: bool,
}

impl VerifyAnswer {
    /// Sends `request` and checks the answer's form: a body only when the request sent a
    /// JSON body, and then one that agrees with the headers; otherwise `Content-Length: 0`.
    pub async fn from(request: RequestBuilder) -> Self {
        let (client, request) = request.build_split();
        let request = request.expect("a valid request");
        let sent_json_body = request
            .body()
            .and_then(|body| body.as_bytes())
            .is_some_and(|bytes| !bytes.is_empty())
            && request
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
        let response = client.execute(request).await.expect("certgate answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        // An allow without an agent sends the identity headers empty (so that no client
        // copy survives in the proxy): empty is no value.
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
        };
        let from_headers = json!({
            "verified": status == 200 && header("x-certgate-reason").is_none(),
            "agent_id": header("x-agent-id"),
            "hostname": header("x-agent-hostname"),
            "reason": header("x-certgate-reason"),
            "enforced": header("x-certgate-enforced") != Some("false"),
        });
        if bytes.is_empty() {
            assert_eq!(header("content-length"), Some("0"), "{status}: {headers:?}");
            assert_eq!(header("content-type"), None, "no body, no content type");
            return Self {
                status,
                headers,
                body: from_headers,
                json: false,
            };
        }
        assert!(
            sent_json_body,
            "{status}: a body for a call that sent none: {}",
            String::from_utf8_lossy(&bytes)
        );
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        for field in ["verified", "reason", "enforced"] {
            assert_eq!(
                body[field], from_headers[field],
                "{field}: headers {headers:?}"
            );
        }
        if body["verified"] == json!(true) {
            assert_eq!(body["agent_id"], from_headers["agent_id"]);
            assert_eq!(body["hostname"], from_headers["hostname"]);
        }
        Self {
            status,
            headers,
            body,
            json: true,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        self.body["reason"].as_str()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status, status, "body: {}", self.body);
    }

    /// 200, the body and the identity headers name `agent`.
    #[track_caller]
    pub fn assert_allowed(&self, agent: &Value) {
        assert_eq!(self.status, 200, "expected allow, got {}", self.body);
        let id = agent["id"].as_str().unwrap();
        let hostname = agent["hostname"].as_str().unwrap();
        assert_eq!(
            self.body,
            json!({"verified": true, "agent_id": id, "hostname": hostname,
                   "reason": null, "enforced": true})
        );
        assert_eq!(self.header("x-agent-id"), Some(id));
        assert_eq!(self.header("x-agent-hostname"), Some(hostname));
        let tags: Vec<&str> = agent["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(self.header("x-agent-tags"), Some(tags.join(",").as_str()));
        assert_eq!(self.header("x-certgate-reason"), None);
    }

    /// 200 for a certificate that is not enrolled (`reject_unknown_certs=false`).
    #[track_caller]
    pub fn assert_allowed_unknown(&self) {
        assert_eq!(self.status, 200, "expected allow, got {}", self.body);
        assert_eq!(
            self.body,
            json!({"verified": true, "agent_id": null, "hostname": null,
                   "reason": null, "enforced": true})
        );
    }

    /// The status, `verified: false`, the reason in the body and in `X-Certgate-Reason`.
    #[track_caller]
    pub fn assert_denied(&self, status: u16, reason: &str) {
        assert_eq!(
            (self.status, self.reason()),
            (status, Some(reason)),
            "body: {}",
            self.body
        );
        let mut keys: Vec<&str> = self
            .body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["agent_id", "enforced", "hostname", "reason", "verified"],
            "the verify body shape, denials included"
        );
        assert_eq!(self.body["verified"], json!(false), "body: {}", self.body);
        assert_eq!(self.body["enforced"], json!(true), "body: {}", self.body);
        assert_eq!(self.header("x-certgate-reason"), Some(reason));
        assert_eq!(self.header("x-agent-id"), None, "no identity on deny");
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `certgate serve` binary as a child process on a fresh database, its log captured.
pub struct ServerProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    log: Vec<String>,
    _data_dir: TempDir,
    _db: TestDb,
}

impl ServerProcess {
    /// Starts it with only `env` (plus a listen address and database) in its environment.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let data_dir = tempfile::tempdir().unwrap();
        let db = TestDb::create(&data_dir).await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_certgate"))
            .arg("serve")
            .env_clear()
            .env("CERTGATE_LISTEN", "127.0.0.1:0")
            .env("CERTGATE_DATA_DIR", data_dir.path())
            .env("CERTGATE_DATABASE_URL", db.url())
            .env("CERTGATE_WORKERS", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
            log: Vec::new(),
            _data_dir: data_dir,
            _db: db,
        }
    }

    /// The next log line, waiting at most 30 s.
    pub fn next_line(&mut self) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a log line within 30 s");
        self.log.push(line.clone());
        line
    }

    /// Kills the process (our own child, by its handle) and returns the whole log.
    pub fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log.extend(self.lines.try_iter());
        self.log.join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
