//! The service the HTTP layer calls for every request. `B/verify` is answered here, straight
//! from the parsed request; every other path goes on to the actix-web `App`.
//!
//! Verify is the one route on every protected request's path, and the `App`'s per-request
//! machinery (request and response wrappers, middleware, routing, extractors) costs about
//! as much as the decision itself; the path is fixed, so none of it is needed to find it.
//! What the `App`'s middleware does for every route, this does for verify too: the 431 on
//! oversized headers and the `X-Request-Id` echo.

use std::rc::Rc;

use actix_http::Request;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::{Error, HttpMessage, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};

use super::verify::{self, VerifyCall};
use super::{REQUEST_ID, headers_too_large, headers_too_large_response, request_id_for};
use crate::startup::AppState;

/// Wraps an `App`'s service factory: verify first, the `App` for the rest.
pub struct VerifyFirst<F> {
    app: F,
    verify_path: Rc<str>,
    state: web::Data<AppState>,
}

impl<F> VerifyFirst<F> {
    pub fn new(app: F, verify_path: &str, state: web::Data<AppState>) -> Self {
        Self {
            app,
            verify_path: verify_path.into(),
            state,
        }
    }
}

impl<F, B> ServiceFactory<Request> for VerifyFirst<F>
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
    type Service = VerifyFirstService<F::Service>;
    type InitError = F::InitError;
    type Future = LocalBoxFuture<'static, Result<Self::Service, Self::InitError>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let verify_path = Rc::clone(&self.verify_path);
        let state = self.state.clone();
        Box::pin(async move {
            Ok(VerifyFirstService {
                app: app.await?,
                verify_path,
                state,
            })
        })
    }
}

pub struct VerifyFirstService<S> {
    app: S,
    verify_path: Rc<str>,
    state: web::Data<AppState>,
}

impl<S, B> Service<Request> for VerifyFirstService<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    /// Verify answered at once is a ready value; anything that waits is boxed.
    type Future = Either<
        Ready<Result<Response<BoxBody>, Error>>,
        LocalBoxFuture<'static, Result<Response<BoxBody>, Error>>,
    >;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        if req.path() != &*self.verify_path {
            let answer = self.app.call(req);
            return Either::Right(Box::pin(async move {
                let response = answer.await?;
                Ok(response.map_into_boxed_body().into())
            }));
        }
        let request_id = request_id_for(req.headers());
        if headers_too_large(req.headers()) {
            let response = headers_too_large_response().into();
            return Either::Left(ready(Ok(with_request_id(response, request_id))));
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
