//! Signing engines: one trait, and the engine chosen per wallet.
//!
//! Owns: turning "this wallet, this digest or message" into a signature, and proving the
//! signature belongs to the wallet before anyone sees it. Every result, whatever engine
//! made it, is checked against the wallet's stored address (EVM: the signature must
//! recover to it; Solana: it must verify strictly under it) — a wrong key, a blob moved to
//! another row or a corrupted engine answer fails closed as `custody_mismatch`.
//!
//! Engines: [`local`] (a complete key, unwrapped in the token for one call and dropped)
//! and, behind the cargo feature `dynamic-mpc`, `dynamic` — the vendor's co-signing round
//! for `mpc` shares, enabled by `[engines.dynamic]`. A co-signer's answer that does not
//! verify is `cosigner_bad_signature` (502), never returned. Must never: return a
//! signature that was not verified, keep an unwrapped secret beyond the call, or put
//! secret bytes in an error or a log line.

#[cfg(feature = "dynamic-mpc")]
pub mod dynamic;
pub mod ecdsa;
pub mod local;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use alloy_consensus::SignableTransaction;
use alloy_primitives::{Address, B256};

use crate::chains::evm::{self, EvmTx, RecoverableSig, UnsignedTx};
use crate::chains::solana;
use crate::config::{EnginesConfig, Operation};
use crate::custody::CustodyError;
use crate::hsm::{HsmError, Token};
use crate::store::wallets::{Chain, Engine as EngineKind, Status, Wallet};
use crate::store::Store;

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
    /// The vendor's co-signer could not be reached or did not finish in time.
    #[error("vendor co-signer unavailable: {0}")]
    CosignerUnavailable(String),
    /// The vendor's co-signer refused the request (its message, no secrets).
    #[error("vendor co-signer refused: {0}")]
    CosignerRejected(String),
    /// The co-signed signature does not verify under the wallet's address/public key.
    #[error("vendor co-signer returned a signature for wallet {wallet} that does not verify: {reason}; nothing was returned")]
    CosignerBadSignature {
        /// Wallet id.
        wallet: String,
        /// What did not match (no secret bytes).
        reason: String,
    },
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
            SignError::CosignerUnavailable(_) => "cosigner_unavailable",
            SignError::CosignerRejected(_) => "cosigner_rejected",
            SignError::CosignerBadSignature { .. } => "cosigner_bad_signature",
        }
    }

    fn mismatch(wallet: &Wallet, reason: impl Into<String>) -> SignError {
        SignError::CustodyMismatch {
            wallet: wallet.id.clone(),
            reason: reason.into(),
        }
    }

    /// A result that failed verification: a co-signer's (`mpc` wallet) or our own.
    fn unverified(wallet: &Wallet, reason: String) -> SignError {
        match wallet.engine {
            EngineKind::Mpc => SignError::CosignerBadSignature {
                wallet: wallet.id.clone(),
                reason,
            },
            EngineKind::Local => SignError::mismatch(wallet, reason),
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

/// What an EVM signature is for. Every kind carries the 32-byte digest that is signed;
/// a co-signing engine also needs what the vendor's API is shown for each operation.
#[derive(Debug, Clone)]
pub enum EvmKind {
    /// EIP-191 `personal_sign` of these message bytes (before the prefix).
    Message(Vec<u8>),
    /// An EIP-712 typed-data digest.
    TypedData,
    /// A transaction; its unsigned signing encoding (what `signature_hash` hashes).
    Transaction(Vec<u8>),
    /// A raw 32-byte digest.
    Digest,
}

/// One EVM signing request.
#[derive(Debug, Clone)]
pub struct EvmRequest {
    /// The digest that the signature must recover under.
    pub digest: B256,
    /// What it is.
    pub kind: EvmKind,
}

impl EvmRequest {
    /// The request for API operation `op` over `digest`: `message` is the parsed
    /// `evm.message` bytes, `tx` the parsed `evm.transaction`.
    pub fn new(
        op: Operation,
        digest: B256,
        message: Option<Vec<u8>>,
        tx: Option<&UnsignedTx>,
    ) -> EvmRequest {
        let kind = match (op, message, tx) {
            (_, _, Some(tx)) => EvmKind::Transaction(signing_encoding(tx)),
            (Operation::EvmMessage, Some(m), None) => EvmKind::Message(m),
            (Operation::EvmTypedData, _, None) => EvmKind::TypedData,
            _ => EvmKind::Digest,
        };
        EvmRequest { digest, kind }
    }

    /// An EIP-191 message request: `digest` must be its `personal_sign` digest.
    pub fn message(digest: B256, message: Vec<u8>) -> EvmRequest {
        EvmRequest {
            digest,
            kind: EvmKind::Message(message),
        }
    }

    /// A raw-digest request.
    pub fn digest(digest: B256) -> EvmRequest {
        EvmRequest {
            digest,
            kind: EvmKind::Digest,
        }
    }
}

/// The bytes whose keccak256 is a transaction's `signature_hash`.
pub fn signing_encoding(tx: &UnsignedTx) -> Vec<u8> {
    let mut out = Vec::new();
    match tx.inner() {
        EvmTx::Legacy(t) => t.encode_for_signing(&mut out),
        EvmTx::Eip2930(t) => t.encode_for_signing(&mut out),
        EvmTx::Eip1559(t) => t.encode_for_signing(&mut out),
        EvmTx::Eip7702(t) => t.encode_for_signing(&mut out),
    }
    out
}

/// What Solana bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolanaKind {
    /// An off-chain message (raw bytes or the off-chain envelope).
    Message,
    /// The serialized message of a transaction.
    Transaction,
}

/// The future an engine answers with.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SignError>> + Send + 'a>>;

/// A signing engine. Engines sign; [`Signer`] verifies what they return.
pub trait Engine: Send + Sync {
    /// Engine name (`local`, `dynamic`), for logs and metrics.
    fn name(&self) -> &'static str;

    /// A secp256k1 signature of `request.digest` by an EVM wallet.
    fn sign_evm<'a>(
        &'a self,
        wallet: &'a Wallet,
        request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig>;

    /// An Ed25519 signature of `message` by a Solana wallet.
    fn sign_solana<'a>(
        &'a self,
        wallet: &'a Wallet,
        kind: SolanaKind,
        message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]>;
}

