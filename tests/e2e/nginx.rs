//! The nginx recipes (`nginx/*.conf`), run by the real nginx.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::harness::process::{Process, binary_or_skip};
use crate::harness::sidecar::Believes;
use crate::harness::{Stack, recipe, substitute};
use crate::scenarios::{self, ChainCheck};
use crate::{exposure, forgery};

#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Fingerprint,
    FullCertificate,
    FingerprintCached,
    FullCertificateCached,
}

impl Mode {
    fn recipe(self) -> &'static str {
        match self {
            Mode::Fingerprint => "nginx/certgate-fingerprint.conf",
            Mode::FullCertificate => "nginx/certgate-full-certificate.conf",
            Mode::FingerprintCached => "nginx/certgate-fingerprint-cached.conf",
            Mode::FullCertificateCached => "nginx/certgate-full-certificate-cached.conf",
        }
    }

    fn is_cached(self) -> bool {
        matches!(self, Mode::FingerprintCached | Mode::FullCertificateCached)
    }
}

/// nginx with the recipe for `mode`, its example values replaced, wrapped in a minimal main
/// configuration that keeps everything (pid, logs, temp files) in the test's directory.
pub(crate) async fn start(nginx: &Path, stack: &Stack, mode: Mode) -> Process {
    let dir = stack.proxy_dir("nginx");
    let pki = &stack.pki;
    for (file, contents) in [
        ("server.pem", pki.server.cert.pem()),
        ("server.key", pki.server.key_pem.clone()),
        ("client-ca.pem", pki.root.cert.pem()),
    ] {
        std::fs::write(dir.join(file), contents).unwrap();
    }
    install_snippets(&dir, &stack.certgate.verify_secret);
    let error_log = dir.join("error.log");
    let snippet_path = dir.join("certgate.conf");
    let main_path = dir.join("nginx.conf");
    let include = format!("    include \"{}\";", snippet_path.display());
    std::fs::write(&main_path, main_config(&dir, &include)).unwrap();
    let mut text = recipe(mode.recipe());
    if mode.is_cached() {
        text = substitute(
            mode.recipe(),
            &text,
            &[(
                "/run/nginx-certgate-cache",
                dir.join("decision-cache").display().to_string(),
            )],
        );
    }
    Process::start("nginx", &dir, std::slice::from_ref(&error_log), |port| {
        let snippet = substitute(
            mode.recipe(),
            &text,
            &[
                (
                    "127.0.0.1:3000",
                    format!("127.0.0.1:{}", stack.certgate.port()),
                ),
                (
                    "127.0.0.1:8080",
                    format!("127.0.0.1:{}", stack.upstream.port()),
                ),
                ("127.0.0.1:8443", format!("127.0.0.1:{port}")),
                ("/etc/nginx/certgate/", format!("{}/", dir.display())),
            ],
        );
        std::fs::write(&snippet_path, snippet).unwrap();
        let mut command = Command::new(nginx);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&main_path);
        command
    })
    .await
}

/// The files of `nginx/snippets/` in `dir`, where the recipes include them from, with the
/// test's secret.
fn install_snippets(dir: &Path, secret: &str) {
    let snippets = Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx/snippets");
    for entry in std::fs::read_dir(&snippets).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let relative = format!("nginx/snippets/{name}");
        let text = recipe(&relative);
        let mut replacements = Vec::new();
        if text.contains("/etc/nginx/certgate/") {
            replacements.push(("/etc/nginx/certgate/", format!("{}/", dir.display())));
        }
        if name == "verify-secret.conf" {
            replacements.push(("change-me", secret.to_owned()));
        }
        std::fs::write(dir.join(&name), substitute(&relative, &text, &replacements)).unwrap();
    }
}

/// One foreground process (no master, no workers): it runs as the test's user, so it reads
/// the private temp directory even as root, and killing it leaves nothing behind. `http`
/// goes into the `http` block; everything nginx writes stays in `dir`.
pub(crate) fn main_config(dir: &Path, http: &str) -> String {
    let dir = dir.display();
    let mut config = format!(
        "daemon off;\nmaster_process off;\npid \"{dir}/nginx.pid\";\n\
         error_log \"{dir}/error.log\" info;\nevents {{ worker_connections 256; }}\nhttp {{\n\
         \x20   access_log \"{dir}/access.log\";\n"
    );
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        writeln!(config, "    {temp}_temp_path \"{dir}/{temp}_temp\";").unwrap();
    }
    writeln!(config, "{http}\n}}").unwrap();
    config
}

macro_rules! nginx_or_skip {
    () => {
        match binary_or_skip("nginx") {
            Some(nginx) => nginx,
            None => return,
        }
    };
}

#[tokio::test]
async fn fingerprint_mode_admits_enrolled_agents_and_refuses_the_rest() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::Fingerprint).await;
    scenarios::admits_enrolled_agents_and_refuses_the_rest(&stack, proxy.port()).await;
    scenarios::ca_uploaded_at_runtime(&stack, proxy.port(), ChainCheck::Proxy).await;
}

#[tokio::test]
async fn fingerprint_mode_never_passes_a_forged_identity_or_client_address() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Everything).await;
    let proxy = start(&nginx, &stack, Mode::Fingerprint).await;
    let agents = scenarios::enrol_agents(&stack).await;
    forgery::forged_identity_headers_are_ignored(&stack, proxy.port(), &agents).await;
    forgery::forged_client_address_is_ignored(&stack, proxy.port(), &agents).await;
}

