//! The `dynamic` engine (cargo feature `dynamic-mpc`): signs for `mpc` wallets — vendor
//! Delegated Access shares — by running the vendor's co-signing round through its
//! official Rust SDK (`dynamic-waas-sdk` / `-svm` 0.0.4).
//!
//! Per request: unwrap the share and the per-wallet API key in the token, open a
//! `DelegatedWalletClient` (the API key is its `x-dyn-wallet-api-key` credential), run the
//! round, drop both. [`super::Signer`] then verifies the answer against the wallet's
//! address / public key exactly as for the local engine; a mismatch is
//! `cosigner_bad_signature` and is never returned.
//!
//! What the vendor is shown, per operation (the same parameters the SDK's own chain
//! clients pass to `run_sign_ecdsa` / `run_sign_ed25519`):
//! - `evm.message`: the EIP-191-prefixed bytes as `0x` hex, `isFormatted = false`; the
//!   relay signs keccak256 of them.
//! - `evm.typed_data`: the EIP-712 digest as bare hex, `isFormatted = true`.
//! - `evm.transaction`: the unsigned signing encoding as `0x` hex, `isFormatted = false`;
//!   the relay signs its keccak256 (`signature_hash`).
//! - `solana.message` / `solana.transaction`: the bytes (SDK: hex), `isFormatted = false`.
//! - `evm.hash`: not offered by the SDK; refused (`engine_unavailable`) before any network.
//!
//! The EVM chain crate (`dynamic-waas-sdk-evm`) is not used: its methods take alloy 0.8
//! types (keyward is on alloy 1.x) and are thin wrappers over `run_sign_ecdsa`, which
//! keyward calls with the same arguments.
//!
//! Bounds: the SDK 0.0.4 builds its own HTTP client without timeouts, so keyward checks
//! that the API host accepts a TCP connection within `connect_timeout` and bounds the
//! whole round with `request_timeout`; either failing is `cosigner_unavailable`. A round
//! abandoned at the timeout may leave the SDK's blocking MPC task running until the
//! relay gives up; its result is discarded.
//!
//! Secrets: keyward's copies of the share and the API key are `Zeroizing` and wiped when
//! the call ends. The SDK copies both into ordinary `String`s for the duration of the
//! round (its `ServerKeyShare`, `SecretShare` and `Auth` types); those are freed, not
//! wiped, when the round ends — a limit of the SDK, stated here so nobody assumes
//! otherwise. Error messages from the SDK or the vendor are scrubbed of both values and
//! truncated before they reach a log line or a client. Must never: format the share,
//! the API key, or the SDK types holding them with `Debug`.

use dynamic_waas_sdk::mpc_config::EVM_DERIVATION_PATH;
use dynamic_waas_sdk::{
    run_sign_ecdsa, run_sign_ed25519, DelegatedWalletClient, DelegatedWalletClientOpts,
    EcdsaSignature, Error as SdkError, ServerKeyShare, SignOpts, SignOptsEd25519, WalletProperties,
};
use dynamic_waas_sdk_svm::DelegatedSvmWalletClient;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Engine, EngineFuture, EvmKind, EvmRequest, SignError, SolanaKind};
use crate::chains::evm::RecoverableSig;
use crate::config::DynamicEngineConfig;
use crate::custody::{self, Binding, Purpose, SecretBytes};
use crate::hsm::Token;
use crate::store::wallets::{Chain, Wallet};

/// Longest vendor message passed on to a client.
const MAX_MESSAGE: usize = 300;

/// Signs for `mpc` wallets through the vendor's co-signing round.
pub struct DynamicEngine {
    token: Token,
    config: DynamicEngineConfig,
}

impl std::fmt::Debug for DynamicEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicEngine")
            .field("api_base_url", &self.config.api_base_url)
            .finish_non_exhaustive()
    }
}

/// The unwrapped material for one round. Both fields wipe on drop; no `Debug`.
struct Material {
    key_share_id: Zeroizing<String>,
    secret_share: Zeroizing<String>,
    api_key: Zeroizing<String>,
}

impl Material {
    /// The SDK's share type. Its `String`s are the SDK's copies (see the module doc).
    fn server_key_share(&self) -> ServerKeyShare {
        ServerKeyShare::new(self.key_share_id.as_str(), self.secret_share.as_str())
    }

