//! [`KeywardSigner`]: an alloy signer whose key stays in keyward. Like alloy's Ledger
//! signer (and unlike its AWS/GCP signers), it sends keyward what is signed, never only a
//! hash, so keyward's policy decides on the message, the typed data or the transaction.

use alloy_consensus::SignableTransaction;
use alloy_dyn_abi::TypedData;
use alloy_network::TxSigner;
use alloy_primitives::{Address, ChainId, Signature, B256};
use alloy_signer::Signer;
use alloy_sol_types::{Eip712Domain, SolStruct};
use serde_json::{json, Map, Value};

use crate::client::{EvmSignature, KeywardClient};
use crate::error::Error;

/// An EVM wallet of keyward as an alloy [`Signer`] and [`TxSigner`]: use it directly, or
/// in `EthereumWallet::from(signer)` for a provider.
///
/// Errors come back as `alloy_signer::Error::Other` holding a [`crate::Error`]
/// ([`crate::Error::from_alloy`] gets it back, with keyward's `code`, `rule`, `auditId`).
#[derive(Debug, Clone)]
pub struct KeywardSigner {
    client: KeywardClient,
    wallet_id: String,
    address: Address,
    chain_id: Option<ChainId>,
}

impl KeywardSigner {
    /// The EVM wallet `wallet_id`, its address asked of keyward (`GET /v1/wallets/{id}`).
    pub async fn new(client: KeywardClient, wallet_id: &str) -> Result<KeywardSigner, Error> {
        let w = client.wallet(wallet_id).await?;
        if w.chain != "evm" {
            return Err(Error::Config(format!(
                "wallet {wallet_id} is a {} wallet, not an EVM one",
                w.chain
            )));
        }
        let address = w
            .address
            .as_deref()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Error::answer(format_args!("wallet {wallet_id}: no EVM address")))?;
        Ok(KeywardSigner {
            client,
            wallet_id: wallet_id.to_owned(),
            address,
            chain_id: None,
        })
    }

    /// keyward's id of the wallet.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }

    /// The client this signer uses.
    pub fn client(&self) -> &KeywardClient {
        &self.client
    }

    /// Checks an answer against what this client computed itself: the signature must be
    /// over `digest` and by this wallet (fail closed on a substituted or foreign signature).
    fn checked(&self, answer: EvmSignature, digest: B256) -> Result<Signature, Error> {
        if answer.digest != digest {
            return Err(Error::answer(format_args!(
                "keyward signed digest {} but this client computed {digest}",
                answer.digest
            )));
        }
        let sig = Signature::try_from(answer.signature.as_ref())
            .map_err(|e| Error::answer(format_args!("signature: {e}")))?;
        self.recovers(&sig, &digest)?;
        Ok(sig)
    }

    fn recovers(&self, sig: &Signature, digest: &B256) -> Result<(), Error> {
        match sig.recover_address_from_prehash(digest) {
            Ok(a) if a == self.address => Ok(()),
            Ok(a) => Err(Error::answer(format_args!(
                "the signature recovers to {a}, not to the wallet's {}",
                self.address
            ))),
            Err(e) => Err(Error::answer(format_args!(
                "signature does not recover: {e}"
            ))),
        }
    }

    async fn typed_data(&self, typed: &TypedData) -> Result<Signature, Error> {
        let digest = typed
            .eip712_signing_hash()
            .map_err(|e| Error::Config(format!("typed data: {e}")))?;
        let value = serde_json::to_value(typed).map_err(|e| Error::Config(e.to_string()))?;
        let answer = self
            .client
            .evm_typed_data(&self.wallet_id, &value, None)
            .await?;
        self.checked(answer, digest)
    }
}

fn other(e: Error) -> alloy_signer::Error {
    alloy_signer::Error::other(e)
}

#[async_trait::async_trait]
impl Signer for KeywardSigner {
    /// Signs a raw digest through `evm/hash`. keyward's policy cannot see what a digest
    /// stands for, so the route needs an explicit `evm.hash` grant and is refused
    /// (`not_authorized`) without one. alloy's `sign_message`, `sign_typed_data` and
    /// transaction signing never come here.
    async fn sign_hash(&self, hash: &B256) -> alloy_signer::Result<Signature> {
        let answer = self
            .client
            .evm_hash(&self.wallet_id, hash, None)
            .await
            .map_err(other)?;
        self.checked(answer, *hash).map_err(other)
    }

