//! Bad-input cases: ranges: quantities, sizes and limits.

use super::*;

pub fn cases(_w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("ranges", cases);
    let qty = (400, "invalid_quantity");
    for (name, k, v) in [
        ("nonce 2^64", "nonce", json!("18446744073709551616")),
        ("gas 2^64", "gas", json!("0x10000000000000000")),
        (
            "gasPrice 2^128",
            "gasPrice",
            json!("0x100000000000000000000000000000000"),
        ),
        (
            "value 2^256",
            "value",
            json!(format!("0x1{}", "0".repeat(64))),
        ),
        ("value negative", "value", json!("-1")),
        ("value fraction", "value", json!("1.5")),
        ("value exponent", "value", json!("1e18")),
        ("value leading space", "value", json!(" 1")),
        ("value JSON float", "value", json!(1.5)),
        ("value JSON negative", "value", json!(-1)),
        ("value empty", "value", json!("")),
        ("value bare 0x", "value", json!("0x")),
        ("chainId zero", "chainId", json!("0")),
        (
            "chainId above legacy",
            "chainId",
            json!("9223372036854775790"),
        ),
        ("type as word", "type", json!("legacy")),
    ] {
        c.post(name, Who::Test, &r.tx, tx_with(k, v), qty);
    }
    let ty = (400, "unsupported_tx_type");
    for (name, body) in [
        ("type 3", tx_with("type", json!("0x3"))),
        ("type 5", tx_with("type", json!(5))),
        ("type 0x7e", tx_with("type", json!("0x7e"))),
        ("blob fee field", tx_with("maxFeePerBlobGas", json!("1"))),
    ] {
        c.post(name, Who::Test, &r.tx, body, ty);
    }
    // type 4 is signed (EIP-7702), but not without its list, nor with an empty one
    // (more in the EIP-7702 class)
    for (name, body) in [
        ("type 4 without a list", tx_with("type", json!(4))),
        (
            "empty authorization list",
            tx_with("authorizationList", json!([])),
        ),
    ] {
        c.post(name, Who::Test, &r.tx, body, (400, "invalid_transaction"));
    }
    let fee = (400, "fee_inconsistent");
    c.post(
        "1559 with gasPrice",
        Who::Test,
        &r.tx,
        eip1559(&[("gasPrice", json!("1"))]),
        fee,
    );
    c.post(
        "legacy with maxFeePerGas",
        Who::Test,
        &r.tx,
        tx_with("type", json!(0)).tap(|v| v["transaction"]["maxFeePerGas"] = json!("2")),
        fee,
    );
    c.post(
        "priority above max fee",
        Who::Test,
        &r.tx,
        eip1559(&[("maxPriorityFeePerGas", json!("3"))]),
        fee,
    );
    c.post(
        "legacy with access list",
        Who::Test,
        &r.tx,
        tx_with("type", json!(0)).tap(|v| v["transaction"]["accessList"] = json!([])),
        (400, "invalid_transaction"),
    );
    c.post(
        "gas and gasLimit differ",
        Who::Test,
        &r.tx,
        tx_with("gasLimit", json!("21001")),
        (400, "invalid_transaction"),
    );
    c.post(
        "data and input differ",
        Who::Test,
        &r.tx,
        tx_with("data", json!("0x01")).tap(|v| v["transaction"]["input"] = json!("0x02")),
        (400, "invalid_transaction"),
    );
    c.post(
        "data over 128 KiB",
        Who::Test,
        &r.tx,
        tx_with("data", json!(format!("0x{}", "00".repeat(128 * 1024 + 1)))),
        // 128 KiB of data is 256 KiB of hex: the body limit is reached first, so
        // `data_too_large` cannot be answered through this API (see the report)
        (413, "body_too_large"),
    );
    let entry = json!({"address": "0x0000000000000000000000000000000000000001", "storageKeys": []});
    c.post(
        "257 access list entries",
        Who::Test,
        &r.tx,
        tx_with("accessList", json!(vec![entry; 257])).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "access_list_too_large"),
    );
    c.post(
        "257 storage keys",
        Who::Test,
        &r.tx,
        tx_with(
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001",
                "storageKeys": vec![format!("0x{}", "00".repeat(32)); 257]}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "access_list_too_large"),
    );
    let complex = (400, "typed_data_too_complex");
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("T{i}"), json!([]))).collect();
    c.post(
        "65 types",
        Who::Test,
        &r.td,
        typed(Value::Object(many), "T0", json!({})),
        complex,
    );
    let fields: Vec<Value> = (0..65)
        .map(|i| json!({"name": format!("f{i}"), "type": "bool"}))
        .collect();
    c.post(
        "65 fields",
        Who::Test,
        &r.td,
        typed(json!({ "P": fields }), "P", json!({})),
        complex,
    );
    c.post(
        "field name of 129 bytes",
        Who::Test,
        &r.td,
        typed(
            json!({"P": [{"name": "n".repeat(129), "type": "bool"}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    c.post(
        "9 array dimensions",
        Who::Test,
        &r.td,
        typed(
            json!({"P": [{"name": "a", "type": format!("bool{}", "[]".repeat(9))}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    c.post(
        "fixed array of 10,001",
        Who::Test,
        &r.td,
        typed(
            json!({"P": [{"name": "a", "type": "bool[10001]"}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    let mut deep = json!(true);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    c.post(
        "message nested 40 deep",
        Who::Test,
        &r.td,
        typed(
            json!({"P": [{"name": "a", "type": "bool"}]}),
            "P",
            json!({ "a": deep }),
        ),
        complex,
    );
    c.post(
        "solana message empty",
        Who::Test,
        &r.smsg,
        json!({"message": ""}),
        (400, "invalid_message"),
    );
    c.post(
        "off-chain message over 65535 bytes",
        Who::Test,
        &r.smsg,
        json!({"message": "a".repeat(70_000), "format": "offchain"}),
        (400, "invalid_message"),
    );
    c.post(
        "off-chain message not UTF-8",
        Who::Test,
        &r.smsg,
        json!({"message": b64(&[0xff; 2000]), "encoding": "base64", "format": "offchain"}),
        (400, "invalid_message"),
    );
}
