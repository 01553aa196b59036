//! The `[rpc] upstream` Ethereum node: a small JSON-RPC client over hyper (HTTP/1.1) and
//! tokio-rustls. One connection per call (no pool): calls are few per request (filling a
//! transaction takes at most four, plus the send), and a fresh connection never fails on
//! a socket the node closed while it sat idle.
//!
//! Bounded: every call (connect, TLS, request, whole answer) within `upstream_timeout`;
//! the bytes of the answers one request (a whole batch) holds within
//! `rpc.max_upstream_response_bytes`, and those all requests hold at once within
//! `rpc.max_upstream_inflight_bytes` ([`Budget`]). A forwarded result is kept as the
//! node's own JSON text ([`RawValue`]), never built into a `Value`: a `Value` of a large
//! block or log list takes many times its text's size. Must never: follow redirects, send
//! anything but the JSON-RPC request it was given, or put the node's raw answer in a log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::rpc::RpcConfig;

/// Largest `error.data` of a node's error kept (a revert reason is a few hundred bytes);
/// a larger one makes the answer garbage.
pub const MAX_ERROR_DATA: usize = 64 * 1024;

/// The bytes of upstream answers one request may still take, and its share of the
/// process-wide bound (released when the request's answer is built and the budget
/// dropped). Taking never waits: past either bound the call fails at once, so two
/// requests each holding part of the shared bound cannot wait on each other.
pub struct Budget {
    request_limit: usize,
    inflight_limit: usize,
    remaining: Mutex<usize>,
    shared: Arc<Semaphore>,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("request_limit", &self.request_limit)
            .field("inflight_limit", &self.inflight_limit)
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// A request's budget: `request_limit` bytes of its own, taken from `shared` (a
    /// semaphore of `inflight_limit` permits, one per byte).
    pub fn new(request_limit: usize, inflight_limit: usize, shared: Arc<Semaphore>) -> Budget {
        Budget {
            request_limit,
            inflight_limit,
            remaining: Mutex::new(request_limit),
            shared,
            held: Mutex::new(None),
        }
    }

    /// The shared semaphore for `inflight_limit` bytes.
    pub fn shared(inflight_limit: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(inflight_limit.min(Semaphore::MAX_PERMITS)))
    }

    /// Whether `n` more bytes would fit this request's own bound.
    fn fits(&self, n: usize) -> Result<(), UpstreamError> {
        let remaining = *self.remaining.lock().unwrap_or_else(|p| p.into_inner());
        if n > remaining {
            return Err(UpstreamError::TooLarge(self.request_limit));
        }
        Ok(())
    }

    /// Takes `n` bytes from both bounds, or fails naming the one that is exhausted.
    pub fn take(&self, n: usize) -> Result<(), UpstreamError> {
        let mut remaining = self.remaining.lock().unwrap_or_else(|p| p.into_inner());
        if n > *remaining {
            return Err(UpstreamError::TooLarge(self.request_limit));
        }
        let permits = u32::try_from(n).map_err(|_| UpstreamError::TooLarge(self.request_limit))?;
        let permit = self
            .shared
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| UpstreamError::Busy(self.inflight_limit))?;
        *remaining -= n;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

/// The upstream node with the budget of the request calling it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The node.
    pub upstream: &'a Upstream,
    /// The request's budget.
    pub budget: &'a Budget,
}

impl Node<'_> {
    /// [`Upstream::call`] within the budget.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        self.upstream.call(method, params, self.budget).await
    }

    /// [`Upstream::forward`] within the budget.
    pub async fn forward(&self, method: &str, params: Value) -> Result<Forwarded, UpstreamError> {
        self.upstream.forward(method, params, self.budget).await
    }
}

/// The node's answer to one call: its result as it sent it, or its error.
pub type Forwarded = Result<Box<RawValue>, RpcErrorObject>;

/// A JSON-RPC error object (the node's, passed on as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcErrorObject {
    /// `error.code`.
    pub code: i64,
    /// `error.message`.
    pub message: String,
    /// `error.data`, if any.
    pub data: Option<Value>,
}

/// Why a call to the upstream node failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `upstream_ca` could not be used.
    #[error("rpc.upstream_ca: {0}")]
    Ca(String),
    /// TCP or TLS failed.
    #[error("cannot reach the upstream node: {0}")]
    Connect(String),
    /// The HTTP exchange failed.
    #[error("the upstream node's HTTP answer failed: {0}")]
    Http(String),
    /// No whole answer within the bound.
    #[error("the upstream node did not answer within {0:?}")]
    Timeout(Duration),
    /// The answers to this request exceed `rpc.max_upstream_response_bytes`.
    #[error("the upstream node's answers to this request exceed rpc.max_upstream_response_bytes ({0} bytes)")]
    TooLarge(usize),
    /// The answers all requests hold would exceed `rpc.max_upstream_inflight_bytes`.
    #[error("the upstream answers held by all requests at once would exceed rpc.max_upstream_inflight_bytes ({0} bytes); retry shortly")]
    Busy(usize),
    /// Not a JSON-RPC answer.
    #[error("the upstream node's answer is not JSON-RPC ({0})")]
    Garbage(String),
    /// The node answered with a JSON-RPC error.
    #[error("the upstream node refused {method}: {}", .error.message)]
    Refused {
        /// The method called.
        method: String,
        /// The node's error.
        error: RpcErrorObject,
    },
}

