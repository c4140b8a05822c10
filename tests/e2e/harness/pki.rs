//! The test PKI, generated fresh for every test with rcgen (no key is checked in).

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// A CA: its certificate and the key that signs what it issues.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(common_name: &str) -> Self {
        let mut params = params(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            name: String::new(),
            der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client certificate: clientAuth EKU, the hostname as DNS SAN and CN.
    fn client(&self, hostname: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = params(hostname);
        params.subject_alt_names = vec![SanType::DnsName(hostname.try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        tweak(&mut params);
        Leaf {
            name: hostname.to_owned(),
            ..self.issue(params)
        }
    }
}

/// A leaf certificate with its private key, and every spelling a proxy (or a forger) uses.
pub struct Leaf {
    /// The DNS SAN, used as the agent's hostname.
    pub name: String,
    pub der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// What nginx's `$ssl_client_escaped_cert` keeps: letters, digits and `-`.
const NGINX_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-');

impl Leaf {
    /// SHA-1 of the DER, lowercase hex: nginx's `$ssl_client_fingerprint`.
    pub fn sha1_hex(&self) -> String {
        hex::encode(Sha1::digest(&self.der))
    }

    /// SHA-256 of the DER, lowercase hex: Caddy's and Envoy's fingerprint.
    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    /// The PEM percent-encoded as nginx's `$ssl_client_escaped_cert`.
    pub fn escaped_pem(&self) -> String {
        utf8_percent_encode(&self.cert_pem, NGINX_ESCAPE).to_string()
    }

    /// Standard base64 of the DER: Caddy's `certificate_der_base64`.
    pub fn der_base64(&self) -> String {
        STANDARD.encode(&self.der)
    }

    /// Certificate and key in one PEM, what `reqwest::Identity::from_pem` reads.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// Everything a test needs: three unrelated CAs, a server certificate and client leaves.
pub struct Pki {
    /// Trusted by the proxy (fingerprint mode) and uploaded to certgate.
    pub root: Ca,
    /// Uploaded to certgate while the proxy runs.
    pub runtime: Ca,
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
        let root = Ca::new("certgate e2e root CA");
        let other = Ca::new("certgate e2e unrelated CA");
        let runtime = Ca::new("certgate e2e runtime CA");

        let mut server = params("localhost");
        server.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = root.issue(server);

        let expired = root.client("expired.e2e.test", |params| {
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::days(30);
            params.not_after = now - Duration::days(1);
        });
        Self {
            server,
            enrolled: root.client("enrolled.e2e.test", |_| {}),
            victim: root.client("victim.e2e.test", |_| {}),
            to_disable: root.client("to-disable.e2e.test", |_| {}),
            to_revoke: root.client("to-revoke.e2e.test", |_| {}),
            loopback_only: root.client("loopback-only.e2e.test", |_| {}),
            elsewhere_only: root.client("elsewhere-only.e2e.test", |_| {}),
            unenrolled: root.client("unenrolled.e2e.test", |_| {}),
            expired,
            from_other_ca: other.client("other-ca.e2e.test", |_| {}),
            from_runtime_ca: runtime.client("runtime-ca.e2e.test", |_| {}),
            root,
            runtime,
        }
    }
}

fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate e2e");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365);
    params
}
