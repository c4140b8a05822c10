//! HTTP routes: thin handlers that extract input, call one operation and map the result.

pub mod admin;
mod agent_auth;
pub mod caller;
pub mod console;
pub mod health;
pub mod host_requests;
pub mod issuing;
pub mod openapi;
pub mod proxy_gate;
pub mod verify;

use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Largest admin request body (a 50 KiB certificate in JSON fits with room to spare, so an
/// oversized certificate gets its own `certificate_too_large`).
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// Requests whose headers exceed this in total are refused with 431 before routing.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn configure(cfg: &mut web::ServiceConfig, base_path: &str, console_path: Option<&str>) {
    if let Some(console_path) = console_path {
        cfg.configure(|cfg| console::configure(cfg, console_path));
    }
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(web::PayloadConfig::new(MAX_JSON_BYTES))
        // `B/verify` never reaches the App: `crate::front` answers it before routing.
        .service(
            web::resource(format!("{base_path}/enroll"))
                .route(web::post().to(issuing::enrol))
                .default_service(web::to(admin::method_not_allowed)),
        )
        .service(
            web::resource(format!("{base_path}/renew"))
                .route(web::post().to(issuing::renew))
                .default_service(web::to(admin::method_not_allowed)),
        )
        .service(
            web::resource(format!("{base_path}/crl"))
                .route(web::get().to(issuing::crl))
                .default_service(web::to(admin::method_not_allowed)),
        )
        .service(
            web::resource(format!("{base_path}/enroll/requests"))
                .route(web::post().to(host_requests::submit))
                .route(
                    web::get()
                        .to(host_requests::list)
                        .wrap(from_fn(admin::require_admin)),
                )
                .default_service(web::to(admin::method_not_allowed)),
        )
        .service(
            web::resource(format!("{base_path}/enroll/requests/status/{{token}}"))
                .route(web::get().to(host_requests::status))
                .default_service(web::to(admin::method_not_allowed)),
        )
        .service(
            web::scope("")
                .route("/healthz", web::get().to(health::healthz))
                .route("/readyz", web::get().to(health::readyz))
                .route("/metrics", web::get().to(health::metrics))
                .route("/openapi.json", web::get().to(openapi::document))
                .service(web::scope(base_path).service(admin::scope()))
                .default_service(web::to(not_found)),
        );
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BYTES)
        .content_type_required(true)
        .error_handler(|error, _req| json_error(&error).into())
}

fn json_error(error: &JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            payload_too_large()
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(serde) => body_error(serde),
        _ => ApiError::bad_request("invalid_body", "the request body could not be read"),
    }
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request bodies are limited to {MAX_JSON_BYTES} bytes"),
    )
}

/// A raw body that could not be read (handlers taking `web::Bytes`), in the admin error shape.
pub fn payload_error(error: &actix_web::Error) -> ApiError {
    match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => payload_too_large(),
        _ => ApiError::bad_request("invalid_body", "the request body could not be read"),
    }
}

/// A request body that must be a JSON object. serde's derived structs also accept an array
/// of field values, so `["x"]` would quietly pass for `{"hostname": "x"}`: a wrong type.
pub struct JsonObject<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        T::deserialize(serde_json::Value::Object(object))
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Names the kind of JSON problem, so a client knows what to fix.
pub fn body_error(error: &serde_json::Error) -> ApiError {
    let message = error.to_string();
    let code = if error.is_syntax() || error.is_eof() {
        "invalid_json"
    } else if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "missing_field"
    } else {
        "invalid_field"
    };
    ApiError::bad_request(code, message)
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| {
        let message = match &error {
            QueryPayloadError::Deserialize(e) => e.to_string(),
            _ => "the query string could not be read".to_owned(),
        };
        ApiError::bad_request("invalid_query", message).into()
    })
}
