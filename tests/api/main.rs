//! HTTP integration tests: one binary, one certgate per test.

// Test code: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_cli;
mod agents;
mod approval;
mod audit;
mod auth_and_limits;
mod bad_input;
mod cas;
mod config;
mod console;
mod crl;
mod expiry;
#[path = "../support/forge.rs"]
mod forge;
mod health;
mod helpers;
mod identity;
mod issuance;
mod path_validation;
mod persistence;
mod proxy_replay;
mod renewal;
mod store_faults;
mod verify_decisions;
mod verify_formats;

#[path = "../support/mod.rs"]
mod support;
use support::pki;
