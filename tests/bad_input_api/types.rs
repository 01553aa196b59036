//! Bad-input cases: types: the right field with the wrong JSON type.

use super::*;

pub fn cases(_w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("types", cases);
    for (name, v) in [
        ("number", json!(7)),
        ("null", json!(null)),
        ("array", json!(["hi"])),
        ("object", json!({"text": "hi"})),
        ("bool", json!(true)),
    ] {
        c.post(
            format!("evm message {name}"),
            Who::Test,
            &r.msg,
            json!({ "message": v }),
            BAD,
        );
    }
    c.post(
        "typed data number",
        Who::Test,
        &r.td,
        json!({"typedData": 7}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data string not JSON",
        Who::Test,
        &r.td,
        json!({"typedData": "not json"}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data array",
        Who::Test,
        &r.td,
        json!({"typedData": []}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "transaction string",
        Who::Test,
        &r.tx,
        json!({"transaction": "0xf86c"}),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction array",
        Who::Test,
        &r.tx,
        json!({"transaction": [base_tx()]}),
        (400, "invalid_transaction"),
    );
    c.post(
        "nonce bool",
        Who::Test,
        &r.tx,
        tx_with("nonce", json!(true)),
        (400, "invalid_quantity"),
    );
    c.post(
        "value object",
        Who::Test,
        &r.tx,
        tx_with("value", json!({"wei": 1})),
        (400, "invalid_quantity"),
    );
    c.post(
        "to number",
        Who::Test,
        &r.tx,
        tx_with("to", json!(5)),
        (400, "invalid_transaction"),
    );
    c.post(
        "data number",
        Who::Test,
        &r.tx,
        tx_with("data", json!(12)),
        (400, "invalid_transaction"),
    );
    c.post(
        "access list string",
        Who::Test,
        &r.tx,
        tx_with("accessList", json!("none")).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "invalid_transaction"),
    );
    c.post(
        "access list entry string",
        Who::Test,
        &r.tx,
        tx_with("accessList", json!(["0x35"])).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "invalid_transaction"),
    );
    c.post(
        "digest number",
        Who::Hash,
        &r.hash,
        json!({"digest": 1}),
        BAD,
    );
    c.post(
        "solana message number",
        Who::Test,
        &r.smsg,
        json!({"message": 1}),
        BAD,
    );
    c.post(
        "solana encoding number",
        Who::Test,
        &r.smsg,
        json!({"message": "x", "encoding": 5}),
        BAD,
    );
    c.post(
        "solana encoding base58",
        Who::Test,
        &r.smsg,
        json!({"message": "x", "encoding": "base58"}),
        BAD,
    );
    c.post(
        "solana encoding upper case",
        Who::Test,
        &r.smsg,
        json!({"message": "x", "encoding": "HEX"}),
        BAD,
    );
    c.post(
        "solana format unknown",
        Who::Test,
        &r.smsg,
        json!({"message": "x", "format": "weird"}),
        BAD,
    );
    c.post(
        "solana transaction number",
        Who::Test,
        &r.stx,
        json!({"transaction": 5}),
        BAD,
    );
    c.post(
        "solana transaction byte array",
        Who::Test,
        &r.stx,
        json!({"transaction": &r.good_stx}),
        BAD,
    );
}
