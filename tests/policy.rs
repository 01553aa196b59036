//! The policy engine end to end: real mTLS on loopback, a real SoftHSM2 token and SQLite
//! file, the policy loaded from a separate file (`policy.file`) the way `serve` loads it.

mod common;

use common::api::{path, Answer, Server};
use common::fixtures::solana_fixture;
use common::Env;
use hyper::StatusCode;
use keyward::chains::solana;
use keyward::config::Config;
use keyward::store::wallets::Chain;
use serde_json::{json, Value};

/// The grants: the API tests' `test-client`, a client for typed data only, and the
/// rate-limited `slow-client`; the policy comes from its own file.
fn config() -> String {
    [
        "[policy]\nfile = \"policy.toml\"\n",
        common::api::CLIENTS,
        &common::grant("permit-client", &["*"], &["evm.typed_data"]),
        &common::slow_client(),
    ]
    .concat()
}

const POLICY: &str = r#"
default = "deny"

[[rule]]
id = "evm-capped"
clients = ["test-client"]
wallets = ["label:capped"]
[rule.evm]
chain_ids = [1]
[[rule.evm.spend]]
chain_id = 1
window = "1h"
max = "10"

[[rule]]
id = "evm-dry"
clients = ["test-client"]
wallets = ["label:dry"]
[rule.evm]
[[rule.evm.spend]]
chain_id = 1
window = "24h"
max = "10"

[[rule]]
id = "typed"
clients = ["test-client"]
wallets = ["label:typed"]
typed_data = {}

[[rule]]
id = "tokens"
clients = ["test-client"]
wallets = ["label:tokens"]
[rule.evm]
to_deny = ["0x00000000000000000000000000000000000000dd"]
[[rule.evm.token]]
contract = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
chain_id = 1
max_per_tx = "100"
window = "1h"
max_per_window = "150"
[rule.typed_data]
allow_primary_types = ["Permit", "TransferWithAuthorization", "SafeTx"]

[[rule]]
id = "sol-capped"
clients = ["test-client"]
wallets = ["label:sol-capped"]
[rule.solana]
programs = ["system", "token", "token-2022", "compute-budget", "associated-token", "memo"]
max_lamports_per_tx = "5000000"
[[rule.solana.spend]]
window = "24h"
max = "8000000"
[[rule.solana.token]]
mint = "CktRuQ2mttgRGkXJtyksdKHjUdc2C4TgDzyB98oEzy8"
max_per_tx = "3000000"
window = "24h"
max_per_window = "4000000"

