//! `mpc` wallets (vendor Delegated Access shares) on the signing API, offline.
//!
//! Always built: engine selection from the stored wallet, the `[engines]` config schema,
//! refusals that never reach an engine, and the verify-before-answer check, driven by a
//! test engine injected through `Signer::with_mpc_engine` — a double for the vendor's
//! network round only; the verification and the API path under test are the real ones.
//!
//! With `--features dynamic-mpc`: the real engine (the vendor's SDK) against loopback
//! stand-ins for the vendor — a port that refuses connections, a TLS port that answers
//! garbage, one that never answers, a fake API whose relay is unreachable, and a fake API
//! that refuses the key — each a clean 502 within the timeout, audited, with neither the
//! share nor the API key in any log line or answer. The real round with the vendor's
//! relay needs the vendor's network and is not exercised here.
//!
//! Its own binary: the log capture is a process-wide subscriber.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use common::{Env, EnvOptions};
use ed25519_dalek::Signer as _;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keyward::appliance::Appliance;
use keyward::chains::evm::{self, RecoverableSig};
use keyward::chains::solana;
use keyward::config::Config;
use keyward::custody::{self, Binding, Purpose};
use keyward::signer::{Engine, EngineFuture, EvmRequest, SignError, Signer, SolanaKind};
use keyward::store::audit;
use keyward::store::wallets::{self as rows, Chain, Engine as EngineKind, Source, Wallet};
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

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> Buf {
    static LOGS: OnceLock<Buf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Buf::default();
        let writer = buf.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("one subscriber per test binary");
        buf
    })
    .clone()
}

fn assert_no_secret_logged() {
    let text = logs().0.lock().unwrap().clone();
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

struct Server {
    env: Env,
    app: Arc<Appliance>,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    _stop: tokio::sync::watch::Sender<bool>,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

/// Starts the API; `signer` = None builds the signer from the config, as `serve` does.
async fn start(extra: &str, signer: impl FnOnce(&Arc<Appliance>) -> Option<Signer>) -> Server {
    logs();
    let env = Env::with(EnvOptions {
        extra: format!("{CLIENTS}\n{extra}"),
        ..Default::default()
    });
    let app = Arc::new(env.appliance());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let service = match signer(&app) {
        Some(s) => keyward::api::Api::with_signer(app.clone(), s),
        None => keyward::api::Api::new(app.clone()),
    };
    let serving = app.clone();
    tokio::spawn(async move {
        keyward::api::serve_with(serving, service, listener, rx)
            .await
            .expect("api serves");
    });
    let tls = client_tls(&env.pki.ca.cert_pem, &env.pki.client);
    Server {
        env,
        app,
        addr,
        tls,
        _stop: stop,
    }
}

fn client_tls(ca_pem: &str, cert: &keyward::pki::Issued) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let certs = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut cert.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap(),
    )
}

impl Server {
    async fn post_as(&self, tls: Arc<rustls::ClientConfig>, path: &str, body: Value) -> Answer {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_as(self.tls.clone(), path, body).await
    }

    fn record(&self, id: &str) -> audit::AuditRecord {
        let id = id.to_owned();
        self.app
            .store
            .read(move |c| audit::get(c, &id))
            .unwrap()
            .expect("audit record exists")
    }

    fn put(&self, w: &Wallet) {
        let w = w.clone();
        self.app
            .store
            .write_blocking(move |ctx| rows::upsert(ctx.conn, &w))
            .unwrap();
    }

    /// An `mpc` wallet at `address`, holding the vendor-shaped share JSON and API key,
    /// wrapped as the webhook path wraps them.
    fn mpc_wallet(&self, chain: Chain, address: String) -> Wallet {
        let id = uuid::Uuid::new_v4().to_string();
        let version = self.app.token.current_wrap_version().unwrap();
        let wrap = |purpose, bytes: &[u8]| {
            custody::wrap(
                &self.app.token,
                &Binding {
                    wallet_id: &id,
                    chain: chain.as_str(),
                    purpose,
                },
                version,
                bytes,
            )
            .unwrap()
        };
        let share = json!({ "keyShareId": "ks-1", "secretShare": SHARE_SECRET, "pubkey": { "pubkey": {} } });
        let template = keyward::wallets::create(&self.app, chain, None).unwrap();
        let w = Wallet {
            id: id.clone(),
            address: Some(address),
            engine: EngineKind::Mpc,
            source: Source::Delegation,
            wrapped_share: Some(wrap(Purpose::Share, share.to_string().as_bytes())),
            wrapped_api_key: Some(wrap(Purpose::ApiKey, API_KEY.as_bytes())),
            public_key: None,
            ..template
        };
        self.put(&w);
        w
    }

