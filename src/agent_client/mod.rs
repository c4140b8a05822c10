//! The agent side (`certgate enroll`, `certgate renew`, `certgate request`): a key made on
//! this host, a signing request for it, a token or the current certificate exchanged for a
//! certificate, and the files written so that no reader ever sees half of one. The private
//! key never leaves the host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use serde::Deserialize;
use serde_json::json;

use crate::files::StagedFiles;

mod daemon;
mod due;
pub mod hints;
pub mod hook;
pub mod p12;
mod request;

pub use daemon::{Schedule, run_daemon};
pub use due::{RenewAt, Validity, parse_fraction};
pub use hook::{Hook, parse_signal};
pub use p12::P12Output;
pub use request::{RequestOptions, request};

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
    /// Send the token over plain HTTP to another host (with a warning).
    pub insecure_http: bool,
    /// Also write the key, certificate and CA as one PKCS#12 file.
    pub p12: Option<P12Output>,
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

/// certgate's error answer, `{"error": {"code", "message"}}`, as its clients read it.
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Deserialize)]
pub(crate) struct ErrorDetail {
    pub code: String,
    pub message: String,
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
    pub p12: Option<P12Output>,
}

/// What a renewal check did.
pub enum Renewal {
    Renewed(Enrolled),
    /// The certificate is not due before this moment.
    NotDue {
        due_at: time::OffsetDateTime,
    },
}

/// Generates the key, redeems the token, writes `agent.key` (0600), `agent.crt` and
/// `ca.crt` (0644) into `options.out`.
pub async fn enrol(options: &EnrolOptions) -> anyhow::Result<Enrolled> {
    let server = hints::server_url(&options.server, options.insecure_http)?;
    let (key, csr) = new_key_and_request()?;
    let client = http_client(options.server_ca.as_deref(), None)?;
    let url = endpoint(server.as_str(), &options.base_path, "enroll");
    let body = json!({"token": options.token.trim(), "csr": csr});
    let enrolled: Enrolled = post(&client, &url, &body).await?;
    write_files(&options.out, &key, &enrolled, options.p12.as_ref())?;
    Ok(enrolled)
}

/// The validity of the certificate in `path` (the first one of a PEM file).
pub fn certificate_validity(path: &Path) -> anyhow::Result<Validity> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let der = crate::x509::pem_certificates(&text)
        .ok()
        .and_then(|ders| ders.into_iter().next())
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    let info = crate::x509::parse(der)
        .with_context(|| format!("{} is not a readable certificate", path.display()))?;
    Ok(Validity {
        not_before: info.not_before,
        not_after: info.not_after,
    })
}

/// Renews when the certificate is due by `renew_at` (always when `None`), through the
/// proxy with the current certificate as TLS client identity. The new key and certificate
/// replace the files in `options.out` only once the server answered.
pub async fn renew_if_due(
    options: &RenewOptions,
    renew_at: Option<RenewAt>,
    now: time::OffsetDateTime,
) -> anyhow::Result<Renewal> {
    if let Some(renew_at) = renew_at {
        let due_at = renew_at.due_at(certificate_validity(&options.certificate)?);
        if now < due_at {
            return Ok(Renewal::NotDue { due_at });
        }
    }
    renew(options).await.map(Renewal::Renewed)
}

async fn renew(options: &RenewOptions) -> anyhow::Result<Enrolled> {
    let server = hints::server_url(&options.server, false)?;
    if server.scheme() != "https" {
        bail!(
            "a renewal presents this host's certificate in the TLS handshake: --server must \
             be the proxy's https:// address"
        );
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let identity_pem = format!("{}\n{}", read(&options.certificate)?, read(&options.key)?);
    let identity = reqwest::Identity::from_pem(identity_pem.as_bytes())
        .context("the current certificate and key do not form a TLS identity")?;
    let (key, csr) = new_key_and_request()?;
    let client = http_client(options.server_ca.as_deref(), Some(identity))?;
    let url = endpoint(server.as_str(), &options.base_path, "renew");
    let renewed: Enrolled = post(&client, &url, &json!({ "csr": csr })).await?;
    write_files(&options.out, &key, &renewed, options.p12.as_ref())?;
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
    if !response.status().is_success() {
        return Err(hints::refused(response).await?.into());
    }
    let body = response.bytes().await.context("reading the answer")?;
    serde_json::from_slice(&body).context("the server's answer is not what was expected")
}

/// Every file is staged before any is replaced, the key first: the old key and certificate
/// stay in place, as a working pair, until the whole new set is on disk.
fn write_files(
    out: &Path,
    key: &KeyPair,
    issued: &Enrolled,
    p12: Option<&P12Output>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut staged = StagedFiles::default();
    let mut stage = |path: &Path, contents: &[u8], mode: u32| {
        staged
            .stage(path, contents, mode)
            .with_context(|| format!("writing {}", path.display()))
    };
    stage(&out.join(KEY_FILE), key.serialize_pem().as_bytes(), 0o600)?;
    stage(
        &out.join(CERTIFICATE_FILE),
        issued.certificate.as_bytes(),
        0o644,
    )?;
    stage(&out.join(CA_FILE), issued.ca_certificate.as_bytes(), 0o644)?;
    if let Some(p12) = p12 {
        let bundle = p12::bundle(
            &key.serialize_der(),
            &issued.certificate,
            Some(&issued.ca_certificate),
            &p12.passphrase,
        )?;
        stage(&p12.path, &bundle, 0o600)?;
    }
    staged.commit().context("replacing the files")
}

pub(crate) fn http_client(
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

/// What `certgate enroll` prints: where the files are and how to try them (with the
/// `--cacert` this host trusts the proxy by, when it needed one).
pub fn report(enrolled: &Enrolled, out: &Path, server_ca: Option<&Path>) -> String {
    let file = |name: &str| out.join(name).display().to_string();
    let cacert = server_ca
        .map(|path| format!("--cacert {} ", path.display()))
        .unwrap_or_default();
    format!(
        "agent        {id}\n\
         certificate  {crt}  (valid until {until})\n\
         private key  {key}  (0600; it never left this host)\n\
         issuing CA   {ca}\n\
         sha256       {sha256}\n\
         sha1         {sha1}  (nginx $ssl_client_fingerprint)\n\n\
         Try it through your proxy:\n  \
         curl {cacert}--cert {crt} --key {key} https://your-proxy.example/\n",
        id = enrolled.agent_id,
        crt = file(CERTIFICATE_FILE),
        key = file(KEY_FILE),
        ca = file(CA_FILE),
        until = enrolled.not_after,
        sha256 = enrolled.fingerprint,
        sha1 = enrolled.fingerprint_sha1,
    )
}
