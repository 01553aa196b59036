//! The operator's configuration: one TOML file, typed, validated once at load.
//!
//! Owns: the shape of `keyward.toml`, defaults, path resolution (relative paths are
//! relative to the config file's directory) and the rule that secrets are never inline.
//! Must never: hold a secret value itself. Secrets are [`SecretRef`]s, resolved on demand
//! into zeroizing types by [`secret`].

mod duration;
mod engines;
mod files;
pub mod rpc;
pub mod secret;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use engines::*;
pub use secret::SecretRef;

/// A configuration that could not be loaded. The message names the file, the key path
/// and what was expected; it never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML did not parse into the expected shape.
    #[error("{file}: key `{key}`: {message}")]
    Shape {
        /// The config file.
        file: PathBuf,
        /// Dotted key path of the offending value.
        key: String,
        /// What was expected.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// Dotted key path of the offending value.
        key: String,
        /// What was expected.
        message: String,
    },
    /// Several values are not acceptable (file checks report every problem at once).
    #[error("{}", several(.0))]
    Several(Vec<ConfigError>),
}

fn several(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PKCS#11 token.
    pub pkcs11: Pkcs11Config,
    /// The SQLite store.
    pub store: StoreConfig,
    /// The mTLS signing API.
    #[serde(default)]
    pub api: ApiConfig,
    /// The webhook ingress.
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// The admin listener.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Process hardening.
    #[serde(default)]
    pub process: ProcessConfig,
    /// How many nodes share this config and database (`[cluster]`).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Signing API clients and their grants.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Optional signing engines.
    #[serde(default)]
    pub engines: EnginesConfig,
    /// The Ethereum JSON-RPC face (`[rpc]`).
    #[serde(default)]
    pub rpc: rpc::RpcConfig,
    /// What each client may sign for each wallet (`[policy]`, inline or `file = …`).
    #[serde(default)]
    pub policy: crate::policy::PolicySection,
    /// The policy compiled at load (not a key).
    #[serde(skip)]
    pub compiled_policy: std::sync::Arc<crate::policy::Policy>,
    /// Where this file was loaded from (not a key).
    #[serde(skip)]
    pub source: PathBuf,
    /// Deprecated forms found while loading, to be logged once logging is up.
    #[serde(skip)]
    pub deprecations: Vec<String>,
}

/// How RSA-OAEP-SHA256 decryption is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OaepMode {
    /// Try the token's native mechanism, fall back to raw RSA if it refuses the parameters.
    #[default]
    Auto,
    /// Only `CKM_RSA_PKCS_OAEP` with SHA-256 / MGF1-SHA-256.
    Native,
    /// `CKM_RSA_X_509` in the token, OAEP decoding on the host.
    Raw,
}

/// Who picks the AES-GCM IV when keyward seals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GcmIvMode {
    /// A random IV from the host; if the token refuses it, a zeroed buffer for the token
    /// to fill (decided once per process).
    #[default]
    Auto,
    /// A random IV from the host (SoftHSM2, Luna outside FIPS mode).
    Host,
    /// A zeroed buffer the token fills with its own IV (AWS CloudHSM and Google's
    /// kmsp11 require it).
    Token,
}

/// `[pkcs11]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// Token label to use.
    #[serde(default)]
    pub token_label: Option<String>,
    /// Token serial number to use (instead of, or as well as, the label).
    #[serde(default)]
    pub token_serial: Option<String>,
    /// Slot id to use (instead of, or as well as, label and serial): for tokens whose
    /// `C_GetTokenInfo` answer cannot be read (opencryptoki 3.8 writes its clock in a
    /// form cryptoki refuses), and for operators who address slots by number.
    #[serde(default)]
    pub slot_id: Option<u64>,
    /// The user PIN, from a file or an environment variable.
    pub pin: SecretRef,
    /// Logged-in sessions kept open.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// RSA-OAEP mode.
    #[serde(default)]
    pub rsa_oaep: OaepMode,
    /// Who picks the AES-GCM IV.
    #[serde(default)]
    pub gcm_iv: GcmIvMode,
    /// RSA modulus size for generated webhook keys.
    #[serde(default = "default_rsa_bits")]
    pub rsa_bits: u32,
    /// Prefix of every object label keyward creates (`<prefix>-rsa-N`, `<prefix>-wrap-N`).
    #[serde(default = "default_label_prefix")]
    pub label_prefix: String,
    /// Environment variables set before the module is loaded (e.g. `SOFTHSM2_CONF`).
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
}

