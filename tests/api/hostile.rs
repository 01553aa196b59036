//! Hostile but well-formed payloads (issue 13): typed data shaped to exhaust recursion or
//! CPU, transaction fields at their limits; refused precisely, and signing goes on.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hyper::StatusCode;
use keyward::store::wallets::Chain;
use serde_json::{json, Value};

use super::*;
use crate::common::api::path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_typed_data_is_refused_and_signing_continues() {
    let s = start().await;
    let c = s.client();
    let cow = s.import(Chain::Evm, COW_KEY, None);
    let deep_array = json!({
        "types": {"P": [{"name": "a", "type": format!("uint256{}", "[]".repeat(100_000))}]},
        "primaryType": "P", "domain": {}, "message": {"a": []}
    });
    let mut chain = serde_json::Map::new();
    for i in 0..200 {
        chain.insert(
            format!("S{i}"),
            json!([{"name": "n", "type": format!("S{}", i + 1)}]),
        );
    }
    chain.insert("S200".into(), json!([{"name": "x", "type": "bool"}]));
    let struct_chain = json!({"types": chain, "primaryType": "S0", "domain": {}, "message": {}});
    let many: serde_json::Map<String, Value> =
        (0..5000).map(|i| (format!("T{i}"), json!([]))).collect();
    let many_types = json!({"types": many, "primaryType": "T0", "domain": {}, "message": {}});
    let fields: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("f{i}"), "type": "bool"}))
        .collect();
    let many_fields =
        json!({"types": {"P": fields}, "primaryType": "P", "domain": {}, "message": {}});
    for (what, td, limit) in [
        ("100,000 []", deep_array, "max_name_len"),
        ("200 chained structs", struct_chain, "max_types"),
        ("5,000 types", many_types, "max_types"),
        ("5,000 fields", many_fields, "max_fields"),
    ] {
        let a = c
            .post(&path(&cow, "evm/typed-data"), json!({ "typedData": td }))
            .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("typed_data_too_complex")),
            "{what}: {}",
            a.body
        );
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(limit), "{what}: {message}");
        s.assert_audited(&a.body["auditId"], "denied", "typed_data_too_complex");
    }
    // the same shape sent as a JSON string is checked the same way
    let as_string = json!({"typedData": json!({
        "types": {"P": [{"name": "a", "type": format!("bool{}", "[]".repeat(9))}]},
        "primaryType": "P", "message": {}
    }).to_string()});
    let a = c.post(&path(&cow, "evm/typed-data"), as_string).await;
    assert_eq!(
        a.body["error"]["code"], "typed_data_too_complex",
        "{}",
        a.body
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_array_dims"));

    // still serving: the EIP's Mail example signs to its known digest
    signs_mail(&c, &cow).await;
}

/// Issue 13: transaction shapes that used to overflow or slip through are refused with
/// precise codes, and the appliance then signs normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_transactions_and_messages_are_refused() {
    let s = start().await;
    let c = s.client();
    let evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();

    // legacy: 2 * chainId + 35 + parity must fit 64 bits
    let legacy = |chain_id: &str| {
        json!({"transaction": {"chainId": chain_id, "nonce": 0, "gas": 21000, "gasPrice": 1,
            "to": "0x3535353535353535353535353535353535353535"}})
    };
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            legacy("9223372036854775790"),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_quantity")),
        "{}",
        a.body
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("chainId"));
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            legacy("9223372036854775789"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = u128::from_str_radix(
        a.body["signature"]["v"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(v == 2 * 9223372036854775789 + 35 || v == 2 * 9223372036854775789 + 36);

    // access lists are bounded
    let entry = json!({"address": "0x0000000000000000000000000000000000000001", "storageKeys": []});
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            json!({"transaction": {"type": 1, "chainId": 1, "nonce": 0, "gas": 21000,
                "gasPrice": 1, "accessList": vec![entry; 257]}}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_list_too_large")),
        "{}",
        a.body
    );

    // a Solana transaction message with bytes after it is still no "message"
    let tx = common::solana_tx(&solana_key(&sol), None, false);
    let message = &tx[65..];
    for tail in [&b""[..], b"\n", b" - please sign"] {
        let mut bytes = message.to_vec();
        bytes.extend_from_slice(tail);
        let a = c
            .post(
                &path(&sol, "solana/message"),
                json!({"message": B64.encode(&bytes), "encoding": "base64"}),
            )
            .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("message_is_transaction")),
            "tail {tail:?}: {}",
            a.body
        );
    }
    // still serving
    let a = c
        .post(&path(&sol, "solana/message"), json!({"message": "hello"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}
