//! Issue 22's EVM classes through the real faces (mTLS REST and JSON-RPC, a SoftHSM2 token,
//! a SQLite file): call data that hands over assets inside wrappers or through NFT
//! functions, 32-byte messages that are digests, typed data that moves assets under a name
//! no list knows, typed data for another chain, and approvals just under "unlimited".
//! Every payload is built here by alloy `sol!` encoders or by hand, independently of the
//! decoders under test.

mod common;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use common::api::{path, Answer, Server};
use common::fixtures::{EIP155_ADDR, EIP155_KEY};
use common::Env;
use hyper::StatusCode;
use keyward::store::wallets::Chain;
use serde_json::{json, Value};

const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const NFT: &str = "0x00000000000000000000000000000000000000a7";
const BOB: &str = "0x00000000000000000000000000000000000000b0";
const DEAD: &str = "0x00000000000000000000000000000000000000dd";
const MULTICALL3: &str = "0xca11bde05977b3631167028862be2a173976ca11";

/// `capped`: the shape of the example production rule (value and token caps, chain 1);
/// `scoped`: Base only, with a Base cap on the same token address; `plain`: an EVM rule
/// that caps nothing; digests: a message rule, and rules allowing digests either way.
const POLICY: &str = r#"
default = "deny"

[[rule]]
id = "capped"
clients = ["test-client"]
wallets = ["label:capped"]
[rule.evm]
chain_ids = [1]
to_deny = ["0x00000000000000000000000000000000000000dd"]
max_value = { "*" = "1000" }
[[rule.evm.token]]
contract = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
chain_id = 1
max_per_tx = "100"
[rule.typed_data]
allow_primary_types = ["Permit", "*"]

[[rule]]
id = "scoped"
clients = ["test-client"]
wallets = ["label:scoped"]
[rule.evm]
chain_ids = [8453]
[[rule.evm.token]]
contract = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
chain_id = 8453
max_per_tx = "100"
[rule.typed_data]
allow_primary_types = ["Permit", "*"]

[[rule]]
id = "plain"
clients = ["test-client"]
wallets = ["label:plain"]
evm = {}

[[rule]]
id = "value-only"
clients = ["test-client"]
wallets = ["label:value-only"]
[rule.evm]
max_value = { "*" = "1" }
[rule.typed_data]
allow_primary_types = ["SafeTx"]

[[rule]]
id = "messages"
wallets = ["label:msg", "label:hash"]
message = { max_len = 1024 }

[[rule]]
id = "hashes"
wallets = ["label:hash"]
hash = { allow = true }

[[rule]]
id = "digest-messages"
wallets = ["label:digests"]
message = { allow_digests = true }
"#;

async fn start(policy: Option<&str>) -> Server {
    let mut extra = String::new();
    if policy.is_some() {
        extra.push_str("[policy]\nfile = \"policy.toml\"\n");
    }
    extra.push_str(common::api::CLIENTS);
    let env = Env::with_extra(extra);
    if let Some(p) = policy {
        std::fs::write(env.path("policy.toml"), p).unwrap();
    }
    common::api::start_in(env).await
}

fn addr(s: &str) -> Address {
    s.parse().unwrap()
}

fn tx(to: &str, value: u64, data: &[u8]) -> Value {
    json!({ "transaction": {
        "type": "0x2", "chainId": "0x1", "nonce": "0x0", "to": to, "value": format!("{value:#x}"),
        "gas": "0x30000", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
        "data": format!("0x{}", hex::encode(data)),
    }})
}

fn denied_by(a: &Answer, rule: &str, says: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
    assert_eq!(a.body["error"]["rule"], rule, "{}", a.body);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(m.contains(says), "{says:?} not in {m}");
}

fn signed(a: &Answer) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body["signature"].is_object() || a.body["signature"].is_string());
}

sol! {
    struct Call { address target; bytes callData; }
    struct Execution { address target; uint256 value; bytes data; }
    interface Enc {
        function transfer(address to, uint256 amount);
        function approve(address spender, uint256 amount);
        function transferFrom(address from, address to, uint256 amount);
        function setApprovalForAll(address operator, bool approved);
        function safeTransferFrom(address from, address to, uint256 id);
        function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data);
        function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data);
        function multicall(bytes[] calls);
        function multicall(uint256 deadline, bytes[] calls);
        function aggregate(Call[] calls);
        function execute(address dest, uint256 value, bytes func);
        function executeBatch(Execution[] calls);
    }
}

