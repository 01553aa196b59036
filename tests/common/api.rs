//! The signing API in-process on loopback (real mTLS, token, SQLite file) and an HTTPS
//! client presenting test client certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use keyward::appliance::{Appliance, LOCK_KEY};
use keyward::custody::{self, Binding, Purpose};
use keyward::pki::{Issued, Validity};
use keyward::store::wallets::{self as rows, Chain, Engine, Source, Status, Wallet};
use keyward::store::{audit, state};
use keyward::wallet_key;
use serde_json::Value;

pub use super::https::Answer;
use super::https::{client_config, request};
use super::Env;

/// The grants of the API test servers: a client with every operation but raw digests,
/// one with raw digests on `label:hot`, and a URI-SAN identity on Solana messages.
pub const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "evm.authorization", "evm.user_operation", "solana.message", "solana.transaction"]

[[clients]]
identity = "hash-client"
wallets = ["label:hot"]
operations = ["evm.hash", "evm.message"]

[[clients]]
identity = "spiffe://keyward.test/svc/payments"
wallets = ["chain:solana"]
operations = ["solana.message"]
"#;

/// A running signing API over its own environment (until the test's runtime ends).
pub struct Server {
    pub env: Env,
    pub app: Arc<Appliance>,
    pub addr: SocketAddr,
}

/// A fresh environment with `extra` appended to its config (grants, policy), served.
pub async fn start(extra: &str) -> Server {
    start_in(Env::with_extra(extra)).await
}

/// Serves the signing API of `env` (token keys created first).
pub async fn start_in(env: Env) -> Server {
    start_with(env, |app| keyward::api::Api::new(app.clone())).await
}

/// Serves the API that `service` builds over the appliance of `env` (a test signer,
/// stand-in engines).
pub async fn start_with(
    env: Env,
    service: impl FnOnce(&Arc<Appliance>) -> keyward::api::Api,
) -> Server {
    let app = Arc::new(env.appliance());
    let addr = serve(app.clone(), service(&app)).await;
    Server { env, app, addr }
}

/// Serves `service` (the signing API over `app`) in-process on a fresh loopback port,
/// until the test's runtime ends; returns the address.
pub async fn serve(app: Arc<Appliance>, service: keyward::api::Api) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _stop = stop;
        keyward::api::serve_with(app, service, listener, rx)
            .await
            .expect("api serves");
    });
    addr
}

/// An mTLS client of one server.
#[derive(Clone)]
pub struct Client {
    pub tls: Arc<rustls::ClientConfig>,
    pub addr: SocketAddr,
}

impl Client {
    /// Trusting the environment's CA, presenting `cert` when given.
    pub fn new(env: &Env, addr: SocketAddr, cert: Option<&Issued>) -> Client {
        Client {
            tls: client_config(&env.pki.ca.cert_pem, cert),
            addr,
        }
    }

