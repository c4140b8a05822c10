//! Layered configuration: built-in defaults, then an optional TOML file, then environment
//! variables (`CERTGATE_*`, plus `MTLS_VERIFY_SECRET`, the name the seed API uses).
//!
//! The file and the environment use flat keys ([`Layer`]); [`Settings`] is what they
//! validate into, grouped by concern. Only known variable names are read from the
//! environment, so unrelated `CERTGATE_*` variables (the agent CLI's, test switches) never
//! trip `deny_unknown_fields`.
//!
//! A leaf of the module graph: it knows value types (the token lifetimes, the identity
//! header set, the URL path rules) and no service.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::Duration;

use crate::domain::enrolment::{MAX_RENEWAL_GRACE, MAX_TOKEN_TTL, MIN_TOKEN_TTL};
use crate::proxy::IdentityHeaders;

/// Where the API lives unless `CERTGATE_BASE_PATH` says otherwise (the seed's path).
pub const DEFAULT_BASE_PATH: &str = "/api/ext/cockpit-enterprise/mtls";

/// The longest `decision_cache_seconds`: how long a revoked agent may still get in.
pub const MAX_DECISION_CACHE_SECONDS: u32 = 10;

/// Secrets that may also be read from a file named by `<NAME>_FILE`.
const SECRET_KEYS: &[&str] = &["database_url", "admin_token", "verify_secret"];

/// The seed's name for the verify secret; it wins over `CERTGATE_VERIFY_SECRET`.
pub const SEED_VERIFY_SECRET_VAR: &str = "MTLS_VERIFY_SECRET";

/// Switches that open a way around a check carry `danger_` in their name; their earlier
/// names (old name, current name) keep working, with a warning.
const RENAMED_KEYS: &[(&str, &str)] = &[
    ("verify_body", "danger_verify_body"),
    ("admin_certificate_auth", "danger_admin_certificate_auth"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration: cannot read {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The file and environment layer: one field per key. A field's name is its key in the
/// TOML file and, as `CERTGATE_` + the name in upper case, in the environment; `Default`
/// holds the built-in values. `config/default.toml` documents every key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Layer {
    listen: String,
    data_dir: PathBuf,
    database_url: Option<SecretString>,
    database_max_connections: u32,
    database_connect_timeout_seconds: u64,
    base_path: String,
    console: bool,
    console_path: String,
    admin_token: Option<SecretString>,
    verify_secret: Option<SecretString>,
    identity_headers: String,
    trusted_proxies: String,
    danger_verify_body: bool,
    decision_cache_seconds: u32,
    admin_auth_failures_per_minute: u32,
    verify_secret_failures_per_minute: u32,
    log_format: String,
    log_level: String,
    last_seen_flush_ms: u64,
    sync_interval_ms: u64,
    unknown_cert_cache_size: usize,
    workers: usize,
    keep_alive_seconds: u64,
    internal_ca: bool,
    agent_sans: String,
    agent_certificate_days: u32,
    agent_certificate_lifetime: String,
    enrollment_token_ttl_seconds: u64,
    renewal_grace_seconds: u64,
    enroll_requests_per_minute: u32,
    danger_admin_certificate_auth: bool,
}

impl Default for Layer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            data_dir: "./data".into(),
            database_url: None,
            database_max_connections: 8,
            database_connect_timeout_seconds: 60,
            base_path: DEFAULT_BASE_PATH.into(),
            console: true,
            console_path: "/console".into(),
            admin_token: None,
            verify_secret: None,
            identity_headers: "X-Client-Cert,X-Client-Cert-Fingerprint".into(),
            trusted_proxies: String::new(),
            danger_verify_body: true,
            decision_cache_seconds: 0,
            admin_auth_failures_per_minute: 10,
            verify_secret_failures_per_minute: 30,
            log_format: "human".into(),
            log_level: "info".into(),
            last_seen_flush_ms: 2000,
            sync_interval_ms: 500,
            unknown_cert_cache_size: 10_000,
            workers: 0,
            keep_alive_seconds: 75,
            internal_ca: true,
            agent_sans: String::new(),
            agent_certificate_days: 365,
            agent_certificate_lifetime: String::new(),
            enrollment_token_ttl_seconds: 86_400,
            renewal_grace_seconds: 86_400,
            enroll_requests_per_minute: 1,
            danger_admin_certificate_auth: true,
        }
    }
}

