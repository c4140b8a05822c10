//! What the API and end-to-end test binaries share: one test PKI and the proxies' header
//! escapes. (`forge.rs`, the certificates rcgen cannot make, is included on its own by the
//! API tests and the library's unit tests.)
//!
//! Each test binary uses a part of it.
#![allow(dead_code)]

pub mod escape;
pub mod pki;
