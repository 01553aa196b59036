//! The Ethereum JSON-RPC face end to end: real mTLS on loopback, a real SoftHSM2 token, a
//! real SQLite file. Every signature is recovered with alloy, every signing call's audit
//! record is read back. The upstream node: tests/rpc_upstream.rs.

mod common;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Address;
use common::api::{start, Server};
use common::fixtures::{
    eip155_tx, mail_typed_data, recover, COW_ADDR, COW_KEY, EIP155_ADDR, EIP155_KEY, EIP155_RAW,
    MAIL_SIGNATURE,
};
use common::rpc::SHORT_MESSAGES;
use keyward::store::audit;
use keyward::store::wallets::{self as rows, Chain};
use keyward::wallet_key;
use serde_json::{json, Value};

/// `test-client` with the EVM operations and Solana messages, `hot-client` on `label:hot`,
/// and the rate-limited `slow-client`.
fn clients() -> String {
    [
        common::grant(
            "test-client",
            &["*"],
            &[
                "evm.message",
                "evm.typed_data",
                "evm.transaction",
                "solana.message",
            ],
        ),
        common::grant("hot-client", &["label:hot"], &["evm.message"]),
        common::slow_client(),
    ]
    .concat()
}

const RATE_LIMIT: &str = r#"
[[policy.rate_limit]]
id = "slow"
scope = "client"
clients = ["slow-client"]
requests = 2
per = "1h"
"#;

