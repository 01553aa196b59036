//! [`KeywardSolanaSigner`]: a Solana wallet of keyward as a `solana_signer::Signer`. The
//! message bytes go to keyward as a transaction (`solana/transaction`), so its policy
//! decodes the instructions it signs; what the route refuses (a wallet that is not a
//! required signer, a message keyward cannot decode) is refused with keyward's error.

use std::future::Future;
use std::sync::OnceLock;

use base64::Engine as _;
use ed25519_dalek::Verifier as _;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_signer::{Signer, SignerError};

use crate::client::KeywardClient;
use crate::error::Error;

/// A Solana wallet of keyward. `solana_signer::Signer` is synchronous: its methods wait for
/// keyward on a small runtime of this crate's own, so they may be called from any thread
/// (in async code, prefer [`KeywardSolanaSigner::sign_message_bytes`]).
#[derive(Debug, Clone)]
pub struct KeywardSolanaSigner {
    client: KeywardClient,
    /// The synchronous `Signer` methods' connections, opened and driven on this crate's
    /// runtime: the caller's runtime may be blocked in that very call.
    bridge: KeywardClient,
    wallet_id: String,
    pubkey: [u8; 32],
}

impl KeywardSolanaSigner {
    /// The Solana wallet `wallet_id`, its public key asked of keyward.
    pub async fn new(client: KeywardClient, wallet_id: &str) -> Result<Self, Error> {
        let w = client.wallet(wallet_id).await?;
        if w.chain != "solana" {
            return Err(Error::Config(format!(
                "wallet {wallet_id} is an {} wallet, not a Solana one",
                w.chain
            )));
        }
        let pubkey = w
            .address
            .as_deref()
            .and_then(|a| bs58::decode(a).into_vec().ok())
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| Error::answer(format_args!("wallet {wallet_id}: no Solana address")))?;
        Ok(KeywardSolanaSigner {
            bridge: client.detached(),
            client,
            wallet_id: wallet_id.to_owned(),
            pubkey,
        })
    }

    /// keyward's id of the wallet.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }

    /// Signs a serialized transaction message (legacy or v0): sent to keyward as an
    /// unsigned transaction; the answer is checked to be this wallet's signature over
    /// exactly these bytes.
    pub async fn sign_message_bytes(&self, message: &[u8]) -> Result<Signature, Error> {
        self.sign_with(&self.client, message).await
    }

    async fn sign_with(&self, client: &KeywardClient, message: &[u8]) -> Result<Signature, Error> {
        let tx = unsigned_transaction(message)?;
        let answer = client
            .solana_transaction(&self.wallet_id, &tx, None)
            .await?;
        let signed = base64::engine::general_purpose::STANDARD
            .decode(&answer.transaction)
            .map_err(|e| Error::answer(format_args!("signed transaction: {e}")))?;
        let sig = bs58::decode(&answer.signature)
            .into_vec()
            .ok()
            .and_then(|v| <[u8; 64]>::try_from(v).ok())
            .ok_or_else(|| Error::answer("signature is not 64 bytes of base58"))?;
        // the signed transaction is ours with the signature in the wallet's slot
        let header = tx.len() - message.len();
        let slot = shortvec_len(signers(message)?) + 64 * answer.signer_index;
        if signed.len() != tx.len()
            || signed[header..] != *message
            || signed.get(slot..slot + 64) != Some(&sig[..])
        {
            return Err(Error::answer(
                "the signed transaction is not the one sent, or the signature is not in the wallet's slot",
            ));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.pubkey)
            .map_err(|e| Error::answer(format_args!("public key: {e}")))?;
        key.verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| Error::answer("the signature does not verify for the wallet's key"))?;
        Ok(Signature::from(sig))
    }
}

impl Signer for KeywardSolanaSigner {
    fn try_pubkey(&self) -> Result<Pubkey, SignerError> {
        Ok(Pubkey::new_from_array(self.pubkey))
    }

    fn try_sign_message(&self, message: &[u8]) -> Result<Signature, SignerError> {
        let this = self.clone();
        let message = message.to_vec();
        block_on(async move { this.sign_with(&this.bridge, &message).await }).map_err(signer_error)
    }

    fn is_interactive(&self) -> bool {
        false
    }
}

/// keyward's refusals as `SignerError::Custom` (code, rule and message in the text), a
/// connection failure as `SignerError::Connection`.
fn signer_error(e: Error) -> SignerError {
    match &e {
        Error::Api(a) => SignerError::Custom(match &a.rule {
            Some(rule) => format!("keyward {} (rule {rule}): {}", a.code, a.message),
            None => format!("keyward {}: {}", a.code, a.message),
        }),
        Error::Connect(_) | Error::Tls(_) | Error::Timeout(..) | Error::Http(_) => {
            SignerError::Connection(e.to_string())
        }
        Error::Config(m) => SignerError::InvalidInput(m.clone()),
        _ => SignerError::Protocol(e.to_string()),
    }
}

/// The number of required signatures a serialized message declares.
fn signers(message: &[u8]) -> Result<usize, Error> {
    let first = *message
        .first()
        .ok_or_else(|| Error::Config("empty Solana message".into()))?;
    let n = if first & 0x80 != 0 {
        // versioned: the header follows the version byte
        *message
            .get(1)
            .ok_or_else(|| Error::Config("truncated Solana message".into()))?
    } else {
        first
    };
    if n == 0 {
        return Err(Error::Config(
            "Solana message with no required signer".into(),
        ));
    }
    Ok(n as usize)
}

fn shortvec_len(n: usize) -> usize {
    if n < 0x80 {
        1
    } else {
        2
    }
}

/// `message` as a transaction with all signatures zero (keyward fills the wallet's).
fn unsigned_transaction(message: &[u8]) -> Result<Vec<u8>, Error> {
    let n = signers(message)?;
    let mut tx = Vec::with_capacity(2 + 64 * n + message.len());
    // compact-u16 (n ≤ 255: at most two bytes)
    if n < 0x80 {
        tx.push(n as u8);
    } else {
        tx.push((n as u8 & 0x7f) | 0x80);
        tx.push((n >> 7) as u8);
    }
    tx.resize(tx.len() + 64 * n, 0);
    tx.extend_from_slice(message);
    Ok(tx)
}

/// Runs `f` to completion on this crate's runtime and waits for it, from any thread.
fn block_on<F>(f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // never dropped: a runtime cannot be dropped inside another runtime's context
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keyward-solana-signer")
            .enable_all()
            .build()
            .expect("the signer's runtime starts")
    });
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the signer's task ends with an answer")
}
