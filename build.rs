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
    let revision = given
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CERTGATE_GIT_REVISION={revision}");
    // A new commit moves the branch HEAD points to; a checkout moves HEAD itself. Git names
    // the files: in a linked worktree `.git` is a file and HEAD lives elsewhere.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    // A detached HEAD names itself.
    watched.extend(
        git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|branch| branch != "HEAD"),
    );
    for name in watched {
        if let Some(path) =
            git(&["rev-parse", "--git-path", &name]).filter(|path| Path::new(path).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// What a git command prints, trimmed; `None` when git is missing, fails or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}