/// Every key of the file and environment layer.
fn keys() -> &'static [&'static str] {
    serde_aux::serde_introspection::serde_introspect::<Layer>()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Where the data lives. The password inside a PostgreSQL URL stays out of `Debug`.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

/// The validated configuration the server runs with, by concern.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub verify: VerifySettings,
    pub admin: AdminSettings,
    pub issuance: IssuanceSettings,
    pub log: LogSettings,
    /// Things worth a warning once logging is up (it is configured from these settings).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// Normalised: starts with `/`, no trailing `/`.
    pub base_path: String,
    /// Where the web console is served (normalised like `base_path`); `None`: turned off.
    pub console_path: Option<String>,
    /// 0: one per CPU core.
    pub workers: usize,
    pub keep_alive_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The SQLite database's home (unless `database_url` says otherwise) and the internal
    /// CA's.
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub max_connections: u32,
    /// How long start-up waits for a PostgreSQL server that cannot be reached yet.
    pub connect_timeout: std::time::Duration,
    pub last_seen_flush_ms: u64,
    /// How often the change feed of other replicas' writes is read.
    pub sync_interval_ms: u64,
}

#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub secrets: Vec<SecretString>,
    pub identity_headers: IdentityHeaders,
    /// Empty: any peer may call verify.
    pub trusted_proxies: Vec<IpNet>,
    /// Whether the seed's JSON body form is read when no identity header is present.
    pub read_body: bool,
    /// How long a proxy may cache an allow (`X-Accel-Expires`); 0: no caching.
    pub decision_cache_seconds: u32,
    pub secret_failures_per_minute: u32,
    pub unknown_cert_cache_size: usize,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub tokens: Vec<SecretString>,
    /// Failed admin logins and enrolment-token redemptions allowed per TCP peer.
    pub failures_per_minute: u32,
    /// Whether agents with the `admin` profile may call the admin API by certificate.
    pub certificate_auth: bool,
}

/// How certgate issues as its own CA.
#[derive(Debug, Clone)]
pub struct IssuanceSettings {
    /// Whether certgate runs its own CA (created in `data_dir` the first time it issues).
    pub internal_ca: bool,
    /// Extra DNS names or IPs put in every issued certificate (`agent_sans`).
    pub extra_sans: Vec<String>,
    pub certificate_validity: Duration,
    pub token_ttl: Duration,
    /// How long a renewed-away certificate keeps verifying (never beyond its own expiry).
    pub renewal_grace: Duration,
    /// Host self-enrolment requests allowed per client address.
    pub host_requests_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter; `RUST_LOG` overrides it.
    pub level: String,
}

