//! Operator commands (clap derive, one file per command group). Errors are reported once,
//! here, with exit status 2 for configuration problems and 1 for everything else.

mod audit;
mod audit_search;
mod config_cmd;
mod dev;
mod keys;
mod lock;
mod policy;
mod simulate;
mod status;
mod store_cmd;
mod wallets;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use keyward::config::{Config, ConfigError, LogFormat};

/// keyward: an HSM-backed signing appliance for delegated wallet access.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The config file argument every command takes.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Path of keyward.toml.
    #[arg(
        long,
        short = 'c',
        env = "KEYWARD_CONFIG",
        default_value = "/etc/keyward/keyward.toml"
    )]
    pub config: PathBuf,
}

impl ConfigArg {
    /// Loads and validates the config.
    pub fn load(&self) -> Result<Config, CliError> {
        Ok(Config::load(&self.config)?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the token objects (RSA key pair, wrapping key) if absent; idempotent.
    Init(ConfigArg),
    /// Run the appliance: signing API, webhook ingress and admin listener.
    Serve(ConfigArg),
    /// Token keys: public key for the vendor's dashboard, listing, rotation.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Validate a config file.
    #[command(subcommand)]
    Config(config_cmd::ConfigCmd),
    /// The audit chain: verify it, export it, search it.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// One screen: service, lock, token, store, wallets, keys in use, certificate and CRL
    /// expiry, last delivery.
    Status(ConfigArg),
    /// Refuse every signing request until `unlock` (webhooks keep being processed).
    Lock(lock::LockArgs),
    /// Lift the lock.
    Unlock(lock::UnlockArgs),
    /// Copy the database with SQLite's online backup (safe while serving).
    Backup(lock::BackupArgs),
    /// The store itself: copy a SQLite store into PostgreSQL (`store migrate`).
    #[command(subcommand)]
    Store(store_cmd::StoreCmd),
    /// Wallets: create, import, list, show, rewrap.
    #[command(subcommand)]
    Wallets(wallets::WalletsCmd),
    /// Send a delivery the way the vendor does (delegation, revoke, ping).
    #[command(subcommand)]
    Simulate(simulate::SimulateCmd),
    #[command(
        subcommand,
        about = "Policy files: validate one (`policy check FILE`), decide golden cases (`policy test POLICY CASES.jsonl`)"
    )]
    Policy(policy::PolicyCmd),
    /// Development helpers.
    #[command(subcommand)]
    Dev(dev::DevCmd),
}

/// A command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Anything else, already phrased for the operator.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// Process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

/// Turns any displayable error into an operator-facing failure.
pub fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// Installs logging per `[log]` (to stderr). `serve` logs at the configured level;
/// one-shot commands only warn unless `RUST_LOG` says otherwise.
pub fn init_logging(config: Option<&Config>, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (config, serving) {
        (Some(c), true) => c.log.level.clone(),
        _ => "warn".into(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // colours only on a terminal: journald and log shippers get plain text
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let json = config.is_some_and(|c| c.log.format == LogFormat::Json);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Init(c) => keys::init(&c.load()?),
        Command::Serve(c) => serve(&c.config),
        Command::Keys(k) => keys::run(k),
        Command::Config(c) => config_cmd::run(c),
        Command::Audit(a) => audit::run(a),
        Command::Status(c) => status::run(c),
        Command::Lock(a) => lock::lock(a),
        Command::Unlock(a) => lock::unlock(a),
        Command::Store(c) => store_cmd::run(c),
        Command::Backup(a) => lock::backup(a),
        Command::Wallets(w) => wallets::run(w),
        Command::Simulate(s) => simulate::run(s),
        Command::Dev(d) => dev::run(d),
        Command::Policy(p) => policy::run(p),
    }
}

fn serve(path: &Path) -> Result<(), CliError> {
    let config = Config::load(path)?;
    init_logging(Some(&config), true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("keyward")
        .build()
        .map_err(fail)?;
    rt.block_on(keyward::server::run(config))
        .map_err(serve_error)
}

/// A configuration problem found at start exits 2, as `config check` does for it.
pub fn serve_error(e: keyward::server::ServeError) -> CliError {
    match e {
        keyward::server::ServeError::Config(c) => CliError::Config(c),
        other => fail(other),
    }
}
