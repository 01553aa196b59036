//! What both faces share about HTTP: the JSON error shape, JSON responses, bounded body
//! reading, and the TLS accept loop. Faces build on this; they never import each other.

pub mod admission;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

/// Every response body keyward sends.
pub type Body = Full<Bytes>;

/// A refusal: HTTP status, stable machine-readable code, human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// Human explanation; never contains secrets.
    pub message: String,
}

impl Refusal {
    /// A refusal.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    /// `{"error": {"code", "message"}}` plus optional extra fields.
    pub fn into_response(self, extra: Option<serde_json::Value>) -> Response<Body> {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let (Some(serde_json::Value::Object(extra)), Some(obj)) = (extra, error.as_object_mut())
        {
            obj.extend(extra);
        }
        json(self.status, &serde_json::json!({ "error": error }))
    }
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// A plain-text response.
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// Bytes read and thrown away after a body passed its limit, so that a client still
/// writing sees the 413 instead of a connection reset (closing with unread data makes the
/// kernel send RST, which can destroy the answer before the client reads it). A body
/// larger still is cut off.
const DRAIN_AFTER_LIMIT: usize = 4 * 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes (413).
pub async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, Refusal> {
    let mut buf = bytes::BytesMut::new();
    let mut over = false;
    let mut drained = 0usize;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(_)) if !over => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "body_unreadable",
                    "request body could not be read",
                ))
            }
            Some(Err(_)) => break,
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if over {
                    drained += data.len();
                    if drained > DRAIN_AFTER_LIMIT {
                        break;
                    }
                } else if buf.len() + data.len() > limit {
                    over = true;
                    drained = buf.len() + data.len() - limit;
                    buf = bytes::BytesMut::new();
                } else {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    if over {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// Runs `fut`, turning a panic inside it into a 500 `internal_error` refusal. A bug
/// reachable by one request (in keyward or a parser it calls) must cost that request,
/// not the connection or the process. The panic message is logged (the default hook has
/// printed it with its location already); the answer says nothing about it.
pub async fn catch_panic<T>(fut: impl Future<Output = T>) -> Result<T, Refusal> {
    use futures_util::FutureExt;
    // unwind safety: after a panic nothing the future borrowed is trusted except what
    // callers re-check (the audit draft is written as it stands, marked internal_error)
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|payload| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let what: String = what.chars().take(200).collect();
            tracing::error!(panic = %what, "request handler panicked; answered 500");
            internal_error()
        })
}

fn internal_error() -> Refusal {
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error ended this request; nothing was signed",
    )
}

/// A process-unique request id: a random per-process prefix and a counter (cheap, and
/// unique across restarts in practice).
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| format!("{:08x}", rand::random::<u32>()));
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A TLS handshake must complete within this, or the connection is closed.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// A request's headers must arrive within this (idle keep-alive connections included).
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Conn {
    /// TCP peer.
    pub peer: SocketAddr,
    /// Identity from a verified client certificate, when mTLS is on.
    pub identity: Option<String>,
}

/// Why a handshake failed, as a bounded metric label: what an operator acts on (a revoked
/// or expired client certificate, one from another CA, none at all, a stale CRL), else
/// `protocol` (a client that does not speak TLS as configured) or `io`.
fn handshake_reason(e: &std::io::Error) -> &'static str {
    use rustls::{CertificateError as C, Error};
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(c)) => match c {
            C::Revoked => "revoked",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::UnknownIssuer => "unknown_issuer",
            C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => "crl_expired",
            _ => "bad_certificate",
        },
        Some(Error::NoCertificatesPresented) => "no_certificate",
        // the verifier's own refusals (several URI SANs)
        Some(Error::General(_)) => "bad_certificate",
        Some(_) => "protocol",
        None => "io",
    }
}

/// Accepts TLS connections on `listener` until `shutdown` resolves, serving each with
/// HTTP/1.1 keep-alive. `gate` may refuse a connection before the handshake (by peer).
pub async fn serve<H, F>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    admission: Arc<admission::Admission>,
    handler: Arc<H>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, Arc<Conn>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut stop = shutdown.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // before TLS: a refused peer gets its connection closed, not a ServerHello
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(%peer, reason = ?why, "connection closed at accept");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        let admission = admission.clone();
        let mut conn_stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake refused");
                    crate::metrics::handshake_failed(admission.face(), handshake_reason(&e));
                    return;
                }
                Err(_) => {
                    crate::metrics::handshake_failed(admission.face(), "timeout");
                    return;
                }
            };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(crate::tls::client_identity);
            let conn = Arc::new(Conn { peer, identity });
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let id = request_id();
                // every log line of this request carries these fields (never a body)
                let span = tracing::info_span!(
                    "request",
                    id = %id,
                    peer = %conn.peer,
                    client = conn.identity.as_deref().unwrap_or("-"),
                    method = %req.method(),
                    path = %req.uri().path(),
                );
                // building the future runs handler code too
                let fut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handler(req, conn.clone())
                }));
                async move {
                    let started = std::time::Instant::now();
                    let mut resp = match fut {
                        Ok(fut) => catch_panic(fut).await,
                        Err(_) => {
                            tracing::error!("request handler panicked; answered 500");
                            Err(internal_error())
                        }
                    }
                    .unwrap_or_else(|r| r.into_response(None));
                    let status = resp.status().as_u16();
                    let micros = started.elapsed().as_micros() as u64;
                    // refusals at info, successes at debug: the audit chain is the record of
                    // signatures, and an info line per signature would cost throughput
                    if status >= 400 {
                        tracing::info!(status, micros, "request refused");
                    } else {
                        tracing::debug!(status, micros, "request done");
                    }
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&id) {
                        resp.headers_mut().insert("x-request-id", v);
                    }
                    Ok::<_, Infallible>(resp)
                }
                .instrument(span)
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            // hyper panics on a read timeout without a timer, so the timer comes with it
            let http = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive(true)
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(io, service);
            tokio::pin!(http);
            tokio::select! {
                r = http.as_mut() => { if let Err(e) = r { tracing::debug!(%peer, error = %e, "connection ended"); } }
                _ = conn_stop.changed() => {
                    http.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), http).await;
                }
            }
        });
    }
}
