//! The Caddy recipe (`caddy/Caddyfile`), run by the real Caddy.

use std::path::Path;
use std::process::Command;

use crate::harness::process::{Process, binary_or_skip};
use crate::harness::sidecar::Believes;
use crate::harness::{Stack, recipe, substitute};
use crate::scenarios::{self, ChainCheck};
use crate::{exposure, forgery};

const RECIPE: &str = "caddy/Caddyfile";

/// Caddy with the recipe, its example values replaced; its home, data and config
/// directories are the test's, so it never touches the user's.
async fn start(caddy: &Path, stack: &Stack) -> Process {
    let dir = stack.proxy_dir("caddy");
    std::fs::write(dir.join("server.pem"), stack.pki.server.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), &stack.pki.server.key_pem).unwrap();
    let config = dir.join("Caddyfile");
    let text = recipe(RECIPE);
    Process::start("caddy", &dir, &[], |port| {
        let caddyfile = substitute(
            RECIPE,
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
                ("localhost:8443", format!("localhost:{port}")),
                ("/etc/caddy/certgate/", format!("{}/", dir.display())),
            ],
        );
        std::fs::write(&config, caddyfile).unwrap();
        let mut command = Command::new(caddy);
        command
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .env("CERTGATE_VERIFY_SECRET", &stack.certgate.verify_secret)
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"));
        command
    })
    .await
}

macro_rules! caddy_or_skip {
    () => {
        match binary_or_skip("caddy") {
            Some(caddy) => caddy,
            None => return,
        }
    };
}

#[tokio::test]
async fn admits_enrolled_agents_and_refuses_the_rest() {
    let caddy = caddy_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&caddy, &stack).await;
    scenarios::admits_enrolled_agents_and_refuses_the_rest(&stack, proxy.port()).await;
    scenarios::ca_uploaded_at_runtime(&stack, proxy.port(), ChainCheck::Certgate).await;
}

#[tokio::test]
async fn never_passes_a_forged_identity_or_client_address() {
    let caddy = caddy_or_skip!();
    let stack = Stack::start(Believes::Everything).await;
    let proxy = start(&caddy, &stack).await;
    let agents = scenarios::enrol_agents(&stack).await;
    forgery::forged_identity_headers_are_ignored(&stack, proxy.port(), &agents).await;
    forgery::forged_client_address_is_ignored(&stack, proxy.port(), &agents).await;
}

#[tokio::test]
async fn fails_closed_while_certgate_is_down() {
    let caddy = caddy_or_skip!();
    let mut stack = Stack::start(Believes::Default).await;
    let proxy = start(&caddy, &stack).await;
    scenarios::fails_closed_while_certgate_is_down(&mut stack, proxy.port(), 502).await;
}

#[tokio::test]
async fn keeps_verify_and_bearer_tokens_from_the_public_listener() {
    let caddy = caddy_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&caddy, &stack).await;
    let agents = scenarios::enrol_agents(&stack).await;
    exposure::verify_is_not_reachable(&stack, proxy.port(), &agents).await;
    exposure::bearer_tokens_are_useless_from_outside(&stack, proxy.port()).await;
}

#[tokio::test]
async fn does_not_blame_authentication_for_an_application_outage() {
    let caddy = caddy_or_skip!();
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&caddy, &stack).await;
    scenarios::enrol_agents(&stack).await;
    exposure::application_outage_is_not_blamed_on_authentication(&stack, proxy.port()).await;
}
