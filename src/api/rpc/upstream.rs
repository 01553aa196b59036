//! The `[rpc] upstream` Ethereum node: a small JSON-RPC client over hyper (HTTP/1.1) and
//! tokio-rustls. One connection per call (no pool): calls are few per request (filling a
//! transaction takes at most four, plus the send), and a fresh connection never fails on
//! a socket the node closed while it sat idle.
//!
//! Bounded: every call (connect, TLS, request, whole answer) within `upstream_timeout`,
//! and the answer within [`MAX_ANSWER`] bytes. Must never: follow redirects, send
//! anything but the JSON-RPC request it was given, or put the node's raw answer in a log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::config::rpc::RpcConfig;

/// Largest upstream answer read (a forwarded `eth_getLogs` or block can be large).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

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
    /// The answer is larger than [`MAX_ANSWER`].
    #[error("the upstream node's answer exceeds {MAX_ANSWER} bytes")]
    TooLarge,
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
    pub async fn chain_id(&self) -> Result<u64, UpstreamError> {
        self.chain_id
            .get_or_try_init(|| async {
                let v = self.call("eth_chainId", json!([])).await?;
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
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        match self.forward(method, params).await? {
            Ok(v) => Ok(v),
            Err(error) => Err(UpstreamError::Refused {
                method: method.to_owned(),
                error,
            }),
        }
    }

    /// Calls `method` and returns the node's result or its JSON-RPC error object.
    pub async fn forward(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, RpcErrorObject>, UpstreamError> {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let bytes = serde_json::to_vec(&body).map_err(|e| UpstreamError::Http(e.to_string()))?;
        let answer = tokio::time::timeout(self.timeout, self.post(bytes))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout))??;
        parse_answer(&answer)
    }

    async fn post(&self, body: Vec<u8>) -> Result<Bytes, UpstreamError> {
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
                self.exchange(TokioIo::new(tls), body).await
            }
            None => self.exchange(TokioIo::new(tcp), body).await,
        }
    }

    async fn exchange<T>(&self, io: TokioIo<T>, body: Vec<u8>) -> Result<Bytes, UpstreamError>
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
        let bytes = match Limited::new(resp.into_body(), MAX_ANSWER).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(UpstreamError::TooLarge)
            }
            Err(e) => return Err(UpstreamError::Http(e.to_string())),
        };
        // a node may put a JSON-RPC error under a 4xx/5xx status: the body decides, and
        // the status is named only when the body is not JSON-RPC
        if !status.is_success() && serde_json::from_slice::<Value>(&bytes).is_err() {
            return Err(UpstreamError::Garbage(format!("HTTP {status}")));
        }
        Ok(bytes)
    }
}

/// The result or error of a single JSON-RPC answer.
fn parse_answer(bytes: &[u8]) -> Result<Result<Value, RpcErrorObject>, UpstreamError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|_| UpstreamError::Garbage("the body is not JSON".into()))?;
    let Value::Object(mut m) = v else {
        return Err(UpstreamError::Garbage(
            "the body is not a JSON object".into(),
        ));
    };
    if let Some(e) = m.remove("error").filter(|e| !e.is_null()) {
        let code = e.get("code").and_then(Value::as_i64);
        let message = e.get("message").and_then(Value::as_str);
        return match (code, message) {
            (Some(code), Some(message)) => Ok(Err(RpcErrorObject {
                code,
                // the node's text goes back to the client: bounded
                message: message.chars().take(1024).collect(),
                data: e.get("data").cloned(),
            })),
            _ => Err(UpstreamError::Garbage(
                "an error without an integer code and a message".into(),
            )),
        };
    }
    match m.remove("result") {
        Some(r) => Ok(Ok(r)),
        None => Err(UpstreamError::Garbage("neither result nor error".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_strictly() {
        assert_eq!(
            parse_answer(br#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#).unwrap(),
            Ok(json!("0x1"))
        );
        assert_eq!(
            parse_answer(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).unwrap(),
            Ok(Value::Null)
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
        ] {
            assert!(
                matches!(parse_answer(bad), Err(UpstreamError::Garbage(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
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
