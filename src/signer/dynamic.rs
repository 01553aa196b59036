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
//! What the vendor is shown, per operation (the same `message` / `isFormatted` the
//! vendor's own `dynamic-waas-sdk-evm` / `-svm` crates send; `tests/mpc.rs` compares them
//! byte for byte):
//! - `evm.message`: the EIP-191-prefixed bytes as `0x` hex, `isFormatted = false`; the
//!   relay signs keccak256 of them.
//! - `evm.typed_data`: the EIP-712 digest as bare hex, `isFormatted = true`.
//! - `evm.transaction`: the unsigned signing encoding as `0x` hex, `isFormatted = false`;
//!   the relay signs its keccak256 (`signature_hash`).
//! - `evm.hash`: the bare digest as hex, `isFormatted = true` — the typed-data call with a
//!   digest the client computed (behind the explicit `evm.hash` grant).
//! - `solana.message` / `solana.transaction`: the bytes as hex, `isFormatted = false`.
//!
//! The EVM chain crate (`dynamic-waas-sdk-evm`) is not a dependency: its methods take
//! alloy 0.8 types (keyward is on alloy 1.x) and are thin wrappers over `run_sign_ecdsa`,
//! which keyward calls with the same arguments (the conformance test proves it).
//!
//! Bounds: the SDK 0.0.4 builds its own HTTP client without timeouts, and its SSE reader
//! and MPC tasks are detached `tokio::spawn`s that outlive a dropped future. So each round
//! runs on its own thread with its own single-threaded runtime, holding one of
//! `max_concurrent_rounds` slots. The request waits at most `request_timeout` (slot wait
//! included); when it gives up, the round's future is dropped and its runtime shut down,
//! which cancels every task the SDK spawned and closes its connections. Only the vendor
//! library's blocking native call cannot be interrupted: the slot stays taken until it
//! returns (the library bounds its own waits at about 30 s), and the round counts as
//! abandoned meanwhile (`keyward_mpc_rounds_abandoned`). Abandoned rounds therefore
//! cannot pile up beyond `max_concurrent_rounds`.
//!
//! Failures: only a refusal the vendor expressed — an HTTP 4xx from its API (except 408
//! and 429, which mean "try again") or an `error` event on its stream — is
//! `cosigner_rejected`. Everything else (transport, TLS, 5xx, a stream that ends or breaks,
//! garbage, a relay failure, a timeout, an SDK task failure) is `cosigner_unavailable`.
//!
//! Secrets: keyward's copies of the share and the API key are `Zeroizing` and wiped when
//! the round ends. The SDK copies both into ordinary `String`s for the duration of the
//! round (its `ServerKeyShare`, `SecretShare` and `Auth` types); those are freed, not
//! wiped, when the round ends — a limit of the SDK, stated here so nobody assumes
//! otherwise. Several SDK types (`ServerKeyShare`, `SecretShare`,
//! `DelegatedWalletClientOpts`) derive `Debug` with the secrets in clear, so keyward
//! never formats an SDK value with `{:?}`. Error messages from the SDK or the vendor are
//! scrubbed of both secrets and truncated before they reach a log line or a client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynamic_waas_sdk::{
    run_sign_ecdsa, run_sign_ed25519, DelegatedWalletClient, DelegatedWalletClientOpts,
    EcdsaSignature, Error as SdkError, ServerKeyShare, SignOpts, SignOptsEd25519, WalletProperties,
};
use dynamic_waas_sdk_svm::DelegatedSvmWalletClient;
use serde::Deserialize;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use super::{Engine, EngineFuture, EvmKind, EvmRequest, SignError, SolanaKind};
use crate::chains::evm::RecoverableSig;
use crate::config::DynamicEngineConfig;
use crate::custody::{self, Binding, Purpose, SecretBytes};
use crate::hsm::Token;
use crate::metrics;
use crate::store::wallets::{Chain, Wallet};

/// Longest vendor message passed on to a client.
const MAX_MESSAGE: usize = 300;