fn usdc_transfer(amount: u64) -> Vec<u8> {
    Enc::transferCall {
        to: addr(BOB),
        amount: U256::from(amount),
    }
    .abi_encode()
}

/// Item 2: ERC-721 / ERC-1155 operator approvals and transfers, and wrappers, under the
/// capped rule; each was signed before (multicall at a contract without a token entry,
/// execute, aggregate, NFT calls read as uncapped or unknown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nft_calls_and_wrapped_calls_are_priced_or_refused() {
    let s = start(Some(POLICY)).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("capped")).unwrap();
    let c = s.client();
    let p = path(&w, "evm/transaction");
    let bob = addr(BOB);
    let me = addr("0x00000000000000000000000000000000000000e0");

    // operator approvals: an unlimited allowance, refused in the rule's own name
    let all = Enc::setApprovalForAllCall {
        operator: bob,
        approved: true,
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(NFT, 0, &all)).await,
        "capped",
        "unlimited allowance",
    );
    // revoking one moves nothing
    let revoke = Enc::setApprovalForAllCall {
        operator: bob,
        approved: false,
    }
    .abi_encode();
    signed(&c.post(&p, tx(NFT, 0, &revoke)).await);
    // ERC-721 / ERC-1155 transfers: unpriced under caps, and recipients meet to_deny first
    for data in [
        Enc::safeTransferFrom_0Call {
            from: me,
            to: bob,
            id: U256::from(7),
        }
        .abi_encode(),
        Enc::safeTransferFrom_1Call {
            from: me,
            to: bob,
            id: U256::from(7),
            amount: U256::from(1000),
            data: Bytes::new(),
        }
        .abi_encode(),
        Enc::safeBatchTransferFromCall {
            from: me,
            to: bob,
            ids: vec![U256::from(7)],
            amounts: vec![U256::from(1)],
            data: Bytes::new(),
        }
        .abi_encode(),
    ] {
        denied_by(
            &c.post(&p, tx(NFT, 0, &data)).await,
            "builtin.unpriced_call",
            "ERC-721 / ERC-1155 transfer",
        );
    }
    let to_dead = Enc::safeTransferFrom_0Call {
        from: me,
        to: addr(DEAD),
        id: U256::from(7),
    }
    .abi_encode();
    denied_by(&c.post(&p, tx(NFT, 0, &to_dead)).await, "capped", "to_deny");
    // ERC-721 transferFrom has ERC-20's selector: at a contract without a token entry it
    // is not an uncapped ERC-20 transfer
    let from = Enc::transferFromCall {
        from: me,
        to: bob,
        amount: U256::from(7),
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(NFT, 0, &from)).await,
        "builtin.unpriced_call",
        "no evm.token entry",
    );

    // wrappers are priced by the calls they make: a multicall at the token over its cap
    let over = Enc::multicall_0Call {
        calls: vec![usdc_transfer(60).into(), usdc_transfer(41).into()],
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(USDC, 0, &over)).await,
        "capped",
        "max_per_tx 100",
    );
    let fits = Enc::multicall_1Call {
        deadline: U256::from(1),
        calls: vec![usdc_transfer(60).into(), usdc_transfer(40).into()],
    }
    .abi_encode();
    signed(&c.post(&p, tx(USDC, 0, &fits)).await);
    // Multicall3 aggregate of a transfer over the cap
    let agg = Enc::aggregateCall {
        calls: vec![Call {
            target: addr(USDC),
            callData: usdc_transfer(101).into(),
        }],
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(MULTICALL3, 0, &agg)).await,
        "capped",
        "max_per_tx 100",
    );
    // an account's execute (an EIP-7702 wallet calling itself): the inner value counts
    // against max_value, the inner approval is an operator approval
    let exe = Enc::executeCall {
        dest: bob,
        value: U256::from(1001),
        func: Bytes::new(),
    }
    .abi_encode();
    denied_by(&c.post(&p, tx(BOB, 0, &exe)).await, "capped", "max_value");
    let exe_nft = Enc::executeBatchCall {
        calls: vec![Execution {
            target: addr(NFT),
            value: U256::ZERO,
            data: all.clone().into(),
        }],
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(BOB, 0, &exe_nft)).await,
        "capped",
        "unlimited allowance",
    );
    // a wrapped call to a deny-listed target
    let exe_dead = Enc::executeCall {
        dest: addr(DEAD),
        value: U256::ZERO,
        func: Bytes::from(vec![1, 2, 3, 4]),
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(BOB, 0, &exe_dead)).await,
        "capped",
        "to_deny",
    );
    // nested past the depth limit, and a wrapper that does not decode
    let mut deep = usdc_transfer(1);
    for _ in 0..5 {
        deep = Enc::multicall_0Call {
            calls: vec![deep.into()],
        }
        .abi_encode();
    }
    denied_by(
        &c.post(&p, tx(USDC, 0, &deep)).await,
        "builtin.unpriced_call",
        "deeper",
    );
    denied_by(
        &c.post(&p, tx(USDC, 0, &over[..over.len() - 40])).await,
        "builtin.unpriced_call",
        "do not decode",
    );
    // unknown call data anywhere, under caps
    denied_by(
        &c.post(&p, tx(BOB, 1, &[0xde, 0xad, 0xbe, 0xef])).await,
        "builtin.unpriced_call",
        "0xdeadbeef",
    );
    // plain value transfers still pass
    signed(&c.post(&p, tx(BOB, 1000, &[])).await);
}