impl Settings {
    /// Loads from the process environment and an optional file.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(config_file, &env)
    }

    /// Loads from an explicit environment map, so tests never touch the process environment.
    pub fn from_sources(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let mut builder = config::Config::builder();
        let config_file = config_file
            .map(Path::to_path_buf)
            .or_else(|| env.get("CERTGATE_CONFIG").map(PathBuf::from));
        if let Some(path) = config_file {
            builder = builder.add_source(file_layer(&path, &mut warnings)?);
        }
        for key in keys() {
            if let Some(value) = env_value(env, key)? {
                builder = builder.set_override(*key, value)?;
            }
        }
        for (old, new) in RENAMED_KEYS {
            let (old_var, new_var) = (variable(old), variable(new));
            let Some(value) = env.get(&old_var) else {
                continue;
            };
            if env.contains_key(&new_var) {
                warnings.push(format!(
                    "both {new_var} and its old name {old_var} are set; using {new_var}"
                ));
            } else {
                warnings.push(format!(
                    "{old_var} is now {new_var}; the old name still works"
                ));
                builder = builder.set_override(*new, value.clone())?;
            }
        }
        if let Some(value) = seed_verify_secret(env)? {
            if env_value(env, "verify_secret")?.is_some() {
                warnings.push(format!(
                    "both {SEED_VERIFY_SECRET_VAR} and CERTGATE_VERIFY_SECRET are set; \
                     using {SEED_VERIFY_SECRET_VAR}"
                ));
            }
            builder = builder.set_override("verify_secret", value)?;
        }
        let layer: Layer = builder.build()?.try_deserialize()?;
        Self::validate(layer, warnings)
    }

    fn validate(raw: Layer, warnings: Vec<String>) -> Result<Self, ConfigError> {
        let base_path = normalise_base_path(&raw.base_path)?;
        Ok(Self {
            http: HttpSettings {
                listen: raw.listen.parse().map_err(|_| {
                    invalid("listen", format!("`{}` is not an address:port", raw.listen))
                })?,
                console_path: match raw.console {
                    true => Some(console_path(&raw.console_path, &base_path)?),
                    false => None,
                },
                base_path,
                workers: raw.workers,
                keep_alive_seconds: raw.keep_alive_seconds,
            },
            store: StoreSettings {
                database: match &raw.database_url {
                    None => DatabaseUrl::Sqlite(raw.data_dir.join("certgate.db")),
                    Some(url) => parse_database_url(url)?,
                },
                data_dir: raw.data_dir,
                max_connections: raw.database_max_connections.max(1),
                connect_timeout: std::time::Duration::from_secs(
                    raw.database_connect_timeout_seconds,
                ),
                last_seen_flush_ms: within(
                    "last_seen_flush_ms",
                    raw.last_seen_flush_ms,
                    1..=5000,
                    "must be between 1 and 5000",
                )?,
                sync_interval_ms: within(
                    "sync_interval_ms",
                    raw.sync_interval_ms,
                    1..=u64::MAX,
                    "must be at least 1",
                )?,
            },
            verify: VerifySettings {
                secrets: secret_list(raw.verify_secret.as_ref()),
                identity_headers: IdentityHeaders::parse(&raw.identity_headers)
                    .map_err(|message| invalid("identity_headers", message))?,
                trusted_proxies: split_list(&raw.trusted_proxies)
                    .map(parse_cidr)
                    .collect::<Result<Vec<_>, _>>()?,
                read_body: raw.danger_verify_body,
                decision_cache_seconds: within(
                    "decision_cache_seconds",
                    raw.decision_cache_seconds,
                    0..=MAX_DECISION_CACHE_SECONDS,
                    &format!(
                        "must be between 0 (no caching) and {MAX_DECISION_CACHE_SECONDS}: a \
                         cached allow outlives a revocation by that long"
                    ),
                )?,
                secret_failures_per_minute: per_minute(
                    "verify_secret_failures_per_minute",
                    raw.verify_secret_failures_per_minute,
                )?,
                unknown_cert_cache_size: raw.unknown_cert_cache_size,
            },
            admin: AdminSettings {
                tokens: secret_list(raw.admin_token.as_ref()),
                failures_per_minute: per_minute(
                    "admin_auth_failures_per_minute",
                    raw.admin_auth_failures_per_minute,
                )?,
                certificate_auth: raw.danger_admin_certificate_auth,
            },
            issuance: IssuanceSettings {
                internal_ca: raw.internal_ca,
                extra_sans: split_list(&raw.agent_sans)
                    .map(|name| parse_agent_san(name).map(str::to_owned))
                    .collect::<Result<Vec<_>, _>>()?,
                certificate_validity: certificate_validity(
                    raw.agent_certificate_days,
                    &raw.agent_certificate_lifetime,
                )?,
                token_ttl: seconds_within(
                    "enrollment_token_ttl_seconds",
                    raw.enrollment_token_ttl_seconds,
                    MIN_TOKEN_TTL..=MAX_TOKEN_TTL,
                    "must be between 1 and 2592000 (30 days)",
                )?,
                renewal_grace: seconds_within(
                    "renewal_grace_seconds",
                    raw.renewal_grace_seconds,
                    Duration::ZERO..=MAX_RENEWAL_GRACE,
                    "must be between 0 and 2592000 (30 days)",
                )?,
                host_requests_per_minute: per_minute(
                    "enroll_requests_per_minute",
                    raw.enroll_requests_per_minute,
                )?,
            },
            log: LogSettings {
                format: parse_log_format(&raw.log_format)?,
                level: raw.log_level,
            },
            warnings,
        })
    }
}

