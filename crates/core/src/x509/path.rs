//! RFC 5280 path validation of the certificates certgate judges itself: rustls-webpki builds
//! and checks the path from a leaf through presented intermediates to a stored CA. This
//! module hands it the stored CAs as trust anchors and adds what webpki leaves to its
//! caller: the stored CA's own validity, keyUsage, pathLenConstraint and extended key usage
//! (webpki takes an anchor to be a name and a key), keyUsage on intermediates, weak keys and
//! DER. It also bounds the work a hostile chain can cause, and names outcomes in certgate's
//! terms.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage, RequiredEkuNotFoundContext, VerifiedPath};
use x509_parser::certificate::X509Certificate;

use super::ca::IssuerLimits;
use super::canonical::is_der_certificate;
use super::strength::{weak_key, weak_signature};
use super::{parse_borrowed, partial_info, serial_hex};
use crate::domain::CaId;
use crate::domain::verify::Rejection;

/// Most intermediates between a leaf and a stored CA (rustls-webpki's own limit).
pub const MAX_INTERMEDIATES: usize = 6;

/// Most presented certificates path building looks at, once those that cannot be on a path
/// (not CAs, not DER, no chain of names to a stored CA within reach) are set aside. webpki
/// tries every order of them; with eight, even a mesh of certificates that all name each
/// other is explored in milliseconds.
const MAX_CANDIDATES: usize = 8;

/// The stored CAs as path validation uses them, built once per set of CAs.
#[derive(Default)]
pub struct Anchors {
    /// What webpki takes; parallel to `cas`.
    anchors: Vec<TrustAnchor<'static>>,
    cas: Vec<StoredCa>,
}

struct StoredCa {
    id: CaId,
    /// The subject Name's DER, matched against presented issuers.
    subject: Vec<u8>,
    limits: IssuerLimits,
}

impl Anchors {
    /// The CAs among `cas` (id, DER) that can anchor a path. One that cannot (CA upload
    /// refuses such certificates, so only an old row can be one) is left out.
    pub fn new<'a>(cas: impl IntoIterator<Item = (CaId, &'a [u8])>) -> Self {
        let mut anchors = Self::default();
        for (id, der) in cas {
            let Ok(certificate) = parse_borrowed(der) else {
                continue;
            };
            let Some(limits) = IssuerLimits::of(&certificate) else {
                continue;
            };
            let der = CertificateDer::from(der);
            let Ok(anchor) = webpki::anchor_from_trusted_cert(&der) else {
                continue;
            };
            anchors.anchors.push(anchor.to_owned());
            anchors.cas.push(StoredCa {
                id,
                subject: certificate.subject().as_raw().to_vec(),
                limits,
            });
        }
        anchors
    }

    pub fn len(&self) -> usize {
        self.cas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    fn stored(&self, anchor: &TrustAnchor<'_>) -> Option<&StoredCa> {
        let index = self.anchors.iter().position(|a| std::ptr::eq(a, anchor))?;
        self.cas.get(index)
    }
}

/// A path that holds: the leaf chains to a stored CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPath {
    /// The stored CA at the top of the path.
    pub ca_id: CaId,
    pub ca_not_after: i64,
    /// Serial (uppercase hex) of the certificate that CA signed: the one its CRL would list.
    pub serial_under_ca: String,
}

