//! The web console: static files built into the binary (it works on a network with no way
//! out), served with headers that let them run nothing but themselves. It holds no
//! credential: the pages call the admin API with the token the operator types in.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

/// One file of `console/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("overview.js", "text/javascript; charset=utf-8"),
    asset!("agents.js", "text/javascript; charset=utf-8"),
    asset!("cas.js", "text/javascript; charset=utf-8"),
    asset!("enrolment.js", "text/javascript; charset=utf-8"),
    asset!("policy.js", "text/javascript; charset=utf-8"),
    asset!("audit.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const INDEX: &str = include_str!("../../console/index.html");

/// Scripts and styles from these files only (no inline code, no `eval`), calls to this
/// origin only, no framing, no forms posting elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `index.html` with the API's base path, built once at start-up.
pub struct Index(String);

impl Index {
    pub fn new(base_path: &str) -> Self {
        Self(INDEX.replace("{{BASE_PATH}}", &escape_attribute(base_path)))
    }
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn configure(cfg: &mut web::ServiceConfig, console_path: &str) {
    let root = console_path.to_owned();
    cfg.service(web::resource(console_path).route(web::get().to(move || {
        let location = format!("{root}/");
        async move {
            HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, location))
                .finish()
        }
    })))
    .service(web::resource(format!("{console_path}/")).route(web::get().to(index)))
    .service(web::resource(format!("{console_path}/{{file}}")).route(web::get().to(file)));
}

async fn index(index: web::Data<Index>) -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .body(index.0.clone())
}

async fn file(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.name == name.as_str()) {
        Some(asset) => secured(HttpResponse::Ok())
            .content_type(asset.content_type)
            .body(asset.body),
        None => secured(HttpResponse::NotFound())
            .content_type("text/plain; charset=utf-8")
            .body("not found"),
    }
}

/// The headers every console answer carries.
fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        builder.insert_header((name, HeaderValue::from_static(value)));
    }
    builder.insert_header(("cross-origin-opener-policy", "same-origin"));
    builder
}
