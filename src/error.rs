//! Errors of the admin API, mapped to HTTP in exactly one place: the services' errors
//! (`registry::Error`, `issuance::Error`, and the store's and certificates' below them) each
//! become a status, a code and a message here. Internal causes are logged, never sent.
//! (Verify has its own answer shape: see `routes::verify`.)

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::enrolment::TokenRefusal;
use crate::store::StoreError;
use crate::x509::{CaRefusal, CertError, CrlError, CsrError, PathError};
use crate::{issuance, registry};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable and meant for programs, e.g. `unauthorized`, `not_found`, `invalid_query`,
    /// `invalid_field`, `already_enrolled`, `certificate_revoked`, `rate_limited`,
    /// `database_unavailable` (the README lists every one).
    code: &'a str,
    /// For people; may change.
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
    }

    pub fn rate_limited(wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed attempts; retry later",
            )
        }
    }

    /// A feature this replica cannot serve right now (503); the message says what to fix.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 429 for a route where every attempt counts, not only failed ones.
    pub fn too_many_requests(wait: Duration, message: &str) -> Self {
        Self {
            message: message.to_owned(),
            ..Self::rate_limited(wait)
        }
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; see the server log",
        )
    }

    /// The answer with this status and code whose message is the error's own text.
    fn described(status: StatusCode, code: &'static str, error: &dyn std::fmt::Display) -> Self {
        Self::new(status, code, error.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::of_store(&error)
    }
}

impl From<CertError> for ApiError {
    fn from(error: CertError) -> Self {
        Self::of_certificate(&error)
    }
}

impl From<registry::Error> for ApiError {
    fn from(error: registry::Error) -> Self {
        Self::of_registry(&error)
    }
}

impl From<issuance::Error> for ApiError {
    fn from(error: issuance::Error) -> Self {
        Self::of_issuance(&error)
    }
}

/// Each service error's answer. By reference, so an error that wraps another maps it the
/// way it would be mapped alone.
impl ApiError {
    fn of_store(error: &StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict => Self::conflict("conflict", "already exists"),
            StoreError::Concurrent => Self::conflict(
                "concurrent_update",
                "the resource changed while this request ran; retry",
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::unavailable(
                    "database_unavailable",
                    "the database cannot be reached right now; retry shortly",
                )
            }
            StoreError::Full(_) => Self::unwritable(
                error,
                "the database's storage is full; writes work again once space is freed",
            ),
            StoreError::ReadOnly(_) => Self::unwritable(
                error,
                "the database is read-only; writes work again once it is writable",
            ),
            StoreError::Other(_) | StoreError::Corrupt(_) => Self::internal(error),
        }
    }

    /// The store is there but takes no write: the operator has to act, hence an error.
    fn unwritable(error: &StoreError, message: &str) -> Self {
        tracing::error!(%error, "the database cannot be written");
        Self::unavailable("database_unavailable", message)
    }

    fn of_certificate(error: &CertError) -> Self {
        let code = match error {
            CertError::TooLarge => {
                return Self::described(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "certificate_too_large",
                    error,
                );
            }
            CertError::NotPem | CertError::Malformed(_) => "invalid_certificate",
            CertError::MultipleCertificates(_) => "multiple_certificates",
            CertError::PrivateKey => "private_key_not_accepted",
            CertError::NotACertificate(_) => "not_a_certificate",
        };
        Self::described(StatusCode::BAD_REQUEST, code, error)
    }

    fn of_registry(error: &registry::Error) -> Self {
        use registry::Error as E;
        let (status, code) = match error {
            E::Store(cause) => return Self::of_store(cause),
            E::Certificate(cause) => return Self::of_certificate(cause),
            E::Internal(_) => return Self::internal(error),
            E::CaRefused(refusal) => (StatusCode::BAD_REQUEST, ca_refusal_code(*refusal)),
            E::PathRefused(refusal) => (StatusCode::BAD_REQUEST, path_refusal_code(*refusal)),
            E::CrlRefused(refusal) => (StatusCode::BAD_REQUEST, crl_refusal_code(refusal)),
            E::UnknownCa => (StatusCode::BAD_REQUEST, "unknown_ca"),
            E::CaExists => (StatusCode::CONFLICT, "ca_exists"),
            E::InternalCaExists => (StatusCode::CONFLICT, "internal_ca_exists"),
            E::InternalCaTrustedAsExternal => {
                (StatusCode::SERVICE_UNAVAILABLE, "internal_ca_unavailable")
            }
            E::ListedAsRevoked | E::CertificateRevoked => {
                (StatusCode::CONFLICT, "certificate_revoked")
            }
            E::AlreadyEnrolled => (StatusCode::CONFLICT, "already_enrolled"),
            E::SerialInUse(_) => (StatusCode::CONFLICT, "serial_in_use"),
            E::AgentRevoked => (StatusCode::CONFLICT, "agent_revoked"),
            E::InternalCaCrl => (StatusCode::CONFLICT, "internal_ca"),
            E::CrlOutdated => (StatusCode::CONFLICT, "crl_outdated"),
        };
        Self::described(status, code, error)
    }

    fn of_issuance(error: &issuance::Error) -> Self {
        use issuance::Error as E;
        let (status, code) = match error {
            E::Registry(cause) => return Self::of_registry(cause),
            E::Store(cause) => return Self::of_store(cause),
            E::Certificate(cause) => return Self::of_certificate(cause),
            E::Internal(_) => return Self::internal(error),
            E::InternalCaUnavailable(_) | E::IssuedCertificateInvalid(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "internal_ca_unavailable")
            }
            E::InternalCaMismatch => (StatusCode::SERVICE_UNAVAILABLE, "internal_ca_mismatch"),
            E::TokenRefused(TokenRefusal::Unknown) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            E::TokenRefused(TokenRefusal::Used) => (StatusCode::GONE, "token_used"),
            E::TokenRefused(TokenRefusal::Expired) => (StatusCode::GONE, "token_expired"),
            E::CsrRefused(CsrError::BadSignature) => {
                (StatusCode::BAD_REQUEST, "csr_signature_invalid")
            }
            E::CsrRefused(_) | E::CannotIssue(_) => (StatusCode::BAD_REQUEST, "invalid_csr"),
            E::WeakKey => (StatusCode::BAD_REQUEST, "weak_crypto"),
            E::TokenForRevokedAgent | E::EnrolmentOfRevokedAgent => {
                (StatusCode::CONFLICT, "agent_revoked")
            }
            E::RenewalOfRevokedAgent => (StatusCode::FORBIDDEN, "agent_revoked"),
            E::TokenForAgentOfRemovedCa => (StatusCode::CONFLICT, "agent_ca_removed"),
            E::CertificateSuperseded => (StatusCode::CONFLICT, "certificate_superseded"),
            E::HostnameTaken(_) => (StatusCode::CONFLICT, "hostname_conflict"),
            E::IpAddressTaken(_) => (StatusCode::CONFLICT, "ip_address_conflict"),
            E::RequestDecided => (StatusCode::CONFLICT, "request_decided"),
            E::RequestExpired => (StatusCode::GONE, "request_expired"),
        };
        Self::described(status, code, error)
    }
}

