//! Wiring: store, trust index, background tasks and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_service::IntoServiceFactory;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use tokio::task::JoinHandle;

use crate::config::{DatabaseUrl, Settings};
use crate::denial_log::DenialLog;
use crate::domain::ca::Ca;
use crate::front::Front;
use crate::issuance::Issuance;
use crate::issuance::internal_ca::InternalCa;
use crate::last_seen::LastSeen;
use crate::metrics::Metrics;
use crate::rate_limit::FailureLimiter;
use crate::registry::Registry;
use crate::routes;
use crate::routes::proxy_gate::ProxyGate;
use crate::state::{AdminAuth, AppState, IssuingLimits, VerifyOptions};
use crate::store::{self, Store};
use crate::sync::Follower;
use crate::trust::{self, TrustIndex};

/// How long a stop keeps trying to write the last sightings when the database fails.
const EXIT_FLUSH_PATIENCE: Duration = Duration::from_secs(5);

pub struct Application {
    port: u16,
    server: Server,
    background: Vec<JoinHandle<()>>,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens the store, loads the trust index and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        let store = open_store(&settings).await?;
        crate::registry::record_missing_identities(store.as_ref()).await?;
        let metrics = Arc::new(Metrics::new()?);
        let feed_position = store.last_change().await?;
        let trust =
            Arc::new(trust::load(store.as_ref(), settings.verify.unknown_cert_cache_size).await?);
        log_start(&settings, &trust);

        let last_seen = Arc::new(LastSeen::default());
        let denial_log = Arc::new(DenialLog::default());
        let registry = Arc::new(Registry::new(Arc::clone(&store), Arc::clone(&trust)));
        let issuance = Issuance::new(
            Arc::clone(&registry),
            open_internal_ca(&settings),
            settings.issuance.clone(),
        );
        let state = web::Data::new(AppState {
            registry,
            issuance,
            store: Arc::clone(&store),
            trust: Arc::clone(&trust),
            metrics: Arc::clone(&metrics),
            last_seen: Arc::clone(&last_seen),
            denial_log: Arc::clone(&denial_log),
            proxy_gate: ProxyGate::new(
                settings.verify.trusted_proxies.clone(),
                settings.verify.secrets.clone(),
                settings.verify.secret_failures_per_minute,
                settings.verify.identity_headers,
            ),
            verify: VerifyOptions {
                read_body: settings.verify.read_body,
                decision_cache_seconds: settings.verify.decision_cache_seconds,
            },
            admin: AdminAuth::new(
                settings.admin.tokens.clone(),
                settings.admin.certificate_auth,
                settings.admin.failures_per_minute,
            ),
            issuing_limits: IssuingLimits {
                token_failures: FailureLimiter::per_minute(settings.admin.failures_per_minute),
                host_requests: FailureLimiter::per_minute(
                    settings.issuance.host_requests_per_minute,
                ),
            },
        });
        // The names the audit trail gives admin tokens, so an operator can check them.
        let token_names = state.admin.token_names().join(", ");
        tracing::info!(tokens = token_names.as_str(), "admin tokens");

        let background = vec![
            Follower::new(
                Arc::clone(&store),
                trust,
                Arc::clone(&metrics),
                feed_position,
            )
            .spawn(Duration::from_millis(settings.store.sync_interval_ms)),
            last_seen.spawn_flusher(
                Arc::clone(&store),
                Arc::clone(&metrics),
                Duration::from_millis(settings.store.last_seen_flush_ms),
            ),
            spawn_limiter_cleanup(state.clone()),
            denial_log.spawn_reporter(),
        ];