[[rule]]
id = "permits"
clients = ["permit-client"]
[rule.typed_data]
allow_primary_types = ["Permit"]
# an allowance no cap bounds needs its spender allowlisted (the permit's spender is USDC)
[rule.evm]
to_allow = ["0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]

[[rule]]
id = "sol"
clients = ["test-client"]
wallets = ["label:sol-plain"]
solana = { programs = ["system", "compute-budget"], require_fee_payer = true }

[[rule]]
id = "messages"
message = { max_len = 64 }

[[rate_limit]]
id = "slow-client"
scope = "client"
clients = ["slow-client"]
requests = 2
per = "1h"
"#;

/// The signing API with the grants above and [`POLICY`] as its `policy.file`.
async fn start() -> Server {
    let env = Env::with_extra(config());
    std::fs::write(env.path("policy.toml"), POLICY).unwrap();
    common::api::start_in(env).await
}

/// How many spend rows `wallet` has.
fn spend_rows(s: &Server, wallet: &str) -> i64 {
    common::store::count(
        s.db(),
        &format!("SELECT COUNT(*) FROM spend WHERE wallet_id = '{wallet}'"),
    )
}

fn transfer(nonce: u64, value: u64) -> Value {
    json!({ "transaction": {
        "type": "0x2", "chainId": "0x1", "nonce": format!("{nonce:#x}"),
        "to": "0x00000000000000000000000000000000000000b0", "value": format!("{value:#x}"),
        "gas": "0x5208", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1"
    }})
}

fn permit() -> Value {
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    json!({ "typedData": {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": usdc},
        "message": {"owner": usdc, "spender": usdc, "value": "1000000", "nonce": 0, "deadline": 1}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_never_exceed_a_rolling_cap() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("capped")).unwrap();
    let c = s.client();
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let c = c.clone();
        let p = path(&w, "evm/transaction");
        tasks.push(tokio::spawn(
            async move { c.post(&p, transfer(i, 1)).await },
        ));
    }
    let mut signed = 0;
    let mut denied = 0;
    for t in tasks {
        let a = t.await.unwrap();
        match a.status {
            StatusCode::OK => {
                assert!(a.body["rawTransaction"].is_string());
                signed += 1;
            }
            StatusCode::FORBIDDEN => {
                assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
                assert_eq!(a.body["error"]["rule"], "evm-capped");
                assert!(a.body["error"].get("message").is_some());
                assert!(a.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("exceeds 10"));
                assert!(a.body.get("rawTransaction").is_none());
                s.assert_audited(&a.body["auditId"], "denied", "policy_denied");
                denied += 1;
            }
            other => panic!("unexpected {other}: {}", a.body),
        }
    }
    assert_eq!((signed, denied), (10, 40));
    assert_eq!(spend_rows(&s, &w.id), 10);
    // another chain is not covered by the rule: the default refuses it
    let mut tx = transfer(99, 1);
    tx["transaction"]["chainId"] = json!("0x2105");
    let a = c.post(&path(&w, "evm/transaction"), tx).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["rule"], "evm-capped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_report_matched_rules_and_count_no_spend() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("dry")).unwrap();
    let c = s.client();
    let dry = format!("{}?dryRun=true", path(&w, "evm/transaction"));
    for i in 0..3 {
        let a = c.post(&dry, transfer(i, 6)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.body["dryRun"], true);
        assert_eq!(a.body["decision"], "allowed");
        assert_eq!(a.body["matchedRules"], json!(["evm-dry"]));
        assert!(a.body.get("rawTransaction").is_none());
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.result, "dry_run");
    }
    assert_eq!(spend_rows(&s, &w.id), 0);
    let a = c.post(&path(&w, "evm/transaction"), transfer(0, 6)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // a dry run of what no longer fits says so, with the rule
    let a = c.post(&dry, transfer(1, 5)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["rule"], "evm-dry");
    assert_eq!(a.body["dryRun"], true);
    assert_eq!(a.body["matchedRules"], json!(["evm-dry"]));
    let a = c.post(&path(&w, "evm/transaction"), transfer(1, 4)).await;
    assert_eq!(a.status, StatusCode::OK, "cap reached exactly: {}", a.body);
    assert_eq!(spend_rows(&s, &w.id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_refused_by_default_and_allowed_by_an_explicit_rule() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let a = s.client().post(&path(&w, "evm/typed-data"), permit()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied");
    assert_eq!(a.body["error"]["rule"], "builtin.spending_typed_data");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Permit"));
    let rec = s.record(a.body["auditId"].as_str().unwrap());
    assert_eq!(rec.result, "policy_denied");
    let detail: Value = serde_json::from_str(rec.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["policy"]["rule"], "builtin.spending_typed_data");

    let a = s
        .client_as("permit-client", None, 71)
        .post(&path(&w, "evm/typed-data"), permit())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body["signature"].is_string());
}

/// A legacy transaction paid by `payer` with a System transfer and, optionally, an
/// instruction for `extra_program`.
fn solana_tx(payer: &[u8; 32], extra_program: Option<[u8; 32]>) -> String {
    let to = [7u8; 32];
    let mut keys = vec![*payer, to, solana::SYSTEM_PROGRAM_ID];
    if let Some(p) = extra_program {
        keys.push(p);
    }
    let mut msg = vec![1u8, 0, (keys.len() - 2) as u8, keys.len() as u8];
    for k in &keys {
        msg.extend_from_slice(k);
    }
    msg.extend_from_slice(&[9u8; 32]);
    msg.push(if extra_program.is_some() { 2 } else { 1 });
    msg.extend([2, 2, 0, 1]); // system program, accounts payer, to
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend(5_000u64.to_le_bytes());
    msg.push(data.len() as u8);
    msg.extend(data);
    if extra_program.is_some() {
        msg.extend([3, 0, 1, 0x42]);
    }
    let mut tx = vec![1u8];
    tx.extend([0u8; 64]);
    tx.extend(msg);
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_transaction_with_an_unknown_program_is_refused() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Solana, Some("sol-plain")).unwrap();
    let pk = solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap();
    let c = s.client();
    let a = c
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": solana_tx(&pk, None) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let unknown = [0x5au8; 32];
    let a = c
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": solana_tx(&pk, Some(unknown)) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["rule"], "sol");
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&solana::to_base58(&unknown)));
    assert!(a.body.get("signature").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let c = s.client_as("slow-client", None, 72);
    for _ in 0..2 {
        let a = c
            .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "rate_limited");
    assert_eq!(a.body["error"]["rule"], "slow-client");
    let secs: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    // one token per 30 minutes
    assert!((1..=1800).contains(&secs), "{secs}");
    s.assert_audited(&a.body["auditId"], "denied", "rate_limited");
    // other clients have their own buckets
    let a = s
        .client()
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_policy_keeps_the_old_one() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let c = s.client();
    let long = json!({ "message": "x".repeat(65) });
    let a = c.post(&path(&w, "evm/message"), long.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["rule"], "messages");

    // what SIGHUP does (server::run): Config::load, and replace_config only on success
    std::fs::write(
        s.env.path("policy.toml"),
        POLICY.replace("max_len = 64", "max_len = \"lots\""),
    )
    .unwrap();
    let e = Config::load(&s.env.config_path).unwrap_err().to_string();
    assert!(e.contains("policy.toml"), "{e}");
    assert!(e.contains("rule[7]"), "{e}");
    let a = c.post(&path(&w, "evm/message"), long.clone()).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "the old policy stays in force"
    );

    std::fs::write(
        s.env.path("policy.toml"),
        POLICY.replace("max_len = 64", "max_len = 128"),
    )
    .unwrap();
    s.app
        .replace_config(Config::load(&s.env.config_path).unwrap());
    let a = c.post(&path(&w, "evm/message"), long).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[test]
fn example_and_dev_configs_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["keyward.example.toml", "keyward.dev.toml"] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let c = Config::parse(&text, &root.join(name)).unwrap();
        c.policy.compile().unwrap();
    }
}