/// Why no path holds. Each names the first rule broken, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Bytes certgate cannot judge: not X.509 v3 in DER, or a critical extension it does
    /// not know.
    #[error("{0}")]
    Malformed(&'static str),
    #[error("the certificate has expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    /// A CA on the path (presented or stored) has expired or is not valid yet.
    #[error("a CA on the certificate's path has expired or is not valid yet")]
    IssuerOutsideValidity,
    /// The certificate may not be used by a TLS client.
    #[error("{0}")]
    WrongKeyUsage(&'static str),
    #[error("{0}")]
    WeakCrypto(&'static str),
    /// No path to a stored CA satisfies the rules.
    #[error("{0}")]
    Untrusted(&'static str),
}

impl PathError {
    /// The reason verify gives.
    pub fn rejection(self) -> Rejection {
        match self {
            Self::Malformed(_) => Rejection::MalformedCertificate,
            Self::Expired => Rejection::CertificateExpired,
            Self::NotYetValid => Rejection::CertificateNotYetValid,
            Self::IssuerOutsideValidity => Rejection::CaExpired,
            Self::WrongKeyUsage(_) => Rejection::WrongKeyUsage,
            Self::WeakCrypto(_) => Rejection::WeakCrypto,
            Self::Untrusted(_) => Rejection::UntrustedIssuer,
        }
    }
}

/// The outcome of validating at one time, and the stretch of time `[holds_from,
/// holds_until)` (unix seconds) around it in which no certificate involved enters or leaves
/// its validity period, so the outcome stays the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub outcome: Result<ValidPath, PathError>,
    pub holds_from: i64,
    pub holds_until: i64,
}

impl Judgement {
    pub fn holds_at(&self, now: i64) -> bool {
        (self.holds_from..self.holds_until).contains(&now)
    }
}

/// Validates the path from `leaf` (DER) through any of `presented` to one of `anchors`, at
/// `now` (unix seconds), for TLS client authentication.
pub fn validate(leaf: &[u8], presented: &[Vec<u8>], anchors: &Anchors, now: i64) -> Judgement {
    let mut window = Window::around(now);
    for ca in &anchors.cas {
        window.include(&ca.limits);
    }
    let outcome = judge(leaf, presented, anchors, now, &mut window);
    Judgement {
        outcome,
        holds_from: window.from,
        holds_until: window.until,
    }
}

fn judge(
    leaf_der: &[u8],
    presented: &[Vec<u8>],
    anchors: &Anchors,
    now: i64,
    window: &mut Window,
) -> Result<ValidPath, PathError> {
    let leaf = parse_borrowed(leaf_der)
        .map_err(|_| PathError::Malformed("the certificate does not parse as X.509"))?;
    // What certgate reads of a certificate it trusts (an agent's names, EKU) must parse too.
    partial_info(&leaf)
        .map_err(|_| PathError::Malformed("an extension of the certificate does not parse"))?;
    let (not_before, not_after) = (
        leaf.validity().not_before.timestamp(),
        leaf.validity().not_after.timestamp(),
    );
    window.include_period(not_before, not_after);
    if !is_der_certificate(leaf_der) {
        return Err(PathError::Malformed(
            "the certificate is not DER (a non-canonical encoding)",
        ));
    }
    if now < not_before {
        return Err(PathError::NotYetValid);
    }
    if now > not_after {
        return Err(PathError::Expired);
    }
    if weak_signature(&leaf) {
        return Err(PathError::WeakCrypto(
            "the certificate is signed with SHA-1 or MD5",
        ));
    }
    if weak_key(&leaf) {
        return Err(PathError::WeakCrypto(
            "the certificate's key is too weak (RSA under 2048 bits, EC under 256 bits, or DSA)",
        ));
    }
    let leaf_ref = CertificateDer::from(leaf_der);
    let end_entity = EndEntityCert::try_from(&leaf_ref).map_err(leaf_error)?;
    let candidates = candidates(&leaf, presented, anchors);
    for candidate in &candidates {
        window.include(&candidate.limits);
    }
    let intermediates: Vec<CertificateDer<'_>> = candidates
        .iter()
        .map(|candidate| CertificateDer::from(candidate.der))
        .collect();
    let check = |path: &VerifiedPath<'_>| check_path(path, anchors, &candidates, now);
    let verified = end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors.anchors,
        &intermediates,
        unix_time(now),
        KeyUsage::client_auth(),
        None,
        Some(&check),
    );
    match verified {
        Ok(path) => {
            let ca = anchors
                .stored(path.anchor())
                .ok_or(PathError::Untrusted("no path to a trusted CA"))?;
            let serial_under_ca = match path.intermediate_certificates().next_back() {
                Some(top) => serial_hex(top.serial()),
                None => serial_hex(leaf.raw_serial()),
            };
            Ok(ValidPath {
                ca_id: ca.id,
                ca_not_after: ca.limits.not_after,
                serial_under_ca,
            })
        }
        Err(error) => {
            let weakness = candidates.iter().any(|c| c.limits.weak)
                || anchors.cas.iter().any(|ca| ca.limits.weak);
            Err(path_error(error, weakness))
        }
    }
}

/// A presented certificate that may be an intermediate.
struct Candidate<'a> {
    der: &'a [u8],
    subject: &'a [u8],
    issuer: &'a [u8],
    limits: IssuerLimits,
}

