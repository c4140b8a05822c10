//! What certgate answered, read and checked: admin answers and verify answers.

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

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
