//! Issue 26, EIP-7702 through the real faces (mTLS REST, a SoftHSM2 token, a SQLite
//! file): authorizations and type-4 transactions against viem's known answers
//! (`tests/fixtures/eip7702_viem.json`, made by `scripts/fixtures/eip7702_viem.mjs`),
//! and the policy cases: a delegate not listed, chain 0, a type-4 list with one bad
//! tuple, revocation, no `evm.delegations` at all, no `[policy]` at all, the grant.

mod common;

use std::collections::HashMap;

use alloy_primitives::{Address, U256};
use common::api::{path, Answer, Server};
use common::Env;
use hyper::StatusCode;
use keyward::store::wallets::{Chain, Wallet};
use serde_json::{json, Value};

const KERNEL: &str = "0xd6cedde84be40893d153be9d467cd6ad37875b28";
const OTHER: &str = "0x1111111111111111111111111111111111111111";

const GRANTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.transaction", "evm.authorization"]

[[clients]]
identity = "no-auth-grant"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "evm.hash"]
"#;

/// `kernel`: the vendor's Kernel delegate on mainnet and Base, revocations allowed;
/// `any-chain`: Kernel on every chain, chain 0 included; `no-table`: an evm rule that
/// writes no delegations; `known`: every delegate of the fixture, on every chain.
const POLICY: &str = r#"
default = "deny"

[[rule]]
id = "kernel"
wallets = ["label:kernel"]
[rule.evm]
[rule.evm.delegations]
"1" = ["0xd6CEDDe84be40893d153Be9d467CD6aD37875b28"]
"8453" = ["0xd6CEDDe84be40893d153Be9d467CD6aD37875b28"]

[[rule]]
id = "any-chain"
wallets = ["label:any-chain"]
[rule.evm.delegations]
allow_any_chain = true
"*" = ["0xd6CEDDe84be40893d153Be9d467CD6aD37875b28"]

[[rule]]
id = "no-table"
wallets = ["label:no-table"]
evm = {}

[[rule]]
id = "known"
wallets = ["label:known"]
[rule.evm.delegations]
allow_any_chain = true
"*" = ["0xd6CEDDe84be40893d153Be9d467CD6aD37875b28", "0x1111111111111111111111111111111111111111"]
"#;

async fn start(policy: Option<&str>) -> Server {
    let mut extra = String::new();
    if policy.is_some() {
        extra.push_str("[policy]\nfile = \"policy.toml\"\n");
    }
    extra.push_str(GRANTS);
    let env = Env::with_extra(extra);
    if let Some(p) = policy {
        std::fs::write(env.path("policy.toml"), p).unwrap();
    }
    common::api::start_in(env).await
}

