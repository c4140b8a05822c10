//! `GET /openapi.json`: the API described from the handlers' own annotations, with the
//! configured base path.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{admin, health, host_requests, issuing};

/// Paths outside the base path `B`.
const ROOT_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "certgate",
        description = "Verification sidecar for mutual TLS. Admin routes take `Authorization: \
            Bearer <token>` (or, through the proxy, an admin-profile client certificate); errors \
            are `{\"error\": {\"code\", \"message\"}}`. `B/verify` is called by the proxy."
    ),
    paths(
        issuing::enrol,
        issuing::renew,
        issuing::crl,
        host_requests::submit,
        host_requests::status,
        host_requests::list,
        host_requests::get,
        host_requests::approve,
        host_requests::deny,
        health::healthz,
        health::readyz,
        health::metrics,
        admin::cas::list,
        admin::cas::get,
        admin::cas::create,
        admin::cas::delete,
        admin::cas::put_crl,
        admin::agents::list,
        admin::agents::get,
        admin::agents::create,
        admin::agents::update,
        admin::agents::revoke,
        admin::agents::toggle,
        admin::enrolments::create,
        admin::enrolments::list,
        admin::enrolments::rotate,
        admin::config::get,
        admin::config::update,
        admin::audit::list,
        verify,
        document,
    ),
    modifiers(&BearerToken),
)]
struct ApiDoc;

/// The document as served: every path under the base path except the root ones.
pub fn document_json(base_path: &str) -> String {
    let mut api = ApiDoc::openapi();
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths
        .into_iter()
        .map(|(path, item)| {
            if ROOT_PATHS.contains(&path.as_str()) {
                (path, item)
            } else {
                (format!("{base_path}{path}"), item)
            }
        })
        .collect();
    api.to_json().unwrap_or_default()
}

/// The served document, made once at start-up (`startup` puts it in every App).
pub struct Document(pub String);

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn document(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// What the proxy calls on every request. certgate answers it before routing, so this
/// function only carries its description. The identity comes in the proxy's headers (one
/// of X-Client-Cert, X-SSL-Client-Cert, Client-Cert, X-Forwarded-Client-Cert,
/// X-Forwarded-Tls-Client-Cert, X-Client-Cert-Fingerprint), or for the seed's JSON form in
/// a POST body `{"fingerprint", "ip"}`. The answer is the status and headers
/// (`X-Agent-Id`, `X-Agent-Hostname`, `X-Agent-Tags`, `X-Certgate-Reason` on a denial,
/// `X-Certgate-Enforced: false` in audit mode, `X-Accel-Expires`); a JSON body only
/// answers a JSON request body.
#[utoipa::path(
    method(get, head, post),
    path = "/verify",
    tag = "verify",
    params(
        ("X-Verify-Secret" = String, Header, description = "The verify secret"),
        ("X-Client-Cert" = Option<String>, Header, description = "The client certificate, URL-escaped PEM (nginx $ssl_client_escaped_cert)"),
        ("X-Real-IP" = Option<String>, Header, description = "The client's address (trusted proxies only)"),
    ),
    responses(
        (status = 200, description = "Allowed (or audit mode)"),
        (status = 401, description = "No certificate, or the proxy is not believed (X-Certgate-Reason says which)"),
        (status = 403, description = "Denied: X-Certgate-Reason names the reason"),
        (status = 429, description = "Too many wrong verify secrets from this peer"),
        (status = 500, description = "certgate could not decide; the proxy must refuse"),
    )
)]
#[allow(dead_code)]
fn verify() {}

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An admin token (CERTGATE_ADMIN_TOKEN)"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `(method, path)` the route files register, read from their source: resources
    /// with their `.route(web::METHOD()…)` calls, and the scope's `.route("/path", …)`.
    fn registered_routes() -> BTreeSet<(String, String)> {
        let sources = [include_str!("mod.rs"), include_str!("admin/mod.rs")];
        let mut routes = BTreeSet::new();
        for source in sources {
            let mut resource: Option<String> = None;
            for line in source.lines().map(str::trim) {
                if let Some(start) = line.find("resource(") {
                    let rest = &line[start..];
                    resource = quoted(rest).map(|path| {
                        path.trim_start_matches("{base_path}")
                            .replace("{{", "{")
                            .replace("}}", "}")
                    });
                }
                if let Some(path) = line
                    .strip_prefix(".route(\"")
                    .and_then(|l| l.split('"').next())
                {
                    let method = method_in(line).unwrap_or_default();
                    routes.insert((method, path.to_owned()));
                    continue;
                }
                if let (Some(path), Some(method)) = (&resource, method_in(line)) {
                    routes.insert((method, path.clone()));
                }
            }
        }
        routes
    }

    fn quoted(text: &str) -> Option<String> {
        let start = text.find('"')? + 1;
        let end = start + text[start..].find('"')?;
        Some(text[start..end].to_owned())
    }

    fn method_in(line: &str) -> Option<String> {
        ["get", "post", "put", "delete", "head"]
            .into_iter()
            .find(|method| line.contains(&format!("web::{method}()")))
            .map(str::to_owned)
    }

    fn documented_routes() -> BTreeSet<(String, String)> {
        let api: serde_json::Value = serde_json::from_str(&document_json("")).unwrap();
        let mut routes = BTreeSet::new();
        for (path, item) in api["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                routes.insert((method.clone(), path.clone()));
            }
        }
        routes
    }

    #[test]
    fn every_registered_route_is_documented() {
        let registered = registered_routes();
        assert!(registered.len() > 25, "the scan found {registered:?}");
        let documented = documented_routes();
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(missing.is_empty(), "not in /openapi.json: {missing:?}");
        for verify_method in ["get", "head", "post"] {
            let verify = (verify_method.to_owned(), "/verify".to_owned());
            assert!(documented.contains(&verify), "{verify:?}");
        }
    }

    #[test]
    fn the_base_path_is_the_configured_one_and_health_stays_at_the_root() {
        let api: serde_json::Value = serde_json::from_str(&document_json("/mtls")).unwrap();
        let paths = api["paths"].as_object().unwrap();
        assert!(paths.contains_key("/mtls/agents/{id}"));
        assert!(paths.contains_key("/mtls/verify"));
        assert!(paths.contains_key("/healthz") && paths.contains_key("/openapi.json"));
        assert!(!paths.contains_key("/agents"));
        assert!(api["components"]["securitySchemes"]["bearer"].is_object());
        assert!(api["components"]["schemas"]["AgentItem"].is_object());
    }
}
