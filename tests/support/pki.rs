//! A test PKI generated with rcgen when the test binary starts: no key is checked in.
//!
//! Validity periods are relative to the wall clock, because the server judges certificates
//! against its own clock.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, SignatureAlgorithm,
};
use sha1::Sha1;

use super::escape;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The shared PKI. Certificates are public and tests never change them, so one set serves
/// every test; each test still gets its own database.
pub fn pki() -> &'static TestPki {
    static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);
    &PKI
}

pub struct TestPki {
    /// ECDSA P-256 root: the CA most tests trust.
    pub root: TestCa,
    /// An unrelated root that certgate never trusts unless a test uploads it.
    pub other_root: TestCa,
    /// ECDSA P-384 intermediate signed by `root` (its leaves carry P-384 signatures).
    pub intermediate: TestCa,
    /// RSA 2048 root (RSA PKCS#1 SHA-256 signatures).
    pub rsa_root: TestCa,
    /// Ed25519 root.
    pub ed25519_root: TestCa,
}

impl TestPki {
    fn generate() -> Self {
        let root = TestCa::root("certgate test root CA", KeyPair::generate().unwrap());
        let intermediate = root.intermediate(
            "certgate test intermediate CA",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        );
        Self {
            other_root: TestCa::root("unrelated root CA", KeyPair::generate().unwrap()),
            rsa_root: TestCa::root("certgate test RSA root CA", rsa_key_pair()),
            ed25519_root: TestCa::root(
                "certgate test Ed25519 root CA",
                KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
            ),
            intermediate,
            root,
        }
    }

    /// A valid clientAuth leaf signed by `root`, named `cn` (also its DNS SAN).
    pub fn leaf(&self, cn: &str) -> TestCert {
        self.root.leaf(cn).issue()
    }
}

