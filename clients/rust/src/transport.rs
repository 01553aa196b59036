//! mTLS over rustls (ring), HTTP/1.1 over hyper, a small pool of kept-alive connections.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::error::{classify, ApiError, Error};

/// The largest answer read (keyward's largest, a signed Solana transaction, is far below).
const MAX_ANSWER: usize = 4 << 20;
/// Kept-alive connections kept per client.
const POOL_MAX: usize = 8;

/// Client certificate, its key and the CA that signed keyward's server certificate.
#[derive(Clone)]
pub struct Tls {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the key
        f.debug_struct("Tls")
            .field("ca_certs", &self.ca.len())
            .field("chain_certs", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// From PEM bytes: the CA certificate(s), the client certificate (chain) and its key
    /// (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Tls, Error> {
        let certs = |pem: &[u8], what: &str| -> Result<Vec<CertificateDer<'static>>, Error> {
            let v = rustls_pemfile::certs(&mut &pem[..])
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Config(format!("{what}: {e}")))?;
            if v.is_empty() {
                return Err(Error::Config(format!("{what}: no PEM certificate")));
            }
            Ok(v)
        };
        let ca = certs(ca, "CA")?;
        let chain = certs(cert, "client certificate")?;
        let key = rustls_pemfile::private_key(&mut &key[..])
            // the parser's message never includes key bytes
            .map_err(|e| Error::Config(format!("client key: {e}")))?
            .ok_or_else(|| Error::Config("client key: no PEM private key".into()))?;
        Ok(Tls {
            ca,
            chain,
            key: Arc::new(key),
        })
    }

    /// From PEM files.
    pub fn from_files(
        ca: impl AsRef<std::path::Path>,
        cert: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<Tls, Error> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
        };
        Tls::from_pem(
            &read(ca.as_ref())?,
            &read(cert.as_ref())?,
            &read(key.as_ref())?,
        )
    }

    fn config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &self.ca {
            roots
                .add(c.clone())
                .map_err(|e| Error::Config(format!("CA: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| Error::Config(format!("client certificate/key: {e}")))?;
        Ok(Arc::new(cfg))
    }
}

/// Timeouts of a client.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// Sending one request and reading its whole answer.
    pub request: Duration,
    /// A kept-alive connection idle longer than this is closed rather than reused.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            idle: Duration::from_secs(30),
        }
    }
}

pub(crate) struct Transport {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    prefix: String,
    tls: tokio_rustls::TlsConnector,
    timeouts: Timeouts,
    pool: Mutex<Vec<Conn>>,
}

/// One HTTP/1.1 connection: its request handle, and how its connection task ended (a
/// server's TLS alert ends the task, while the request only learns it was canceled).
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    idle_since: Instant,
    fate: tokio::sync::oneshot::Receiver<hyper::Error>,
}

/// A raw answer: status, `Retry-After`, body.
pub(crate) struct Raw {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Bytes,
}

