//! The JSON-RPC face with an `[rpc] upstream` node: a loopback JSON-RPC stand-in behind TLS
//! from a test CA (fixed chain state, so the filled fields can be checked exactly). The
//! interop run (`scripts/interop`) uses a real node from npm.

mod common;

use std::sync::{Arc, Mutex};

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Address;
use common::api::{path, start, Server};
use common::fixtures::{eip155_tx, COW_ADDR, COW_KEY, EIP155_ADDR, EIP155_KEY, EIP155_RAW};
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
        // COW_ADDR's count is an error of the node's (a node that lost its state)
        "eth_getTransactionCount"
            if params[0]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(COW_ADDR)) =>
        {
            json!({"error": {"code": -32000, "message": "header not found"}})
        }
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

/// The body of a stand-in answer: `eth_getLogs` answers a result string of
/// `params[0].bytes` bytes (streamed in 64 KiB chunks without a length when
/// `params[0].chunked`), `eth_getProof` a result written with odd spacing and key order
/// (a pass-through keeps both, a `Value` would not); anything else the JSON of
/// [`stand_in_answer`].
type StandInBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

fn stand_in_body(method: &str, v: &Value, sent: &Mutex<Vec<String>>) -> StandInBody {
    use http_body_util::BodyExt;
    let id = serde_json::to_string(&v["id"]).unwrap();
    let full = |b: Vec<u8>| http_body_util::Full::new(bytes::Bytes::from(b)).boxed();
    match method {
        "eth_getLogs" => {
            let n = v["params"][0]["bytes"].as_u64().unwrap_or(0) as usize;
            let mut body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":""#).into_bytes();
            body.resize(body.len() + n, b'a');
            body.extend_from_slice(b"\"}");
            if v["params"][0]["chunked"] == true {
                let chunks: Vec<
                    Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>,
                > = body
                    .chunks(64 * 1024)
                    .map(|c| Ok(hyper::body::Frame::data(bytes::Bytes::copy_from_slice(c))))
                    .collect();
                http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed()
            } else {
                full(body)
            }
        }
        "eth_getProof" => full(
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result": {{"z" : 1,"a":[2, 3.50]}} }}"#)
                .into_bytes(),
        ),
        _ => {
            let mut answer = stand_in_answer(method, &v["params"], sent);
            answer["jsonrpc"] = json!("2.0");
            answer["id"] = v["id"].clone();
            full(serde_json::to_vec(&answer).unwrap())
        }
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
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(stand_in_body(
                                &method, &v, &snt,
                            )))
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

/// A stand-in node behind TLS from its own CA, and the `[rpc]` section that trusts it
/// (`extra` appended to the section).
async fn with_node(extra_rpc: &str, extra: &str) -> (StandIn, Server, tempfile::TempDir) {
    let ca = keyward::pki::DevCa::new("stand-in node CA").unwrap();
    let node_cert = ca.server(&["localhost", "127.0.0.1"], 9).unwrap();
    let node = stand_in(&node_cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("node-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let s = server(&format!(
        "[rpc]\nchain_id = 1\nupstream = \"https://{}\"\nupstream_ca = \"{}\"\n{extra_rpc}\n{extra}",
        node.addr.replace("127.0.0.1", "localhost"),
        ca_path.display()
    ))
    .await;
    (node, s, dir)
}

/// Forwarding is an allowlist matched exactly, and needs its own grant: a method is
/// forwarded because `rpc.forward_methods` names it, never because keyward does not
/// recognise it. Nothing refused reaches the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_is_an_exact_allowlist_behind_its_own_grant() {
    let reader = r#"
[[clients]]
identity = "signer-only"
wallets = ["*"]
operations = ["evm.message", "evm.transaction"]
"#;
    let (node, s, _dir) = with_node("", reader).await;
    let c = s.rpc("/v1/rpc");
    // listed by default: forwarded
    assert_eq!(c.ok("eth_blockNumber", json!([])).await, "0x10");
    assert_eq!(*node.methods.lock().unwrap(), vec!["eth_blockNumber"]);
    node.methods.lock().unwrap().clear();
    // case and whitespace variants of listed methods, methods that use the node's keys or
    // state (decrypt, subscriptions, filters), bundler and admin methods: not listed
    for m in [
        "ETH_BLOCKNUMBER",
        "eth_blocknumber",
        "Eth_blockNumber",
        "eth_blockNumber ",
        " eth_blockNumber",
        "eth_blockNumber\n",
        "eth_blockNumber\u{0}",
        "eth_sendrawtransaction",
        "eth_decrypt",
        "eth_getEncryptionPublicKey",
        "eth_sendUserOperation",
        "eth_subscribe",
        "eth_newFilter",
        "eth_getFilterChanges",
        "eth_coinbase",
        "eth_mining",
        "net_peerCount",
        "txpool_content",
        "debug_traceCall",
        "personal_listAccounts",
        "personal_ecRecover",
    ] {
        let e = c.err(m, json!([]), -32601).await;
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("rpc.forward_methods"),
            "{m:?}: {e}"
        );
    }
    // a client without rpc.forward: refused before the node is asked
    let so = s.rpc_as("signer-only", 81, "/v1/rpc");
    let e = so.err("eth_blockNumber", json!([]), 4100).await;
    assert_eq!(e["data"]["code"], "not_authorized");
    assert!(
        e["message"].as_str().unwrap().contains("rpc.forward"),
        "{e}"
    );
    let e = so
        .err("eth_sendRawTransaction", json!([EIP155_RAW]), 4100)
        .await;
    assert_eq!(e["data"]["code"], "not_authorized");
    assert!(
        node.methods.lock().unwrap().is_empty(),
        "{:?}",
        node.methods.lock().unwrap()
    );
    // but signing still uses the node to send what it signed (evm.transaction suffices)
    s.import(Chain::Evm, EIP155_KEY, None);
    so.ok(
        "eth_sendTransaction",
        json!([{"from": EIP155_ADDR, "to": EIP155_ADDR, "value": "0x1"}]),
    )
    .await;
    assert_eq!(node.sent.lock().unwrap().len(), 1);
}

