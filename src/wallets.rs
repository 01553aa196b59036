//! Operator wallet operations: create (a key generated here), import (a key the operator
//! brings), list and show. Used by the CLI and the tests.
//!
//! Owns: the rule that a key is wrapped the moment it exists and stored together with
//! its audit record in one transaction. Must never: print, log or store a secret
//! unwrapped, or accept a key that does not derive a usable address.

use crate::appliance::Appliance;
use crate::custody::{self, Binding, CustodyError, Purpose, SecretBytes};
use crate::hsm::{HsmError, Token};
use crate::store::audit::{self, AuditEvent};
use crate::store::wallets::{self as rows, Chain, Engine, Source, Status, Wallet};
use crate::store::{StoreError, WriteCtx};
use crate::wallet_key::{self, KeyError};

/// Why a wallet operation failed. Never carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The key is not usable for the chain.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// Wrapping failed.
    #[error("wrapping the key: {0}")]
    Custody(#[from] CustodyError),
    /// The token failed.
    #[error("token: {0}")]
    Hsm(#[from] HsmError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// An active wallet already holds this key.
    #[error("an active {chain} wallet with address {address} already exists ({id})")]
    Duplicate {
        /// Chain.
        chain: &'static str,
        /// Address.
        address: String,
        /// The existing wallet.
        id: String,
    },
}

/// Generates a key from the OS CSPRNG, wraps it at once and stores it (source
/// `generated`, engine `local`), audited as the operator.
pub fn create(app: &Appliance, chain: Chain, label: Option<&str>) -> Result<Wallet, WalletError> {
    let (secret, address) = wallet_key::generate(chain);
    store_new(app, chain, secret, address, label, Source::Generated)
}

/// Stores an operator-supplied key (source `imported`), wrapped at once, audited.
pub fn import(
    app: &Appliance,
    chain: Chain,
    secret: SecretBytes,
    label: Option<&str>,
) -> Result<Wallet, WalletError> {
    let address = wallet_key::address_of_secret(chain, secret.expose())?;
    store_new(app, chain, secret, address, label, Source::Imported)
}

/// Every wallet, ordered by creation.
pub fn list(app: &Appliance) -> Result<Vec<Wallet>, WalletError> {
    Ok(app.store.read(rows::list)?)
}

/// One wallet.
pub fn get(app: &Appliance, id: &str) -> Result<Option<Wallet>, WalletError> {
    let id = id.to_owned();
    Ok(app.store.read(move |c| rows::get(c, &id))?)
}

/// A new `local` wallet row for a complete key: the key wrapped at once under wrapping
/// key `version`, bound to a fresh wallet id. Nothing is stored yet (see [`record_new`]).
pub fn wrap_local(
    token: &Token,
    chain: Chain,
    secret: &SecretBytes,
    address: String,
    label: Option<&str>,
    source: Source,
    version: u32,
) -> Result<Wallet, CustodyError> {
    let id = uuid::Uuid::new_v4().to_string();
    let wrapped = custody::wrap(
        token,
        &Binding {
            wallet_id: &id,
            chain: chain.as_str(),
            purpose: Purpose::Share,
        },
        version,
        secret.expose(),
    )?;
    // derived once here so no signature has to (the signer verifies against it); the
    // caller has already derived the address from this key, so it is a valid one
    let public_key = match chain {
        Chain::Evm => crate::signer::ecdsa::public_key_of_secret(secret.expose())
            .ok()
            .map(|pk| pk.to_vec()),
        Chain::Solana => None,
    };
    let now = crate::store::now_rfc3339();
    Ok(Wallet {
        id,
        chain,
        address: Some(address),
        label: label.map(str::to_owned),
        source,
        engine: Engine::Local,
        status: Status::Active,
        key_version: Some(version),
        wrapped_share: Some(wrapped),
        wrapped_api_key: None,
        environment_id: None,
        user_id: None,
        delegated_at_ms: None,
        revoked_at_ms: None,
        created_at: now.clone(),
        updated_at: now,
        public_key,
    })
}

/// Stores a row made by [`wrap_local`] with its audit record, inside the caller's write.
pub fn record_new(ctx: &mut WriteCtx<'_>, row: &Wallet) -> Result<(), StoreError> {
    rows::upsert(ctx.conn, row)?;
    let action = match row.source {
        Source::Imported => "wallet.import",
        _ => "wallet.create",
    };
    audit::append(
        ctx,
        AuditEvent {
            actor: "operator".into(),
            action: action.into(),
            wallet_id: Some(row.id.clone()),
            chain: Some(row.chain.as_str().into()),
            decision: "allowed".into(),
            result: "ok".into(),
            detail: Some(serde_json::json!({
                "address": row.address,
                "label": row.label,
                "source": row.source.as_str(),
                "engine": row.engine.as_str(),
                "keyVersion": row.key_version,
            })),
            ..Default::default()
        },
    )?;
    Ok(())
}

fn store_new(
    app: &Appliance,
    chain: Chain,
    secret: SecretBytes,
    address: String,
    label: Option<&str>,
    source: Source,
) -> Result<Wallet, WalletError> {
    let found = app
        .store
        .read(|c| rows::active_by_address(c, chain, &address))?;
    if let Some(existing) = found {
        return Err(WalletError::Duplicate {
            chain: chain.as_str(),
            address,
            id: existing.id,
        });
    }
    let version = app.token.current_wrap_version()?;
    let wallet = wrap_local(&app.token, chain, &secret, address, label, source, version)?;
    drop(secret);
    let row = wallet.clone();
    // the check above spares the wrapping; this one, inside the write, decides
    app.store
        .write_blocking(move |ctx| record_new(ctx, &row))
        .map_err(|e| match e {
            StoreError::AddressHeld {
                chain,
                address,
                holder,
            } => WalletError::Duplicate {
                chain,
                address,
                id: holder,
            },
            other => WalletError::Store(other),
        })?;
    tracing::info!(wallet = %wallet.id, chain = chain.as_str(), source = source.as_str(), "wallet stored");
    Ok(wallet)
}
