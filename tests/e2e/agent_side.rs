//! The agent host's commands through the real nginx (full-certificate recipe): the renewal
//! daemon with its hook, PKCS#12 bundles used by openssl and curl, and the hint each
//! common mistake gets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Stack;
use crate::harness::client::Client;
use crate::harness::process::binary_or_skip;
use crate::harness::sidecar::Believes;
use crate::nginx::{Mode, start};
use crate::scenarios::{
    assert_passes_as, certgate_cli, enrol_with_cli, host_identity, run_certgate,
};

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The certificate's DER, as `certgate renew` left it.
fn certificate_der(dir: &Path) -> Vec<u8> {
    let pem = std::fs::read_to_string(dir.join("agent.crt")).unwrap();
    pem::parse(pem).unwrap().into_contents()
}

/// Waits up to `limit` for `done`, checking every 200 ms.
async fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    done()
}

/// `certgate renew --daemon`, stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit status within 5 s.
    async fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let mut status = None;
        within(Duration::from_secs(5), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        })
        .await;
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent whose certificates live a minute renews each one once it has less than 52 s
/// left (8 s after issue) and not before, runs its hook after each renewal (again, when it
/// failed), keeps going while certgate is down and renews as soon as certgate is back.
#[tokio::test]
async fn the_renewal_daemon_renews_when_due_runs_its_hook_and_survives_certgate_restarting() {
    let Some(nginx) = binary_or_skip("nginx") else {
        return;
    };
    let mut stack = Stack::start_with(
        Believes::Default,
        &[("CERTGATE_AGENT_CERTIFICATE_LIFETIME", "1m")],
    )
    .await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let (agent, token) = stack
        .certgate
        .create_enrolment("daemon.e2e.test", &["e2e"])
        .await;
    let dir = stack.proxy_dir("daemon-host");
    enrol_with_cli(&stack, proxy.port(), token, &dir, &agent.hostname).await;
    let hook_log = dir.join("hook.log");
    let daemon_log = dir.join("daemon.log");
    let first = certificate_der(&dir);
    let first_due = certgate::agent_client::certificate_validity(&dir.join("agent.crt"))
        .unwrap()
        .not_after
        - time::Duration::seconds(52);

    let child = Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args([
            "renew",
            "--daemon",
            "--interval",
            "1s",
            "--expires-in",
            "52s",
        ])
        .args(["--server", &format!("https://127.0.0.1:{}", proxy.port())])
        .args(["--cert", &path(&dir.join("agent.crt"))])
        .args(["--key", &path(&dir.join("agent.key"))])
        .args(["--cacert", &path(&dir.join("proxy-ca.pem"))])
        .arg("--exec")
        .arg(format!(
            "if [ ! -e {flag} ]; then touch {flag}; exit 1; fi; \
             echo \"$CERTGATE_AGENT_ID\" >> {log}",
            flag = path(&dir.join("hook-failed-once")),
            log = path(&hook_log)
        ))
        .env_remove("CERTGATE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&daemon_log).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Daemon {
        child,
        log: daemon_log,
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        certificate_der(&dir),
        first,
        "not due yet: {}",
        daemon.log()
    );
    assert!(!hook_log.exists(), "no hook without a renewal");

    let renewed = within(Duration::from_secs(15), || certificate_der(&dir) != first).await;
    assert!(renewed, "renewed once due: {}", daemon.log());
    assert!(
        time::OffsetDateTime::now_utc() >= first_due,
        "not before it was due"
    );
    let second = certificate_der(&dir);
    assert!(
        within(Duration::from_secs(5), || std::fs::read_to_string(
            &hook_log
        )
        .is_ok_and(|log| log.lines().count() == 1))
        .await,
        "the hook ran once after the renewal, retried after its first failure: {}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("reload hook failed"),
        "{}",
        daemon.log()
    );
    assert_eq!(
        std::fs::read_to_string(&hook_log).unwrap().trim(),
        agent.id,
        "the hook hears which agent"
    );
    let client = Client::new(
        &stack.pki,
        proxy.port(),
        Some(&host_identity(&dir, "daemon")),
    );
    assert_passes_as(&client, &[], &agent, "the renewed certificate").await;

    stack.certgate.stop().await;
    let failed_while_down = within(Duration::from_secs(15), || {
        daemon.log().contains("renewal failed")
    })
    .await;
    assert!(
        failed_while_down,
        "the next renewal fails while certgate is down"
    );
    assert!(
        daemon.is_running(),
        "and the daemon keeps going: {}",
        daemon.log()
    );
    assert_eq!(certificate_der(&dir), second, "the files stay as they were");

    stack.certgate.restart().await;
    let renewed_again = within(Duration::from_secs(15), || certificate_der(&dir) != second).await;
    assert!(
        renewed_again,
        "renewed once certgate is back: {}",
        daemon.log()
    );
    assert!(
        within(Duration::from_secs(5), || std::fs::read_to_string(
            &hook_log
        )
        .is_ok_and(|log| log.lines().count() == 2))
        .await,
        "the hook ran again"
    );
    let pid = rustix::process::Pid::from_child(&daemon.child);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let checked = within(Duration::from_secs(5), || {
        daemon
            .log()
            .contains("SIGHUP: checking the certificate now")
    })
    .await;
    assert!(checked, "SIGHUP wakes the daemon: {}", daemon.log());
    assert!(daemon.is_running(), "and does not stop it");
    let status = daemon.terminate().await;
    assert!(
        status.is_some_and(|status| status.success()),
        "SIGTERM stops the daemon cleanly: {status:?}"
    );
}

