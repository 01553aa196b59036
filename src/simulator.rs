//! The vendor simulator: builds webhook deliveries exactly as the vendor does and sends
//! them over HTTPS, for tests and demos.
//!
//! Owns: the vendor's side of the envelope (fresh AES-256 key per field, 16-byte IV by
//! default, RSA-OAEP-SHA256 under the appliance's public key, unpadded base64url, `kid`,
//! compact JSON, `x-dynamic-signature-256`), a freshly generated complete key as the
//! delegated share, and a small HTTPS client trusting one CA.
//! Must never: be used by the faces (it is a client), or print the key it generated;
//! the key is handed back only as [`SecretBytes`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::{Oaep, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::custody::SecretBytes;
use crate::store::wallets::Chain;
use crate::wallet_key;
use crate::webhook::verify;

/// A simulation that could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The appliance's token or config.
    #[error("{0}")]
    Setup(String),
    /// Encryption failed.
    #[error("encryption: {0}")]
    Crypto(String),
    /// The target URL is not usable.
    #[error("URL {0:?}: expected https://HOST[:PORT]/PATH")]
    Url(String),
    /// Connecting, TLS or HTTP failed.
    #[error("sending to {url}: {reason}")]
    Send {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Which event to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `wallet.delegation.created` with a fresh complete key.
    Delegation,
    /// `wallet.delegation.revoked`.
    Revoke,
    /// `ping`.
    Ping,
}

/// One delivery, ready to send.
pub struct Delivery {
    /// The event id.
    pub event_id: String,
    /// The event name.
    pub event_name: String,
    /// Compact JSON body.
    pub body: Vec<u8>,
    /// `sha256=<hex>`.
    pub signature: String,
    /// Wallet concerned.
    pub wallet_id: Option<String>,
    /// Its address (delegations).
    pub address: Option<String>,
    /// The complete key delivered (delegations).
    pub key: Option<SecretBytes>,
    /// The API key delivered (delegations).
    pub api_key: Option<SecretBytes>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event_id", &self.event_id)
            .field("event_name", &self.event_name)
            .field("wallet_id", &self.wallet_id)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The headers the vendor sends.
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            (verify::SIGNATURE_HEADER.into(), self.signature.clone()),
        ]
    }
}

/// The vendor's `chain` spelling.
pub fn vendor_chain(chain: Chain) -> &'static str {
    match chain {
        Chain::Evm => "EVM",
        Chain::Solana => "SVM",
    }
}

/// RFC 3339 with milliseconds, as the vendor writes timestamps.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The `environmentId` of simulated deliveries when `webhook.environment_ids` names none:
/// fixed, because a wallet answers only to the environment that delegated it, and a
/// simulated revoke (another run) must reach the simulated delegation.
pub const DEFAULT_ENVIRONMENT_ID: &str = "6b657977-6172-4400-8000-73696d756c61";

/// The vendor's side of a webhook: the appliance's public key and the shared secret.
pub struct Simulator {
    public: RsaPublicKey,
    kid: Option<String>,
    hmac_secret: SecretString,
    /// IV length for new envelopes (16 like the vendor's example, or 12).
    pub iv_len: usize,
    /// `environmentId` put in every delivery.
    pub environment_id: String,
}

impl Simulator {
    /// A simulator encrypting to `public` (announcing `kid`) and signing with `hmac_secret`.
    pub fn new(public: RsaPublicKey, kid: Option<String>, hmac_secret: SecretString) -> Self {
        Simulator {
            public,
            kid,
            hmac_secret,
            iv_len: 16,
            environment_id: DEFAULT_ENVIRONMENT_ID.to_owned(),
        }
    }