/// `value` when `range` holds it, else the key's error.
fn within<T: PartialOrd>(
    key: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    message: &str,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(key, message))
    }
}

fn seconds_within(
    key: &'static str,
    seconds: u64,
    range: std::ops::RangeInclusive<Duration>,
    message: &str,
) -> Result<Duration, ConfigError> {
    i64::try_from(seconds)
        .map(Duration::seconds)
        .ok()
        .filter(|duration| range.contains(duration))
        .ok_or_else(|| invalid(key, message))
}

/// A failure rate limit: zero would refuse every caller, the correct ones included.
fn per_minute(key: &'static str, value: u32) -> Result<u32, ConfigError> {
    within(key, value, 1..=u32::MAX, "must be at least 1 per minute")
}

fn parse_log_format(text: &str) -> Result<LogFormat, ConfigError> {
    match text.to_ascii_lowercase().as_str() {
        "human" | "text" | "pretty" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(invalid(
            "log_format",
            format!("`{other}`: use human or json"),
        )),
    }
}

/// The configuration file's keys, with each old name of a renamed key moved to its new
/// name (a key written under both names keeps the new one).
fn file_layer(path: &Path, warnings: &mut Vec<String>) -> Result<config::Config, ConfigError> {
    let file = config::Config::builder()
        .add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        )
        .build()?;
    let mut table: config::Map<String, config::Value> = file.try_deserialize()?;
    for (old, new) in RENAMED_KEYS {
        let Some(value) = table.remove(*old) else {
            continue;
        };
        if table.contains_key(*new) {
            warnings.push(format!(
                "{}: both {new} and its old name {old} are set; using {new}",
                path.display()
            ));
        } else {
            warnings.push(format!(
                "{}: {old} is now {new}; the old name still works",
                path.display()
            ));
            table.insert((*new).to_owned(), value);
        }
    }
    let mut layer = config::Config::builder();
    for (key, value) in table {
        layer = layer.set_override(key, value)?;
    }
    Ok(layer.build()?)
}

/// A key's environment variable.
fn variable(key: &str) -> String {
    format!("CERTGATE_{}", key.to_ascii_uppercase())
}

/// `CERTGATE_<KEY>`, or for secrets the contents of the file named by `CERTGATE_<KEY>_FILE`.
fn env_value(env: &HashMap<String, String>, key: &str) -> Result<Option<String>, ConfigError> {
    let name = variable(key);
    if SECRET_KEYS.contains(&key) {
        return value_or_file(env, &name);
    }
    Ok(env.get(&name).cloned())
}

fn seed_verify_secret(env: &HashMap<String, String>) -> Result<Option<String>, ConfigError> {
    value_or_file(env, SEED_VERIFY_SECRET_VAR)
}

