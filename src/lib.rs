//! certgate: a verification sidecar for mutual TLS behind a reverse proxy.

pub mod admin_cli;
pub mod agent_client;
pub mod audit_log;
pub mod cli;
pub mod config;
pub mod denial_log;
pub mod domain;
pub mod error;
pub mod files;
pub mod front;
pub mod issuance;
pub mod last_seen;
pub mod metrics;
pub mod proxy;
pub mod proxy_memo;
pub mod rate_limit;
pub mod registry;
pub mod reload;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod trust;
pub mod url_path;
pub mod x509;

/// The release and the git revision it was built from, as `certgate --version` prints it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CERTGATE_GIT_REVISION"),
    ")"
);

#[cfg(test)]
mod architecture_tests;

/// Certificates rcgen cannot make, shared with the API tests.
#[cfg(test)]
#[path = "../tests/support/forge.rs"]
mod forge;

/// The proxies' header escapes, shared with the test binaries and the benchmarks.
#[cfg(test)]
#[path = "../tests/support/escape.rs"]
mod escape;