/// Picks the engine for a wallet and verifies every result against the wallet.
pub struct Signer {
    local: local::LocalEngine,
    mpc: Option<Arc<dyn Engine>>,
    /// Where public keys learnt from verified signatures are recorded (see
    /// [`Signer::with_store`]); `None`: not recorded.
    store: Option<Store>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("mpc", &self.mpc.as_ref().map(|e| e.name()))
            .finish_non_exhaustive()
    }
}

/// Message for wallets holding a vendor MPC share.
pub const MPC_UNAVAILABLE: &str = "this wallet holds a vendor MPC key share, which signs only together with the vendor's co-signing round; that engine (cargo feature `dynamic-mpc`) is not built into this keyward";

/// Message for wallets holding a vendor MPC share when the engine is built but not
/// configured.
pub const MPC_NOT_CONFIGURED: &str = "this wallet holds a vendor MPC key share, which signs only together with the vendor's co-signing round; that engine (cargo feature `dynamic-mpc`) is built in but not configured (`[engines.dynamic]`)";

impl Signer {
    /// A signer using `token` to unwrap, with the local engine only.
    pub fn new(token: Token) -> Signer {
        Signer {
            local: local::LocalEngine::new(token),
            mpc: None,
            store: None,
        }
    }

    /// A signer with the engines `engines` configures (and this build has).
    pub fn with_engines(token: Token, engines: &EnginesConfig) -> Signer {
        let mpc: Option<Arc<dyn Engine>> = match &engines.dynamic {
            None => None,
            #[cfg(feature = "dynamic-mpc")]
            Some(config) => {
                tracing::info!(
                    api = %config.api_base_url,
                    relay = config.relay_base_url.as_deref().unwrap_or("(SDK default)"),
                    "vendor MPC co-signing engine enabled for mpc wallets"
                );
                Some(Arc::new(dynamic::DynamicEngine::new(
                    token.clone(),
                    config.clone(),
                )))
            }
            #[cfg(not(feature = "dynamic-mpc"))]
            Some(_) => {
                tracing::warn!(
                    "[engines.dynamic] is configured, but this keyward was built without the cargo feature `dynamic-mpc`; mpc wallets answer engine_unavailable"
                );
                None
            }
        };
        Signer {
            local: local::LocalEngine::new(token),
            mpc,
            store: None,
        }
    }

