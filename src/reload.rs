//! SIGHUP: the secrets and tokens are read again from where they came from (the
//! environment, the TOML file, the files named by `*_FILE`), so they rotate without a
//! restart. Nothing else is reopened: the listener, the database and the other settings
//! stay as started. What changed is logged by name and count, never by value.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::config::{ConfigError, Settings};
use crate::state::AppState;

/// Reads the settings again, from the same sources as at start-up.
pub type Load = Box<dyn Fn() -> Result<Settings, ConfigError> + Send + Sync>;

/// Waits for SIGHUP and swaps the secrets in, each time.
pub fn spawn_on_hangup(state: Arc<AppState>, load: Load) -> std::io::Result<JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            reload_secrets(&state, &load);
        }
    }))
}

/// One reload: all or nothing, so a file that cannot be read keeps the secrets in use.
pub fn reload_secrets(state: &AppState, load: &Load) {
    let settings = match load() {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!("SIGHUP: {error}; the secrets in use stay");
            return;
        }
    };
    let tokens = state.admin.replace_tokens(&settings.admin.tokens);
    let (verify_before, verify_now) = state
        .proxy_gate
        .replace_secrets(settings.verify.secrets.clone());
    tracing::info!(
        admin_tokens_added = ?tokens.added,
        admin_tokens_removed = ?tokens.removed,
        admin_tokens_replaced = ?tokens.replaced,
        verify_secrets_before = verify_before,
        verify_secrets = verify_now,
        "SIGHUP: secrets reloaded"
    );
    if settings.admin.tokens.is_empty() {
        tracing::warn!("SIGHUP: no admin token configured any more: every admin call is refused");
    }
    if settings.verify.secrets.is_empty() {
        tracing::warn!(
            "SIGHUP: no verify secret configured any more: every verify call is refused"
        );
    }
}
