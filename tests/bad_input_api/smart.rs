//! Bad-input cases: EIP-7702 and ERC-4337 (issue 26): the authorization body, a type-4
//! transaction's `authorizationList` and the user operation body, each malformed field
//! with its own code.

use super::*;

const KERNEL: &str = "0xd6cedde84be40893d153be9d467cd6ad37875b28";

fn tuple_with(k: &str, v: Value) -> Value {
    let mut t = json!({ "chainId": "0x1", "address": KERNEL, "nonce": "0x0",
                        "yParity": "0x0", "r": "0x1", "s": "0x1" });
    t[k] = v;
    t
}

fn type4(list: Value) -> Value {
    json!({ "transaction": {
        "type": "0x4", "chainId": "0x1", "nonce": "0x0", "to": KERNEL, "value": "0x0",
        "gas": "0x30000", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
        "authorizationList": list,
    }})
}

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("EIP-7702", cases);
    let auth = path(&w.evm, "evm/authorization");
    for (name, body, expect) in [
        (
            "authorization {}",
            json!({}),
            (400, "invalid_authorization"),
        ),
        (
            "authorization no address",
            json!({"chainId": 1, "nonce": 0}),
            (400, "invalid_authorization"),
        ),
        (
            "authorization both addresses",
            json!({"chainId": 1, "nonce": 0, "address": KERNEL, "contractAddress": KERNEL}),
            (400, "invalid_authorization"),
        ),
        (
            "authorization extra",
            json!({"chainId": 1, "nonce": 0, "address": KERNEL, "v": 1}),
            (400, "unknown_field"),
        ),
        (
            "authorization chain id 2^64",
            json!({"chainId": "18446744073709551616", "nonce": 0, "address": KERNEL}),
            (400, "invalid_quantity"),
        ),
        (
            "authorization nonce 2^64",
            json!({"chainId": 1, "nonce": "0x10000000000000000", "address": KERNEL}),
            (400, "invalid_quantity"),
        ),
        (
            "authorization nonce negative",
            json!({"chainId": 1, "nonce": -1, "address": KERNEL}),
            (400, "invalid_quantity"),
        ),
        (
            "authorization address short",
            json!({"chainId": 1, "nonce": 0, "address": "0x1234"}),
            (400, "invalid_address"),
        ),
        (
            "authorization address array",
            json!({"chainId": 1, "nonce": 0, "address": [KERNEL]}),
            (400, "invalid_address"),
        ),
    ] {
        c.post(name, Who::Test, &auth, body, expect);
    }
    // not granted: hash-client has evm.hash and evm.message only
    c.post(
        "authorization without its grant",
        Who::Hash,
        &auth,
        json!({"chainId": 1, "nonce": 0, "address": KERNEL}),
        (403, "not_authorized"),
    );
    let high_s = "0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1";
    let mut many = Vec::new();
    many.resize(65, tuple_with("r", json!("0x1")));
    for (name, body, expect) in [
        (
            "type 4 empty list",
            type4(json!([])),
            (400, "invalid_transaction"),
        ),
        (
            "type 4 list object",
            type4(json!({})),
            (400, "invalid_transaction"),
        ),
        (
            "type 4 65 tuples",
            type4(json!(many)),
            (400, "authorization_list_too_large"),
        ),
        (
            "type 4 high s",
            type4(json!([tuple_with("s", json!(high_s))])),
            (400, "invalid_signature"),
        ),
        (
            "type 4 zero r",
            type4(json!([tuple_with("r", json!("0x0"))])),
            (400, "invalid_signature"),
        ),
        (
            "type 4 parity 2",
            type4(json!([tuple_with("yParity", json!(2))])),
            (400, "invalid_signature"),
        ),
        (
            "type 4 v disagrees",
            type4(json!([tuple_with("v", json!(28))])),
            (400, "invalid_signature"),
        ),
        (
            "type 4 tuple extra",
            type4(json!([tuple_with("data", json!("0x"))])),
            (400, "unknown_field"),
        ),
        (
            "type 4 tuple chain 2^64",
            type4(json!([tuple_with("chainId", json!("0x10000000000000000"))])),
            (400, "invalid_quantity"),
        ),
        (
            "type 4 tuple r 2^256",
            type4(json!([tuple_with(
                "r",
                json!(format!("0x1{}", "0".repeat(64)))
            )])),
            (400, "invalid_quantity"),
        ),
        (
            "type 4 tuple no s",
            type4(
                json!([{"chainId": "0x1", "address": KERNEL, "nonce": "0x0", "yParity": "0x0", "r": "0x1"}]),
            ),
            (400, "invalid_transaction"),
        ),
        (
            "type 4 tuple string",
            type4(json!(["0xf85c"])),
            (400, "invalid_transaction"),
        ),
    ] {
        c.post(name, Who::Test, &r.tx, body, expect);
    }
    let mut creation = type4(json!([tuple_with("r", json!("0x1"))]));
    creation["transaction"]["to"] = json!("");
    c.post(
        "type 4 creation",
        Who::Test,
        &r.tx,
        creation,
        (400, "invalid_transaction"),
    );
    let mut legacy = type4(json!([tuple_with("r", json!("0x1"))]));
    legacy["transaction"]["type"] = json!("0x1");
    c.post(
        "list on type 1",
        Who::Test,
        &r.tx,
        legacy,
        (400, "invalid_transaction"),
    );
    let uo = path(&w.evm, "evm/user-operation");
    let op = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({
            "entryPoint": "0x0000000071727De22E5E9d8BAf0edAc6f37da032", "chainId": 1,
            "account": "kernel-v3",
            "userOperation": {
                "sender": KERNEL, "nonce": "0x0", "callData": "0x",
                "callGasLimit": "0x1", "verificationGasLimit": "0x1",
                "preVerificationGas": "0x1", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1",
            }
        });
        f(&mut v);
        v
    };
    for (name, body, expect) in [
        ("user op {}", json!({}), BAD),
        ("user op extra", op(&|v| v["x"] = json!(1)), BAD),
        (
            "user op unknown account",
            op(&|v| v["account"] = json!("argent")),
            (400, "invalid_user_operation"),
        ),
        (
            "user op safe-4337",
            op(&|v| v["account"] = json!("safe-4337")),
            (400, "unsupported_account"),
        ),
        (
            "user op unknown entry point",
            op(&|v| v["entryPoint"] = json!(KERNEL)),
            (400, "invalid_user_operation"),
        ),
        (
            "user op entry point short",
            op(&|v| v["entryPoint"] = json!("0x12")),
            (400, "invalid_address"),
        ),
        (
            "user op chain 0",
            op(&|v| v["chainId"] = json!(0)),
            (400, "invalid_quantity"),
        ),
        (
            "user op chain 2^64",
            op(&|v| v["chainId"] = json!("18446744073709551616")),
            (400, "invalid_quantity"),
        ),
        (
            "user op not an object",
            op(&|v| v["userOperation"] = json!("0x")),
            (400, "invalid_user_operation"),
        ),
        (
            "user op v0.6 field on v0.7",
            op(&|v| v["userOperation"]["initCode"] = json!("0x")),
            (400, "unknown_field"),
        ),
        (
            "user op no sender",
            op(&|v| {
                v["userOperation"].as_object_mut().unwrap().remove("sender");
            }),
            (400, "invalid_user_operation"),
        ),
        (
            "user op callData odd",
            op(&|v| v["userOperation"]["callData"] = json!("0x1")),
            (400, "invalid_user_operation"),
        ),
        (
            "user op callData number",
            op(&|v| v["userOperation"]["callData"] = json!(1)),
            (400, "invalid_user_operation"),
        ),
        (
            "user op gas 2^128",
            op(&|v| v["userOperation"]["callGasLimit"] = json!(format!("0x1{}", "0".repeat(32)))),
            (400, "invalid_user_operation"),
        ),
        (
            "user op gas 2^256",
            op(&|v| v["userOperation"]["callGasLimit"] = json!(format!("0x1{}", "0".repeat(64)))),
            (400, "invalid_quantity"),
        ),
        (
            "user op priority over max",
            op(&|v| v["userOperation"]["maxPriorityFeePerGas"] = json!("0x3")),
            (400, "fee_inconsistent"),
        ),
        (
            "user op paymaster data alone",
            op(&|v| v["userOperation"]["paymasterData"] = json!("0x01")),
            (400, "invalid_user_operation"),
        ),
        (
            "user op factory data alone",
            op(&|v| v["userOperation"]["factoryData"] = json!("0x01")),
            (400, "invalid_user_operation"),
        ),
    ] {
        c.post(name, Who::Test, &uo, body, expect);
    }
    let mut v6 = op(&|_| {});
    v6["entryPoint"] = json!("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789");
    v6["userOperation"]["initCode"] = json!("0x");
    v6["userOperation"]["paymasterAndData"] = json!("0x0102");
    c.post(
        "user op v0.6 paymasterAndData short",
        Who::Test,
        &uo,
        v6,
        (400, "invalid_user_operation"),
    );
}
