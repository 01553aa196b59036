//! Wiring and lifecycle: open the appliance, bind the three listeners, serve until
//! SIGTERM/SIGINT, reload on SIGHUP.
//!
//! Shutdown stops accepting, lets in-flight requests finish (bounded), waits for the
//! store writer to drain, then returns so `main` exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::appliance::{Appliance, OpenError};
use crate::config::{Config, ConfigError};
use crate::tls::ReloadableTls;

/// Serving failed to start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file the config names is missing, of the wrong kind or unreadable; a secret does
    /// not read (exit status 2, like any configuration error).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Opening token or store.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Binding a listener.
    #[error("cannot listen on {addr} ({face}): {source}")]
    Bind {
        /// Which face.
        face: &'static str,
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Another `keyward serve` already serves this database.
    #[error(transparent)]
    InUse(crate::store::StoreError),
    /// Hardening refused to start.
    #[error("refusing to start: {0}")]
    Harden(#[from] crate::hardening::HardenError),
    /// TLS material.
    #[error("{face}: {source}")]
    Tls {
        /// Which face.
        face: &'static str,
        /// Why.
        source: crate::tls::TlsError,
    },
}

/// The bound addresses of a running appliance (tests bind port 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Signing API.
    pub api: SocketAddr,
    /// Webhook ingress.
    pub webhook: SocketAddr,
    /// Admin.
    pub admin: SocketAddr,
}

async fn bind(face: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { face, addr, source })
}

/// A running appliance: its addresses and the switch that stops it.
pub struct Running {
    /// Where it listens.
    pub bound: Bound,
    /// The shared core.
    pub app: Arc<Appliance>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _claim: Option<crate::store::service_lock::ServiceLock>,
}

impl Running {
    /// Stops accepting, drains connections (bounded), returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }
}

/// The TLS material [`preflight`] built, handed to the appliance so it is not read twice.
#[derive(Debug)]
pub struct CheckedTls {
    api: Arc<ReloadableTls>,
    webhook: Arc<ReloadableTls>,
}

/// The file checks of start and of every reload: [`Config::check_files`] (every named
/// file present, a regular file, readable; secrets readable), then the modes and owners
/// of the private and the trusted paths.
pub fn check_files(config: &Config) -> Result<(), ServeError> {
    config.check_files()?;
    crate::hardening::check_private_paths(config)?;
    crate::hardening::check_trusted_paths(config)?;
    Ok(())
}

/// Everything `serve` checks before it touches the service lock, the token or the
/// database: [`check_files`], then both faces' TLS material built from those files.
/// `keyward config check` runs this same function, so its OK means `serve` gets past
/// this point; what only the token or the database can tell (the PIN, the keys, the
/// schema) and whether the addresses are free are not known here.
pub fn preflight(config: &Config) -> Result<CheckedTls, ServeError> {
    check_files(config)?;
    let tls = |face| move |source| ServeError::Tls { face, source };
    let api_tls = crate::appliance::api_tls_for(&config.api).map_err(tls("api"))?;
    let webhook_tls = crate::appliance::webhook_tls_for(&config.webhook).map_err(tls("webhook"))?;
    Ok(CheckedTls {
        api: Arc::new(api_tls),
        webhook: Arc::new(webhook_tls),
    })
}

/// Opens everything and starts serving in the background.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    start_with(config, None).await
}

