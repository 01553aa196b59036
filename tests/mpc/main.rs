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

#[path = "../common/mod.rs"]
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
        self.assert_audited(&a.body["auditId"], "error", code);
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
    // (a wallet it may not see: answered as an unknown id)
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "wallet_not_found");
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
mod vendor;

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
        s.assert_audited(&a.body["auditId"], "error", "internal_error");
    }
    // still serving, and the audit chain is whole
    let local = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let a = s
        .post(&path(&local, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(s.app.store.read(audit::verify).unwrap().is_ok());
}

/// Issue 26: an EIP-7702 authorization and a user operation for an `mpc` wallet go to
/// the co-signing engine (the authorization as a bare digest, the userOpHash as the
/// 32-byte message its account checks) and come back verified under the wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_account_payloads_through_the_engine() {
    const KERNEL: &str = "0xd6cedde84be40893d153be9d467cd6ad37875b28";
    let double = Double::new();
    let s = start(
        &format!(
            r#"
[[clients]]
identity = "smart-client"
wallets = ["*"]
operations = ["evm.authorization", "evm.user_operation"]

[policy]
default = "allow"
[[policy.rule]]
id = "kernel"
[policy.rule.evm.delegations]
"*" = ["{KERNEL}"]
"#
        ),
        with_double(&double),
    )
    .await;
    let w = s.mpc_wallet(Chain::Evm, evm_address_of(&double.evm));
    let c = s.client_as("smart-client", None, 94);
    let a = c
        .post(
            &path(&w, "evm/authorization"),
            json!({"chainId": 1, "address": KERNEL, "nonce": 0}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let auth = alloy_eips::eip7702::Authorization {
        chain_id: alloy_primitives::U256::from(1),
        address: KERNEL.parse().unwrap(),
        nonce: 0,
    }
    .into_signed(alloy_primitives::Signature::new(
        a.body["r"].as_str().unwrap().parse().unwrap(),
        a.body["s"].as_str().unwrap().parse().unwrap(),
        a.body["yParity"] == 1,
    ));
    assert_eq!(
        format!("{:#x}", auth.recover_authority().unwrap()),
        w.address.clone().unwrap()
    );
    let a = c
        .post(
            &path(&w, "evm/user-operation"),
            json!({
                "entryPoint": "0x0000000071727De22E5E9d8BAf0edAc6f37da032", "chainId": 1,
                "account": "kernel-v3",
                "userOperation": {
                    "sender": KERNEL, "nonce": "0x0", "callData": "0x",
                    "callGasLimit": "0x1", "verificationGasLimit": "0x1",
                    "preVerificationGas": "0x1", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1",
                }
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let hash: alloy_primitives::B256 = a.body["userOpHash"].as_str().unwrap().parse().unwrap();
    let sig: alloy_primitives::Signature = a.body["signature"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        format!(
            "{:#x}",
            sig.recover_address_from_msg(hash.as_slice()).unwrap()
        ),
        w.address.clone().unwrap()
    );
    // a bare digest, then a message: two kinds of request
    let seen = double.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1]);
}
