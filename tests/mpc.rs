//! `mpc` wallets (vendor Delegated Access shares) on the signing API, offline.
//!
//! Always built: engine selection from the stored wallet, the `[engines]` config schema,
//! refusals that never reach an engine, and the verify-before-answer check, driven by a
//! test engine injected through `Signer::with_mpc_engine` — a double for the vendor's
//! network round only; the verification and the API path under test are the real ones.
//!
//! With `--features dynamic-mpc`: the real engine (the vendor's SDK) against a loopback
//! plain-HTTP stand-in for the vendor API and loopback stand-ins for the relay.
//! - Wire format: for every operation, the `signMessage` request keyward sends equals,
//!   byte for byte, the one the vendor's own `dynamic-waas-sdk-evm` / `-svm` crates send
//!   for the same input (those crates run in the test against the same stand-in).
//! - Failure paths: every way the event stream can fail, the vendor refusing, a refused
//!   port, TLS garbage, silence, an unreachable relay (a bare `127.0.0.1:PORT` and a
//!   32-hex room id, so the vendor's native library really connects) — each to its
//!   documented code, audited, with neither the share nor the API key in any log line
//!   (TRACE) or answer.
//! - Bounds: a round outliving its request is counted aborted and abandoned, holds its
//!   slot of `max_concurrent_rounds` until the library returns, and shows in `/metrics`.
//!
//! A successful co-signature needs the vendor's relay and a real delegation: not
//! exercised here.
//!
//! Its own binary: the log capture is a process-wide subscriber.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fixtures::mail_typed_data;
use common::Env;
use ed25519_dalek::Signer as _;
use hyper::StatusCode;
use keyward::appliance::Appliance;
use keyward::chains::evm::{self, RecoverableSig};
use keyward::chains::solana;
use keyward::config::Config;
use keyward::signer::{Engine, EngineFuture, EvmRequest, SignError, Signer, SolanaKind};
use keyward::store::audit;
use keyward::store::wallets::{Chain, Wallet};
use serde_json::{json, Value};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "evm.hash", "solana.message", "solana.transaction"]

[[clients]]
identity = "narrow-client"
wallets = ["label:nothing-here"]
operations = ["evm.message", "solana.message"]
"#;

/// The share and API key every test wallet holds: searched for in logs and answers.
const SHARE_SECRET: &str = "kw-test-share-9f3c1e77d0a94b6e8f21c5d3a7b0e4f1";
const API_KEY: &str = "dyn_kwtestwalletapikey_53e2c9a1f0b84d7e";

// ---------------------------------------------------------------------------------------
// log capture (process-wide)
// ---------------------------------------------------------------------------------------

/// The process-wide capture (`common::logs`), installed on first use.
fn logs() -> common::logs::Capture {
    common::logs::capture()
}

fn assert_no_secret_logged() {
    let text = logs().bytes();
    for (what, needle) in [("share", SHARE_SECRET), ("API key", API_KEY)] {
        assert!(
            !common::contains(&text, needle.as_bytes()),
            "the {what} appears in the logs"
        );
    }
}

fn assert_no_secret_in(body: &Value) {
    let text = body.to_string();
    assert!(
        !text.contains(SHARE_SECRET) && !text.contains(API_KEY),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// the appliance over mTLS
// ---------------------------------------------------------------------------------------

use common::api::{path, Answer, Server};

/// Starts the API; `signer` = None builds the signer from the config, as `serve` does.
async fn start(extra: &str, signer: impl FnOnce(&Arc<Appliance>) -> Option<Signer>) -> Server {
    logs();
    let env = Env::with_extra(format!("{CLIENTS}\n{extra}"));
    common::api::start_with(env, |app| match signer(app) {
        Some(s) => keyward::api::Api::with_signer(app.clone(), s),
        None => keyward::api::Api::new(app.clone()),
    })
    .await
}

impl Server {
    /// An `mpc` wallet at `address`, holding the vendor-shaped share JSON and API key.
    fn mpc_wallet(&self, chain: Chain, address: String) -> Wallet {
        let share = json!({ "keyShareId": "ks-1", "secretShare": SHARE_SECRET, "pubkey": { "pubkey": {} } });
        self.put_mpc(
            chain,
            address,
            share.to_string().as_bytes(),
            Some(API_KEY.as_bytes()),
        )
    }

    fn assert_cosigner_error(&self, a: &Answer, code: &str) {
        assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.body);
        assert_eq!(a.body["error"]["code"], code, "{}", a.body);
        assert!(a.body.get("signature").is_none());
        assert_no_secret_in(&a.body);
        let rec = self.record(a.body["auditId"].as_str().expect("auditId"));
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            ("error", code)
        );
    }
}

fn evm_address_of(k: &k256::ecdsa::SigningKey) -> String {
    format!("{:#x}", evm::address_of(k.verifying_key()))
}

// ---------------------------------------------------------------------------------------
// the double: signs with its own key instead of running the vendor's round
// ---------------------------------------------------------------------------------------

struct Double {
    evm: k256::ecdsa::SigningKey,
    sol: ed25519_dalek::SigningKey,
    calls: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

impl Double {
    fn new() -> Arc<Double> {
        Arc::new(Double {
            evm: k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
            sol: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }
}

impl Engine for Double {
    fn name(&self) -> &'static str {
        "test-double"
    }

    fn sign_evm<'a>(
        &'a self,
        _wallet: &'a Wallet,
        request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap()
            .push(format!("{:?}", std::mem::discriminant(&request.kind)));
        let sig = evm::sign_digest(&self.evm, &request.digest);
        Box::pin(async move { Ok(sig) })
    }

    fn sign_solana<'a>(
        &'a self,
        _wallet: &'a Wallet,
        _kind: SolanaKind,
        message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let sig = self.sol.sign(message).to_bytes();
        Box::pin(async move { Ok(sig) })
    }
}

