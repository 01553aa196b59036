//! The JSON-RPC face with an `[rpc] upstream` node: a loopback JSON-RPC stand-in behind TLS
//! from a test CA (fixed chain state, so the filled fields can be checked exactly). The
//! interop run (`scripts/interop`) uses a real node from npm.

mod common;

use std::sync::{Arc, Mutex};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Address;
use common::api::{start, Server};
use common::fixtures::{eip155_tx, EIP155_ADDR, EIP155_KEY, EIP155_RAW};
use common::rpc::{EVM_CLIENT, SHORT_MESSAGES};
use keyward::store::wallets::Chain;
use serde_json::{json, Value};

async fn server(extra: &str) -> Server {
    start(&format!("{EVM_CLIENT}{SHORT_MESSAGES}\n{extra}")).await
}

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
    let acceptor = common::https::acceptor(env_server);
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
    let s = server(&format!(
        "[rpc]\nupstream = \"https://{}\"\nupstream_ca = \"{}\"\n",
        node.addr.replace("127.0.0.1", "localhost"),
        ca_path.display()
    ))
    .await;
    s.import(Chain::Evm, EIP155_KEY, None);
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
    let s = server(&format!(
        "[rpc]\nchain_id = 1\nupstream = \"http://127.0.0.1:{port}\"\nupstream_timeout = \"2s\"\n"
    ))
    .await;
    s.import(Chain::Evm, EIP155_KEY, None);
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
    s.assert_audited(&e["data"]["auditId"], "error", "upstream_unavailable");
    // a complete one needs no upstream
    let raw = c.ok("eth_signTransaction", json!([eip155_tx()])).await;
    assert_eq!(raw, EIP155_RAW);
}