impl Transport {
    pub(crate) fn new(url: &str, tls: &Tls, timeouts: Timeouts) -> Result<Transport, Error> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("url {url:?}: {e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(Error::Config(format!(
                "url {url:?}: keyward is served over https only"
            )));
        }
        let host = uri
            .host()
            .ok_or_else(|| Error::Config(format!("url {url:?}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| Error::Config(format!("url {url:?}: {e}")))?;
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Transport {
            port: uri.port_u16().unwrap_or(443),
            host,
            server_name,
            prefix,
            tls: tokio_rustls::TlsConnector::from(tls.config()?),
            timeouts,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The same settings with a pool of its own (connections are driven by the runtime
    /// that opened them: a synchronous bridge must not wait on another runtime's).
    pub(crate) fn detached(&self) -> Transport {
        Transport {
            host: self.host.clone(),
            port: self.port,
            server_name: self.server_name.clone(),
            prefix: self.prefix.clone(),
            tls: self.tls.clone(),
            timeouts: self.timeouts,
            pool: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<Conn, Error> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(Error::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| classify(&e, |m| Error::Connect(std::io::Error::other(m))))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| classify(&e, Error::Http))?;
        let (tx, fate) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // ends when the server or the pool drops the connection
            if let Err(e) = conn.await {
                let _ = tx.send(e);
            }
        });
        Ok(Conn {
            sender,
            idle_since: Instant::now(),
            fate,
        })
    }

    /// A kept-alive connection if one is ready, else a new one.
    async fn sender(&self) -> Result<(Conn, bool), Error> {
        loop {
            let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some(mut c) => {
                    if c.idle_since.elapsed() < self.timeouts.idle
                        && !c.sender.is_closed()
                        && c.sender.ready().await.is_ok()
                    {
                        return Ok((c, true));
                    }
                }
                None => break,
            }
        }
        let c = tokio::time::timeout(self.timeouts.connect, self.connect())
            .await
            .map_err(|_| Error::Timeout(self.timeouts.connect, "connect and TLS handshake"))??;
        Ok((c, false))
    }

    /// One request. A kept-alive connection that turns out closed before the request was
    /// written (the server closed it while idle) is replaced once; a request that may have
    /// reached keyward is retried only when it carries an `Idempotency-Key`.
    pub(crate) async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Raw, Error> {
        let t = self.timeouts.request;
        let attempt = async {
            let mut tries = 0;
            loop {
                tries += 1;
                let (mut c, reused) = self.sender().await?;
                let req = self.request(&method, path, body.clone(), idempotency_key)?;
                match c.sender.try_send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let retry_after = resp
                            .headers()
                            .get(hyper::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse().ok());
                        let keep = resp
                            .headers()
                            .get(hyper::header::CONNECTION)
                            .is_none_or(|v| !v.as_bytes().eq_ignore_ascii_case(b"close"));
                        let body = Limited::new(resp.into_body(), MAX_ANSWER)
                            .collect()
                            .await
                            .map_err(|e| classify(&*e, Error::Http))?
                            .to_bytes();
                        if keep {
                            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
                            if pool.len() < POOL_MAX {
                                c.idle_since = Instant::now();
                                pool.push(c);
                            }
                        }
                        return Ok(Raw {
                            status,
                            retry_after,
                            body,
                        });
                    }
                    Err(mut e) => {
                        let unsent = e.take_message().is_some();
                        let retry = tries < 2 && reused && (unsent || idempotency_key.is_some());
                        if !retry {
                            // the connection's own end says why (a TLS alert: a client
                            // certificate refused after a TLS 1.3 handshake)
                            if let Ok(conn_err) = (&mut c.fate).await {
                                if let tls @ Error::Tls(_) = classify(&conn_err, Error::Http) {
                                    return Err(tls);
                                }
                            }
                            return Err(classify(e.error(), Error::Http));
                        }
                    }
                }
            }
        };
        tokio::time::timeout(t, attempt)
            .await
            .map_err(|_| Error::Timeout(t, "request"))?
    }

    fn request(
        &self,
        method: &hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<hyper::Request<Full<Bytes>>, Error> {
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut b = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, host)
            .header(hyper::header::ACCEPT, "application/json");
        if body.is_some() {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(k) = idempotency_key {
            b = b.header("idempotency-key", k);
        }
        b.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Config(format!("request: {e}")))
    }
}

/// The answer as `T` when 2xx, else keyward's error body as [`Error::Api`].
pub(crate) fn decode<T: serde::de::DeserializeOwned>(raw: Raw) -> Result<T, Error> {
    if (200..300).contains(&raw.status) {
        return serde_json::from_slice(&raw.body).map_err(|e| {
            Error::answer(format_args!(
                "{} answer is not the expected JSON: {e}",
                raw.status
            ))
        });
    }
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
        #[serde(rename = "auditId")]
        audit_id: Option<String>,
        #[serde(rename = "matchedRules", default)]
        matched_rules: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        #[serde(default)]
        message: String,
        rule: Option<String>,
    }
    match serde_json::from_slice::<Body>(&raw.body) {
        Ok(b) => Err(Error::Api(Box::new(ApiError {
            status: raw.status,
            code: b.error.code,
            message: b.error.message,
            rule: b.error.rule,
            matched_rules: b.matched_rules,
            audit_id: b.audit_id,
            retry_after: raw.retry_after,
        }))),
        Err(_) => Err(Error::answer(format_args!(
            "HTTP {} without a keyward error body",
            raw.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(url: &str) -> Result<Transport, Error> {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let pem = ck.cert.pem();
        let tls = Tls::from_pem(
            pem.as_bytes(),
            pem.as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )?;
        Transport::new(url, &tls, Timeouts::default())
    }

    #[test]
    fn idempotency_key_is_sent_only_when_asked() {
        let t = transport("https://keyward.example:9443/prefix/").unwrap();
        let r = t
            .request(
                &hyper::Method::POST,
                "/v1/x",
                Some(b"{}".to_vec()),
                Some("k-1"),
            )
            .unwrap();
        assert_eq!(r.headers()["idempotency-key"], "k-1");
        assert_eq!(r.headers()["host"], "keyward.example:9443");
        assert_eq!(r.uri(), "/prefix/v1/x");
        let r = t
            .request(&hyper::Method::POST, "/v1/x", Some(b"{}".to_vec()), None)
            .unwrap();
        assert!(!r.headers().contains_key("idempotency-key"));
    }

    #[test]
    fn plain_http_and_bad_pem_are_configuration_errors() {
        let e = transport("http://127.0.0.1:8443").err().unwrap();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("https only")),
            "{e:?}"
        );
        let e = Tls::from_pem(b"nothing", b"nothing", b"nothing").unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m == "CA: no PEM certificate"),
            "{e:?}"
        );
    }
}