/// Item 12: an approval just under the "unlimited" bit at a token no cap bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowances_no_cap_bounds_are_refused() {
    let s = start(Some(POLICY)).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("plain")).unwrap();
    let c = s.client();
    let p = path(&w, "evm/transaction");
    let under = (U256::from(1) << 255) - U256::from(1);
    for amount in [under, U256::from(1), U256::MAX] {
        let data = Enc::approveCall {
            spender: addr(BOB),
            amount,
        }
        .abi_encode();
        let a = c.post(&p, tx(USDC, 0, &data)).await;
        assert_eq!(a.body["error"]["rule"], "plain", "{}", a.body);
    }
    // ERC-721 approve(to, tokenId) is the same call: refused too
    let nft = Enc::approveCall {
        spender: addr(BOB),
        amount: U256::from(7),
    }
    .abi_encode();
    denied_by(
        &c.post(&p, tx(NFT, 0, &nft)).await,
        "plain",
        "bounded by no cap",
    );
    // a zero allowance revokes
    let zero = Enc::approveCall {
        spender: addr(BOB),
        amount: U256::ZERO,
    }
    .abi_encode();
    signed(&c.post(&p, tx(USDC, 0, &zero)).await);
}

/// Item 3: a 32-byte message is a digest, on the REST and JSON-RPC faces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_byte_messages_are_judged_as_digests() {
    let s = start(Some(POLICY)).await;
    let msg = s.import(Chain::Evm, EIP155_KEY, Some("msg"));
    let hash = keyward::wallets::create(&s.app, Chain::Evm, Some("hash")).unwrap();
    let digests = keyward::wallets::create(&s.app, Chain::Evm, Some("digests")).unwrap();
    let c = s.client();
    let safe_tx_hash = format!("0x{}", "5a".repeat(32));
    // hex, text of 32 bytes, and the same through both RPC methods
    let text32 = "a".repeat(32);
    for m in [safe_tx_hash.as_str(), text32.as_str()] {
        let a = c
            .post(&path(&msg, "evm/message"), json!({ "message": m }))
            .await;
        denied_by(&a, "builtin.digest_message", "32 bytes");
    }
    let rpc = s.rpc("/v1/rpc");
    let e = rpc
        .err("personal_sign", json!([safe_tx_hash, EIP155_ADDR]), 4001)
        .await;
    assert_eq!(e["data"]["rule"], "builtin.digest_message", "{e}");
    let e = rpc
        .err("eth_sign", json!([EIP155_ADDR, safe_tx_hash]), 4001)
        .await;
    assert_eq!(e["data"]["rule"], "builtin.digest_message", "{e}");
    // 31 and 33 bytes are messages
    for m in [
        "0x".to_owned() + &"5a".repeat(31),
        "0x".to_owned() + &"5a".repeat(33),
    ] {
        signed(
            &c.post(&path(&msg, "evm/message"), json!({ "message": m }))
                .await,
        );
    }
    // where hash.allow covers the client and wallet, or message.allow_digests
    for w in [&hash, &digests] {
        signed(
            &c.post(&path(w, "evm/message"), json!({ "message": safe_tx_hash }))
                .await,
        );
    }
}

/// Item 3 without a policy (the dev config): refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_policy_a_digest_message_is_refused() {
    let s = start(None).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("hot")).unwrap();
    let a = s
        .client()
        .post(
            &path(&w, "evm/message"),
            json!({ "message": format!("0x{}", "11".repeat(32)) }),
        )
        .await;
    denied_by(&a, "builtin.digest_message", "hash.allow");
}

