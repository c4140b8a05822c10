//! The agent side of enrolment (`certgate enroll`): a key made on this host, a signing
//! request for it, a one-time token exchanged for a certificate, and the files written so
//! that no reader ever sees half of one. The private key never leaves the host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Deserialize;
use serde_json::json;

use crate::files::write_atomically;

pub const KEY_FILE: &str = "agent.key";
pub const CERTIFICATE_FILE: &str = "agent.crt";
pub const CA_FILE: &str = "ca.crt";
/// Kept while a self-enrolment request waits for approval, so polling survives a restart.
pub const REQUEST_TOKEN_FILE: &str = "request.token";

/// Where to enrol and where to put the result.
pub struct EnrolOptions {
    /// certgate's address, e.g. `https://certgate.internal:3000` (the base path is added).
    pub server: String,
    pub base_path: String,
    pub token: String,
    pub out: PathBuf,
    /// A PEM CA to trust for the server's TLS certificate, besides the system roots.
    pub server_ca: Option<PathBuf>,
}

/// What `POST B/enroll` and `POST B/renew` answer.
#[derive(Deserialize)]
pub struct Enrolled {
    pub agent_id: String,
    pub certificate: String,
    pub ca_certificate: String,
    pub fingerprint: String,
    pub fingerprint_sha1: String,
    pub not_after: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Where to renew: through the proxy, presenting the current certificate.
pub struct RenewOptions {
    /// The proxy's address, e.g. `https://gateway.internal` (the base path is added).
    pub server: String,
    pub base_path: String,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub out: PathBuf,
    pub server_ca: Option<PathBuf>,
}

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
            None => local_address_towards(&options.server)?,
        };
        let url = endpoint(&options.server, &options.base_path, "enroll/requests");
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
        &options.server,
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
        let status = response.status();
        if !status.is_success() {
            bail!("{status} while polling");
        }
        match response.json::<PollAnswer>().await? {
            PollAnswer::Pending => {}
            PollAnswer::Approved {
                agent_id,
                certificate,
                ca_certificate,
                not_after,
            } => {
                for (name, contents) in
                    [(CERTIFICATE_FILE, &certificate), (CA_FILE, &ca_certificate)]
                {
                    let path = options.out.join(name);
                    write_atomically(&path, contents.as_bytes(), 0o644)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
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
fn local_address_towards(server: &str) -> anyhow::Result<std::net::IpAddr> {
    let url = reqwest::Url::parse(server).with_context(|| format!("`{server}` is not a URL"))?;
    let target = url
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

/// Generates the key, redeems the token, writes `agent.key` (0600), `agent.crt` and
/// `ca.crt` (0644) into `options.out`.
pub async fn enrol(options: &EnrolOptions) -> anyhow::Result<Enrolled> {
    let (key, csr) = new_key_and_request()?;
    let client = http_client(options.server_ca.as_deref(), None)?;
    let url = endpoint(&options.server, &options.base_path, "enroll");
    let body = json!({"token": options.token.trim(), "csr": csr});
    let enrolled: Enrolled = post(&client, &url, &body).await?;
    write_files(&options.out, &key, &enrolled)?;
    Ok(enrolled)
}

/// Renews through the proxy with the current certificate as TLS client identity; the new
/// key and certificate replace the files in `options.out` only once the server answered.
pub async fn renew(options: &RenewOptions) -> anyhow::Result<Enrolled> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let identity_pem = format!("{}\n{}", read(&options.certificate)?, read(&options.key)?);
    let identity = reqwest::Identity::from_pem(identity_pem.as_bytes())
        .context("the current certificate and key do not form a TLS identity")?;
    let (key, csr) = new_key_and_request()?;
    let client = http_client(options.server_ca.as_deref(), Some(identity))?;
    let url = endpoint(&options.server, &options.base_path, "renew");
    let renewed: Enrolled = post(&client, &url, &json!({ "csr": csr })).await?;
    write_files(&options.out, &key, &renewed)?;
    Ok(renewed)
}

fn new_key_and_request() -> anyhow::Result<(KeyPair, String)> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a key")?;
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .context("writing the signing request")?;
    Ok((key, csr))
}

fn endpoint(server: &str, base_path: &str, path: &str) -> String {
    format!("{}{base_path}/{path}", server.trim_end_matches('/'))
}

async fn post<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<T> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => bail!("{status}: {} ({})", error.message, error.code),
            Err(_) => bail!("{status} from {url}"),
        }
    }
    serde_json::from_slice(&body).context("the server's answer is not what was expected")
}

/// The key first: a crash in between leaves the new key beside the old certificate, which
/// fails loudly at the next TLS handshake rather than silently.
fn write_files(out: &Path, key: &KeyPair, issued: &Enrolled) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, contents, mode) in [
        (KEY_FILE, key.serialize_pem(), 0o600),
        (CERTIFICATE_FILE, issued.certificate.clone(), 0o644),
        (CA_FILE, issued.ca_certificate.clone(), 0o644),
    ] {
        let path = out.join(name);
        write_atomically(&path, contents.as_bytes(), mode)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn http_client(
    server_ca: Option<&Path>,
    identity: Option<reqwest::Identity>,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(30));
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    if let Some(path) = server_ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    Ok(builder.build()?)
}

/// What `certgate enroll` prints: where the files are and how to try them.
pub fn report(enrolled: &Enrolled, out: &Path) -> String {
    let file = |name: &str| out.join(name).display().to_string();
    format!(
        "agent        {id}\n\
         certificate  {crt}  (valid until {until})\n\
         private key  {key}  (0600; it never left this host)\n\
         issuing CA   {ca}\n\
         sha256       {sha256}\n\
         sha1         {sha1}  (nginx $ssl_client_fingerprint)\n\n\
         Try it through your proxy:\n  \
         curl --cert {crt} --key {key} https://your-proxy.example/\n",
        id = enrolled.agent_id,
        crt = file(CERTIFICATE_FILE),
        key = file(KEY_FILE),
        ca = file(CA_FILE),
        until = enrolled.not_after,
        sha256 = enrolled.fingerprint,
        sha1 = enrolled.fingerprint_sha1,
    )
}