fn with_double(double: &Arc<Double>) -> impl FnOnce(&Arc<Appliance>) -> Option<Signer> {
    let d = double.clone();
    move |app: &Arc<Appliance>| {
        Some(Signer::new(app.token.clone()).with_mpc_engine(d as Arc<dyn Engine>))
    }
}

fn eip1559(from: &str) -> Value {
    json!({
        "type": "0x2", "chainId": "0x1", "nonce": "0x0", "from": from,
        "to": "0x3535353535353535353535353535353535353535", "value": "0x1",
        "gas": "0x5208", "maxFeePerGas": "0x4a817c800", "maxPriorityFeePerGas": "0x3b9aca00",
        "data": "0x"
    })
}

// ---------------------------------------------------------------------------------------
// always built
// ---------------------------------------------------------------------------------------

#[test]
fn engines_section_is_in_the_schema_in_every_build() {
    let base = r#"
[pkcs11]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "x"
pin = { file = "pin" }
[store]
path = "k.db"
"#;
    let load = |extra: &str| {
        let c = Config::parse(&format!("{base}\n{extra}"), std::path::Path::new("k.toml"))?;
        c.validate().map(|()| c)
    };
    let c = load("").unwrap();
    assert!(c.engines.dynamic.is_none());
    let c = load("[engines.dynamic]\nenvironment_id = \"3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90\"\n")
        .unwrap();
    let d = c.engines.dynamic.unwrap();
    assert_eq!(d.api_base_url, "https://app.dynamicauth.com");
    assert_eq!(d.relay_base_url, None);
    assert_eq!(d.request_timeout, Duration::from_secs(30));
    assert_eq!(d.connect_timeout, Duration::from_secs(5));
    assert_eq!(d.max_concurrent_rounds, 8);
    assert_eq!(d.derivation_path, "m/44'/60'/0'/0/0");
    let c = load(
        "[engines.dynamic]\nenvironment_id = \"e\"\napi_base_url = \"https://app.dynamic-preprod.xyz\"\nrelay_base_url = \"relay.dynamic-preprod.xyz\"\nconnect_timeout = \"2s\"\nrequest_timeout = \"45s\"\n",
    )
    .unwrap();
    assert_eq!(
        c.engines.dynamic.unwrap().request_timeout,
        Duration::from_secs(45)
    );
    for (bad, key) in [
        ("[engines.dynamic]\n", "engines.dynamic"),
        (
            "[engines.dynamic]\nenvironment_id = \"\"\n",
            "engines.dynamic.environment_id",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\napi_base_url = \"ftp://x\"\n",
            "engines.dynamic.api_base_url",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\nrequest_timeout = \"0s\"\n",
            "engines.dynamic.request_timeout",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\napi_base_url = \"http://app.dynamicauth.com\"\n",
            "engines.dynamic.api_base_url",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\nrelay_base_url = \"https://relay.dynamicauth.com\"\n",
            "engines.dynamic.relay_base_url",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\nmax_concurrent_rounds = 0\n",
            "engines.dynamic.max_concurrent_rounds",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\nderivation_path = \"m/x\"\n",
            "engines.dynamic.derivation_path",
        ),
        (
            "[engines.dynamic]\nenvironment_id = \"e\"\napi_key = \"dyn_x\"\n",
            "engines.dynamic",
        ),
        ("[engines.other]\n", "engines"),
    ] {
        let e = load(bad).err().unwrap_or_else(|| panic!("accepted: {bad}"));
        assert!(e.to_string().contains(key), "{bad}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_is_chosen_from_the_stored_wallet() {
    let double = Double::new();
    let s = start("", |_| None).await;
    let plain = Signer::new(s.app.token.clone());
    let injected = Signer::new(s.app.token.clone()).with_mpc_engine(double.clone());
    let local = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let mpc = s.mpc_wallet(Chain::Evm, evm_address_of(&double.evm));
    let sol = s.mpc_wallet(
        Chain::Solana,
        solana::to_base58(&solana::pubkey_of(&double.sol)),
    );

    assert_eq!(
        plain.engine_for(&local, Chain::Evm).unwrap().name(),
        "local"
    );
    assert_eq!(
        injected.engine_for(&local, Chain::Evm).unwrap().name(),
        "local"
    );
    let e = plain.engine_for(&mpc, Chain::Evm).err().unwrap();
    assert_eq!(e.code(), "engine_unavailable");
    assert!(e.to_string().contains("dynamic-mpc"));
    assert_eq!(
        injected.engine_for(&mpc, Chain::Evm).unwrap().name(),
        "test-double"
    );
    assert_eq!(
        injected.engine_for(&sol, Chain::Solana).unwrap().name(),
        "test-double"
    );
    assert_eq!(
        injected.engine_for(&sol, Chain::Evm).err().unwrap().code(),
        "wrong_chain"
    );
    // the local engine's synchronous path never serves an mpc wallet
    assert_eq!(
        plain
            .sign_evm_digest(&mpc, &Default::default())
            .unwrap_err()
            .code(),
        "engine_unavailable"
    );

    // through the API: a config without [engines.dynamic] keeps mpc wallets at 409
    let a = s
        .post(&path(&mpc, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["error"]["code"], "engine_unavailable");
    assert_eq!(double.calls.load(Ordering::SeqCst), 0);
}

#[cfg(not(feature = "dynamic-mpc"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_feature_a_configured_engine_is_still_unavailable() {
    let s = start(
        "[engines.dynamic]\nenvironment_id = \"3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90\"\n",
        |_| None,
    )
    .await;
    let (_, address) = keyward::wallet_key::generate(Chain::Evm);
    let mpc = s.mpc_wallet(Chain::Evm, address);
    let a = s
        .post(&path(&mpc, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["error"]["code"], "engine_unavailable");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dynamic-mpc"));
    let text = logs().text();
    assert!(
        text.contains("built without the cargo feature `dynamic-mpc`"),
        "the startup warning is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_signed_answers_are_verified_before_they_leave() {
    let double = Double::new();
    let s = start("", with_double(&double)).await;

    // the double holds the wallet's key: every operation signs and verifies
    let evm_w = s.mpc_wallet(Chain::Evm, evm_address_of(&double.evm));
    let sol_w = s.mpc_wallet(
        Chain::Solana,
        solana::to_base58(&solana::pubkey_of(&double.sol)),
    );
    let from = evm_w.address.clone().unwrap();
    for (op, body) in [
        ("evm/message", json!({"message": "hello"})),
        ("evm/typed-data", json!({"typedData": mail_typed_data()})),
        ("evm/transaction", json!({"transaction": eip1559(&from)})),
    ] {
        let a = s.post(&path(&evm_w, op), body).await;
        assert_eq!(a.status, StatusCode::OK, "{op}: {}", a.body);
        assert!(a.body["auditId"].is_string());
    }
    let a = s
        .post(&path(&sol_w, "solana/message"), json!({"message": "hello"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // the engine was told what each EVM signature is for
    assert_eq!(double.seen.lock().unwrap().len(), 3);
    let kinds: std::collections::HashSet<String> =
        double.seen.lock().unwrap().iter().cloned().collect();
    assert_eq!(kinds.len(), 3, "message, typed data and transaction differ");

    // the double answers for another key: 502, audited, nothing returned
    let evm_liar = s.mpc_wallet(
        Chain::Evm,
        evm_address_of(&k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
    );
    let liar_from = evm_liar.address.clone().unwrap();
    for (op, body) in [
        ("evm/message", json!({"message": "hello"})),
        ("evm/typed-data", json!({"typedData": mail_typed_data()})),
        (
            "evm/transaction",
            json!({"transaction": eip1559(&liar_from)}),
        ),
    ] {
        let before = double.calls.load(Ordering::SeqCst);
        let a = s.post(&path(&evm_liar, op), body).await;
        assert_eq!(double.calls.load(Ordering::SeqCst), before + 1);
        s.assert_cosigner_error(&a, "cosigner_bad_signature");
        assert!(a.body.get("rawTransaction").is_none());
    }
    let sol_liar = s.mpc_wallet(
        Chain::Solana,
        solana::to_base58(&solana::pubkey_of(&ed25519_dalek::SigningKey::generate(
            &mut rand::rngs::OsRng,
        ))),
    );
    let a = s
        .post(
            &path(&sol_liar, "solana/message"),
            json!({"message": "hello"}),
        )
        .await;
    s.assert_cosigner_error(&a, "cosigner_bad_signature");

    // the same check at the Signer: the error, not the signature
    let signer = Signer::new(s.app.token.clone()).with_mpc_engine(double.clone());
    let e = signer
        .sign_evm(&evm_liar, &EvmRequest::digest(Default::default()))
        .await
        .unwrap_err();
    assert!(matches!(e, SignError::CosignerBadSignature { .. }), "{e}");
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_signing_never_reach_the_engine() {
    let double = Double::new();
    let s = start("", with_double(&double)).await;
    let w = s.mpc_wallet(Chain::Evm, evm_address_of(&double.evm));

    // no grant for this wallet
    let narrow = s
        .env
        .pki
        .ca
        .client("narrow-client", None, keyward::pki::Validity::Current, 77)
        .unwrap();
    let a = s
        .client_with(&narrow)
        .post(&path(&w, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "not_authorized");
    // a malformed request, a dry run
    let a = s
        .post(
            &path(&w, "evm/transaction"),
            json!({"transaction": {"chainId": "0x1"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let a = s
        .post(
            &format!("{}?dryRun=true", path(&w, "evm/message")),
            json!({"message": "hi"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["dryRun"], true);
    assert_eq!(double.calls.load(Ordering::SeqCst), 0, "no engine call");
}

// ---------------------------------------------------------------------------------------
// the real engine against loopback stand-ins for the vendor (feature `dynamic-mpc`)
// ---------------------------------------------------------------------------------------

#[cfg(feature = "dynamic-mpc")]
mod vendor {
    use super::*;
    use keyward::signer::dynamic::{DynamicEngine, RoundStats};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ENV_ID: &str = "3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90";
    const TIMEOUT_MS: u64 = 1500;

    /// `[engines.dynamic]` for a stand-in API and a bare relay `host:port`.
    fn engines(api: &str, relay: &str, extra: &str) -> String {
        engines_timeout(api, relay, TIMEOUT_MS, extra)
    }

    fn engines_timeout(api: &str, relay: &str, timeout_ms: u64, extra: &str) -> String {
        format!(
            "[engines.dynamic]\nenvironment_id = \"{ENV_ID}\"\napi_base_url = \"{api}\"\nrelay_base_url = \"{relay}\"\nconnect_timeout = \"500ms\"\nrequest_timeout = \"{timeout_ms}ms\"\n{extra}"
        )
    }

    /// Waits (bounded: a hang fails the test) until `cond` holds.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..1200 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never happened: {what}");
    }

    /// The vendor's library refused the (made-up) test share: see
    /// `unreachable_relay_is_cosigner_unavailable`.
    fn share_refused(m: &str) -> bool {
        m.to_ascii_lowercase().contains("invalid secret share")
    }

    /// The API with the real engine built from its config, as `serve` builds it; the
    /// engine is kept for its round counters.
    async fn start_real(extra: &str) -> (Server, Arc<DynamicEngine>) {
        let slot: Arc<Mutex<Option<Arc<DynamicEngine>>>> = Arc::default();
        let keep = slot.clone();
        let s = start(extra, move |app: &Arc<Appliance>| {
            let config = app
                .config()
                .engines
                .dynamic
                .clone()
                .expect("[engines.dynamic]");
            let engine = Arc::new(DynamicEngine::new(app.token.clone(), config));
            *keep.lock().unwrap() = Some(engine.clone());
            Some(Signer::new(app.token.clone()).with_mpc_engine(engine))
        })
        .await;
        let engine = slot.lock().unwrap().take().unwrap();
        (s, engine)
    }

    /// Waits until no round of `engine` holds a slot any more (the vendor library's
    /// blocking call returned), and returns its counters.
    async fn settled(engine: &DynamicEngine) -> RoundStats {
        // a bound on a hang, not a performance threshold: the library's own waits are
        // about 30 s
        for _ in 0..1200 {
            let s = engine.round_stats();
            if s.running == 0 {
                assert_eq!(s.abandoned, 0, "{s:?}");
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rounds still running: {:?}", engine.round_stats());
    }

    /// A loopback port with nothing listening.
    async fn closed_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        port
    }

    /// Accepts connections and runs `serve` on each; counts them.
    async fn listener<F, Fut>(serve: F) -> (u16, Arc<AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let serve = Arc::new(serve);
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let serve = serve.clone();
                tokio::spawn(async move { serve(sock).await });
            }
        });
        (port, count)
    }

    /// Reads until the peer leaves (or a minute passes).
    async fn drain(sock: &mut tokio::net::TcpStream) {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(n) = sock.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// A TLS server on loopback (self-signed for 127.0.0.1): `garbage` answers bytes that
    /// are no handshake; otherwise it handshakes (if the client trusts it) and is silent.
    async fn tls_listener(garbage: bool) -> (u16, Arc<AtomicUsize>) {
        let ca = keyward::pki::DevCa::new("not the vendor").unwrap();
        let issued = ca.server(&["127.0.0.1", "localhost"], 9).unwrap();
        let acceptor = common::https::acceptor(&issued);
        listener(move |sock| {
            let acceptor = acceptor.clone();
            async move {
                if garbage {
                    let mut sock = sock;
                    let _ = sock
                        .write_all(b"\x17\x03\x03\x00\x05garbage, not a server hello\r\n")
                        .await;
                    let _ = sock.shutdown().await;
                } else if let Ok(mut tls) = acceptor.accept(sock).await {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                } else {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        })
        .await
    }

    /// A loopback TCP port that accepts and never says anything.
    async fn silent_listener() -> (u16, Arc<AtomicUsize>) {
        listener(|mut sock| async move { drain(&mut sock).await }).await
    }

    /// A loopback TCP port that accepts and closes at once.
    async fn slamming_listener() -> (u16, Arc<AtomicUsize>) {
        listener(|sock| async move { drop(sock) }).await
    }

    /// One request the vendor stand-in received.
    #[derive(Clone, Debug)]
    struct Seen {
        head: String,
        body: Value,
    }

    impl Seen {
        /// The request line's path.
        fn path(&self) -> &str {
            self.head.split(' ').nth(1).unwrap_or_default()
        }

        fn header(&self, name: &str) -> Option<String> {
            self.head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        }
    }

    /// What the stand-in answers, as raw bytes after the request.
    #[derive(Clone)]
    enum Reply {
        /// These bytes, then the connection closes.
        Close(Vec<u8>),
        /// These bytes, then the connection stays open until the client leaves.
        Hold(Vec<u8>),
        /// The event-stream head, then nothing until the test lets one connection through
        /// the gate; then these bytes, and close.
        Gated(Arc<tokio::sync::Semaphore>, Vec<u8>),
    }

    /// The vendor API stand-in (plain HTTP on 127.0.0.1): records every request, answers
    /// with whatever `reply` holds at the time.
    struct VendorApi {
        port: u16,
        seen: Arc<Mutex<Vec<Seen>>>,
        reply: Arc<Mutex<Reply>>,
        /// Most requests it was answering at once.
        most_open: Arc<AtomicUsize>,
    }

    impl VendorApi {
        async fn start(reply: Reply) -> VendorApi {
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let reply = Arc::new(Mutex::new(reply));
            let open = Arc::new(AtomicUsize::new(0));
            let most_open = Arc::new(AtomicUsize::new(0));
            let (s, r, o, m) = (seen.clone(), reply.clone(), open.clone(), most_open.clone());
            let (port, _) = listener(move |mut sock| {
                let (seen, reply, open, most) = (s.clone(), r.clone(), o.clone(), m.clone());
                async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    seen.lock().unwrap().push(req);
                    let reply = reply.lock().unwrap().clone();
                    match reply {
                        Reply::Gated(gate, bytes) => {
                            let _ = sock.write_all(SSE_HEAD.as_bytes()).await;
                            let _ = sock.flush().await;
                            gate.acquire().await.unwrap().forget();
                            let _ = sock.write_all(&bytes).await;
                            let _ = sock.shutdown().await;
                        }
                        Reply::Close(bytes) => {
                            let _ = sock.write_all(&bytes).await;
                            let _ = sock.shutdown().await;
                        }
                        Reply::Hold(bytes) => {
                            let _ = sock.write_all(&bytes).await;
                            drain(&mut sock).await;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .await;
            VendorApi {
                port,
                seen,
                reply,
                most_open,
            }
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        fn answer(&self, reply: Reply) {
            *self.reply.lock().unwrap() = reply;
        }

        /// The request received last (and forget it).
        fn last(&self) -> Seen {
            self.seen
                .lock()
                .unwrap()
                .pop()
                .expect("a request reached the stand-in")
        }

        fn count(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = sock.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body =
                    serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
                return Some(Seen { head, body });
            }
        }
    }

    /// An HTTP answer with a JSON body, then close.
    fn http_json(status: &str, body: &str) -> Reply {
        Reply::Close(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

    /// An event stream carrying `events`, then `close` or silence.
    fn sse(events: &[u8], close: bool) -> Reply {
        let mut bytes = SSE_HEAD.as_bytes().to_vec();
        bytes.extend_from_slice(events);
        if close {
            Reply::Close(bytes)
        } else {
            Reply::Hold(bytes)
        }
    }

    /// A `room_created` event with a room id as the vendor makes them (32 hex, no dashes).
    fn room_created() -> String {
        format!(
            "event: room_created\ndata: {{\"roomId\":\"{}\",\"serverKeygenIds\":[\"k1\"]}}\n\n",
            uuid::Uuid::new_v4().simple()
        )
    }

    async fn two_wallets(s: &Server) -> (Wallet, Wallet) {
        let (_, evm_addr) = keyward::wallet_key::generate(Chain::Evm);
        let (_, sol_addr) = keyward::wallet_key::generate(Chain::Solana);
        (
            s.mpc_wallet(Chain::Evm, evm_addr),
            s.mpc_wallet(Chain::Solana, sol_addr),
        )
    }

    // -----------------------------------------------------------------------------------
    // wire format: what keyward sends the vendor API is what the vendor's crates send
    // -----------------------------------------------------------------------------------

    use dynamic_waas_sdk::WalletProperties;
    use dynamic_waas_sdk::{DelegatedWalletClient, DelegatedWalletClientOpts, ServerKeyShare};
    use dynamic_waas_sdk_evm::alloy_consensus as vc;
    use dynamic_waas_sdk_evm::alloy_dyn_abi::TypedData as VendorTypedData;
    use dynamic_waas_sdk_evm::alloy_eips::eip2930 as v2930;
    use dynamic_waas_sdk_evm::alloy_primitives as vp;
    use dynamic_waas_sdk_evm::DelegatedEvmWalletClient;
    use dynamic_waas_sdk_svm::DelegatedSvmWalletClient;

    fn vendor_client(api: &VendorApi, relay: u16) -> DelegatedWalletClient {
        DelegatedWalletClient::new(
            DelegatedWalletClientOpts::new(ENV_ID, API_KEY)
                .base_api_url(api.url())
                .base_mpc_relay_url(format!("127.0.0.1:{relay}")),
        )
        .unwrap()
    }

    fn vendor_share() -> Vec<ServerKeyShare> {
        vec![ServerKeyShare::new("ks-1", SHARE_SECRET)]
    }

    fn addr(s: &str) -> vp::Address {
        s.parse().unwrap()
    }

    /// The vendor SDK errors the stand-in's refusal; what matters is what it sent.
    fn refused<T>(r: Result<T, dynamic_waas_sdk::Error>) {
        match r {
            Err(dynamic_waas_sdk::Error::Http { status: 400, .. }) => {}
            Err(e) => panic!("the vendor crate failed otherwise: {e}"),
            Ok(_) => panic!("the stand-in refuses every request"),
        }
    }

    /// Asserts keyward's last request equals the vendor crate's, byte for byte in the
    /// fields that matter, and returns keyward's.
    fn same_request(what: &str, ours: &Seen, theirs: &Seen) -> Value {
        assert_eq!(ours.path(), theirs.path(), "{what}: path");
        for field in ["message", "isFormatted"] {
            assert!(!ours.body[field].is_null(), "{what}: {field} missing");
            assert_eq!(ours.body[field], theirs.body[field], "{what}: {field}");
        }
        // nothing else either (the vendor SDK adds no other field for these calls)
        assert_eq!(ours.body, theirs.body, "{what}: body");
        assert_eq!(
            ours.header("x-dyn-wallet-api-key").as_deref(),
            Some(API_KEY),
            "{what}: the per-wallet API key travels as x-dyn-wallet-api-key"
        );
        ours.body.clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sign_requests_match_the_vendor_crates_byte_for_byte() {
        let api = VendorApi::start(http_json(
            "400 Bad Request",
            r#"{"error":"recorded by the stand-in"}"#,
        ))
        .await;
        let (relay, relay_hits) = silent_listener().await;
        let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        let from = evm_w.address.clone().unwrap();
        let vendor = vendor_client(&api, relay);
        let evm = DelegatedEvmWalletClient::new(&vendor);
        let svm = DelegatedSvmWalletClient::new(&vendor);
        let evm_wp = WalletProperties::new("EVM", evm_w.id.as_str(), from.as_str());
        let sol_wp =
            WalletProperties::new("SVM", sol_w.id.as_str(), sol_w.address.clone().unwrap());
        let shares = vendor_share();

        // keyward through its API (the wallet's grant, parsing, engine), then the vendor
        let ours = |op: &'static str, w: &Wallet, body: Value| {
            let (s, api, w) = (&s, &api, w.clone());
            async move {
                let a = s.post(&path(&w, op), body).await;
                s.assert_cosigner_error(&a, "cosigner_rejected");
                api.last()
            }
        };

        // evm.message: UTF-8 with multi-byte characters (EIP-191 counts bytes)
        let text = "héllo wörld — keyward";
        let k = ours("evm/message", &evm_w, json!({ "message": text })).await;
        refused(evm.sign_message(&evm_wp, &shares, text).await);
        let body = same_request("evm.message", &k, &api.last());
        assert_eq!(body["isFormatted"], false);
        assert!(body["message"].as_str().unwrap().starts_with("0x19457468"));

        // evm.typed_data
        let typed = mail_typed_data();
        let k = ours("evm/typed-data", &evm_w, json!({ "typedData": typed })).await;
        let vendor_typed: VendorTypedData = serde_json::from_value(typed.clone()).unwrap();
        refused(evm.sign_typed_data(&evm_wp, &shares, &vendor_typed).await);
        let typed_body = same_request("evm.typed_data", &k, &api.last());
        assert_eq!(typed_body["isFormatted"], true);

        // evm.hash: the typed-data call with the digest the client computed
        let digest = keyward::chains::evm::typed_data(&typed).unwrap().digest;
        let k = ours(
            "evm/hash",
            &evm_w,
            json!({ "digest": format!("{digest:#x}") }),
        )
        .await;
        refused(evm.sign_typed_data(&evm_wp, &shares, &vendor_typed).await);
        same_request("evm.hash", &k, &api.last());

        // evm.transaction, every type keyward signs
        let to = "0x3535353535353535353535353535353535353535";
        let slot = format!("0x{}", "01".repeat(32));
        let access = json!([{ "address": to, "storageKeys": [slot] }]);
        let vendor_access = v2930::AccessList(vec![v2930::AccessListItem {
            address: addr(to),
            storage_keys: vec![slot.parse().unwrap()],
        }]);
        let data = vp::Bytes::from(vec![0xde, 0xad, 0xbe, 0xef]);

        let legacy = json!({
            "type": "0x0", "chainId": "0x1", "nonce": "0x7", "from": from, "to": to,
            "value": "0xde0b6b3a7640000", "gas": "0x5208", "gasPrice": "0x4a817c800",
            "data": "0xdeadbeef"
        });
        let k = ours("evm/transaction", &evm_w, json!({ "transaction": legacy })).await;
        let tx = vc::TxLegacy {
            chain_id: Some(1),
            nonce: 7,
            gas_price: 20_000_000_000,
            gas_limit: 21_000,
            to: vp::TxKind::Call(addr(to)),
            value: vp::U256::from(1_000_000_000_000_000_000u128),
            input: data.clone(),
        };
        refused(evm.sign_transaction(&evm_wp, &shares, tx).await);
        same_request("legacy transaction", &k, &api.last());

        let eip2930 = json!({
            "type": "0x1", "chainId": "0x89", "nonce": "0x0", "to": to, "value": "0x0",
            "gas": "0x7530", "gasPrice": "0x3b9aca00", "data": "0xdeadbeef",
            "accessList": access
        });
        let k = ours("evm/transaction", &evm_w, json!({ "transaction": eip2930 })).await;
        let tx = vc::TxEip2930 {
            chain_id: 137,
            nonce: 0,
            gas_price: 1_000_000_000,
            gas_limit: 30_000,
            to: vp::TxKind::Call(addr(to)),
            value: vp::U256::ZERO,
            access_list: vendor_access.clone(),
            input: data.clone(),
        };
        refused(evm.sign_transaction(&evm_wp, &shares, tx).await);
        same_request("EIP-2930 transaction", &k, &api.last());

        let eip1559 = json!({
            "type": "0x2", "chainId": "0xa", "nonce": "0x2a", "from": from, "to": to,
            "value": "0x1", "gas": "0x186a0", "maxFeePerGas": "0x4a817c800",
            "maxPriorityFeePerGas": "0x3b9aca00", "data": "0xdeadbeef", "accessList": access
        });
        let k = ours("evm/transaction", &evm_w, json!({ "transaction": eip1559 })).await;
        let tx = vc::TxEip1559 {
            chain_id: 10,
            nonce: 42,
            gas_limit: 100_000,
            max_fee_per_gas: 20_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to: vp::TxKind::Call(addr(to)),
            value: vp::U256::from(1u8),
            access_list: vendor_access,
            input: data.clone(),
        };
        refused(evm.sign_transaction(&evm_wp, &shares, tx).await);
        same_request("EIP-1559 transaction", &k, &api.last());

        // contract creation (no `to`)
        let create = json!({
            "type": "0x2", "chainId": "0x1", "nonce": "0x0", "value": "0x0", "gas": "0x30d40",
            "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "data": "0x6000600055"
        });
        let k = ours("evm/transaction", &evm_w, json!({ "transaction": create })).await;
        let tx = vc::TxEip1559 {
            chain_id: 1,
            nonce: 0,
            gas_limit: 200_000,
            max_fee_per_gas: 2,
            max_priority_fee_per_gas: 1,
            to: vp::TxKind::Create,
            value: vp::U256::ZERO,
            access_list: Default::default(),
            input: vp::Bytes::from(vec![0x60, 0x00, 0x60, 0x00, 0x55]),
        };
        refused(evm.sign_transaction(&evm_wp, &shares, tx).await);
        same_request("contract creation", &k, &api.last());

        // solana.message: UTF-8 text, and bytes that are not UTF-8
        let k = ours(
            "solana/message",
            &sol_w,
            json!({ "message": "héllo solana" }),
        )
        .await;
        refused(svm.sign_message(&sol_wp, &shares, "héllo solana").await);
        let body = same_request("solana.message", &k, &api.last());
        assert_eq!(body["message"], hex::encode("héllo solana"));
        let raw = [0xffu8, 0x00, 0x9f, 0x92, 0x96, 0x01];
        let k = ours(
            "solana/message",
            &sol_w,
            json!({ "message": hex::encode(raw), "encoding": "hex" }),
        )
        .await;
        // the vendor's byte-level call is its transaction call (same wire format)
        refused(svm.sign_transaction(&sol_wp, &shares, &raw).await);
        same_request("solana.message (bytes)", &k, &api.last());

        // solana.transaction: the transaction's message bytes
        let pk = solana::parse_pubkey(sol_w.address.as_deref().unwrap()).unwrap();
        let tx = common::solana_tx(&pk, None, true);
        let k = ours(
            "solana/transaction",
            &sol_w,
            json!({ "transaction": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &tx) }),
        )
        .await;
        let message = &tx[1 + 64..];
        refused(svm.sign_transaction(&sol_wp, &shares, message).await);
        same_request("solana.transaction", &k, &api.last());

        assert_eq!(api.count(), 0, "one request per call");
        let stats = settled(&engine).await;
        assert_eq!((stats.started, stats.aborted), (10, 0), "{stats:?}");
        // a refused request never reaches the relay
        assert_eq!(relay_hits.load(Ordering::SeqCst), 0);
        assert_no_secret_logged();
    }

    // -----------------------------------------------------------------------------------
    // failure paths, each to its documented code
    // -----------------------------------------------------------------------------------

    /// Posts `evm/message` and `solana/message` and expects `code` for both.
    async fn both_fail(s: &Server, evm_w: &Wallet, sol_w: &Wallet, code: &str) -> Vec<String> {
        let mut messages = Vec::new();
        for (w, op) in [(evm_w, "evm/message"), (sol_w, "solana/message")] {
            let a = s.post(&path(w, op), json!({"message": "hi"})).await;
            s.assert_cosigner_error(&a, code);
            messages.push(a.body["error"]["message"].as_str().unwrap().to_owned());
        }
        messages
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn event_stream_failures_answer_their_documented_codes() {
        let api = VendorApi::start(sse(b"", true)).await;
        let (relay, relay_hits) = slamming_listener().await;
        let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
        let (evm_w, sol_w) = two_wallets(&s).await;

        // the vendor's own refusals: an error event (with and without a message), a 4xx
        for (reply, says) in [
            (
                sse(
                    b"event: error\ndata: {\"error\":\"wallet is locked by the vendor\"}\n\n",
                    false,
                ),
                "wallet is locked by the vendor",
            ),
            (
                sse(b"event: error\ndata: {\"code\":7}\n\n", true),
                "Unknown error",
            ),
            (
                http_json("403 Forbidden", r#"{"error":"delegation revoked"}"#),
                "HTTP 403",
            ),
        ] {
            api.answer(reply);
            for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
                assert!(m.contains(says), "{m}");
            }
        }

        // everything else: the SDK's own stream failures and garbage
        let mut not_utf8 = b"event: room_created\ndata: ".to_vec();
        not_utf8.extend([0xff, 0xfe, 0xfd]);
        not_utf8.extend(b"\n\n");
        for (reply, says) in [
            // the stream ends before any room
            (sse(b"", true), "stream ended before trigger event"),
            (sse(b"event: keepalive\ndata: {}\n\n", true), "stream ended before trigger event"),
            (sse(b"this is not an event stream\r\n\r\n", true), "stream ended before trigger event"),
            (sse(&not_utf8, true), "non-UTF-8 SSE chunk"),
            (
                sse(b"event: room_created\ndata: not json\n\n", true),
                "room_created payload was not JSON",
            ),
            (sse(b"event: room_created\ndata: {\"room\":1}\n\n", true), "serialization error"),
            // a body cut short: the SDK's reader reports a stream error
            (
                Reply::Close(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk"
                        .to_vec(),
                ),
                "stream error",
            ),
            (http_json("503 Service Unavailable", "{}"), "HTTP 503"),
            (http_json("429 Too Many Requests", "{}"), "HTTP 429"),
            (Reply::Close(b"garbage, not HTTP\r\n\r\n".to_vec()), "network error"),
        ] {
            api.answer(reply);
            for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
                assert!(m.contains(says), "{says}: {m}");
            }
        }
        let stats = settled(&engine).await;
        assert_eq!((stats.started, stats.aborted), (26, 0), "{stats:?}");
        assert_eq!(relay_hits.load(Ordering::SeqCst), 0, "no room, no relay");

        // a room, then the stream ends: the SDK hands the round to the vendor's library,
        // which refuses the test share before it would connect
        api.answer(sse(room_created().as_bytes(), true));
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
            assert!(share_refused(&m), "{m}");
        }
        settled(&engine).await;
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silence_past_the_timeout_aborts_the_round() {
        // the API opens the stream and says nothing more
        let api = VendorApi::start(sse(b"", false)).await;
        let relay = closed_port().await;
        let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
            assert!(m.contains("did not finish within 1s 500ms"), "{m}");
        }
        // both rounds were cancelled with their request; their threads end without the
        // relay (no blocking call was running)
        let stats = settled(&engine).await;
        assert_eq!((stats.started, stats.aborted), (2, 2), "{stats:?}");
        assert!(metric("keyward_mpc_rounds_aborted_total") >= 2.0);
        // the stand-in saw the client leave: the SDK's connection was closed, not left
        // reading a stream nobody waits for
        assert_eq!(api.count(), 2);
        assert_no_secret_logged();
    }

    /// The vendor's library checks, in this order, the relay host (a bare `host:port`:
    /// a scheme is "Invalid host URL"), the room id (32 hex: a dashed UUID is "Invalid
    /// UUID"), then the share, before any network access. The test share is not a real
    /// share (those come only out of a keygen with the vendor), so the library stops at
    /// that last check: the answer proves the configured relay and the vendor's room id
    /// were accepted; the relay port sees no connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_relay_is_cosigner_unavailable() {
        let api = VendorApi::start(sse(room_created().as_bytes(), false)).await;
        let (relay, relay_hits) = slamming_listener().await;
        let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
            assert!(
                share_refused(&m) && !m.contains("Invalid host URL") && !m.contains("Invalid UUID"),
                "{m}"
            );
        }
        let seen = api.last();
        assert!(
            seen.path().starts_with(&format!(
                "/api/v0/sdk/{ENV_ID}/waas/{}/signMessage",
                sol_w.id
            )),
            "{}",
            seen.head
        );
        assert_eq!(relay_hits.load(Ordering::SeqCst), 0);
        let stats = settled(&engine).await;
        assert_eq!((stats.started, stats.aborted), (2, 0));
        assert_no_secret_logged();
    }

    /// The value of metric `name` in `/metrics`.
    fn metric(name: &str) -> f64 {
        let text = keyward::metrics::render();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
            .parse()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rounds_wait_for_a_free_slot() {
        // the vendor holds each round open until the test lets it through
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let api = VendorApi::start(Reply::Gated(
            gate.clone(),
            b"event: error\ndata: {\"error\":\"released by the test\"}\n\n".to_vec(),
        ))
        .await;
        let relay = closed_port().await;
        let (s, engine) = start_real(&engines_timeout(
            &api.url(),
            &format!("127.0.0.1:{relay}"),
            60_000,
            "max_concurrent_rounds = 1\n",
        ))
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        let first = async {
            let a = s
                .post(&path(&evm_w, "evm/message"), json!({"message": "one"}))
                .await;
            s.assert_cosigner_error(&a, "cosigner_rejected");
        };
        let second = async {
            until("the first round reached the vendor", || api.count() == 1).await;
            let a = s
                .post(&path(&sol_w, "solana/message"), json!({"message": "two"}))
                .await;
            s.assert_cosigner_error(&a, "cosigner_rejected");
        };
        let referee = async {
            until("the second request waits for the slot", || {
                engine.round_stats().waiting == 1
            })
            .await;
            assert!(metric("keyward_mpc_rounds_waiting") >= 1.0);
            assert!(metric("keyward_mpc_rounds_running") >= 1.0);
            let stats = engine.round_stats();
            assert_eq!((stats.started, stats.running), (1, 1), "{stats:?}");
            assert_eq!(api.count(), 1, "the second round has not started");
            gate.add_permits(1);
            until("the second round reached the vendor", || {
                engine.round_stats().started == 2 && api.count() == 2
            })
            .await;
            gate.add_permits(1);
        };
        tokio::join!(first, second, referee);
        assert_eq!(
            api.most_open.load(Ordering::SeqCst),
            1,
            "one round at a time"
        );
        let stats = settled(&engine).await;
        assert_eq!((stats.started, stats.aborted, stats.waiting), (2, 0, 0));
        assert!(metric("keyward_mpc_rounds_started_total") >= 2.0);
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_port_refusing_connections_is_cosigner_unavailable() {
        let port = closed_port().await;
        let relay = closed_port().await;
        let (s, engine) = start_real(&engines(
            &format!("http://127.0.0.1:{port}"),
            &format!("127.0.0.1:{relay}"),
            "",
        ))
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        let from = evm_w.address.clone().unwrap();
        for (op, body) in [
            ("evm/message", json!({"message": "hi"})),
            ("evm/typed-data", json!({"typedData": mail_typed_data()})),
            ("evm/transaction", json!({"transaction": eip1559(&from)})),
            (
                "evm/hash",
                json!({"digest": format!("0x{}", "11".repeat(32))}),
            ),
        ] {
            let a = s.post(&path(&evm_w, op), body).await;
            s.assert_cosigner_error(&a, "cosigner_unavailable");
            let m = a.body["error"]["message"].as_str().unwrap();
            assert!(m.contains("unreachable"), "{op}: {m}");
        }
        let a = s
            .post(&path(&sol_w, "solana/message"), json!({"message": "hi"}))
            .await;
        s.assert_cosigner_error(&a, "cosigner_unavailable");
        // refused before a round started
        assert_eq!(engine.round_stats(), RoundStats::default());
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_garbage_and_silence_are_cosigner_unavailable() {
        let (garbage, garbage_hits) = tls_listener(true).await;
        let (hang_tls, hang_hits) = tls_listener(false).await;
        let (silent, silent_hits) = silent_listener().await;
        let relay = closed_port().await;
        for (port, hits) in [
            (garbage, garbage_hits),
            (hang_tls, hang_hits),
            (silent, silent_hits),
        ] {
            let (s, engine) = start_real(&engines(
                &format!("https://127.0.0.1:{port}"),
                &format!("127.0.0.1:{relay}"),
                "",
            ))
            .await;
            let (evm_w, sol_w) = two_wallets(&s).await;
            both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await;
            assert!(
                hits.load(Ordering::SeqCst) >= 2,
                "the stand-in was contacted"
            );
            settled(&engine).await;
        }
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vendor_refusal_is_cosigner_rejected_with_its_message_and_no_secret() {
        // a vendor that quotes the key back must not get it into our answer
        let body =
            format!(r#"{{"error":"invalid wallet api key {API_KEY}","code":"unauthorized"}}"#);
        let api = VendorApi::start(http_json("401 Unauthorized", &body)).await;
        let relay = closed_port().await;
        let (s, _) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
            assert!(
                m.contains("invalid wallet api key") && m.contains("<redacted>"),
                "{m}"
            );
        }
        // and an error event quoting the share
        api.answer(sse(
            format!("event: error\ndata: {{\"error\":\"bad share {SHARE_SECRET}\"}}\n\n")
                .as_bytes(),
            true,
        ));
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
            assert!(m.contains("bad share <redacted>"), "{m}");
        }
        assert_no_secret_logged();
    }
}

/// An engine with a bug: it panics while signing.
struct Panicking;

impl Engine for Panicking {
    fn name(&self) -> &'static str {
        "panicking"
    }

    fn sign_evm<'a>(
        &'a self,
        _wallet: &'a Wallet,
        _request: &'a EvmRequest,
    ) -> EngineFuture<'a, RecoverableSig> {
        Box::pin(async move { panic!("engine bug while signing") })
    }

    fn sign_solana<'a>(
        &'a self,
        _wallet: &'a Wallet,
        _kind: SolanaKind,
        _message: &'a [u8],
    ) -> EngineFuture<'a, [u8; 64]> {
        panic!("engine bug before the future")
    }
}

/// Issue 13: a panic inside a sign request is that request's 500 `internal_error`, with
/// its audit record; the appliance keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_with_an_audit_record() {
    let s = start("", |app| {
        Some(Signer::new(app.token.clone()).with_mpc_engine(Arc::new(Panicking)))
    })
    .await;
    let key = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let evm_mpc = s.mpc_wallet(Chain::Evm, evm_address_of(&key));
    let sol_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let sol_mpc = s.mpc_wallet(
        Chain::Solana,
        solana::to_base58(&solana::pubkey_of(&sol_key)),
    );
    for (route_, body) in [
        (path(&evm_mpc, "evm/message"), json!({"message": "hi"})),
        (path(&sol_mpc, "solana/message"), json!({"message": "hi"})),
    ] {
        let a = s.post(&route_, body).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")),
            "{}",
            a.body
        );
        assert!(a.body.get("signature").is_none());
        let rec = s.record(a.body["auditId"].as_str().expect("auditId"));
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            ("error", "internal_error")
        );
    }
    // still serving, and the audit chain is whole
    let local = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let a = s
        .post(&path(&local, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(s.app.store.read(audit::verify).unwrap().is_ok());
}