/// The upstream node of the JSON-RPC face.
pub struct Upstream {
    uri: Uri,
    host: String,
    port: u16,
    host_header: String,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    /// The node's chain id, asked once: a node does not change chains (a config reload
    /// that names another node builds another client).
    chain_id: tokio::sync::OnceCell<u64>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the URL path may carry a provider's key: only the host is shown
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The client for `cfg.upstream` (`None` when none is configured).
    pub fn from_config(cfg: &RpcConfig) -> Result<Option<Upstream>, UpstreamError> {
        let Some(url) = &cfg.upstream else {
            return Ok(None);
        };
        if let Some(p) = crate::config::rpc::upstream_problem(url) {
            return Err(UpstreamError::Connect(format!("rpc.upstream: {p}")));
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| UpstreamError::Connect(format!("rpc.upstream: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_header = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let tls = if https {
            let mut roots = rustls::RootCertStore::empty();
            match &cfg.upstream_ca {
                Some(path) => {
                    let certs = crate::tls::load_certs(path)
                        .map_err(|e| UpstreamError::Ca(e.to_string()))?;
                    for c in certs {
                        roots.add(c).map_err(|e| UpstreamError::Ca(e.to_string()))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Some(Upstream {
            uri,
            host,
            port,
            host_header,
            tls,
            timeout: cfg.upstream_timeout,
            chain_id: tokio::sync::OnceCell::new(),
        }))
    }

    /// The node's `eth_chainId`.
    pub async fn chain_id(&self, budget: &Budget) -> Result<u64, UpstreamError> {
        self.chain_id
            .get_or_try_init(|| async {
                let v = self.call("eth_chainId", json!([]), budget).await?;
                v.as_str()
                    .and_then(|s| s.strip_prefix("0x"))
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .filter(|id| *id != 0)
                    .ok_or_else(|| {
                        UpstreamError::Garbage("eth_chainId is not a non-zero hex quantity".into())
                    })
            })
            .await
            .copied()
    }

    /// Calls `method` and returns its result, or the node's error as
    /// [`UpstreamError::Refused`].
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        budget: &Budget,
    ) -> Result<Value, UpstreamError> {
        match self.forward(method, params, budget).await? {
            // only keyward's own calls (chain id, transaction fields) come here: small
            Ok(raw) => serde_json::from_str(raw.get())
                .map_err(|_| UpstreamError::Garbage("the result is not JSON".into())),
            Err(error) => Err(UpstreamError::Refused {
                method: method.to_owned(),
                error,
            }),
        }
    }

    /// Calls `method` and returns the node's result (its JSON text) or its JSON-RPC error
    /// object; the answer's bytes are taken from `budget`.
    pub async fn forward(
        &self,
        method: &str,
        params: Value,
        budget: &Budget,
    ) -> Result<Forwarded, UpstreamError> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let bytes = serde_json::to_vec(&body).map_err(|e| UpstreamError::Http(e.to_string()))?;
        let answer = tokio::time::timeout(self.timeout, self.post(bytes, budget))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))??;
        parse_answer(&answer)
    }

    async fn post(&self, body: Vec<u8>, budget: &Budget) -> Result<Vec<u8>, UpstreamError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| UpstreamError::Connect(e.to_string()))?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| UpstreamError::Connect(format!("TLS: {e}")))?;
                self.exchange(TokioIo::new(tls), body, budget).await
            }
            None => self.exchange(TokioIo::new(tcp), body, budget).await,
        }
    }

    async fn exchange<T>(
        &self,
        io: TokioIo<T>,
        body: Vec<u8>,
        budget: &Budget,
    ) -> Result<Vec<u8>, UpstreamError>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| UpstreamError::Http(e.to_string()))?;
        // the connection task ends with the exchange (the sender is dropped below)
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let target = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let req = Request::post(target)
            .header(hyper::header::HOST, &self.host_header)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| UpstreamError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| UpstreamError::Http(e.to_string()))?;
        let status = resp.status();
        // a declared length past the bound is refused before a byte of it is read
        let declared = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if let Some(n) = declared {
            budget.fits(n)?;
        }
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0));
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| UpstreamError::Http(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                // counted as it arrives: an answer past the bound is never held whole
                budget.take(data.len())?;
                bytes.extend_from_slice(&data);
            }
        }
        // a node may put a JSON-RPC error under a 4xx/5xx status: the body decides, and
        // the status is named only when the body is not JSON-RPC
        if !status.is_success() && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err()
        {
            return Err(UpstreamError::Garbage(format!("HTTP {status}")));
        }
        Ok(bytes)
    }
}