async fn server(extra: &str) -> Server {
    start(&format!(
        "{}{SHORT_MESSAGES}{RATE_LIMIT}\n{extra}",
        clients()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_signs_and_is_audited() {
    let s = server("[rpc]\nchain_id = 1\n").await;
    let eip155 = s.import(Chain::Evm, EIP155_KEY, Some("hot"));
    let cow = s.import(Chain::Evm, COW_KEY, None);
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    let c = s.rpc("/v1/rpc");

    // chain id: rpc.chain_id, or the path's (decimal or hex)
    assert_eq!(c.ok("eth_chainId", json!([])).await, "0x1");
    assert_eq!(
        s.rpc("/v1/rpc/137").ok("eth_chainId", json!([])).await,
        "0x89"
    );
    assert_eq!(
        s.rpc("/v1/rpc/0x539").ok("eth_chainId", json!([])).await,
        "0x539"
    );

    // accounts: checksummed EVM wallets the client holds an evm.* grant for
    let accounts = c.ok("eth_accounts", json!([])).await;
    let mut got: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![EIP155_ADDR, COW_ADDR];
    want.sort();
    assert_eq!(got, want);
    assert!(!got.contains(&sol.address.as_deref().unwrap()));
    let hot = s.rpc_as("hot-client", 70, "/v1/rpc");
    assert_eq!(
        hot.ok("eth_accounts", json!([])).await,
        json!([EIP155_ADDR])
    );

    // personal_sign [data, address] and eth_sign [address, data]: one EIP-191 signature
    let hex_data = "0xdeadbeef";
    let digest = alloy_primitives::eip191_hash_message([0xde, 0xad, 0xbe, 0xef]);
    let a = c
        .post(&json!({"jsonrpc": "2.0", "id": "p1", "method": "personal_sign", "params": [hex_data, EIP155_ADDR.to_lowercase()]}))
        .await;
    let v = a.json();
    assert_eq!(v["id"], "p1");
    let sig = v["result"].as_str().unwrap().to_owned();
    assert_eq!(
        recover(&sig, &digest),
        eip155
            .address
            .as_deref()
            .unwrap()
            .parse::<Address>()
            .unwrap()
    );
    let audit_id = a.headers["keyward-audit-id"].to_str().unwrap().to_owned();
    let rec = s.record(&audit_id);
    assert_eq!(
        (
            rec.actor.as_str(),
            rec.action.as_str(),
            rec.decision.as_str(),
            rec.result.as_str()
        ),
        ("cn:test-client", "sign", "allowed", "ok")
    );
    assert_eq!(rec.wallet_id.as_deref(), Some(eip155.id.as_str()));
    assert_eq!(rec.operation.as_deref(), Some("evm.message"));
    assert_eq!(rec.digest.as_deref(), Some(format!("{digest:#x}").as_str()));
    let d = s.detail(&audit_id);
    assert_eq!(d["face"], "rpc");
    assert_eq!(d["rpcMethod"], "personal_sign");
    assert_eq!(d["address"], EIP155_ADDR.to_lowercase());
    let sig2 = c.ok("eth_sign", json!([EIP155_ADDR, hex_data])).await;
    assert_eq!(sig2, sig.as_str(), "RFC 6979: same message, same signature");
    let text = c
        .ok("personal_sign", json!(["hello keyward", EIP155_ADDR]))
        .await;
    assert_eq!(
        recover(
            text.as_str().unwrap(),
            &alloy_primitives::eip191_hash_message(b"hello keyward")
        ),
        EIP155_ADDR.parse::<Address>().unwrap()
    );

    // EIP-712 Mail: the EIP's own signature, as a JSON string (v4) and as an object (alias)
    let v4 = c
        .ok(
            "eth_signTypedData_v4",
            json!([COW_ADDR, mail_typed_data().to_string()]),
        )
        .await;
    assert_eq!(v4, MAIL_SIGNATURE);
    let alias = c
        .ok(
            "eth_signTypedData",
            json!([cow.address.clone().unwrap(), mail_typed_data()]),
        )
        .await;
    assert_eq!(alias, MAIL_SIGNATURE);

    // eth_signTransaction: EIP-155's example byte for byte, its chain id from the config
    let raw = c.ok("eth_signTransaction", json!([eip155_tx()])).await;
    assert_eq!(raw, EIP155_RAW);
    // an EIP-1559 transaction on the path's chain; decoded and recovered with alloy
    let c137 = s.rpc("/v1/rpc/137");
    let tx = json!({
        "from": EIP155_ADDR, "nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x4a817c800",
        "maxPriorityFeePerGas": "0x3b9aca00", "to": "0x3535353535353535353535353535353535353535", "value": "0x1"
    });
    let raw = c137.ok("eth_signTransaction", json!([tx])).await;
    let bytes = hex::decode(&raw.as_str().unwrap()[2..]).unwrap();
    let env = alloy_consensus::TxEnvelope::decode_2718(&mut bytes.as_slice()).unwrap();
    assert_eq!(env.chain_id(), Some(137));
    assert_eq!(
        env.recover_signer().unwrap(),
        EIP155_ADDR.parse::<Address>().unwrap()
    );
    // geth's {raw, tx} shape on request (web3.py's eth.sign_transaction reads it)
    let geth = s.rpc("/v1/rpc/137?compat=geth");
    let g = geth.ok("eth_signTransaction", json!([tx])).await;
    assert_eq!(g["raw"], raw);
    assert_eq!(g["tx"]["type"], "0x2");
    assert_eq!(g["tx"]["chainId"], "0x89");
    assert_eq!(g["tx"]["from"], EIP155_ADDR);
    assert_eq!(g["tx"]["gas"], "0x5208");
    assert_eq!(g["tx"]["maxFeePerGas"], "0x4a817c800");
    assert_eq!(g["tx"]["hash"], format!("{:#x}", env.tx_hash()));
    // a transaction for another chain than the endpoint's is refused, and audited
    let mut other = tx.clone();
    other["chainId"] = json!("0x1");
    let e = c137
        .err("eth_signTransaction", json!([other]), -32602)
        .await;
    assert_eq!(e["data"]["code"], "invalid_transaction");
    assert!(e["message"].as_str().unwrap().contains("chainId"), "{e}");
    s.assert_audited(&e["data"]["auditId"], "denied", "invalid_transaction");

    // the REST face's audit records say so too
    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert!(n >= 8, "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_the_codes_clients_handle() {
    let s = server("").await;
    let eip155 = s.import(Chain::Evm, EIP155_KEY, Some("hot"));
    let c = s.rpc("/v1/rpc");

    // framing
    let a = c.raw(Some("application/json"), b"{not json".to_vec()).await;
    assert_eq!(
        (a.status.as_u16(), a.json()["error"]["code"].clone()),
        (200, json!(-32700))
    );
    assert_eq!(a.json()["id"], Value::Null);
    for bad in [
        json!({"id": 1, "method": "eth_chainId"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 7}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": "x"}),
        json!([]),
        json!(5),
    ] {
        let v = c.post(&bad).await.json();
        assert_eq!(v["error"]["code"], -32600, "{bad}: {v}");
    }
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}))
        .collect();
    let v = c.post(&Value::Array(too_many)).await.json();
    assert_eq!(v["error"]["code"], -32600);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 100"));
    let v = s
        .rpc("/v1/rpc?dryRun=true")
        .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}))
        .await
        .json();
    assert_eq!(v["error"]["code"], -32600);
    let a = c.raw(Some("text/plain"), b"{}".to_vec()).await;
    assert_eq!(a.status, 415);
    assert_eq!(a.json()["error"]["data"]["code"], "unsupported_media_type");
    let a = c
        .raw(Some("application/json"), vec![b' '; 2 * 1024 * 1024])
        .await;
    assert_eq!(a.status, 413);
    assert_eq!(a.json()["error"]["data"]["code"], "body_too_large");
    // only notifications: nothing answered
    let a = c
        .post(
            &json!({"jsonrpc": "2.0", "method": "personal_sign", "params": ["0x00", EIP155_ADDR]}),
        )
        .await;
    assert_eq!((a.status.as_u16(), a.raw.len()), (204, 0));

    // no chain id anywhere
    let e = c.err("eth_chainId", json!([]), -32000).await;
    assert_eq!(e["data"]["code"], "chain_id_unknown");
    // no upstream: not served
    c.err("eth_blockNumber", json!([]), -32601).await;
    c.err("eth_sendTransaction", json!([eip155_tx()]), -32601)
        .await;
    c.err(
        "personal_unlockAccount",
        json!([EIP155_ADDR, "pw", null]),
        -32601,
    )
    .await;
    c.err("eth_signTypedData_v3", json!([EIP155_ADDR, {}]), -32601)
        .await;

    // params: -32602 naming the parameter (not a sign request yet: no wallet named)
    let e = c.err("personal_sign", json!(["0x00"]), -32602).await;
    assert!(
        e["message"].as_str().unwrap().contains("[data, address]"),
        "{e}"
    );
    let e = c
        .err("personal_sign", json!(["0x00", "0x1234"]), -32602)
        .await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("params[1] (address)"),
        "{e}"
    );
    let e = c
        .err("eth_signTransaction", json!([{"to": EIP155_ADDR}]), -32602)
        .await;
    assert!(
        e["message"].as_str().unwrap().contains("params[0].from"),
        "{e}"
    );
    // payload errors are audited sign requests: -32602 with the REST code and the audit id
    let e = c
        .err("personal_sign", json!(["0xzz", EIP155_ADDR]), -32602)
        .await;
    assert_eq!(e["data"]["code"], "invalid_message");
    s.assert_audited(&e["data"]["auditId"], "denied", "invalid_message");
    let e = c
        .err(
            "eth_signTypedData_v4",
            json!([EIP155_ADDR, {"types": {}}]),
            -32602,
        )
        .await;
    assert_eq!(e["data"]["code"], "invalid_typed_data");
    let e = c.err("eth_signTransaction", json!([{"from": EIP155_ADDR, "nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1", "to": EIP155_ADDR}]), -32602).await;
    assert_eq!(e["data"]["code"], "missing_chain_id");

    // policy: 4001 "User denied" (ethers' ACTION_REJECTED), with the rule
    let long = "x".repeat(100);
    let e = c
        .err("personal_sign", json!([long, EIP155_ADDR]), 4001)
        .await;
    assert!(
        e["message"].as_str().unwrap().starts_with("User denied"),
        "{e}"
    );
    assert_eq!(e["data"]["code"], "policy_denied");
    assert_eq!(e["data"]["rule"], "short-messages");
    s.assert_audited(&e["data"]["auditId"], "denied", "policy_denied");

    // grants: 4100 for a stranger (sign requests audited; others not), and for an unknown address
    let stranger = s.rpc_as("stranger", 71, "/v1/rpc/1");
    let e = stranger
        .err("personal_sign", json!(["0x00", EIP155_ADDR]), 4100)
        .await;
    assert_eq!(e["data"]["code"], "not_authorized");
    assert_eq!(
        s.record(e["data"]["auditId"].as_str().unwrap()).actor,
        "cn:stranger"
    );
    let e = stranger.err("eth_accounts", json!([]), 4100).await;
    assert!(e["data"].get("auditId").is_none());
    stranger.err("eth_chainId", json!([]), 4100).await;
    let e = c
        .err(
            "personal_sign",
            json!(["0x00", "0x1111111111111111111111111111111111111111"]),
            4100,
        )
        .await;
    assert_eq!(e["data"]["code"], "wallet_not_found");
    // hot-client's grant covers label:hot only: a wallet outside it is answered exactly
    // as an address no wallet holds (no existence oracle, no wallet id)
    let hot = s.rpc_as("hot-client", 72, "/v1/rpc");
    let cow = s.import(Chain::Evm, COW_KEY, None);
    let unknown = "0x1111111111111111111111111111111111111111";
    let seen = |e: &Value, address: &str| {
        (
            e["code"].clone(),
            e["data"]["code"].clone(),
            e["message"]
                .as_str()
                .unwrap()
                .replace(&address.to_lowercase(), "ADDRESS"),
        )
    };
    let hidden = hot
        .err("personal_sign", json!(["0x00", COW_ADDR]), 4100)
        .await;
    let none = hot
        .err("personal_sign", json!(["0x00", unknown]), 4100)
        .await;
    assert_eq!(seen(&hidden, COW_ADDR), seen(&none, unknown));
    assert_eq!(hidden["data"]["code"], "wallet_not_found");
    assert!(!hidden.to_string().contains(&cow.id), "{hidden}");
    // (audited all the same, naming the wallet)
    assert_eq!(
        s.record(hidden["data"]["auditId"].as_str().unwrap())
            .wallet_id,
        Some(cow.id.clone())
    );
    // and its grant has no evm.typed_data
    hot.err(
        "eth_signTypedData_v4",
        json!([EIP155_ADDR, mail_typed_data()]),
        4100,
    )
    .await;

    // rate limit: -32005 with the rule and when to retry
    let slow = s.rpc_as("slow-client", 73, "/v1/rpc");
    for _ in 0..2 {
        slow.ok("personal_sign", json!(["0x00", EIP155_ADDR])).await;
    }
    let e = slow
        .err("personal_sign", json!(["0x00", EIP155_ADDR]), -32005)
        .await;
    assert_eq!(e["data"]["code"], "rate_limited");
    assert_eq!(e["data"]["rule"], "slow");
    assert!(e["data"]["retryAfter"].as_u64().unwrap() > 0);

    // locked: -32000 appliance_locked, until unlocked
    s.lock(Some("test lock"));
    let e = c
        .err("personal_sign", json!(["0x00", EIP155_ADDR]), -32000)
        .await;
    assert_eq!(e["data"]["code"], "appliance_locked");
    assert!(e["data"]["auditId"].is_string());
    s.lock(None);
    c.ok("personal_sign", json!(["0x00", EIP155_ADDR])).await;

    // an MPC share without its engine: -32000 engine_unavailable
    let (_, mpc_address) = wallet_key::generate(Chain::Evm);
    s.put_mpc(Chain::Evm, mpc_address.clone(), &[0x42; 48], None);
    let e = c
        .err("personal_sign", json!(["0x00", mpc_address]), -32000)
        .await;
    assert_eq!(e["data"]["code"], "engine_unavailable");

    // revoked: -32000 wallet_revoked (not "no such wallet")
    let id = eip155.id.clone();
    s.app
        .store
        .write_blocking(move |ctx| rows::mark_revoked(ctx.conn, &id, 1, "9999"))
        .unwrap();
    let e = c
        .err("personal_sign", json!(["0x00", EIP155_ADDR]), -32000)
        .await;
    assert_eq!(e["data"]["code"], "wallet_revoked");

    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert!(n > 10, "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_call_in_order() {
    let s = server("[rpc]\nchain_id = 1\n").await;
    s.import(Chain::Evm, EIP155_KEY, None);
    let c = s.rpc("/v1/rpc");
    let long = "y".repeat(100);
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "personal_sign", "params": ["0x01", EIP155_ADDR]},
        {"jsonrpc": "2.0", "id": 2, "method": "personal_sign", "params": [long, EIP155_ADDR]},
        {"jsonrpc": "2.0", "id": 3, "method": "personal_sign"},
        {"id": 4, "method": "eth_chainId"},
        "not an object",
        {"jsonrpc": "2.0", "method": "personal_sign", "params": ["0x02", EIP155_ADDR]},
        {"jsonrpc": "2.0", "id": "six", "method": "eth_nope"},
        {"jsonrpc": "2.0", "id": 7, "method": "personal_sign", "params": ["0x03", EIP155_ADDR]},
        {"jsonrpc": "2.0", "id": 8, "method": "eth_chainId", "params": []}
    ]);
    let a = c.post(&batch).await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("keyward-audit-id").is_none());
    let v = a.json();
    let answers = v.as_array().unwrap();
    // 9 calls, one a notification: 8 answers, in order
    let ids: Vec<Value> = answers.iter().map(|x| x["id"].clone()).collect();
    assert_eq!(
        ids,
        vec![
            json!(1),
            json!(2),
            json!(3),
            json!(4),
            Value::Null,
            json!("six"),
            json!(7),
            json!(8)
        ]
    );
    let codes: Vec<Value> = answers.iter().map(|x| x["error"]["code"].clone()).collect();
    assert_eq!(
        codes,
        vec![
            Value::Null,
            json!(4001),
            json!(-32602),
            json!(-32600),
            json!(-32600),
            json!(-32601),
            Value::Null,
            Value::Null
        ]
    );
    let sig1 = answers[0]["result"].as_str().unwrap();
    assert_eq!(
        recover(sig1, &alloy_primitives::eip191_hash_message([1u8])),
        EIP155_ADDR.parse::<Address>().unwrap()
    );
    let sig7 = answers[6]["result"].as_str().unwrap();
    assert_eq!(
        recover(sig7, &alloy_primitives::eip191_hash_message([3u8])),
        EIP155_ADDR.parse::<Address>().unwrap()
    );
    assert_eq!(answers[7]["result"], "0x1");
    // each signing call has its own audit record; the notification none
    let denied = s.record(answers[1]["error"]["data"]["auditId"].as_str().unwrap());
    assert_eq!(denied.result, "policy_denied");
    let all = s
        .app
        .store
        .read(|c| {
            c.rows(
                "SELECT operation, result, detail FROM audit WHERE action = 'sign' ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(|mut r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)))
            .collect::<Result<Vec<_>, keyward::store::StoreError>>()
        })
        .unwrap();
    let results: Vec<&str> = all.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(results, vec!["ok", "policy_denied", "ok"]);
    assert!(all
        .iter()
        .all(|(op, _, d)| op == "evm.message" && d.contains("\"face\":\"rpc\"")));
}

