//! The core both faces share: the config, the token and the store, opened together.
//!
//! Faces receive an `Arc<Appliance>`; they never reach into each other.

use std::sync::{Arc, RwLock};

use secrecy::SecretString;

use crate::config::{Config, SecretRef};
use crate::hsm::{HsmError, KeyKind, Token, TokenSettings};
use crate::store::{state, Store, StoreError};

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

/// Config, token and store.
pub struct Appliance {
    config: RwLock<Arc<Config>>,
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
        let store = Store::open(&config.store.path, config.store.read_connections)?;
        Ok(Appliance {
            config: RwLock::new(Arc::new(config)),
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
}

/// Appliance-state key of the lock failsafe.
pub const LOCK_KEY: &str = "lock";
