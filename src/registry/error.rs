//! What the registry's operations refuse, one variant per outcome a caller tells apart.
//! `crate::error` turns each into the admin API's answer.

use crate::domain::AgentId;
use crate::store::StoreError;
use crate::x509::{CaRefusal, CertError, CrlError, PathError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error(transparent)]
    CaRefused(CaRefusal),
    #[error(transparent)]
    PathRefused(PathError),
    #[error("this CA certificate is already trusted")]
    CaExists,
    #[error("an internal CA is registered")]
    InternalCaExists,
    #[error(
        "the internal CA certificate was uploaded as an ordinary CA; delete that CA so certgate \
         can register its own"
    )]
    InternalCaTrustedAsExternal,
    #[error("no trusted CA has this ca_id")]
    UnknownCa,
    /// The certificate is on its CA's imported revocation list.
    #[error("this CA's revocation list names this certificate")]
    ListedAsRevoked,
    /// An agent holding this certificate (or another encoding of it) was revoked.
    #[error("this certificate (or another encoding of it) was revoked; issue a new one")]
    CertificateRevoked,
    #[error("this certificate is already enrolled")]
    AlreadyEnrolled,
    #[error(
        "agent {0} holds a certificate with this issuer and serial number (another encoding of \
         this one, or a CA reusing a serial)"
    )]
    SerialInUse(AgentId),
    #[error("a revoked agent cannot be changed")]
    AgentRevoked,
    #[error("certgate keeps the internal CA's revocation list itself (GET B/crl)")]
    InternalCaCrl,
    #[error(transparent)]
    CrlRefused(CrlError),
    #[error("a newer CRL of this CA is already stored")]
    CrlOutdated,
    /// Something that cannot happen unless certgate has a bug; logged, never shown.
    #[error("{0}")]
    Internal(String),
}