/// What SDK 0.0.4 itself puts in `Error::Sse` when its own reading of the stream fails
/// (`dynamic-waas-sdk-core` `sse/stream.rs`, `dynamic-waas-sdk` `sign*.rs`): "stream ended
/// unexpectedly", "stream ended before trigger event", "stream error: …", "non-UTF-8 SSE
/// chunk: …", "MPC task panicked: …", "room_created payload was not JSON: …". Any other
/// `Error::Sse` text is the message of an `error` event the vendor sent.
const SDK_SSE_FAILURES: &[&str] = &[
    "stream ended",
    "stream error:",
    "non-UTF-8 SSE chunk",
    "MPC task panicked",
    "room_created payload was not JSON",
];

/// Signs for `mpc` wallets through the vendor's co-signing round.
pub struct DynamicEngine {
    token: Token,
    config: DynamicEngineConfig,
    derivation_path: Vec<u32>,
    rounds: Rounds,
}

impl std::fmt::Debug for DynamicEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicEngine")
            .field("api_base_url", &self.config.api_base_url)
            .field("relay_base_url", &self.config.relay_base_url)
            .field("max_concurrent_rounds", &self.config.max_concurrent_rounds)
            .finish_non_exhaustive()
    }
}

/// This engine's round counters (the process-wide Prometheus metrics add up every
/// engine; these are one engine's, for its tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Rounds started (a slot was taken and the round's thread started).
    pub started: u64,
    /// Rounds whose request gave up while they were still running.
    pub aborted: u64,
    /// Rounds holding a slot now.
    pub running: u64,
    /// Of those, rounds whose request already gave up.
    pub abandoned: u64,
    /// Requests waiting for a slot now.
    pub waiting: u64,
}

#[derive(Default)]
struct Stats {
    started: AtomicU64,
    aborted: AtomicU64,
    running: AtomicU64,
    abandoned: AtomicU64,
    waiting: AtomicU64,
}

/// The unwrapped material for one round. Both secrets wipe on drop; no `Debug`.
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

/// One round's operation, owned (it runs on the round's thread).
enum Operation {
    /// `run_sign_ecdsa` with these arguments.
    Ecdsa {
        digest: [u8; 32],
        server_message: String,
        is_formatted: bool,
        derivation_path: Vec<u32>,
    },
    /// The SVM client's `sign_message` (UTF-8 text).
    SvmMessage(String),
    /// The SVM client's `sign_transaction` (serialized transaction message).
    SvmTransaction(Vec<u8>),
    /// `run_sign_ed25519` over bytes that are not UTF-8 (same wire format as the above).
    Ed25519(Vec<u8>),
}

/// What a round answers.
enum Output {
    Ecdsa(EcdsaSignature),
    /// Base58, as the SVM client returns it.
    Ed25519Base58(String),
    Ed25519([u8; 64]),
}

/// Everything a round needs, owned by its thread.
struct Round {
    material: Material,
    environment_id: String,
    api_base_url: String,
    relay: Option<String>,
    wallet_id: String,
    address: String,
    operation: Operation,
}