    /// The audit record of answer `a`, which must be a 502 `code` without a signature.
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

fn route(w: &Wallet, op: &str) -> String {
    format!("/v1/wallets/{}/{op}", w.id)
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

fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
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
        .post(&route(&mpc, "evm/message"), json!({"message": "hi"}))
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
        .post(&route(&mpc, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.body["error"]["code"], "engine_unavailable");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dynamic-mpc"));
    let text = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
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
        let a = s.post(&route(&evm_w, op), body).await;
        assert_eq!(a.status, StatusCode::OK, "{op}: {}", a.body);
        assert!(a.body["auditId"].is_string());
    }
    let a = s
        .post(
            &route(&sol_w, "solana/message"),
            json!({"message": "hello"}),
        )
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
        let a = s.post(&route(&evm_liar, op), body).await;
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
            &route(&sol_liar, "solana/message"),
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
        .post_as(
            client_tls(&s.env.pki.ca.cert_pem, &narrow),
            &route(&w, "evm/message"),
            json!({"message": "hi"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "not_authorized");
    // a malformed request, a dry run
    let a = s
        .post(
            &route(&w, "evm/transaction"),
            json!({"transaction": {"chainId": "0x1"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    let a = s
        .post(
            &format!("{}?dryRun=true", route(&w, "evm/message")),
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
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ENV_ID: &str = "3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90";
    const TIMEOUT_MS: u64 = 1500;

    fn engines(api: &str, relay: &str) -> String {
        format!(
            "[engines.dynamic]\nenvironment_id = \"{ENV_ID}\"\napi_base_url = \"{api}\"\nrelay_base_url = \"{relay}\"\nconnect_timeout = \"500ms\"\nrequest_timeout = \"{TIMEOUT_MS}ms\"\n"
        )
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

    /// A TLS server on loopback (self-signed for 127.0.0.1) that runs `after` on each
    /// handshaken stream.
    async fn tls_listener(garbage: bool) -> (u16, Arc<AtomicUsize>) {
        let ca = keyward::pki::DevCa::new("not the vendor").unwrap();
        let issued = ca.server(&["127.0.0.1", "localhost"], 9).unwrap();
        let certs = rustls_pemfile::certs(&mut issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut issued.key_pem.as_bytes())
            .unwrap()
            .unwrap();
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        listener(move |sock| {
            let acceptor = acceptor.clone();
            async move {
                if garbage {
                    // not TLS at all: bytes that are no handshake record
                    let mut sock = sock;
                    let _ = sock
                        .write_all(b"\x17\x03\x03\x00\x05garbage, not a server hello\r\n")
                        .await;
                    let _ = sock.shutdown().await;
                } else if let Ok(mut tls) = acceptor.accept(sock).await {
                    // handshake done (if the client trusted us), then silence
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                } else {
                    // the client refused our certificate: still hold the socket open
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        })
        .await
    }

    /// A loopback TCP port that accepts and never says anything.
    async fn silent_listener() -> (u16, Arc<AtomicUsize>) {
        listener(|mut sock| async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await
    }

    /// A plain-HTTP stand-in for the vendor API: answers every request with `answer`,
    /// records each request head.
    async fn fake_api(answer: String) -> (u16, Arc<Mutex<Vec<String>>>) {
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let (port, _) = listener(move |mut sock| {
            let h = h.clone();
            let answer = answer.clone();
            async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
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
                            let Ok(n) = sock.read(&mut chunk).await else {
                                return;
                            };
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        h.lock().unwrap().push(head);
                        break;
                    }
                }
                let _ = sock.write_all(answer.as_bytes()).await;
                // keep an event stream open until the client leaves
                let mut rest = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut rest)).await;
            }
        })
        .await;
        (port, heads)
    }

    async fn expect_502(s: &Server, w: &Wallet, op: &str, body: Value, code: &str) -> Answer {
        let started = Instant::now();
        let a = s.post(&route(w, op), body).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(TIMEOUT_MS + 3000),
            "{op}: answered after {took:?}"
        );
        s.assert_cosigner_error(&a, code);
        a
    }

    async fn two_wallets(s: &Server) -> (Wallet, Wallet) {
        let (_, evm_addr) = keyward::wallet_key::generate(Chain::Evm);
        let (_, sol_addr) = keyward::wallet_key::generate(Chain::Solana);
        (
            s.mpc_wallet(Chain::Evm, evm_addr),
            s.mpc_wallet(Chain::Solana, sol_addr),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_port_refusing_connections_is_cosigner_unavailable() {
        let port = closed_port().await;
        let relay = closed_port().await;
        let s = start(
            &engines(
                &format!("http://127.0.0.1:{port}"),
                &format!("http://127.0.0.1:{relay}"),
            ),
            |_| None,
        )
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        let from = evm_w.address.clone().unwrap();
        for (op, body) in [
            ("evm/message", json!({"message": "hi"})),
            ("evm/typed-data", json!({"typedData": mail_typed_data()})),
            ("evm/transaction", json!({"transaction": eip1559(&from)})),
        ] {
            let a = expect_502(&s, &evm_w, op, body, "cosigner_unavailable").await;
            assert!(
                a.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("unreachable"),
                "{}",
                a.body
            );
        }
        expect_502(
            &s,
            &sol_w,
            "solana/message",
            json!({"message": "hi"}),
            "cosigner_unavailable",
        )
        .await;
        // raw digests: the SDK has no such operation; refused before any network
        let a = s
            .post(
                &route(&evm_w, "evm/hash"),
                json!({"digest": format!("0x{}", "11".repeat(32))}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
        assert_eq!(a.body["error"]["code"], "engine_unavailable");
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_garbage_and_silence_are_cosigner_unavailable_within_the_timeout() {
        let (garbage, garbage_hits) = tls_listener(true).await;
        let (hang_tls, hang_hits) = tls_listener(false).await;
        let (silent, silent_hits) = silent_listener().await;
        for (port, hits) in [
            (garbage, garbage_hits),
            (hang_tls, hang_hits),
            (silent, silent_hits),
        ] {
            let s = start(
                &engines(&format!("https://127.0.0.1:{port}"), "http://127.0.0.1:9"),
                |_| None,
            )
            .await;
            let (evm_w, sol_w) = two_wallets(&s).await;
            expect_502(
                &s,
                &evm_w,
                "evm/message",
                json!({"message": "hi"}),
                "cosigner_unavailable",
            )
            .await;
            expect_502(
                &s,
                &sol_w,
                "solana/message",
                json!({"message": "hi"}),
                "cosigner_unavailable",
            )
            .await;
            assert!(
                hits.load(Ordering::SeqCst) >= 2,
                "the stand-in was contacted"
            );
        }
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_relay_is_cosigner_unavailable_and_the_key_is_a_header() {
        const SSE: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\nevent: room_created\ndata: {\"roomId\":\"00000000-0000-4000-8000-000000000001\",\"serverKeygenIds\":[\"k\"]}\n\n";
        let (api, heads) = fake_api(SSE.to_owned()).await;
        let relay = closed_port().await;
        let s = start(
            &engines(
                &format!("http://127.0.0.1:{api}"),
                &format!("http://127.0.0.1:{relay}"),
            ),
            |_| None,
        )
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        expect_502(
            &s,
            &evm_w,
            "evm/message",
            json!({"message": "hi"}),
            "cosigner_unavailable",
        )
        .await;
        expect_502(
            &s,
            &sol_w,
            "solana/message",
            json!({"message": "hi"}),
            "cosigner_unavailable",
        )
        .await;
        let heads = heads.lock().unwrap().clone();
        assert!(heads.len() >= 2, "{heads:?}");
        assert!(
            heads[0].starts_with(&format!(
                "POST /api/v0/sdk/{ENV_ID}/waas/{}/signMessage",
                evm_w.id
            )),
            "{}",
            heads[0]
        );
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains(&format!("x-dyn-wallet-api-key: {API_KEY}").to_ascii_lowercase()),
            "the per-wallet API key is sent as x-dyn-wallet-api-key"
        );
        assert_no_secret_logged();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vendor_refusal_is_cosigner_rejected_with_its_message_and_no_secret() {
        // a vendor that quotes the key back must not get it into our answer
        let body =
            format!(r#"{{"error":"invalid wallet api key {API_KEY}","code":"unauthorized"}}"#);
        let refuse = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let (api, _) = fake_api(refuse).await;
        let s = start(
            &engines(&format!("http://127.0.0.1:{api}"), "http://127.0.0.1:9"),
            |_| None,
        )
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        for (w, op) in [(&evm_w, "evm/message"), (&sol_w, "solana/message")] {
            let a = expect_502(&s, w, op, json!({"message": "hi"}), "cosigner_rejected").await;
            let m = a.body["error"]["message"].as_str().unwrap();
            assert!(
                m.contains("invalid wallet api key") && m.contains("<redacted>"),
                "{m}"
            );
        }
        assert_no_secret_logged();
    }
}
