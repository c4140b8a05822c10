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

/// What `POST B/enroll` answers.
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

/// Generates the key, redeems the token, writes `agent.key` (0600), `agent.crt` and
/// `ca.crt` (0644) into `options.out`.
pub async fn enrol(options: &EnrolOptions) -> anyhow::Result<Enrolled> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).context("generating a key")?;
    let csr = CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .context("writing the signing request")?;
    let url = format!(
        "{}{}/enroll",
        options.server.trim_end_matches('/'),
        options.base_path
    );
    let response = http_client(options.server_ca.as_deref())?
        .post(&url)
        .json(&json!({"token": options.token.trim(), "csr": csr}))
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
    let enrolled: Enrolled =
        serde_json::from_slice(&body).context("the server's answer is not an enrolment")?;
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    for (name, contents, mode) in [
        (KEY_FILE, key.serialize_pem(), 0o600),
        (CERTIFICATE_FILE, enrolled.certificate.clone(), 0o644),
        (CA_FILE, enrolled.ca_certificate.clone(), 0o644),
    ] {
        let path = options.out.join(name);
        write_atomically(&path, contents.as_bytes(), mode)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(enrolled)
}

fn http_client(server_ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(30));
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
        "enrolled agent {id}\n\
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