    /// One `ENCRYPTED` object for `plaintext`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<serde_json::Value, SimError> {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        let mut iv = vec![0u8; self.iv_len];
        OsRng.fill_bytes(&mut iv);
        let mut buf = plaintext.to_vec();
        let k = GenericArray::from_slice(key.as_ref());
        let tag = match self.iv_len {
            12 => AesGcm::<Aes256, U12>::new(k).encrypt_in_place_detached(
                GenericArray::from_slice(&iv),
                b"",
                &mut buf,
            ),
            16 => AesGcm::<Aes256, U16>::new(k).encrypt_in_place_detached(
                GenericArray::from_slice(&iv),
                b"",
                &mut buf,
            ),
            n => {
                return Err(SimError::Crypto(format!(
                    "IV length {n} (expected 12 or 16)"
                )))
            }
        }
        .map_err(|e| SimError::Crypto(e.to_string()))?;
        let ek = self
            .public
            .encrypt(&mut OsRng, Oaep::new::<Sha256>(), key.as_ref())
            .map_err(|e| SimError::Crypto(e.to_string()))?;
        let mut obj = serde_json::json!({
            "alg": "HYBRID-RSA-AES-256",
            "iv": URL_SAFE_NO_PAD.encode(&iv),
            "ct": URL_SAFE_NO_PAD.encode(&buf),
            "tag": URL_SAFE_NO_PAD.encode(tag),
            "ek": URL_SAFE_NO_PAD.encode(ek),
        });
        if let Some(kid) = &self.kid {
            obj["kid"] = kid.clone().into();
        }
        Ok(obj)
    }

    /// A signed delivery of `event_name` with `data`, at time `at`.
    pub fn delivery(
        &self,
        event_id: &str,
        event_name: &str,
        data: serde_json::Value,
        at: time::OffsetDateTime,
    ) -> Delivery {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Envelope<'a> {
            message_id: String,
            event_id: &'a str,
            event_name: &'a str,
            timestamp: String,
            webhook_id: String,
            user_id: String,
            environment_id: &'a str,
            environment_name: &'a str,
            data: serde_json::Value,
        }
        let body = serde_json::to_vec(&Envelope {
            message_id: uuid::Uuid::new_v4().to_string(),
            event_id,
            event_name,
            timestamp: timestamp(at),
            webhook_id: uuid::Uuid::new_v4().to_string(),
            user_id: uuid::Uuid::new_v4().to_string(),
            environment_id: &self.environment_id,
            environment_name: "sandbox",
            data,
        })
        .expect("JSON values serialize");
        let signature = verify::sign(&body, self.hmac_secret.expose_secret());
        Delivery {
            event_id: event_id.into(),
            event_name: event_name.into(),
            body,
            signature,
            wallet_id: None,
            address: None,
            key: None,
            api_key: None,
        }
    }

    /// `wallet.delegation.created` carrying a freshly generated complete key.
    pub fn delegation(&self, chain: Chain, wallet_id: &str) -> Result<Delivery, SimError> {
        self.delegation_at(chain, wallet_id, time::OffsetDateTime::now_utc())
    }

    /// As [`Simulator::delegation`], with the event time `at`.
    pub fn delegation_at(
        &self,
        chain: Chain,
        wallet_id: &str,
        at: time::OffsetDateTime,
    ) -> Result<Delivery, SimError> {
        let (key, address) = wallet_key::generate(chain);
        let share = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "keyShareId": uuid::Uuid::new_v4().to_string(),
                "secretShare": hex::encode(key.expose()),
                "pubkey": { "address": address },
            }))
            .expect("JSON"),
        );
        let mut api_key = Zeroizing::new([0u8; 24]);
        OsRng.fill_bytes(api_key.as_mut());
        let api_key =
            SecretBytes::new(format!("dyn_wak_{}", hex::encode(api_key.as_ref())).into_bytes());
        let mut d =
            self.delegation_with(chain, wallet_id, &address, &share, api_key.expose(), at)?;
        d.key = Some(key);
        d.api_key = Some(api_key);
        Ok(d)
    }

    /// `wallet.delegation.created` with a given share plaintext, address and API key.
    pub fn delegation_with(
        &self,
        chain: Chain,
        wallet_id: &str,
        public_key: &str,
        share_plaintext: &[u8],
        api_key: &[u8],
        at: time::OffsetDateTime,
    ) -> Result<Delivery, SimError> {
        let data = serde_json::json!({
            "chain": vendor_chain(chain),
            "walletId": wallet_id,
            "userId": uuid::Uuid::new_v4().to_string(),
            "publicKey": public_key,
            "encryptedDelegatedShare": self.encrypt(share_plaintext)?,
            "encryptedWalletApiKey": self.encrypt(api_key)?,
        });
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut d = self.delivery(&event_id, "wallet.delegation.created", data, at);
        d.wallet_id = Some(wallet_id.into());
        d.address = Some(public_key.into());
        Ok(d)
    }

    /// `wallet.delegation.revoked` at time `at`.
    pub fn revoke_at(&self, chain: Chain, wallet_id: &str, at: time::OffsetDateTime) -> Delivery {
        let data = serde_json::json!({ "walletId": wallet_id, "chain": vendor_chain(chain) });
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut d = self.delivery(&event_id, "wallet.delegation.revoked", data, at);
        d.wallet_id = Some(wallet_id.into());
        d
    }

    /// `wallet.delegation.revoked` now.
    pub fn revoke(&self, chain: Chain, wallet_id: &str) -> Delivery {
        self.revoke_at(chain, wallet_id, time::OffsetDateTime::now_utc())
    }

    /// The registration `ping`.
    pub fn ping(&self) -> Delivery {
        let event_id = uuid::Uuid::new_v4().to_string();
        self.delivery(
            &event_id,
            "ping",
            serde_json::json!({ "message": "ping" }),
            time::OffsetDateTime::now_utc(),
        )
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

struct Target {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, SimError> {
    let bad = || SimError::Url(url.to_owned());
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 443,
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
            None => (authority.to_owned(), 443),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Target {
        host,
        port,
        path: path.to_owned(),
    })
}

/// POSTs `body` with `headers` to the `https://` `url`, trusting only `ca_pem`.
pub async fn send(
    url: &str,
    ca_pem: &[u8],
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Result<Answer, SimError> {
    send_from(None, url, ca_pem, body, headers).await
}

/// As [`send`], from local address `bind` (tests use it to appear as another source).
pub async fn send_from(
    bind: Option<IpAddr>,
    url: &str,
    ca_pem: &[u8],
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Result<Answer, SimError> {
    request(bind, hyper::Method::POST, url, ca_pem, body, headers).await
}

/// One HTTPS request with any method, from local address `bind` when given.
pub async fn request(
    bind: Option<IpAddr>,
    method: hyper::Method,
    url: &str,
    ca_pem: &[u8],
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Result<Answer, SimError> {
    let t = parse_url(url)?;
    let fail = |reason: String| SimError::Send {
        url: url.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots
            .add(c.map_err(|e| fail(format!("CA: {e}")))?)
            .map_err(|e| fail(format!("CA: {e}")))?;
    }
    if roots.is_empty() {
        return Err(fail("no CA certificate given".into()));
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let addr: SocketAddr = match t.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, t.port),
        Err(_) => tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| fail(e.to_string()))?
            .next()
            .ok_or_else(|| fail("host has no address".into()))?,
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| fail(e.to_string()))?;
    if let Some(ip) = bind {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| fail(format!("bind {ip}: {e}")))?;
    }
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let name =
        rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| fail(e.to_string()))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let host_header = if t.port == 443 {
        t.host.clone()
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&t.path)
        .header("host", host_header);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes()
        .to_vec();
    Ok(Answer { status, body })
}

