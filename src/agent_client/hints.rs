//! What to do about a failed agent-side call, in the words of the person at the terminal:
//! the libraries underneath name the symptom (`UnknownIssuer`, `InvalidContentType`), the
//! hint names the fix.

use std::net::IpAddr;

use anyhow::{Context, bail};
use reqwest::Url;

/// certgate (or the proxy) answered with an error status.
#[derive(Debug, thiserror::Error)]
#[error("HTTP {status}: {detail}{}", code.as_deref().map(|code| format!(" ({code})")).unwrap_or_default())]
pub struct Refused {
    pub status: u16,
    /// certgate's `error.code`, when the body is certgate's.
    pub code: Option<String>,
    /// certgate's message, or the start of whatever else answered.
    pub detail: String,
    /// Seconds from `Retry-After`.
    pub retry_after: Option<u64>,
    /// The scheme the request went out with.
    pub plain_http: bool,
}

/// The server address, checked before anything is sent: it has a scheme, and a secret
/// (a token, or what a certificate is fetched with) goes over plain HTTP only to this host
/// or when the operator said `insecure_http`.
pub fn server_url(server: &str, insecure_http: bool) -> anyhow::Result<Url> {
    let url = match Url::parse(server) {
        Ok(url) if url.has_host() => url,
        _ => bail!(
            "`{server}` is not a server address; give the scheme and host, e.g. \
             https://{}",
            server.trim_start_matches("//")
        ),
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" if insecure_http => eprintln!(
            "certgate: warning: sending secrets over plain HTTP to {}; anyone on the path \
             can read them",
            url.host_str().unwrap_or_default()
        ),
        "http" => bail!(
            "refusing to send a token or certificate over plain HTTP to {}: use https:// \
             (or --insecure-http on a network you trust)",
            url.host_str().unwrap_or_default()
        ),
        other => bail!("`{other}://` is not supported; use https://"),
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads certgate's `{"error": …}` answer, or whatever else answered, into a `Refused`.
pub(crate) async fn refused(response: reqwest::Response) -> anyhow::Result<Refused> {
    let status = response.status().as_u16();
    let plain_http = response.url().scheme() == "http";
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let body = response.bytes().await.context("reading the answer")?;
    let (code, detail) = error_answer(&body);
    Ok(Refused {
        status,
        code,
        detail,
        retry_after,
        plain_http,
    })
}

/// certgate's `{"error": …}` answer as its code and message; anything else (a proxy's error
/// page) as no code and the start of its text, on one line.
pub(crate) fn error_answer(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<super::ErrorBody>(body) {
        Ok(super::ErrorBody { error }) => (Some(error.code), error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (None, text.chars().take(160).collect())
        }
    }
}

/// The hint for a failure, if one is known.
pub fn for_failure(error: &anyhow::Error) -> Option<String> {
    if let Some(refused) = error.chain().find_map(|e| e.downcast_ref::<Refused>()) {
        return for_refusal(refused);
    }
    for_transport(&format!("{error:#}"), "--server")
}

fn for_refusal(refused: &Refused) -> Option<String> {
    let status = refused.status;
    if status == 429 || refused.code.as_deref() == Some("rate_limited") {
        return Some(match refused.retry_after {
            Some(seconds) => format!("too many attempts: try again in {seconds} s"),
            None => "too many attempts: wait a minute and try again".to_owned(),
        });
    }
    if refused.plain_http && status == 400 && refused.detail.contains("HTTPS") {
        return Some("this port speaks TLS: use https:// in --server".to_owned());
    }
    match refused.code.as_deref() {
        Some("missing_certificate") => Some(
            "the proxy did not pass this host's certificate on: renew through the proxy's \
             TLS port and its renew location (see the recipe's README)"
                .to_owned(),
        ),
        Some("invalid_token" | "token_expired" | "token_used") => Some(
            "ask an administrator for a new token (`certgate admin agents token <id>`)".to_owned(),
        ),
        _ if status == 404 => Some(
            "nothing answers at this path: check --server and --base-path (the server's \
             CERTGATE_BASE_PATH)"
                .to_owned(),
        ),
        _ => None,
    }
}

/// Hints from the text of a transport failure (reqwest, hyper and rustls name the cause
/// only in their messages); `address_flag` is the option that gave the server's address.
pub fn for_transport(text: &str, address_flag: &str) -> Option<String> {
    let hint = if text.contains("UnknownIssuer") {
        "the server's certificate is not signed by a CA this host trusts: pass --cacert with \
         the CA that signed it"
    } else if text.contains("CaUsedAsEndEntity") {
        "the server presents a CA certificate as its own: give it a certificate issued by \
         a CA (CA:FALSE, serverAuth) and pass that CA with --cacert"
    } else if text.contains("NotValidForName") {
        return Some(format!(
            "the server's certificate does not name the host in {address_flag}: use the name \
             (or address) it was issued for"
        ));
    } else if text.contains("Expired") {
        "a certificate in the TLS handshake has expired (or this host's clock is wrong)"
    } else if text.contains("InvalidContentType") || text.contains("corrupt message") {
        "this port speaks plain HTTP, not TLS: use http:// for it, or the proxy's TLS port"
    } else if text.contains("Connection refused") {
        "nothing listens at that address: is the server (or the proxy) running, and is \
         the port right?"
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        "the server's name does not resolve from this host"
    } else if text.contains("timed out") {
        "no answer in time: a firewall, or the wrong address?"
    } else {
        return None;
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_is_read_as_certgates_or_as_the_page_that_came_instead() {
        let certgate = br#"{"error":{"code":"agent_revoked","message":"the agent is revoked"}}"#;
        assert_eq!(
            error_answer(certgate),
            (
                Some("agent_revoked".to_owned()),
                "the agent is revoked".to_owned()
            )
        );
        let page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\n</html>";
        assert_eq!(
            error_answer(page),
            (
                None,
                "<html> <head><title>502 Bad Gateway</title></head> </html>".to_owned()
            )
        );
        let long = "x".repeat(500);
        assert_eq!(error_answer(long.as_bytes()).1.len(), 160);
        assert_eq!(error_answer(b""), (None, String::new()));
    }

    #[test]
    fn a_secret_goes_over_plain_http_only_to_this_host_or_when_allowed() {
        for local in [
            "http://127.0.0.1:3000",
            "http://localhost:3000",
            "http://[::1]:3000",
            "https://certgate.example",
        ] {
            assert!(server_url(local, false).is_ok(), "{local}");
        }
        let refused = server_url("http://certgate.example", false).unwrap_err();
        assert!(refused.to_string().contains("--insecure-http"), "{refused}");
        assert!(server_url("http://certgate.example", true).is_ok());
    }

    #[test]
    fn an_address_without_a_scheme_is_refused_with_the_spelling_to_use() {
        let error = server_url("certgate.example:3000", false).unwrap_err();
        assert!(
            error.to_string().contains("https://certgate.example:3000"),
            "{error}"
        );
        assert!(server_url("ftp://certgate.example", false).is_err());
    }

    #[test]
    fn transport_failures_name_their_fix() {
        for (text, expected) in [
            ("invalid peer certificate: UnknownIssuer", "--cacert"),
            ("invalid peer certificate: CaUsedAsEndEntity", "CA:FALSE"),
            (
                "received corrupt message of type InvalidContentType",
                "plain HTTP",
            ),
            (
                "tcp connect error: Connection refused (os error 111)",
                "running",
            ),
        ] {
            let hint = for_transport(text, "--server").unwrap();
            assert!(hint.contains(expected), "{text}: {hint}");
        }
        assert_eq!(for_transport("something new", "--server"), None);
        let hint = for_transport("invalid peer certificate: NotValidForName", "--url").unwrap();
        assert!(hint.contains("in --url"), "{hint}");
    }

    #[test]
    fn a_rate_limit_says_when_to_retry() {
        let refused = Refused {
            status: 429,
            code: Some("rate_limited".into()),
            detail: "slow down".into(),
            retry_after: Some(42),
            plain_http: false,
        };
        let hint = for_failure(&anyhow::Error::new(refused)).unwrap();
        assert!(hint.contains("42 s"), "{hint}");
    }
}