/// A JSON-RPC answer as read: `result` kept as text, everything else skipped unbuilt.
#[derive(Deserialize)]
struct AnswerShape {
    /// `Some` when the key is present, `null` included.
    #[serde(default, deserialize_with = "present_raw")]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct ErrorShape {
    code: Option<Value>,
    message: Option<Value>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

fn present_raw<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// The result or error of a single JSON-RPC answer.
pub fn parse_answer(bytes: &[u8]) -> Result<Forwarded, UpstreamError> {
    let garbage = |m: &str| UpstreamError::Garbage(m.into());
    // a struct also deserializes from an array: only an object is an answer
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(garbage("the body is not a JSON object"));
    }
    let shape: AnswerShape =
        serde_json::from_slice(bytes).map_err(|_| garbage("the body is not a JSON-RPC answer"))?;
    if let Some(e) = shape.error.filter(|e| e.get() != "null") {
        let e: ErrorShape =
            serde_json::from_str(e.get()).map_err(|_| garbage("the error is not an object"))?;
        let code = e.code.as_ref().and_then(Value::as_i64);
        let message = e.message.as_ref().and_then(Value::as_str);
        let data = match e.data {
            None => None,
            Some(d) if d.get().len() > MAX_ERROR_DATA => {
                return Err(garbage("error.data is larger than 64 KiB"))
            }
            Some(d) => {
                Some(serde_json::from_str::<Value>(d.get()).map_err(|_| garbage("error.data"))?)
            }
        };
        return match (code, message) {
            (Some(code), Some(message)) => Ok(Err(RpcErrorObject {
                code,
                // the node's text goes back to the client: bounded
                message: message.chars().take(1024).collect(),
                data,
            })),
            _ => Err(garbage("an error without an integer code and a message")),
        };
    }
    match shape.result {
        Some(r) => Ok(Ok(r)),
        None => Err(garbage("neither result nor error")),
    }
}

/// The account's pending nonce (`eth_getTransactionCount(address, "pending")`): what the
/// node counts for it, mined and in its pool.
pub async fn pending_nonce(
    node: &Node<'_>,
    address: alloy_primitives::Address,
) -> Result<u64, crate::http::Refusal> {
    let method = "eth_getTransactionCount";
    let v = node
        .call(method, json!([format!("{address:#x}"), "pending"]))
        .await
        .map_err(|e| refusal(&e))?;
    nonce_of(&v).ok_or_else(|| {
        crate::api::errors::refuse(
            "upstream_unavailable",
            format!("the upstream node's {method} answer is not a hex quantity of at most 64 bits"),
        )
    })
}

