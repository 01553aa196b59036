//! The Ethereum JSON-RPC face end to end: real mTLS on loopback, a real SoftHSM2 token, a
//! real SQLite file. Every signature is recovered with alloy, every signing call's audit
//! record is read back. The upstream node of the forwarding tests is a loopback JSON-RPC
//! stand-in behind TLS from the test CA (the interop run in `scripts/test` uses a real
//! node from npm).

mod common;

use std::sync::{Arc, Mutex};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Signature, B256};
use common::{Env, EnvOptions};
use keyward::appliance::{Appliance, LOCK_KEY};
use keyward::custody::{self, Binding, Purpose};
use keyward::store::audit;
use keyward::store::state;
use keyward::store::wallets::{self as rows, Chain, Engine, Source, Wallet};
use keyward::wallet_key;
use serde_json::{json, Value};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "solana.message"]

[[clients]]
identity = "hot-client"
wallets = ["label:hot"]
operations = ["evm.message"]

[[clients]]
identity = "slow-client"
wallets = ["*"]
operations = ["evm.message"]

[policy]
default = "allow"

[[policy.rule]]
id = "short-messages"
clients = ["test-client"]
message = { max_len = 64 }

[[policy.rate_limit]]
id = "slow"
scope = "client"
clients = ["slow-client"]
requests = 2
per = "1h"
"#;

/// EIP-155's example key (0x9d8a…) and EIP-712's "cow" key (0xcd2a…).
const EIP155_KEY: &str = "4646464646464646464646464646464646464646464646464646464646464646";
const COW_KEY: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
const EIP155_ADDR: &str = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F";
const COW_ADDR: &str = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826";

struct Server {
    env: Env,
    app: Arc<Appliance>,
    addr: String,
}

async fn start(extra: &str) -> Server {
    let env = Env::with(EnvOptions {
        extra: format!("{CLIENTS}\n{extra}"),
        ..Default::default()
    });
    let app = Arc::new(env.appliance());
    let addr = common::serve_api(app.clone(), keyward::api::Api::new(app.clone())).await;
    Server { env, app, addr }
}

struct Rpc {
    tls: Arc<rustls::ClientConfig>,
    addr: String,
    path: String,
}

impl Rpc {
    async fn post(&self, body: &Value) -> common::HttpAnswer {
        self.raw(Some("application/json"), serde_json::to_vec(body).unwrap())
            .await
    }

    async fn raw(&self, ct: Option<&str>, body: Vec<u8>) -> common::HttpAnswer {
        common::https_request(self.tls.clone(), &self.addr, "POST", &self.path, ct, body)
            .await
            .unwrap()
    }