    /// One request on a fresh connection. `Err` when the handshake, the request or the
    /// response fails at the connection level (a refused certificate, a reset).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| vec![("content-type", ct)])
            .unwrap_or_default();
        self.send_with(method, path, &headers, body).await
    }

    /// Like [`Client::send`], with any headers.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        request(
            self.tls.clone(),
            &self.addr.to_string(),
            method,
            path,
            headers,
            body,
        )
        .await
    }

    /// For a client the server must refuse: connects, sends a request, and returns the
    /// TLS error that ended the connection (it names the alert the server sent, e.g.
    /// `AlertReceived(CertificateExpired)`). Fails the test if any HTTP answer comes.
    pub async fn refusal(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut tls = match tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect("localhost".try_into().unwrap(), tcp)
            .await
        {
            // TLS 1.2, or a refusal the server sent before the client finished
            Err(e) => return format!("{e:?}"),
            Ok(t) => t,
        };
        // TLS 1.3: the client finishes first; the server's alert arrives on the next read
        let written = tls
            .write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        let mut out = Vec::new();
        match (written, tls.read_to_end(&mut out).await) {
            (Err(e), _) | (_, Err(e)) => format!("{e:?}"),
            (Ok(()), Ok(_)) => panic!(
                "refused client got an answer: {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, Vec::new()).await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            "POST",
            path,
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap()
    }
}

impl Server {
    /// The environment's own client certificate (`test-client`).
    pub fn client(&self) -> Client {
        Client::new(&self.env, self.addr, Some(&self.env.pki.client))
    }

    /// POSTs `body` as `test-client`.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.client().post(path, body).await
    }

    /// A client presenting `cert`.
    pub fn client_with(&self, cert: &Issued) -> Client {
        Client::new(&self.env, self.addr, Some(cert))
    }

    /// A certificate from the environment's CA for `cn` (and a URI SAN).
    pub fn client_as(&self, cn: &str, uri: Option<&str>, serial: u64) -> Client {
        let cert = self
            .env
            .pki
            .ca
            .client(cn, uri, Validity::Current, serial)
            .unwrap();
        Client::new(&self.env, self.addr, Some(&cert))
    }

    /// Imports a hex key as a wallet.
    pub fn import(&self, chain: Chain, hex_key: &str, label: Option<&str>) -> Wallet {
        keyward::wallets::import(
            &self.app,
            chain,
            wallet_key::parse_secret_hex(hex_key).unwrap(),
            label,
        )
        .unwrap()
    }

    /// The audit record `id` (fails the test when there is none).
    pub fn record(&self, id: &str) -> audit::AuditRecord {
        let id = id.to_owned();
        self.app
            .store
            .read(move |c| audit::get(c, &id))
            .unwrap()
            .expect("audit record exists")
    }

    /// Fails the test unless the audit record `audit_id` (a JSON string, as answers carry
    /// it) has this decision and result.
    pub fn assert_audited(&self, audit_id: &Value, decision: &str, result: &str) {
        let id = audit_id.as_str().expect("an auditId");
        let rec = self.record(id);
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            (decision, result),
            "audit record {id}"
        );
    }

    /// Writes a wallet row as given (behind the API's back).
    pub fn put(&self, w: Wallet) {
        self.app
            .store
            .write_blocking(move |ctx| rows::upsert(ctx.conn, &w))
            .unwrap();
    }

    /// An `mpc` (delegated) wallet at `address` holding `share` and, when given, the
    /// wallet's API key, wrapped as the webhook path wraps them; written behind the API's
    /// back.
    pub fn put_mpc(
        &self,
        chain: Chain,
        address: String,
        share: &[u8],
        api_key: Option<&[u8]>,
    ) -> Wallet {
        let id = uuid::Uuid::new_v4().to_string();
        let version = self.app.token.current_wrap_version().unwrap();
        let wrap = |purpose, bytes: &[u8]| {
            custody::wrap(
                &self.app.token,
                &Binding {
                    wallet_id: &id,
                    chain: chain.as_str(),
                    purpose,
                },
                version,
                bytes,
            )
            .unwrap()
        };
        let now = keyward::store::now_rfc3339();
        let w = Wallet {
            id: id.clone(),
            chain,
            address: Some(address),
            label: None,
            source: Source::Delegation,
            engine: Engine::Mpc,
            status: Status::Active,
            key_version: Some(version),
            wrapped_share: Some(wrap(Purpose::Share, share)),
            wrapped_api_key: api_key.map(|k| wrap(Purpose::ApiKey, k)),
            environment_id: None,
            user_id: None,
            delegated_at_ms: None,
            revoked_at_ms: None,
            created_at: now.clone(),
            updated_at: now,
            public_key: None,
        };
        self.put(w.clone());
        w
    }

    /// The audit record's `detail`, as JSON.
    pub fn detail(&self, id: &str) -> Value {
        serde_json::from_str(self.record(id).detail.as_deref().unwrap()).unwrap()
    }

    /// Sets (or with `None` lifts) the operator's lock, behind the API's back.
    pub fn lock(&self, reason: Option<&'static str>) {
        self.app
            .store
            .write_blocking(move |ctx| state::set(ctx.conn, LOCK_KEY, reason))
            .unwrap();
    }

    /// The database file.
    pub fn db(&self) -> &std::path::Path {
        self.app
            .store
            .path()
            .expect("the harness store is a SQLite file")
    }
}

/// The API path of a wallet's route.
pub fn path(wallet: &Wallet, route: &str) -> String {
    format!("/v1/wallets/{}/{route}", wallet.id)
}