fn fixture() -> Value {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eip7702_viem.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
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

fn auth(chain: u64, to: &str, nonce: u64) -> Value {
    json!({ "chainId": chain, "address": to, "nonce": nonce })
}

/// A type-4 transaction of `wallet` carrying `list`.
fn type4(list: Value) -> Value {
    json!({ "transaction": {
        "type": "0x4", "chainId": "0x1", "nonce": "0x0", "to": OTHER, "value": "0x0",
        "gas": "0x30000", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
        "authorizationList": list,
    }})
}

/// Every authorization of the fixture, signed by keyward's local engine through the
/// REST route: the digest is viem's `hashAuthorization`, the signature viem's
/// `signAuthorization` (RFC 6979: same key, same bytes), and it recovers (alloy's
/// `recover_authority`) to the wallet, as viem's `recoverAuthorizationAddress` did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizations_match_viem() {
    let s = start(Some(POLICY)).await;
    let c = s.client();
    let doc = fixture();
    let mut wallets: HashMap<String, Wallet> = HashMap::new();
    let cases = doc["authorizations"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let key = text(case, "key").trim_start_matches("0x").to_owned();
        let w = wallets
            .entry(key.clone())
            .or_insert_with(|| s.import(Chain::Evm, &key, Some("known")))
            .clone();
        assert_eq!(
            w.address.as_deref().unwrap(),
            text(case, "signer").to_ascii_lowercase()
        );
        let a = c
            .post(&path(&w, "evm/authorization"), case["request"].clone())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{case}: {}", a.body);
        assert_eq!(a.body["digest"], case["digest"], "{case}");
        assert_eq!(a.body["r"], case["r"], "{case}");
        assert_eq!(a.body["s"], case["s"], "{case}");
        assert_eq!(a.body["yParity"], case["yParity"], "{case}");
        let got = &a.body["authorization"];
        assert_eq!(got["r"], case["r"]);
        assert_eq!(got["s"], case["s"]);
        assert_eq!(got["yParity"], case["yParity"]);
        assert_eq!(got["chainId"], case["request"]["chainId"]);
        assert_eq!(got["nonce"], case["request"]["nonce"]);
        assert_eq!(
            text(got, "address"),
            text(&case["request"], "address").to_ascii_lowercase()
        );
        // alloy recovers the authority from the answer as the chain will
        let signed = alloy_eips::eip7702::Authorization {
            chain_id: U256::from(got["chainId"].as_u64().unwrap()),
            address: text(got, "address").parse().unwrap(),
            nonce: got["nonce"].as_u64().unwrap(),
        }
        .into_signed(alloy_primitives::Signature::new(
            text(got, "r").parse::<U256>().unwrap(),
            text(got, "s").parse::<U256>().unwrap(),
            got["yParity"].as_u64().unwrap() == 1,
        ));
        assert_eq!(
            signed.recover_authority().unwrap(),
            text(case, "recovered").parse::<Address>().unwrap()
        );
        assert_eq!(
            format!("{:#x}", signed.signature_hash()),
            text(case, "digest"),
            "alloy and viem agree on the digest"
        );
        // the audit names the delegate and the chain
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        let detail: Value = serde_json::from_str(rec.detail.as_deref().unwrap()).unwrap();
        assert_eq!(
            detail["delegate"],
            text(&case["request"], "address").to_ascii_lowercase()
        );
        assert_eq!(
            detail["authChainId"],
            case["request"]["chainId"].as_u64().unwrap().to_string()
        );
    }
}

