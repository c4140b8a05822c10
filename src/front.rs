//! The front door: the service the HTTP layer calls for every request. It refuses a header
//! block larger than [`MAX_HEADER_BYTES`] with 431 and gives every response an
//! `X-Request-Id` (the proxy's when sane, else a new UUID). `B/verify` is answered here,
//! straight from the parsed request; every other path goes on to the actix-web `App`, inside
//! a `request` span that carries the request id, so each of its log lines names it.
//!
//! A path spelled with a percent-escape, an empty segment or a dot segment
//! ([`crate::url_path`]) is refused with 400 `invalid_path` before any route, authentication
//! included, sees it; verify too, which proxies call by its plain path, so that no spelling
//! a public location forwards can become a verify call.
//!
//! Verify is the one route on every protected request's path, and the `App`'s per-request
//! machinery (request and response wrappers, middleware, routing, extractors) costs about
//! as much as the decision itself; the path is fixed, so none of it is needed to find it.

use std::rc::Rc;

use actix_http::Request;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::{Error, HttpMessage, HttpResponse, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};

use tracing::Instrument;

use crate::routes::caller::RequestId;
use crate::routes::verify::{self, VerifyCall};
use crate::routes::{MAX_HEADER_BYTES, REQUEST_ID};
use crate::state::AppState;
use crate::url_path;

/// Wraps an `App`'s service factory: verify first, the `App` for the rest.
pub struct Front<F> {
    app: F,
    verify_path: Rc<str>,
    state: web::Data<AppState>,
}

impl<F> Front<F> {
    pub fn new(app: F, verify_path: &str, state: web::Data<AppState>) -> Self {
        Self {
            app,
            verify_path: verify_path.into(),
            state,
        }
    }
}

impl<F, B> ServiceFactory<Request> for Front<F>
where
    F: ServiceFactory<Request, Config = AppConfig, Response = ServiceResponse<B>, Error = Error>,
    F::Service: 'static,
    F::InitError: 'static,
    F::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    type Config = AppConfig;
    type Service = FrontService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let verify_path = Rc::clone(&self.verify_path);
        let state = self.state.clone();
        Box::pin(async move {
            Ok(FrontService {
                app: app.await?,
                verify_path,
                state,
            })
        })
    }
}

pub struct FrontService<S> {
    app: S,
    verify_path: Rc<str>,
    state: web::Data<AppState>,
}

impl<S, B> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    /// An answer given at once (verify, 431) is a ready value; anything that waits is boxed.
    type Future = Either<
        Ready<Result<Response<BoxBody>, Error>>,
        LocalBoxFuture<'static, Result<Response<BoxBody>, Error>>,
    >;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        let request_id = request_id_for(req.headers());
        if headers_too_large(req.headers()) {
            let response = headers_too_large_response().into();
            return Either::Left(ready(Ok(with_request_id(response, request_id))));
        }
        // The verify path is plain (the base path is checked at start-up): only other
        // paths need the spelling check.
        let is_verify = req.path() == &*self.verify_path;
        if !is_verify && url_path::is_unusual(req.path()) {
            let response = invalid_path_response().into();
            return Either::Left(ready(Ok(with_request_id(response, request_id))));
        }
        if !is_verify {
            // Not the path: polling tokens travel in it.
            let span = tracing::info_span!(
                "request",
                request_id = request_id.to_str().unwrap_or_default(),
                method = %req.method(),
            );
            req.extensions_mut().insert(RequestId(
                request_id.to_str().unwrap_or_default().to_owned(),
            ));
            let answer = span.in_scope(|| self.app.call(req));
            return Either::Right(Box::pin(
                async move {
                    let response = answer.await?.map_into_boxed_body().into();
                    Ok(with_request_id(response, request_id))
                }
                .instrument(span),
            ));
        }
        let call = VerifyCall {
            headers: req.headers(),
            peer: req.peer_addr(),
            request_id: request_id.to_str().unwrap_or_default(),
        };
        let deferred = match verify::verify(&call, &self.state) {
            Ok(response) => return Either::Left(ready(Ok(with_request_id(response, request_id)))),
            Err(deferred) => deferred,
        };
        let state = self.state.clone();
        Either::Right(Box::pin(async move {
            let mut req = req;
            let payload = req.take_payload();
            let call = VerifyCall {
                headers: req.headers(),
                peer: req.peer_addr(),
                request_id: request_id.to_str().unwrap_or_default(),
            };
            let response = deferred.finish(&call, payload, &state).await;
            Ok(with_request_id(response, request_id))
        }))
    }
}

fn with_request_id(mut response: Response<BoxBody>, request_id: HeaderValue) -> Response<BoxBody> {
    response
        .headers_mut()
        .insert(REQUEST_ID.clone(), request_id);
    response
}

/// The proxy's `X-Request-Id` when sane, else a new UUID.
fn request_id_for(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&REQUEST_ID) {
        Some(incoming) if is_sane_request_id(incoming) => incoming.clone(),
        _ => new_request_id(),
    }
}

fn headers_too_large(headers: &HeaderMap) -> bool {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    header_bytes > MAX_HEADER_BYTES
}

fn headers_too_large_response() -> HttpResponse {
    HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).json(serde_json::json!({
        "error": {
            "code": "headers_too_large",
            "message": format!("request headers are limited to {MAX_HEADER_BYTES} bytes"),
        }
    }))
}

fn invalid_path_response() -> HttpResponse {
    HttpResponse::build(StatusCode::BAD_REQUEST).json(serde_json::json!({
        "error": {
            "code": "invalid_path",
            "message": "paths with percent-escapes, empty segments or dot segments are refused",
        }
    }))
}

fn is_sane_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(u8::is_ascii_graphic)
}

fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