fn typed(types: Value, primary: &str, domain: Value, message: Value) -> Value {
    json!({ "typedData": { "types": types, "primaryType": primary, "domain": domain, "message": message } })
}

fn domain(chain: Option<u64>) -> (Value, Value) {
    let mut fields = vec![json!({"name": "name", "type": "string"})];
    let mut d = json!({"name": "Example App"});
    if let Some(c) = chain {
        fields.push(json!({"name": "chainId", "type": "uint256"}));
        d["chainId"] = json!(c);
    }
    (Value::Array(fields), d)
}

/// The messages the review signed with the dev config, and structural variants.
fn asset_moving_typed_data() -> Vec<(&'static str, Value)> {
    let (dt, d) = domain(Some(1));
    let permit_fields = json!([
        {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"}
    ]);
    let permit_msg = json!({"owner": BOB, "spender": BOB, "value": "1", "nonce": 0, "deadline": 1});
    vec![
        (
            "Uniswap v4 PermitForAll",
            typed(
                json!({"EIP712Domain": dt, "PermitForAll": [
                    {"name": "operator", "type": "address"}, {"name": "approved", "type": "bool"},
                    {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"}]}),
                "PermitForAll",
                d.clone(),
                json!({"operator": BOB, "approved": true, "nonce": 0, "deadline": 1}),
            ),
        ),
        (
            "ERC-7739 TypedDataSign wrapping a Permit",
            typed(
                json!({"EIP712Domain": dt, "Permit": permit_fields, "TypedDataSign": [
                    {"name": "contents", "type": "Permit"}, {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"}]}),
                "TypedDataSign",
                d.clone(),
                json!({"contents": permit_msg, "name": "USD Coin", "version": "2", "chainId": 1,
                       "verifyingContract": USDC, "salt": format!("0x{}", "00".repeat(32))}),
            ),
        ),
        (
            "OpenGSN RelayRequest",
            typed(
                json!({"EIP712Domain": dt, "RelayRequest": [
                    {"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                    {"name": "value", "type": "uint256"}, {"name": "gas", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"}, {"name": "data", "type": "bytes"},
                    {"name": "validUntilTime", "type": "uint256"}, {"name": "relayData", "type": "RelayData"}],
                    "RelayData": [{"name": "maxFeePerGas", "type": "uint256"}, {"name": "relayWorker", "type": "address"}]}),
                "RelayRequest",
                d.clone(),
                json!({"from": BOB, "to": USDC, "value": "0", "gas": "1", "nonce": "0", "data": "0x",
                       "validUntilTime": "1", "relayData": {"maxFeePerGas": "1", "relayWorker": BOB}}),
            ),
        ),
        // no known name anywhere: a renamed wrapper around a renamed permit
        (
            "renamed wrapper around a renamed allowance",
            typed(
                json!({"EIP712Domain": dt, "Outer": [{"name": "inner", "type": "Grant"}, {"name": "note", "type": "string"}],
                       "Grant": [{"name": "_spender", "type": "address"}, {"name": "amount", "type": "uint256"}]}),
                "Outer",
                d.clone(),
                json!({"inner": {"_spender": BOB, "amount": "5"}, "note": "hi"}),
            ),
        ),
        // a list of calls under an innocent name
        (
            "batch of calls",
            typed(
                json!({"EIP712Domain": dt, "Hello": [{"name": "calls", "type": "Op[]"}],
                       "Op": [{"name": "target", "type": "address"}, {"name": "callData", "type": "bytes"}]}),
                "Hello",
                d.clone(),
                json!({"calls": [{"target": USDC, "callData": "0xa9059cbb"}]}),
            ),
        ),
        // a known family referenced, not primary
        (
            "struct referencing PermitSingle",
            typed(
                json!({"EIP712Domain": dt, "Note": [{"name": "p", "type": "PermitSingle"}],
                       "PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"}, {"name": "sigDeadline", "type": "uint256"}],
                       "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"}, {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]}),
                "Note",
                d,
                json!({"p": {"details": {"token": USDC, "amount": "1", "expiration": 1, "nonce": 0}, "spender": BOB, "sigDeadline": 1}}),
            ),
        ),
    ]
}

/// Item 4: refused with no policy (the dev config), under `"*"`, and unpriced under caps
/// when named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_data_is_classified_by_structure() {
    let none = start(None).await;
    let w = keyward::wallets::create(&none.app, Chain::Evm, Some("hot")).unwrap();
    for (name, body) in asset_moving_typed_data() {
        let a = none.client().post(&path(&w, "evm/typed-data"), body).await;
        assert_eq!(
            a.body["error"]["rule"], "builtin.spending_typed_data",
            "{name}: {}",
            a.body
        );
    }
    let s = start(Some(POLICY)).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("capped")).unwrap();
    for (name, body) in asset_moving_typed_data() {
        let a = s.client().post(&path(&w, "evm/typed-data"), body).await;
        assert_eq!(
            a.body["error"]["rule"], "builtin.spending_typed_data",
            "{name}: {}",
            a.body
        );
    }
    // a benign message still passes under "*"
    let (dt, d) = domain(Some(1));
    let login = typed(
        json!({"EIP712Domain": dt, "Login": [{"name": "user", "type": "address"}, {"name": "nonce", "type": "uint256"}]}),
        "Login",
        d,
        json!({"user": BOB, "nonce": 1}),
    );
    signed(&s.client().post(&path(&w, "evm/typed-data"), login).await);
}

fn permit(chain: Option<u64>, value: u64) -> Value {
    let mut dt = vec![
        json!({"name": "name", "type": "string"}),
        json!({"name": "version", "type": "string"}),
    ];
    let mut d = json!({"name": "USD Coin", "version": "2", "verifyingContract": USDC});
    if let Some(c) = chain {
        dt.push(json!({"name": "chainId", "type": "uint256"}));
        d["chainId"] = json!(c);
    }
    dt.push(json!({"name": "verifyingContract", "type": "address"}));
    typed(
        json!({"EIP712Domain": dt, "Permit": [
            {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}]}),
        "Permit",
        d,
        json!({"owner": BOB, "spender": BOB, "value": value.to_string(), "nonce": 0, "deadline": 1}),
    )
}

/// Item 8: the rule's chains reach typed data, and the caps of the domain's chain apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_data_meets_the_rules_chain_scope() {
    let s = start(Some(POLICY)).await;
    let base = keyward::wallets::create(&s.app, Chain::Evm, Some("scoped")).unwrap();
    let main = keyward::wallets::create(&s.app, Chain::Evm, Some("capped")).unwrap();
    let c = s.client();
    let pb = path(&base, "evm/typed-data");
    // mainnet and Optimism permits under a Base-only rule
    denied_by(
        &c.post(&pb, permit(Some(1), 1)).await,
        "scoped",
        "not in evm.chain_ids",
    );
    denied_by(
        &c.post(&pb, permit(Some(10), 1)).await,
        "scoped",
        "not in evm.chain_ids",
    );
    // no chainId: valid everywhere, refused under a scoped rule (benign type too)
    denied_by(
        &c.post(&pb, permit(None, 1)).await,
        "scoped",
        "has no chainId",
    );
    let (dt, d) = domain(None);
    let login = typed(
        json!({"EIP712Domain": dt, "Login": [{"name": "nonce", "type": "uint256"}]}),
        "Login",
        d,
        json!({"nonce": 1}),
    );
    denied_by(&c.post(&pb, login).await, "scoped", "has no chainId");
    // on Base: priced against the Base cap
    denied_by(
        &c.post(&pb, permit(Some(8453), 101)).await,
        "scoped",
        "max_per_tx 100",
    );
    signed(&c.post(&pb, permit(Some(8453), 100)).await);
    // the mainnet rule's token entry is for chain 1: a Base permit of the same address
    // is refused there (out of scope), not priced as an uncapped token
    let pm = path(&main, "evm/typed-data");
    denied_by(
        &c.post(&pm, permit(Some(8453), 1)).await,
        "capped",
        "not in evm.chain_ids",
    );
    signed(&c.post(&pm, permit(Some(1), 100)).await);
}

/// Item 9: a rule that caps only `max_value` refuses the typed-data families it cannot
/// price, as one that caps tokens does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_cap_alone_refuses_unpriced_typed_data() {
    let s = start(Some(POLICY)).await;
    let w = keyward::wallets::create(&s.app, Chain::Evm, Some("value-only")).unwrap();
    let (dt, d) = domain(Some(1));
    let safe = typed(
        json!({"EIP712Domain": dt, "SafeTx": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}, {"name": "data", "type": "bytes"}]}),
        "SafeTx",
        d,
        json!({"to": BOB, "value": "1000000", "data": "0x"}),
    );
    let a = s.client().post(&path(&w, "evm/typed-data"), safe).await;
    denied_by(&a, "builtin.unpriced_typed_data", "Safe transaction");
}