    /// `text` with both secrets removed and cut to [`MAX_MESSAGE`] characters.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for secret in [self.secret_share.as_str(), self.api_key.as_str()] {
            if secret.len() >= 4 {
                t = t.replace(secret, "<redacted>");
            }
        }
        let mut out: String = t.chars().take(MAX_MESSAGE).collect();
        if t.chars().count() > MAX_MESSAGE {
            out.push('…');
        }
        // the cut may have split a secret: fall back to no text at all
        if [self.secret_share.as_str(), self.api_key.as_str()]
            .iter()
            .any(|s| s.len() >= 8 && contains_prefix_of(&out, s))
        {
            return "(message withheld)".into();
        }
        out
    }
}

/// True when `text` ends with a prefix (≥ 8 characters) of `secret`.
fn contains_prefix_of(text: &str, secret: &str) -> bool {
    let t = text.trim_end_matches('…');
    (8..secret.len()).any(|n| secret.is_char_boundary(n) && t.ends_with(&secret[..n]))
}

/// The share document the vendor delivers (PROTOCOL.md: camelCase or snake_case keys).
#[derive(Deserialize)]
struct ShareDoc {
    #[serde(rename = "secretShare", alias = "secret_share")]
    secret_share: Option<String>,
    #[serde(rename = "keyShareId", alias = "key_share_id", default)]
    key_share_id: Option<String>,
}

impl DynamicEngine {
    /// An engine unwrapping with `token`, talking to the vendor as `config` says.
    pub fn new(token: Token, config: DynamicEngineConfig) -> DynamicEngine {
        DynamicEngine { token, config }
    }

    fn unwrap(&self, wallet: &Wallet, purpose: Purpose) -> Result<SecretBytes, SignError> {
        let blob = match purpose {
            Purpose::Share => wallet.wrapped_share.as_deref(),
            Purpose::ApiKey => wallet.wrapped_api_key.as_deref(),
        }
        .ok_or_else(|| {
            SignError::mismatch(
                wallet,
                match purpose {
                    Purpose::Share => "wallet has no wrapped share",
                    Purpose::ApiKey => "wallet has no wrapped API key",
                },
            )
        })?;
        let binding = Binding {
            wallet_id: &wallet.id,
            chain: wallet.chain.as_str(),
            purpose,
        };
        custody::unwrap(&self.token, &binding, blob).map_err(|e| SignError::custody(wallet, e))
    }

    fn material(&self, wallet: &Wallet) -> Result<Material, SignError> {
        let share = self.unwrap(wallet, Purpose::Share)?;
        let doc: ShareDoc = serde_json::from_slice(share.expose()).map_err(|_| {
            // the serde message could quote share bytes: not used
            SignError::mismatch(wallet, "the unwrapped share is not the vendor's share JSON")
        })?;
        drop(share);
        let secret_share = Zeroizing::new(doc.secret_share.unwrap_or_default());
        if secret_share.is_empty() {
            return Err(SignError::mismatch(
                wallet,
                "the vendor share has no secretShare",
            ));
        }
        let api_key = self.unwrap(wallet, Purpose::ApiKey)?;
        let api_key = Zeroizing::new(
            std::str::from_utf8(api_key.expose())
                .map_err(|_| SignError::mismatch(wallet, "the unwrapped API key is not UTF-8"))?
                .trim()
                .to_owned(),
        );
        if api_key.is_empty() {
            return Err(SignError::mismatch(
                wallet,
                "the unwrapped API key is empty",
            ));
        }
        Ok(Material {
            key_share_id: Zeroizing::new(doc.key_share_id.unwrap_or_default()),
            secret_share,
            api_key,
        })
    }

    fn client(&self, m: &Material) -> Result<DelegatedWalletClient, SignError> {
        let mut opts =
            DelegatedWalletClientOpts::new(self.config.environment_id.as_str(), m.api_key.as_str())
                .base_api_url(self.config.api_base_url.as_str());
        if let Some(relay) = &self.config.relay_base_url {
            opts = opts.base_mpc_relay_url(relay.as_str());
        }
        DelegatedWalletClient::new(opts).map_err(|e| classify(m, &e))
    }