/// A nonce as a node answers it: 0x hex of at most 64 bits (EIP-2681), else `None`.
pub fn nonce_of(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        // from_str_radix alone would take a sign: "0x+1"
        .filter(|h| (1..=16).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

/// The refusal for a failed upstream call.
pub fn refusal(e: &UpstreamError) -> crate::http::Refusal {
    use crate::api::errors::refuse;
    match e {
        UpstreamError::Refused { .. } => refuse("upstream_rejected", e.to_string()),
        UpstreamError::TooLarge(_) => refuse("upstream_answer_too_large", e.to_string()),
        UpstreamError::Busy(_) => refuse("upstream_busy", e.to_string()),
        _ => refuse("upstream_unavailable", e.to_string()),
    }
}

/// Per-listener state of the upstream node (shared by the JSON-RPC face and the decision
/// path's nonce-gap check): the client, rebuilt when a reload changes `[rpc]`, and
/// the semaphore of `rpc.max_upstream_inflight_bytes`, rebuilt when a reload changes it.
#[derive(Default)]
pub struct Nodes {
    upstream: Mutex<Option<(UpstreamKey, Built)>>,
    inflight: Mutex<Option<(usize, Arc<tokio::sync::Semaphore>)>>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes").finish_non_exhaustive()
    }
}

/// The client, or why it could not be built.
type Built = Result<Arc<Upstream>, String>;

/// What the client is built from.
type UpstreamKey = (
    Option<String>,
    Option<std::path::PathBuf>,
    std::time::Duration,
);

impl Nodes {
    /// A request's budget of upstream answer bytes under `cfg`.
    pub fn budget(&self, cfg: &RpcConfig) -> Budget {
        let limit = cfg.max_upstream_inflight_bytes;
        let mut slot = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let shared = match &*slot {
            Some((l, s)) if *l == limit => s.clone(),
            // a reload that changes the bound starts a new count; requests under the old
            // one finish under it
            _ => {
                let s = Budget::shared(limit);
                *slot = Some((limit, s.clone()));
                s
            }
        };
        Budget::new(cfg.max_upstream_response_bytes, limit, shared)
    }

    /// The upstream client for `cfg` (`Ok(None)`: none configured).
    pub fn upstream(&self, cfg: &RpcConfig) -> Result<Option<Arc<Upstream>>, String> {
        if cfg.upstream.is_none() {
            return Ok(None);
        }
        let key: UpstreamKey = (
            cfg.upstream.clone(),
            cfg.upstream_ca.clone(),
            cfg.upstream_timeout,
        );
        let mut slot = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, built)) = &*slot {
            if *k == key {
                return built.clone().map(Some);
            }
        }
        let built = match Upstream::from_config(cfg) {
            Ok(Some(u)) => Ok(Arc::new(u)),
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "the [rpc] upstream client cannot be built");
                Err(e.to_string())
            }
        };
        *slot = Some((key, built.clone()));
        built.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(bytes: &[u8]) -> String {
        parse_answer(bytes).unwrap().unwrap().get().to_owned()
    }

    #[test]
    fn a_pending_nonce_is_hex_of_at_most_64_bits() {
        assert_eq!(nonce_of(&json!("0x7")), Some(7));
        assert_eq!(nonce_of(&json!("0xffffffffffffffff")), Some(u64::MAX));
        for bad in [
            json!("0x10000000000000000"),
            json!("0x"),
            json!("7"),
            json!(7),
            json!("0x-1"),
            json!("0x+1"),
            json!("0xzz"),
            Value::Null,
        ] {
            assert_eq!(nonce_of(&bad), None, "{bad}");
        }
    }

    #[test]
    fn answers_are_parsed_strictly() {
        assert_eq!(
            result(br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#),
            r#""0x1""#
        );
        assert_eq!(result(br#"{"jsonrpc":"2.0","id":1,"result":null}"#), "null");
        // kept as the node wrote it, not rebuilt
        assert_eq!(
            result(br#"{"id":1,"result": {"b" : [1, 2],"a":1} ,"error":null}"#),
            r#"{"b" : [1, 2],"a":1}"#
        );
        let e = parse_answer(
            br#"{"id":1,"error":{"code":-32000,"message":"nonce too low","data":"x"}}"#,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(e.code, -32000);
        assert_eq!(e.message, "nonce too low");
        assert_eq!(e.data, Some(json!("x")));
        for bad in [
            &b"not json"[..],
            b"[1]",
            br#"{"id":1}"#,
            br#"{"error":{"code":"x","message":"m"}}"#,
            br#"[{"result":1}]"#,
            br#"["0x1", null]"#,
            br#"{"result":1"#,
            br#"{"error":7}"#,
        ] {
            assert!(
                matches!(parse_answer(bad), Err(UpstreamError::Garbage(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn error_data_is_bounded() {
        let big = format!(
            r#"{{"id":1,"error":{{"code":3,"message":"m","data":"{}"}}}}"#,
            "a".repeat(MAX_ERROR_DATA)
        );
        assert!(matches!(
            parse_answer(big.as_bytes()),
            Err(UpstreamError::Garbage(_))
        ));
    }

    #[test]
    fn budgets_bound_one_request_and_all_together() {
        let shared = Budget::shared(1000);
        let a = Budget::new(600, 1000, shared.clone());
        let b = Budget::new(600, 1000, shared.clone());
        a.take(400).unwrap();
        a.take(200).unwrap();
        // a's own bound: 600
        assert!(matches!(a.take(1), Err(UpstreamError::TooLarge(600))));
        assert!(matches!(a.fits(1), Err(UpstreamError::TooLarge(600))));
        // 600 of the shared 1000 are held by a: b may take 400, not 401
        assert!(matches!(b.take(401), Err(UpstreamError::Busy(1000))));
        b.take(400).unwrap();
        assert!(matches!(b.take(1), Err(UpstreamError::Busy(1000))));
        assert_eq!(shared.available_permits(), 0);
        // a request's share is released with its budget
        drop(a);
        assert_eq!(shared.available_permits(), 600);
        b.take(200).unwrap();
        assert!(matches!(b.take(1), Err(UpstreamError::TooLarge(600))));
    }

    #[test]
    fn debug_shows_no_path() {
        let cfg = RpcConfig {
            upstream: Some("http://127.0.0.1:8545/v3/secret-key".into()),
            ..RpcConfig::default()
        };
        let u = Upstream::from_config(&cfg).unwrap().unwrap();
        assert!(!format!("{u:?}").contains("secret-key"));
        assert_eq!(u.port, 8545);
        assert!(u.tls.is_none());
    }
}