/// The presented certificates that can lie on a path: DER CA certificates (each once) on a
/// chain of names from the leaf's issuer to a stored CA's subject of at most
/// [`MAX_INTERMEDIATES`] links; the first [`MAX_CANDIDATES`] of them, in presented order.
fn candidates<'a>(
    leaf: &X509Certificate<'_>,
    presented: &'a [Vec<u8>],
    anchors: &Anchors,
) -> Vec<Candidate<'a>> {
    let mut pool: Vec<Candidate<'a>> = Vec::new();
    for der in presented {
        if pool.iter().any(|c| c.der == der.as_slice()) {
            continue;
        }
        let Ok(certificate) = parse_borrowed(der) else {
            continue;
        };
        let Some(limits) = IssuerLimits::of(&certificate) else {
            continue;
        };
        if limits.is_ca && is_der_certificate(der) {
            pool.push(Candidate {
                der,
                subject: certificate.tbs_certificate.subject.as_raw(),
                issuer: certificate.tbs_certificate.issuer.as_raw(),
                limits,
            });
        }
    }
    // Position counted from the leaf (1: names the leaf's issuer), and from the stored CA
    // (1: a stored CA's subject is its issuer); a path through it has p + q - 1 links.
    let from_leaf = distances(&pool, vec![leaf.issuer().as_raw()], |c| {
        (c.subject, c.issuer)
    });
    let to_stored = distances(
        &pool,
        anchors.cas.iter().map(|ca| ca.subject.as_slice()).collect(),
        |c| (c.issuer, c.subject),
    );
    pool.into_iter()
        .zip(from_leaf.into_iter().zip(to_stored))
        .filter(|(_, (p, q))| p.saturating_add(*q) <= MAX_INTERMEDIATES + 1)
        .map(|(candidate, _)| candidate)
        .take(MAX_CANDIDATES)
        .collect()
}

/// Breadth-first distances over names: a candidate whose `link(c).0` is among the names
/// reached at step d - 1 is at step d, and passes on `link(c).1`. Unreached: `usize::MAX`.
fn distances<'a: 'b, 'b>(
    pool: &[Candidate<'a>],
    start: Vec<&'b [u8]>,
    link: impl Fn(&Candidate<'a>) -> (&'a [u8], &'a [u8]),
) -> Vec<usize> {
    let mut distance = vec![usize::MAX; pool.len()];
    let mut frontier = start;
    for step in 1..=MAX_INTERMEDIATES {
        let mut next = Vec::new();
        for (candidate, found) in pool.iter().zip(distance.iter_mut()) {
            let (matched, passed) = link(candidate);
            if *found == usize::MAX && frontier.contains(&matched) {
                *found = step;
                next.push(passed);
            }
        }
        frontier = next;
    }
    distance
}

/// What webpki leaves to its caller on a path it verified up to a stored CA; an error makes
/// it try the next path.
fn check_path(
    path: &VerifiedPath<'_>,
    anchors: &Anchors,
    candidates: &[Candidate<'_>],
    now: i64,
) -> Result<(), webpki::Error> {
    let ca = anchors
        .stored(path.anchor())
        .ok_or(webpki::Error::UnknownIssuer)?;
    check_stored_ca(&ca.limits, now, path.intermediate_certificates().count())?;
    for intermediate in path.intermediate_certificates() {
        let der = intermediate.der();
        let may_sign = candidates
            .iter()
            .find(|c| c.der == der.as_ref())
            .is_some_and(|c| c.limits.may_sign_certificates);
        if !may_sign {
            return Err(webpki::Error::EndEntityUsedAsCa);
        }
    }
    Ok(())
}

/// The stored CA's own limits, as webpki would check them on an intermediate (and with its
/// errors, so that they rank among webpki's).
fn check_stored_ca(
    limits: &IssuerLimits,
    now: i64,
    intermediates: usize,
) -> Result<(), webpki::Error> {
    let time = unix_time(now);
    if now < limits.not_before {
        return Err(webpki::Error::CertNotValidYet {
            time,
            not_before: unix_time(limits.not_before),
        });
    }
    if now > limits.not_after {
        return Err(webpki::Error::CertExpired {
            time,
            not_after: unix_time(limits.not_after),
        });
    }
    if !limits.is_ca || !limits.may_sign_certificates {
        return Err(webpki::Error::EndEntityUsedAsCa);
    }
    if limits
        .path_len
        .is_some_and(|len| intermediates > usize::try_from(len).unwrap_or(usize::MAX))
    {
        return Err(webpki::Error::PathLenConstraintViolated);
    }
    if !limits.allows_client_auth {
        return Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::client_auth(),
                present: Vec::new(),
            },
        ));
    }
    Ok(())
}

