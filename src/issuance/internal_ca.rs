//! certgate's own issuing CA: an ECDSA P-256 key and a ten-year certificate in the data
//! directory (certificate 0644, key 0400, each written atomically), and the issuance of
//! agent certificates from verified signing requests.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    RevocationReason, RevokedCertParams, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};

use crate::domain::AgentId;
use crate::domain::enrolment::Profile;
use crate::files::write_atomically;

pub const CERTIFICATE_FILE: &str = "internal-ca.crt";
pub const KEY_FILE: &str = "internal-ca.key";
const CA_VALIDITY: Duration = Duration::days(3652);
/// Issued certificates start a little in the past, so an agent whose clock runs slightly
/// behind does not see a certificate from the future: this much, or a tenth of a short
/// lifetime, so that renewing two thirds through a ten-minute certificate stays meaningful.
const BACKDATE: Duration = Duration::minutes(5);
const CA_COMMON_NAME: &str = "certgate internal CA";

#[derive(Debug, thiserror::Error)]
pub enum InternalCaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists without {1}; restore both files from the same backup")]
    HalfPresent(PathBuf, PathBuf),
    #[error("the internal CA files do not hold a usable CA: {0}")]
    Unusable(String),
    #[error("cannot issue a certificate for this key: {0}")]
    Issue(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InternalCaError + '_ {
    move |source| InternalCaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What an issued agent certificate says.
pub struct IssueSpec<'a> {
    pub agent_id: AgentId,
    /// DNS names and IP addresses for the subjectAltName extension.
    pub names: &'a [String],
    pub profile: Profile,
    pub validity: Duration,
}

