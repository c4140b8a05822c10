use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

use certgate::cli::{Cli, Command, fingerprint_report};
use certgate::config::Settings;
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
        Command::Migrate => with_settings(cli.config.as_deref(), |settings| async move {
            store::migrate(&settings).await?;
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
    telemetry::init(settings.log_format, &settings.log_level);
    match actix_web::rt::System::new().block_on(task(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("certgate: {error:#}");
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
