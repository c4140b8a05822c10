//! Records the git revision the binary is built from, for `certgate --version` and the
//! `certgate_build_info` metric: `CERTGATE_BUILD_REVISION` when set, else what git says,
//! else "unknown" (a source archive).

use std::path::Path;
use std::process::Command;

fn main() {
    // A build without the repository (a container build context) is told the revision.
    println!("cargo:rerun-if-env-changed=CERTGATE_BUILD_REVISION");
    let given = std::env::var("CERTGATE_BUILD_REVISION")
        .ok()
        .filter(|revision| !revision.trim().is_empty());
    let revision = given.or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    });
    let revision = revision.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CERTGATE_GIT_REVISION={revision}");
    // A new commit moves the branch HEAD points to; a checkout moves HEAD itself.
    let head = Path::new(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        let branch = std::fs::read_to_string(head)
            .ok()
            .and_then(|text| text.strip_prefix("ref: ").map(|r| r.trim().to_owned()));
        if let Some(branch) = branch.filter(|branch| Path::new(".git").join(branch).exists()) {
            println!("cargo:rerun-if-changed=.git/{branch}");
        }
        if Path::new(".git/packed-refs").exists() {
            println!("cargo:rerun-if-changed=.git/packed-refs");
        }
    }
}
