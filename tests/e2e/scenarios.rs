//! What every recipe must do, written once and run through each proxy.

use crate::harness::Stack;
use crate::harness::client::{Client, Outcome};
use crate::harness::pki::Leaf;
use crate::harness::sidecar::Agent;
use crate::support::pki::TestCert;

/// The agents every scenario starts from, all issued by the test root.
pub struct Agents {
    pub root_ca: String,
    pub enrolled: Agent,
    pub victim: Agent,
    pub to_disable: Agent,
    pub to_revoke: Agent,
}

pub async fn enrol_agents(stack: &Stack) -> Agents {
    let (certgate, pki) = (&stack.certgate, &stack.pki);
    let root = certgate.add_ca("e2e root", &pki.root.cert.pem()).await;
    Agents {
        root_ca: root.clone(),
        enrolled: certgate
            .enrol(&pki.enrolled, &root, &["e2e", "role:enrolled"])
            .await,
        victim: certgate
            .enrol(&pki.victim, &root, &["e2e", "role:admin"])
            .await,
        to_disable: certgate.enrol(&pki.to_disable, &root, &["e2e"]).await,
        to_revoke: certgate.enrol(&pki.to_revoke, &root, &["e2e"]).await,
    }
}

/// Headers meant for certgate, and the identity certgate vouches for: the application
/// must never see a client's copy of any of them.
pub const FOR_CERTGATE: [&str; 8] = [
    "X-Client-Cert",
    "X-Client-Cert-Fingerprint",
    "X-Client-Verify",
    "X-Forwarded-Tls-Client-Cert",
    "X-Forwarded-Client-Cert",
    "Client-Cert",
    "Client-Cert-Chain",
    "X-Verify-Secret",
];
pub const VOUCHED: [&str; 3] = ["X-Agent-Id", "X-Agent-Hostname", "X-Agent-Tags"];

/// `client` reaches the application, which sees `agent`'s identity once, and no header
/// meant for certgate nor any spelling of one with underscores (which WSGI and CGI
/// applications read as the hyphenated name).
pub async fn assert_passes_as(
    client: &Client,
    headers: &[(&str, String)],
    agent: &Agent,
    what: &str,
) {
    let echo = client.get_with(headers).await.passed(what);
    let identity = [
        agent.id.clone(),
        agent.hostname.clone(),
        agent.tags.join(","),
    ];
    for (name, expected) in VOUCHED.iter().zip(&identity) {
        assert_eq!(
            echo.values(name),
            [expected.as_str()],
            "{what}: the application saw {name}"
        );
    }
    for (name, value) in &echo.headers {
        let spelled = name.replace('_', "-");
        let guarded = FOR_CERTGATE
            .iter()
            .chain(&VOUCHED)
            .any(|g| g.eq_ignore_ascii_case(&spelled));
        assert!(
            !guarded || (name == &spelled && VOUCHED.iter().any(|v| v.eq_ignore_ascii_case(name))),
            "{what}: the application saw {name}: {value}"
        );
    }
}

/// `client` is refused and the application never sees the request.
pub async fn assert_refused(
    stack: &Stack,
    client: &Client,
    headers: &[(&str, String)],
    what: &str,
) -> Outcome {
    let before = stack.upstream.hits();
    let outcome = client.get_with(headers).await;
    outcome.refused(what);
    assert_eq!(
        stack.upstream.hits(),
        before,
        "{what}: refused ({}) but the application was called",
        outcome.describe()
    );
    outcome
}

