//! Bad-input cases: JSON shape: missing, extra and misnamed fields per route.

use super::*;

pub fn cases(_w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("JSON shape", cases);
    for (name, p, who, body) in [
        ("evm message {}", &r.msg, Who::Test, json!({})),
        (
            "evm message extra",
            &r.msg,
            Who::Test,
            json!({"message": "hi", "extra": 1}),
        ),
        (
            "evm message misnamed",
            &r.msg,
            Who::Test,
            json!({"msg": "hi"}),
        ),
        ("typed data {}", &r.td, Who::Test, json!({})),
        (
            "typed data snake_case",
            &r.td,
            Who::Test,
            json!({"typed_data": {}}),
        ),
        ("transaction {}", &r.tx, Who::Test, json!({})),
        (
            "transaction extra",
            &r.tx,
            Who::Test,
            json!({"transaction": base_tx(), "sign": true}),
        ),
        ("hash {}", &r.hash, Who::Hash, json!({})),
        (
            "hash extra",
            &r.hash,
            Who::Hash,
            json!({"digest": format!("0x{}", "11".repeat(32)), "x": 1}),
        ),
        ("solana message {}", &r.smsg, Who::Test, json!({})),
        (
            "solana message extra",
            &r.smsg,
            Who::Test,
            json!({"message": "x", "signer": "me"}),
        ),
        ("solana transaction {}", &r.stx, Who::Test, json!({})),
        (
            "solana transaction extra",
            &r.stx,
            Who::Test,
            json!({"transaction": b64(&r.good_stx), "skipPreflight": true}),
        ),
    ] {
        c.post(name, who, p, body, BAD);
    }
    c.post(
        "transaction field unknown",
        Who::Test,
        &r.tx,
        tx_with("bogus", json!("1")),
        (400, "unknown_field"),
    );
    c.post(
        "transaction field in other case",
        Who::Test,
        &r.tx,
        tx_with("ChainId", json!("1")),
        (400, "unknown_field"),
    );
    c.post(
        "access list entry unknown field",
        Who::Test,
        &r.tx,
        tx_with(
            "accessList",
            json!([{"address": "0x3535353535353535353535353535353535353535", "storageKeys": [], "x": 1}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "unknown_field"),
    );
    c.post(
        "transaction missing nonce",
        Who::Test,
        &r.tx,
        tx_without("nonce"),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction missing gas",
        Who::Test,
        &r.tx,
        tx_without("gas"),
        (400, "invalid_transaction"),
    );
    c.post(
        "legacy missing gasPrice",
        Who::Test,
        &r.tx,
        tx_without("gasPrice"),
        (400, "invalid_transaction"),
    );
    c.post(
        "1559 missing priority fee",
        Who::Test,
        &r.tx,
        eip1559(&[]).tap(|v| {
            v["transaction"]
                .as_object_mut()
                .unwrap()
                .remove("maxPriorityFeePerGas");
        }),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction missing chainId",
        Who::Test,
        &r.tx,
        tx_without("chainId"),
        (400, "missing_chain_id"),
    );
    c.post(
        "typed data without primaryType",
        Who::Test,
        &r.td,
        json!({"typedData": {"types": {"P": []}, "domain": {}, "message": {}}}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data without types",
        Who::Test,
        &r.td,
        json!({"typedData": {"primaryType": "P", "domain": {}, "message": {}}}),
        (400, "invalid_typed_data"),
    );
}