/// viem's type-4 transactions (their tuples signed by viem) signed again by keyward:
/// same signing hash, same raw bytes, same hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type4_transactions_match_viem_byte_for_byte() {
    let s = start(Some(POLICY)).await;
    let c = s.client();
    let doc = fixture();
    let cases = doc["type4"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    let mut wallets: HashMap<String, Wallet> = HashMap::new();
    for case in cases {
        let name = text(case, "name");
        let key = text(case, "key").trim_start_matches("0x").to_owned();
        let w = wallets
            .entry(key.clone())
            .or_insert_with(|| s.import(Chain::Evm, &key, Some("known")))
            .clone();
        let a = c
            .post(
                &path(&w, "evm/transaction"),
                json!({ "transaction": case["transaction"] }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
        assert_eq!(a.body["digest"], case["signingHash"], "{name}");
        assert_eq!(a.body["rawTransaction"], case["raw"], "{name}");
        assert_eq!(a.body["hash"], case["hash"], "{name}");
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        let detail: Value = serde_json::from_str(rec.detail.as_deref().unwrap()).unwrap();
        let list = case["transaction"]["authorizationList"].as_array().unwrap();
        assert_eq!(
            detail["authorizations"].as_array().unwrap().len(),
            list.len()
        );
        assert_eq!(detail["type"], 4);
    }
}

/// The issue's policy cases through REST: a delegate not listed, chain 0, a list with
/// one bad tuple, revocation, a rule without the table, dry run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegations_policy_through_rest() {
    let s = start(Some(POLICY)).await;
    let c = s.client();
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("kernel")).unwrap();
    let p = path(&w, "evm/authorization");

    // listed on chain 1 and 8453: signed
    let a = c.post(&p, auth(1, KERNEL, 0)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = c
        .post(
            &p,
            json!({ "chainId": "0x2105", "contractAddress": KERNEL, "nonce": "0x3" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // a delegate not listed: 403 in the rule's name
    denied_by(
        &c.post(&p, auth(1, OTHER, 0)).await,
        "kernel",
        "not in evm.delegations.\"1\"",
    );
    // a chain without its own list, and no "*": refused
    denied_by(
        &c.post(&p, auth(10, KERNEL, 0)).await,
        "kernel",
        "not in evm.delegations.\"*\"",
    );
    // chain 0: valid on every chain, refused without allow_any_chain
    denied_by(
        &c.post(&p, auth(0, KERNEL, 0)).await,
        "kernel",
        "allow_any_chain",
    );
    // revocation: its own switch, allowed by default
    let a = c
        .post(&p, auth(1, "0x0000000000000000000000000000000000000000", 0))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // dry run: decided, not signed, and a refusal is the same refusal
    let dry = format!("{p}?dryRun=true");
    let a = c.post(&dry, auth(1, KERNEL, 0)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["dryRun"], true);
    assert_eq!(a.body["matchedRules"], json!(["kernel"]));
    assert!(a.body.get("r").is_none(), "{}", a.body);
    denied_by(
        &c.post(&dry, auth(1, OTHER, 0)).await,
        "kernel",
        "not in evm.delegations",
    );

    // chain 0 where the rule allows it
    let any = keyward::wallets::create(&s.app, Chain::Evm, Some("any-chain")).unwrap();
    let a = c
        .post(&path(&any, "evm/authorization"), auth(0, KERNEL, 0))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    denied_by(
        &c.post(&path(&any, "evm/authorization"), auth(0, OTHER, 0))
            .await,
        "any-chain",
        "on every chain",
    );

    // an evm rule without the table: the built-in refusal (no covering rule writes it)
    let nt = keyward::wallets::create(&s.app, Chain::Evm, Some("no-table")).unwrap();
    denied_by(
        &c.post(&path(&nt, "evm/authorization"), auth(1, KERNEL, 0))
            .await,
        "builtin.delegation",
        "hands the account",
    );
    // no rule covers the wallet: default deny
    let bare = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    denied_by(
        &c.post(&path(&bare, "evm/authorization"), auth(1, KERNEL, 0))
            .await,
        "builtin.delegation",
        "hands the account",
    );
}

/// Type-4 lists: each tuple judged as a standalone authorization; one bad tuple among
/// good ones refuses the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type4_list_with_one_bad_tuple_is_refused() {
    let s = start(Some(POLICY)).await;
    let c = s.client();
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("kernel")).unwrap();
    let p = path(&w, "evm/transaction");
    let tuple = |chain: &str, to: &str| {
        json!({ "chainId": chain, "address": to, "nonce": "0x0", "yParity": "0x1",
                "r": "0x6152fc154f5456739f1f82efd301364662a8d738d8e76809e2924a2ce33bb2a8",
                "s": "0x78ee595b769a79d38c96c9e2bda6c4aabcb8d08bcf7057eab4b05f8d519866af" })
    };
    let a = c.post(&p, type4(json!([tuple("0x1", KERNEL)]))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    denied_by(
        &c.post(
            &p,
            type4(json!([
                tuple("0x1", KERNEL),
                tuple("0x1", OTHER),
                tuple("0x2105", KERNEL)
            ])),
        )
        .await,
        "kernel",
        "authorizationList[1] delegates the account to 0x1111111111111111111111111111111111111111",
    );
    denied_by(
        &c.post(
            &p,
            type4(json!([tuple("0x1", KERNEL), tuple("0x0", KERNEL)])),
        )
        .await,
        "kernel",
        "authorizationList[1] has chain id 0",
    );
    // a rule without the table, and no policy at all: the built-in refusal
    let nt = keyward::wallets::create(&s.app, Chain::Evm, Some("no-table")).unwrap();
    denied_by(
        &c.post(
            &path(&nt, "evm/transaction"),
            type4(json!([tuple("0x1", KERNEL)])),
        )
        .await,
        "builtin.delegation",
        "hands the account",
    );
}

/// Without `[policy]` grants alone decide everything else, but an authorization is
/// refused by the built-in rule (standalone and in a type-4 transaction); and the
/// operation is a grant of its own that no other grant implies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_policy_refuses_authorizations_and_the_grant_is_its_own() {
    let s = start(None).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let c = s.client();
    denied_by(
        &c.post(&path(&w, "evm/authorization"), auth(1, KERNEL, 0))
            .await,
        "builtin.delegation",
        "hands the account",
    );
    let tuple = json!({ "chainId": "0x1", "address": KERNEL, "nonce": "0x0", "yParity": "0x0", "r": "0x1", "s": "0x1" });
    denied_by(
        &c.post(&path(&w, "evm/transaction"), type4(json!([tuple])))
            .await,
        "builtin.delegation",
        "hands the account",
    );
    // every other EVM operation, evm.hash included, does not grant evm.authorization
    let other = s.client_as("no-auth-grant", None, 91);
    refused(
        &other
            .post(&path(&w, "evm/authorization"), auth(1, KERNEL, 0))
            .await,
        403,
        "not_authorized",
        "evm.authorization",
    );
}

/// Malformed authorization bodies and tuples: precise codes, nothing signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorizations_are_refused_precisely() {
    let s = start(Some(POLICY)).await;
    let c = s.client();
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("kernel")).unwrap();
    let p = path(&w, "evm/authorization");
    for (body, status, code, says) in [
        (
            json!({ "chainId": 1, "nonce": 0 }),
            400,
            "invalid_authorization",
            "`address`",
        ),
        (
            json!({ "chainId": 1, "address": KERNEL }),
            400,
            "invalid_authorization",
            "`nonce`",
        ),
        (
            json!({ "address": KERNEL, "nonce": 0 }),
            400,
            "invalid_authorization",
            "`chainId`",
        ),
        (
            json!({ "chainId": 1, "address": KERNEL, "contractAddress": KERNEL, "nonce": 0 }),
            400,
            "invalid_authorization",
            "not both",
        ),
        (
            json!({ "chainId": 1, "address": KERNEL, "nonce": 0, "extra": 1 }),
            400,
            "unknown_field",
            "extra",
        ),
        (
            json!({ "chainId": "0x10000000000000000", "address": KERNEL, "nonce": 0 }),
            400,
            "invalid_quantity",
            "chainId",
        ),
        (
            json!({ "chainId": 1, "address": KERNEL, "nonce": "0x10000000000000000" }),
            400,
            "invalid_quantity",
            "nonce",
        ),
        (
            json!({ "chainId": -1, "address": KERNEL, "nonce": 0 }),
            400,
            "invalid_quantity",
            "chainId",
        ),
        (
            json!({ "chainId": 1, "address": "0xD6cedde84be40893d153be9d467cd6ad37875b28", "nonce": 0 }),
            400,
            "invalid_address",
            "checksum",
        ),
        (
            json!({ "chainId": 1, "address": 5, "nonce": 0 }),
            400,
            "invalid_address",
            "address",
        ),
    ] {
        refused(&c.post(&p, body.clone()).await, status, code, says);
    }
    let t = path(&w, "evm/transaction");
    let good = json!({ "chainId": "0x1", "address": KERNEL, "nonce": "0x0", "yParity": "0x0", "r": "0x1", "s": "0x1" });
    let with = |k: &str, v: Value| {
        let mut x = good.clone();
        x[k] = v;
        x
    };
    let high_s = "0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1";
    let mut too_many = Vec::new();
    too_many.resize(65, good.clone());
    for (tx, code, says) in [
        (type4(json!([])), "invalid_transaction", "at least one"),
        (type4(json!({})), "invalid_transaction", "expected an array"),
        (type4(json!(too_many)), "authorization_list_too_large", "65"),
        (
            type4(json!([with("s", json!(high_s))])),
            "invalid_signature",
            "secp256k1n/2",
        ),
        (
            type4(json!([with("r", json!("0x0"))])),
            "invalid_signature",
            "non-zero",
        ),
        (
            type4(json!([with("yParity", json!("0x2"))])),
            "invalid_signature",
            "0 or 1",
        ),
        (
            type4(json!([with("v", json!("0x1c"))])),
            "invalid_signature",
            "disagrees",
        ),
        (
            type4(json!([with("extra", json!(1))])),
            "unknown_field",
            "authorizationList[0].extra",
        ),
        (
            type4(json!(["0x01"])),
            "invalid_transaction",
            "expected an object",
        ),
    ] {
        refused(&c.post(&t, tx).await, 400, code, says);
    }
    // a creation, and a list on another type
    let mut create = type4(json!([good.clone()]));
    create["transaction"].as_object_mut().unwrap().remove("to");
    refused(
        &c.post(&t, create).await,
        400,
        "invalid_transaction",
        "cannot create",
    );
    let mut typed2 = type4(json!([good.clone()]));
    typed2["transaction"]["type"] = json!("0x2");
    refused(
        &c.post(&t, typed2).await,
        400,
        "invalid_transaction",
        "type 2",
    );
    // `v` of 27/28 stands for yParity
    let mut v_only = good.clone();
    v_only.as_object_mut().unwrap().remove("yParity");
    v_only["v"] = json!("0x1b");
    let a = c.post(&t, type4(json!([v_only]))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// The JSON-RPC face: `eth_signTransaction` of viem's type-4 transactions gives viem's raw
/// bytes; geth's `{raw, tx}` shape lists the authorizations; one tuple to a delegate the
/// policy does not list is refused with 4001 and the rule named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type4_through_json_rpc() {
    let env = Env::with_extra(format!(
        "[policy]\nfile = \"policy.toml\"\n[rpc]\nchain_id = 1\n{GRANTS}"
    ));
    std::fs::write(env.path("policy.toml"), POLICY).unwrap();
    let s = common::api::start_in(env).await;
    let doc = fixture();
    let case = &doc["type4"][1];
    let key = text(case, "key").trim_start_matches("0x").to_owned();
    let w = s.import(Chain::Evm, &key, Some("known"));
    let mut tx = case["transaction"].clone();
    tx["from"] = json!(w.address.clone().unwrap());
    let rpc = s.rpc("/v1/rpc");
    let raw = rpc.ok("eth_signTransaction", json!([tx])).await;
    assert_eq!(raw, case["raw"]);
    let geth = s.rpc("/v1/rpc?compat=geth");
    let g = geth.ok("eth_signTransaction", json!([tx])).await;
    assert_eq!(g["raw"], case["raw"]);
    assert_eq!(g["tx"]["type"], "0x4");
    let list = g["tx"]["authorizationList"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0]["address"].as_str().unwrap().to_ascii_lowercase(),
        KERNEL
    );
    // the same wallet under the Kernel-only rule: the zero-address tuple is a
    // revocation (allowed) but chain 0 is not
    let k = s.import(
        Chain::Evm,
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690e",
        Some("kernel"),
    );
    tx["from"] = json!(k.address.clone().unwrap());
    let e = rpc.err("eth_signTransaction", json!([tx]), 4001).await;
    assert_eq!(e["data"]["code"], "policy_denied", "{e}");
    assert_eq!(e["data"]["rule"], "kernel", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("authorizationList[1] has chain id 0"),
        "{e}"
    );
}