fn path_refusal_code(refusal: PathError) -> &'static str {
    match refusal {
        PathError::Malformed(_) => "invalid_certificate",
        PathError::Expired => "certificate_expired",
        PathError::NotYetValid => "certificate_not_yet_valid",
        PathError::IssuerOutsideValidity => "ca_expired",
        PathError::WrongKeyUsage(_) => "wrong_key_usage",
        PathError::WeakCrypto(_) => "weak_crypto",
        PathError::Untrusted(_) => "issuer_mismatch",
    }
}

fn ca_refusal_code(refusal: CaRefusal) -> &'static str {
    match refusal {
        CaRefusal::Malformed(_) => "invalid_certificate",
        CaRefusal::NotACa(_) => "not_a_ca",
        CaRefusal::Expired => "certificate_expired",
        CaRefusal::WeakCrypto(_) => "weak_crypto",
    }
}

fn crl_refusal_code(refusal: &CrlError) -> &'static str {
    match refusal {
        CrlError::Malformed(_) => "invalid_crl",
        CrlError::WrongIssuer => "issuer_mismatch",
        CrlError::BadSignature => "crl_signature_invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgentId;

    fn answer(error: impl Into<ApiError>) -> (u16, &'static str, String) {
        let error = error.into();
        (error.status.as_u16(), error.code, error.message)
    }

    #[test]
    fn a_wrapped_error_answers_as_it_would_alone() {
        let alone = answer(StoreError::NotFound);
        assert_eq!(alone.0, 404);
        assert_eq!(answer(registry::Error::Store(StoreError::NotFound)), alone);
        assert_eq!(
            answer(issuance::Error::Registry(registry::Error::Store(
                StoreError::NotFound
            ))),
            alone
        );
        assert_eq!(
            answer(issuance::Error::Certificate(CertError::TooLarge)).0,
            413
        );
    }

    #[test]
    fn an_unreachable_database_is_a_503_not_a_500() {
        let store_error = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(store_error, StoreError::Unavailable(_)));
        let (status, code, _) = answer(registry::Error::Store(store_error));
        assert_eq!((status, code), (503, "database_unavailable"));
    }

    #[test]
    fn token_refusals_say_which() {
        let refused = |refusal| answer(issuance::Error::TokenRefused(refusal));
        assert_eq!(refused(TokenRefusal::Unknown).0, 401);
        assert_eq!(refused(TokenRefusal::Unknown).1, "invalid_token");
        assert_eq!(refused(TokenRefusal::Used).1, "token_used");
        assert_eq!(refused(TokenRefusal::Expired).1, "token_expired");
        assert_eq!(refused(TokenRefusal::Expired).0, 410);
    }

    #[test]
    fn the_message_is_the_errors_own_text_and_bugs_stay_in_the_log() {
        let agent = AgentId::new_random();
        let (status, code, message) = answer(registry::Error::SerialInUse(agent));
        assert_eq!((status, code), (409, "serial_in_use"));
        assert!(message.contains(&agent.to_string()), "{message}");

        let (status, code, message) = answer(issuance::Error::Internal("secret detail".to_owned()));
        assert_eq!((status, code), (500, "internal_error"));
        assert!(!message.contains("secret detail"), "{message}");
        let (status, _, message) = answer(StoreError::Corrupt("row 7".to_owned()));
        assert_eq!(status, 500);
        assert!(!message.contains("row 7"), "{message}");
    }
}