    /// Records in `store` the public key of each EVM `local` wallet that has none yet
    /// (rows from before schema version 4 and delegated wallets), taken from its first
    /// signature that recovers to the wallet's address: from then on its signatures are
    /// verified under the stored key, and no request, then or later, derives it from the
    /// secret. The write goes through the store's writer in the background and is
    /// conditional on the row still holding the same wrapped key
    /// ([`crate::store::wallets::fill_public_key`]); if it fails, the next signature
    /// tries again.
    pub fn with_store(mut self, store: Store) -> Signer {
        self.store = Some(store);
        self
    }

    /// Serves `mpc` wallets with `engine` (the co-signing engine, or a test double of its
    /// network round). The verification below applies to it unchanged.
    #[doc(hidden)]
    pub fn with_mpc_engine(mut self, engine: Arc<dyn Engine>) -> Signer {
        self.mpc = Some(engine);
        self
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
            EngineKind::Mpc => match &self.mpc {
                Some(e) => Ok(e.as_ref()),
                None if cfg!(feature = "dynamic-mpc") => {
                    Err(SignError::EngineUnavailable(MPC_NOT_CONFIGURED.into()))
                }
                None => Err(SignError::EngineUnavailable(MPC_UNAVAILABLE.into())),
            },
        }
    }

    /// Signs an EVM digest with the local engine (complete keys only) and proves the
    /// signature recovers to the wallet's address.
    pub fn sign_evm_digest(
        &self,
        wallet: &Wallet,
        digest: &B256,
    ) -> Result<RecoverableSig, SignError> {
        self.engine_for(wallet, Chain::Evm)?;
        let expected = evm_address(wallet)?;
        let sig = self.local.sign_evm_digest(wallet, digest)?;
        verify_evm(wallet, "local", digest, &sig, expected)?;
        Ok(sig)
    }

    /// Signs Solana bytes with the local engine (complete keys only) and proves the
    /// signature verifies under the wallet's key.
    pub fn sign_solana(&self, wallet: &Wallet, message: &[u8]) -> Result<[u8; 64], SignError> {
        self.engine_for(wallet, Chain::Solana)?;
        let pubkey = solana_pubkey(wallet)?;
        let sig = self.local.sign_solana(wallet, message)?;
        verify_solana(wallet, "local", message, &sig, &pubkey)?;
        Ok(sig)
    }

    /// Signs an EVM request with the wallet's engine and proves the signature recovers to
    /// the wallet's address.
    pub async fn sign_evm(
        &self,
        wallet: &Wallet,
        request: &EvmRequest,
    ) -> Result<RecoverableSig, SignError> {
        let engine = self.engine_for(wallet, Chain::Evm)?;
        let expected = evm_address(wallet)?;
        let sig = engine.sign_evm(wallet, request).await?;
        let proof = verify_evm(wallet, engine.name(), &request.digest, &sig, expected)?;
        if let Proof::Recovered(public_key) = proof {
            self.remember_public_key(wallet, &public_key);
        }
        Ok(sig)
    }

    fn remember_public_key(&self, wallet: &Wallet, public_key: &secp256k1::PublicKey) {
        let (Some(store), Some(wrapped), EngineKind::Local, None) = (
            &self.store,
            &wallet.wrapped_share,
            wallet.engine,
            &wallet.public_key,
        ) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = store.clone();
        let id = wallet.id.clone();
        let wrapped = wrapped.clone();
        let public_key = public_key.serialize_uncompressed();
        runtime.spawn(async move {
            let filled = store
                .write(move |ctx| {
                    crate::store::wallets::fill_public_key(ctx.conn, &id, &wrapped, &public_key)
                })
                .await;
            if let Err(e) = filled {
                tracing::warn!(error = %e, "could not record a wallet's public key; the next signature retries");
            }
        });
    }

    /// Signs Solana bytes with the wallet's engine and proves the signature verifies
    /// under the wallet's key.
    pub async fn sign_solana_bytes(
        &self,
        wallet: &Wallet,
        kind: SolanaKind,
        message: &[u8],
    ) -> Result<[u8; 64], SignError> {
        let engine = self.engine_for(wallet, Chain::Solana)?;
        let pubkey = solana_pubkey(wallet)?;
        let sig = engine.sign_solana(wallet, kind, message).await?;
        verify_solana(wallet, engine.name(), message, &sig, &pubkey)?;
        Ok(sig)
    }
}

