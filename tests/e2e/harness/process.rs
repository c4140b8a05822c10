//! Proxy binaries: finding them (or skipping), free ports, and child processes that are
//! killed when the test ends, however it ends.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a proxy may take to accept connections.
const STARTUP: Duration = Duration::from_secs(10);

/// The binary `name` from `PATH`. Missing: a notice and `None` (the test returns early),
/// unless `CERTGATE_E2E=require`, which turns it into a failure (CI sets it).
pub fn binary_or_skip(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    });
    if found.is_none() {
        skip_unless_required(&format!("{name} is not installed (not on PATH)"));
    }
    found
}

/// A test's prerequisite is missing: a notice (the test then returns early), or a failure
/// under `CERTGATE_E2E=require`.
pub fn skip_unless_required(missing: &str) {
    assert!(
        std::env::var("CERTGATE_E2E").as_deref() != Ok("require"),
        "{missing} and CERTGATE_E2E=require"
    );
    eprintln!("SKIP: {missing}");
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port nobody listens on right now. Another process may take it before the proxy
/// binds it, so [`Process::start`] retries with a new one when that happens.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True if process `pid` holds a socket listening on 127.0.0.1:`port`: the inode of the
/// listening socket in `/proc/net/tcp` is one of the process's open files.
fn listens(pid: u32, port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
            let inode = fields.get(9).filter(|_| listening)?;
            Some(format!("socket:[{inode}]"))
        })
        .collect();
    if sockets.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
    })
}

/// A running proxy. Killed (and its logs printed, if the test is failing) on drop.
pub struct Process {
    name: String,
    child: Child,
    port: u16,
    logs: Vec<PathBuf>,
}

impl Process {
    /// Starts the command `configure` builds for a free port and waits until the port
    /// accepts connections. `configure` writes the configuration for that port; the
    /// child's stdout and stderr go to files in `dir`, listed in the failure message
    /// together with `extra_logs`.
    pub async fn start(
        name: &str,
        dir: &Path,
        extra_logs: &[PathBuf],
        mut configure: impl FnMut(u16) -> Command,
    ) -> Self {
        let stdout = dir.join(format!("{name}.stdout.log"));
        let stderr = dir.join(format!("{name}.stderr.log"));
        let mut logs = vec![stdout.clone(), stderr.clone()];
        logs.extend_from_slice(extra_logs);
        for attempt in 1..=3 {
            let port = free_port();
            let child = configure(port)
                .stdin(Stdio::null())
                .stdout(File::create(&stdout).unwrap())
                .stderr(File::create(&stderr).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let mut process = Self {
                name: name.to_owned(),
                child,
                port,
                logs: logs.clone(),
            };
            match process.wait_until_listening().await {
                Ok(()) => return process,
                Err(reason) => {
                    let logs = process.read_logs();
                    if attempt < 3 && logs.contains("in use") {
                        continue; // someone took the port first: try another
                    }
                    panic!("{name} did not start: {reason}\n{logs}");
                }
            }
        }
        unreachable!()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until the child itself listens on the port. An open port is not enough:
    /// between [`free_port`] and the child's bind, another test may have taken the port,
    /// and the child then exits while the port still answers.
    async fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}"));
            }
            if listens(self.child.id(), self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("port {} not open after {STARTUP:?}", self.port));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn read_logs(&self) -> String {
        self.logs
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                format!("--- {} ---\n{text}", path.display())
            })
            .collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{} logs:\n{}", self.name, self.read_logs());
        }
    }
}
