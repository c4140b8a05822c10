//! Which spellings of a URL path certgate routes. No route of certgate's needs a
//! percent-escape, an empty segment or a dot segment, and a proxy that matches locations on
//! the decoded, normalised path while it forwards the path as the client spelled it would
//! let such a spelling reach a route its configuration meant to keep from the client; so
//! such paths are refused before routing, and a base path spelled that way is refused at
//! start-up.

/// A path with a percent-escape, an empty segment or a dot segment.
pub fn is_unusual(path: &str) -> bool {
    path.contains('%')
        || path.contains("//")
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_routed_as_they_are() {
        for path in [
            "/",
            "/healthz",
            "/api/b/verify",
            "/api/b/agents/3f2a",
            "/api/b/verify/",
            "/a.b/..c/d.",
        ] {
            assert!(!is_unusual(path), "{path}");
        }
    }

    #[test]
    fn escapes_empty_and_dot_segments_are_unusual() {
        for path in [
            "/api/b/%76erify",
            "/api/b//verify",
            "/api/b/./verify",
            "/api/b/agents/../verify",
            "/api/b/agents/..%2Fverify",
            "/api/b/agents/%2e%2e/renew",
            "/api/b/verify/.",
            "/..",
            "//",
        ] {
            assert!(is_unusual(path), "{path}");
        }
    }
}