#[tokio::test]
async fn fingerprint_mode_fails_closed_while_certgate_is_down() {
    let nginx = nginx_or_skip!();
    let mut stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::Fingerprint).await;
    scenarios::fails_closed_while_certgate_is_down(&mut stack, proxy.port(), 503).await;
}

#[tokio::test]
async fn full_certificate_mode_admits_enrolled_agents_and_refuses_the_rest() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::admits_enrolled_agents_and_refuses_the_rest(&stack, proxy.port()).await;
    scenarios::ca_uploaded_at_runtime(&stack, proxy.port(), ChainCheck::Certgate).await;
}

#[tokio::test]
async fn full_certificate_mode_never_passes_a_forged_identity_or_client_address() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Everything).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let agents = scenarios::enrol_agents(&stack).await;
    forgery::forged_identity_headers_are_ignored(&stack, proxy.port(), &agents).await;
    forgery::forged_client_address_is_ignored(&stack, proxy.port(), &agents).await;
}

#[tokio::test]
async fn full_certificate_mode_fails_closed_while_certgate_is_down() {
    let nginx = nginx_or_skip!();
    let mut stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::fails_closed_while_certgate_is_down(&mut stack, proxy.port(), 503).await;
}

#[tokio::test]
async fn full_certificate_mode_enrols_and_renews_through_the_proxy_until_revoked() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::token_enrolment_and_renewal_through_the_cli(&stack, proxy.port()).await;
}

#[tokio::test]
async fn full_certificate_mode_lets_a_host_ask_to_be_enrolled() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::self_enrolment_through_the_cli(&stack, proxy.port()).await;
}

#[tokio::test]
async fn full_certificate_mode_admits_admin_agents_to_the_admin_api() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::admin_by_certificate_through_the_proxy(&stack, proxy.port()).await;
}

#[tokio::test]
async fn fingerprint_mode_keeps_verify_and_bearer_tokens_from_the_public_listener() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::Fingerprint).await;
    let agents = scenarios::enrol_agents(&stack).await;
    exposure::verify_is_not_reachable(&stack, proxy.port(), &agents).await;
    exposure::bearer_tokens_are_useless_from_outside(&stack, proxy.port()).await;
}

#[tokio::test]
async fn fingerprint_mode_does_not_blame_authentication_for_an_application_outage() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::Fingerprint).await;
    scenarios::enrol_agents(&stack).await;
    exposure::application_outage_is_not_blamed_on_authentication(&stack, proxy.port()).await;
}

#[tokio::test]
async fn full_certificate_mode_keeps_verify_and_bearer_tokens_from_the_public_listener() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let agents = scenarios::enrol_agents(&stack).await;
    exposure::verify_is_not_reachable(&stack, proxy.port(), &agents).await;
    exposure::bearer_tokens_are_useless_from_outside(&stack, proxy.port()).await;
}

#[tokio::test]
async fn full_certificate_mode_does_not_blame_authentication_for_an_application_outage() {
    let nginx = nginx_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    scenarios::enrol_agents(&stack).await;
    exposure::application_outage_is_not_blamed_on_authentication(&stack, proxy.port()).await;
}

/// What the cached recipes are run with.
const CACHE_SECONDS: &str = "2";

async fn cached_stack() -> Stack {
    Stack::start_with(
        Believes::Default,
        &[("CERTGATE_DECISION_CACHE_SECONDS", CACHE_SECONDS)],
    )
    .await
}

#[tokio::test]
async fn fingerprint_mode_cached_reuses_allows_until_revocation_lands() {
    let nginx = nginx_or_skip!();
    let stack = cached_stack().await;
    let proxy = start(&nginx, &stack, Mode::FingerprintCached).await;
    scenarios::decisions_are_cached_until_revocation_lands(&stack, proxy.port(), 2).await;
}

#[tokio::test]
async fn full_certificate_mode_cached_reuses_allows_until_revocation_lands() {
    let nginx = nginx_or_skip!();
    let stack = cached_stack().await;
    let proxy = start(&nginx, &stack, Mode::FullCertificateCached).await;
    scenarios::decisions_are_cached_until_revocation_lands(&stack, proxy.port(), 2).await;
}

#[tokio::test]
async fn cached_recipes_keep_every_guarantee_of_the_plain_ones() {
    let nginx = nginx_or_skip!();
    for mode in [Mode::FingerprintCached, Mode::FullCertificateCached] {
        let stack = Stack::start_with(
            Believes::Everything,
            &[("CERTGATE_DECISION_CACHE_SECONDS", CACHE_SECONDS)],
        )
        .await;
        let proxy = start(&nginx, &stack, mode).await;
        let agents = scenarios::enrol_agents(&stack).await;
        forgery::forged_identity_headers_are_ignored(&stack, proxy.port(), &agents).await;
        forgery::forged_client_address_is_ignored(&stack, proxy.port(), &agents).await;
        exposure::verify_is_not_reachable(&stack, proxy.port(), &agents).await;
        exposure::bearer_tokens_are_useless_from_outside(&stack, proxy.port()).await;
    }
}