async fn start_with(config: Config, tls: Option<CheckedTls>) -> Result<Running, ServeError> {
    // first, and before the token is opened: a second server on one database would
    // fight the first over its chain and its lock file, so it stops here, naming it
    let claim = crate::store::claim_service(&config.store).map_err(ServeError::InUse)?;
    let app = Arc::new(Appliance::open(config)?);
    if let Some(t) = tls {
        app.install_tls(t.api, t.webhook);
    }
    let cfg = app.config();
    let api_l = bind("signing API", cfg.api.listen).await?;
    let hook_l = bind("webhook", cfg.webhook.listen).await?;
    let admin_l = bind("admin", cfg.admin.listen).await?;
    let bound = Bound {
        api: api_l.local_addr().unwrap_or(cfg.api.listen),
        webhook: hook_l.local_addr().unwrap_or(cfg.webhook.listen),
        admin: admin_l.local_addr().unwrap_or(cfg.admin.listen),
    };
    let (stop, rx) = watch::channel(false);
    // build both TLS configs before serving anything, so a bad file fails start-up
    app.api_tls().map_err(|source| ServeError::Tls {
        face: "api",
        source,
    })?;
    app.webhook_tls().map_err(|source| ServeError::Tls {
        face: "webhook",
        source,
    })?;
    let mut tasks = Vec::new();
    let (a, r) = (app.clone(), rx.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = crate::api::serve(a, api_l, r).await {
            tracing::error!(error = %e, "signing API stopped");
        }
    }));
    let (a, r) = (app.clone(), rx.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = crate::webhook::serve(a, hook_l, r).await {
            tracing::error!(error = %e, "webhook ingress stopped");
        }
    }));
    tasks.push(tokio::spawn(crate::admin::serve(app.clone(), admin_l, rx)));
    tracing::info!(api = %bound.api, webhook = %bound.webhook, admin = %bound.admin, oaep = app.token.oaep_mode(), "keyward ready");
    Ok(Running {
        bound,
        app,
        stop,
        tasks,
        _claim: claim,
    })
}

/// systemd's readiness protocol (`Type=notify`, `$NOTIFY_SOCKET`; nothing when unset):
/// READY=1 once every listener serves and every signal has its handler, so the manager
/// neither reports a start that is not done nor sends SIGHUP before its handler exists;
/// RELOADING=1 … READY=1 around a reload; STOPPING=1 before the drain.
fn tell_service_manager(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager (NOTIFY_SOCKET)");
    }
}

fn reload(app: &Appliance, path: &std::path::Path) -> Result<(), String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    // the same file checks as at start (secrets readable before anything is swapped):
    // a reload must not accept a file, client CA, CRL, policy or module that start-up
    // would have refused
    check_files(&new).map_err(|e| e.to_string())?;
    app.reload(new).map_err(|e| e.to_string())
}

/// Serves until SIGTERM or SIGINT; SIGHUP reloads the config file. Hardens the process
/// and runs [`preflight`] first.
pub async fn run(config: Config) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    crate::hardening::harden_process(config.process.mlock_all)?;
    let path = config.source.clone();
    for d in &config.deprecations {
        tracing::warn!("{d}");
    }
    // SIGHUP's handler first: "keyward ready" is the operator's cue to reload, and a SIGHUP
    // that arrived before its handler would take the default action and end the process.
    // TERM and INT keep their default action until start is done, so a start that hangs
    // (a token that does not answer) can still be stopped.
    let mut hup = signal(SignalKind::hangup()).expect("signal handler");
    let tls = preflight(&config)?;
    let running = start_with(config, Some(tls)).await?;
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    let mut int = signal(SignalKind::interrupt()).expect("signal handler");
    tell_service_manager(&[NotifyState::Ready, NotifyState::Status("serving")]);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let mut reloading = vec![NotifyState::Reloading];
                reloading.extend(NotifyState::monotonic_usec_now().ok());
                tell_service_manager(&reloading);
                let status = match reload(&running.app, &path) {
                    Ok(()) => {
                        tracing::info!(config = %path.display(), "reloaded: configuration, clients, policy, secrets, token keys, certificates, client CAs, CRLs");
                        "serving; last reload applied"
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reload refused; the previous configuration stays in force");
                        "serving; last reload refused (see the log), the previous configuration stays"
                    }
                };
                tell_service_manager(&[NotifyState::Ready, NotifyState::Status(status)]);
            }
        }
    }
    tell_service_manager(&[NotifyState::Stopping]);
    tracing::info!("shutting down: draining connections");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