/// `--p12` and `certgate p12` write bundles that openssl opens with the passphrase (and
/// not without it) and that curl presents through the proxy.
#[tokio::test]
async fn pkcs12_bundles_open_in_openssl_and_pass_the_proxy_with_curl() {
    let (Some(nginx), Some(openssl), Some(curl)) = (
        binary_or_skip("nginx"),
        binary_or_skip("openssl"),
        binary_or_skip("curl"),
    ) else {
        return;
    };
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let (agent, token) = stack
        .certgate
        .create_enrolment("p12.e2e.test", &["e2e"])
        .await;
    let dir = stack.proxy_dir("p12-host");
    let proxy_ca = dir.join("proxy-ca.pem");
    std::fs::write(&proxy_ca, stack.pki.root.cert.pem()).unwrap();
    let pass = dir.join("p12.pass");
    std::fs::write(&pass, "s3cret passphrase\n").unwrap();
    let bundle = dir.join("agent.p12");
    certgate_cli(vec![
        "enroll".into(),
        "--server".into(),
        format!("https://127.0.0.1:{}", proxy.port()),
        "--token".into(),
        token,
        "--out".into(),
        path(&dir),
        "--cacert".into(),
        path(&proxy_ca),
        "--p12".into(),
        path(&bundle),
        "--p12-pass-file".into(),
        path(&pass),
    ])
    .await;
    let rebundled = dir.join("again.p12");
    certgate_cli(vec![
        "p12".into(),
        "--cert".into(),
        path(&dir.join("agent.crt")),
        "--key".into(),
        path(&dir.join("agent.key")),
        "--ca".into(),
        path(&dir.join("ca.crt")),
        "--out".into(),
        path(&rebundled),
        "--pass-file".into(),
        path(&pass),
    ])
    .await;

    for file in [&bundle, &rebundled] {
        let opened = Command::new(&openssl)
            .args(["pkcs12", "-in", &path(file), "-nodes"])
            .args(["-passin", &format!("file:{}", path(&pass))])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&opened.stdout);
        assert!(
            opened.status.success() && text.contains("PRIVATE KEY") && text.contains(&agent.id),
            "openssl pkcs12 {}: {}",
            file.display(),
            String::from_utf8_lossy(&opened.stderr)
        );
        let wrong = Command::new(&openssl)
            .args([
                "pkcs12",
                "-in",
                &path(file),
                "-nodes",
                "-passin",
                "pass:wrong",
            ])
            .output()
            .unwrap();
        assert!(!wrong.status.success(), "a wrong passphrase opens nothing");

        let fetched = Command::new(&curl)
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .args(["--cacert", &path(&proxy_ca), "--cert-type", "P12"])
            .args(["--cert", &format!("{}:s3cret passphrase", path(file))])
            .arg(format!("https://127.0.0.1:{}/", proxy.port()))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&fetched.stdout);
        assert!(
            fetched.status.success() && body.contains(&agent.id),
            "curl with {}: {body}{}",
            file.display(),
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&bundle).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the bundle holds the key");
}