pub struct InternalCa {
    certificate_pem: String,
    issuer: rcgen::Certificate,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl InternalCa {
    /// Loads the CA from `dir`, creating it there first if neither file exists. Returns
    /// whether it was created.
    pub fn open_or_create(
        dir: &Path,
        now: OffsetDateTime,
    ) -> Result<(Self, bool), InternalCaError> {
        let (cert_path, key_path) = (dir.join(CERTIFICATE_FILE), dir.join(KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ok((Self::load(&cert_path, &key_path)?, false)),
            (false, false) => Ok((Self::create(dir, &cert_path, &key_path, now)?, true)),
            (true, false) => Err(InternalCaError::HalfPresent(cert_path, key_path)),
            (false, true) => Err(InternalCaError::HalfPresent(key_path, cert_path)),
        }
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, InternalCaError> {
        let certificate_pem = fs::read_to_string(cert_path).map_err(io(cert_path))?;
        let key_pem = fs::read_to_string(key_path).map_err(io(key_path))?;
        Self::from_pems(certificate_pem, &key_pem)
    }

    fn from_pems(certificate_pem: String, key_pem: &str) -> Result<Self, InternalCaError> {
        let unusable = |e: rcgen::Error| InternalCaError::Unusable(e.to_string());
        let key = KeyPair::from_pem(key_pem).map_err(unusable)?;
        let params = CertificateParams::from_ca_cert_pem(&certificate_pem).map_err(unusable)?;
        let not_after = params.not_after;
        // rcgen signs with an issuer `Certificate`; re-signing the parsed parameters yields
        // one with the stored certificate's name and key identifier, which is all it uses.
        let issuer = params.self_signed(&key).map_err(unusable)?;
        if issuer.params().is_ca == IsCa::NoCa
            || key.public_key_der() != public_key_of(&certificate_pem)?
        {
            return Err(InternalCaError::Unusable(
                "the key does not belong to the certificate, or the certificate is not a CA".into(),
            ));
        }
        Ok(Self {
            certificate_pem,
            issuer,
            key,
            not_after,
        })
    }

    fn create(
        dir: &Path,
        cert_path: &Path,
        key_path: &Path,
        now: OffsetDateTime,
    ) -> Result<Self, InternalCaError> {
        let failed = |e: rcgen::Error| InternalCaError::Unusable(e.to_string());
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(failed)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, CA_COMMON_NAME);
        name.push(DnType::OrganizationName, "certgate");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let certificate = params.self_signed(&key).map_err(failed)?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        // The key first: a crash in between leaves a lone key, which start-up reports,
        // rather than a certificate whose key is gone.
        write_atomically(key_path, key.serialize_pem().as_bytes(), 0o400).map_err(io(key_path))?;
        write_atomically(cert_path, certificate.pem().as_bytes(), 0o644).map_err(io(cert_path))?;
        Self::from_pems(certificate.pem(), &key.serialize_pem())
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Signs a certificate for `public_key_der` (a SubjectPublicKeyInfo from a verified
    /// signing request): CN = the agent id, the given SANs, the profile's key usages. Its
    /// validity never outlasts the CA's.
    pub fn issue(
        &self,
        public_key_der: &[u8],
        spec: &IssueSpec<'_>,
        now: OffsetDateTime,
    ) -> Result<String, InternalCaError> {
        let failed = |e: rcgen::Error| InternalCaError::Issue(e.to_string());
        let public_key = SubjectPublicKeyInfo::from_der(public_key_der).map_err(failed)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, spec.agent_id.to_string());
        params.distinguished_name = name;
        params.subject_alt_names = spec
            .names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if spec.profile.server_auth() {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = now - BACKDATE.min(spec.validity / 10);
        params.not_after = (now + spec.validity).min(self.not_after);
        let certificate = params
            .signed_by(&public_key, &self.issuer, &self.key)
            .map_err(failed)?;
        Ok(crate::x509::der_to_pem(certificate.der()))
    }
}

/// A certificate on the internal CA's revocation list.
pub struct Revoked {
    /// Uppercase hex, as agents store serials.
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    /// Replaced by a re-enrolment (as opposed to revoked by an administrator).
    pub superseded: bool,
}

/// How long a CRL stays valid: whoever copies it for a proxy refreshes it well before.
const CRL_VALIDITY: Duration = Duration::days(7);

impl InternalCa {
    /// The CA's CRL (PEM) listing `revoked`, issued now.
    pub fn crl(&self, revoked: &[Revoked], now: OffsetDateTime) -> Result<String, InternalCaError> {
        let failed = |e: rcgen::Error| InternalCaError::Issue(e.to_string());
        let revoked_certs = revoked
            .iter()
            .filter_map(|entry| {
                let serial = hex::decode(&entry.serial).ok()?;
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: entry.revoked_at,
                    reason_code: Some(if entry.superseded {
                        RevocationReason::Superseded
                    } else {
                        RevocationReason::CessationOfOperation
                    }),
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + CRL_VALIDITY,
            // Increases with time, as RFC 5280 wants; microseconds keep two lists apart.
            crl_number: SerialNumber::from(
                u64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(0),
            ),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: self.issuer.params().key_identifier_method.clone(),
        };
        let crl = params.signed_by(&self.issuer, &self.key).map_err(failed)?;
        crl.pem().map_err(failed)
    }
}

fn public_key_of(certificate_pem: &str) -> Result<Vec<u8>, InternalCaError> {
    let der = crate::x509::pem_certificates(certificate_pem)
        .ok()
        .and_then(|ders| ders.into_iter().next())
        .ok_or_else(|| InternalCaError::Unusable("no certificate in the file".into()))?;
    crate::x509::public_key_der(&der).map_err(|e| InternalCaError::Unusable(e.to_string()))
}

/// 16 random bytes, the first below 0x80 so the DER integer stays positive and 16 bytes long.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::x509;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn signing_request(key: &KeyPair) -> x509::SigningRequest {
        let csr = CertificateParams::default()
            .serialize_request(key)
            .and_then(|csr| csr.pem())
            .unwrap();
        x509::signing_request(&csr).unwrap()
    }

    #[test]
    fn creates_once_with_private_key_mode_and_loads_the_same_ca_again() {
        let dir = tempfile::tempdir().unwrap();
        let (created, was_created) = InternalCa::open_or_create(dir.path(), now()).unwrap();
        assert!(was_created);
        let mode = |name| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(KEY_FILE), 0o400);
        assert_eq!(mode(CERTIFICATE_FILE), 0o644);
        let (loaded, was_created) = InternalCa::open_or_create(dir.path(), now()).unwrap();
        assert!(!was_created);
        assert_eq!(loaded.certificate_pem(), created.certificate_pem());
        let info = x509::single_pem_certificate(created.certificate_pem()).unwrap();
        assert!(info.is_ca);
        assert!(info.not_after - info.not_before >= Duration::days(3650));
    }

    #[test]
    fn the_crl_is_signed_by_the_ca_and_lists_the_serials() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = InternalCa::open_or_create(dir.path(), now()).unwrap();
        let ca_der = x509::pem_certificates(ca.certificate_pem())
            .unwrap()
            .remove(0);
        let revoked = [
            Revoked {
                serial: "0A1B2C".to_owned(),
                revoked_at: now(),
                superseded: false,
            },
            Revoked {
                serial: "7F00FF".to_owned(),
                revoked_at: now(),
                superseded: true,
            },
        ];
        let pem = ca.crl(&revoked, now()).unwrap();
        let list = x509::revocation_list(pem.as_bytes(), &ca_der).unwrap();
        assert_eq!(list.serials, ["0A1B2C", "7F00FF"]);
        assert!(list.next_update.is_some_and(|next| next > now()));
        let empty = ca.crl(&[], now()).unwrap();
        assert!(
            x509::revocation_list(empty.as_bytes(), &ca_der)
                .unwrap()
                .serials
                .is_empty()
        );
    }

    #[test]
    fn a_lone_file_is_refused_rather_than_replaced() {
        let dir = tempfile::tempdir().unwrap();
        InternalCa::open_or_create(dir.path(), now()).unwrap();
        fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        assert!(matches!(
            InternalCa::open_or_create(dir.path(), now()),
            Err(InternalCaError::HalfPresent(..))
        ));
    }

    #[test]
    fn issued_certificates_chain_to_the_ca_and_carry_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = InternalCa::open_or_create(dir.path(), now()).unwrap();
        let ca_der = x509::pem_certificates(ca.certificate_pem())
            .unwrap()
            .remove(0);
        let agent_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let request = signing_request(&agent_key);
        let agent_id = AgentId::new_random();
        for (profile, server_auth) in [(Profile::Agent, false), (Profile::Server, true)] {
            let names = ["agent-1.example.test".to_owned(), "10.0.0.7".to_owned()];
            let spec = IssueSpec {
                agent_id,
                names: &names,
                profile,
                validity: Duration::days(365),
            };
            let pem = ca.issue(&request.public_key_der, &spec, now()).unwrap();
            let info = x509::single_pem_certificate(&pem).unwrap();
            let anchors =
                x509::Anchors::new([(crate::domain::CaId::new_random(), ca_der.as_slice())]);
            let judgement = x509::validate(&info.der, &[], &anchors, now().unix_timestamp());
            assert!(judgement.outcome.is_ok(), "{:?}", judgement.outcome);
            assert_eq!(
                info.common_name.as_deref(),
                Some(agent_id.to_string().as_str())
            );
            assert_eq!(info.dns_names, ["agent-1.example.test"]);
            assert!(info.allows_client_auth());
            assert!(!info.is_ca);
            assert_eq!(
                x509::public_key_der(&info.der).unwrap(),
                agent_key.public_key_der()
            );
            let parsed = CertificateParams::from_ca_cert_pem(&pem).unwrap();
            assert_eq!(
                parsed
                    .extended_key_usages
                    .contains(&ExtendedKeyUsagePurpose::ServerAuth),
                server_auth,
                "{profile:?}"
            );
        }
    }
}
