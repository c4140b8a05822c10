//! A real TLS client (reqwest + rustls), one per identity, so no connection is shared
//! between identities.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::pki::{Leaf, Pki};
use super::upstream::Echo;

/// What came back through the proxy.
#[derive(Debug)]
pub enum Outcome {
    /// A 2xx from the application, with what it saw.
    Passed(Echo),
    /// A non-2xx answer.
    Refused { status: u16, body: String },
    /// No HTTP answer at all (the TLS handshake was refused, for example).
    Failed(String),
}

impl Outcome {
    pub fn passed(self, what: &str) -> Echo {
        match self {
            Outcome::Passed(echo) => echo,
            other => panic!(
                "{what}: expected to reach the application, got {}",
                other.describe()
            ),
        }
    }

    pub fn refused(&self, what: &str) {
        assert!(
            !matches!(self, Outcome::Passed(_)),
            "{what}: expected a refusal, got {}",
            self.describe()
        );
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Passed(echo) => format!("200 from the application, which saw {echo:?}"),
            Outcome::Refused { status, body } => format!("{status} {body}"),
            Outcome::Failed(error) => format!("no HTTP answer: {error}"),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Passed(_) => Some(200),
            Outcome::Refused { status, .. } => Some(*status),
            Outcome::Failed(_) => None,
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    /// Talks to `https://localhost:<port>/`, trusting only the test root, presenting
    /// `identity` if given.
    pub fn new(pki: &Pki, port: u16, identity: Option<&Leaf>) -> Self {
        let root = reqwest::Certificate::from_pem(pki.root.cert.pem().as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .no_proxy()
            .timeout(Duration::from_secs(10));
        if let Some(leaf) = identity {
            let identity = reqwest::Identity::from_pem(leaf.identity_pem().as_bytes()).unwrap();
            builder = builder.identity(identity);
        }
        Self {
            http: builder.build().unwrap(),
            url: format!("https://localhost:{port}/app/resource?q=1"),
        }
    }

    /// A GET carrying extra headers (appended, so a name may repeat).
    pub async fn get_with(&self, headers: &[(&str, String)]) -> Outcome {
        let mut request = self.http.get(&self.url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Outcome::Failed(format!("{e:?}")),
        };
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) => return Outcome::Failed(format!("status {status}, body: {e:?}")),
        };
        if (200..300).contains(&status) {
            let echo = serde_json::from_str(&body).unwrap_or_else(|e| {
                panic!("a 2xx that is not the application's echo ({e}): {body}")
            });
            Outcome::Passed(echo)
        } else {
            Outcome::Refused { status, body }
        }
    }

    /// A GET of `path` on the proxy, with extra headers: the status and body.
    pub async fn get_path(&self, path: &str, headers: &[(&str, String)]) -> (u16, String) {
        self.try_get_path(path, headers)
            .await
            .unwrap_or_else(|| panic!("GET {path}: no HTTP answer"))
    }

    /// A POST of `body` to `path` on the proxy, with extra headers: the status and body.
    pub async fn post_to(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (u16, String) {
        self.try_post_to(path, headers, body)
            .await
            .unwrap_or_else(|| panic!("POST {path}: no HTTP answer"))
    }

    /// The status and body of a GET of `path`; `None` when no HTTP answer came (a refused
    /// handshake).
    pub async fn try_get_path(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Option<(u16, String)> {
        let url = self.url.replace("/app/resource?q=1", path);
        let mut request = self.http.get(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answer(request).await
    }

    /// The status and body of a POST of `body` (JSON) to `path`; `None` when no HTTP answer
    /// came.
    pub async fn try_post_to(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Option<(u16, String)> {
        let url = self.url.replace("/app/resource?q=1", path);
        let mut request = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Option<(u16, String)> {
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}
