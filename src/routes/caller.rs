//! Who is calling, for the audit trail: the actor the admin check established (or none),
//! the request id the front door gave the request, and the client's address.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::domain::agent::canonical_ip;
use crate::domain::audit::{Actor, Caller};
use crate::state::AppState;

/// The request id of a request the front door passed to the App.
#[derive(Clone)]
pub struct RequestId(pub String);

/// The caller of a request, as a handler's argument (actix extracts only this crate's types;
/// `Caller` is the core crate's).
pub struct RequestCaller(pub Caller);

impl Deref for RequestCaller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl FromRequest for RequestCaller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(Ok(RequestCaller(Caller {
            actor: extensions
                .get::<Actor>()
                .cloned()
                .unwrap_or(Actor::Anonymous),
            request_id: extensions.get::<RequestId>().map(|id| id.0.clone()),
            source_ip: source_ip(req),
        })))
    }
}

/// The TCP peer; behind a proxy listed in `CERTGATE_TRUSTED_PROXIES`, the client address it
/// forwards (`X-Real-IP`, `X-Forwarded-For`), so that hosts behind one proxy are told apart
/// (in the audit trail, and by the self-enrolment request limit).
fn source_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|addr| canonical_ip(addr.ip()))?;
    match req.app_data::<web::Data<AppState>>() {
        Some(state) if state.proxy_gate.trusts_proxy(peer) => {
            state.proxy_gate.client_ip(req.headers(), None, Some(peer))
        }
        _ => Some(peer),
    }
}
