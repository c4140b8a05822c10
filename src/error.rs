//! Errors of the admin API, mapped to HTTP in exactly one place. Internal causes are logged,
//! never sent. (Verify has its own answer shape: see `routes::verify`.)

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;
use crate::x509::CertError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
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

    pub fn code(&self) -> &'static str {
        self.code
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
        match error {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict => Self::conflict("conflict", "already exists"),
            StoreError::Concurrent => Self::conflict(
                "concurrent_update",
                "the resource changed while this request ran; retry",
            ),
            other => Self::internal(&other),
        }
    }
}

impl From<CertError> for ApiError {
    fn from(error: CertError) -> Self {
        let code = match &error {
            CertError::TooLarge => {
                return Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "certificate_too_large",
                    error.to_string(),
                );
            }
            CertError::NotPem | CertError::Malformed(_) => "invalid_certificate",
            CertError::MultipleCertificates(_) => "multiple_certificates",
            CertError::PrivateKey => "private_key_not_accepted",
            CertError::NotACertificate(_) => "not_a_certificate",
        };
        Self::bad_request(code, error.to_string())
    }
}
