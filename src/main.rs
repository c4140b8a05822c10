use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

use certgate::agent_client::{
    self, EnrolOptions, Hook, P12Output, RenewAt, RenewOptions, Renewal, RequestOptions,
};
use certgate::cli::{
    CaCommand, Cli, Command, EnrollArgs, P12Args, P12OutputArgs, RenewArgs, RequestArgs,
    fingerprint_report,
};
use certgate::config::{LogFormat, Settings};
use certgate::startup::Application;
use certgate::{store, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_file = cli.config.clone();
    match cli.command {
        Command::Fingerprint { path } => fingerprint(&path),
        Command::Serve => with_settings(cli.config.as_deref(), |settings| async move {
            Application::build(settings)
                .await?
                .reload_secrets_on_hangup(Box::new(move || Settings::load(config_file.as_deref())))?
                .run_until_stopped()
                .await
        }),
        Command::Ca {
            command: CaCommand::Init,
        } => with_settings(cli.config.as_deref(), |settings| async move {
            let ca = certgate::startup::init_internal_ca(&settings).await?;
            print!(
                "internal CA  {}\nid           {}\nsubject      {}\nsha256       {}\n\
                 valid until  {}\n",
                settings
                    .store
                    .data_dir
                    .join(certgate::issuance::internal_ca::CERTIFICATE_FILE)
                    .display(),
                ca.id,
                ca.subject,
                ca.fingerprint,
                ca.not_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            Ok(())
        }),
        Command::Enroll(args) => enroll(args),
        Command::Renew(args) => renew(args),
        Command::Request(args) => request(args),
        Command::P12(args) => p12(&args),
        Command::Admin(args) => match on_small_runtime(certgate::admin_cli::execute(args)) {
            Ok(Ok(printed)) => {
                print!("{printed}");
                ExitCode::SUCCESS
            }
            Ok(Err(failure)) => {
                eprintln!("certgate: {failure}");
                failure.exit_code()
            }
            Err(code) => code,
        },
        Command::Healthcheck { url } => healthcheck(url, cli.config.as_deref()),
        Command::Manpages { dir } => {
            use clap::CommandFactory;
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir));
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(
                        "certgate: writing manual pages to {}: {error}",
                        dir.display()
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "certgate",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Backup { path } => with_settings(cli.config.as_deref(), |settings| async move {
            let schema = store::backup(&settings.store.database, &path).await?;
            println!("backup written to {}", path.display());
            if !schema.pending.is_empty() {
                eprintln!(
                    "note: the database has not applied {} of this certgate (it applies \
                     them when it starts); the backup holds the schema as it was",
                    migrations(&schema.pending)
                );
            }
            if !schema.unknown.is_empty() {
                eprintln!(
                    "note: the database has applied {} that this certgate does not know; \
                     restore the backup with the version that applied them",
                    migrations(&schema.unknown)
                );
            }
            Ok(())
        }),
        Command::Migrate => with_settings(cli.config.as_deref(), |settings| async move {
            // Closed, so that the database file is left complete, with no -wal or -shm
            // file beside it, as a stopped `serve` leaves it.
            certgate::startup::open_store(&settings)
                .await?
                .close()
                .await;
            tracing::info!("migrations applied");
            Ok(())
        }),
    }
}

/// Migration versions as `migration 5` or `migrations 5, 6`.
fn migrations(versions: &[i64]) -> String {
    let listed = versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match versions {
        [_] => format!("migration {listed}"),
        _ => format!("migrations {listed}"),
    }
}

/// Loads configuration and logging, then runs `task` on the actix runtime.
fn with_settings<F, Fut>(config: Option<&std::path::Path>, task: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("certgate: {error}");
            return ExitCode::from(2);
        }
    };
    let format = settings.log.format;
    telemetry::init(format, &settings.log.level);
    match actix_web::rt::System::new().block_on(task(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once: as a log event where logs are JSON, else as the command's last words.
            match format {
                LogFormat::Json => tracing::error!("{error:#}"),
                LogFormat::Human => eprintln!("certgate: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// `certgate renew`'s exit status when the certificate is not due yet (0 is "renewed", 1
/// "failed", 2 a usage error).
const NOT_DUE: u8 = 3;

/// Runs on an agent host: no server configuration, no database, only the token.
fn enroll(args: EnrollArgs) -> ExitCode {
    let p12 = match p12_output(&args.p12) {
        Ok(p12) => p12,
        Err(code) => return code,
    };
    let options = EnrolOptions {
        server: args.server,
        base_path: args.base_path,
        token: args.token,
        out: args.out,
        server_ca: args.cacert,
        insecure_http: args.insecure_http,
        p12,
    };
    let report = |issued: &agent_client::Enrolled| {
        agent_client::report(issued, &options.out, options.server_ca.as_deref())
    };
    agent_side("enrolment", agent_client::enrol(&options), report)
}

fn renew(args: RenewArgs) -> ExitCode {
    let out = args.out.clone().unwrap_or_else(|| {
        args.cert
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| ".".into(), std::path::Path::to_path_buf)
    });
    let p12 = match p12_output(&args.p12) {
        Ok(p12) => p12,
        Err(code) => return code,
    };
    let renew_at = match (args.renew_at, args.expires_in) {
        (Some(fraction), _) => RenewAt::Elapsed(fraction),
        (None, Some(left)) => match time::Duration::try_from(left) {
            Ok(left) => RenewAt::Left(left),
            Err(_) => {
                eprintln!("certgate: --expires-in is too long");
                return ExitCode::from(2);
            }
        },
        (None, None) => RenewAt::default(),
    };
    // An environment file may set a variable to nothing: that means "none".
    let exec = args.exec.filter(|command| !command.trim().is_empty());
    let server_ca = args.cacert.filter(|path| !path.as_os_str().is_empty());
    let hook = match (exec, args.reload_signal, args.pid_file) {
        (Some(command), _, _) => Some(Hook::Exec(command)),
        (None, Some(signal), Some(pid_file)) => Some(Hook::Signal { signal, pid_file }),
        _ => None,
    };
    let options = RenewOptions {
        server: args.server,
        base_path: args.base_path,
        certificate: args.cert,
        key: args.key,
        out: out.clone(),
        server_ca,
        p12,
    };
    if args.daemon {
        let schedule = agent_client::Schedule {
            renew_at,
            interval: args.interval.max(std::time::Duration::from_secs(1)),
        };
        let log = |line: &str| eprintln!("certgate renew: {line}");
        return match on_small_runtime(agent_client::run_daemon(
            &options,
            &schedule,
            hook.as_ref(),
            log,
        )) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(error)) => {
                eprintln!("certgate renew: {error:#}");
                ExitCode::FAILURE
            }
            Err(code) => code,
        };
    }
    let renew_at = (!args.force).then_some(renew_at);
    let task = async {
        let now = time::OffsetDateTime::now_utc();
        let renewal = agent_client::renew_if_due(&options, renew_at, now).await?;
        let hook_failure = match (&renewal, &hook) {
            (Renewal::Renewed(issued), Some(hook)) => {
                let renewed = agent_client::hook::Renewed {
                    agent_id: &issued.agent_id,
                    out: &options.out,
                };
                hook.run(&renewed).await.err()
            }
            _ => None,
        };
        Ok::<_, anyhow::Error>((renewal, hook_failure))
    };
    match on_small_runtime(task) {
        Ok(Ok((Renewal::Renewed(issued), hook_failure))) => {
            print!(
                "{}",
                agent_client::report(&issued, &out, options.server_ca.as_deref())
            );
            match hook_failure {
                None => ExitCode::SUCCESS,
                // The next run finds nothing due and would not retry the hook: say so.
                Some(error) => {
                    eprintln!(
                        "certgate: renewed, but the reload hook failed: {error:#}; run it by \
                         hand so the service loads the new files"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Ok((Renewal::NotDue { due_at }, _))) => {
            println!(
                "not due: renewal at {} (--force renews now)",
                due_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            ExitCode::from(NOT_DUE)
        }
        Ok(Err(error)) => failed("renewal", &error),
        Err(code) => code,
    }
}

fn request(args: RequestArgs) -> ExitCode {
    let machine_id = match std::fs::read_to_string(&args.machine_id_file) {
        Ok(text) => text.trim().to_owned(),
        Err(error) => {
            eprintln!(
                "certgate: cannot read {}: {error}",
                args.machine_id_file.display()
            );
            return ExitCode::from(2);
        }
    };
    let p12 = match p12_output(&args.p12) {
        Ok(p12) => p12,
        Err(code) => return code,
    };
    let options = RequestOptions {
        server: args.server,
        base_path: args.base_path,
        hostname: args.hostname,
        machine_id,
        ip_address: args.ip,
        out: args.out.clone(),
        server_ca: args.cacert,
        poll_interval: std::time::Duration::from_secs(args.poll_interval.max(1)),
        timeout: std::time::Duration::from_secs(args.timeout),
        insecure_http: args.insecure_http,
        p12,
    };
    let progress = |line: &str| println!("{line}");
    let report = |issued: &agent_client::Enrolled| {
        agent_client::report(issued, &options.out, options.server_ca.as_deref())
    };
    agent_side(
        "enrolment request",
        agent_client::request(&options, progress),
        report,
    )
}

/// The passphrase is asked for before anything is sent, so a typo costs no token.
fn p12_output(args: &P12OutputArgs) -> Result<Option<P12Output>, ExitCode> {
    let Some(path) = &args.p12 else {
        return Ok(None);
    };
    match agent_client::p12::passphrase(args.p12_pass_file.as_deref()) {
        Ok(passphrase) => Ok(Some(P12Output {
            path: path.clone(),
            passphrase,
        })),
        Err(error) => {
            eprintln!("certgate: {error:#}");
            Err(ExitCode::from(2))
        }
    }
}

fn p12(args: &P12Args) -> ExitCode {
    let written = (|| {
        let passphrase = agent_client::p12::passphrase(args.pass_file.as_deref())?;
        let key = agent_client::p12::pkcs8_from_pem(&args.key)?;
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
        };
        let certificate = read(&args.cert)?;
        let ca = args.ca.as_deref().map(read).transpose()?;
        let bundle = agent_client::p12::bundle(&key, &certificate, ca.as_deref(), &passphrase)?;
        certgate::files::write_atomically(&args.out, &bundle, 0o600)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", args.out.display()))
    })();
    match written {
        Ok(()) => {
            println!("PKCS#12 bundle written to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("certgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `task` on a single-threaded runtime: the agent-side and admin commands make a
/// few HTTP calls.
fn on_small_runtime<T>(task: impl Future<Output = T>) -> Result<T, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok(runtime.block_on(task)),
        Err(error) => {
            eprintln!("certgate: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Runs one agent-side exchange and prints its report.
fn agent_side(
    what: &str,
    task: impl Future<Output = anyhow::Result<agent_client::Enrolled>>,
    report: impl Fn(&agent_client::Enrolled) -> String,
) -> ExitCode {
    match on_small_runtime(task) {
        Ok(Ok(issued)) => {
            print!("{}", report(&issued));
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => failed(what, &error),
        Err(code) => code,
    }
}

/// The failure, and what to do about it when that is known.
fn failed(what: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("certgate: {what} failed: {error:#}");
    if let Some(hint) = agent_client::hints::for_failure(error) {
        eprintln!("hint: {hint}");
    }
    ExitCode::FAILURE
}

/// `/healthz` on the address given, or on loopback at the port certgate listens on.
fn healthcheck(url: Option<String>, config_file: Option<&std::path::Path>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        // Where `certgate serve` listens with the same file and environment; only the
        // environment's address when the settings do not load (they would not serve either).
        let listen = Settings::load(config_file)
            .map(|settings| settings.http.listen)
            .ok()
            .or_else(|| {
                std::env::var("CERTGATE_LISTEN")
                    .ok()
                    .and_then(|listen| listen.parse::<std::net::SocketAddr>().ok())
            });
        let port = listen.map_or(3000, |address| address.port());
        let ip = listen
            .map(|address| address.ip())
            .filter(|ip| !ip.is_unspecified())
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        format!("http://{}/healthz", std::net::SocketAddr::new(ip, port))
    });
    let asked = on_small_runtime(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?;
        client.get(&url).send().await?.error_for_status()
    });
    match asked {
        Ok(Ok(_)) => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            eprintln!("certgate: {url}: {error}");
            ExitCode::FAILURE
        }
        Err(code) => code,
    }
}

fn fingerprint(path: &std::path::Path) -> ExitCode {
    let mut input = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut input).map(drop)
    } else {
        std::fs::read(path).map(|bytes| input = bytes)
    };
    if let Err(error) = read {
        eprintln!("certgate: cannot read {}: {error}", path.display());
        return ExitCode::from(2);
    }
    match fingerprint_report(&input) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("certgate: {}: {error}", path.display());
            ExitCode::from(2)
        }
    }
}
