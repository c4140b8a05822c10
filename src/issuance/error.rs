//! What issuing refuses, one variant per outcome a caller tells apart. `crate::error` turns
//! each into the API's answer.

use crate::domain::AgentId;
use crate::domain::enrolment::TokenRefusal;
use crate::registry;
use crate::store::StoreError;
use crate::x509::{CertError, CsrError, PathError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Certificate(#[from] CertError),
    /// Switched off, or its files could not be opened; the reason says which.
    #[error("certgate's internal CA is not available: {0}")]
    InternalCaUnavailable(String),
    #[error(
        "the database's internal CA is not the one in this replica's data directory; copy \
         internal-ca.crt and internal-ca.key from the replica that created it"
    )]
    InternalCaMismatch,
    #[error("the internal CA issued a certificate that does not validate: {0}")]
    IssuedCertificateInvalid(PathError),
    #[error(transparent)]
    TokenRefused(TokenRefusal),
    #[error(transparent)]
    CsrRefused(CsrError),
    /// The internal CA could not sign over the request's key.
    #[error("{0}")]
    CannotIssue(String),
    #[error(
        "the signing request's key is too weak (RSA under 2048 bits, EC under 256 bits, or DSA)"
    )]
    WeakKey,
    #[error("a revoked agent cannot enrol again; create a new enrolment")]
    TokenForRevokedAgent,
    #[error("this agent's CA was removed; create a new enrolment")]
    TokenForAgentOfRemovedCa,
    /// A token of an agent revoked since it was handed out.
    #[error("the agent was revoked; it cannot enrol again")]
    EnrolmentOfRevokedAgent,
    #[error("the agent was revoked")]
    RenewalOfRevokedAgent,
    #[error("this certificate was already renewed; renew with the agent's current certificate")]
    CertificateSuperseded,
    #[error("active agent {0} already has this hostname; revoke it or deny this request")]
    HostnameTaken(AgentId),
    #[error(
        "active agent {0} uses this IP address too; approve with allow_shared_ip if the \
         hosts share it (NAT, shared egress), or deny this request"
    )]
    IpAddressTaken(AgentId),
    #[error("this request was already approved or denied")]
    RequestDecided,
    #[error("this request expired; the host must ask again")]
    RequestExpired,
    /// Something that cannot happen unless certgate has a bug; logged, never shown.
    #[error("{0}")]
    Internal(String),
}
