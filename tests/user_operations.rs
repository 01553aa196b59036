//! Issue 26, ERC-4337 user operations through the real REST face (mTLS, a SoftHSM2 token,
//! a SQLite file): userOpHashes for EntryPoint v0.6 and v0.7 and the owner's signature
//! against viem (`tests/fixtures/eip7702_viem.json`, `scripts/fixtures/eip7702_viem.mjs`),
//! and the policy over the account's decoded calls: a Kernel batch of three transfers
//! over a token cap while each is under it, the same batch under the caps signed and
//! counted once per inner transfer, call data that does not decode for the account,
//! DELEGATECALL, value, gas and fee caps.

mod common;

use common::api::{path, Answer, Server};
use common::Env;
use hyper::StatusCode;
use keyward::store::wallets::{Chain, Wallet};
use serde_json::{json, Value};

const GRANTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.user_operation"]

[[clients]]
identity = "no-op-grant"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "evm.hash", "evm.authorization"]
"#;

/// `capped`: USDC at most 100 per operation and 140 per day, 5 wei per operation, gas
/// and fee caps; `delegating`: no caps, DELEGATECALL allowed to 0x1111…; `open`: an evm
/// rule capping nothing. Wallets without a label: no rule, default allow.
const POLICY: &str = r#"
default = "allow"

[[rule]]
id = "capped"
wallets = ["label:capped"]
[rule.evm]
chain_ids = [1]
max_value = { "*" = "5" }
max_gas_limit = 1000000
max_fee_per_gas = "100 gwei"
[[rule.evm.token]]
contract = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
chain_id = 1
max_per_tx = "100"
window = "24h"
max_per_window = "140"

[[rule]]
id = "delegating"
wallets = ["label:delegating"]
[rule.evm]
delegatecall = ["0x1111111111111111111111111111111111111111"]

[[rule]]
id = "open"
wallets = ["label:open"]
evm = {}
"#;

const EP07: &str = "0x0000000071727De22E5E9d8BAf0edAc6f37da032";

async fn start() -> Server {
    let env = Env::with_extra(format!("[policy]\nfile = \"policy.toml\"\n{GRANTS}"));
    std::fs::write(env.path("policy.toml"), POLICY).unwrap();
    common::api::start_in(env).await
}