        let listener = TcpListener::bind(settings.http.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.http.listen))?;
        let port = listener.local_addr()?.port();
        let base_path = settings.http.base_path.clone();
        let app_state = state.clone();
        let verify_path = format!("{base_path}/verify");
        // Built once, shared by every worker's App.
        let openapi = web::Data::new(routes::openapi::Document(routes::openapi::document_json(
            &base_path,
        )));
        let console_path = settings.http.console_path.clone();
        let console_index = web::Data::new(routes::console::Index::new(&base_path));
        let mut server = HttpServer::new(move || {
            let base_path = base_path.clone();
            let console_path = console_path.clone();
            let app = App::new()
                .app_data(app_state.clone())
                .app_data(openapi.clone())
                .app_data(console_index.clone())
                .configure(move |cfg| routes::configure(cfg, &base_path, console_path.as_deref()));
            Front::new(app.into_factory(), &verify_path, app_state.clone())
        })
        .keep_alive(Duration::from_secs(settings.http.keep_alive_seconds))
        .shutdown_timeout(10)
        .listen(listener)?;
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        tracing::info!(address = %settings.http.listen, port, "certgate listening");
        Ok(Self {
            port,
            server: server.run(),
            background,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// On SIGHUP, re-reads the secrets and tokens with `load` and swaps them in.
    pub fn reload_secrets_on_hangup(mut self, load: crate::reload::Load) -> anyhow::Result<Self> {
        let task = crate::reload::spawn_on_hangup(self.state.clone().into_inner(), load)?;
        self.background.push(task);
        Ok(self)
    }

    /// Stops the server gracefully (what SIGTERM does), for tests.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM, SIGINT or the handle), then writes what is pending.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
            // A flush cut short puts its sightings back in the queue once it is dropped.
            let _ = task.await;
        }
        self.state
            .last_seen
            .flush_before_exit(
                self.state.store.as_ref(),
                &self.state.metrics,
                EXIT_FLUSH_PATIENCE,
            )
            .await;
        self.state.denial_log.log_repeats();
        self.state.store.close().await;
        tracing::info!("certgate stopped");
        Ok(result?)
    }
}

fn spawn_limiter_cleanup(state: web::Data<AppState>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            state.proxy_gate.forget_idle();
            state.admin.failures.forget_idle();
            state.issuing_limits.token_failures.forget_idle();
            state.issuing_limits.host_requests.forget_idle();
        }
    })
}

/// Opens the configured database, creating it and running its migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let config = &settings.store;
    store::connect(
        &config.database,
        config.max_connections,
        config.connect_timeout,
    )
    .await
}

/// Opens (or creates) the internal CA's files. A failure is not fatal: verify and the
/// admin API work without it, and the issuing routes answer 503 with the reason.
pub fn open_internal_ca(settings: &Settings) -> Result<InternalCa, String> {
    if !settings.issuance.internal_ca {
        return Err("switched off (CERTGATE_INTERNAL_CA=false)".to_owned());
    }
    match InternalCa::open_or_create(&settings.store.data_dir, time::OffsetDateTime::now_utc()) {
        Ok((ca, created)) => {
            if created {
                tracing::info!(dir = %settings.store.data_dir.display(), "internal CA created");
            }
            Ok(ca)
        }
        Err(error) => {
            tracing::error!(%error, "internal CA unavailable: issuing routes will answer 503");
            Err(error.to_string())
        }
    }
}

/// `certgate ca init`: the internal CA's files, and its row as a trusted CA.
pub async fn init_internal_ca(settings: &Settings) -> anyhow::Result<Ca> {
    let store = open_store(settings).await?;
    let registered = register_internal_ca(settings, Arc::clone(&store)).await;
    // As `migrate`: the database file is left complete, with no -wal or -shm beside it.
    store.close().await;
    registered
}

async fn register_internal_ca(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Ca> {
    let trust = Arc::new(TrustIndex::new(store.policy().await?, 0));
    let registry = Arc::new(Registry::new(store, trust));
    let issuance = Issuance::new(
        registry,
        open_internal_ca(settings),
        settings.issuance.clone(),
    );
    let (_, ca) = issuance
        .registered_ca(time::OffsetDateTime::now_utc())
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(ca)
}

fn log_start(settings: &Settings, trust: &TrustIndex) {
    let database = match &settings.store.database {
        DatabaseUrl::Sqlite(path) => format!("sqlite {}", path.display()),
        DatabaseUrl::Postgres(_) => "postgres".to_owned(),
    };
    tracing::info!(
        %database,
        agents = trust.agent_count(),
        cas = trust.ca_count(),
        identity_headers = ?settings.verify.identity_headers.enabled().map(|h| h.name()).collect::<Vec<_>>(),
        "trust index loaded"
    );
    if settings.admin.tokens.is_empty() {
        tracing::warn!(
            "no admin token configured: every admin call is refused. Set CERTGATE_ADMIN_TOKEN \
             (comma-separated for rotation) or CERTGATE_ADMIN_TOKEN_FILE"
        );
    }
    if settings.verify.secrets.is_empty() {
        tracing::warn!(
            "no verify secret configured: every verify call is refused. Set MTLS_VERIFY_SECRET \
             (or CERTGATE_VERIFY_SECRET, or MTLS_VERIFY_SECRET_FILE)"
        );
    }
}
