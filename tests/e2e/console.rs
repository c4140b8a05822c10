//! The web console in Debian's Chromium, driven by playwright-core
//! (`tests/console/console.mjs`), against certgate holding a scripted fleet: a few hundred
//! pending agents, one agent expiring in five days, one with a hostile hostname, one to
//! revoke, a self-enrolment request and a CA to upload. Skips with a notice when node,
//! chromium or playwright-core (`npm ci --prefix tests/console`) is missing, unless
//! `CERTGATE_E2E=require`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::Stack;
use crate::harness::pki::Leaf;
use crate::harness::process::{binary_or_skip, skip_unless_required};
use crate::harness::sidecar::Believes;
use crate::scenarios::run_certgate;

const HOSTILE: &str = "<script>window.__xss=1</script><svg/onload=window.__xss=2>";
const PENDING: usize = 300;

fn playwright_or_skip() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    if dir.join("node_modules/playwright-core").is_dir() {
        return Some(dir);
    }
    skip_unless_required("playwright-core is not installed (npm ci --prefix tests/console)");
    None
}

#[tokio::test]
async fn an_operator_runs_the_fleet_from_the_console_in_a_real_browser() {
    let (Some(node), Some(chromium), Some(scripts)) = (
        binary_or_skip("node"),
        binary_or_skip("chromium"),
        playwright_or_skip(),
    ) else {
        return;
    };
    let stack = Stack::start(Believes::Default).await;
    let certgate = &stack.certgate;
    let root = certgate
        .add_ca("fleet root", &stack.pki.root.cert.pem())
        .await;
    let leaf = |name: &str, lifetime: Option<i64>| {
        let builder = stack.pki.root.leaf(name);
        let builder = match lifetime {
            Some(seconds) => builder.expiring_in(seconds),
            None => builder,
        };
        Leaf {
            name: name.to_owned(),
            cert: builder.issue(),
            key_pem: String::new(),
        }
    };
    let soon = certgate
        .enrol(
            &leaf("soon.fleet.test", Some(5 * 86_400)),
            &root,
            &["fleet"],
        )
        .await;
    let to_revoke_leaf = leaf("revoke.fleet.test", None);
    let to_revoke = certgate.enrol(&to_revoke_leaf, &root, &["fleet"]).await;
    let hostile = Leaf {
        name: HOSTILE.to_owned(),
        ..leaf("hostile.fleet.test", None)
    };
    certgate.enrol(&hostile, &root, &["fleet"]).await;
    for index in 0..PENDING {
        certgate
            .create_enrolment(&format!("pending-{index:03}.fleet.test"), &["fleet"])
            .await;
    }
    let dir = stack.proxy_dir("console");
    let machine_id = dir.join("machine-id");
    std::fs::write(&machine_id, "00112233445566778899aabbccddeeff\n").unwrap();
    let api = format!(
        "http://127.0.0.1:{}/api/ext/cockpit-enterprise/mtls",
        certgate.port()
    );
    run_certgate(vec![
        "request".into(),
        "--server".into(),
        format!("http://127.0.0.1:{}", certgate.port()),
        "--hostname".into(),
        "asks.fleet.test".into(),
        "--machine-id-file".into(),
        machine_id.display().to_string(),
        "--out".into(),
        dir.join("host").display().to_string(),
        "--timeout".into(),
        "0".into(),
    ])
    .await;
    assert!(
        certgate.pending_request().await.is_some(),
        "the request is waiting"
    );

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let mut child = tokio::process::Command::new(node)
        .arg(scripts.join("console.mjs"))
        .current_dir(&scripts)
        .env("CHROMIUM", chromium)
        .env(
            "CONSOLE_URL",
            format!("http://127.0.0.1:{}/console/", certgate.port()),
        )
        .env("API_URL", &api)
        .env("ADMIN_TOKEN", certgate.admin_token())
        .env("VERIFY_SECRET", &certgate.verify_secret)
        .env("SCREENSHOTS", &screenshots)
        .env("HOSTILE_HOSTNAME", HOSTILE)
        .env("SOON_AGENT_ID", &soon.id)
        .env("REVOKE_AGENT_ID", &to_revoke.id)
        .env("REVOKE_ESCAPED_PEM", to_revoke_leaf.cert.nginx_escaped())
        .env("REQUEST_HOSTNAME", "asks.fleet.test")
        .env("UPLOAD_CA_PEM", stack.pki.runtime.cert.pem())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(180), async {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (String::new(), String::new());
        let (mut stdout, mut stderr) = (stdout, stderr);
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        (child.wait().await.unwrap(), out, err)
    })
    .await;
    let Ok((status, out, err)) = output else {
        panic!("the browser test did not finish within 180 s");
    };
    println!("{out}");
    assert!(
        status.success(),
        "the console failed in the browser:\n{out}\n{err}\n(screenshots in {})",
        screenshots.display()
    );
}