/// `[store]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which database: `sqlite` (one file, one node; the default) or `postgres` (several
    /// nodes on one PostgreSQL).
    #[serde(default)]
    pub backend: StoreBackend,
    /// SQLite database file (`backend = "sqlite"`).
    #[serde(default)]
    pub path: PathBuf,
    /// SQLite read connections kept open.
    #[serde(default = "default_read_connections")]
    pub read_connections: usize,
    /// `[store.postgres]` (`backend = "postgres"`).
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
}

/// `store.backend`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// One SQLite file.
    #[default]
    Sqlite,
    /// One PostgreSQL database shared by every node.
    Postgres,
}

/// `[store.postgres]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// The connection URL (`postgresql://user:password@host:port/db`), from a file or the
    /// environment: it holds the password, so it is never written inline.
    pub url: SecretRef,
    /// CA bundle (PEM) the server's certificate must chain to. Set: TLS is required and
    /// the server's name is verified. Unset: only a loopback host or a Unix socket is
    /// accepted (no TLS).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Connections this node keeps for reads (the writer has its own).
    #[serde(default = "default_pg_pool_size")]
    pub pool_size: usize,
    /// Longest any statement may run (a lock held elsewhere included) before the request
    /// fails with `store_unavailable`.
    #[serde(default = "default_pg_statement_timeout", with = "duration")]
    pub statement_timeout: std::time::Duration,
    /// Longest a connection attempt may take.
    #[serde(default = "default_pg_connect_timeout", with = "duration")]
    pub connect_timeout: std::time::Duration,
}

/// `[api]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address.
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// CA bundle that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
    /// CRL files (PEM or DER).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Also accept TLS 1.2 (AEAD suites only).
    #[serde(default)]
    pub tls12: bool,
    /// Open connections in all (more are closed at accept, before TLS).
    #[serde(default = "default_api_max_connections")]
    pub max_connections: usize,
    /// Open connections from one source address.
    #[serde(default = "default_api_max_connections_per_source")]
    pub max_connections_per_source: usize,
    /// A CRL past its nextUpdate: `refuse` (default) or `warn`.
    #[serde(default)]
    pub crl_expired: crate::tls::CrlExpired,
    /// Accept client certificates with more than one URI SAN (the first is the identity).
    #[serde(default)]
    pub allow_multiple_uri_sans: bool,
}

impl ApiConfig {
    /// How client certificates are judged beyond chain and CRL membership.
    pub fn client_cert_policy(&self) -> crate::tls::ClientCertPolicy {
        crate::tls::ClientCertPolicy {
            crl_expired: self.crl_expired,
            allow_multiple_uri_sans: self.allow_multiple_uri_sans,
        }
    }
}

/// `[webhook]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Listen address.
    #[serde(default = "default_webhook_listen")]
    pub listen: SocketAddr,
    /// The URL path deliveries are posted to.
    #[serde(default = "default_webhook_path")]
    pub path: String,
    /// Server certificate chain (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// HMAC secrets; any one matching is enough (rotation).
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Source CIDRs allowed to deliver.
    #[serde(default = "default_allowed_sources")]
    pub allowed_sources: Vec<IpNet>,
    /// Proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Accepted `environmentId`s; empty = any.
    #[serde(default)]
    pub environment_ids: Vec<String>,
    /// How far in the future an event timestamp may be.
    #[serde(default = "default_future_skew", with = "duration")]
    pub max_future_skew: Duration,
    /// How old an event may be.
    #[serde(default = "default_event_age", with = "duration")]
    pub max_event_age: Duration,
    /// Largest accepted body, bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Requests in flight per source address.
    #[serde(default = "default_per_source_concurrency")]
    pub per_source_concurrency: usize,
    /// Sustained requests per second per source address (burst = 2x).
    #[serde(default = "default_per_source_rate")]
    pub per_source_rate: u32,
    /// Open connections in all (more are closed at accept, before TLS).
    #[serde(default = "default_webhook_max_connections")]
    pub max_connections: usize,
    /// Open connections from one source address (a trusted proxy counts as one source).
    #[serde(default = "default_webhook_max_connections_per_source")]
    pub max_connections_per_source: usize,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// Allow a non-loopback admin address.
    #[serde(default)]
    pub allow_non_loopback: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `keyward=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

/// `[process]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// Lock all memory (no secret page is ever swapped out); needs `LimitMEMLOCK`.
    #[serde(default)]
    pub mlock_all: bool,
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Nodes serving behind one balancer on one PostgreSQL. Each node holds
    /// `1 / nodes` of every `[[policy.rate_limit]]`, so the cluster together never
    /// admits more than the configured rate.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: default_nodes(),
        }
    }
}

