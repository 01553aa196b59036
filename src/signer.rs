//! Signing engines: one trait, and the engine chosen per wallet.
//!
//! Owns: turning "this wallet, this digest or message" into a signature, and proving the
//! signature belongs to the wallet before anyone sees it. Every result, whatever engine
//! made it, is checked against the wallet's stored address (EVM: the signature must
//! recover to it; Solana: it must verify strictly under it) — a wrong key, a blob moved to
//! another row or a corrupted engine answer fails closed as `custody_mismatch`.
//!
//! Engines: [`local`] (a complete key, unwrapped in the token for one call and dropped)
//! and, behind the cargo feature `dynamic-mpc` (not built here), the vendor's co-signing
//! round for `mpc` shares. Must never: return a signature that was not verified, keep an
//! unwrapped secret beyond the call, or put secret bytes in an error or a log line.

pub mod local;

use alloy_primitives::{Address, B256};

use crate::chains::evm::{self, RecoverableSig};
use crate::chains::solana;
use crate::custody::CustodyError;
use crate::hsm::{HsmError, Token};
use crate::store::wallets::{Chain, Engine as EngineKind, Status, Wallet};

/// Why a signature could not be produced. Never carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The wallet needs an engine this build does not have.
    #[error("{0}")]
    EngineUnavailable(String),
    /// The wallet was revoked; its material is gone.
    #[error("wallet {0} was revoked")]
    Revoked(String),
    /// The wallet is of another chain than the operation.
    #[error("wallet {wallet} is a {actual} wallet, not {wanted}")]
    WrongChain {
        /// Wallet id.
        wallet: String,
        /// Its chain.
        actual: &'static str,
        /// The chain the operation needs.
        wanted: &'static str,
    },
    /// The material does not belong to the wallet, or the result does not verify under
    /// the wallet's address. Fail closed.
    #[error("custody mismatch for wallet {wallet}: {reason}")]
    CustodyMismatch {
        /// Wallet id.
        wallet: String,
        /// What did not match (no secret bytes).
        reason: String,
    },
    /// The token failed.
    #[error("token: {0}")]
    Hsm(HsmError),
}

impl SignError {
    /// Stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            SignError::EngineUnavailable(_) => "engine_unavailable",
            SignError::Revoked(_) => "wallet_revoked",
            SignError::WrongChain { .. } => "wrong_chain",
            SignError::CustodyMismatch { .. } => "custody_mismatch",
            SignError::Hsm(e) if e.is_unavailable() => "hsm_unavailable",
            SignError::Hsm(_) => "hsm_error",
        }
    }

    fn mismatch(wallet: &Wallet, reason: impl Into<String>) -> SignError {
        SignError::CustodyMismatch {
            wallet: wallet.id.clone(),
            reason: reason.into(),
        }
    }

    fn custody(wallet: &Wallet, e: CustodyError) -> SignError {
        match e {
            CustodyError::Hsm(h) => SignError::Hsm(h),
            // Not an oracle: the client learns only that custody failed for this wallet.
            other => SignError::mismatch(wallet, other.to_string()),
        }
    }
}

/// A signing engine. Engines sign; [`Signer`] verifies what they return.
pub trait Engine: Send + Sync {
    /// Engine name (`local`, `mpc`), for logs and metrics.
    fn name(&self) -> &'static str;

    /// A secp256k1 signature of a 32-byte digest by an EVM wallet.
    fn sign_evm_digest(&self, wallet: &Wallet, digest: &B256) -> Result<RecoverableSig, SignError>;

    /// An Ed25519 signature of `message` by a Solana wallet.
    fn sign_solana(&self, wallet: &Wallet, message: &[u8]) -> Result<[u8; 64], SignError>;
}

/// Picks the engine for a wallet and verifies every result against the wallet.
pub struct Signer {
    local: local::LocalEngine,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

/// Message for wallets holding a vendor MPC share.
pub const MPC_UNAVAILABLE: &str = "this wallet holds a vendor MPC key share, which signs only together with the vendor's co-signing round; that engine (cargo feature `dynamic-mpc`) is not built into this keyward";

impl Signer {
    /// A signer using `token` to unwrap.
    pub fn new(token: Token) -> Signer {
        Signer {
            local: local::LocalEngine::new(token),
        }
    }

    /// The engine for `wallet`, after the checks every engine needs (active, chain).
    pub fn engine_for(&self, wallet: &Wallet, chain: Chain) -> Result<&dyn Engine, SignError> {
        if wallet.status == Status::Revoked {
            return Err(SignError::Revoked(wallet.id.clone()));
        }
        if wallet.chain != chain {
            return Err(SignError::WrongChain {
                wallet: wallet.id.clone(),
                actual: wallet.chain.as_str(),
                wanted: chain.as_str(),
            });
        }
        match wallet.engine {
            EngineKind::Local => Ok(&self.local),
            EngineKind::Mpc => Err(SignError::EngineUnavailable(MPC_UNAVAILABLE.into())),
        }
    }

    /// Signs an EVM digest and proves the signature recovers to the wallet's address.
    pub fn sign_evm_digest(
        &self,
        wallet: &Wallet,
        digest: &B256,
    ) -> Result<RecoverableSig, SignError> {
        let engine = self.engine_for(wallet, Chain::Evm)?;
        let expected = evm_address(wallet)?;
        let sig = engine.sign_evm_digest(wallet, digest)?;
        let recovered = evm::recover_address(digest, &sig).map_err(|e| {
            SignError::mismatch(wallet, format!("{} signature: {e}", engine.name()))
        })?;
        if recovered != expected {
            return Err(SignError::mismatch(
                wallet,
                format!(
                    "{} signature recovers to {recovered:#x}, not the wallet address",
                    engine.name()
                ),
            ));
        }
        Ok(sig)
    }

    /// Signs Solana bytes and proves the signature verifies under the wallet's key.
    pub fn sign_solana(&self, wallet: &Wallet, message: &[u8]) -> Result<[u8; 64], SignError> {
        let engine = self.engine_for(wallet, Chain::Solana)?;
        let pubkey = solana_pubkey(wallet)?;
        let sig = engine.sign_solana(wallet, message)?;
        let ok = ed25519_dalek::VerifyingKey::from_bytes(&pubkey)
            .map(|k| {
                k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_ok()
            })
            .unwrap_or(false);
        if !ok {
            return Err(SignError::mismatch(
                wallet,
                format!(
                    "{} signature does not verify under the wallet key",
                    engine.name()
                ),
            ));
        }
        Ok(sig)
    }
}

/// The wallet's stored EVM address.
pub fn evm_address(wallet: &Wallet) -> Result<Address, SignError> {
    let a = wallet
        .address
        .as_deref()
        .ok_or_else(|| SignError::mismatch(wallet, "wallet has no address"))?;
    evm::parse_address("address", a)
        .map_err(|_| SignError::mismatch(wallet, "stored address is not an EVM address"))
}

/// The wallet's stored Solana public key.
pub fn solana_pubkey(wallet: &Wallet) -> Result<solana::Pubkey, SignError> {
    let a = wallet
        .address
        .as_deref()
        .ok_or_else(|| SignError::mismatch(wallet, "wallet has no address"))?;
    solana::parse_pubkey(a)
        .map_err(|_| SignError::mismatch(wallet, "stored address is not a Solana public key"))
}