fn value_or_file(env: &HashMap<String, String>, name: &str) -> Result<Option<String>, ConfigError> {
    if let Some(value) = env.get(name) {
        return Ok(Some(value.clone()));
    }
    let Some(path) = env.get(&format!("{name}_FILE")) else {
        return Ok(None);
    };
    std::fs::read_to_string(path)
        .map(|text| Some(text.trim_end_matches(['\r', '\n']).to_owned()))
        .map_err(|source| ConfigError::SecretFile {
            path: path.clone(),
            source,
        })
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn secret_list(value: Option<&SecretString>) -> Vec<SecretString> {
    value
        .map(|secret| {
            split_list(secret.expose_secret())
                .map(|item| SecretString::from(item.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `agent_certificate_lifetime` when set (a duration, 1 minute to 3650 days), else
/// `agent_certificate_days`.
fn certificate_validity(days: u32, lifetime: &str) -> Result<Duration, ConfigError> {
    const KEY: &str = "agent_certificate_lifetime";
    if lifetime.trim().is_empty() {
        return Ok(Duration::days(i64::from(within(
            "agent_certificate_days",
            days,
            1..=3650,
            "must be between 1 and 3650",
        )?)));
    }
    let lifetime = humantime::parse_duration(lifetime.trim()).map_err(|e| {
        invalid(
            KEY,
            format!("`{lifetime}` is not a duration (10m, 12h, 90d): {e}"),
        )
    })?;
    Duration::try_from(lifetime)
        .ok()
        .filter(|lifetime| (Duration::minutes(1)..=Duration::days(3650)).contains(lifetime))
        .ok_or_else(|| invalid(KEY, "must be between 1m and 3650d"))
}

/// A DNS name or an IP address for issued certificates' subjectAltName.
fn parse_agent_san(text: &str) -> Result<&str, ConfigError> {
    let dns_shaped = text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*'));
    if dns_shaped || text.parse::<std::net::IpAddr>().is_ok() {
        Ok(text)
    } else {
        Err(invalid(
            "agent_sans",
            format!("`{text}` is neither a DNS name nor an IP address"),
        ))
    }
}

fn parse_cidr(text: &str) -> Result<IpNet, ConfigError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| invalid("trusted_proxies", format!("`{text}` is not an IP or CIDR")))
}

fn parse_database_url(url: &SecretString) -> Result<DatabaseUrl, ConfigError> {
    let text = url.expose_secret();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(url.clone()));
    }
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(invalid("database_url", "SQLite needs a file path"));
        }
        return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
    }
    Err(invalid(
        "database_url",
        "use sqlite://path/to/file.db or postgres://user:password@host/db",
    ))
}

/// The console's path: like a base path, but neither the root, nor certgate's own routes,
/// nor inside the API (`base`, already normalised), nor the API inside it.
fn console_path(path: &str, base: &str) -> Result<String, ConfigError> {
    const KEY: &str = "console_path";
    let console = normalise_base_path(path)
        .map_err(|_| invalid(KEY, format!("`{path}` is not a plain absolute URL path")))?;
    let within =
        |inner: &str, outer: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    if console.is_empty()
        || (!base.is_empty() && (within(&console, base) || within(base, &console)))
        || ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&console.as_str())
    {
        return Err(invalid(
            KEY,
            format!("`{path}` would hide the API or certgate's own routes"),
        ));
    }
    Ok(console)
}