impl Round {
    async fn run(self) -> Result<Output, SignError> {
        let m = &self.material;
        let mut opts = DelegatedWalletClientOpts::new(&self.environment_id, m.api_key.as_str())
            .base_api_url(&self.api_base_url);
        if let Some(relay) = &self.relay {
            opts = opts.base_mpc_relay_url(relay);
        }
        let client = DelegatedWalletClient::new(opts).map_err(|e| classify(m, &e))?;
        let result = match &self.operation {
            Operation::Ecdsa {
                digest,
                server_message,
                is_formatted,
                derivation_path,
            } => {
                let opts = SignOpts::new(
                    self.wallet_id.as_str(),
                    *digest,
                    server_message.as_str(),
                    *is_formatted,
                    m.server_key_share(),
                    derivation_path.clone(),
                );
                run_sign_ecdsa(client.inner(), opts)
                    .await
                    .map(Output::Ecdsa)
            }
            Operation::SvmMessage(text) => {
                let wp = WalletProperties::new("SVM", self.wallet_id.as_str(), &self.address);
                DelegatedSvmWalletClient::new(&client)
                    .sign_message(&wp, &[m.server_key_share()], text)
                    .await
                    .map(Output::Ed25519Base58)
            }
            Operation::SvmTransaction(bytes) => {
                let wp = WalletProperties::new("SVM", self.wallet_id.as_str(), &self.address);
                DelegatedSvmWalletClient::new(&client)
                    .sign_transaction(&wp, &[m.server_key_share()], bytes)
                    .await
                    .map(Output::Ed25519Base58)
            }
            Operation::Ed25519(bytes) => {
                let opts = SignOptsEd25519::new(
                    self.wallet_id.as_str(),
                    bytes.clone(),
                    m.server_key_share(),
                );
                run_sign_ed25519(client.inner(), opts)
                    .await
                    .map(Output::Ed25519)
            }
        };
        result.map_err(|e| classify(m, &e))
    }
}

/// Where a round stands, shared by its thread and the request waiting for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The request gave up; the thread has not finished.
    Abandoned,
    Finished,
}

/// The thread's end of a round: on drop (the thread ends, however) the slot is released
/// and the counters settle.
struct ThreadGuard {
    phase: Arc<Mutex<Phase>>,
    stats: Arc<Stats>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if *phase == Phase::Abandoned {
            self.stats.abandoned.fetch_sub(1, Ordering::SeqCst);
            metrics::get().mpc_rounds_abandoned.dec();
        }
        *phase = Phase::Finished;
        self.stats.running.fetch_sub(1, Ordering::SeqCst);
        metrics::get().mpc_rounds_running.dec();
    }
}

/// The request's end of a round: dropped before the answer arrived (timeout, or the
/// request itself dropped), it cancels the round and counts it abandoned.
struct Waiter {
    phase: Arc<Mutex<Phase>>,
    stats: Arc<Stats>,
    answered: bool,
    _cancel: oneshot::Sender<()>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        if *phase == Phase::Running {
            *phase = Phase::Abandoned;
            self.stats.aborted.fetch_add(1, Ordering::SeqCst);
            self.stats.abandoned.fetch_add(1, Ordering::SeqCst);
            metrics::get().mpc_rounds_aborted.inc();
            metrics::get().mpc_rounds_abandoned.inc();
        }
        // `_cancel` drops after this: the round's thread stops waiting for the SDK
    }
}

/// The bound on rounds: `max` slots, the counters, and each round on its own thread
/// with its own runtime (see the module doc).
struct Rounds {
    slots: Arc<Semaphore>,
    stats: Arc<Stats>,
    limit: Duration,
}

impl Rounds {
    fn new(max: usize, limit: Duration) -> Rounds {
        Rounds {
            slots: Arc::new(Semaphore::new(max.max(1))),
            stats: Arc::default(),
            limit,
        }
    }

    fn stats(&self) -> RoundStats {
        let s = &self.stats;
        RoundStats {
            started: s.started.load(Ordering::SeqCst),
            aborted: s.aborted.load(Ordering::SeqCst),
            running: s.running.load(Ordering::SeqCst),
            abandoned: s.abandoned.load(Ordering::SeqCst),
            waiting: s.waiting.load(Ordering::SeqCst),
        }
    }

