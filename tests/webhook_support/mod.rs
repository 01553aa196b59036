//! Shared by the webhook test binaries: an in-process webhook face on loopback, an
//! independent envelope implementation, and a row dump of the database.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::net::IpAddr;
use std::sync::Arc;

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use keyward::appliance::{self, Appliance};
use keyward::config::Config;
use keyward::simulator::{self, Simulator};
use rand::RngCore;
use rsa::{Oaep, RsaPublicKey};
use secrecy::SecretString;
use sha2::Sha256;

use crate::common::{Env, HMAC_SECRET};

pub struct Harness {
    pub env: Env,
    pub app: Arc<Appliance>,
    pub url: String,
    pub base: String,
    pub ca: Vec<u8>,
    pub sim: Simulator,
    pub public: RsaPublicKey,
    pub rsa_label: String,
    stop: tokio::sync::watch::Sender<bool>,
}

pub const ALLOWED: &str = "127.0.0.2";
pub const DENIED: &str = "127.0.0.3";

pub async fn start(tweak: impl FnOnce(&mut Config)) -> Harness {
    let env = Env::new();
    appliance::init_keys(&env.token()).expect("init keys");
    let mut cfg = env.config();
    tweak(&mut cfg);
    let path = cfg.webhook.path.clone();
    let app = Arc::new(Appliance::open(cfg).expect("appliance opens"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(keyward::webhook::serve(app.clone(), listener, rx));
    let key = app.token.rsa_keys().unwrap().pop().unwrap();
    let public = key.public.clone().unwrap();
    let sim = Simulator::new(
        public.clone(),
        key.fingerprint(),
        SecretString::from(HMAC_SECRET.to_owned()),
    );
    let ca = env.pki.ca.cert_pem.clone().into_bytes();
    let base = format!("https://127.0.0.1:{port}");
    Harness {
        url: format!("{base}{path}"),
        base,
        env,
        app,
        ca,
        sim,
        public,
        rsa_label: key.label,
        stop,
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub struct Reply {
    pub status: u16,
    pub json: serde_json::Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub async fn raw(
        &self,
        from: &str,
        method: hyper::Method,
        url: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Reply {
        let ip: IpAddr = from.parse().unwrap();
        let a = simulator::request(Some(ip), method, url, &self.ca, body, headers)
            .await
            .expect("request");
        Reply {
            status: a.status,
            json: serde_json::from_slice(&a.body).unwrap_or(serde_json::Value::Null),
        }
    }

    /// POSTs a delivery from the allowed source.
    pub async fn deliver(&self, d: &simulator::Delivery) -> Reply {
        self.raw(
            ALLOWED,
            hyper::Method::POST,
            &self.url,
            d.body.clone(),
            &d.headers(),
        )
        .await
    }

    /// POSTs a JSON value signed with the test secret.
    pub async fn post_signed(&self, body: &[u8]) -> Reply {
        self.raw(
            ALLOWED,
            hyper::Method::POST,
            &self.url,
            body.to_vec(),
            &signed_headers(body),
        )
        .await
    }

    pub fn dump(&self) -> Vec<String> {
        crate::common::store::dump(self.app.store.path().unwrap())
    }
}

pub fn signed_headers(body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        (
            "x-dynamic-signature-256".into(),
            hmac_header(body, HMAC_SECRET),
        ),
    ]
}

/// Independent of keyward: HMAC-SHA256 as the vendor documents it.
pub fn hmac_header(body: &[u8], secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Knobs for [`encrypt`], to build broken envelopes too.
#[derive(Clone)]
pub struct Enc {
    pub iv_len: usize,
    pub kid: Option<String>,
    pub padded: bool,
    pub alg: &'static str,
    pub content_key_len: usize,
    pub flip_tag: bool,
}

impl Default for Enc {
    fn default() -> Self {
        Enc {
            iv_len: 12,
            kid: None,
            padded: false,
            alg: "RSA-OAEP-256",
            content_key_len: 32,
            flip_tag: false,
        }
    }
}

/// An ENCRYPTED object made directly with `rsa` and `aes-gcm` (not the simulator).
pub fn encrypt(public: &RsaPublicKey, plaintext: &[u8], o: &Enc) -> serde_json::Value {
    let mut rng = rand::rngs::OsRng;
    let mut key = vec![0u8; o.content_key_len];
    rng.fill_bytes(&mut key);
    let mut aes_key = [0u8; 32];
    let n = key.len().min(32);
    aes_key[..n].copy_from_slice(&key[..n]);
    let mut iv = vec![0u8; o.iv_len];
    rng.fill_bytes(&mut iv);
    let mut buf = plaintext.to_vec();
    let k = GenericArray::from_slice(&aes_key);
    let mut tag = match o.iv_len {
        12 => AesGcm::<Aes256, U12>::new(k)
            .encrypt_in_place_detached(GenericArray::from_slice(&iv), b"", &mut buf)
            .unwrap(),
        16 => AesGcm::<Aes256, U16>::new(k)
            .encrypt_in_place_detached(GenericArray::from_slice(&iv), b"", &mut buf)
            .unwrap(),
        _ => GenericArray::clone_from_slice(&[0u8; 16]),
    }
    .to_vec();
    if o.flip_tag {
        tag[0] ^= 1;
    }
    let ek = public
        .encrypt(&mut rng, Oaep::new::<Sha256>(), &key)
        .unwrap();
    let b = |x: &[u8]| {
        if o.padded {
            URL_SAFE.encode(x)
        } else {
            URL_SAFE_NO_PAD.encode(x)
        }
    };
    let mut v = serde_json::json!({
        "alg": o.alg, "iv": b(&iv), "ct": b(&buf), "tag": b(&tag), "ek": b(&ek),
    });
    if let Some(kid) = &o.kid {
        v["kid"] = kid.clone().into();
    }
    v
}

/// A fresh id (event, wallet, message), as the vendor makes them.
pub fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now_ts(offset_ms: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(offset_ms);
    simulator::timestamp(t)
}

/// A compact delivery body, built by hand.
pub fn body(
    event_id: &str,
    name: &str,
    ts: &str,
    env_id: &str,
    data: serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "messageId": uuid::Uuid::new_v4().to_string(),
        "eventId": event_id,
        "eventName": name,
        "timestamp": ts,
        "webhookId": uuid::Uuid::new_v4().to_string(),
        "userId": uuid::Uuid::new_v4().to_string(),
        "environmentId": env_id,
        "environmentName": "sandbox",
        "data": data,
    }))
    .unwrap()
}

#[allow(
    unused_imports,
    reason = "not every binary that has this module uses them"
)]
pub use crate::common::store::{count, dump};
