//! certgate: a verification sidecar for mutual TLS behind a reverse proxy.

// The pure parts live in crates/core; they keep their paths here.
pub use certgate_core::{domain, proxy, proxy_memo, x509};

pub mod admin_cli;
pub mod agent_client;
pub mod audit_log;
pub mod cli;
pub mod config;
pub mod denial_log;
pub mod error;
pub mod files;
pub mod front;
pub mod issuance;
pub mod last_seen;
pub mod metrics;
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

/// The release and the git revision it was built from, as `certgate --version` prints it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CERTGATE_GIT_REVISION"),
    ")"
);

#[cfg(test)]
mod architecture_tests;

/// The rcgen PKI of the x509 unit tests, for the unit tests here that need certificates
/// (they use only part of it).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../crates/core/src/x509/test_pki.rs"]
mod test_pki;

/// Certificates rcgen cannot make, shared with the API tests.
#[cfg(test)]
#[path = "../tests/support/forge.rs"]
mod forge;

/// The proxies' header escapes, shared with the test binaries and the benchmarks.
#[cfg(test)]
#[path = "../tests/support/escape.rs"]
mod escape;