    /// Runs the future `round` makes on a thread of its own once a slot is free, and
    /// waits for its answer until `deadline`. Past it the round is cancelled: every task
    /// on its runtime is dropped; a blocking call still running keeps the slot (and the
    /// round counts as abandoned) until it returns.
    async fn run<T, F, Fut>(&self, deadline: tokio::time::Instant, round: F) -> Result<T, SignError>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, SignError>>,
    {
        let slot = {
            let _waiting = Waiting::new(&self.stats);
            tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await
        };
        let slot = match slot {
            Ok(Ok(slot)) => slot,
            // the semaphore is never closed
            Ok(Err(_)) | Err(_) => {
                let s = self.stats();
                return Err(SignError::CosignerUnavailable(format!(
                    "no co-signing round slot became free within {}: {} rounds are running (engines.dynamic.max_concurrent_rounds), {} of them still waiting on the vendor after their request gave up",
                    humantime::format_duration(self.limit),
                    s.running,
                    s.abandoned
                )));
            }
        };
        let phase = Arc::new(Mutex::new(Phase::Running));
        let (answer_tx, answer_rx) = oneshot::channel();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        self.stats.started.fetch_add(1, Ordering::SeqCst);
        self.stats.running.fetch_add(1, Ordering::SeqCst);
        metrics::get().mpc_rounds_started.inc();
        metrics::get().mpc_rounds_running.inc();
        let guard = ThreadGuard {
            phase: phase.clone(),
            stats: self.stats.clone(),
            _slot: slot,
        };
        let mut waiter = Waiter {
            phase,
            stats: self.stats.clone(),
            answered: false,
            _cancel: cancel_tx,
        };
        let spawned = std::thread::Builder::new()
            .name("keyward-mpc-round".into())
            .spawn(move || run_on_own_runtime(guard, round, answer_tx, cancel_rx));
        if let Err(e) = spawned {
            // the closure (and with it the guard) was dropped: the counters settle
            waiter.answered = true;
            return Err(SignError::CosignerUnavailable(format!(
                "cannot start a co-signing round thread: {e}"
            )));
        }
        match tokio::time::timeout_at(deadline, answer_rx).await {
            Ok(Ok(result)) => {
                waiter.answered = true;
                result
            }
            Ok(Err(_)) => {
                waiter.answered = true;
                Err(SignError::CosignerUnavailable(
                    "the co-signing round ended without an answer".into(),
                ))
            }
            // `waiter` drops: the round is cancelled, and counted abandoned until its
            // thread ends
            Err(_) => Err(SignError::CosignerUnavailable(format!(
                "the co-signing round did not finish within {}",
                humantime::format_duration(self.limit)
            ))),
        }
    }
}

/// Counts a request waiting for a slot while it lives.
struct Waiting<'a>(&'a Stats);

impl<'a> Waiting<'a> {
    fn new(stats: &'a Stats) -> Waiting<'a> {
        stats.waiting.fetch_add(1, Ordering::SeqCst);
        metrics::get().mpc_rounds_waiting.inc();
        Waiting(stats)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
        metrics::get().mpc_rounds_waiting.dec();
    }
}

impl DynamicEngine {
    /// An engine unwrapping with `token`, talking to the vendor as `config` says (a
    /// validated config: an unparsable derivation path falls back to the SDK's default).
    pub fn new(token: Token, config: DynamicEngineConfig) -> DynamicEngine {
        let derivation_path = config.derivation_indices().unwrap_or_else(|e| {
            tracing::error!(error = %e, "engines.dynamic.derivation_path is invalid; using the SDK's default");
            dynamic_waas_sdk::mpc_config::EVM_DERIVATION_PATH.to_vec()
        });
        let rounds = Rounds::new(config.max_concurrent_rounds, config.request_timeout);
        DynamicEngine {
            token,
            config,
            derivation_path,
            rounds,
        }
    }

    /// This engine's round counters.
    pub fn round_stats(&self) -> RoundStats {
        self.rounds.stats()
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
        // it travels as a header value: refused here rather than by the SDK's header
        // builder, whose error would look like the vendor refusing
        if !api_key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SignError::mismatch(
                wallet,
                "the unwrapped API key is not a valid header value",
            ));
        }
        Ok(Material {
            key_share_id: Zeroizing::new(doc.key_share_id.unwrap_or_default()),
            secret_share,
            api_key,
        })
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

