use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

use certgate::agent_client::{self, EnrolOptions, RenewOptions, RequestOptions};
use certgate::cli::{
    CaCommand, Cli, Command, EnrollArgs, RenewArgs, RequestArgs, fingerprint_report,
};
use certgate::config::{LogFormat, Settings};
use certgate::startup::Application;
use certgate::{store, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fingerprint { path } => fingerprint(&path),
        Command::Serve => with_settings(cli.config.as_deref(), |settings| async move {
            Application::build(settings)
                .await?
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
            store::backup(&settings.store.database, &path).await?;
            println!("backup written to {}", path.display());
            Ok(())
        }),
        Command::Migrate => with_settings(cli.config.as_deref(), |settings| async move {
            certgate::startup::open_store(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }),
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

/// Runs on an agent host: no server configuration, no database, only the token.
fn enroll(args: EnrollArgs) -> ExitCode {
    let options = EnrolOptions {
        server: args.server,
        base_path: args.base_path,
        token: args.token,
        out: args.out,
        server_ca: args.cacert,
    };
    let out = options.out.clone();
    agent_side("enrolment", &out, agent_client::enrol(&options))
}

fn renew(args: RenewArgs) -> ExitCode {
    let out = args.out.unwrap_or_else(|| {
        args.cert
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| ".".into(), std::path::Path::to_path_buf)
    });
    let options = RenewOptions {
        server: args.server,
        base_path: args.base_path,
        certificate: args.cert,
        key: args.key,
        out: out.clone(),
        server_ca: args.cacert,
    };
    agent_side("renewal", &out, agent_client::renew(&options))
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
    };
    let progress = |line: &str| println!("{line}");
    agent_side(
        "enrolment request",
        &args.out,
        agent_client::request(&options, progress),
    )
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
    out: &std::path::Path,
    task: impl Future<Output = anyhow::Result<agent_client::Enrolled>>,
) -> ExitCode {
    let result = match on_small_runtime(task) {
        Ok(result) => result,
        Err(code) => return code,
    };
    match result {
        Ok(issued) => {
            print!("{}", agent_client::report(&issued, out));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("certgate: {what} failed: {error:#}");
            ExitCode::FAILURE
        }
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
