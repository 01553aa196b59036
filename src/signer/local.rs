//! The `local` engine: a complete key, unwrapped in the token for one call, used on the
//! host (`k256`, `ed25519-dalek`), and dropped.
//!
//! Why on the host: in-token secp256k1/Ed25519 costs 10-20x more than the host libraries
//! on the token we measured, and keyward never stores per-wallet objects in the token.
//! The unwrap (AES-GCM with the session copy of the wrapping key) takes ~10-30 µs, so it
//! runs on the calling thread rather than hopping to a blocking pool.
//!
//! Before signing, the key's own address/public key is derived and compared with the
//! wallet's: a key that does not belong to the wallet is never used. Must never: keep the
//! secret or the key object past the call (both zeroize on drop), or log them.

use alloy_primitives::B256;
use ed25519_dalek::Signer as _;
use subtle::ConstantTimeEq;

use super::{evm_address, solana_pubkey, Engine, EngineFuture, EvmRequest, SignError, SolanaKind};
use crate::chains::evm::{self, RecoverableSig};
use crate::chains::solana;
use crate::custody::{self, Binding, Purpose, SecretBytes};
use crate::hsm::Token;
use crate::store::wallets::Wallet;
use crate::wallet_key;

/// Signs with complete keys held wrapped in the store.
pub struct LocalEngine {
    token: Token,
}

impl LocalEngine {
    /// An engine unwrapping with `token`.
    pub fn new(token: Token) -> LocalEngine {
        LocalEngine { token }
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

    /// A secp256k1 signature of a 32-byte digest by an EVM wallet.
    pub fn sign_evm_digest(
        &self,
        wallet: &Wallet,
        digest: &B256,
    ) -> Result<RecoverableSig, SignError> {
        let expected = evm_address(wallet)?;
        let secret = self.unwrap_secret(wallet)?;
        let key = wallet_key::evm_key(&secret)
            .map_err(|_| SignError::mismatch(wallet, "unwrapped material is not an EVM key"))?;
        drop(secret);
        if evm::address_of(key.verifying_key()) != expected {
            return Err(SignError::mismatch(
                wallet,
                "the unwrapped key derives another address",
            ));
        }
        Ok(evm::sign_digest(&key, digest))
        // `key` (k256 SigningKey) zeroizes its scalar on drop
    }

    /// An Ed25519 signature of `message` by a Solana wallet.
    pub fn sign_solana(&self, wallet: &Wallet, message: &[u8]) -> Result<[u8; 64], SignError> {
        let expected = solana_pubkey(wallet)?;
        let secret = self.unwrap_secret(wallet)?;
        let key = wallet_key::solana_key(&secret).map_err(|_| {
            SignError::mismatch(wallet, "unwrapped material is not an Ed25519 seed")
        })?;
        drop(secret);
        // public keys are not secret, but a constant-time compare costs nothing here
        if !bool::from(solana::pubkey_of(&key).ct_eq(&expected)) {
            return Err(SignError::mismatch(
                wallet,
                "the unwrapped key derives another public key",
            ));
        }
        Ok(key.sign(message).to_bytes())
        // `key` (ed25519-dalek SigningKey, feature `zeroize`) wipes itself on drop
    }
}

/// Signing with a complete key takes microseconds: it runs on the calling task.
impl Engine for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    fn sign_evm<'a>(
        &'a self,
        wallet: &'a Wallet,
        request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig> {
        Box::pin(std::future::ready(
            self.sign_evm_digest(wallet, &request.digest),
        ))
    }

    fn sign_solana<'a>(
        &'a self,
        wallet: &'a Wallet,
        _kind: SolanaKind,
        message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]> {
        Box::pin(std::future::ready(LocalEngine::sign_solana(
            self, wallet, message,
        )))
    }
}
