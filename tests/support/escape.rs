//! How proxies escape a certificate into a header, for the tests and benchmarks that play a
//! proxy. Uses only dev-dependencies, so the library's unit tests, the test binaries and the
//! benchmarks all include this one file.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What nginx's `$ssl_client_escaped_cert` leaves alone: letters, digits and `-`.
const NGINX_KEEPS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-');

/// What Go's `url.QueryEscape` (Traefik before 2.9.2) leaves alone.
const QUERY_ESCAPE_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Text (a PEM, or a PEM bundle) escaped as nginx's `$ssl_client_escaped_cert` escapes it.
pub fn nginx_escaped(text: &str) -> String {
    utf8_percent_encode(text, NGINX_KEEPS).to_string()
}

/// Text escaped as Go's `url.QueryEscape` escapes it.
#[allow(dead_code)]
pub fn query_escaped(text: &str) -> String {
    utf8_percent_encode(text, QUERY_ESCAPE_KEEPS).to_string()
}
