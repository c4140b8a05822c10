//! `certgate request`: a host without a token asks to be enrolled and waits for an
//! administrator's decision. The key is written before anything is sent and never leaves
//! the host; the polling token is kept beside it, so a restart resumes the wait.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;

use super::{
    CA_FILE, CERTIFICATE_FILE, Enrolled, KEY_FILE, P12Output, REQUEST_TOKEN_FILE, endpoint, hints,
    http_client, new_key_and_request, post,
};
use crate::files::{StagedFiles, write_atomically};

/// A self-enrolment request (`certgate request`).
pub struct RequestOptions {
    pub server: String,
    pub base_path: String,
    pub hostname: String,
    pub machine_id: String,
    /// None: the local address this host uses to reach the server.
    pub ip_address: Option<std::net::IpAddr>,
    pub out: PathBuf,
    pub server_ca: Option<PathBuf>,
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// Send the request over plain HTTP to another host (with a warning).
    pub insecure_http: bool,
    /// Also write the key, certificate and CA as one PKCS#12 file.
    pub p12: Option<P12Output>,
}

#[derive(Deserialize)]
struct Submitted {
    request_id: String,
    polling_token: String,
    key_sha256: String,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum PollAnswer {
    Pending,
    Approved {
        agent_id: String,
        certificate: String,
        ca_certificate: String,
        not_after: String,
    },
    Denied,
    NotFound,
}

/// Asks to be enrolled (or resumes a request waiting in `options.out`), then polls until
/// an administrator decided. The key is written first and never sent; `progress` hears the
/// request id and key fingerprint to give the administrator.
pub async fn request(
    options: &RequestOptions,
    progress: impl Fn(&str),
) -> anyhow::Result<Enrolled> {
    let server = hints::server_url(&options.server, options.insecure_http)?;
    let client = http_client(options.server_ca.as_deref(), None)?;
    let key_path = options.out.join(KEY_FILE);
    let token_path = options.out.join(REQUEST_TOKEN_FILE);
    let token = if token_path.exists() && key_path.exists() {
        progress(&format!("resuming the request in {}", token_path.display()));
        std::fs::read_to_string(&token_path)?.trim().to_owned()
    } else {
        let (key, csr) = new_key_and_request()?;
        std::fs::create_dir_all(&options.out)
            .with_context(|| format!("creating {}", options.out.display()))?;
        write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)
            .with_context(|| format!("writing {}", key_path.display()))?;
        let ip_address = match options.ip_address {
            Some(ip) => ip,
            None => local_address_towards(&server)?,
        };
        let url = endpoint(server.as_str(), &options.base_path, "enroll/requests");
        let body = json!({
            "hostname": options.hostname,
            "machine_id": options.machine_id,
            "ip_address": ip_address.to_string(),
            "os_details": os_details(),
            "csr": csr,
        });
        let submitted: Submitted = post(&client, &url, &body).await?;
        write_atomically(&token_path, submitted.polling_token.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", token_path.display()))?;
        progress(&format!(
            "request {} sent; ask an administrator to approve it after comparing the key\n\
             key sha256   {}",
            submitted.request_id, submitted.key_sha256
        ));
        submitted.polling_token
    };
    let url = endpoint(
        server.as_str(),
        &options.base_path,
        &format!("enroll/requests/status/{token}"),
    );
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let response = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", options.server))?;
        if !response.status().is_success() {
            let refused = hints::refused(response).await?;
            return Err(anyhow::Error::new(refused).context("while waiting for the decision"));
        }
        match response.json::<PollAnswer>().await? {
            PollAnswer::Pending => {}
            PollAnswer::Approved {
                agent_id,
                certificate,
                ca_certificate,
                not_after,
            } => {
                let mut staged = StagedFiles::default();
                for (name, contents) in
                    [(CERTIFICATE_FILE, &certificate), (CA_FILE, &ca_certificate)]
                {
                    let path = options.out.join(name);
                    staged
                        .stage(&path, contents.as_bytes(), 0o644)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                if let Some(p12) = &options.p12 {
                    let key = super::p12::pkcs8_from_pem(&key_path)?;
                    let bundle = super::p12::bundle(
                        &key,
                        &certificate,
                        Some(&ca_certificate),
                        &p12.passphrase,
                    )?;
                    staged
                        .stage(&p12.path, &bundle, 0o600)
                        .with_context(|| format!("writing {}", p12.path.display()))?;
                }
                staged.commit().context("writing the certificate")?;
                std::fs::remove_file(&token_path).ok();
                let der = pem::parse(&certificate).context("the certificate is not PEM")?;
                return Ok(Enrolled {
                    agent_id,
                    fingerprint: crate::domain::Fingerprint::of_der(der.contents()).to_string(),
                    fingerprint_sha1: crate::domain::Sha1Fingerprint::of_der(der.contents())
                        .to_string(),
                    certificate,
                    ca_certificate,
                    not_after,
                });
            }
            PollAnswer::Denied => {
                std::fs::remove_file(&token_path).ok();
                bail!("an administrator denied this request");
            }
            PollAnswer::NotFound => {
                std::fs::remove_file(&token_path).ok();
                bail!("the request is unknown or expired; ask again");
            }
        }
        if tokio::time::Instant::now() + options.poll_interval > deadline {
            bail!(
                "no decision within {:?}; run the command again to keep waiting",
                options.timeout
            );
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// The address this host's traffic to `server` leaves from (no packet is sent).
fn local_address_towards(server: &reqwest::Url) -> anyhow::Result<std::net::IpAddr> {
    let target = server
        .socket_addrs(|| None)?
        .into_iter()
        .next()
        .context("the server's address does not resolve")?;
    let socket = std::net::UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

/// What the host says about itself: /etc/os-release's name and version, and the kernel.
fn os_details() -> serde_json::Value {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |name: &str| {
        release.lines().find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .map(|value| value.trim_matches('"').to_owned())
        })
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .ok();
    json!({"name": field("NAME"), "version_id": field("VERSION_ID"), "kernel": kernel})
}
