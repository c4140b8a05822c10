//! Who is calling, for the audit trail: the actor the admin check established (or none),
//! the request id the front door gave the request, and the client's address.

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::domain::audit::{Actor, Caller};
use crate::state::AppState;

/// The request id of a request the front door passed to the App.
#[derive(Clone)]
pub struct RequestId(pub String);

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(Ok(Caller {
            actor: extensions
                .get::<Actor>()
                .cloned()
                .unwrap_or(Actor::Anonymous),
            request_id: extensions.get::<RequestId>().map(|id| id.0.clone()),
            source_ip: source_ip(req),
        }))
    }
}

/// The TCP peer, or the client a trusted proxy names (`X-Real-IP`, `X-Forwarded-For`).
fn source_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|peer| peer.ip());
    let state = req.app_data::<web::Data<AppState>>();
    match (state, peer) {
        (Some(state), Some(ip)) if state.proxy_gate.trusts_proxy(ip) => {
            state.proxy_gate.client_ip(req.headers(), None, peer)
        }
        _ => peer,
    }
}