/// ring cannot generate RSA keys, so the `rsa` crate makes one and rcgen signs with it.
fn rsa_key_pair() -> KeyPair {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    KeyPair::try_from(key.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

/// The wall clock to the second, which certificate validity is relative to.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "certgate tests");
    dn.push(DnType::CommonName, cn);
    dn
}

/// A CA: its certificate (to upload) and its key (to issue leaves).
pub struct TestCa {
    pub cert: TestCert,
    issuer: rcgen::Certificate,
    key: KeyPair,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now() - Duration::days(1);
    params.not_after = now() + Duration::days(365);
    params
}

impl TestCa {
    fn root(cn: &str, key: KeyPair) -> Self {
        Self::root_with(cn, key, |_| {})
    }

    /// A self-signed CA whose parameters `tweak` changes (validity, key usage, EKU,
    /// pathLenConstraint, name constraints, extensions).
    pub fn root_with(cn: &str, key: KeyPair, tweak: impl FnOnce(&mut CertificateParams)) -> Self {
        let mut params = ca_params(cn);
        tweak(&mut params);
        let issuer = params.self_signed(&key).unwrap();
        Self {
            cert: TestCert::from_der(issuer.der().to_vec(), cn),
            issuer,
            key,
        }
    }

    /// A new P-256 root.
    pub fn new_root(cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Self {
        Self::root_with(cn, KeyPair::generate().unwrap(), tweak)
    }

    fn intermediate(&self, cn: &str, key: KeyPair) -> TestCa {
        self.child_with_key(cn, key, |_| {})
    }

    /// An intermediate CA below this one with a new P-256 key, shaped by `tweak`.
    pub fn child(&self, cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> TestCa {
        self.child_with_key(cn, KeyPair::generate().unwrap(), tweak)
    }

    /// An intermediate CA below this one with `key` (the same key under two issuers is a
    /// cross-signed CA).
    pub fn child_with_key(
        &self,
        cn: &str,
        key: KeyPair,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> TestCa {
        let mut params = ca_params(cn);
        params.use_authority_key_identifier_extension = true;
        tweak(&mut params);
        let issuer = params.signed_by(&key, &self.issuer, &self.key).unwrap();
        TestCa {
            cert: TestCert::from_der(issuer.der().to_vec(), cn),
            issuer,
            key,
        }
    }

    /// This CA's key, serialised (to make another certificate over the same key).
    pub fn key_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// A CRL (PEM) signed by this CA, listing `revoked`.
    pub fn crl(&self, revoked: &[&TestCert]) -> String {
        self.crl_issued(revoked, now() - Duration::minutes(1))
    }

    /// A CRL issued at `this_update`.
    pub fn crl_issued(&self, revoked: &[&TestCert], this_update: OffsetDateTime) -> String {
        let revoked_certs = revoked
            .iter()
            .map(|cert| {
                let parsed = x509_parser::parse_x509_certificate(&cert.der).unwrap().1;
                rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(parsed.raw_serial()),
                    revocation_time: now() - Duration::minutes(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                }
            })
            .collect();
        rcgen::CertificateRevocationListParams {
            this_update,
            next_update: now() + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer, &self.key)
        .unwrap()
        .pem()
        .unwrap()
    }

    /// A CA with this one's name and a key of its own: what a forger would make.
    pub fn namesake(&self) -> TestCa {
        TestCa::root(&self.cert.cn, KeyPair::generate().unwrap())
    }

    /// A leaf to be shaped with the builder; by default valid now, clientAuth, P-256.
    pub fn leaf(&self, cn: &str) -> LeafBuilder<'_> {
        LeafBuilder {
            ca: self,
            cn: cn.to_owned(),
            dns_names: vec![cn.to_owned()],
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before: now() - Duration::hours(1),
            not_after: now() + Duration::days(30),
            key_algorithm: &rcgen::PKCS_ECDSA_P256_SHA256,
            serial: None,
            tweak: None,
        }
    }
}

/// A change to a certificate's parameters, applied last.
type Tweak = Box<dyn FnOnce(&mut CertificateParams)>;

pub struct LeafBuilder<'a> {
    ca: &'a TestCa,
    cn: String,
    dns_names: Vec<String>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_algorithm: &'static SignatureAlgorithm,
    serial: Option<Vec<u8>>,
    tweak: Option<Tweak>,
}

impl LeafBuilder<'_> {
    pub fn dns_names(mut self, names: &[&str]) -> Self {
        self.dns_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// A TLS server certificate: EKU serverAuth only.
    pub fn server_auth_only(mut self) -> Self {
        self.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self
    }

    /// No EKU extension at all (allowed for clients).
    pub fn without_eku(mut self) -> Self {
        self.eku = Vec::new();
        self
    }

    pub fn expired(mut self) -> Self {
        self.not_before = now() - Duration::days(30);
        self.not_after = now() - Duration::days(1);
        self
    }

    pub fn not_yet_valid(mut self) -> Self {
        self.not_before = now() + Duration::days(1);
        self.not_after = now() + Duration::days(30);
        self
    }

    /// Valid from an hour ago until `seconds` from now.
    pub fn expiring_in(mut self, seconds: i64) -> Self {
        self.not_after = now() + Duration::seconds(seconds);
        self
    }

    pub fn key(mut self, algorithm: &'static SignatureAlgorithm) -> Self {
        self.key_algorithm = algorithm;
        self
    }

    pub fn serial(mut self, bytes: &[u8]) -> Self {
        self.serial = Some(bytes.to_vec());
        self
    }

    /// Any other change to the parameters, applied last.
    pub fn tweak(mut self, tweak: impl FnOnce(&mut CertificateParams) + 'static) -> Self {
        self.tweak = Some(Box::new(tweak));
        self
    }

    pub fn issue(self) -> TestCert {
        self.issue_with_key().0
    }

    /// The certificate and its private key (PEM), for a TLS client or server.
    pub fn issue_with_key(self) -> (TestCert, String) {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&self.cn);
        params.subject_alt_names = self
            .dns_names
            .iter()
            .map(|n| SanType::DnsName(n.clone().try_into().unwrap()))
            .collect();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = self.eku;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.use_authority_key_identifier_extension = true;
        params.serial_number = self.serial.as_deref().map(SerialNumber::from_slice);
        if let Some(tweak) = self.tweak {
            tweak(&mut params);
        }
        let key = KeyPair::generate_for(self.key_algorithm).unwrap();
        let cert = params
            .signed_by(&key, &self.ca.issuer, &self.ca.key)
            .unwrap();
        (
            TestCert::from_der(cert.der().to_vec(), &self.cn),
            key.serialize_pem(),
        )
    }
}

/// One certificate and every way a proxy may spell it.
#[derive(Clone, Debug)]
pub struct TestCert {
    pub der: Vec<u8>,
    pub cn: String,
}

impl TestCert {
    pub fn from_der(der: Vec<u8>, cn: &str) -> Self {
        Self {
            der,
            cn: cn.to_owned(),
        }
    }

    /// PEM with 64-character lines, LF line ends and a trailing LF (what nginx encodes).
    pub fn pem(&self) -> String {
        let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        pem::encode_config(&pem::Pem::new("CERTIFICATE", self.der.clone()), config)
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    pub fn sha1_hex(&self) -> String {
        hex::encode(Sha1::digest(&self.der))
    }

    /// The canonical spelling: `sha256:` + 64 lowercase hex digits.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", self.sha256_hex())
    }

    /// openssl's `-fingerprint` output: uppercase pairs joined by `:`.
    pub fn openssl_sha256(&self) -> String {
        colon_pairs(&self.sha256_hex().to_uppercase())
    }

    pub fn openssl_sha1(&self) -> String {
        colon_pairs(&self.sha1_hex().to_uppercase())
    }

    /// nginx `$ssl_client_escaped_cert` (= Envoy XFCC `Cert` content).
    pub fn nginx_escaped(&self) -> String {
        escape::nginx_escaped(&self.pem())
    }

    /// PEM whose line breaks a proxy replaced by spaces.
    pub fn pem_with_spaces(&self) -> String {
        self.pem().trim_end().replace('\n', " ")
    }

    /// PEM whose line breaks a proxy removed.
    pub fn pem_one_line(&self) -> String {
        self.pem().replace('\n', "")
    }

    /// Standard base64 of the DER (Caddy, HAProxy, Traefik ≥ 2.9.2).
    pub fn der_base64(&self) -> String {
        STANDARD.encode(&self.der)
    }

    /// Traefik before 2.9.2: base64 DER, query-escaped.
    pub fn traefik_escaped(&self) -> String {
        escape::query_escaped(&self.der_base64())
    }

    /// The same certificate with its outer SEQUENCE's length written with one more octet
    /// than DER allows: the signature still verifies, the fingerprint differs.
    pub fn long_form_twin(&self) -> TestCert {
        let der = &self.der;
        assert_eq!(der[1], 0x82, "a two-octet length");
        let mut twin = vec![0x30, 0x83, 0x00];
        twin.extend_from_slice(&der[2..]);
        TestCert::from_der(twin, &self.cn)
    }

    /// The same certificate with BER's indefinite length on its outer SEQUENCE.
    pub fn indefinite_twin(&self) -> TestCert {
        let der = &self.der;
        assert_eq!(der[1], 0x82, "a two-octet length");
        let mut twin = vec![0x30, 0x80];
        twin.extend_from_slice(&der[4..]);
        twin.extend_from_slice(&[0, 0]);
        TestCert::from_der(twin, &self.cn)
    }

    /// RFC 9440 / RFC 8941 byte sequence.
    pub fn sf_binary(&self) -> String {
        format!(":{}:", self.der_base64())
    }
}

fn colon_pairs(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}