fn normalise_base_path(path: &str) -> Result<String, ConfigError> {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if !trimmed.starts_with('/') || trimmed.contains(['?', '#', ' ']) {
        return Err(invalid(
            "base_path",
            format!("`{path}` is not an absolute URL path"),
        ));
    }
    if crate::url_path::is_unusual(trimmed) {
        return Err(invalid(
            "base_path",
            format!("`{path}` has a percent-escape, an empty segment or a dot segment"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The name and the token of an admin token entry written `name:token`; `None` for a bare
/// token. A name is 1–64 letters, digits, `.`, `_`, `@` or `-`, starting with a letter or
/// digit, and neither `token` nor `agent` (names the audit trail gives other actors).
pub fn named_token(entry: &str) -> Option<(&str, &str)> {
    let (name, token) = entry.split_once(':')?;
    let is_name = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
        && name != "token"
        && name != "agent";
    (is_name && !token.is_empty()).then_some((name, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_work_on_a_fresh_machine() {
        let settings = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(settings.http.listen.to_string(), "127.0.0.1:3000");
        assert!(
            matches!(&settings.store.database, DatabaseUrl::Sqlite(p) if p.ends_with("certgate.db"))
        );
        assert!(
            settings.admin.tokens.is_empty(),
            "no token means fail closed"
        );
        assert!(settings.verify.secrets.is_empty());
        assert_eq!(settings.http.base_path, "/api/ext/cockpit-enterprise/mtls");
    }

    #[test]
    fn seed_secret_name_wins_over_alias_with_a_warning() {
        let settings = Settings::from_sources(
            None,
            &env(&[
                ("MTLS_VERIFY_SECRET", "seed-one,seed-two"),
                ("CERTGATE_VERIFY_SECRET", "alias"),
            ]),
        )
        .unwrap();
        let secrets: Vec<_> = settings
            .verify
            .secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["seed-one", "seed-two"]);
        assert_eq!(settings.warnings.len(), 1);
    }

    #[test]
    fn unrelated_certgate_variables_are_ignored() {
        Settings::from_sources(None, &env(&[("CERTGATE_E2E", "require")])).unwrap();
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let settings = Settings::from_sources(
            None,
            &env(&[("CERTGATE_ADMIN_TOKEN_FILE", path.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(settings.admin.tokens[0].expose_secret(), "from-file");
    }

    #[test]
    fn file_layer_sits_between_defaults_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:4000\"\ndanger_verify_body = false\n",
        )
        .unwrap();
        let settings =
            Settings::from_sources(Some(&path), &env(&[("CERTGATE_LISTEN", "127.0.0.1:5000")]))
                .unwrap();
        assert_eq!(settings.http.listen.port(), 5000);
        assert!(!settings.verify.read_body);
    }

    /// `(read_body, certificate_auth, warnings)` for a file's text and an environment.
    fn danger_switches(file: &str, pairs: &[(&str, &str)]) -> (bool, bool, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(&path, file).unwrap();
        let settings = Settings::from_sources(Some(&path), &env(pairs)).unwrap();
        (
            settings.verify.read_body,
            settings.admin.certificate_auth,
            settings.warnings,
        )
    }

    #[test]
    fn old_names_of_danger_switches_still_work_with_a_warning() {
        let (body, certificate_auth, warnings) =
            danger_switches("verify_body = false\nadmin_certificate_auth = false\n", &[]);
        assert!(!body && !certificate_auth);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("verify_body is now danger_verify_body"));

        let (body, certificate_auth, warnings) = danger_switches(
            "",
            &[
                ("CERTGATE_VERIFY_BODY", "false"),
                ("CERTGATE_ADMIN_CERTIFICATE_AUTH", "false"),
            ],
        );
        assert!(!body && !certificate_auth);
        assert!(
            warnings[0].contains("CERTGATE_VERIFY_BODY is now CERTGATE_DANGER_VERIFY_BODY"),
            "{warnings:?}"
        );

        let (_, _, warnings) = danger_switches("danger_verify_body = false\n", &[]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn old_and_new_names_of_a_danger_switch_keep_the_layer_order() {
        let (body, ..) = danger_switches(
            "verify_body = false\n",
            &[("CERTGATE_DANGER_VERIFY_BODY", "true")],
        );
        assert!(
            body,
            "the environment's new name wins over the file's old one"
        );
        let (body, ..) = danger_switches(
            "danger_verify_body = false\n",
            &[("CERTGATE_VERIFY_BODY", "true")],
        );
        assert!(
            body,
            "the environment's old name wins over the file's new one"
        );
        let (body, _, warnings) =
            danger_switches("verify_body = true\ndanger_verify_body = false\n", &[]);
        assert!(!body, "within one layer the new name wins");
        assert!(warnings[0].contains("both danger_verify_body and its old name"));
        let (body, _, warnings) = danger_switches(
            "",
            &[
                ("CERTGATE_VERIFY_BODY", "false"),
                ("CERTGATE_DANGER_VERIFY_BODY", "true"),
            ],
        );
        assert!(body);
        assert!(warnings[0].contains("both CERTGATE_DANGER_VERIFY_BODY"));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_stop_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:4000\"\n").unwrap();
        assert!(Settings::from_sources(Some(&path), &env(&[])).is_err());
        for (key, value) in [
            ("CERTGATE_IDENTITY_HEADERS", "X-Client-Cert,X-Bogus"),
            ("CERTGATE_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CERTGATE_DATABASE_URL", "mysql://x"),
            ("CERTGATE_LISTEN", "nowhere"),
            ("CERTGATE_VERIFY_BODY", "maybe"),
            ("CERTGATE_DANGER_VERIFY_BODY", "maybe"),
            ("CERTGATE_DECISION_CACHE_SECONDS", "11"),
            ("CERTGATE_DECISION_CACHE_SECONDS", "-1"),
            ("CERTGATE_BASE_PATH", "api/relative"),
            ("CERTGATE_BASE_PATH", "/api/%6Dtls"),
            ("CERTGATE_BASE_PATH", "/api//mtls"),
            ("CERTGATE_BASE_PATH", "/api/../mtls"),
        ] {
            assert!(
                Settings::from_sources(None, &env(&[(key, value)])).is_err(),
                "{key}={value} must be refused"
            );
        }
    }

    #[test]
    fn a_certificate_lifetime_overrides_the_days_and_is_bounded() {
        let validity = |vars: &[(&str, &str)]| {
            Settings::from_sources(None, &env(vars)).map(|s| s.issuance.certificate_validity)
        };
        assert_eq!(validity(&[]).unwrap(), Duration::days(365));
        assert_eq!(
            validity(&[
                ("CERTGATE_AGENT_CERTIFICATE_DAYS", "30"),
                ("CERTGATE_AGENT_CERTIFICATE_LIFETIME", "10m"),
            ])
            .unwrap(),
            Duration::minutes(10)
        );
        for wrong in ["30s", "3651d", "soon"] {
            let error = validity(&[("CERTGATE_AGENT_CERTIFICATE_LIFETIME", wrong)]).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { key, .. } if *key == "agent_certificate_lifetime"),
                "{wrong}: {error}"
            );
        }
    }

    #[test]
    fn the_console_path_stays_clear_of_the_api_and_certgates_own_routes() {
        let console = |vars: &[(&str, &str)]| {
            Settings::from_sources(None, &env(vars)).map(|s| s.http.console_path)
        };
        assert_eq!(console(&[]).unwrap().as_deref(), Some("/console"));
        assert_eq!(console(&[("CERTGATE_CONSOLE", "false")]).unwrap(), None);
        assert_eq!(
            console(&[("CERTGATE_CONSOLE_PATH", "/ops/console/")])
                .unwrap()
                .as_deref(),
            Some("/ops/console")
        );
        for wrong in [
            "/",
            "/metrics",
            "/api/ext/cockpit-enterprise/mtls",
            "/api/ext/cockpit-enterprise/mtls/console",
            "/api",
            "/a/../b",
            "console",
        ] {
            let error = console(&[("CERTGATE_CONSOLE_PATH", wrong)]).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { key, .. } if *key == "console_path"),
                "{wrong}: {error}"
            );
        }
    }

    #[test]
    fn a_refused_value_names_its_own_key() {
        for key in [
            "admin_auth_failures_per_minute",
            "verify_secret_failures_per_minute",
            "enroll_requests_per_minute",
            "sync_interval_ms",
            "last_seen_flush_ms",
            "agent_certificate_days",
        ] {
            let variable = format!("CERTGATE_{}", key.to_ascii_uppercase());
            let error = Settings::from_sources(None, &env(&[(&variable, "0")])).unwrap_err();
            assert!(
                matches!(&error, ConfigError::Invalid { key: named, .. } if *named == key),
                "{variable}=0: {error}"
            );
        }
    }

    #[test]
    fn shipped_default_toml_documents_every_key_and_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        for key in keys() {
            assert!(
                text.contains(&format!("{key} =")),
                "{key} is not documented"
            );
        }
        let from_file = Settings::from_sources(Some(&path), &env(&[])).unwrap();
        let defaults = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn postgres_url_is_redacted_in_debug() {
        let settings = Settings::from_sources(
            None,
            &env(&[("CERTGATE_DATABASE_URL", "postgres://u:hunter2@db/certgate")]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
