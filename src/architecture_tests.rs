//! The dependency rules of ARCHITECTURE.md, checked on the source text: each rule names the
//! files it covers and what they must not mention outside comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/` of both crates, with its code lines (comments and unit
/// tests left out).
fn sources() -> Vec<(String, Vec<String>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    // The server's crate and the core crate, each file named from its crate's root
    // (`src/domain/verify.rs`): the rules read the same wherever a module lives.
    let server = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for root in [server.to_path_buf(), server.join("crates/core")] {
        let mut found = Vec::new();
        walk(&root.join("src"), &mut found);
        files.extend(found.into_iter().map(|path| (root.clone(), path)));
    }
    files
        .into_iter()
        .map(|(root, path)| {
            let name = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            // A unit-test module may use what the code under test must not.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let lines = code
                .lines()
                .map(str::trim)
                .filter(|line| !line.starts_with("//"))
                .map(str::to_owned)
                .collect();
            (name, lines)
        })
        .filter(|(name, _)| {
            !(name.ends_with("_tests.rs")
                || name.ends_with("/tests.rs")
                || name.ends_with("/test_pki.rs"))
        })
        .collect()
}

/// The files of `module` (a directory or a single file under `src/`).
fn in_module(name: &str, module: &str) -> bool {
    name == format!("src/{module}.rs") || name.starts_with(&format!("src/{module}/"))
}

#[track_caller]
fn assert_absent(modules: &[&str], needles: &[&str]) {
    for (name, lines) in sources() {
        if !modules.iter().any(|module| in_module(&name, module)) {
            continue;
        }
        for line in &lines {
            for needle in needles {
                assert!(!line.contains(needle), "{name} mentions `{needle}`: {line}");
            }
        }
    }
}

/// `crate::X` modules that the files of `module` use.
fn uses_of(module: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (name, lines) in sources() {
        if !in_module(&name, module) {
            continue;
        }
        for line in &lines {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if rest[..end] != *module && !rest[..end].is_empty() {
                    used.insert(rest[..end].to_owned());
                }
            }
            // `use crate::{a, b}` names several at once.
            if let Some(group) = line.strip_prefix("use crate::{") {
                for item in group.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                    if !item.is_empty() && item != module && item != "self" {
                        used.insert(item.to_owned());
                    }
                }
            }
        }
    }
    used
}

#[test]
fn the_domain_knows_no_io_no_clock_and_nothing_outside_itself() {
    assert_absent(
        &["domain"],
        &[
            "sqlx",
            "actix",
            "std::fs",
            "tokio",
            "now_utc()",
            "SystemTime::now",
        ],
    );
    let outside: Vec<_> = uses_of("domain").into_iter().collect();
    assert!(outside.is_empty(), "domain uses {outside:?}");
}

#[test]
fn certificate_parsers_sql_and_http_each_stay_in_their_modules() {
    let everything_but = |keep: &[&str]| -> Vec<String> {
        let mut modules: BTreeSet<String> = BTreeSet::new();
        for (name, _) in sources() {
            let top = name
                .trim_start_matches("src/")
                .split(['/', '.'])
                .next()
                .unwrap_or_default()
                .to_owned();
            if !keep.contains(&top.as_str()) {
                modules.insert(top);
            }
        }
        modules.into_iter().collect()
    };
    let check = |keep: &[&str], needles: &[&str]| {
        let others = everything_but(keep);
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        assert_absent(&others, needles);
    };
    check(&["x509"], &["x509_parser", "webpki::"]);
    check(&["store"], &["sqlx"]);
    check(
        &["routes", "front", "error", "state", "startup", "main"],
        &["actix", "ApiError", "StatusCode", "HttpResponse"],
    );
}

#[test]
fn config_is_a_leaf_and_the_services_form_no_cycle() {
    let config = uses_of("config");
    let allowed: BTreeSet<String> = ["domain", "proxy", "url_path"].map(String::from).into();
    assert!(config.is_subset(&allowed), "config uses {config:?}");

    let services = ["config", "store", "trust", "registry", "issuance", "error"];
    let graph: BTreeMap<&str, BTreeSet<String>> = services
        .iter()
        .map(|module| (*module, uses_of(module)))
        .collect();
    // Depth-first search for a path back to where it started.
    fn reaches(
        graph: &BTreeMap<&str, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        graph.get(from).is_some_and(|next| {
            next.iter().any(|module| {
                module == to || (seen.insert(module.clone()) && reaches(graph, module, to, seen))
            })
        })
    }
    for module in services {
        assert!(
            !reaches(&graph, module, module, &mut BTreeSet::new()),
            "{module} depends on itself through {graph:?}"
        );
    }
}