    /// Runs `operation` for `wallet` as one bounded round (see the module doc).
    async fn round(&self, wallet: &Wallet, operation: Operation) -> Result<Output, SignError> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let material = self.material(wallet)?;
        self.reachable().await?;
        let round = Round {
            material,
            environment_id: self.config.environment_id.clone(),
            api_base_url: self.config.api_base_url.clone(),
            relay: self.config.relay_base_url.clone(),
            wallet_id: wallet.id.clone(),
            address: wallet.address.clone().unwrap_or_default(),
            operation,
        };
        self.rounds.run(deadline, move || round.run()).await
    }

    async fn evm(
        &self,
        wallet: &Wallet,
        request: &EvmRequest,
    ) -> Result<RecoverableSig, SignError> {
        let (server_message, is_formatted) = evm_wire_message(request);
        let operation = Operation::Ecdsa {
            digest: request.digest.0,
            server_message,
            is_formatted,
            derivation_path: self.derivation_path.clone(),
        };
        match self.round(wallet, operation).await? {
            Output::Ecdsa(sig) => to_recoverable(&wallet.id, &sig),
            Output::Ed25519(_) | Output::Ed25519Base58(_) => Err(SignError::CosignerBadSignature {
                wallet: wallet.id.clone(),
                reason: "the round answered with an Ed25519 signature".into(),
            }),
        }
    }

    async fn solana(
        &self,
        wallet: &Wallet,
        kind: SolanaKind,
        message: &[u8],
    ) -> Result<[u8; 64], SignError> {
        let operation = match (kind, std::str::from_utf8(message)) {
            (SolanaKind::Transaction, _) => Operation::SvmTransaction(message.to_vec()),
            (SolanaKind::Message, Ok(text)) => Operation::SvmMessage(text.to_owned()),
            // the SDK's message call takes text; its generic Ed25519 round takes bytes
            // and puts the same thing on the wire
            (SolanaKind::Message, Err(_)) => Operation::Ed25519(message.to_vec()),
        };
        let bad = |reason: &str| SignError::CosignerBadSignature {
            wallet: wallet.id.clone(),
            reason: reason.into(),
        };
        match self.round(wallet, operation).await? {
            Output::Ed25519(raw) => Ok(raw),
            Output::Ed25519Base58(encoded) => bs58::decode(encoded.as_bytes())
                .into_vec()
                .ok()
                .and_then(|v| <[u8; 64]>::try_from(v).ok())
                .ok_or_else(|| bad("the co-signer's signature is not 64 bytes of base58")),
            Output::Ecdsa(_) => Err(bad("the round answered with an ECDSA signature")),
        }
    }
}

/// The round's thread: a single-threaded runtime that every task the SDK spawns lands
/// on, so shutting it down cancels them all. Dropping the runtime waits for a blocking
/// call (the vendor library's), if one is running; the slot (in `guard`) is held until
/// then.
fn run_on_own_runtime<T, F, Fut>(
    guard: ThreadGuard,
    round: F,
    answer: oneshot::Sender<Result<T, SignError>>,
    cancelled: oneshot::Receiver<()>,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, SignError>>,
{
    let _guard = guard;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = answer.send(Err(SignError::CosignerUnavailable(format!(
                "cannot start a co-signing round runtime: {e}"
            ))));
            return;
        }
    };
    runtime.block_on(async move {
        tokio::select! {
            result = round() => {
                let _ = answer.send(result);
            }
            // the request gave up (sender dropped): stop here; the runtime's shutdown
            // below cancels the SDK's tasks
            _ = cancelled => {}
        }
    });
    // Waits for the vendor library's blocking call (bounded by the library's own waits);
    // the request does not wait for this. A call that never returned would keep its slot,
    // visible as `keyward_mpc_rounds_abandoned`: counted honestly rather than leaked.
    drop(runtime);
}