/// `eth_accounts` lists the store once per request, however many calls of a batch ask,
/// and the listing reads no wrapped material: a batch of 100 used to read every wallet
/// row, blobs included, 100 times on the async workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_eth_accounts_lists_the_store_once() {
    let s = server("[rpc]\nchain_id = 1\n").await;
    s.import(Chain::Evm, EIP155_KEY, Some("hot"));
    s.import(Chain::Evm, COW_KEY, None);
    keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    let c = s.rpc("/v1/rpc");
    let batch: Vec<Value> = (0..100)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": if i % 2 == 0 { "eth_accounts" } else { "eth_requestAccounts" }, "params": []}))
        .collect();
    let before = s.app.store.reads();
    let v = c.post(&Value::Array(batch)).await.json();
    assert_eq!(s.app.store.reads() - before, 1);
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 100);
    let mut want = vec![EIP155_ADDR, COW_ADDR];
    want.sort();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["id"], i);
        let mut got: Vec<&str> = a["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, want, "{a}");
    }
    // a second request lists afresh (a wallet revoked meanwhile is gone)
    let before = s.app.store.reads();
    let hot = s.rpc_as("hot-client", 70, "/v1/rpc");
    assert_eq!(
        hot.ok("eth_accounts", json!([])).await,
        json!([EIP155_ADDR])
    );
    assert_eq!(s.app.store.reads() - before, 1);
}