/// `rpc.forward_methods` replaces the default list: what it leaves out is not forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forward_list_is_the_operators() {
    let (node, s, _dir) = with_node("forward_methods = [\"eth_blockNumber\"]", "").await;
    let c = s.rpc("/v1/rpc");
    assert_eq!(c.ok("eth_blockNumber", json!([])).await, "0x10");
    for m in ["eth_call", "eth_getBalance", "eth_sendRawTransaction"] {
        c.err(m, json!([]), -32601).await;
    }
    assert_eq!(*node.methods.lock().unwrap(), vec!["eth_blockNumber"]);
}

fn logs(id: u64, bytes: usize, chunked: bool) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "eth_getLogs", "params": [{"bytes": bytes, "chunked": chunked}]})
}

/// A forwarded answer is passed on as the node wrote it (never rebuilt as a `Value`), and
/// the answers one request holds are bounded by rpc.max_upstream_response_bytes: past it,
/// -32005 `upstream_answer_too_large`, whether the node declares its length or streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_answers_pass_through_within_a_byte_bound() {
    const MIB: usize = 1024 * 1024;
    let (node, s, _dir) = with_node(
        &format!(
            "max_upstream_response_bytes = {MIB}\nmax_upstream_inflight_bytes = {}",
            4 * MIB
        ),
        "",
    )
    .await;
    let c = s.rpc("/v1/rpc");
    // as the node wrote it: spacing, key order, number form
    let a = c
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "eth_getProof", "params": []}))
        .await;
    assert_eq!(
        String::from_utf8(a.raw.to_vec()).unwrap(),
        r#"{"jsonrpc":"2.0","id":7,"result":{"z" : 1,"a":[2, 3.50]}}"#
    );
    // 15 MiB against a bound of 1 MiB: refused, declared length or streamed alike
    for chunked in [false, true] {
        let a = c.post(&logs(1, 15 * MIB, chunked)).await;
        assert_eq!(a.status, 200);
        let v = a.json();
        // (never the whole answer in the message: it may be 15 MiB)
        assert_eq!(
            v["error"]["code"], -32005,
            "chunked {chunked}: {}",
            v["error"]
        );
        assert_eq!(v["error"]["data"]["code"], "upstream_answer_too_large");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("rpc.max_upstream_response_bytes"),
            "{v}"
        );
    }
    // under the bound: passed on whole
    let a = c.post(&logs(2, MIB / 2, true)).await;
    assert_eq!(a.json()["result"].as_str().unwrap().len(), MIB / 2);
    // the bound is the whole batch's: 600 KiB + 300 KiB fit, the next 300 KiB does not;
    // a small answer after it still fits, and each answer keeps its id
    for chunked in [false, true] {
        let batch = json!([
            logs(10, 600 * 1024, chunked),
            logs(11, 300 * 1024, chunked),
            logs(12, 300 * 1024, chunked),
            {"jsonrpc": "2.0", "id": 13, "method": "eth_blockNumber", "params": []}
        ]);
        let v = c.post(&batch).await.json();
        let v = v.as_array().unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0]["result"].as_str().unwrap().len(), 600 * 1024);
        assert_eq!(v[1]["result"].as_str().unwrap().len(), 300 * 1024);
        assert_eq!(
            (v[2]["id"].clone(), v[2]["error"]["code"].clone()),
            (json!(12), json!(-32005))
        );
        assert_eq!(v[2]["error"]["data"]["code"], "upstream_answer_too_large");
        assert_eq!(v[3], json!({"jsonrpc": "2.0", "id": 13, "result": "0x10"}));
    }
    // the bound is per request: the next request starts afresh
    let a = c.post(&logs(3, 900 * 1024, false)).await;
    assert_eq!(a.json()["result"].as_str().unwrap().len(), 900 * 1024);
    assert!(node.methods.lock().unwrap().len() >= 10);
}