    /// One call; the whole response object.
    async fn call(&self, method: &str, params: Value) -> Value {
        let a = self
            .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
            .await;
        assert_eq!(
            a.status,
            200,
            "{method}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let v = a.json();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 1);
        v
    }

    /// One call that must succeed.
    async fn ok(&self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// One call that must fail with `code`; the error object.
    async fn err(&self, method: &str, params: Value, code: i64) -> Value {
        let v = self.call(method, params).await;
        assert_eq!(v["error"]["code"], code, "{method}: {v}");
        assert!(v.get("result").is_none(), "{v}");
        v["error"].clone()
    }
}

impl Server {
    fn rpc_as(&self, cn: &str, serial: u64, path: &str) -> Rpc {
        let ca = &self.env.pki.ca.cert_pem;
        let tls = if cn == "test-client" {
            common::client_config(ca, Some(&self.env.pki.client))
        } else {
            let cert = self
                .env
                .pki
                .ca
                .client(cn, None, keyward::pki::Validity::Current, serial)
                .unwrap();
            common::client_config(ca, Some(&cert))
        };
        Rpc {
            tls,
            addr: self.addr.clone(),
            path: path.into(),
        }
    }

    fn rpc(&self, path: &str) -> Rpc {
        self.rpc_as("test-client", 0, path)
    }

    fn import(&self, hex_key: &str, label: Option<&str>) -> Wallet {
        keyward::wallets::import(
            &self.app,
            Chain::Evm,
            wallet_key::parse_secret_hex(hex_key).unwrap(),
            label,
        )
        .unwrap()
    }

    fn record(&self, id: &str) -> audit::AuditRecord {
        let id = id.to_owned();
        self.app
            .store
            .read(move |c| audit::get(c, &id))
            .unwrap()
            .expect("audit record exists")
    }

    fn detail(&self, id: &str) -> Value {
        serde_json::from_str(self.record(id).detail.as_deref().unwrap()).unwrap()
    }

    fn put(&self, w: Wallet) {
        self.app
            .store
            .write_blocking(move |ctx| rows::upsert(ctx.conn, &w))
            .unwrap();
    }

    fn lock(&self, reason: Option<&'static str>) {
        self.app
            .store
            .write_blocking(move |ctx| state::set(ctx.conn, LOCK_KEY, reason))
            .unwrap();
    }
}

fn recover(sig_hex: &str, digest: &B256) -> Address {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27/28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(digest)
        .unwrap()
}

fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail", "version": "1", "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": COW_ADDR},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

const MAIL_SIGNATURE: &str = "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c";

/// EIP-155's example transaction, without its chain id (the endpoint's is used).
fn eip155_tx() -> Value {
    json!({
        "from": EIP155_ADDR, "nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
        "to": "0x3535353535353535353535353535353535353535", "value": "0xde0b6b3a7640000", "data": "0x"
    })
}

const EIP155_RAW: &str = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_signs_and_is_audited() {
    let s = start("[rpc]\nchain_id = 1\n").await;
    let eip155 = s.import(EIP155_KEY, Some("hot"));
    let cow = s.import(COW_KEY, None);
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
        ("test-client", "sign", "allowed", "ok")
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
    let rec = s.record(e["data"]["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "invalid_transaction")
    );

    // the REST face's audit records say so too
    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert!(n >= 8, "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_the_codes_clients_handle() {
    let s = start("").await;
    let eip155 = s.import(EIP155_KEY, Some("hot"));
    let c = s.rpc("/v1/rpc");

    // framing
    let a = c.raw(Some("application/json"), b"{not json".to_vec()).await;
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
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
    assert_eq!((a.status, a.body.len()), (204, 0));

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
    let rec = s.record(e["data"]["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "invalid_message")
    );
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
    let rec = s.record(e["data"]["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "policy_denied")
    );

    // grants: 4100 for a stranger (sign requests audited; others not), and for an unknown address
    let stranger = s.rpc_as("stranger", 71, "/v1/rpc/1");
    let e = stranger
        .err("personal_sign", json!(["0x00", EIP155_ADDR]), 4100)
        .await;
    assert_eq!(e["data"]["code"], "not_authorized");
    assert_eq!(
        s.record(e["data"]["auditId"].as_str().unwrap()).actor,
        "stranger"
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
    // hot-client's grant covers label:hot only
    let hot = s.rpc_as("hot-client", 72, "/v1/rpc");
    let cow = s.import(COW_KEY, None);
    let e = hot
        .err("personal_sign", json!(["0x00", COW_ADDR]), 4100)
        .await;
    assert_eq!(e["data"]["code"], "not_authorized");
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
    let mpc_id = uuid::Uuid::new_v4().to_string();
    let version = s.app.token.current_wrap_version().unwrap();
    let share = custody::wrap(
        &s.app.token,
        &Binding {
            wallet_id: &mpc_id,
            chain: "evm",
            purpose: Purpose::Share,
        },
        version,
        &[0x42; 48],
    )
    .unwrap();
    let (_, mpc_address) = wallet_key::generate(Chain::Evm);
    s.put(Wallet {
        id: mpc_id,
        engine: Engine::Mpc,
        source: Source::Delegation,
        wrapped_share: Some(share),
        address: Some(mpc_address.clone()),
        ..cow.clone()
    });
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
    let s = start("[rpc]\nchain_id = 1\n").await;
    s.import(EIP155_KEY, None);
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
            let mut stmt = c.prepare(
                "SELECT operation, result, detail FROM audit WHERE action = 'sign' ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    let results: Vec<&str> = all.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(results, vec!["ok", "policy_denied", "ok"]);
    assert!(all
        .iter()
        .all(|(op, _, d)| op == "evm.message" && d.contains("\"face\":\"rpc\"")));
}

// ---------------------------------------------------------------------------------------
// upstream
// ---------------------------------------------------------------------------------------

/// A loopback JSON-RPC node behind TLS (certificate from the test CA): fixed chain state,
/// and a record of every method it was asked for and every raw transaction sent to it.
struct StandIn {
    addr: String,
    methods: Arc<Mutex<Vec<String>>>,
    sent: Arc<Mutex<Vec<String>>>,
}

fn stand_in_answer(method: &str, params: &Value, sent: &Mutex<Vec<String>>) -> Value {
    match method {
        "eth_chainId" => json!({"result": "0x539"}),
        "eth_getTransactionCount" => json!({"result": "0x7"}),
        "eth_getBlockByNumber" => {
            json!({"result": {"number": "0x10", "baseFeePerGas": "0x3b9aca00"}})
        }
        "eth_maxPriorityFeePerGas" => json!({"result": "0x77359400"}),
        "eth_estimateGas" => json!({"result": "0x5300"}),
        "eth_blockNumber" => json!({"result": "0x10"}),
        "eth_call" => {
            json!({"error": {"code": 3, "message": "execution reverted", "data": "0x08c379a0"}})
        }
        "eth_sendRawTransaction" => {
            let raw = params[0].as_str().unwrap_or_default().to_owned();
            let bytes = hex::decode(raw.trim_start_matches("0x")).unwrap_or_default();
            sent.lock().unwrap().push(raw);
            json!({"result": format!("{:#x}", alloy_primitives::keccak256(bytes))})
        }
        _ => json!({"error": {"code": -32601, "message": "the stand-in does not serve it"}}),
    }
}

async fn stand_in(env_server: &keyward::pki::Issued) -> StandIn {
    use http_body_util::BodyExt;
    let certs = rustls_pemfile::certs(&mut env_server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut env_server.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let methods = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (m, snt) = (methods.clone(), sent.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let (m, snt) = (m.clone(), snt.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (m, snt) = (m.clone(), snt.clone());
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let method = v["method"].as_str().unwrap_or_default().to_owned();
                            m.lock().unwrap().push(method.clone());
                            let mut answer = stand_in_answer(&method, &v["params"], &snt);
                            answer["jsonrpc"] = json!("2.0");
                            answer["id"] = v["id"].clone();
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(
                                    serde_json::to_vec(&answer).unwrap(),
                                )),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    StandIn {
        addr,
        methods,
        sent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_fills_sends_and_forwards_but_never_signing_methods() {
    // the stand-in's certificate comes from a CA made here; keyward trusts it through
    // rpc.upstream_ca (the Env's own PKI is made inside Env::with, after the config)
    let ca = keyward::pki::DevCa::new("stand-in node CA").unwrap();
    let node_cert = ca.server(&["localhost", "127.0.0.1"], 9).unwrap();
    let node = stand_in(&node_cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("node-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let s = start(&format!(
        "[rpc]\nupstream = \"https://{}\"\nupstream_ca = \"{}\"\n",
        node.addr.replace("127.0.0.1", "localhost"),
        ca_path.display()
    ))
    .await;
    s.import(EIP155_KEY, None);
    let c = s.rpc("/v1/rpc");

    // no local chain id: the node's
    assert_eq!(c.ok("eth_chainId", json!([])).await, "0x539");
    // forwarded as the node answers, results and errors alike
    assert_eq!(c.ok("eth_blockNumber", json!([])).await, "0x10");
    let e = c
        .err("eth_call", json!([{"to": EIP155_ADDR}, "latest"]), 3)
        .await;
    assert_eq!(
        e,
        json!({"code": 3, "message": "execution reverted", "data": "0x08c379a0"})
    );

    // eth_sendTransaction: nonce, fees and gas from the node, signed, sent as raw
    let hash = c
        .ok("eth_sendTransaction", json!([{"from": EIP155_ADDR, "to": "0x3535353535353535353535353535353535353535", "value": "0x1"}]))
        .await;
    let sent = node.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let bytes = hex::decode(&sent[0][2..]).unwrap();
    assert_eq!(hash, format!("{:#x}", alloy_primitives::keccak256(&bytes)));
    let env = alloy_consensus::TxEnvelope::decode_2718(&mut bytes.as_slice()).unwrap();
    assert_eq!(
        env.recover_signer().unwrap(),
        EIP155_ADDR.parse::<Address>().unwrap()
    );
    assert_eq!(env.chain_id(), Some(1337));
    assert_eq!(env.nonce(), 7);
    assert_eq!(env.gas_limit(), 0x5300);
    assert_eq!(env.max_priority_fee_per_gas(), Some(2_000_000_000));
    // 2 × base fee (1 gwei) + tip (2 gwei)
    assert_eq!(env.max_fee_per_gas(), 4_000_000_000);
    // eth_signTransaction: only the missing fields are asked for
    node.methods.lock().unwrap().clear();
    let raw = c
        .ok(
            "eth_signTransaction",
            json!([{"from": EIP155_ADDR, "to": EIP155_ADDR, "nonce": "0x2", "gasPrice": "0x1"}]),
        )
        .await;
    let bytes = hex::decode(&raw.as_str().unwrap()[2..]).unwrap();
    let env = alloy_consensus::TxEnvelope::decode_2718(&mut bytes.as_slice()).unwrap();
    assert_eq!(
        (env.nonce(), env.gas_limit(), env.is_legacy()),
        (2, 0x5300, true)
    );
    assert_eq!(*node.methods.lock().unwrap(), vec!["eth_estimateGas"]);

    // refused by policy? never sent. Signing and account methods never reach the node.
    node.methods.lock().unwrap().clear();
    let long = "z".repeat(100);
    c.err("personal_sign", json!([long, EIP155_ADDR]), 4001)
        .await;
    for m in [
        "personal_unlockAccount",
        "personal_sendTransaction",
        "eth_signTypedData_v3",
        "admin_peers",
        "debug_traceTransaction",
    ] {
        c.err(m, json!([]), -32601).await;
    }
    assert!(
        node.methods.lock().unwrap().is_empty(),
        "{:?}",
        node.methods.lock().unwrap()
    );
    // a stranger cannot use keyward as a node proxy
    s.rpc_as("stranger", 80, "/v1/rpc")
        .err("eth_blockNumber", json!([]), 4100)
        .await;
    assert!(node.methods.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_an_audited_refusal() {
    // a port nothing listens on: bound, then closed
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = start(&format!(
        "[rpc]\nchain_id = 1\nupstream = \"http://127.0.0.1:{port}\"\nupstream_timeout = \"2s\"\n"
    ))
    .await;
    s.import(EIP155_KEY, None);
    let c = s.rpc("/v1/rpc");
    let e = c.err("eth_blockNumber", json!([]), -32603).await;
    assert_eq!(e["data"]["code"], "upstream_unavailable");
    // a transaction that needs filling: refused, audited as an error
    let e = c
        .err(
            "eth_signTransaction",
            json!([{"from": EIP155_ADDR, "to": EIP155_ADDR, "gasPrice": "0x1", "gas": "0x5208"}]),
            -32603,
        )
        .await;
    assert_eq!(e["data"]["code"], "upstream_unavailable");
    let rec = s.record(e["data"]["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("error", "upstream_unavailable")
    );
    // a complete one needs no upstream
    let raw = c.ok("eth_signTransaction", json!([eip155_tx()])).await;
    assert_eq!(raw, EIP155_RAW);
}
