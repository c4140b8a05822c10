//! What every end-to-end test stands on: a fresh PKI, certgate, the echo application and
//! the proxy processes, all on 127.0.0.1, all stopped and deleted when the test ends.

pub mod client;
pub mod pki;
pub mod process;
pub mod sidecar;
pub mod upstream;

use std::path::Path;

use tempfile::TempDir;

use pki::Pki;
use sidecar::{Believes, Certgate};
use upstream::Upstream;

/// certgate and the application behind the proxy. Fields drop in order: the servers stop
/// before the directory is removed.
pub struct Stack {
    pub pki: Pki,
    pub certgate: Certgate,
    pub upstream: Upstream,
    dir: TempDir,
}

impl Stack {
    pub async fn start(believes: Believes) -> Self {
        Self::start_with(believes, &[]).await
    }

    /// With `extra` certgate settings (environment variables).
    pub async fn start_with(believes: Believes, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("certgate-e2e-")
            .tempdir()
            .unwrap();
        Self {
            pki: Pki::generate(),
            certgate: Certgate::start_with(dir.path(), believes, extra).await,
            upstream: Upstream::start(),
            dir,
        }
    }

    /// A directory for the proxy's configuration, certificates, logs and temp files.
    pub fn proxy_dir(&self, name: &str) -> std::path::PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// Replaces every occurrence of each example value of a recipe with the test's own. Each
/// example value must occur: a renamed one would otherwise keep the example silently.
pub fn substitute(recipe: &str, text: &str, replacements: &[(&str, String)]) -> String {
    let mut out = text.to_owned();
    for (example, value) in replacements {
        assert!(
            out.contains(example),
            "{recipe} no longer contains the example value `{example}`"
        );
        out = out.replace(example, value);
    }
    out
}

/// A recipe file of this repository.
pub fn recipe(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
