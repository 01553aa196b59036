//! The `local` engine: a complete key, unwrapped in the token for one call, used on the
//! host (libsecp256k1 through [`super::ecdsa`], `ed25519-dalek`), and dropped.
//!
//! Why on the host: in-token secp256k1/Ed25519 costs 10-20x more than the host libraries
//! on the token we measured, and keyward never stores per-wallet objects in the token.
//! The unwrap (AES-GCM with the session copy of the wrapping key) takes ~10-30 µs, so it
//! runs on the calling thread rather than hopping to a blocking pool.
//!
//! No public key is derived from the secret here (that was a third of the engine's cost):
//! the [`super::Signer`] proves every signature against the wallet before it leaves —
//! EVM: it verifies under the wallet's stored public key (whose address must be the
//! wallet's) or recovers to the wallet's address; Solana: `verify_strict` under the
//! address. A key that does not belong to the wallet therefore yields a signature that
//! fails that check and is never returned (`custody_mismatch`). Must never: keep the
//! secret or the key object past the call (both are wiped after use), or log them.

use alloy_primitives::B256;
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};

use super::{ecdsa, solana_pubkey, Engine, EngineFuture, EvmRequest, SignError, SolanaKind};
use crate::chains::evm::RecoverableSig;
use crate::custody::{self, Binding, Purpose, SecretBytes};
use crate::hsm::Token;
use crate::store::wallets::Wallet;

/// Signs with complete keys held wrapped in the store.
pub struct LocalEngine {
    token: Token,
}

impl LocalEngine {
    /// An engine unwrapping with `token`.
    pub fn new(token: Token) -> LocalEngine {
        LocalEngine { token }
    }

    /// Unwraps on the calling thread if a token session is free, else `None`.
    fn try_unwrap_secret(&self, wallet: &Wallet) -> Option<Result<SecretBytes, SignError>> {
        let blob = match wallet.wrapped_share.as_deref() {
            Some(b) => b,
            None => {
                return Some(Err(SignError::mismatch(
                    wallet,
                    "wallet has no wrapped key",
                )))
            }
        };
        let binding = Binding {
            wallet_id: &wallet.id,
            chain: wallet.chain.as_str(),
            purpose: Purpose::Share,
        };
        let started = std::time::Instant::now();
        let secret = custody::try_unwrap(&self.token, &binding, blob)?
            .map_err(|e| SignError::custody(wallet, e));
        crate::metrics::get()
            .token_seconds
            .with_label_values(&["unwrap"])
            .observe(started.elapsed().as_secs_f64());
        Some(secret)
    }

    fn unwrap_secret(&self, wallet: &Wallet) -> Result<SecretBytes, SignError> {
        let blob = wallet
            .wrapped_share
            .as_deref()
            .ok_or_else(|| SignError::mismatch(wallet, "wallet has no wrapped key"))?;
        let binding = Binding {
            wallet_id: &wallet.id,
            chain: wallet.chain.as_str(),
            purpose: Purpose::Share,
        };
        let started = std::time::Instant::now();
        let secret =
            custody::unwrap(&self.token, &binding, blob).map_err(|e| SignError::custody(wallet, e));
        crate::metrics::get()
            .token_seconds
            .with_label_values(&["unwrap"])
            .observe(started.elapsed().as_secs_f64());
        secret
    }

    /// A secp256k1 signature of a 32-byte digest by an EVM wallet (unverified: see the
    /// module comment).
    pub fn sign_evm_digest(
        &self,
        wallet: &Wallet,
        digest: &B256,
    ) -> Result<RecoverableSig, SignError> {
        let secret = self.unwrap_secret(wallet)?;
        Self::ecdsa_with(wallet, secret, digest)
    }

    fn ecdsa_with(
        wallet: &Wallet,
        secret: SecretBytes,
        digest: &B256,
    ) -> Result<RecoverableSig, SignError> {
        let sig = ecdsa::sign_prehash(secret.expose(), digest).map_err(|e| match e {
            ecdsa::EcdsaError::InvalidKey => {
                SignError::mismatch(wallet, "unwrapped material is not an EVM key")
            }
            other => SignError::mismatch(wallet, other.to_string()),
        });
        drop(secret); // zeroizes
        sig
    }

    /// An Ed25519 signature of `message` by a Solana wallet (unverified: see the module
    /// comment).
    pub fn sign_solana(&self, wallet: &Wallet, message: &[u8]) -> Result<[u8; 64], SignError> {
        let secret = self.unwrap_secret(wallet)?;
        Self::ed25519_with(wallet, secret, message)
    }

    fn ed25519_with(
        wallet: &Wallet,
        secret: SecretBytes,
        message: &[u8],
    ) -> Result<[u8; 64], SignError> {
        // The public key is the wallet's address; decompressing it costs a fraction of
        // deriving it from the seed (the scalar multiplication `SigningKey::from_bytes`
        // does). `raw_sign` trusts the pair: with a seed that is not the key's, the result
        // would be a signature under the wrong key, which `verify_strict` under the
        // address refuses, so it is never returned (returning such signatures next to
        // good ones is what would leak the key).
        let pubkey = solana_pubkey(wallet)?;
        let public = ed25519_dalek::VerifyingKey::from_bytes(&pubkey).map_err(|_| {
            SignError::mismatch(wallet, "stored address is not an Ed25519 public key")
        })?;
        let seed: &[u8; 32] = secret.expose().try_into().map_err(|_| {
            SignError::mismatch(wallet, "unwrapped material is not an Ed25519 seed")
        })?;
        // SHA-512 of the seed, as `SigningKey` would; wiped on drop (feature `zeroize`)
        let expanded = ExpandedSecretKey::from(seed);
        drop(secret); // zeroizes
        Ok(raw_sign::<sha2::Sha512>(&expanded, message, &public).to_bytes())
    }
}

/// Signing with a complete key takes microseconds on a local token: it runs on the
/// calling task when a token session is free and the token's unwraps are fast. When every
/// session is checked out, or the token is slow (a network HSM: see
/// `Token::try_open_sealed`), the call happens on tokio's blocking pool, never on an
/// async worker: a worker blocked there would stall every other connection it serves.
impl Engine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    fn sign_evm<'a>(
        &'a self,
        wallet: &'a Wallet,
        request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig> {
        let digest = request.digest;
        Box::pin(async move {
            let secret = match self.try_unwrap_secret(wallet) {
                Some(s) => s?,
                None => self.unwrap_off_worker(wallet).await?,
            };
            Self::ecdsa_with(wallet, secret, &digest)
        })
    }

    fn sign_solana<'a>(
        &'a self,
        wallet: &'a Wallet,
        _kind: SolanaKind,
        message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]> {
        Box::pin(async move {
            let secret = match self.try_unwrap_secret(wallet) {
                Some(s) => s?,
                None => self.unwrap_off_worker(wallet).await?,
            };
            Self::ed25519_with(wallet, secret, message)
        })
    }
}

impl LocalEngine {
    async fn unwrap_off_worker(&self, wallet: &Wallet) -> Result<SecretBytes, SignError> {
        let engine = LocalEngine::new(self.token.clone());
        let owned = wallet.clone();
        tokio::task::spawn_blocking(move || engine.unwrap_secret(&owned))
            .await
            .map_err(|_| {
                SignError::Hsm(crate::hsm::HsmError::Invalid(
                    "the unwrap task was cancelled".into(),
                ))
            })?
    }
}