/// What a simulation did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationReport {
    /// HTTP status of the answer.
    pub status: u16,
    /// Answer body (the appliance's JSON).
    pub response: String,
    /// Event id sent.
    pub event_id: String,
    /// Event name sent.
    pub event_name: String,
    /// Wallet concerned.
    pub wallet_id: Option<String>,
    /// Its address (delegations).
    pub address: Option<String>,
    /// Chain (`evm` / `solana`).
    pub chain: String,
    /// Where it was sent.
    pub url: String,
}

/// Options beyond [`run_simulation`]'s arguments.
#[derive(Debug, Clone, Default)]
pub struct SimulationOptions {
    /// CA bundle to trust (default: `ca.pem` beside `webhook.cert`, else the certificate).
    pub ca: Option<PathBuf>,
    /// IV length (default 16).
    pub iv_len: Option<usize>,
}

/// The URL the appliance's webhook face answers on, as seen from this host.
pub fn default_url(config: &Config) -> String {
    let listen = config.webhook.listen;
    let ip = match listen.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let host = match ip {
        IpAddr::V6(v) => format!("[{v}]"),
        v4 => v4.to_string(),
    };
    format!("https://{host}:{}{}", listen.port(), config.webhook.path)
}

fn ca_for(config: &Config, explicit: Option<&Path>) -> Result<Vec<u8>, SimError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let cert = config.webhook.cert.as_ref().ok_or_else(|| {
                SimError::Setup("webhook.cert is not set; pass the CA explicitly".into())
            })?;
            let beside = cert.with_file_name("ca.pem");
            if beside.exists() {
                beside
            } else {
                cert.clone()
            }
        }
    };
    std::fs::read(&path).map_err(|e| SimError::Setup(format!("{}: {e}", path.display())))
}