    /// EIP-191 through `evm/message` (the bytes themselves go to keyward).
    async fn sign_message(&self, message: &[u8]) -> alloy_signer::Result<Signature> {
        let digest = alloy_primitives::eip191_hash_message(message);
        let answer = self
            .client
            .evm_message(&self.wallet_id, message, None)
            .await
            .map_err(other)?;
        self.checked(answer, digest).map_err(other)
    }

    /// EIP-712 through `evm/typed-data`: the struct is sent as `eth_signTypedData_v4` JSON.
    async fn sign_typed_data<T: SolStruct + Send + Sync>(
        &self,
        payload: &T,
        domain: &Eip712Domain,
    ) -> alloy_signer::Result<Signature> {
        let typed = crate::typed_data::from_sol_struct(payload, domain).map_err(other)?;
        // what alloy itself would sign: the JSON must hash to it
        let digest = payload.eip712_signing_hash(domain);
        let sig = self.typed_data(&typed).await.map_err(other)?;
        self.recovers(&sig, &digest).map_err(other)?;
        Ok(sig)
    }

    /// EIP-712 through `evm/typed-data`.
    async fn sign_dynamic_typed_data(
        &self,
        payload: &TypedData,
    ) -> alloy_signer::Result<Signature> {
        self.typed_data(payload).await.map_err(other)
    }

    fn address(&self) -> Address {
        self.address
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

#[async_trait::async_trait]
impl TxSigner<Signature> for KeywardSigner {
    fn address(&self) -> Address {
        self.address
    }

    /// Sends the transaction's fields to `evm/transaction` (keyward decodes and decides
    /// on them), then checks that keyward signed exactly this transaction.
    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy_signer::Result<Signature> {
        // as alloy's local signer: the signer's chain id for a transaction without one
        if let Some(chain_id) = self.chain_id {
            if !tx.set_chain_id_checked(chain_id) {
                return Err(alloy_signer::Error::TransactionChainIdMismatch {
                    signer: chain_id,
                    tx: tx.chain_id().unwrap_or_default(),
                });
            }
        }
        let fields = transaction_fields(tx).map_err(other)?;
        let answer = self
            .client
            .evm_transaction(&self.wallet_id, &fields, None)
            .await
            .map_err(other)?;
        let digest = tx.signature_hash();
        if answer.digest != digest {
            return Err(other(Error::answer(format_args!(
                "keyward signed transaction digest {} but this transaction's is {digest}",
                answer.digest
            ))));
        }
        let s = &answer.signature;
        let sig = Signature::new(s.r, s.s, s.y_parity.to::<u8>() == 1);
        self.recovers(&sig, &digest).map_err(other)?;
        Ok(sig)
    }
}

/// `eth_signTransaction` fields of `tx` (the types keyward signs: legacy, 2930, 1559).
/// Blob (4844) and set-code (7702) transactions are refused here: their extra fields have
/// no place on the route, and signing the rest would sign something else.
fn transaction_fields(tx: &dyn SignableTransaction<Signature>) -> Result<Value, Error> {
    let ty = tx.ty();
    if ty > 2 {
        return Err(Error::Config(format!(
            "transaction type {ty}: keyward signs legacy (0), EIP-2930 (1) and EIP-1559 (2) transactions"
        )));
    }
    let q = |v: u128| format!("{v:#x}");
    let mut m = Map::new();
    m.insert("type".into(), json!(format!("{ty:#x}")));
    if let Some(c) = tx.chain_id() {
        m.insert("chainId".into(), json!(format!("{c:#x}")));
    }
    m.insert("nonce".into(), json!(format!("{:#x}", tx.nonce())));
    if let Some(to) = tx.to() {
        m.insert("to".into(), json!(to));
    }
    m.insert("value".into(), json!(tx.value()));
    m.insert("input".into(), json!(tx.input()));
    m.insert("gas".into(), json!(format!("{:#x}", tx.gas_limit())));
    if ty == 2 {
        m.insert("maxFeePerGas".into(), json!(q(tx.max_fee_per_gas())));
        m.insert(
            "maxPriorityFeePerGas".into(),
            json!(q(tx.max_priority_fee_per_gas().unwrap_or_default())),
        );
    } else {
        m.insert(
            "gasPrice".into(),
            json!(q(tx.gas_price().unwrap_or_default())),
        );
    }
    if ty != 0 {
        m.insert(
            "accessList".into(),
            json!(tx.access_list().cloned().unwrap_or_default()),
        );
    }
    Ok(Value::Object(m))
}
