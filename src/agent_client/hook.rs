//! What runs after a renewal so the service using the certificate picks up the new files:
//! a command, or a signal to a process named by its PID file.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};

pub enum Hook {
    /// A shell command (`sh -c`), with `CERTGATE_CERT`, `CERTGATE_KEY`, `CERTGATE_CA` and
    /// `CERTGATE_AGENT_ID` in its environment.
    Exec(String),
    /// A signal to the process whose PID `pid_file` holds (nginx reloads on HUP).
    Signal { signal: Signal, pid_file: PathBuf },
}

/// The files a hook is told about.
pub struct Renewed<'a> {
    pub agent_id: &'a str,
    pub out: &'a std::path::Path,
}

impl Hook {
    pub async fn run(&self, renewed: &Renewed<'_>) -> anyhow::Result<()> {
        match self {
            Self::Exec(command) => {
                let file = |name: &str| renewed.out.join(name);
                let status = tokio::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(command)
                    .env("CERTGATE_CERT", file(super::CERTIFICATE_FILE))
                    .env("CERTGATE_KEY", file(super::KEY_FILE))
                    .env("CERTGATE_CA", file(super::CA_FILE))
                    .env("CERTGATE_AGENT_ID", renewed.agent_id)
                    .stdin(Stdio::null())
                    .status()
                    .await
                    .with_context(|| format!("running `{command}`"))?;
                if !status.success() {
                    bail!("`{command}` exited with {status}");
                }
                Ok(())
            }
            Self::Signal { signal, pid_file } => {
                let text = std::fs::read_to_string(pid_file)
                    .with_context(|| format!("reading {}", pid_file.display()))?;
                let pid = text
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(Pid::from_raw)
                    .with_context(|| format!("{} holds no process id", pid_file.display()))?;
                kill_process(pid, *signal)
                    .with_context(|| format!("signalling process {}", pid.as_raw_nonzero()))
            }
        }
    }
}

/// `--reload-signal`: a signal name, with or without `SIG` (`HUP`, `SIGUSR1` …).
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    Ok(match upper.strip_prefix("SIG").unwrap_or(&upper) {
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "TERM" => Signal::TERM,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "WINCH" => Signal::WINCH,
        _ => {
            return Err(format!(
                "`{name}` is not a signal certgate sends (HUP, INT, QUIT, TERM, USR1, USR2, WINCH)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_are_read_with_or_without_their_prefix() {
        assert_eq!(parse_signal("HUP"), Ok(Signal::HUP));
        assert_eq!(parse_signal("sigusr1"), Ok(Signal::USR1));
        assert!(parse_signal("KILL").is_err());
    }

    #[tokio::test]
    async fn a_signal_hook_reaches_the_process_its_pid_file_names() {
        use std::os::unix::process::ExitStatusExt;

        let dir = tempfile::tempdir().unwrap();
        let mut service = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid_file = dir.path().join("service.pid");
        std::fs::write(&pid_file, format!("{}\n", service.id())).unwrap();
        let renewed = Renewed {
            agent_id: "a1",
            out: dir.path(),
        };
        let hook = Hook::Signal {
            signal: Signal::TERM,
            pid_file: pid_file.clone(),
        };
        hook.run(&renewed).await.unwrap();
        assert_eq!(
            service.wait().unwrap().signal(),
            Some(Signal::TERM.as_raw())
        );

        std::fs::write(&pid_file, "not a pid").unwrap();
        assert!(hook.run(&renewed).await.is_err());
    }

    #[tokio::test]
    async fn a_command_hook_sees_the_files_and_its_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let renewed = Renewed {
            agent_id: "a1",
            out: dir.path(),
        };
        let seen = dir.path().join("seen");
        Hook::Exec(format!(
            "echo \"$CERTGATE_AGENT_ID $CERTGATE_CERT\" > {}",
            seen.display()
        ))
        .run(&renewed)
        .await
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap().trim(),
            format!("a1 {}", dir.path().join("agent.crt").display())
        );
        let failed = Hook::Exec("exit 3".into()).run(&renewed).await.unwrap_err();
        assert!(failed.to_string().contains("exit"), "{failed}");
    }
}
