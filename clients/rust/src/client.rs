//! The typed client of keyward's REST signing routes.

use std::sync::Arc;

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::Error;
use crate::transport::{decode, Timeouts, Tls, Transport};

/// A client of one keyward signing API (cheap to clone: clones share their connections).
#[derive(Clone)]
pub struct KeywardClient {
    t: Arc<Transport>,
}

impl std::fmt::Debug for KeywardClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywardClient").finish_non_exhaustive()
    }
}

/// A wallet as `GET /v1/wallets/{id}` describes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WalletInfo {
    /// keyward's wallet id.
    pub id: String,
    /// `evm` or `solana`.
    pub chain: String,
    /// `0x…` (EVM) or base58 (Solana).
    pub address: Option<String>,
    /// The wallet's label.
    #[serde(default)]
    pub label: Option<String>,
    /// `active`, `revoked`, …
    #[serde(default)]
    pub status: Option<String>,
    /// The operations this client may perform on it.
    #[serde(default)]
    pub operations: Vec<String>,
}

/// An EVM signature over a message, typed data or digest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EvmSignature {
    /// 65 bytes r‖s‖v, v = 27/28.
    pub signature: Bytes,
    /// What was signed (EIP-191 hash, EIP-712 hash, the digest).
    pub digest: B256,
    /// The wallet's address.
    pub address: Address,
    /// The audit record.
    pub audit_id: Option<String>,
}

/// The signature part of a signed transaction.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RsvSignature {
    /// r.
    pub r: U256,
    /// s (low).
    pub s: U256,
    /// 0 or 1.
    pub y_parity: alloy_primitives::U8,
}

/// A signed EVM transaction.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EvmTransactionSignature {
    /// The signed transaction, ready for `eth_sendRawTransaction`.
    pub raw_transaction: Bytes,
    /// Its hash.
    pub hash: B256,
    /// The signing hash.
    pub digest: B256,
    /// r, s, yParity.
    pub signature: RsvSignature,
    /// The wallet's address.
    pub address: Address,
    /// The audit record.
    pub audit_id: Option<String>,
}

/// A Solana transaction signed by a wallet.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SolanaTransactionSignature {
    /// The wallet's signature (base58).
    pub signature: String,
    /// The transaction with the signature in place (base64).
    pub transaction: String,
    /// The wallet's position among the required signers.
    pub signer_index: usize,
    /// The wallet's public key (base58).
    pub public_key: String,
    /// The audit record.
    pub audit_id: Option<String>,
}

impl KeywardClient {
    /// A client of the signing API at `url` (`https://host:port`), default timeouts.
    pub fn new(url: &str, tls: Tls) -> Result<KeywardClient, Error> {
        KeywardClient::with_timeouts(url, tls, Timeouts::default())
    }

    /// A client with chosen timeouts.
    pub fn with_timeouts(url: &str, tls: Tls, timeouts: Timeouts) -> Result<KeywardClient, Error> {
        Ok(KeywardClient {
            t: Arc::new(Transport::new(url, &tls, timeouts)?),
        })
    }

    /// A client with the same settings and connections of its own.
    pub(crate) fn detached(&self) -> KeywardClient {
        KeywardClient {
            t: Arc::new(self.t.detached()),
        }
    }

    /// Any GET route (`/v1/whoami`, …) as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        decode(self.t.send(hyper::Method::GET, path, None, None).await?)
    }

    /// Any POST route as JSON. `idempotency_key` is sent as the `Idempotency-Key` header
    /// (and makes a request that may have reached keyward safe to resend once).
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, Error> {
        self.post_as(path, body, idempotency_key).await
    }

    async fn post_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Config(e.to_string()))?;
        decode(
            self.t
                .send(hyper::Method::POST, path, Some(bytes), idempotency_key)
                .await?,
        )
    }

    /// `GET /v1/wallets/{id}`.
    pub async fn wallet(&self, wallet_id: &str) -> Result<WalletInfo, Error> {
        decode(
            self.t
                .send(hyper::Method::GET, &wallet_path(wallet_id, "")?, None, None)
                .await?,
        )
    }

    /// `evm/message`: EIP-191 over `message` (sent as 0x hex: the exact bytes).
    pub async fn evm_message(
        &self,
        wallet_id: &str,
        message: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<EvmSignature, Error> {
        let body = json!({ "message": format!("0x{}", alloy_primitives::hex::encode(message)) });
        self.post_as(
            &wallet_path(wallet_id, "/evm/message")?,
            &body,
            idempotency_key,
        )
        .await
    }

    /// `evm/typed-data`: EIP-712 over `typed_data` (`eth_signTypedData_v4` JSON).
    pub async fn evm_typed_data(
        &self,
        wallet_id: &str,
        typed_data: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<EvmSignature, Error> {
        let body = json!({ "typedData": typed_data });
        self.post_as(
            &wallet_path(wallet_id, "/evm/typed-data")?,
            &body,
            idempotency_key,
        )
        .await
    }

    /// `evm/transaction`: `transaction` holds `eth_signTransaction` fields.
    pub async fn evm_transaction(
        &self,
        wallet_id: &str,
        transaction: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<EvmTransactionSignature, Error> {
        let body = json!({ "transaction": transaction });
        self.post_as(
            &wallet_path(wallet_id, "/evm/transaction")?,
            &body,
            idempotency_key,
        )
        .await
    }

    /// `evm/hash`: a raw 32-byte digest. keyward's policy sees nothing but the digest, so
    /// this needs an explicit `evm.hash` grant; prefer the message, typed-data and
    /// transaction routes.
    pub async fn evm_hash(
        &self,
        wallet_id: &str,
        digest: &B256,
        idempotency_key: Option<&str>,
    ) -> Result<EvmSignature, Error> {
        let body = json!({ "digest": digest });
        self.post_as(
            &wallet_path(wallet_id, "/evm/hash")?,
            &body,
            idempotency_key,
        )
        .await
    }

    /// `solana/transaction`: `transaction` is a wire-format transaction (legacy or v0).
    pub async fn solana_transaction(
        &self,
        wallet_id: &str,
        transaction: &[u8],
        idempotency_key: Option<&str>,
    ) -> Result<SolanaTransactionSignature, Error> {
        use base64::Engine as _;
        let body =
            json!({ "transaction": base64::engine::general_purpose::STANDARD.encode(transaction) });
        self.post_as(
            &wallet_path(wallet_id, "/solana/transaction")?,
            &body,
            idempotency_key,
        )
        .await
    }
}

/// `/v1/wallets/{id}{route}`; an id that would change the path is refused here.
fn wallet_path(wallet_id: &str, route: &str) -> Result<String, Error> {
    if wallet_id.is_empty()
        || !wallet_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || wallet_id == "."
        || wallet_id == ".."
    {
        return Err(Error::Config(format!(
            "wallet id {wallet_id:?}: letters, digits, '-', '_' and '.' only"
        )));
    }
    Ok(format!("/v1/wallets/{wallet_id}{route}"))
}

#[cfg(test)]
mod tests {
    use super::wallet_path;

    #[test]
    fn wallet_ids_cannot_change_the_path() {
        assert_eq!(
            wallet_path("5f0c-ab_1.x", "/evm/message").unwrap(),
            "/v1/wallets/5f0c-ab_1.x/evm/message"
        );
        for bad in [
            "", ".", "..", "../admin", "a/b", "a?b", "a#b", "a%2f", "a b",
        ] {
            assert!(
                matches!(wallet_path(bad, ""), Err(crate::Error::Config(_))),
                "{bad:?}"
            );
        }
    }
}