/// A plain-HTTP loopback node (in threads, for a daemon test) that answers every call with
/// `mib` MiB of a log list: many small objects, what a `Value` multiplies most, streamed
/// in chunks without a length. Returns its address.
fn streaming_log_node(mib: usize) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let id = serde_json::from_slice::<Value>(&body).unwrap_or_default()["id"].clone();
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
                let chunk = |c: &mut std::net::TcpStream, b: &[u8]| {
                    write!(c, "{:x}\r\n", b.len())
                        .and_then(|_| c.write_all(b))
                        .and_then(|_| c.write_all(b"\r\n"))
                };
                let head = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":["#);
                if chunk(&mut conn, head.as_bytes()).is_err() {
                    return;
                }
                let item =
                    br#"{"address":"0x0","topics":["0x1","0x2"],"data":"0x","logIndex":"0x0"},"#;
                let block: Vec<u8> = item
                    .iter()
                    .copied()
                    .cycle()
                    .take(item.len() * 800)
                    .collect();
                let mut sent = 0;
                // the daemon stops reading at its bound and drops the connection: a failed
                // write ends the answer
                while sent < mib * 1024 * 1024 {
                    if chunk(&mut conn, &block).is_err() {
                        return;
                    }
                    sent += block.len();
                }
                let _ = chunk(&mut conn, b"{}]}");
                let _ = conn.write_all(b"0\r\n\r\n");
            });
        }
    });
    addr
}

