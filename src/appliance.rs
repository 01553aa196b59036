//! The core both faces share: the config, the token and the store, opened together.
//!
//! Faces receive an `Arc<Appliance>`; they never reach into each other.

use std::sync::{Arc, RwLock};

use secrecy::SecretString;

use crate::config::{ApiConfig, Config, SecretRef, WebhookConfig};
use crate::hsm::{HsmError, KeyKind, Token, TokenSettings};
use crate::store::{state, Store, StoreError};
use crate::tls::{ReloadableTls, TlsError};

/// Opening the appliance failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A secret could not be read.
    #[error("{0}")]
    Secret(#[from] crate::config::secret::SecretError),
    /// The token.
    #[error("token: {0}")]
    Hsm(#[from] HsmError),
    /// The database.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A refused reload (the previous state stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Certificates, keys, client CAs or CRLs.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The token's keys could not be re-read.
    #[error("token keys could not be re-read: {0}")]
    Token(HsmError),
}

/// Config, token and store.
pub struct Appliance {
    config: RwLock<Arc<Config>>,
    tls_api: std::sync::OnceLock<Arc<ReloadableTls>>,
    tls_webhook: std::sync::OnceLock<Arc<ReloadableTls>>,
    /// The PKCS#11 token.
    pub token: Token,
    /// The database.
    pub store: Store,
}

impl std::fmt::Debug for Appliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appliance").finish_non_exhaustive()
    }
}

/// What `keyward init` did.
#[derive(Debug, Default)]
pub struct InitReport {
    /// Labels generated now.
    pub created: Vec<String>,
    /// Labels that already existed.
    pub existing: Vec<String>,
}

/// Reads the PIN and opens the token.
pub fn open_token(config: &Config) -> Result<Token, OpenError> {
    let pin: SecretString = config.pkcs11.pin.read()?;
    Ok(Token::open(TokenSettings::from(&config.pkcs11), pin)?)
}

/// Creates the RSA key pair and the wrapping key when absent. Idempotent.
pub fn init_keys(token: &Token) -> Result<InitReport, HsmError> {
    let mut report = InitReport::default();
    for kind in [KeyKind::Rsa, KeyKind::Wrap] {
        let existing = match kind {
            KeyKind::Rsa => token.rsa_keys()?,
            KeyKind::Wrap => token.wrap_keys()?,
        };
        if existing.is_empty() {
            report.created.push(token.generate(kind)?);
        } else {
            report
                .existing
                .extend(existing.into_iter().map(|k| k.label));
        }
    }
    Ok(report)
}

impl Appliance {
    /// Opens the token (keys must exist) and the store.
    pub fn open(config: Config) -> Result<Appliance, OpenError> {
        let token = open_token(&config)?;
        token.require_keys()?;
        let store = Store::from_config(&config.store)?;
        Ok(Appliance {
            config: RwLock::new(Arc::new(config)),
            tls_api: Default::default(),
            tls_webhook: Default::default(),
            token,
            store,
        })
    }

    /// The config in force (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs a new config (after it was validated).
    pub fn replace_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Installs TLS material already built from this config (by `server::preflight`),
    /// so start-up does not read the files a second time.
    pub fn install_tls(&self, api: Arc<ReloadableTls>, webhook: Arc<ReloadableTls>) {
        let _ = self.tls_api.set(api);
        let _ = self.tls_webhook.set(webhook);
    }

    /// The signing API's TLS material (built on first use, replaced by [`Self::reload`]).
    pub fn api_tls(&self) -> Result<Arc<ReloadableTls>, TlsError> {
        if let Some(t) = self.tls_api.get() {
            return Ok(t.clone());
        }
        let tls = Arc::new(api_tls_for(&self.config().api)?);
        Ok(self.tls_api.get_or_init(|| tls).clone())
    }

