//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::DEFAULT_BASE_PATH;

#[derive(Parser, Debug)]
#[command(
    name = "certgate",
    version = crate::VERSION,
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
    /// Write a consistent copy of the SQLite database to a new file, while certgate runs.
    /// The database is taken as it is: never created, never migrated. (PostgreSQL: use
    /// pg_dump.)
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
    /// On an agent host: when the certificate is due (two thirds through its lifetime by
    /// default), make a new key and get a certificate for it by presenting the current one
    /// through the proxy (POST B/renew); the files are replaced on success. Exit status: 0
    /// renewed, 3 not due yet, 1 failed.
    Renew(RenewArgs),
    /// On a host without a token: ask to be enrolled (key made here, only a signing
    /// request sent), then wait for an administrator's approval and write the files.
    Request(RequestArgs),
    /// Operate a running certgate through its admin API: CAs, agents, enrolments,
    /// self-enrolment requests, policy, the audit trail, what expires soon.
    Admin(AdminArgs),
    /// Bundle a key, its certificate and CA certificates into one PKCS#12 file (AES-256,
    /// PBKDF2), for curl `--cert-type P12`, Java, Windows and browsers.
    P12(P12Args),
    /// Ask a running certgate's /healthz; exit 0 when it answers 200, 1 otherwise (for
    /// container HEALTHCHECKs, which have no curl).
    Healthcheck {
        /// The address to ask; by default where `certgate serve` listens with the same
        /// settings (--config, CERTGATE_LISTEN), on loopback when that is every address.
        #[arg(long)]
        url: Option<String>,
    },
    /// Write the manual pages (certgate.1 and one per subcommand) into a directory.
    #[command(hide = true)]
    Manpages {
        /// Where to write them (created if missing).
        dir: PathBuf,
    },
    /// Print a shell completion script, e.g. `certgate completions bash >
    /// /etc/bash_completion.d/certgate`.
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// certgate's address, e.g. https://certgate.internal:3000 (the base path is added).
    #[arg(
        long,
        env = "CERTGATE_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// An admin token; from the server's own CERTGATE_ADMIN_TOKEN (its first entry) when
    /// not given. CERTGATE_ADMIN_TOKEN_FILE names a file holding it.
    #[arg(
        long,
        env = "CERTGATE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// A PEM CA certificate to trust for an https:// URL.
    #[arg(long, value_name = "PEM", global = true)]
    pub cacert: Option<PathBuf>,
    /// The API base path the server is configured with.
    #[arg(
        long,
        env = "CERTGATE_BASE_PATH",
        default_value = DEFAULT_BASE_PATH,
        global = true
    )]
    pub base_path: String,
    /// Where agent hosts reach certgate (the proxy's https:// address), for the enrol
    /// command printed with a token; --url when not given.
    #[arg(long, env = "CERTGATE_AGENT_URL", value_name = "URL", global = true)]
    pub agent_url: Option<String>,
    /// Tables for people, or the API's JSON for scripts.
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Trusted CAs.
    Ca {
        #[command(subcommand)]
        command: CaAdmin,
    },
    /// Enrolled and pending agents.
    Agents {
        #[command(subcommand)]
        command: AgentsAdmin,
    },
    /// Pending agents and their one-time enrolment tokens.
    Enrollments {
        #[command(subcommand)]
        command: EnrollmentsAdmin,
    },
    /// Hosts' self-enrolment requests.
    Requests {
        #[command(subcommand)]
        command: RequestsAdmin,
    },
    /// The verify policy: enforcement, unknown certificates, auto-enrolment.
    Config {
        #[command(subcommand)]
        command: ConfigAdmin,
    },
    /// The audit trail, newest first.
    Audit(AuditArgs),
    /// Active agents and CAs whose certificate expires within a time, soonest first.
    Expiring {
        /// How far ahead: 30d, 12h, 2w …
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        within: std::time::Duration,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaAdmin {
    /// List trusted CAs.
    List(CaListArgs),
    /// One CA, with its certificate.
    Show { id: String },
    /// Trust a CA certificate (PEM file; `-` reads standard input).
    Add {
        /// The name it is listed under.
        #[arg(long)]
        name: String,
        certificate: PathBuf,
    },
    /// Stop trusting a CA: its agents are denied from the next request on.
    Remove { id: String },
}

#[derive(clap::Args, Debug)]
pub struct CaListArgs {
    /// not_after, name or created_at; `-` before it for descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(clap::Args, Debug)]
pub struct PageArgs {
    /// At most this many items (1–500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Skip this many items.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Every item, page after page.
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    pub all: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentsAdmin {
    /// List agents (revoked ones only with --status revoked or --include-revoked).
    List(AgentListArgs),
    /// One agent.
    Show { id: String },
    /// Enrol a certificate an agent already has (PEM file; `-` reads standard input).
    Enrol {
        #[arg(long)]
        hostname: String,
        /// The CA that issued it (an id from `certgate admin ca list`).
        #[arg(long)]
        ca: String,
        certificate: PathBuf,
        #[command(flatten)]
        fields: AgentFieldArgs,
    },
    /// Change an agent's hostname, description, tags or allowed addresses.
    Update {
        id: String,
        #[arg(long)]
        hostname: Option<String>,
        #[command(flatten)]
        fields: AgentFieldArgs,
        /// Remove the description.
        #[arg(long, conflicts_with = "description")]
        clear_description: bool,
        /// Lift the address restriction.
        #[arg(long, conflicts_with = "allowed_ip")]
        any_ip: bool,
    },
    /// Let an agent through again.
    Enable { id: String },
    /// Refuse an agent until enabled again.
    Disable { id: String },
    /// Revoke an agent for good (a pending one's enrolment is withdrawn).
    Revoke { id: String },
    /// A new one-time enrolment token for a pending agent, or for re-enrolling one.
    Token {
        id: String,
        /// How long the token works: 1h, 2d …
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
}

#[derive(clap::Args, Debug, Default)]
pub struct AgentFieldArgs {
    /// A free-text description.
    #[arg(long)]
    pub description: Option<String>,
    /// A tag (repeat for several); replaces the agent's tags.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// An address or CIDR the agent may connect from (repeat for several).
    #[arg(long = "allowed-ip")]
    pub allowed_ip: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AgentListArgs {
    /// active, disabled, revoked, expired, ca_removed, ca_expired or pending.
    #[arg(long)]
    pub status: Option<String>,
    /// Agents with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Agents of this CA.
    #[arg(long)]
    pub ca: Option<String>,
    /// Part of the hostname.
    #[arg(long, short)]
    pub query: Option<String>,
    /// Revoked agents too.
    #[arg(long)]
    pub include_revoked: bool,
    /// not_after, hostname, created_at or last_seen_at; `-` before it for descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

#[derive(Subcommand, Debug)]
pub enum EnrollmentsAdmin {
    /// A pending agent and its one-time token, shown once, with the command to run on
    /// the agent host.
    Create {
        #[arg(long)]
        hostname: String,
        /// agent, server or admin.
        #[arg(long)]
        profile: Option<String>,
        /// How long the token works: 1h, 2d …
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
        #[command(flatten)]
        fields: AgentFieldArgs,
    },
    /// Agents that have not redeemed their token yet.
    List(PageArgs),
}

#[derive(Subcommand, Debug)]
pub enum RequestsAdmin {
    /// Self-enrolment requests (pending ones unless --status says otherwise).
    List {
        /// pending, approved or denied.
        #[arg(long, default_value = "pending")]
        status: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Issue the host its certificate. Compare the key's SHA-256 with what the host
    /// printed first.
    Approve {
        id: String,
        /// agent, server or admin.
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        fields: AgentFieldArgs,
        /// Approve although an active agent uses the same address (NAT, shared egress).
        #[arg(long)]
        allow_shared_ip: bool,
    },
    /// Refuse a request.
    Deny { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigAdmin {
    /// The policy now.
    Show,
    /// Change one or more switches.
    Set {
        /// false is audit mode: every certificate passes, denials are only counted.
        #[arg(long)]
        enforcement: Option<bool>,
        /// false lets certificates nobody enrolled through.
        #[arg(long)]
        reject_unknown: Option<bool>,
        /// true enrols, on first sight, certificates that chain to a trusted CA.
        #[arg(long)]
        auto_enroll: Option<bool>,
    },
}

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// An admin token's name, agent:<id>, anonymous or system.
    #[arg(long)]
    pub actor: Option<String>,
    /// e.g. agent.revoke, ca.add, config.update.
    #[arg(long)]
    pub action: Option<String>,
    /// The id of the agent, CA or request changed.
    #[arg(long)]
    pub target: Option<String>,
    /// From this time (RFC 3339), or this long ago (24h, 7d …).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339), or this long ago.
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
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
    #[arg(
        long,
        env = "CERTGATE_BASE_PATH",
        default_value = DEFAULT_BASE_PATH
    )]
    pub base_path: String,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Allow sending the token over plain http:// to another host.
    #[arg(long)]
    pub insecure_http: bool,
    #[command(flatten)]
    pub p12: P12OutputArgs,
}

/// `--p12` on the commands that write an agent's files.
#[derive(clap::Args, Debug)]
pub struct P12OutputArgs {
    /// Also write key, certificate and CA as one PKCS#12 file (0600).
    #[arg(long, value_name = "FILE")]
    pub p12: Option<PathBuf>,
    /// A file whose first line is the PKCS#12 passphrase (asked at the terminal otherwise).
    #[arg(long, value_name = "FILE", requires = "p12")]
    pub p12_pass_file: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct P12Args {
    /// The certificate (PEM; a chain after it is bundled too).
    #[arg(long, default_value = "agent.crt")]
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    #[arg(long, default_value = "agent.key")]
    pub key: PathBuf,
    /// CA certificates to add (PEM), e.g. ca.crt.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The PKCS#12 file to write (0600).
    #[arg(long)]
    pub out: PathBuf,
    /// A file whose first line is the passphrase (asked at the terminal otherwise).
    #[arg(long, value_name = "FILE")]
    pub pass_file: Option<PathBuf>,
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
    #[arg(
        long,
        env = "CERTGATE_BASE_PATH",
        default_value = DEFAULT_BASE_PATH
    )]
    pub base_path: String,
    /// A PEM CA certificate to trust for the proxy's TLS certificate.
    #[arg(long, value_name = "PEM", env = "CERTGATE_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Renew once this fraction of the lifetime has passed: 2/3 (the default), 0.75, 80%.
    #[arg(long, value_parser = crate::agent_client::parse_fraction, conflicts_with = "expires_in")]
    pub renew_at: Option<f64>,
    /// Renew once less than this is left: 30d, 12h …
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    /// Renew now, whether due or not.
    #[arg(long, conflicts_with_all = ["renew_at", "expires_in", "daemon"])]
    pub force: bool,
    /// Keep running: check on an interval (with jitter), renew when due, retry failures
    /// with backoff. Stops on SIGTERM.
    #[arg(long)]
    pub daemon: bool,
    /// With --daemon, the longest wait between two checks: 1h, 10m …
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, requires = "daemon")]
    pub interval: std::time::Duration,
    /// A shell command run after each renewal, e.g. `systemctl reload nginx`; it sees
    /// CERTGATE_CERT, CERTGATE_KEY, CERTGATE_CA and CERTGATE_AGENT_ID.
    #[arg(
        long,
        value_name = "COMMAND",
        env = "CERTGATE_RENEW_EXEC",
        conflicts_with = "reload_signal"
    )]
    pub exec: Option<String>,
    /// After each renewal, send this signal (HUP, USR1 …) to the process in --pid-file.
    #[arg(long, value_name = "SIGNAL", requires = "pid_file", value_parser = crate::agent_client::parse_signal)]
    pub reload_signal: Option<rustix::process::Signal>,
    /// The PID file of the process --reload-signal goes to.
    #[arg(long, value_name = "FILE", requires = "reload_signal")]
    pub pid_file: Option<PathBuf>,
    #[command(flatten)]
    pub p12: P12OutputArgs,
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
    #[arg(
        long,
        env = "CERTGATE_BASE_PATH",
        default_value = DEFAULT_BASE_PATH
    )]
    pub base_path: String,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Allow sending the request over plain http:// to another host.
    #[arg(long)]
    pub insecure_http: bool,
    #[command(flatten)]
    pub p12: P12OutputArgs,
}
