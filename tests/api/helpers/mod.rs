//! The harness: one certgate per test on 127.0.0.1 port 0, with its own database (a fresh
//! SQLite file, or a fresh PostgreSQL database when `CERTGATE_TEST_POSTGRES_URL` is set),
//! and typed helpers for the admin API and verify.

use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use certgate::config::{LogFormat, Settings};
use certgate::startup::Application;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::pki::{TestCa, TestCert};

mod answers;
mod db;
mod process;
mod relay;
mod volume;

pub use answers::{ApiResponse, VerifyAnswer};
pub use db::TestDb;
pub use process::{BinaryApi, ServerProcess};
pub use relay::Relay;
pub use volume::Volume;

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
        let base_path = settings.http.base_path.clone();
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
    /// `/metrics` as text.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// The value of one series of `/metrics`, named as the text writes it
    /// (`name{label="value",…}`); `None` when it is absent.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().unwrap())
    }

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
