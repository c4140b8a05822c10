//! certgate itself, in-process, on a SQLite file in the test's directory.

use std::collections::HashMap;
use std::path::Path;

use actix_web::dev::ServerHandle;
use certgate::config::Settings;
use certgate::startup::Application;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::pki::Leaf;

const BASE: &str = "/api/ext/cockpit-enterprise/mtls";

/// Which identity headers certgate believes: the recipes' documented pairing, or every name
/// it knows (then only the proxy stands between a client's forged header and certgate).
#[derive(Clone, Copy)]
pub enum Believes {
    Default,
    Everything,
}

/// An enrolled agent as the admin API answered.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub tags: Vec<String>,
}

pub struct Certgate {
    env: HashMap<String, String>,
    port: u16,
    running: Option<Running>,
    admin: reqwest::Client,
    admin_token: String,
    pub verify_secret: String,
}

struct Running {
    handle: ServerHandle,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Certgate {
    /// Started with `extra` settings (environment variables) on top of the test's own.
    pub async fn start_with(dir: &Path, believes: Believes, extra: &[(&str, &str)]) -> Self {
        let admin_token = random_secret();
        let verify_secret = random_secret();
        let identity_headers = match believes {
            Believes::Default => "X-Client-Cert,X-Client-Cert-Fingerprint",
            Believes::Everything => "*",
        };
        let env: HashMap<String, String> = [
            ("CERTGATE_LISTEN", "127.0.0.1:0".to_owned()),
            ("CERTGATE_DATA_DIR", dir.display().to_string()),
            (
                "CERTGATE_DATABASE_URL",
                format!("sqlite://{}", dir.join("certgate.db").display()),
            ),
            ("CERTGATE_ADMIN_TOKEN", admin_token.clone()),
            ("MTLS_VERIFY_SECRET", verify_secret.clone()),
            ("CERTGATE_IDENTITY_HEADERS", identity_headers.to_owned()),
            ("CERTGATE_WORKERS", "2".to_owned()),
            // Every client of a proxy shares its address as certgate's peer: tests that
            // try many refused admin calls through it would otherwise meet the limit.
            (
                "CERTGATE_ADMIN_AUTH_FAILURES_PER_MINUTE",
                "100000".to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .collect();
        let mut certgate = Self {
            env,
            port: 0,
            running: None,
            admin: reqwest::Client::new(),
            admin_token,
            verify_secret,
        };
        certgate.run().await;
        certgate
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Builds and spawns the application; the first run picks a port, later ones reuse it.
    async fn run(&mut self) {
        assert!(self.running.is_none(), "certgate is already running");
        let settings = Settings::from_sources(None, &self.env).unwrap();
        let app = Application::build(settings).await.unwrap();
        self.port = app.port();
        self.env.insert(
            "CERTGATE_LISTEN".to_owned(),
            format!("127.0.0.1:{}", self.port),
        );
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        self.running = Some(Running { handle, task });
    }

    /// Graceful stop, as on SIGTERM.
    pub async fn stop(&mut self) {
        let running = self.running.take().expect("certgate is not running");
        running.handle.stop(true).await;
        running.task.await.unwrap().unwrap();
    }

    /// A new application on the same port and the same database.
    pub async fn restart(&mut self) {
        self.run().await;
    }

    pub async fn add_ca(&self, name: &str, pem: &str) -> String {
        let ca = self
            .admin_call(
                reqwest::Method::POST,
                "/ca",
                Some(json!({ "name": name, "certificate": pem })),
            )
            .await;
        ca["id"].as_str().unwrap().to_owned()
    }

    pub async fn enrol(&self, leaf: &Leaf, ca_id: &str, tags: &[&str]) -> Agent {
        self.enrol_from(leaf, ca_id, tags, None).await
    }

    /// Enrols an agent that may only connect from `allowed_ips`.
    pub async fn enrol_from(
        &self,
        leaf: &Leaf,
        ca_id: &str,
        tags: &[&str],
        allowed_ips: Option<&[&str]>,
    ) -> Agent {
        let agent = self
            .admin_call(
                reqwest::Method::POST,
                "/agents",
                Some(json!({
                    "hostname": leaf.name,
                    "certificate": leaf.cert.pem(),
                    "ca_id": ca_id,
                    "tags": tags,
                    "allowed_ips": allowed_ips,
                })),
            )
            .await;
        Agent {
            id: agent["id"].as_str().unwrap().to_owned(),
            hostname: agent["hostname"].as_str().unwrap().to_owned(),
            tags: serde_json::from_value(agent["tags"].clone()).unwrap(),
        }
    }

    /// A pending agent for certgate's internal CA, and its one-time token.
    pub async fn create_enrolment(&self, hostname: &str, tags: &[&str]) -> (Agent, String) {
        self.create_enrolment_as(hostname, tags, "agent").await
    }

    /// Like [`create_enrolment`](Self::create_enrolment), with a certificate profile.
    pub async fn create_enrolment_as(
        &self,
        hostname: &str,
        tags: &[&str],
        profile: &str,
    ) -> (Agent, String) {
        let created = self
            .admin_call(
                reqwest::Method::POST,
                "/enrollments",
                Some(json!({ "hostname": hostname, "tags": tags, "profile": profile })),
            )
            .await;
        let agent = Agent {
            id: created["agent_id"].as_str().unwrap().to_owned(),
            hostname: created["hostname"].as_str().unwrap().to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        (agent, created["token"].as_str().unwrap().to_owned())
    }

    /// The first pending self-enrolment request, if any.
    pub async fn pending_request(&self) -> Option<Value> {
        let listed = self
            .admin_call(
                reqwest::Method::GET,
                "/enroll/requests?status=pending",
                None,
            )
            .await;
        listed["items"]
            .as_array()
            .and_then(|items| items.first().cloned())
    }

    /// Approves a self-enrolment request; answers the new agent.
    pub async fn approve_request(&self, id: &str, tags: &[&str]) -> Agent {
        let request = self
            .admin_call(
                reqwest::Method::POST,
                &format!("/enroll/requests/{id}/approve"),
                Some(json!({ "tags": tags })),
            )
            .await;
        Agent {
            id: request["agent_id"].as_str().unwrap().to_owned(),
            hostname: request["hostname"].as_str().unwrap().to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    /// Verify calls certgate has decided so far (its `/metrics`).
    pub async fn verify_decisions(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = self
            .admin
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| line.starts_with("certgate_verify_decisions_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// The agent as the admin API lists it.
    pub async fn agent(&self, agent: &Agent) -> Value {
        self.admin_call(reqwest::Method::GET, &format!("/agents/{}", agent.id), None)
            .await
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub async fn disable(&self, agent: &Agent) {
        let answer = self
            .admin_call(
                reqwest::Method::PUT,
                &format!("/agents/{}/toggle", agent.id),
                Some(json!({ "enabled": false })),
            )
            .await;
        assert_eq!(answer["enabled"], json!(false), "toggle answer: {answer}");
    }

    pub async fn revoke(&self, agent: &Agent) {
        self.admin_call(
            reqwest::Method::DELETE,
            &format!("/agents/{}", agent.id),
            None,
        )
        .await;
    }

    async fn admin_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{BASE}{path}", self.port);
        let mut request = self
            .admin
            .request(method.clone(), &url)
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }
}

impl Drop for Certgate {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            // Sends the stop command now; dropping the server future stops it too.
            drop(running.handle.stop(false));
            running.task.abort();
        }
    }
}

fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
