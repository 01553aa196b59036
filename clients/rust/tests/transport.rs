//! The transport against a stand-in server that drops a kept-alive connection after
//! reading a request: such a request may have been acted on, so it is resent (once, on a
//! fresh connection) only when it carries an `Idempotency-Key`.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use keyward::pki::{DevCa, Validity};
use keyward_client::{Error, KeywardClient, Tls};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves TLS on loopback: the first request of each connection is answered (kept
/// alive), the second is read and the connection closed unanswered. Returns the address
/// and the heads of every request read.
async fn drop_second_request(ca: &DevCa) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let acceptor = common::https::acceptor(&ca.server(&["127.0.0.1"], 2).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let mut s = acceptor.accept(tcp).await.unwrap();
                let mut buf = Vec::new();
                for n in 1.. {
                    // one request: head, then content-length bytes of body
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        let k = s.read(&mut chunk).await.unwrap_or(0);
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        let k = s.read(&mut chunk).await.unwrap();
                        buf.extend_from_slice(&chunk[..k]);
                    }
                    buf.drain(..head_end + len);
                    log.lock().unwrap().push(head);
                    if n == 2 {
                        let _ = s.shutdown().await;
                        return;
                    }
                    let body = br#"{"ok":true}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    s.write_all(answer.as_bytes()).await.unwrap();
                    s.write_all(body).await.unwrap();
                    s.flush().await.unwrap();
                }
            });
        }
    });
    (addr, seen)
}

fn client(ca: &DevCa, addr: SocketAddr) -> KeywardClient {
    let me = ca.client("svc", None, Validity::Current, 3).unwrap();
    let tls = Tls::from_pem(
        ca.cert_pem.as_bytes(),
        me.cert_pem.as_bytes(),
        me.key_pem.as_bytes(),
    )
    .unwrap();
    KeywardClient::new(&format!("https://127.0.0.1:{}", addr.port()), tls).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_may_have_arrived_is_resent_only_with_an_idempotency_key() {
    let ca = DevCa::new("kit transport CA").unwrap();

    // without a key: the dropped request is an error, and was sent once
    let (addr, seen) = drop_second_request(&ca).await;
    let c = client(&ca, addr);
    assert_eq!(
        c.post("/v1/a", &json!({}), None).await.unwrap(),
        json!({"ok": true})
    );
    let e = c.post("/v1/b", &json!({}), None).await.unwrap_err();
    assert!(matches!(&e, Error::Http(_)), "{e:?}");
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads.iter().all(|h| !h.contains("idempotency-key")));

    // with a key: resent once on a fresh connection, with the same key
    let (addr, seen) = drop_second_request(&ca).await;
    let c = client(&ca, addr);
    assert_eq!(
        c.post("/v1/a", &json!({}), None).await.unwrap(),
        json!({"ok": true})
    );
    let answer = c.post("/v1/b", &json!({}), Some("key-7")).await.unwrap();
    assert_eq!(answer, json!({"ok": true}));
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 3, "{heads:?}");
    for h in &heads[1..] {
        assert!(h.starts_with("post /v1/b http/1.1"), "{h}");
        assert!(h.contains("\r\nidempotency-key: key-7\r\n"), "{h}");
    }
}
