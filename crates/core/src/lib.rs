//! certgate's pure parts, with no I/O behind them: the domain's types and rules (the verify
//! decision among them), what proxies send decoded (and a per-thread memo of it), and X.509
//! parsing and path validation. The server re-exports each module under its own name
//! (`certgate::domain`, …).

pub mod domain;
pub mod proxy;
pub mod proxy_memo;
pub mod x509;

/// Certificates rcgen cannot make, shared with the server's tests and the API tests.
#[cfg(test)]
#[path = "../../../tests/support/forge.rs"]
mod forge;

/// The proxies' header escapes, shared with the test binaries and the benchmarks.
#[cfg(test)]
#[path = "../../../tests/support/escape.rs"]
mod escape;