/// Enrolled → in with its identity; no certificate, expired, unknown CA, not enrolled →
/// out; disabling and revoking take effect on the very next request.
pub async fn admits_enrolled_agents_and_refuses_the_rest(stack: &Stack, port: u16) {
    let pki = &stack.pki;
    let agents = enrol_agents(stack).await;
    let client = |leaf: Option<&Leaf>| Client::new(pki, port, leaf);

    assert_passes_as(
        &client(Some(&pki.enrolled)),
        &[],
        &agents.enrolled,
        "enrolled agent",
    )
    .await;
    let refused: [(Option<&Leaf>, &str); 4] = [
        (None, "no client certificate"),
        (Some(&pki.expired), "expired certificate"),
        (Some(&pki.from_other_ca), "certificate from an unrelated CA"),
        (Some(&pki.unenrolled), "trusted CA, never enrolled"),
    ];
    for (leaf, what) in refused {
        assert_refused(stack, &client(leaf), &[], what).await;
    }

    let disabled = client(Some(&pki.to_disable));
    assert_passes_as(
        &disabled,
        &[],
        &agents.to_disable,
        "agent before it is disabled",
    )
    .await;
    stack.certgate.disable(&agents.to_disable).await;
    assert_refused(stack, &disabled, &[], "the request right after disabling").await;

    let revoked = client(Some(&pki.to_revoke));
    assert_passes_as(
        &revoked,
        &[],
        &agents.to_revoke,
        "agent before it is revoked",
    )
    .await;
    stack.certgate.revoke(&agents.to_revoke).await;
    assert_refused(stack, &revoked, &[], "the request right after revoking").await;

    // The others are untouched.
    assert_passes_as(
        &client(Some(&pki.enrolled)),
        &[],
        &agents.enrolled,
        "enrolled agent, at the end",
    )
    .await;
}

/// Who judges the client certificate's issuer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChainCheck {
    /// The proxy (nginx fingerprint mode): a new CA needs the proxy's configuration.
    Proxy,
    /// certgate (full-certificate recipes): a CA added through the API works at once.
    Certgate,
}

/// A CA uploaded while the proxy runs: its agents pass without a proxy reload, unless the
/// proxy itself checks the chain.
pub async fn ca_uploaded_at_runtime(stack: &Stack, port: u16, chain_check: ChainCheck) {
    let pki = &stack.pki;
    let client = Client::new(pki, port, Some(&pki.from_runtime_ca));
    assert_refused(
        stack,
        &client,
        &[],
        "agent of a CA certgate does not know yet",
    )
    .await;

    let ca = stack
        .certgate
        .add_ca("uploaded at runtime", &pki.runtime.cert.pem())
        .await;
    let agent = stack
        .certgate
        .enrol(&pki.from_runtime_ca, &ca, &["runtime"])
        .await;
    // A new client: a refused handshake may have left nothing to reuse anyway.
    let client = Client::new(pki, port, Some(&pki.from_runtime_ca));
    match chain_check {
        ChainCheck::Certgate => {
            assert_passes_as(&client, &[], &agent, "agent of a CA uploaded at runtime").await;
        }
        ChainCheck::Proxy => {
            assert_refused(
                stack,
                &client,
                &[],
                "runtime CA unknown to the proxy until it is reconfigured",
            )
            .await;
        }
    }
}

/// certgate stopped → the proxy refuses with `down_status`; certgate back on the same port
/// and database → the same agent passes again, without touching the proxy.
pub async fn fails_closed_while_certgate_is_down(stack: &mut Stack, port: u16, down_status: u16) {
    let agents = enrol_agents(stack).await;
    let client = Client::new(&stack.pki, port, Some(&stack.pki.enrolled));
    assert_passes_as(
        &client,
        &[],
        &agents.enrolled,
        "enrolled agent, certgate up",
    )
    .await;

    stack.certgate.stop().await;
    let outcome = assert_refused(stack, &client, &[], "certgate stopped").await;
    assert_eq!(
        outcome.status(),
        Some(down_status),
        "status while certgate is down"
    );

    stack.certgate.restart().await;
    assert_passes_as(
        &client,
        &[],
        &agents.enrolled,
        "enrolled agent, certgate back",
    )
    .await;
}