fn default_nodes() -> u32 {
    1
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// URI SAN or subject CN of the client certificate.
    pub identity: String,
    /// Wallet selectors: a wallet id, `label:NAME`, `chain:evm|solana`, or `*`.
    pub wallets: Vec<String>,
    /// Operations granted.
    pub operations: Vec<Operation>,
}

/// A signing operation a client can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Operation {
    /// EIP-191 personal_sign.
    #[serde(rename = "evm.message")]
    EvmMessage,
    /// EIP-712 typed data.
    #[serde(rename = "evm.typed_data")]
    EvmTypedData,
    /// EVM transactions.
    #[serde(rename = "evm.transaction")]
    EvmTransaction,
    /// Raw 32-byte digests.
    #[serde(rename = "evm.hash")]
    EvmHash,
    /// EIP-7702 authorizations (hand the account's code to a contract; never implied by
    /// any other operation).
    #[serde(rename = "evm.authorization")]
    EvmAuthorization,
    /// ERC-4337 user operations (never implied by any other operation).
    #[serde(rename = "evm.user_operation")]
    EvmUserOperation,
    /// Solana off-chain messages.
    #[serde(rename = "solana.message")]
    SolanaMessage,
    /// Solana transactions.
    #[serde(rename = "solana.transaction")]
    SolanaTransaction,
    /// Forwarding `rpc.forward_methods` calls to the `[rpc] upstream` node through the
    /// JSON-RPC face (signs nothing; never implied by any other operation).
    #[serde(rename = "rpc.forward")]
    RpcForward,
}

impl Operation {
    /// The stable name used in config, audit and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::EvmMessage => "evm.message",
            Operation::EvmTypedData => "evm.typed_data",
            Operation::EvmTransaction => "evm.transaction",
            Operation::EvmHash => "evm.hash",
            Operation::EvmAuthorization => "evm.authorization",
            Operation::EvmUserOperation => "evm.user_operation",
            Operation::SolanaMessage => "solana.message",
            Operation::SolanaTransaction => "solana.transaction",
            Operation::RpcForward => "rpc.forward",
        }
    }
}

/// The vendor's published webhook source addresses (PROTOCOL.md).
pub const VENDOR_WEBHOOK_SOURCES: [&str; 5] = [
    "98.89.223.164/32",
    "44.220.108.175/32",
    "34.194.252.132/32",
    "34.195.215.43/32",
    "44.198.112.228/32",
];

