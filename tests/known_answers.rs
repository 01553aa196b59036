//! Known answers from outside the project, through keyward's own signing path (key
//! imported and wrapped in the token, request over mTLS, signature made by the local
//! engine): the bytes must equal what another implementation produced.
//!
//! - `tests/fixtures/eth_account_txs.json`: EIP-1559, EIP-2930 and EIP-155 transactions
//!   signed by Python eth-account (RFC 6979 ECDSA is deterministic: same key and
//!   transaction, same raw bytes);
//! - `tests/fixtures/rfc8032.json`: RFC 8032 §7.1 Ed25519 vectors;
//! - `tests/fixtures/solders_txs.json`: Solana transactions built and signed by solders.
//!
//! `tests/fixtures/known_answers.py` made the fixtures (and says how to remake them).

mod common;

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::api::path;
use keyward::store::wallets::{Chain, Wallet};
use serde_json::{json, Value};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.transaction", "solana.message", "solana.transaction"]
"#;

fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn cases(doc: &Value) -> &Vec<Value> {
    let c = doc["cases"].as_array().unwrap();
    assert!(!c.is_empty());
    c
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// Imports each distinct key once.
fn wallet_for(
    server: &common::api::Server,
    wallets: &mut HashMap<String, Wallet>,
    chain: Chain,
    key: &str,
) -> Wallet {
    wallets
        .entry(key.to_owned())
        .or_insert_with(|| server.import(chain, key, None))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_transactions_match_eth_account_byte_for_byte() {
    let server = common::api::start(CLIENTS).await;
    let c = server.client();
    let doc = fixture("eth_account_txs.json");
    let mut wallets = HashMap::new();
    let mut types = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let name = s(case, "name");
        let w = wallet_for(&server, &mut wallets, Chain::Evm, s(case, "key"));
        assert_eq!(
            w.address.as_deref().unwrap(),
            s(case, "address").to_ascii_lowercase(),
            "{name}"
        );
        let a = c
            .post(
                &path(&w, "evm/transaction"),
                json!({ "transaction": case["transaction"] }),
            )
            .await;
        assert_eq!(a.status.as_u16(), 200, "{name}: {}", a.body);
        assert_eq!(a.body["rawTransaction"], case["raw"], "{name}");
        assert_eq!(a.body["hash"], case["hash"], "{name}");
        types.insert(
            case["transaction"]["type"]
                .as_str()
                .unwrap_or("legacy")
                .to_owned(),
        );
    }
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["0x1", "0x2", "legacy"],
        "the fixture covers EIP-2930, EIP-1559 and legacy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8032_vectors_through_the_custody_signing_path() {
    let server = common::api::start(CLIENTS).await;
    let c = server.client();
    let doc = fixture("rfc8032.json");
    let signer = keyward::signer::Signer::new(server.app.token.clone());
    for case in cases(&doc) {
        let name = s(case, "name");
        let w = server.import(Chain::Solana, s(case, "secret"), None);
        assert_eq!(w.address.as_deref(), Some(s(case, "address")), "{name}");
        let message = hex::decode(s(case, "message")).unwrap();
        let want = s(case, "signature");
        // the local engine: unwrap from the token, sign, verify, wipe
        let sig = signer.sign_solana(&w, &message).unwrap();
        assert_eq!(hex::encode(sig), want, "{name} (engine)");
        // the API (an empty message is refused there, as `invalid_message`)
        let a = c
            .post(
                &path(&w, "solana/message"),
                json!({ "message": s(case, "message"), "encoding": "hex" }),
            )
            .await;
        if message.is_empty() {
            assert_eq!(
                (a.status.as_u16(), a.code()),
                (400, "invalid_message"),
                "{name}"
            );
            continue;
        }
        assert_eq!(a.status.as_u16(), 200, "{name}: {}", a.body);
        let got = bs58::decode(s(&a.body, "signature")).into_vec().unwrap();
        assert_eq!(hex::encode(got), want, "{name} (API)");
        assert_eq!(
            B64.decode(s(&a.body, "signedMessage")).unwrap(),
            message,
            "{name}: raw format signs the bytes as given"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_transactions_match_solders_byte_for_byte() {
    let server = common::api::start(CLIENTS).await;
    let c = server.client();
    let doc = fixture("solders_txs.json");
    let mut wallets = HashMap::new();
    for case in cases(&doc) {
        let name = s(case, "name");
        let w = wallet_for(
            &server,
            &mut wallets,
            Chain::Solana,
            s(case, "wallet_secret"),
        );
        assert_eq!(w.address.as_deref(), Some(s(case, "wallet")), "{name}");
        let unsigned = hex::decode(s(case, "unsigned")).unwrap();
        let a = c
            .post(
                &path(&w, "solana/transaction"),
                json!({ "transaction": B64.encode(&unsigned) }),
            )
            .await;
        assert_eq!(a.status.as_u16(), 200, "{name}: {}", a.body);
        assert_eq!(a.body["signerIndex"], case["signer_index"], "{name}");
        let signed = B64.decode(s(&a.body, "transaction")).unwrap();
        assert_eq!(hex::encode(signed), s(case, "signed"), "{name}");
    }
}