/// Each mistake a newcomer makes with the agent commands ends with a line saying what to
/// do, and a token never leaves for another host over plain HTTP.
#[tokio::test]
async fn agent_command_mistakes_get_a_hint() {
    let Some(nginx) = binary_or_skip("nginx") else {
        return;
    };
    let stack = Stack::start(Believes::Default).await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let dir = stack.proxy_dir("mistakes");
    let proxy_ca = dir.join("proxy-ca.pem");
    std::fs::write(&proxy_ca, stack.pki.root.cert.pem()).unwrap();
    let (_, token) = stack
        .certgate
        .create_enrolment("mistaken.e2e.test", &["e2e"])
        .await;
    let tls = format!("https://127.0.0.1:{}", proxy.port());
    let enroll = |server: String, extra: &[&str]| {
        let mut args = vec![
            "enroll".into(),
            "--server".into(),
            server,
            "--token".into(),
            token.clone(),
            "--out".into(),
            path(&dir.join("out")),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let cacert = ["--cacert", &path(&proxy_ca)];
    let cases = [
        (
            "no --cacert for the proxy's private CA",
            enroll(tls.clone(), &[]),
            "pass --cacert",
        ),
        (
            "https:// to certgate's plain HTTP port",
            enroll(format!("https://127.0.0.1:{}", stack.certgate.port()), &[]),
            "speaks plain HTTP",
        ),
        (
            "http:// to the proxy's TLS port",
            enroll(format!("http://127.0.0.1:{}", proxy.port()), &cacert),
            "use https://",
        ),
        (
            "no scheme",
            enroll(format!("127.0.0.1:{}", proxy.port()), &cacert),
            "https://127.0.0.1",
        ),
        (
            "a token over plain HTTP to another host",
            enroll("http://certgate.invalid".into(), &[]),
            "--insecure-http",
        ),
        (
            "nothing listening",
            enroll(format!("https://127.0.0.1:{}", unused_port()), &cacert),
            "is the server (or the proxy) running",
        ),
    ];
    for (what, args, hint) in cases {
        let output = run_certgate(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(hint), "{what}: no `{hint}` in\n{stderr}");
    }
    assert!(
        !dir.join("out").join("agent.key").exists(),
        "no file written"
    );

    // Self-enrolment requests are limited to one a minute per address.
    let machine_id = dir.join("machine-id");
    std::fs::write(&machine_id, "00112233445566778899aabbccddeeff\n").unwrap();
    let request = |out: &str| {
        vec![
            "request".into(),
            "--server".into(),
            tls.clone(),
            "--hostname".into(),
            format!("{out}.e2e.test"),
            "--machine-id-file".into(),
            path(&machine_id),
            "--out".into(),
            path(&dir.join(out)),
            "--cacert".into(),
            path(&proxy_ca),
            "--timeout".into(),
            "0".into(),
        ]
    };
    run_certgate(request("first")).await;
    let limited = run_certgate(request("second")).await;
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert!(
        stderr.contains("hint: too many attempts: try again in"),
        "a rate limit says when to retry: {stderr}"
    );
}

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `certgate request` for `hostname` through the proxy, polling every second, with its
/// files in `dir`.
fn spawn_request(port: u16, dir: &Path, proxy_ca: &Path, hostname: &str) -> Child {
    let machine_id = dir.join("machine-id");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&machine_id, "00112233445566778899aabbccddeeff\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["request", "--server", &format!("https://127.0.0.1:{port}")])
        .args([
            "--hostname",
            hostname,
            "--poll-interval",
            "1",
            "--timeout",
            "60",
        ])
        .args(["--machine-id-file", &path(&machine_id)])
        .args(["--out", &path(dir), "--cacert", &path(proxy_ca)])
        .env_remove("CERTGATE_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Two hosts behind one address (here both on 127.0.0.1, as behind a NAT) ask through the
/// proxy; the second approval is refused for the shared address until the administrator
/// accepts it with `certgate admin requests approve --allow-shared-ip`, and then both
/// hosts pass.
#[tokio::test]
async fn hosts_sharing_an_address_are_approved_when_the_administrator_accepts_it() {
    let Some(nginx) = binary_or_skip("nginx") else {
        return;
    };
    let stack = Stack::start_with(
        Believes::Default,
        &[("CERTGATE_ENROLL_REQUESTS_PER_MINUTE", "10")],
    )
    .await;
    let proxy = start(&nginx, &stack, Mode::FullCertificate).await;
    let dir = stack.proxy_dir("shared-address");
    let proxy_ca = dir.join("proxy-ca.pem");
    std::fs::write(&proxy_ca, stack.pki.root.cert.pem()).unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec![
            "admin".to_owned(),
            "--url".to_owned(),
            format!("http://127.0.0.1:{}", stack.certgate.port()),
            "--token".to_owned(),
            stack.certgate.admin_token().to_owned(),
            "requests".to_owned(),
            "approve".to_owned(),
        ];
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        run_certgate(all)
    };

    let mut enrolled = Vec::new();
    for (hostname, shared) in [("first.nat.test", false), ("second.nat.test", true)] {
        let host_dir = dir.join(hostname);
        let mut child = spawn_request(proxy.port(), &host_dir, &proxy_ca, hostname);
        let mut request = None;
        for _ in 0..100 {
            request = stack.certgate.pending_request().await;
            if request.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let id = request.expect("the request arrives")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if shared {
            let refused = admin(&[&id]).await;
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert_eq!(refused.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("ip_address_conflict"), "{stderr}");
        }
        let flags: &[&str] = if shared {
            &["--allow-shared-ip", "-o", "json"]
        } else {
            &["-o", "json"]
        };
        let approved = admin(&[&[id.as_str()], flags].concat()).await;
        assert!(
            approved.status.success(),
            "{}",
            String::from_utf8_lossy(&approved.stderr)
        );
        let answer: serde_json::Value = serde_json::from_slice(&approved.stdout).unwrap();
        let mut finished = None;
        within(Duration::from_secs(10), || {
            finished = child.try_wait().unwrap();
            finished.is_some()
        })
        .await;
        let _ = child.kill();
        assert!(
            finished.is_some_and(|status| status.success()),
            "{hostname} collects its certificate"
        );
        enrolled.push((host_dir, answer["agent_id"].as_str().unwrap().to_owned()));
    }
    for (host_dir, agent_id) in &enrolled {
        let client = Client::new(&stack.pki, proxy.port(), Some(&host_identity(host_dir, "")));
        let echo = client
            .get_with(&[])
            .await
            .passed("a host behind the shared address");
        assert_eq!(echo.values("x-agent-id"), [agent_id.as_str()]);
    }
}