// --- issue 14: every asset-moving family is priced or refused through the signing API ---

const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const PERMIT2: &str = "0x000000000022d473030f116ddee9f6b43ac78ba3";

fn call(nonce: u64, to: &str, data: Vec<u8>) -> Value {
    json!({ "transaction": {
        "type": "0x2", "chainId": "0x1", "nonce": format!("{nonce:#x}"), "to": to, "value": "0x0",
        "gas": "0x30000", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
        "data": format!("0x{}", hex::encode(data)),
    }})
}

alloy_sol_types::sol! {
    interface Calls {
        function increaseAllowance(address spender, uint256 added);
        function approve(address spender, uint256 amount);
        function transfer(address to, uint256 amount);
        function multicall(bytes[] calls);
    }
    interface Permit2 {
        function approve(address token, address spender, uint160 amount, uint48 expiration);
    }
}

fn denied_by(a: &Answer, rule: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
    assert_eq!(a.body["error"]["rule"], rule, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc20_allowances_are_spend_and_unpriced_calls_are_refused() {
    use alloy_sol_types::SolCall;
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("tokens")).unwrap();
    let c = s.client();
    let p = path(&w, "evm/transaction");
    let bob: alloy_primitives::Address = "0x00000000000000000000000000000000000000b0"
        .parse()
        .unwrap();
    let inc = |n: u64| {
        Calls::increaseAllowanceCall {
            spender: bob,
            added: alloy_primitives::U256::from(n),
        }
        .abi_encode()
    };
    // increaseAllowance is priced: 100 fits, another 100 overruns the rolling 150
    let a = c.post(&p, call(0, USDC, inc(100))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = c.post(&p, call(1, USDC, inc(100))).await;
    denied_by(&a, "tokens");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rolling"),
        "{}",
        a.body
    );
    // and so is approve: 60 more would also overrun it (100 + 60 > 150)
    let approve = Calls::approveCall {
        spender: bob,
        amount: alloy_primitives::U256::from(60),
    }
    .abi_encode();
    denied_by(&c.post(&p, call(1, USDC, approve)).await, "tokens");
    // unlimited
    let unl = Calls::increaseAllowanceCall {
        spender: bob,
        added: alloy_primitives::U256::MAX,
    }
    .abi_encode();
    denied_by(&c.post(&p, call(1, USDC, unl)).await, "tokens");
    // a multicall at the capped token is priced by the transfer it wraps
    let inner = Calls::transferCall {
        to: bob,
        amount: alloy_primitives::U256::from(10_000),
    }
    .abi_encode();
    let multi = Calls::multicallCall {
        calls: vec![inner.into()],
    }
    .abi_encode();
    let a = c.post(&p, call(1, USDC, multi)).await;
    denied_by(&a, "tokens");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_per_tx"),
        "{}",
        a.body
    );
    // any selector nothing decodes at the capped token
    let a = c
        .post(&p, call(1, USDC, vec![0xde, 0xad, 0xbe, 0xef]))
        .await;
    denied_by(&a, "builtin.unpriced_call");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("0xdeadbeef"),
        "{}",
        a.body
    );
    // Permit2 approve of the token: priced on the same counter (already at 100)
    let p2 = Permit2::approveCall {
        token: USDC.parse().unwrap(),
        spender: bob,
        amount: alloy_primitives::aliases::U160::from(51u64),
        expiration: alloy_primitives::aliases::U48::from(1u64),
    }
    .abi_encode();
    denied_by(&c.post(&p, call(1, PERMIT2, p2)).await, "tokens");
    // a decoded recipient on the deny list
    let dead = Calls::transferCall {
        to: "0x00000000000000000000000000000000000000dd"
            .parse()
            .unwrap(),
        amount: alloy_primitives::U256::from(1),
    }
    .abi_encode();
    let a = c.post(&p, call(1, USDC, dead)).await;
    denied_by(&a, "tokens");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("to_deny"),
        "{}",
        a.body
    );
}