/// A leaf webpki cannot parse (certgate's own checks already passed).
fn leaf_error(error: webpki::Error) -> PathError {
    match error {
        webpki::Error::UnsupportedCriticalExtension => {
            PathError::Malformed("the certificate has a critical extension certgate does not know")
        }
        webpki::Error::UnsupportedCertVersion => {
            PathError::Malformed("the certificate is not X.509 v3")
        }
        _ => PathError::Malformed("the certificate does not parse as X.509"),
    }
}

/// Names webpki's verdict on a parsed, current, strong leaf: any validity error is about a
/// CA above it. `weakness`: a candidate issuer has a weak key or signature, which is why a
/// signature would not verify.
#[allow(deprecated)] // webpki still returns the older variants in some paths
fn path_error(error: webpki::Error, weakness: bool) -> PathError {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => PathError::IssuerOutsideValidity,
        E::CaUsedAsEndEntity => PathError::WrongKeyUsage(
            "the certificate is a CA (basicConstraints CA:TRUE), not a client certificate",
        ),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            PathError::WrongKeyUsage(
                "the extended key usage of the certificate or of a CA above it does not allow \
                 clientAuth",
            )
        }
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
            if weakness =>
        {
            PathError::WeakCrypto("a CA on the path has a key or signature too weak to trust")
        }
        E::InvalidSignatureForPublicKey => {
            PathError::Untrusted("no path to a trusted CA: a signature does not verify")
        }
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => PathError::Untrusted(
            "a signature on the path uses an algorithm certgate does not accept",
        ),
        E::NameConstraintViolation => PathError::Untrusted(
            "a name in the certificate is outside the name constraints of a CA above it",
        ),
        E::PathLenConstraintViolated => {
            PathError::Untrusted("the path is longer than a CA's pathLenConstraint allows")
        }
        E::EndEntityUsedAsCa => PathError::Untrusted(
            "a certificate on the path is not a CA allowed to sign certificates",
        ),
        E::MaximumPathDepthExceeded => {
            PathError::Untrusted("the path has more than 6 intermediate certificates")
        }
        _ => PathError::Untrusted("no path to a trusted CA"),
    }
}

fn unix_time(seconds: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// The stretch around `now` in which no validity period involved starts or ends.
struct Window {
    now: i64,
    from: i64,
    until: i64,
}

impl Window {
    fn around(now: i64) -> Self {
        Self {
            now,
            from: i64::MIN,
            until: i64::MAX,
        }
    }

    fn include(&mut self, limits: &IssuerLimits) {
        self.include_period(limits.not_before, limits.not_after);
    }

    /// A certificate valid over `[not_before, not_after]` changes outcomes at `not_before`
    /// and one second after `not_after`.
    fn include_period(&mut self, not_before: i64, not_after: i64) {
        for edge in [not_before, not_after.saturating_add(1)] {
            if edge <= self.now {
                self.from = self.from.max(edge);
            } else {
                self.until = self.until.min(edge);
            }
        }
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
