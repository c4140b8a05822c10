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
    /// Print a certificate's fingerprints: SHA-256 (canonical) and SHA-1 (what nginx's
    /// $ssl_client_fingerprint sends).
    Fingerprint {
        /// PEM or DER certificate file; `-` reads standard input.
        path: PathBuf,
    },
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