/// The daemon's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// What the byte bounds are for, measured on a real daemon: a node answering 15 MiB of log
/// objects to each call of a batch of 20 and to 5 single calls (one such answer once took
/// the process to 2.7 GB) is refused at 1 MiB per request, and the daemon's peak memory grows by far less
/// than one such answer. A bound on bytes held (set by config), not on time.
#[test]
fn a_node_answering_huge_is_refused_within_the_configured_bytes() {
    use common::daemon::Daemon;
    let node = streaming_log_node(15);
    let env = common::Env::with_extra(format!(
        "{}\n[rpc]\nchain_id = 1\nupstream = \"http://{node}\"\nmax_upstream_response_bytes = 1048576\nmax_upstream_inflight_bytes = 4194304\n",
        common::grant("test-client", &["*"], &["evm.message", "rpc.forward"])
    ));
    let d = Daemon::start(&env);
    let call =
        |id: usize| json!({"jsonrpc": "2.0", "id": id, "method": "eth_getLogs", "params": [{}]});
    let post = |body: &Value| {
        let (status, text) =
            common::https::mtls_request(&env, &d.api, "POST", "/v1/rpc", Some(&body.to_string()))
                .unwrap();
        assert_eq!(status, 200, "{text}");
        let json = &text[text.find("\r\n\r\n").unwrap() + 4..];
        serde_json::from_str::<Value>(json).unwrap()
    };
    // one small call first: what the daemon holds once it has served the face
    let warm = post(&json!({"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []}));
    assert_eq!(warm["result"], "0x1");
    let before = peak_rss_kib(d.pid());
    let batch: Vec<Value> = (1..=20).map(call).collect();
    let batch_answers = post(&Value::Array(batch));
    let single_answers: Vec<Value> = (0..5).map(|id| post(&call(id))).collect();
    let after = peak_rss_kib(d.pid());
    eprintln!("daemon peak RSS: {before} KiB before, {after} KiB after");
    let grown_mib = after.saturating_sub(before) / 1024;
    // 1 MiB per request, 4 MiB for all: the peak may grow by buffers and allocator slack,
    // never by one 15 MiB answer
    assert!(
        grown_mib < 15,
        "the daemon's peak memory grew by {grown_mib} MiB"
    );
    let refused = |a: &Value| {
        assert_eq!(a["error"]["code"], -32005, "{}", a["error"]);
        assert_eq!(a["error"]["data"]["code"], "upstream_answer_too_large");
    };
    let batch_answers = batch_answers.as_array().unwrap();
    assert_eq!(batch_answers.len(), 20);
    batch_answers.iter().for_each(refused);
    single_answers.iter().for_each(refused);
}

/// A rule capping value (and counting it in a rolling window) with `extra` in its `evm`
/// section, for `test-client`.
fn capped_rule(extra: &str) -> String {
    format!(
        "[[policy.rule]]\nid = \"capped-evm\"\nclients = [\"test-client\"]\n[policy.rule.evm]\nmax_value = {{ \"*\" = \"2 ether\" }}\n{extra}\n[[policy.rule.evm.spend]]\nchain_id = 1\nwindow = \"1h\"\nmax = \"10 ether\"\n"
    )
}

/// `eip155_tx()` with its chain id (the REST routes fill none) and another nonce.
fn tx_with_nonce(nonce: &str) -> Value {
    let mut tx = eip155_tx();
    tx["chainId"] = json!("0x1");
    tx["nonce"] = json!(nonce);
    tx
}

/// The native spend counted for `wallet` on chain 1 in the last hour.
fn spent(s: &Server, wallet: &str) -> alloy_primitives::U256 {
    let key = keyward::policy::SpendKey {
        wallet: wallet.to_owned(),
        chain: "eip155:1".into(),
        asset: "native".into(),
    };
    let q = vec![(key.clone(), 3_600_000)];
    let now = keyward::store::spend::now_ms();
    let totals = s
        .app
        .store
        .read(move |c| keyward::store::spend::totals(c, &q, now))
        .unwrap();
    totals[&(key, 3_600_000)]
}

fn gap_refusal(a: &common::https::Answer, says: &[&str]) {
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
    assert_eq!(a.body["error"]["rule"], "capped-evm", "{}", a.body);
    let m = a.body["error"]["message"].as_str().unwrap();
    for s in says {
        assert!(m.contains(s), "{s:?} not in {m}");
    }
}

/// `evm.max_nonce_gap`: a transaction whose nonce is more than the gap above the wallet's
/// pending nonce (the stand-in's 7) is refused by the rule on both faces and in dry runs;
/// within the gap, or at a lower nonce (a replacement), it is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_beyond_the_gap_above_the_pending_one_is_refused() {
    let (node, s, _dir) = with_node("", &capped_rule("max_nonce_gap = 2")).await;
    let w = s.import(Chain::Evm, EIP155_KEY, None);
    let route = path(&w, "evm/transaction");

    // REST: nonce 9 = pending 7 + gap 2: signed, the nonce asked of the node
    node.methods.lock().unwrap().clear();
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0x9") }))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["rawTransaction"], EIP155_RAW);
    assert_eq!(
        *node.methods.lock().unwrap(),
        vec!["eth_getTransactionCount"]
    );
    assert_eq!(
        s.detail(a.body["auditId"].as_str().unwrap())["pendingNonce"],
        7
    );
    // a lower nonce (replacing a pending transaction) is within the bound
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0x3") }))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let before = spent(&s, &w.id);

    // pending + gap + 1, far ahead, and in another transaction type: refused by the rule
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0xa") }))
        .await;
    gap_refusal(
        &a,
        &["evm.max_nonce_gap is 2", "nonce 10", "pending nonce 7"],
    );
    s.assert_audited(&a.body["auditId"], "denied", "policy_denied");
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0x3e8") }))
        .await;
    gap_refusal(&a, &["nonce 1000", "pending nonce 7"]);
    let eip1559 = json!({
        "type": "0x2", "chainId": "0x1", "nonce": "0xa", "gas": "0x5208",
        "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1",
        "to": "0x3535353535353535353535353535353535353535", "value": "0x1", "data": "0x"
    });
    let a = s.post(&route, json!({ "transaction": eip1559 })).await;
    gap_refusal(&a, &["nonce 10", "pending nonce 7"]);
    // a dry run is judged the same
    let a = s
        .post(
            &format!("{route}?dryRun=true"),
            json!({ "transaction": tx_with_nonce("0xa") }),
        )
        .await;
    gap_refusal(&a, &["nonce 10"]);
    s.assert_audited(&a.body["auditId"], "denied", "policy_denied");
    let a = s
        .post(
            &format!("{route}?dryRun=true"),
            json!({ "transaction": tx_with_nonce("0x9") }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["dryRun"], true);
    // refusals count nothing
    assert_eq!(spent(&s, &w.id), before);

    // JSON-RPC: the same rule, 4001 with its id
    let c = s.rpc("/v1/rpc");
    // the node answers the count with an error: its refusal, retryable, nothing signed
    let cow = s.import(Chain::Evm, COW_KEY, None);
    let mut tx = tx_with_nonce("0x0");
    tx["from"] = json!(COW_ADDR);
    let a = s
        .post(&path(&cow, "evm/transaction"), json!({ "transaction": tx }))
        .await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "upstream_rejected", "{}", a.body);
    assert!(a.body.get("rawTransaction").is_none(), "{}", a.body);
    s.assert_audited(&a.body["auditId"], "error", "upstream_rejected");
    let e = c
        .err("eth_signTransaction", json!([tx_with_nonce("0xa")]), 4001)
        .await;
    assert_eq!(e["data"]["code"], "policy_denied");
    assert_eq!(e["data"]["rule"], "capped-evm");
    assert!(
        e["message"].as_str().unwrap().contains("evm.max_nonce_gap"),
        "{e}"
    );
    s.assert_audited(&e["data"]["auditId"], "denied", "policy_denied");
    assert_eq!(
        c.ok("eth_signTransaction", json!([eip155_tx()])).await,
        EIP155_RAW
    );
    // eth_sendTransaction with a nonce ahead: refused, nothing sent
    node.sent.lock().unwrap().clear();
    let e = c
        .err(
            "eth_sendTransaction",
            json!([{"from": EIP155_ADDR, "to": EIP155_ADDR, "value": "0x1", "nonce": "0xb"}]),
            4001,
        )
        .await;
    assert_eq!(e["data"]["rule"], "capped-evm");
    assert!(node.sent.lock().unwrap().is_empty());
    // filled from the node (pending 7): signed and sent
    c.ok(
        "eth_sendTransaction",
        json!([{"from": EIP155_ADDR, "to": EIP155_ADDR, "value": "0x1"}]),
    )
    .await;
    assert_eq!(node.sent.lock().unwrap().len(), 1);
}

/// A rule that caps value and sets no gap gets gap 0 once an upstream is configured: the
/// nonce may not be ahead of the pending one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_rule_bounds_the_nonce_gap_to_zero_by_default() {
    let (_node, s, _dir) = with_node("", &capped_rule("")).await;
    let w = s.import(Chain::Evm, EIP155_KEY, None);
    let route = path(&w, "evm/transaction");
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0x7") }))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .post(&route, json!({ "transaction": tx_with_nonce("0x8") }))
        .await;
    gap_refusal(
        &a,
        &["evm.max_nonce_gap is 0", "nonce 8", "pending nonce 7"],
    );
    let e = s
        .rpc("/v1/rpc")
        .err("eth_signTransaction", json!([eip155_tx()]), 4001)
        .await;
    assert_eq!(e["data"]["rule"], "capped-evm");
}

/// The pending nonce cannot be asked: refused as the node's failure (retryable), audited
/// as an error, nothing signed or counted, on both faces and in dry runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_refuses_a_gap_bounded_transaction() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = server(&format!(
        "[rpc]\nchain_id = 1\nupstream = \"http://127.0.0.1:{port}\"\nupstream_timeout = \"2s\"\n{}",
        capped_rule("max_nonce_gap = 5")
    ))
    .await;
    let w = s.import(Chain::Evm, EIP155_KEY, None);
    let route = path(&w, "evm/transaction");
    for route in [route.clone(), format!("{route}?dryRun=true")] {
        let a = s
            .post(&route, json!({ "transaction": tx_with_nonce("0x9") }))
            .await;
        assert_eq!(a.status, 502, "{}", a.body);
        assert_eq!(
            a.body["error"]["code"], "upstream_unavailable",
            "{}",
            a.body
        );
        assert!(a.body.get("rawTransaction").is_none(), "{}", a.body);
        s.assert_audited(&a.body["auditId"], "error", "upstream_unavailable");
    }
    let e = s
        .rpc("/v1/rpc")
        .err("eth_signTransaction", json!([eip155_tx()]), -32603)
        .await;
    assert_eq!(e["data"]["code"], "upstream_unavailable");
    s.assert_audited(&e["data"]["auditId"], "error", "upstream_unavailable");
    assert_eq!(spent(&s, &w.id), alloy_primitives::U256::ZERO);
    // a message needs no nonce: not affected
    let a = s
        .post(&path(&w, "evm/message"), json!({ "message": "hello" }))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}