fn typed(primary: &str, fields: Value, message: Value) -> Value {
    json!({ "typedData": {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            primary: fields
        },
        "primaryType": primary,
        "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC},
        "message": message
    }})
}

fn eip2612(value: u64) -> Value {
    typed(
        "Permit",
        json!([
            {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}
        ]),
        json!({"owner": USDC, "spender": USDC, "value": value.to_string(), "nonce": 0, "deadline": 1}),
    )
}

fn eip3009(value: u64) -> Value {
    typed(
        "TransferWithAuthorization",
        json!([
            {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"}, {"name": "nonce", "type": "bytes32"}
        ]),
        json!({"from": USDC, "to": USDC, "value": value.to_string(), "validAfter": 0,
               "validBefore": 1, "nonce": format!("0x{}", "11".repeat(32))}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_permits_and_authorizations_count_against_token_caps() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("tokens")).unwrap();
    let c = s.client();
    let p = path(&w, "evm/typed-data");
    let a = c.post(&p, eip2612(101)).await;
    denied_by(&a, "tokens");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_per_tx"),
        "{}",
        a.body
    );
    let a = c.post(&p, eip2612(100)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(spend_rows(&s, &w.id), 1, "the permit is recorded as spend");
    // an EIP-3009 transfer authorisation shares the rolling 150: 100 + 60 overruns it
    denied_by(&c.post(&p, eip3009(60)).await, "tokens");
    let a = c.post(&p, eip3009(50)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // a listed family the engine cannot price, under a rule with caps
    let safe = typed(
        "SafeTx",
        json!([{"name": "nonce", "type": "uint256"}]),
        json!({"nonce": 1}),
    );
    denied_by(&c.post(&p, safe).await, "builtin.unpriced_typed_data");
    // an unlisted family
    let order = typed(
        "Order",
        json!([{"name": "nonce", "type": "uint256"}]),
        json!({"nonce": 1}),
    );
    denied_by(&c.post(&p, order).await, "builtin.spending_typed_data");
    // and a benign type that the allowlist does not name
    let mail = typed(
        "Mail",
        json!([{"name": "nonce", "type": "uint256"}]),
        json!({"nonce": 1}),
    );
    denied_by(&c.post(&p, mail).await, "tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_families_are_priced_or_refused() {
    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Solana, Some("sol-capped")).unwrap();
    let pk = solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap();
    let c = s.client();
    let p = path(&w, "solana/transaction");
    let send = |name: &str| json!({ "transaction": solana_fixture(name, &pk) });
    // CreateAccount funds 7_000_000 lamports: over max_lamports_per_tx 5_000_000
    let a = c.post(&p, send("system.create_account")).await;
    denied_by(&a, "sol-capped");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_lamports_per_tx"),
        "{}",
        a.body
    );
    // TransferWithSeed (3_000_000, counted against its base), WithdrawNonceAccount
    // (1_234_567), TransferWithSeed, CreateAccountAllowPrefund (11) fit the rolling
    // 8_000_000; a third TransferWithSeed does not
    for name in ["system.transfer_with_seed", "system.withdraw_nonce_account"] {
        let a = c.post(&p, send(name)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
    }
    let a = c.post(&p, send("system.transfer_with_seed")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body); // 7_234_567
    let a = c
        .post(&p, send("system.create_account_allow_prefund"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body); // + 11
    denied_by(
        &c.post(&p, send("system.transfer_with_seed")).await,
        "sol-capped",
    );
    // authority changes
    for name in [
        "system.assign",
        "system.authorize_nonce_account",
        "token.set_authority",
        "token.close_account",
        "token-2022.set_authority",
    ] {
        let a = c.post(&p, send(name)).await;
        denied_by(&a, "builtin.unpriced_instruction");
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("solana.instructions"),
            "{}",
            a.body
        );
    }
    // an unlimited SPL approval
    denied_by(
        &c.post(&p, send("token.approve_checked")).await,
        "sol-capped",
    );
    // a plain Transfer names no mint: unpriced under token caps
    denied_by(
        &c.post(&p, send("token.transfer")).await,
        "builtin.unpriced_instruction",
    );
    // TransferChecked of 2_500_000 fits per tx; the with-fee transfer (1_000_000) then fits the
    // rolling 4_000_000, and another TransferChecked does not
    let a = c.post(&p, send("token.transfer_checked")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = c
        .post(&p, send("token-2022.transfer_checked_with_fee"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    denied_by(
        &c.post(&p, send("token.transfer_checked")).await,
        "sol-capped",
    );
    // inert
    for name in [
        "memo",
        "associated-token.create_idempotent",
        "token.sync_native",
        "token.revoke",
    ] {
        let a = c.post(&p, send(name)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
    }
}

/// `keyward policy test`: the shipped golden cases pass against the example policy, and a
/// case whose expectation is wrong fails the command and is named.
#[test]
fn golden_cases_for_the_example_policy() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let run = |cases: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["policy", "test"])
            .arg(root.join("keyward.example.toml"))
            .arg(cases)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let out = run(&root.join("policy-cases.jsonl"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(stdout.contains("builtin.unpriced_instruction"), "{stdout}");

    let text = std::fs::read_to_string(root.join("policy-cases.jsonl")).unwrap();
    let wrong = text.replacen(
        r#""name":"evm.value_over_max_value","#,
        r#""name":"evm.value_over_max_value.wrong","#,
        1,
    );
    let wrong = wrong.replacen(r#""expect":"payments-hot-evm"}"#, r#""expect":"allow"}"#, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.jsonl");
    std::fs::write(&path, wrong).unwrap();
    let out = run(&path);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("FAIL  evm.value_over_max_value.wrong"),
        "{all}"
    );
    assert!(all.contains("1 failed"), "{all}");
}

/// The rolling cap is re-checked inside the transaction that commits a signature's audit
/// record, so two requests decided against the same totals cannot both spend it. Made
/// deterministic here: both are decided (the policy read the totals) before either
/// commits, then committed one after the other through the commit job the signing path
/// runs. Each alone fits the cap (6 of 10 per hour); the second must be withheld, audited
/// as refused, and count nothing. (`concurrent_transfers_never_exceed_a_rolling_cap`
/// reaches the same interleaving only by chance.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rolling_cap_is_rechecked_inside_the_commit() {
    use keyward::api::policy_gate::{self, Late};
    use keyward::config::Operation;
    use keyward::policy::{Request, WalletRef};
    use keyward::store::AuditEvent;

    let s = start().await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("capped")).unwrap();
    let address = w.address.as_deref().unwrap().parse().unwrap();
    let policy = s.app.config().compiled_policy.clone();
    let wref = WalletRef {
        id: &w.id,
        chain: "evm",
        label: Some("capped"),
    };
    let mut decided = Vec::new();
    for nonce in 0..2 {
        let p = keyward::api::evm::prepare(Operation::EvmTransaction, transfer(nonce, 6), address)
            .unwrap();
        let req = Request {
            client: "cn:test-client",
            wallet: wref,
            subject: &p.subject,
            pending_nonce: None,
        };
        let (outcome, denial) = policy_gate::evaluate(&s.app.store, &policy, &req)
            .await
            .unwrap();
        assert!(denial.is_none(), "each alone fits: {denial:?}");
        assert_eq!(outcome.matched, vec!["evm-capped"]);
        assert_eq!(outcome.spend.len(), 1);
        decided.push(outcome);
    }
    let event = || AuditEvent {
        actor: "cn:test-client".into(),
        action: "sign".into(),
        wallet_id: Some(w.id.clone()),
        chain: Some("evm".into()),
        operation: Some("evm.transaction".into()),
        decision: "allowed".into(),
        result: "ok".into(),
        detail: Some(json!({})),
        ..Default::default()
    };
    let mut results = Vec::new();
    for outcome in decided {
        let ev = event();
        results.push(
            s.app
                .store
                .write(move |ctx| policy_gate::commit(ctx, ev, Some(outcome), true))
                .await
                .unwrap(),
        );
    }
    let (first, late) = &results[0];
    assert!(late.is_none(), "{late:?}");
    assert_eq!(s.record(first).result, "ok");
    let (second, late) = &results[1];
    match late {
        Some(Late::Policy(d)) => {
            assert_eq!(d.rule, "evm-capped");
            assert!(d.reason.contains("exceeds 10"), "{}", d.reason);
        }
        other => panic!("the second commit must be withheld by the cap: {other:?}"),
    }
    let rec = s.record(second);
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "policy_denied")
    );
    assert_eq!(spend_rows(&s, &w.id), 1);
}