fn fixture() -> Value {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eip7702_viem.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn denied_by(a: &Answer, rule: &str, says: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
    assert_eq!(a.body["error"]["rule"], rule, "{}", a.body);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(m.contains(says), "{says:?} not in {m}");
}

fn refused(a: &Answer, status: u16, code: &str, says: &str) {
    assert_eq!((a.status.as_u16(), a.code()), (status, code), "{}", a.body);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(m.contains(says), "{says:?} not in {m}");
}

/// A v0.7 operation on chain 1 with `call_data`, under the caps unless changed.
fn op(call_data: &str, account: &str) -> Value {
    json!({
        "entryPoint": EP07, "chainId": 1, "account": account,
        "userOperation": {
            "sender": "0x1234567890123456789012345678901234567890", "nonce": "0x0",
            "callData": call_data, "callGasLimit": "0x30000", "verificationGasLimit": "0x30000",
            "preVerificationGas": "0xc350", "maxFeePerGas": "0x3b9aca00",
            "maxPriorityFeePerGas": "0x1", "signature": "0x",
        }
    })
}

fn wallet(s: &Server, label: &str) -> Wallet {
    keyward::wallets::create(&s.app, Chain::Evm, Some(label)).unwrap()
}

/// viem's `getUserOperationHash` for v0.6 and v0.7, and the owner's signature as the
/// account checks it, through keyward's local engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_op_hashes_and_signatures_match_viem() {
    let s = start().await;
    let c = s.client();
    let doc = fixture();
    let ops = doc["userOperations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    let key = ops[0]["ownerKey"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    let w = s.import(Chain::Evm, key, None);
    for (u, account) in ops.iter().zip(["simple-account", "kernel-v3"]) {
        let name = u["name"].as_str().unwrap();
        let a = c
            .post(
                &path(&w, "evm/user-operation"),
                json!({
                    "userOperation": u["userOperation"], "entryPoint": u["entryPoint"],
                    "chainId": u["chainId"], "account": account,
                }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
        assert_eq!(a.body["userOpHash"], u["userOpHash"], "{name}");
        assert_eq!(a.body["signature"], u["ownerSignature"], "{name}");
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        let detail: Value = serde_json::from_str(rec.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["userOpHash"], u["userOpHash"], "{name}");
        assert_eq!(detail["entryPointVersion"], format!("0.{}", &name[3..]));
    }
    // v0.7 in the packed form viem's toPackedUserOperation makes: the same hash
    let u = &ops[1];
    let a = c
        .post(
            &path(&w, "evm/user-operation"),
            json!({
                "userOperation": u["packed"], "entryPoint": u["entryPoint"],
                "chainId": u["chainId"], "account": "kernel-v3",
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "packed: {}", a.body);
    assert_eq!(a.body["userOpHash"], u["userOpHash"]);
    assert_eq!(a.body["signature"], u["ownerSignature"]);
    // malformed packed fields
    for (k, v, code, says) in [
        (
            "accountGasLimits",
            json!(format!("0x{}", "00".repeat(31))),
            "invalid_user_operation",
            "32 bytes",
        ),
        (
            "paymasterAndData",
            json!(format!("0x{}", "11".repeat(30))),
            "invalid_user_operation",
            "52 bytes",
        ),
        (
            "initCode",
            json!("0x01"),
            "invalid_user_operation",
            "factory address",
        ),
        (
            "factory",
            json!("0x1111111111111111111111111111111111111111"),
            "unknown_field",
            "factory",
        ),
    ] {
        let mut p = u["packed"].clone();
        p[k] = v;
        let a = c
            .post(
                &path(&w, "evm/user-operation"),
                json!({
                    "userOperation": p, "entryPoint": u["entryPoint"],
                    "chainId": u["chainId"], "account": "kernel-v3",
                }),
            )
            .await;
        refused(&a, 400, code, says);
    }
}

/// The issue's cases: a Kernel batch of three transfers summing over a token cap while
/// each is under it → 403; the same batch under the caps → signed, the day's window
/// counting each inner transfer once; value summed over the calls; gas and fee caps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_batches_are_priced_call_by_call() {
    let s = start().await;
    let c = s.client();
    let k = &fixture()["kernelCallData"];
    let str_ = |n: &str| k[n].as_str().unwrap().to_owned();
    let w = wallet(&s, "capped");
    let p = path(&w, "evm/user-operation");

    denied_by(
        &c.post(&p, op(&str_("batchOverCap"), "kernel-v3")).await,
        "capped",
        "ERC-20 amount 120",
    );
    // 3 x 30 = 90: signed, and 90 counted in the window
    let a = c.post(&p, op(&str_("batchUnderCap"), "kernel-v3")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // + 50 = 140 (the window's max): signed; not if the batch counted twice (180)
    let a = c.post(&p, op(&str_("single"), "kernel-v3")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // + 50 = 190: refused; it would be signed had the batch counted nothing (100)
    let a = c.post(&p, op(&str_("single"), "kernel-v3")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["rule"], "capped", "{}", a.body);

    // value: 7 wei in a single call, the cap is 5
    denied_by(
        &c.post(&p, op(&str_("singleValue"), "kernel-v3")).await,
        "capped",
        "value 7 wei exceeds evm.max_value",
    );
    // gas: every gas field counts (3 x 0x30000 + pre-verification is under 1e6; this is not)
    let mut big = op(&str_("batchUnderCap"), "kernel-v3");
    big["userOperation"]["callGasLimit"] = json!("0xf4240");
    denied_by(
        &c.post(&p, big).await,
        "capped",
        "exceeds evm.max_gas_limit",
    );
    let mut pricey = op(&str_("batchUnderCap"), "kernel-v3");
    pricey["userOperation"]["maxFeePerGas"] = json!("0x174876e801");
    denied_by(&c.post(&p, pricey).await, "capped", "evm.max_fee_per_gas");
    // another chain than the rule's
    let mut base = op(&str_("batchUnderCap"), "kernel-v3");
    base["chainId"] = json!(8453);
    denied_by(&c.post(&p, base).await, "capped", "chain id 8453");
}

/// Call data that does not decode for the named account is unpriced under caps; a
/// DELEGATECALL is refused unless listed by address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_call_data_and_delegatecall() {
    let s = start().await;
    let c = s.client();
    let k = &fixture()["kernelCallData"];
    let str_ = |n: &str| k[n].as_str().unwrap().to_owned();
    let capped = wallet(&s, "capped");
    let p = path(&capped, "evm/user-operation");
    // Kernel call data named as a SimpleAccount's: the account cannot run it
    denied_by(
        &c.post(&p, op(&str_("batchUnderCap"), "simple-account"))
            .await,
        "builtin.unpriced_call",
        "is not SimpleAccount's execute",
    );
    // an unknown function of the account
    denied_by(
        &c.post(&p, op("0xdeadbeef", "kernel-v3")).await,
        "builtin.unpriced_call",
        "not Kernel's execute",
    );
    // delegatecall: refused by a rule that does not list the target
    denied_by(
        &c.post(&p, op(&str_("delegatecall"), "kernel-v3")).await,
        "capped",
        "DELEGATECALLs 0x1111111111111111111111111111111111111111",
    );
    let open = wallet(&s, "open");
    denied_by(
        &c.post(
            &path(&open, "evm/user-operation"),
            op(&str_("delegatecall"), "kernel-v3"),
        )
        .await,
        "open",
        "refused unless evm.delegatecall lists it",
    );
    let d = wallet(&s, "delegating");
    let a = c
        .post(
            &path(&d, "evm/user-operation"),
            op(&str_("delegatecall"), "kernel-v3"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // a rule that caps nothing: undecodable call data is not priced, and not refused
    let a = c
        .post(
            &path(&open, "evm/user-operation"),
            op("0xdeadbeef", "kernel-v3"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// Malformed bodies, the other version's fields, unknown entry points and account
/// kinds, safe-4337, and the grant of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_user_operations_are_refused_precisely() {
    let s = start().await;
    let c = s.client();
    let w = wallet(&s, "open");
    let p = path(&w, "evm/user-operation");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = op("0x", "kernel-v3");
        f(&mut v);
        v
    };
    for (body, status, code, says) in [
        (
            with(&|v| v["account"] = json!("argent")),
            400,
            "invalid_user_operation",
            "argent",
        ),
        (
            with(&|v| v["account"] = json!("safe-4337")),
            400,
            "unsupported_account",
            "SafeOp",
        ),
        (
            with(&|v| v["entryPoint"] = json!("0x1111111111111111111111111111111111111111")),
            400,
            "invalid_user_operation",
            "neither EntryPoint",
        ),
        (
            with(&|v| v["chainId"] = json!(0)),
            400,
            "invalid_quantity",
            "chainId",
        ),
        (
            with(&|v| v["userOperation"]["initCode"] = json!("0x")),
            400,
            "unknown_field",
            "initCode",
        ),
        (
            with(&|v| {
                v["userOperation"].as_object_mut().unwrap().remove("nonce");
            }),
            400,
            "invalid_user_operation",
            "nonce",
        ),
        (
            with(&|v| v["userOperation"]["callData"] = json!("0x123")),
            400,
            "invalid_user_operation",
            "callData",
        ),
        (
            with(&|v| v["userOperation"]["callGasLimit"] = json!(format!("0x1{}", "0".repeat(32)))),
            400,
            "invalid_user_operation",
            "128 bits",
        ),
        (
            with(&|v| v["userOperation"]["paymasterData"] = json!("0x01")),
            400,
            "invalid_user_operation",
            "without `paymaster`",
        ),
        (
            with(&|v| v["userOperation"]["factoryData"] = json!("0x01")),
            400,
            "invalid_user_operation",
            "without `factory`",
        ),
        (
            with(&|v| v["userOperation"]["maxPriorityFeePerGas"] = json!("0x3b9aca01")),
            400,
            "fee_inconsistent",
            "maxPriorityFeePerGas",
        ),
        (
            with(&|v| v["userOperation"]["sender"] = json!("0x12")),
            400,
            "invalid_address",
            "sender",
        ),
        (
            with(&|v| v["extra"] = json!(1)),
            400,
            "invalid_request",
            "extra",
        ),
        (
            with(&|v| v["userOperation"] = json!([])),
            400,
            "invalid_user_operation",
            "object",
        ),
    ] {
        refused(&c.post(&p, body).await, status, code, says);
    }
    // v0.6 fields on v0.6, v0.7 fields refused there
    let mut v6 = op("0x", "simple-account");
    v6["entryPoint"] = json!("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789");
    refused(
        &c.post(&p, v6.clone()).await,
        400,
        "invalid_user_operation",
        "required field is missing",
    );
    v6["userOperation"]["initCode"] = json!("0x");
    v6["userOperation"]["paymasterAndData"] = json!("0x");
    let a = c.post(&p, v6.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    v6["userOperation"]["factory"] = json!("0x1111111111111111111111111111111111111111");
    refused(&c.post(&p, v6).await, 400, "unknown_field", "factory");
    // the grant: no other operation implies evm.user_operation
    refused(
        &s.client_as("no-op-grant", None, 93)
            .post(&p, op("0x", "kernel-v3"))
            .await,
        403,
        "not_authorized",
        "evm.user_operation",
    );
}
