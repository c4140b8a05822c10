//! The "From zero" walk-through of `nginx/README.md`, which the Caddy and Traefik READMEs
//! follow too. A newcomer copies its step 1 and relies on what it promises: the test CA
//! issues both the proxy's certificate and the client certificate, so
//! `curl --cacert ca.pem` (and `certgate enroll`/`renew --cacert ca.pem`) trust the proxy.
//! The test runs step 1's own commands, as written, and checks that promise with openssl,
//! then through the real nginx with curl.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::process::{Process, binary_or_skip};
use crate::harness::recipe;
use crate::nginx::main_config;

const README: &str = "nginx/README.md";

/// Step 1 of the section's code block: every line before the first `sudo` line, which is
/// where installing the files for nginx begins.
fn pki_commands() -> String {
    let readme = recipe(README);
    let (_, section) = readme
        .split_once("\n## From zero\n")
        .unwrap_or_else(|| panic!("{README} has no \"## From zero\" section"));
    let (_, block) = section
        .split_once("```sh\n")
        .unwrap_or_else(|| panic!("{README}: \"From zero\" has no sh block"));
    let end = block
        .find("\nsudo ")
        .unwrap_or_else(|| panic!("{README}: no `sudo` line ends step 1 of \"From zero\""));
    let commands = &block[..=end];
    assert!(
        commands.contains("openssl") && !commands.contains("```"),
        "{README}: step 1 of \"From zero\" is not the PKI:\n{commands}"
    );
    commands.to_owned()
}

/// Runs `command` with no input and returns its stdout; fails the test if it fails.
fn run(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// nginx serving `ok` over TLS with the README's server certificate.
fn nginx_config(dir: &Path, port: u16) -> String {
    let server = format!(
        "    server {{\n        listen 127.0.0.1:{port} ssl;\n\
         \x20       ssl_certificate \"{dir}/server.pem\";\n\
         \x20       ssl_certificate_key \"{dir}/server.key\";\n\
         \x20       return 200 \"ok\";\n    }}",
        dir = dir.display()
    );
    main_config(dir, &server)
}

#[tokio::test]
async fn the_readme_pki_makes_a_proxy_certificate_that_curl_trusts() {
    let (Some(bash), Some(openssl_bin), Some(curl)) = (
        binary_or_skip("bash"),
        binary_or_skip("openssl"),
        binary_or_skip("curl"),
    ) else {
        return;
    };
    let temp = tempfile::Builder::new()
        .prefix("certgate-e2e-from-zero-")
        .tempdir()
        .unwrap();
    let dir = temp.path();
    run(Command::new(&bash)
        .args(["-euo", "pipefail", "-c", &pki_commands()])
        .current_dir(dir));

    // `args`: the arguments, separated by spaces.
    let openssl = |args: &str| {
        run(Command::new(&openssl_bin)
            .args(args.split_whitespace())
            .current_dir(dir))
    };
    openssl("verify -CAfile ca.pem -purpose sslserver server.pem");
    openssl("verify -CAfile ca.pem -purpose sslclient agent.pem");
    let extensions =
        openssl("x509 -in server.pem -noout -ext basicConstraints,extendedKeyUsage,subjectAltName");
    for expected in ["CA:FALSE", "TLS Web Server Authentication", "DNS:localhost"] {
        assert!(
            extensions.contains(expected),
            "server.pem lacks {expected}:\n{extensions}"
        );
    }

    let Some(nginx) = binary_or_skip("nginx") else {
        return;
    };
    let error_log = dir.join("error.log");
    let config = dir.join("nginx.conf");
    let proxy = Process::start("nginx", dir, std::slice::from_ref(&error_log), |port| {
        std::fs::write(&config, nginx_config(dir, port)).unwrap();
        let mut command = Command::new(&nginx);
        command
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&config);
        command
    })
    .await;
    let port = proxy.port();
    let body = run(Command::new(&curl)
        .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
        .args(["--cacert", "ca.pem", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(format!("https://localhost:{port}/"))
        .current_dir(dir));
    assert_eq!(body, "ok");
}
