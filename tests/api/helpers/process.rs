//! The `certgate serve` binary as a child process, for what only the real binary shows: its
//! log, its environment handling.

use std::time::Duration;

use tempfile::TempDir;

use super::TestDb;
use crate::pki::pki;

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

    /// Started with JSON logs at info level, once it listens; with the port it listens on.
    pub async fn start_with_json_log(env: &[(&str, &str)]) -> (Self, u64) {
        let mut env = env.to_vec();
        env.extend([
            ("CERTGATE_LOG_FORMAT", "json"),
            ("CERTGATE_LOG_LEVEL", "info"),
        ]);
        let mut server = Self::start(&env).await;
        let port = loop {
            let event: serde_json::Value =
                serde_json::from_str(&server.next_line()).unwrap_or_default();
            if event["message"] == "certgate listening" {
                break event["port"].as_u64().unwrap();
            }
        };
        (server, port)
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

    /// Sends the process a signal by name (`HUP`, `TERM` …).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// The next log event (JSON) whose message starts with `message`, waiting at most 30 s
    /// per line.
    pub fn next_event(&mut self, message: &str) -> serde_json::Value {
        loop {
            let event: serde_json::Value =
                serde_json::from_str(&self.next_line()).unwrap_or_default();
            if event["message"]
                .as_str()
                .is_some_and(|text| text.starts_with(message))
            {
                return event;
            }
        }
    }

    /// Stops the process as a service manager does (SIGTERM), waits for it to exit, and
    /// returns the whole log.
    pub fn terminate(&mut self) -> String {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop()
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

/// Admin calls to a binary started with [`ServerProcess`]: `B` on its port, the token.
pub struct BinaryApi {
    pub base: String,
    pub client: reqwest::Client,
    token: String,
}

impl BinaryApi {
    pub fn new(port: u64, token: &str) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}{}", super::BASE_PATH),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            token: token.to_owned(),
        }
    }

    /// An admin request to `B` + `path`, with the bearer token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Uploads the test PKI's root; its CA as answered.
    pub async fn add_root_ca(&self) -> serde_json::Value {
        let body = serde_json::json!({"name": "root", "certificate": pki().root.cert.pem()});
        let answer = self.admin(reqwest::Method::POST, "/ca").json(&body).send();
        answer.await.unwrap().json().await.unwrap()
    }

    /// Enrols a new leaf of the root named `hostname` under `ca`.
    pub async fn enrol(&self, hostname: &str, ca: &serde_json::Value) -> reqwest::Response {
        let body = serde_json::json!({"hostname": hostname, "ca_id": ca["id"],
                                      "certificate": pki().leaf(hostname).pem()});
        let answer = self
            .admin(reqwest::Method::POST, "/agents")
            .json(&body)
            .send();
        answer.await.unwrap()
    }
}