/// How an EVM signature was proven to be the wallet's.
enum Proof {
    /// `(r, s)` verified under the wallet's stored public key.
    StoredKey,
    /// Recovered to the wallet's address; this is the public key it recovered to.
    Recovered(secp256k1::PublicKey),
}

/// Proves `sig` is the wallet's, on libsecp256k1.
///
/// A `local` wallet with a stored public key: the key's address must be the wallet's
/// (so a row whose key and address disagree fails closed), then `(r, s)` must verify
/// under it — cheaper than recovery and needing nothing derived from the secret. The
/// y-parity is then libsecp256k1's own recovery id from the same signing call, which
/// never reaches `v` when it cannot be expressed ([`ecdsa::sign_prehash`]). Every other
/// wallet (no stored key, or an `mpc` co-signer whose `v` is someone else's) is proven by
/// recovery, which checks `v` too: the signature must recover to the wallet's address.
fn verify_evm(
    wallet: &Wallet,
    engine: &str,
    digest: &B256,
    sig: &RecoverableSig,
    expected: Address,
) -> Result<Proof, SignError> {
    if let (EngineKind::Local, Some(stored)) = (wallet.engine, wallet.public_key.as_deref()) {
        let public_key = ecdsa::parse_public_key(stored).map_err(|_| {
            SignError::unverified(
                wallet,
                "the stored public key is not a secp256k1 key".into(),
            )
        })?;
        if ecdsa::address_of(&public_key) != expected {
            return Err(SignError::unverified(
                wallet,
                "the stored public key does not derive the wallet address".into(),
            ));
        }
        ecdsa::verify(digest, sig, &public_key).map_err(|_| {
            SignError::unverified(
                wallet,
                format!("{engine} signature does not verify under the wallet's public key"),
            )
        })?;
        return Ok(Proof::StoredKey);
    }
    let public_key = ecdsa::recover(digest, sig)
        .map_err(|e| SignError::unverified(wallet, format!("{engine} signature: {e}")))?;
    let recovered = ecdsa::address_of(&public_key);
    if recovered != expected {
        return Err(SignError::unverified(
            wallet,
            format!("{engine} signature recovers to {recovered:#x}, not the wallet address"),
        ));
    }
    Ok(Proof::Recovered(public_key))
}

fn verify_solana(
    wallet: &Wallet,
    engine: &str,
    message: &[u8],
    sig: &[u8; 64],
    pubkey: &solana::Pubkey,
) -> Result<(), SignError> {
    let ok = ed25519_dalek::VerifyingKey::from_bytes(pubkey)
        .map(|k| {
            k.verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
                .is_ok()
        })
        .unwrap_or(false);
    if !ok {
        return Err(SignError::unverified(
            wallet,
            format!("{engine} signature does not verify under the wallet key"),
        ));
    }
    Ok(())
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