    /// The TLS material each face serves, by face name, once installed (for the expiry
    /// metrics: nothing is built or read here).
    pub fn installed_tls(&self) -> [(&'static str, Option<Arc<ReloadableTls>>); 2] {
        [
            ("api", self.tls_api.get().cloned()),
            ("webhook", self.tls_webhook.get().cloned()),
        ]
    }

    /// The webhook face's TLS material.
    pub fn webhook_tls(&self) -> Result<Arc<ReloadableTls>, TlsError> {
        if let Some(t) = self.tls_webhook.get() {
            return Ok(t.clone());
        }
        let tls = Arc::new(webhook_tls_for(&self.config().webhook)?);
        Ok(self.tls_webhook.get_or_init(|| tls).clone())
    }

    /// SIGHUP: installs `config` (already validated) after re-reading the token's keys
    /// and reloading TLS certificates, client CAs and CRLs from it. If any of them fails,
    /// nothing changes and the reload is refused.
    pub fn reload(&self, config: Config) -> Result<(), ReloadError> {
        let api = &config.api;
        let webhook = &config.webhook;
        // check every file first, then swap, so a bad one cannot leave half a reload
        if self.tls_api.get().is_some() && api.cert.is_some() && api.key.is_some() {
            api_tls_for(api)?;
        }
        if self.tls_webhook.get().is_some() && webhook.cert.is_some() && webhook.key.is_some() {
            webhook_tls_for(webhook)?;
        }
        // keys rotated by `keyward keys rotate-*` in another process; `refresh` swaps
        // only on success, so a token that cannot be read leaves the old keys in force
        self.token.refresh().map_err(ReloadError::Token)?;
        if let (Some(t), Some(cert), Some(key)) =
            (self.tls_api.get(), api.cert.as_deref(), api.key.as_deref())
        {
            t.reload(
                cert,
                key,
                &api.client_ca,
                &api.crls,
                api.client_cert_policy(),
            )?;
        }
        if let (Some(t), Some(cert), Some(key)) = (
            self.tls_webhook.get(),
            webhook.cert.as_deref(),
            webhook.key.as_deref(),
        ) {
            t.reload(cert, key, &[], &[], Default::default())?;
        }
        self.replace_config(config);
        Ok(())
    }

    /// The webhook HMAC secrets, read fresh from their files or variables.
    pub fn webhook_secrets(&self) -> Result<Vec<SecretString>, crate::config::secret::SecretError> {
        self.config()
            .webhook
            .secrets
            .iter()
            .map(SecretRef::read)
            .collect()
    }

    /// The lock reason, when the appliance is locked.
    pub fn lock_reason(&self) -> Result<Option<String>, StoreError> {
        self.store.read(|c| state::get(c, LOCK_KEY))
    }

    /// [`Appliance::lock_reason`] off the async workers.
    pub async fn lock_reason_async(&self) -> Result<Option<String>, StoreError> {
        self.store.read_async(|c| state::get(c, LOCK_KEY)).await
    }
}

/// Appliance-state key of the lock failsafe.
pub const LOCK_KEY: &str = "lock";

/// The signing API's TLS material as `api` describes it (certificate and key, client CAs,
/// CRLs, TLS 1.2, the client-certificate policy): one builder for start-up, the first
/// use and the reload check.
pub(crate) fn api_tls_for(api: &ApiConfig) -> Result<ReloadableTls, TlsError> {
    let (cert, key) = api
        .cert
        .as_deref()
        .zip(api.key.as_deref())
        .ok_or(TlsError::Missing("api.cert and api.key are required"))?;
    ReloadableTls::api(
        cert,
        key,
        &api.client_ca,
        &api.crls,
        api.tls12,
        api.client_cert_policy(),
    )
}

/// The webhook face's TLS material as `webhook` describes it.
pub(crate) fn webhook_tls_for(webhook: &WebhookConfig) -> Result<ReloadableTls, TlsError> {
    let (cert, key) =
        webhook
            .cert
            .as_deref()
            .zip(webhook.key.as_deref())
            .ok_or(TlsError::Missing(
                "webhook.cert and webhook.key are required",
            ))?;
    ReloadableTls::webhook(cert, key)
}