/// Builds a delivery of `kind` the way the vendor does, from this appliance's public key
/// and HMAC secret, and sends it to `to` (default: the configured webhook face).
pub async fn run_simulation(
    config: &Config,
    kind: EventKind,
    chain: Chain,
    wallet_id: Option<String>,
    to: Option<String>,
) -> Result<SimulationReport, SimError> {
    run_simulation_with(
        config,
        kind,
        chain,
        wallet_id,
        to,
        SimulationOptions::default(),
    )
    .await
}

/// [`run_simulation`] with [`SimulationOptions`].
pub async fn run_simulation_with(
    config: &Config,
    kind: EventKind,
    chain: Chain,
    wallet_id: Option<String>,
    to: Option<String>,
    opts: SimulationOptions,
) -> Result<SimulationReport, SimError> {
    let cfg = config.clone();
    let (public, kid) = tokio::task::spawn_blocking(move || {
        let token =
            crate::appliance::open_token(&cfg).map_err(|e| SimError::Setup(e.to_string()))?;
        let keys = token
            .rsa_keys()
            .map_err(|e| SimError::Setup(e.to_string()))?;
        let newest = keys.last().ok_or_else(|| {
            SimError::Setup("no RSA key in the token (run `keyward init`)".into())
        })?;
        let public = newest
            .public
            .clone()
            .ok_or_else(|| SimError::Setup("the RSA key has no public part".into()))?;
        Ok::<_, SimError>((public, newest.fingerprint()))
    })
    .await
    .map_err(|e| SimError::Setup(e.to_string()))??;
    let secret = config
        .webhook
        .secrets
        .first()
        .ok_or_else(|| SimError::Setup("webhook.secrets is empty".into()))?
        .read()
        .map_err(|e| SimError::Setup(e.to_string()))?;
    let ca = ca_for(config, opts.ca.as_deref())?;
    let mut sim = Simulator::new(public, kid, secret);
    if let Some(n) = opts.iv_len {
        sim.iv_len = n;
    }
    if let Some(env) = config.webhook.environment_ids.first() {
        sim.environment_id = env.clone();
    }
    let wallet_id = wallet_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let delivery = match kind {
        EventKind::Delegation => sim.delegation(chain, &wallet_id)?,
        EventKind::Revoke => sim.revoke(chain, &wallet_id),
        EventKind::Ping => sim.ping(),
    };
    let url = to.unwrap_or_else(|| default_url(config));
    let answer = send(&url, &ca, delivery.body.clone(), &delivery.headers()).await?;
    Ok(SimulationReport {
        status: answer.status,
        response: String::from_utf8_lossy(&answer.body).into_owned(),
        event_id: delivery.event_id.clone(),
        event_name: delivery.event_name.clone(),
        wallet_id: delivery.wallet_id.clone(),
        address: delivery.address.clone(),
        chain: chain.as_str().into(),
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://127.0.0.1:8444/webhooks/dynamic").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8444, "/webhooks/dynamic")
        );
        let t = parse_url("https://[::1]/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert!(parse_url("http://x/").is_err());
    }

    #[test]
    fn timestamps_have_millis() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_735_689_600_123_000_000).unwrap();
        assert_eq!(timestamp(t), "2025-01-01T00:00:00.123Z");
    }
}