/// What the vendor API is shown for an EVM request: the `message` and `isFormatted`
/// fields of its `signMessage` body (see the module doc).
fn evm_wire_message(request: &EvmRequest) -> (String, bool) {
    match &request.kind {
        EvmKind::Message(bytes) => {
            let mut prefixed =
                format!("\x19Ethereum Signed Message:\n{}", bytes.len()).into_bytes();
            prefixed.extend_from_slice(bytes);
            (format!("0x{}", hex::encode(&prefixed)), false)
        }
        // no `0x`: the vendor's EVM SDK notes the relay refuses a prefixed digest
        EvmKind::TypedData | EvmKind::Digest => (hex::encode(request.digest), true),
        EvmKind::Transaction(encoding) => (format!("0x{}", hex::encode(encoding)), false),
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

/// True when an SDK error is a refusal the vendor expressed: an HTTP 4xx from its API
/// (408 and 429 mean "try again later": not a refusal of this request) or an `error`
/// event on its stream.
fn vendor_refused(e: &SdkError) -> bool {
    match e {
        SdkError::Http { status, .. } => {
            (400..500).contains(status) && *status != 408 && *status != 429
        }
        SdkError::Sse(msg) => !SDK_SSE_FAILURES.iter().any(|p| msg.starts_with(p)),
        _ => false,
    }
}

/// Maps an SDK error (see [`vendor_refused`]); messages are scrubbed of both secrets.
fn classify(m: &Material, e: &SdkError) -> SignError {
    let text = m.scrub(&match e {
        SdkError::Http { status, body } => format!("the vendor API answered HTTP {status}: {body}"),
        SdkError::Sse(msg) if vendor_refused(e) => {
            format!("the vendor's event stream reported an error: {msg}")
        }
        other => other.to_string(),
    });
    if vendor_refused(e) {
        SignError::CosignerRejected(text)
    } else {
        SignError::CosignerUnavailable(text)
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
    fn only_what_the_vendor_said_is_a_refusal() {
        let m = material();
        let c = |e: SdkError| classify(&m, &e).code();
        let http = |status: u16| SdkError::Http {
            status,
            body: String::new(),
        };
        for s in [400, 401, 403, 404, 422] {
            assert_eq!(c(http(s)), "cosigner_rejected", "{s}");
        }
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(c(http(s)), "cosigner_unavailable", "{s}");
        }
        // every Error::Sse text SDK 0.0.4 makes up itself
        for own in [
            "stream ended unexpectedly",
            "stream ended before trigger event",
            "stream error: error decoding response body",
            "non-UTF-8 SSE chunk: invalid utf-8 sequence",
            "MPC task panicked: task 12 panicked",
            "room_created payload was not JSON: garbage",
        ] {
            assert_eq!(
                c(SdkError::Sse(own.into())),
                "cosigner_unavailable",
                "{own}"
            );
        }
        // an error event's message, or the SDK's stand-in when it carried none
        for vendor in ["wallet locked", "Unknown error", "unknown error"] {
            assert_eq!(
                c(SdkError::Sse(vendor.into())),
                "cosigner_rejected",
                "{vendor}"
            );
        }
        for other in [
            SdkError::Network("refused".into()),
            SdkError::Authentication("authentication required".into()),
            SdkError::WalletNotFound("w".into()),
            SdkError::SseTimeout {
                event: "room_created".into(),
                timeout_ms: 60_000,
            },
            SdkError::InvalidArgument("x".into()),
            SdkError::Mpc(dynamic_waas_sdk::MpcError::Operation("relay".into())),
        ] {
            assert_eq!(c(other), "cosigner_unavailable");
        }
        let e = classify(
            &m,
            &SdkError::Http {
                status: 403,
                body: "dyn_APIKEY_0123456789".into(),
            },
        );
        assert!(!e.to_string().contains("dyn_APIKEY"));
        assert!(e.to_string().contains("HTTP 403"), "{e}");
    }

    /// Stands in for the vendor library's blocking native call: returns when released.
    async fn blocking_call(
        entered: oneshot::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    ) -> Result<u8, SignError> {
        tokio::task::spawn_blocking(move || {
            let _ = entered.send(());
            let _ = release.recv();
        })
        .await
        .map_err(|e| SignError::CosignerUnavailable(e.to_string()))?;
        Ok(1)
    }

    async fn until_settled(rounds: &Rounds) -> RoundStats {
        for _ in 0..1000 {
            let s = rounds.stats();
            if s.running == 0 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the round thread did not end: {:?}", rounds.stats());
    }

    fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(300)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_outliving_its_request_keeps_its_slot_and_counts_abandoned() {
        let rounds = Rounds::new(1, Duration::from_millis(100));
        let (entered_tx, entered) = oneshot::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let first = rounds.run(far(), move || blocking_call(entered_tx, release_rx));
        // the request gives up (here: is dropped) while the blocking call runs
        tokio::select! {
            r = first => panic!("answered: {:?}", r.map_err(|e| e.to_string())),
            _ = entered => {}
        }
        let s = rounds.stats();
        assert_eq!(
            (s.started, s.aborted, s.running, s.abandoned, s.waiting),
            (1, 1, 1, 1, 0)
        );

        // its slot is still taken: the next request waits until its own deadline
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        let e = rounds
            .run(deadline, || async { Ok::<u8, SignError>(2) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "cosigner_unavailable");
        assert!(
            e.to_string()
                .contains("no co-signing round slot became free within 100ms")
                && e.to_string().contains("1 of them still waiting"),
            "{e}"
        );
        assert_eq!(rounds.stats().started, 1, "never started");

        // the call returns: the slot is free again and nothing stays counted
        release.send(()).unwrap();
        let s = until_settled(&rounds).await;
        assert_eq!((s.started, s.aborted, s.abandoned, s.waiting), (1, 1, 0, 0));
        assert_eq!(
            rounds
                .run(far(), || async { Ok::<u8, SignError>(3) })
                .await
                .unwrap(),
            3
        );
        let s = until_settled(&rounds).await;
        assert_eq!((s.started, s.aborted), (2, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_round_is_cancelled_with_its_tasks() {
        let rounds = Rounds::new(2, Duration::from_millis(50));
        // a task the round spawns (as the SDK spawns its stream reader), which would run
        // forever: cancelled with the round's runtime
        let (dropped_tx, dropped) = oneshot::channel::<()>();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        let e = rounds
            .run(deadline, move || async move {
                tokio::spawn(async move {
                    let _on_drop = dropped_tx;
                    std::future::pending::<()>().await;
                });
                std::future::pending::<Result<u8, SignError>>().await
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "cosigner_unavailable");
        assert!(e.to_string().contains("did not finish within 50ms"), "{e}");
        // the spawned task was dropped (its sender with it)
        assert!(dropped.await.is_err());
        let s = until_settled(&rounds).await;
        assert_eq!((s.started, s.aborted, s.abandoned), (1, 1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_answers_and_a_failing_one_says_why() {
        let rounds = Rounds::new(1, Duration::from_secs(5));
        assert_eq!(
            rounds
                .run(far(), || async { Ok::<u8, SignError>(7) })
                .await
                .unwrap(),
            7
        );
        let e = rounds
            .run(far(), || async {
                Err::<u8, _>(SignError::CosignerRejected("no".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), "cosigner_rejected");
        let e = rounds
            .run(far(), || async { panic!("the SDK panicked") })
            .await
            .map(|()| "answered")
            .unwrap_err();
        assert!(e.to_string().contains("ended without an answer"), "{e}");
        let s = until_settled(&rounds).await;
        assert_eq!((s.started, s.aborted), (3, 0));
    }

    #[test]
    fn wire_messages() {
        let digest = alloy_primitives::B256::repeat_byte(0xab);
        let req = |kind| EvmRequest { digest, kind };
        assert_eq!(
            evm_wire_message(&req(EvmKind::Message(b"hi".to_vec()))),
            (
                "0x19457468657265756d205369676e6564204d6573736167653a0a326869".into(),
                false
            )
        );
        for kind in [EvmKind::TypedData, EvmKind::Digest] {
            assert_eq!(evm_wire_message(&req(kind)), ("ab".repeat(32), true));
        }
        assert_eq!(
            evm_wire_message(&req(EvmKind::Transaction(vec![0x02, 0xc0]))),
            ("0x02c0".into(), false)
        );
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
