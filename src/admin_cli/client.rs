//! The admin API over HTTP, as `certgate admin` calls it: one bearer token, certgate's
//! JSON in and out, its errors kept whole.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;

use crate::agent_client::hints;

/// Why a command did not do what it was asked.
#[derive(Debug)]
pub enum Failure {
    /// certgate answered with an error (exit 1).
    Refused {
        /// The HTTP status.
        status: u16,
        code: String,
        message: String,
    },
    /// The command line or its inputs are wrong (exit 2).
    Usage(String),
    /// certgate could not be reached or answered nonsense (exit 1).
    Failed(anyhow::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused {
                status,
                code,
                message,
            } => write!(f, "{status} {code}: {message}"),
            Failure::Usage(message) => f.write_str(message),
            Failure::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Failed(error)
    }
}

pub struct AdminClient {
    http: reqwest::Client,
    /// `https://host:port/base/path`, without a trailing slash.
    base: String,
    token: String,
}

/// Items fetched at once by `--all`: the API's largest page.
const PAGE: u32 = 500;

impl AdminClient {
    pub fn new(
        url: &str,
        base_path: &str,
        token: String,
        cacert: Option<&Path>,
    ) -> Result<Self, Failure> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| Failure::Usage(format!("--url {url}: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" => {
                let host = parsed.host_str().unwrap_or_default();
                let loopback = host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    eprintln!(
                        "certgate: warning: {url} is plain HTTP: the admin token crosses the \
                         network unencrypted"
                    );
                }
            }
            other => {
                return Err(Failure::Usage(format!(
                    "--url must be http:// or https://, not {other}://"
                )));
            }
        }
        let http = crate::agent_client::http_client(cacert, None)?;
        let base = format!(
            "{}/{}",
            url.trim_end_matches('/'),
            base_path.trim_matches('/')
        );
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Calls `method path` (relative to the base path) with an optional JSON body; `None`
    /// for an answer without a body (204).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, Failure> {
        self.send(method, path, &[], body).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| reach_failure(&url, &e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Failed(anyhow::anyhow!("reading the answer of {url}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(refusal(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Failure::Failed(anyhow::anyhow!("{url} did not answer JSON: {e}")))
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        self.send(Method::GET, path, query, None)
            .await?
            .ok_or_else(|| Failure::Failed(anyhow::anyhow!("GET {path} answered nothing")))
    }

    /// A list: one page (`limit`, `offset`), or every page. `query` is the list's own
    /// query text without paging.
    pub async fn list(
        &self,
        path: &str,
        query: &[(&str, String)],
        page: Paging,
    ) -> Result<List, Failure> {
        let mut query: Vec<(&str, String)> = query.to_vec();
        let (limit, mut offset, all) = match page {
            Paging::One { limit, offset } => (limit, offset, false),
            Paging::All => (PAGE, 0, true),
        };
        query.push(("limit", limit.to_string()));
        let mut items = Vec::new();
        loop {
            let mut page_query = query.clone();
            page_query.push(("offset", offset.to_string()));
            let answer = self.get(path, &page_query).await?;
            let total = answer["total"].as_u64().unwrap_or(0);
            let page_items = answer["items"].as_array().cloned().unwrap_or_default();
            let fetched = page_items.len() as u32;
            items.extend(page_items);
            offset += fetched;
            if !all || fetched == 0 || u64::from(offset) >= total {
                return Ok(List { items, total });
            }
        }
    }
}

/// Which part of a list to fetch.
#[derive(Debug, Clone, Copy)]
pub enum Paging {
    One { limit: u32, offset: u32 },
    All,
}

/// Items of a list and how many there are in all.
pub struct List {
    pub items: Vec<Value>,
    pub total: u64,
}

/// certgate's error answer, or what else answered (a proxy's error page) under a stand-in
/// code.
fn refusal(status: u16, body: &[u8]) -> Failure {
    let (code, message) = hints::error_answer(body);
    Failure::Refused {
        status,
        code: code.unwrap_or_else(|| "unexpected_answer".to_owned()),
        message: if message.is_empty() {
            "no message".to_owned()
        } else {
            message
        },
    }
}

/// Why `url` could not be reached, with what to try.
fn reach_failure(url: &str, error: &reqwest::Error) -> Failure {
    let mut text = format!("{error:#}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    let hint = hints::for_transport(&text, "--url (CERTGATE_URL)")
        .map(|hint| format!("\nhint: {hint}"))
        .unwrap_or_default();
    Failure::Failed(anyhow::anyhow!("cannot reach {url}: {text}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_what_answered_when_it_was_not_certgate() {
        let shown = |body: &[u8]| refusal(502, body).to_string();
        assert_eq!(
            shown(br#"{"error":{"code":"database_unavailable","message":"try again"}}"#),
            "502 database_unavailable: try again"
        );
        assert_eq!(
            shown(b"<html><title>502 Bad Gateway</title></html>\n"),
            "502 unexpected_answer: <html><title>502 Bad Gateway</title></html>"
        );
        assert_eq!(shown(b""), "502 unexpected_answer: no message");
    }
}
