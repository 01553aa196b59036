//! What keyward sends the vendor API is what the vendor's own crates send.

use super::*;

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
    let sol_wp = WalletProperties::new("SVM", sol_w.id.as_str(), sol_w.address.clone().unwrap());
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