    /// Fails fast (`cosigner_unavailable`) when the vendor API host does not accept a TCP
    /// connection within `connect_timeout`.
    async fn reachable(&self) -> Result<(), SignError> {
        let (host, port) = host_port(&self.config.api_base_url).ok_or_else(|| {
            SignError::CosignerUnavailable("the configured vendor API URL has no host".into())
        })?;
        let limit = self.config.connect_timeout;
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect((host.as_str(), port)))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SignError::CosignerUnavailable(format!(
                "vendor API {host}:{port} unreachable: {e}"
            ))),
            Err(_) => Err(SignError::CosignerUnavailable(format!(
                "vendor API {host}:{port} did not accept a connection within {}",
                humantime::format_duration(limit)
            ))),
        }
    }

    /// Runs `round` bounded by `request_timeout`, mapping SDK errors.
    async fn bounded<T>(
        &self,
        m: &Material,
        round: impl std::future::Future<Output = Result<T, SdkError>>,
    ) -> Result<T, SignError> {
        let limit = self.config.request_timeout;
        match tokio::time::timeout(limit, round).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(m, &e)),
            Err(_) => Err(SignError::CosignerUnavailable(format!(
                "the co-signing round did not finish within {}",
                humantime::format_duration(limit)
            ))),
        }
    }

    fn properties(wallet: &Wallet, chain_name: &str) -> WalletProperties {
        WalletProperties::new(
            chain_name,
            wallet.id.as_str(),
            wallet.address.as_deref().unwrap_or_default(),
        )
    }

    async fn evm(
        &self,
        wallet: &Wallet,
        request: &EvmRequest,
    ) -> Result<RecoverableSig, SignError> {
        let (server_message, is_formatted) = match &request.kind {
            EvmKind::Message(bytes) => {
                let mut prefixed =
                    format!("\x19Ethereum Signed Message:\n{}", bytes.len()).into_bytes();
                prefixed.extend_from_slice(bytes);
                (format!("0x{}", hex::encode(&prefixed)), false)
            }
            EvmKind::TypedData => (hex::encode(request.digest), true),
            EvmKind::Transaction(encoding) => (format!("0x{}", hex::encode(encoding)), false),
            EvmKind::Digest => return Err(SignError::EngineUnavailable(
                "the vendor co-signing engine does not sign raw digests (evm.hash) for mpc wallets"
                    .into(),
            )),
        };
        let m = self.material(wallet)?;
        self.reachable().await?;
        let client = self.client(&m)?;
        let opts = SignOpts::new(
            wallet.id.as_str(),
            request.digest.0,
            server_message,
            is_formatted,
            m.server_key_share(),
            EVM_DERIVATION_PATH.to_vec(),
        );
        let sig = self
            .bounded(&m, run_sign_ecdsa(client.inner(), opts))
            .await?;
        drop(client);
        drop(m);
        to_recoverable(&wallet.id, &sig)
    }

    async fn solana(
        &self,
        wallet: &Wallet,
        kind: SolanaKind,
        message: &[u8],
    ) -> Result<[u8; 64], SignError> {
        let m = self.material(wallet)?;
        self.reachable().await?;
        let client = self.client(&m)?;
        let shares = [m.server_key_share()];
        let wp = Self::properties(wallet, "SVM");
        let svm = DelegatedSvmWalletClient::new(&client);
        let encoded: String = match (kind, std::str::from_utf8(message)) {
            (SolanaKind::Transaction, _) => {
                self.bounded(&m, svm.sign_transaction(&wp, &shares, message))
                    .await?
            }
            (SolanaKind::Message, Ok(text)) => {
                self.bounded(&m, svm.sign_message(&wp, &shares, text))
                    .await?
            }
            // the SDK's message call takes text; its generic Ed25519 round takes bytes
            // and puts the same thing on the wire
            (SolanaKind::Message, Err(_)) => {
                let opts =
                    SignOptsEd25519::new(wallet.id.as_str(), message.to_vec(), shares[0].clone());
                let raw = self
                    .bounded(&m, run_sign_ed25519(client.inner(), opts))
                    .await?;
                bs58::encode(raw).into_string()
            }
        };
        drop(shares);
        drop(client);
        drop(m);
        let bytes = bs58::decode(encoded.as_bytes())
            .into_vec()
            .ok()
            .and_then(|v| <[u8; 64]>::try_from(v).ok())
            .ok_or_else(|| SignError::CosignerBadSignature {
                wallet: wallet.id.clone(),
                reason: "the co-signer's signature is not 64 bytes of base58".into(),
            })?;
        Ok(bytes)
    }
}

impl Engine for DynamicEngine {
    fn name(&self) -> &'static str {
        "dynamic"
    }

    fn sign_evm<'a>(
        &'a self,
        wallet: &'a Wallet,
        request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig> {
        Box::pin(async move {
            expect_chain(wallet, Chain::Evm)?;
            self.evm(wallet, request).await
        })
    }

    fn sign_solana<'a>(
        &'a self,
        wallet: &'a Wallet,
        kind: SolanaKind,
        message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]> {
        Box::pin(async move {
            expect_chain(wallet, Chain::Solana)?;
            self.solana(wallet, kind, message).await
        })
    }
}

fn expect_chain(wallet: &Wallet, chain: Chain) -> Result<(), SignError> {
    if wallet.chain == chain {
        Ok(())
    } else {
        Err(SignError::WrongChain {
            wallet: wallet.id.clone(),
            actual: wallet.chain.as_str(),
            wanted: chain.as_str(),
        })
    }
}

