//! The one HTTPS client of the tests: a rustls client config from the test PKI, an async
//! HTTP/1.1 connection (hyper), and a blocking request for tests that drive a daemon
//! from plain threads.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keyward::pki::Issued;
use serde_json::Value;

use super::Env;

/// A TLS client trusting `ca_pem`, presenting `cert` when given (mTLS).
pub fn client_config(ca_pem: &str, cert: Option<&Issued>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    Arc::new(match cert {
        Some(i) => {
            let certs = rustls_pemfile::certs(&mut i.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = rustls_pemfile::private_key(&mut i.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            b.with_client_auth_cert(certs, key).unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

/// A TLS acceptor serving `issued` (no client certificates): for stand-ins of the
/// servers keyward itself calls.
pub fn acceptor(issued: &Issued) -> tokio_rustls::TlsAcceptor {
    let certs = rustls_pemfile::certs(&mut issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut issued.key_pem.as_bytes())
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
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// An open HTTP/1.1 connection over TLS. Several requests may share it.
pub struct Connection {
    pub sender: SendRequest<Full<Bytes>>,
    // the connection task sees why a connection died (e.g. the TLS alert a refused
    // certificate gets); a request only sees that it was cancelled
    died: Option<tokio::sync::oneshot::Receiver<Option<String>>>,
}

/// Connects to `addr` (server name `localhost`) with `tls`. `Err` when the TCP connect
/// or the handshake fails.
pub async fn connect(tls: Arc<rustls::ClientConfig>, addr: &str) -> Result<Connection, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let (tx, died) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(conn.await.err().map(|e| format!("{e:?}")));
    });
    Ok(Connection {
        sender,
        died: Some(died),
    })
}

/// A whole answer: status, headers, body (and the body as JSON, `Null` when it is not).
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub raw: Bytes,
    pub body: Value,
}

impl Answer {
    /// `error.code`, or "" when the answer has none.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        self.body.clone()
    }
}

impl Connection {
    /// One request on this connection. `Err` when the exchange fails at the connection
    /// level (a refused certificate, a reset), with the connection's own reason.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match self
            .sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // the reason comes once; a later failure on this connection has none
                let conn = match self.died.take() {
                    Some(died) => died.await.ok().flatten().unwrap_or_default(),
                    None => String::new(),
                };
                return Err(format!("request: {e}; connection: {conn}"));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            raw,
            body,
        })
    }
}

/// One request on a fresh connection.
pub async fn request(
    tls: Arc<rustls::ClientConfig>,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer, String> {
    connect(tls, addr)
        .await?
        .send(method, path, headers, body)
        .await
}

/// A blocking HTTPS request with the test client certificate (mTLS). `Err` when the
/// handshake or the connection fails; otherwise the status and the whole response text.
pub fn mtls_request(
    env: &Env,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    mtls_request_as(env, &env.pki.client, addr, method, path, body)
}

/// Like [`mtls_request`], presenting `client`'s certificate.
pub fn mtls_request_as(
    env: &Env,
    client: &Issued,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let cfg = client_config(&env.pki.ca.cert_pem, Some(client));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let body = body.unwrap_or("");
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // a peer that closes without close_notify after a complete response
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    Ok((status, text))
}