/// Runs the `certgate` binary of this build (an agent-side command) off the async runtime;
/// its output whatever the exit status.
pub async fn run_certgate(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
            .args(&args)
            .env_remove("CERTGATE_SERVER")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Runs the `certgate` binary of this build; its stdout, once it succeeded.
pub async fn certgate_cli(args: Vec<String>) -> String {
    let output = run_certgate(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "certgate failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The files `certgate enroll` / `certgate renew` wrote, as a TLS client identity.
pub fn host_identity(dir: &std::path::Path, hostname: &str) -> Leaf {
    let cert_pem = std::fs::read_to_string(dir.join("agent.crt")).unwrap();
    let der = pem::parse(&cert_pem).unwrap().into_contents();
    Leaf {
        name: hostname.to_owned(),
        cert: TestCert::from_der(der, hostname),
        key_pem: std::fs::read_to_string(dir.join("agent.key")).unwrap(),
    }
}

/// `certgate enroll` through the proxy into `dir`; the files as a TLS identity.
pub async fn enrol_with_cli(
    stack: &Stack,
    port: u16,
    token: String,
    dir: &std::path::Path,
    hostname: &str,
) -> Leaf {
    let server_ca = dir.join("proxy-ca.pem");
    std::fs::write(&server_ca, stack.pki.root.cert.pem()).unwrap();
    certgate_cli(vec![
        "enroll".into(),
        "--server".into(),
        format!("https://127.0.0.1:{port}"),
        "--token".into(),
        token,
        "--out".into(),
        dir.display().to_string(),
        "--cacert".into(),
        server_ca.display().to_string(),
    ])
    .await;
    host_identity(dir, hostname)
}

/// Through the proxy's admin location, an agent with the `admin` profile uses the admin API
/// by certificate; an ordinary agent, a client without a certificate and a bearer token
/// (stripped by the recipe) do not get in.
pub async fn admin_by_certificate_through_the_proxy(stack: &Stack, port: u16) {
    let (admin, token) = stack
        .certgate
        .create_enrolment_as("ops.e2e.test", &["e2e"], "admin")
        .await;
    let admin_leaf = enrol_with_cli(
        stack,
        port,
        token,
        &stack.proxy_dir("admin-host"),
        &admin.hostname,
    )
    .await;
    let (plain, token) = stack
        .certgate
        .create_enrolment("plain.e2e.test", &["e2e"])
        .await;
    let plain_leaf = enrol_with_cli(
        stack,
        port,
        token,
        &stack.proxy_dir("plain-host"),
        &plain.hostname,
    )
    .await;
    let path = "/api/ext/cockpit-enterprise/mtls/agents";
    let (status, body) = Client::new(&stack.pki, port, Some(&admin_leaf))
        .get_path(path, &[])
        .await;
    assert_eq!(status, 200, "admin by certificate: {body}");
    assert!(
        body.contains(&plain.id),
        "the admin sees the agents: {body}"
    );
    let bearer = [(
        "Authorization",
        format!("Bearer {}", stack.certgate.admin_token()),
    )];
    for (what, identity, headers) in [
        ("an ordinary agent", Some(&plain_leaf), &[][..]),
        ("no certificate", None, &[][..]),
        ("no certificate, the real bearer token", None, &bearer[..]),
    ] {
        let (status, body) = Client::new(&stack.pki, port, identity)
            .get_path(path, headers)
            .await;
        assert_eq!(status, 401, "{what}: {body}");
    }
}

/// A host's life with certgate's own CA, all through the proxy: `certgate enroll` with a
/// one-time token (the key is made on the host), requests pass with the agent's identity,
/// `certgate renew` presents the current certificate for a new one (the old one keeps
/// working in its grace window), and after a revocation neither passes.
pub async fn token_enrolment_and_renewal_through_the_cli(stack: &Stack, port: u16) {
    let (agent, token) = stack
        .certgate
        .create_enrolment("issued.e2e.test", &["e2e", "issued"])
        .await;
    let dir = stack.proxy_dir("enrolled-host");
    let server_ca = dir.join("proxy-ca.pem");
    std::fs::write(&server_ca, stack.pki.root.cert.pem()).unwrap();
    let proxy = format!("https://127.0.0.1:{port}");
    let path = |p: &std::path::Path| p.display().to_string();
    let report = certgate_cli(vec![
        "enroll".into(),
        "--server".into(),
        proxy.clone(),
        "--token".into(),
        token,
        "--out".into(),
        path(&dir),
        "--cacert".into(),
        path(&server_ca),
    ])
    .await;
    assert!(
        report.contains(&agent.id),
        "the report names the agent: {report}"
    );
    let first = host_identity(&dir, &agent.hostname);
    let first_client = Client::new(&stack.pki, port, Some(&first));
    assert_passes_as(&first_client, &[], &agent, "agent enrolled with a token").await;

    let renew = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "renew".into(),
            "--server".into(),
            proxy.clone(),
            "--cert".into(),
            path(&dir.join("agent.crt")),
            "--key".into(),
            path(&dir.join("agent.key")),
            "--cacert".into(),
            path(&server_ca),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let not_due = run_certgate(renew(&[])).await;
    assert_eq!(
        not_due.status.code(),
        Some(3),
        "a fresh certificate is not due: {}",
        String::from_utf8_lossy(&not_due.stderr)
    );
    assert_eq!(
        host_identity(&dir, &agent.hostname).cert.der,
        first.cert.der,
        "and stays in place"
    );
    certgate_cli(renew(&["--force"])).await;
    let second = host_identity(&dir, &agent.hostname);
    assert_ne!(
        second.cert.der, first.cert.der,
        "renew wrote a new certificate"
    );
    assert_ne!(second.key_pem, first.key_pem, "and a new key");
    let second_client = Client::new(&stack.pki, port, Some(&second));
    assert_passes_as(&second_client, &[], &agent, "the renewed certificate").await;
    assert_passes_as(
        &first_client,
        &[],
        &agent,
        "the old one, in its grace window",
    )
    .await;

    // A client without a certificate cannot renew someone else's by forging what the
    // proxy would send: the recipe sets (or clears) every identity header itself.
    let csr_body = r#"{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n"}"#;
    let stranger = Client::new(&stack.pki, port, None);
    let forged = [
        ("X-Client-Cert", second.cert.nginx_escaped()),
        ("X-Client-Cert-Fingerprint", second.cert.sha1_hex()),
        ("X-Forwarded-Tls-Client-Cert", second.cert.der_base64()),
        ("Client-Cert", format!(":{}:", second.cert.der_base64())),
        ("X-Verify-Secret", stack.certgate.verify_secret.clone()),
    ];
    let (status, body) = stranger
        .post_to("/api/ext/cockpit-enterprise/mtls/renew", &forged, csr_body)
        .await;
    assert_eq!(status, 401, "forged renewal: {body}");
    assert!(
        body.contains("missing_certificate"),
        "forged renewal: {body}"
    );

    stack.certgate.revoke(&agent).await;
    assert_refused(
        stack,
        &second_client,
        &[],
        "the renewed certificate, revoked",
    )
    .await;
    assert_refused(stack, &first_client, &[], "the old certificate, revoked").await;
}

/// A host without a token asks through the proxy (`certgate request`), an administrator
/// approves, the host collects its certificate and passes.
pub async fn self_enrolment_through_the_cli(stack: &Stack, port: u16) {
    use std::time::Duration;

    let dir = stack.proxy_dir("requesting-host");
    let server_ca = dir.join("proxy-ca.pem");
    std::fs::write(&server_ca, stack.pki.root.cert.pem()).unwrap();
    let machine_id = dir.join("machine-id");
    std::fs::write(&machine_id, "00112233445566778899aabbccddeeff\n").unwrap();
    let out = dir.join("host");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_certgate"))
        .args(["request", "--server", &format!("https://127.0.0.1:{port}")])
        .args([
            "--hostname",
            "requested.e2e.test",
            "--poll-interval",
            "1",
            "--timeout",
            "60",
        ])
        .arg("--machine-id-file")
        .arg(&machine_id)
        .arg("--out")
        .arg(&out)
        .arg("--cacert")
        .arg(&server_ca)
        .env_remove("CERTGATE_SERVER")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut request = None;
    for _ in 0..100 {
        request = stack.certgate.pending_request().await;
        if request.is_some() || child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(request) = request else {
        child.kill().ok();
        let output = child.wait_with_output().unwrap();
        panic!(
            "no request arrived: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    assert_eq!(
        request["ip_address"], "127.0.0.1",
        "the address the host reaches the proxy from"
    );
    let agent = stack
        .certgate
        .approve_request(request["id"].as_str().unwrap(), &["e2e", "requested"])
        .await;
    let mut finished = None;
    for _ in 0..100 {
        finished = child.try_wait().unwrap();
        if finished.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if finished.is_none() {
        child.kill().ok();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        finished.is_some_and(|status| status.success()),
        "certgate request: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let identity = host_identity(&out, &agent.hostname);
    let client = Client::new(&stack.pki, port, Some(&identity));
    assert_passes_as(&client, &[], &agent, "a host enrolled by approval").await;
}

/// Concurrent first requests of one client in the cached scenario.
const BURST: usize = 16;

/// The cached recipes with `CERTGATE_DECISION_CACHE_SECONDS=seconds`: a client's repeated
/// requests skip certgate (and the application still gets the identity from the cached
/// answer), denials are never cached, a burst of first requests all pass and leave one
/// stored answer, and a revoked agent is refused within `seconds` + 1 s and on every request
/// after that.
pub async fn decisions_are_cached_until_revocation_lands(stack: &Stack, port: u16, seconds: u64) {
    let pki = &stack.pki;
    let agents = enrol_agents(stack).await;
    let client = Client::new(pki, port, Some(&pki.enrolled));
    assert_passes_as(&client, &[], &agents.enrolled, "first request").await;
    let asked_before = stack.certgate.verify_decisions().await;
    for round in 0..20 {
        assert_passes_as(
            &client,
            &[],
            &agents.enrolled,
            &format!("cached request {round}"),
        )
        .await;
    }
    let asked = stack.certgate.verify_decisions().await - asked_before;
    assert!(
        asked <= 2,
        "20 requests within {seconds} s asked certgate {asked} times"
    );

    let unenrolled = Client::new(pki, port, Some(&pki.unenrolled));
    let asked_before = stack.certgate.verify_decisions().await;
    for round in 0..3 {
        assert_refused(
            stack,
            &unenrolled,
            &[],
            &format!("unenrolled, round {round}"),
        )
        .await;
    }
    assert_eq!(
        stack.certgate.verify_decisions().await - asked_before,
        3,
        "a denial is never cached"
    );

    // A burst of a client's first requests, before its entry exists: every one passes
    // (none is held waiting for the one that stores the answer) and what follows comes
    // from the cache.
    let to_revoke = Client::new(pki, port, Some(&pki.to_revoke));
    let asked_before = stack.certgate.verify_decisions().await;
    let burst = (0..BURST).map(|_| to_revoke.get_with(&[]));
    for (round, outcome) in futures_util::future::join_all(burst)
        .await
        .into_iter()
        .enumerate()
    {
        outcome.passed(&format!("burst request {round}"));
    }
    let asked = stack.certgate.verify_decisions().await - asked_before;
    assert!(
        (1..=BURST as u64).contains(&asked),
        "a burst of {BURST} asked certgate {asked} times"
    );
    let asked_before = stack.certgate.verify_decisions().await;
    assert_passes_as(&to_revoke, &[], &agents.to_revoke, "after the burst").await;
    assert_eq!(
        stack.certgate.verify_decisions().await - asked_before,
        0,
        "the burst stored its answer"
    );
    stack.certgate.revoke(&agents.to_revoke).await;
    let revoked_at = std::time::Instant::now();
    let deadline = std::time::Duration::from_secs(seconds + 1);
    loop {
        let outcome = to_revoke.get_with(&[]).await;
        if !matches!(outcome, Outcome::Passed(_)) {
            break;
        }
        assert!(
            revoked_at.elapsed() <= deadline,
            "still admitted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for round in 0..10 {
        assert_refused(stack, &to_revoke, &[], &format!("revoked, round {round}")).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
