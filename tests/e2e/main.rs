//! End to end: the proxy recipes of this repository (`nginx/`, `caddy/`), loaded as shipped
//! (only the example ports, paths and secret replaced) into the real nginx and Caddy, in
//! front of an in-process certgate and a small application that echoes the identity it
//! receives. A test whose proxy is not installed prints `SKIP: …` and passes, unless
//! `CERTGATE_E2E=require`.

// clippy.toml's allow-unwrap-in-tests covers only `#[test]` functions; the helpers of this
// test binary may panic too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_side;
mod caddy;
mod console;
mod exposure;
mod forgery;
mod from_zero;
mod harness;
mod nginx;
mod scenarios;

#[path = "../support/mod.rs"]
mod support;
