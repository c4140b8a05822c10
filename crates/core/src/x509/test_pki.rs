//! The rcgen PKI the x509 unit tests build on: ECDSA P-256 keys, fixed validity
//! 2024..2034, CAs that may sign certificates, client leaves named `agent-001`.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SignatureAlgorithm, date_time_ymd,
};

/// A certificate and the key that signs what it issues.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Issued {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

pub fn params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "certgate tests");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2034, 1, 1);
    params
}

pub fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

pub fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

pub fn root_with(common_name: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Issued {
    let key = key(&PKCS_ECDSA_P256_SHA256);
    let mut params = ca_params(common_name);
    tweak(&mut params);
    Issued {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

pub fn root(common_name: &str) -> Issued {
    root_with(common_name, |_| {})
}

pub fn signed(params: CertificateParams, key: KeyPair, issuer: &Issued) -> Issued {
    Issued {
        cert: params.signed_by(&key, &issuer.cert, &issuer.key).unwrap(),
        key,
    }
}

pub fn intermediate_with(
    common_name: &str,
    issuer: &Issued,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Issued {
    let mut params = ca_params(common_name);
    tweak(&mut params);
    signed(params, key(&PKCS_ECDSA_P256_SHA256), issuer)
}

pub fn intermediate(common_name: &str, issuer: &Issued) -> Issued {
    intermediate_with(common_name, issuer, |_| {})
}

/// A client certificate for `agent-001` (also its DNS name `agent-001.test`), tweaked.
pub fn leaf_with(issuer: &Issued, tweak: impl FnOnce(&mut CertificateParams)) -> Issued {
    let mut params = params("agent-001");
    params.subject_alt_names = vec![dns("agent-001.test")];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    tweak(&mut params);
    signed(params, key(&PKCS_ECDSA_P256_SHA256), issuer)
}

pub fn leaf(issuer: &Issued) -> Issued {
    leaf_with(issuer, |_| {})
}

pub fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}
