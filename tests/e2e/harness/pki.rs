//! The end-to-end tests' named certificates, made fresh for every test with the shared test
//! PKI (`tests/support/pki.rs`); no key is checked in.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::SanType;

use crate::support::pki::{LeafBuilder, TestCa, TestCert};

/// A certificate with its private key: a TLS client's or server's identity.
pub struct Leaf {
    /// The DNS SAN, used as the agent's hostname.
    pub name: String,
    pub cert: TestCert,
    pub key_pem: String,
}

impl Leaf {
    /// A clientAuth certificate for `name` (CN and DNS SAN), shaped by `shape`.
    fn client(ca: &TestCa, name: &str, shape: impl FnOnce(LeafBuilder) -> LeafBuilder) -> Self {
        let (cert, key_pem) = shape(ca.leaf(name)).issue_with_key();
        Self {
            name: name.to_owned(),
            cert,
            key_pem,
        }
    }

    /// Certificate and key in one PEM, what `reqwest::Identity::from_pem` reads.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert.pem(), self.key_pem)
    }
}

/// Everything a test needs: three unrelated CAs, a server certificate and client leaves.
pub struct Pki {
    /// Trusted by the proxy (fingerprint mode) and uploaded to certgate.
    pub root: TestCa,
    /// Uploaded to certgate while the proxy runs.
    pub runtime: TestCa,
    /// For 127.0.0.1 and localhost, issued by `root`.
    pub server: Leaf,
    pub enrolled: Leaf,
    /// A second enrolled agent, whose identity the forgery tests try to borrow.
    pub victim: Leaf,
    pub to_disable: Leaf,
    pub to_revoke: Leaf,
    /// Enrolled to connect from 127.0.0.1 only.
    pub loopback_only: Leaf,
    /// Enrolled to connect from 192.0.2.7 only (a documentation address).
    pub elsewhere_only: Leaf,
    /// Issued by the trusted root, never enrolled.
    pub unenrolled: Leaf,
    pub expired: Leaf,
    pub from_other_ca: Leaf,
    pub from_runtime_ca: Leaf,
}

impl Pki {
    pub fn generate() -> Self {
        let root = TestCa::new_root("certgate e2e root CA", |_| {});
        let other = TestCa::new_root("certgate e2e unrelated CA", |_| {});
        let runtime = TestCa::new_root("certgate e2e runtime CA", |_| {});
        let client = |ca: &TestCa, name: &str| Leaf::client(ca, name, |leaf| leaf);
        Self {
            server: Leaf::client(&root, "localhost", |leaf| {
                leaf.server_auth_only().tweak(|params| {
                    params
                        .subject_alt_names
                        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                })
            }),
            enrolled: client(&root, "enrolled.e2e.test"),
            victim: client(&root, "victim.e2e.test"),
            to_disable: client(&root, "to-disable.e2e.test"),
            to_revoke: client(&root, "to-revoke.e2e.test"),
            loopback_only: client(&root, "loopback-only.e2e.test"),
            elsewhere_only: client(&root, "elsewhere-only.e2e.test"),
            unenrolled: client(&root, "unenrolled.e2e.test"),
            expired: Leaf::client(&root, "expired.e2e.test", |leaf| leaf.expired()),
            from_other_ca: client(&other, "other-ca.e2e.test"),
            from_runtime_ca: client(&runtime, "runtime-ca.e2e.test"),
            root,
            runtime,
        }
    }
}
