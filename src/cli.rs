//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "certgate",
    version,
    about = "Verification sidecar for mutual TLS behind a reverse proxy"
)]
pub struct Cli {
    /// TOML configuration file (also CERTGATE_CONFIG); environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Create the database if needed, apply migrations, and exit.
    Migrate,
    /// Write a consistent copy of the live SQLite database to a new file, while certgate
    /// runs. (PostgreSQL: use pg_dump.)
    Backup {
        /// The new file.
        path: PathBuf,
    },
    /// Print a certificate's fingerprints: SHA-256 (canonical) and SHA-1 (what nginx's
    /// $ssl_client_fingerprint sends).
    Fingerprint {
        /// PEM or DER certificate file; `-` reads standard input.
        path: PathBuf,
    },
    /// certgate's own CA.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// On an agent host: make a private key here, redeem a one-time enrolment token for a
    /// certificate over it, and write agent.key (0600), agent.crt and ca.crt.
    Enroll(EnrollArgs),
    /// On an agent host: make a new key and get a certificate for it by presenting the
    /// current one through the proxy (POST B/renew); the files are replaced on success.
    Renew(RenewArgs),
    /// On a host without a token: ask to be enrolled (key made here, only a signing
    /// request sent), then wait for an administrator's approval and write the files.
    Request(RequestArgs),
}

#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create the internal CA in the data directory if it is not there yet, register it as
    /// a trusted CA, and print where it is.
    Init,
}

#[derive(clap::Args, Debug)]
pub struct EnrollArgs {
    /// certgate's address, e.g. https://certgate.internal:3000 (or the proxy route to it).
    #[arg(long, env = "CERTGATE_SERVER")]
    pub server: String,
    /// The one-time token from `POST B/enrollments` or `POST B/agents/:id/token`.
    #[arg(long, env = "CERTGATE_ENROLL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Directory for agent.key, agent.crt and ca.crt (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The API base path the server is configured with.
    #[arg(long, default_value = "/api/ext/cockpit-enterprise/mtls")]
    pub base_path: String,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

/// The lines `certgate fingerprint` prints for PEM (one or more certificates) or DER input.
pub fn fingerprint_report(input: &[u8]) -> Result<String, crate::x509::CertError> {
    let ders = match std::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN") => crate::x509::pem_certificates(text)?,
        _ => vec![input.to_vec()],
    };
    let mut out = String::new();
    for der in ders {
        let info = crate::x509::parse(der)?;
        out.push_str(&format!(
            "subject  {}\nsha256   {}\nsha1     {}  (nginx $ssl_client_fingerprint)\n",
            info.subject, info.fingerprint, info.sha1
        ));
    }
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct RenewArgs {
    /// The proxy's address (its renew location forwards to certgate with the identity
    /// headers and the verify secret), e.g. https://gateway.internal.
    #[arg(long, env = "CERTGATE_SERVER")]
    pub server: String,
    /// The current certificate.
    #[arg(long, default_value = "agent.crt")]
    pub cert: PathBuf,
    /// The current private key.
    #[arg(long, default_value = "agent.key")]
    pub key: PathBuf,
    /// Directory for the new agent.key, agent.crt and ca.crt (default: the certificate's).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The API base path the server is configured with.
    #[arg(long, default_value = "/api/ext/cockpit-enterprise/mtls")]
    pub base_path: String,
    /// A PEM CA certificate to trust for the proxy's TLS certificate.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    /// certgate's address (or the proxy route to it).
    #[arg(long, env = "CERTGATE_SERVER")]
    pub server: String,
    /// This host's name, as the agent will be listed.
    #[arg(long)]
    pub hostname: String,
    /// This host's primary address (default: the one it reaches the server from).
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// A file holding the machine id.
    #[arg(long, default_value = "/etc/machine-id")]
    pub machine_id_file: PathBuf,
    /// Directory for agent.key, agent.crt and ca.crt; request.token waits there meanwhile.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Seconds between two status checks.
    #[arg(long, default_value_t = 30)]
    pub poll_interval: u64,
    /// Give up waiting after this many seconds (run again to resume).
    #[arg(long, default_value_t = 86_400)]
    pub timeout: u64,
    /// The API base path the server is configured with.
    #[arg(long, default_value = "/api/ext/cockpit-enterprise/mtls")]
    pub base_path: String,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}
