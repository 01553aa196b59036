//! The real engine (feature `dynamic-mpc`) against loopback stand-ins for the vendor:
//! the stand-ins and helpers here, the wire-format comparison in `wire`, the failure
//! paths in `failures`.

use super::*;
use keyward::signer::dynamic::{DynamicEngine, RoundStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ENV_ID: &str = "3f1c2a9e-0d4b-4c55-9a57-2f1e8b6c7d90";
const TIMEOUT_MS: u64 = 1500;

/// `[engines.dynamic]` for a stand-in API and a bare relay `host:port`.
fn engines(api: &str, relay: &str, extra: &str) -> String {
    engines_timeout(api, relay, TIMEOUT_MS, extra)
}

fn engines_timeout(api: &str, relay: &str, timeout_ms: u64, extra: &str) -> String {
    format!(
        "[engines.dynamic]\nenvironment_id = \"{ENV_ID}\"\napi_base_url = \"{api}\"\nrelay_base_url = \"{relay}\"\nconnect_timeout = \"500ms\"\nrequest_timeout = \"{timeout_ms}ms\"\n{extra}"
    )
}

/// Waits (bounded: a hang fails the test) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never happened: {what}");
}

/// The vendor's library refused the (made-up) test share: see
/// `unreachable_relay_is_cosigner_unavailable`.
fn share_refused(m: &str) -> bool {
    m.to_ascii_lowercase().contains("invalid secret share")
}

/// The API with the real engine built from its config, as `serve` builds it; the
/// engine is kept for its round counters.
async fn start_real(extra: &str) -> (Server, Arc<DynamicEngine>) {
    let slot: Arc<Mutex<Option<Arc<DynamicEngine>>>> = Arc::default();
    let keep = slot.clone();
    let s = start(extra, move |app: &Arc<Appliance>| {
        let config = app
            .config()
            .engines
            .dynamic
            .clone()
            .expect("[engines.dynamic]");
        let engine = Arc::new(DynamicEngine::new(app.token.clone(), config));
        *keep.lock().unwrap() = Some(engine.clone());
        Some(Signer::new(app.token.clone()).with_mpc_engine(engine))
    })
    .await;
    let engine = slot.lock().unwrap().take().unwrap();
    (s, engine)
}

/// Waits until no round of `engine` holds a slot any more (the vendor library's
/// blocking call returned), and returns its counters.
async fn settled(engine: &DynamicEngine) -> RoundStats {
    // a bound on a hang, not a performance threshold: the library's own waits are
    // about 30 s
    for _ in 0..1200 {
        let s = engine.round_stats();
        if s.running == 0 {
            assert_eq!(s.abandoned, 0, "{s:?}");
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("rounds still running: {:?}", engine.round_stats());
}

/// A loopback port with nothing listening.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// Accepts connections and runs `serve` on each; counts them.
async fn listener<F, Fut>(serve: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            tokio::spawn(async move { serve(sock).await });
        }
    });
    (port, count)
}

/// Reads until the peer leaves (or a minute passes).
async fn drain(sock: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A TLS server on loopback (self-signed for 127.0.0.1): `garbage` answers bytes that
/// are no handshake; otherwise it handshakes (if the client trusts it) and is silent.
async fn tls_listener(garbage: bool) -> (u16, Arc<AtomicUsize>) {
    let ca = keyward::pki::DevCa::new("not the vendor").unwrap();
    let issued = ca.server(&["127.0.0.1", "localhost"], 9).unwrap();
    let acceptor = common::https::acceptor(&issued);
    listener(move |sock| {
        let acceptor = acceptor.clone();
        async move {
            if garbage {
                let mut sock = sock;
                let _ = sock
                    .write_all(b"\x17\x03\x03\x00\x05garbage, not a server hello\r\n")
                    .await;
                let _ = sock.shutdown().await;
            } else if let Ok(mut tls) = acceptor.accept(sock).await {
                let mut buf = [0u8; 1024];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            } else {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    })
    .await
}

/// A loopback TCP port that accepts and never says anything.
async fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    listener(|mut sock| async move { drain(&mut sock).await }).await
}

/// A loopback TCP port that accepts and closes at once.
async fn slamming_listener() -> (u16, Arc<AtomicUsize>) {
    listener(|sock| async move { drop(sock) }).await
}

/// One request the vendor stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Value,
}

impl Seen {
    /// The request line's path.
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// What the stand-in answers, as raw bytes after the request.
#[derive(Clone)]
enum Reply {
    /// These bytes, then the connection closes.
    Close(Vec<u8>),
    /// These bytes, then the connection stays open until the client leaves.
    Hold(Vec<u8>),
    /// The event-stream head, then nothing until the test lets one connection through
    /// the gate; then these bytes, and close.
    Gated(Arc<tokio::sync::Semaphore>, Vec<u8>),
}

/// The vendor API stand-in (plain HTTP on 127.0.0.1): records every request, answers
/// with whatever `reply` holds at the time.
struct VendorApi {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    reply: Arc<Mutex<Reply>>,
    /// Most requests it was answering at once.
    most_open: Arc<AtomicUsize>,
}

impl VendorApi {
    async fn start(reply: Reply) -> VendorApi {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let reply = Arc::new(Mutex::new(reply));
        let open = Arc::new(AtomicUsize::new(0));
        let most_open = Arc::new(AtomicUsize::new(0));
        let (s, r, o, m) = (seen.clone(), reply.clone(), open.clone(), most_open.clone());
        let (port, _) = listener(move |mut sock| {
            let (seen, reply, open, most) = (s.clone(), r.clone(), o.clone(), m.clone());
            async move {
                let Some(req) = read_request(&mut sock).await else {
                    return;
                };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                seen.lock().unwrap().push(req);
                let reply = reply.lock().unwrap().clone();
                match reply {
                    Reply::Gated(gate, bytes) => {
                        let _ = sock.write_all(SSE_HEAD.as_bytes()).await;
                        let _ = sock.flush().await;
                        gate.acquire().await.unwrap().forget();
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Close(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Hold(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        drain(&mut sock).await;
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .await;
        VendorApi {
            port,
            seen,
            reply,
            most_open,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn answer(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// The request received last (and forget it).
    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .pop()
            .expect("a request reached the stand-in")
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or(Value::Null);
            return Some(Seen { head, body });
        }
    }
}

/// An HTTP answer with a JSON body, then close.
fn http_json(status: &str, body: &str) -> Reply {
    Reply::Close(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

/// An event stream carrying `events`, then `close` or silence.
fn sse(events: &[u8], close: bool) -> Reply {
    let mut bytes = SSE_HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(events);
    if close {
        Reply::Close(bytes)
    } else {
        Reply::Hold(bytes)
    }
}

/// A `room_created` event with a room id as the vendor makes them (32 hex, no dashes).
fn room_created() -> String {
    format!(
        "event: room_created\ndata: {{\"roomId\":\"{}\",\"serverKeygenIds\":[\"k1\"]}}\n\n",
        uuid::Uuid::new_v4().simple()
    )
}

async fn two_wallets(s: &Server) -> (Wallet, Wallet) {
    let (_, evm_addr) = keyward::wallet_key::generate(Chain::Evm);
    let (_, sol_addr) = keyward::wallet_key::generate(Chain::Solana);
    (
        s.mpc_wallet(Chain::Evm, evm_addr),
        s.mpc_wallet(Chain::Solana, sol_addr),
    )
}

mod failures;
mod wire;
