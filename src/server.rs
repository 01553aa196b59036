//! Wiring and lifecycle: open the appliance, bind the three listeners, serve until
//! SIGTERM/SIGINT, reload on SIGHUP.
//!
//! Shutdown stops accepting, lets in-flight requests finish (bounded), waits for the
//! store writer to drain, then returns so `main` exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::appliance::{Appliance, OpenError};
use crate::config::Config;

/// Serving failed to start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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
    _claim: crate::store::service_lock::ServiceLock,
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

/// Opens everything and starts serving in the background.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    // first, and before the token is opened: a second server on one database would
    // fight the first over its chain and its lock file, so it stops here, naming it
    let claim = crate::store::service_lock::claim(&config.store.path).map_err(ServeError::InUse)?;
    let app = Arc::new(Appliance::open(config)?);
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

fn reload(app: &Appliance, path: &std::path::Path) -> Result<(), String> {
    let new = Config::load(path).map_err(|e| e.to_string())?;
    // the same file checks as at start: a reload must not accept a client CA, CRL,
    // policy or module that start-up would have refused
    crate::hardening::check_private_paths(&new).map_err(|e| e.to_string())?;
    crate::hardening::check_trusted_paths(&new).map_err(|e| e.to_string())?;
    // secrets must be readable before anything is swapped
    for s in &new.webhook.secrets {
        s.read().map_err(|e| e.to_string())?;
    }
    app.reload(new).map_err(|e| e.to_string())
}

/// Serves until SIGTERM or SIGINT; SIGHUP reloads the config file. Hardens the process
/// and checks file modes first.
pub async fn run(config: Config) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    crate::hardening::harden_process(config.process.mlock_all)?;
    crate::hardening::check_private_paths(&config)?;
    crate::hardening::check_trusted_paths(&config)?;
    let path = config.source.clone();
    for d in &config.deprecations {
        tracing::warn!("{d}");
    }
    let running = start(config).await?;
    let mut term = signal(SignalKind::terminate()).expect("signal handler");
    let mut int = signal(SignalKind::interrupt()).expect("signal handler");
    let mut hup = signal(SignalKind::hangup()).expect("signal handler");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match reload(&running.app, &path) {
                Ok(()) => tracing::info!(config = %path.display(), "reloaded: configuration, clients, policy, secrets, token keys, certificates, client CAs, CRLs"),
                Err(e) => tracing::error!(error = %e, "reload refused; the previous configuration stays in force"),
            },
        }
    }
    tracing::info!("shutting down: draining connections");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