/// `(r, s, v)` from the relay as a low-s signature with its y-parity. Not verified here:
/// [`super::Signer`] does that for every engine.
fn to_recoverable(wallet_id: &str, sig: &EcdsaSignature) -> Result<RecoverableSig, SignError> {
    let bad = |reason: &str| SignError::CosignerBadSignature {
        wallet: wallet_id.to_owned(),
        reason: reason.into(),
    };
    let parity = match sig.v {
        0 | 27 => false,
        1 | 28 => true,
        _ => return Err(bad("the co-signer's v is not 27/28 (or 0/1)")),
    };
    let k = k256::ecdsa::Signature::from_scalars(sig.r, sig.s)
        .map_err(|_| bad("the co-signer's r or s is out of range"))?;
    let recid = k256::ecdsa::RecoveryId::new(parity, false);
    Ok(RecoverableSig::from_k256(&k, recid))
}

/// Maps an SDK error: the vendor refusing (4xx, authentication, an error event) is
/// `cosigner_rejected`; everything else — transport, TLS, 5xx, malformed answers, relay
/// failures — is `cosigner_unavailable`. Messages are scrubbed of both secrets.
fn classify(m: &Material, e: &SdkError) -> SignError {
    let text = m.scrub(&e.to_string());
    match e {
        SdkError::Http { status, .. }
            if (400..500).contains(status) && *status != 408 && *status != 429 =>
        {
            SignError::CosignerRejected(text)
        }
        SdkError::Authentication(_) | SdkError::WalletNotFound(_) => {
            SignError::CosignerRejected(text)
        }
        // an `error` event on the vendor's stream is the vendor's own refusal; an
        // interrupted or malformed stream is not
        SdkError::Sse(msg)
            if msg != "stream ended unexpectedly" && !msg.contains("was not JSON") =>
        {
            SignError::CosignerRejected(text)
        }
        _ => SignError::CosignerUnavailable(text),
    }
}

/// Host and port of an `http(s)` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material() -> Material {
        Material {
            key_share_id: Zeroizing::new("kid".into()),
            secret_share: Zeroizing::new("SHARE-abcdef0123456789".into()),
            api_key: Zeroizing::new("dyn_APIKEY_0123456789".into()),
        }
    }

    #[test]
    fn scrub_removes_secrets_and_truncates() {
        let m = material();
        let t = m.scrub("bad key dyn_APIKEY_0123456789 for SHARE-abcdef0123456789");
        assert!(!t.contains("APIKEY") && !t.contains("SHARE-"), "{t}");
        let long = format!("{}dyn_APIKEY_0123", "x".repeat(MAX_MESSAGE - 15));
        let t = m.scrub(&long);
        assert!(!t.contains("dyn_APIKEY"), "{t}");
        assert!(m.scrub(&"y".repeat(1000)).chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn classification() {
        let m = material();
        let c = |e: SdkError| classify(&m, &e).code();
        assert_eq!(
            c(SdkError::Http {
                status: 401,
                body: "invalid key dyn_APIKEY_0123456789".into()
            }),
            "cosigner_rejected"
        );
        assert_eq!(
            c(SdkError::Http {
                status: 503,
                body: String::new()
            }),
            "cosigner_unavailable"
        );
        assert_eq!(
            c(SdkError::Network("refused".into())),
            "cosigner_unavailable"
        );
        assert_eq!(
            c(SdkError::Sse("stream ended unexpectedly".into())),
            "cosigner_unavailable"
        );
        assert_eq!(
            c(SdkError::Sse("wallet locked".into())),
            "cosigner_rejected"
        );
        let e = classify(
            &m,
            &SdkError::Http {
                status: 403,
                body: "dyn_APIKEY_0123456789".into(),
            },
        );
        assert!(!e.to_string().contains("dyn_APIKEY"));
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            host_port("https://app.dynamicauth.com"),
            Some(("app.dynamicauth.com".into(), 443))
        );
        assert_eq!(
            host_port("http://127.0.0.1:9/x"),
            Some(("127.0.0.1".into(), 9))
        );
    }

    #[test]
    fn parity_from_v() {
        let w = "w";
        let mut sig = EcdsaSignature {
            r: [1; 32],
            s: [2; 32],
            v: 29,
            der: Vec::new(),
        };
        assert_eq!(
            to_recoverable(w, &sig).unwrap_err().code(),
            "cosigner_bad_signature"
        );
        sig.v = 28;
        assert!(to_recoverable(w, &sig).unwrap().y_parity);
    }
}