fn default_pool_size() -> usize {
    4
}
fn default_rsa_bits() -> u32 {
    3072
}
fn default_label_prefix() -> String {
    "keyward".into()
}
fn default_read_connections() -> usize {
    4
}
fn default_pg_pool_size() -> usize {
    8
}
fn default_pg_statement_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}
fn default_pg_connect_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(3)
}
fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}
fn default_webhook_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8444))
}
fn default_webhook_path() -> String {
    "/webhooks/dynamic".into()
}
fn default_allowed_sources() -> Vec<IpNet> {
    VENDOR_WEBHOOK_SOURCES
        .iter()
        .map(|s| s.parse().expect("static CIDR"))
        .collect()
}
fn default_future_skew() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_event_age() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_body_limit() -> usize {
    64 * 1024
}
fn default_per_source_concurrency() -> usize {
    16
}
fn default_per_source_rate() -> u32 {
    200
}
fn default_api_max_connections() -> usize {
    4096
}
fn default_api_max_connections_per_source() -> usize {
    1024
}
fn default_webhook_max_connections() -> usize {
    1024
}
fn default_webhook_max_connections_per_source() -> usize {
    64
}
fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9100))
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_api_listen(),
            cert: None,
            key: None,
            client_ca: Vec::new(),
            crls: Vec::new(),
            tls12: false,
            max_connections: default_api_max_connections(),
            max_connections_per_source: default_api_max_connections_per_source(),
            crl_expired: Default::default(),
            allow_multiple_uri_sans: false,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            listen: default_webhook_listen(),
            path: default_webhook_path(),
            cert: None,
            key: None,
            secrets: Vec::new(),
            allowed_sources: default_allowed_sources(),
            trusted_proxies: Vec::new(),
            environment_ids: Vec::new(),
            max_future_skew: default_future_skew(),
            max_event_age: default_event_age(),
            body_limit: default_body_limit(),
            per_source_concurrency: default_per_source_concurrency(),
            per_source_rate: default_per_source_rate(),
            max_connections: default_webhook_max_connections(),
            max_connections_per_source: default_webhook_max_connections_per_source(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            allow_non_loopback: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_log_level(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.source = path.to_path_buf();
        // before resolving: an empty path would become the config file's directory
        if let Some((key, message)) = config.empty_path_problem() {
            return Err(config.invalid(&key, message));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.load_policy_file()?;
        config.validate()?;
        let mut compiled = config
            .policy
            .compile()
            .map_err(|e| config.policy_error(e))?;
        // evm.max_nonce_gap is checked against the upstream node's pending nonce
        compiled
            .apply_upstream(config.rpc.upstream.is_some())
            .map_err(|e| config.policy_error(e))?;
        config.compiled_policy = std::sync::Arc::new(compiled);
        config.deprecations = config.client_deprecations();
        Ok(config)
    }

    /// Reads and compiles a separate policy file (`keyward policy check`).
    pub fn load_policy(path: &Path) -> Result<crate::policy::Policy, ConfigError> {
        let section = read_policy_file(path)?;
        section.compile().map_err(|e| ConfigError::Invalid {
            file: path.to_path_buf(),
            key: e.key,
            message: e.message,
        })
    }

    /// Replaces inline rules with those of `policy.file`, if set.
    fn load_policy_file(&mut self) -> Result<(), ConfigError> {
        let Some(file) = self.policy.file.clone() else {
            return Ok(());
        };
        if !self.policy.rule.is_empty() || !self.policy.rate_limit.is_empty() {
            return Err(self.invalid(
                "policy.file",
                "rules are either inline ([[policy.rule]]) or in policy.file, not both",
            ));
        }
        let mut section = read_policy_file(&file).map_err(|e| match e {
            ConfigError::Read { file, source } => self.invalid(
                "policy.file",
                format!("{}: cannot read: {source}", file.display()),
            ),
            other => other,
        })?;
        section.file = Some(file);
        self.policy = section;
        Ok(())
    }

    fn policy_error(&self, e: crate::policy::PolicyError) -> ConfigError {
        match &self.policy.file {
            Some(f) => ConfigError::Invalid {
                file: f.clone(),
                key: e.key,
                message: e.message,
            },
            None => self.invalid(&format!("policy.{}", e.key), e.message),
        }
    }

    /// Parses TOML text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shape = |key: String, message: String| ConfigError::Shape {
            file: path.to_path_buf(),
            key,
            message,
        };
        let de =
            toml::Deserializer::parse(text).map_err(|e| shape("(syntax)".into(), e.to_string()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            shape(key, e.into_inner().message().to_string())
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            // an empty path stays empty, for validate() to refuse by its key
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.store.path);
        if let Some(pg) = &mut self.store.postgres {
            pg.url.resolve(base);
            if let Some(ca) = &mut pg.ca {
                fix(ca);
            }
        }
        if let Some(p) = &mut self.policy.file {
            fix(p);
        }
        fix(&mut self.pkcs11.module);
        self.pkcs11.pin.resolve(base);
        for p in [
            &mut self.api.cert,
            &mut self.api.key,
            &mut self.webhook.cert,
            &mut self.webhook.key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        self.api.client_ca.iter_mut().for_each(fix);
        self.api.crls.iter_mut().for_each(fix);
        for s in &mut self.webhook.secrets {
            s.resolve(base);
        }
        self.rpc.resolve_paths(base);
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.source.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The config as TOML, with every secret shown as `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn read_policy_file(path: &Path) -> Result<crate::policy::PolicySection, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    crate::policy::PolicySection::parse_file(&text).map_err(|e| ConfigError::Shape {
        file: path.to_path_buf(),
        key: e.key,
        message: e.message,
    })
}

#[cfg(test)]
mod tests;
