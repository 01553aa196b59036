//! The bad-input corpus of the webhook face, through the real listener (TLS on loopback,
//! source allowlist, HMAC, SoftHSM2 token, SQLite file). Each case is (request, expected
//! status, expected code). For every case the harness checks the exact status and code
//! and a message, and that nothing changed: the store state (every table but the audit
//! chain, `common::store::state`) and the audit chain itself, since the webhook face
//! audits only events it processed (a refusal, a replay, a conflict writes nothing).

#[path = "../common/mod.rs"]
mod common;
mod crypto;
mod encodings;
mod framing;
mod identifiers;
mod identity;
mod ranges;
mod replay;
mod shape;
mod types;

#[path = "../webhook_support/mod.rs"]
mod webhook_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use common::corpus::{self, Expect, Tap};
use common::store::AuditRow;
use hyper::Method;
use keyward::simulator::Delivery;
use keyward::store::wallets::Chain;
use keyward::wallet_key;
use serde_json::{json, Value};
use webhook_support::*;

/// A delivery of the webhook corpus.
struct Req {
    from: &'static str,
    method: Method,
    url: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

type Class<'a> = corpus::Class<'a, Req>;

impl Class<'_> {
    /// A POST from the allowed source with these headers.
    fn post(
        &mut self,
        name: impl Into<String>,
        url: &str,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        expect: Expect,
    ) {
        let req = Req {
            from: ALLOWED,
            method: Method::POST,
            url: url.to_owned(),
            body,
            headers,
        };
        self.push(name, req, expect);
    }

    /// Bytes signed with the configured secret, POSTed from the allowed source.
    fn signed(&mut self, name: impl Into<String>, url: &str, body: Vec<u8>, e: Expect) {
        let headers = signed_headers(&body);
        self.post(name, url, body, headers, e);
    }

    /// A JSON envelope, signed.
    fn json(&mut self, name: impl Into<String>, url: &str, v: &Value, e: Expect) {
        self.signed(name, url, serde_json::to_vec(v).unwrap(), e);
    }
}

/// The webhook listener under the corpus: a refused delivery is never audited.
struct Webhook<'a>(&'a Harness);

impl corpus::Face<Req> for Webhook<'_> {
    async fn send(&self, req: &Req) -> Result<corpus::Answer, String> {
        let r = self
            .0
            .raw(
                req.from,
                req.method.clone(),
                &req.url,
                req.body.clone(),
                &req.headers,
            )
            .await;
        // a 200 is a duplicate: its `status` stands for the code
        let code = match r.status {
            200 => r.json["status"].as_str().unwrap_or(""),
            _ => r.code(),
        };
        Ok(corpus::Answer {
            status: r.status,
            code: code.to_owned(),
            message: r.json["error"]["message"].as_str().map(str::to_owned),
            audit_id: None,
            shown: r.json.to_string(),
        })
    }

    fn audited(
        &self,
        _: &corpus::Case<Req>,
        _: &corpus::Answer,
        written: &[AuditRow],
    ) -> Result<(), String> {
        match written.is_empty() {
            true => Ok(()),
            false => Err(format!("audited: {written:?}")),
        }
    }
}

/// A complete, valid envelope from `env-a`, now.
fn envelope(name: &str, data: Value) -> Value {
    json!({
        "messageId": id(),
        "eventId": id(),
        "eventName": name,
        "timestamp": now_ts(0),
        "webhookId": id(),
        "userId": id(),
        "environmentId": "env-a",
        "environmentName": "sandbox",
        "data": data,
    })
}

fn remove(v: Value, key: &str) -> Value {
    v.tap(|v| {
        v.as_object_mut().unwrap().remove(key);
    })
}

/// What a valid `created` is made of, to break one part at a time.
struct Material {
    public: rsa::RsaPublicKey,
    share: Vec<u8>,
    address: String,
}

impl Material {
    fn new(h: &Harness) -> Material {
        let (key, address) = wallet_key::generate(Chain::Evm);
        Material {
            public: h.public.clone(),
            share: format!(r#"{{"secretShare":"{}"}}"#, hex::encode(key.expose())).into_bytes(),
            address,
        }
    }

    fn enc(&self, plaintext: &[u8], o: &Enc) -> Value {
        encrypt(&self.public, plaintext, o)
    }

    /// `data` of a valid EVM `created` for a fresh wallet id.
    fn data(&self) -> Value {
        json!({
            "chain": "EVM", "walletId": id(), "publicKey": self.address,
            "encryptedDelegatedShare": self.enc(&self.share, &Enc::default()),
            "encryptedWalletApiKey": self.enc(b"dyn_api_key", &Enc::default()),
        })
    }

    fn created(&self, f: impl FnOnce(&mut Value)) -> Value {
        envelope("wallet.delegation.created", self.data().tap(f))
    }
}

fn b64(b: &[u8]) -> String {
    B64URL.encode(b)
}

const MALFORMED: (u16, &str) = (400, "payload_malformed");
const ENV_MALFORMED: (u16, &str) = (422, "envelope_malformed");

/// What the cases are built from: the harness, a valid delivery and envelope, and the
/// deliveries and wallets the store was seeded with.
struct Ctx<'a> {
    h: &'a Harness,
    m: Material,
    url: String,
    good: Delivery,
    ping: Value,
    ping_text: String,
    evm_wid: String,
    sol_wid: String,
    tomb_wid: String,
    seed_created: Delivery,
    seed_sol: Delivery,
    seed_revoke: Delivery,
    seed_ping: Delivery,
    generated: keyward::store::wallets::Wallet,
}

type Case = corpus::Case<Req>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_delivery_has_its_code_and_changes_nothing() {
    let mut h = start(|c| {
        c.webhook.environment_ids = vec!["env-a".into(), "env-b".into()];
        c.webhook.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        // the corpus is one burst from one source; the limits have their own test
        c.webhook.per_source_rate = 100_000;
    })
    .await;
    h.sim.environment_id = "env-a".into();

    // the store holds a bit of everything, so "nothing changed" means something
    let evm_wid = id();
    let seed_created = h.sim.delegation(Chain::Evm, &evm_wid).unwrap();
    let sol_wid = id();
    let seed_sol = h.sim.delegation(Chain::Solana, &sol_wid).unwrap();
    let tomb_wid = id();
    let seed_revoke = h.sim.revoke(Chain::Evm, &tomb_wid);
    let seed_ping = h.sim.ping();
    for d in [&seed_created, &seed_sol, &seed_revoke, &seed_ping] {
        let r = h.deliver(d).await;
        assert_eq!(r.status, 200, "seed {}: {}", d.event_name, r.json);
        assert_eq!(r.json["status"], "processed");
    }
    let generated = keyward::wallets::create(&h.app, Chain::Evm, Some("local")).unwrap();

    let m = Material::new(&h);
    let url = h.url.clone();
    let good = h.sim.ping();
    let ping = envelope("ping", json!({}));
    let ping_text = serde_json::to_string(&ping).unwrap();
    let x = Ctx {
        h: &h,
        m,
        url,
        good,
        ping,
        ping_text,
        evm_wid: evm_wid.clone(),
        sol_wid,
        tomb_wid,
        seed_created,
        seed_sol,
        seed_revoke,
        seed_ping,
        generated,
    };
    let mut cases = Vec::new();
    framing::cases(&x, &mut cases);
    crypto::cases(&x, &mut cases);
    shape::cases(&x, &mut cases);
    types::cases(&x, &mut cases);
    ranges::cases(&x, &mut cases);
    encodings::cases(&x, &mut cases);
    identifiers::cases(&x, &mut cases);
    replay::cases(&x, &mut cases);
    identity::cases(&x, &mut cases);

    corpus::assert_distinct(&cases);
    let db = h.app.store.path().unwrap().to_owned();
    let started = std::time::Instant::now();
    let per_class = corpus::run(&Webhook(&h), &db, &cases).await;

    // still serving: the same kinds of delivery, well-formed, are processed
    let r = h
        .deliver(&h.sim.delegation(Chain::Evm, "wallet_1.a:b-c").unwrap())
        .await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("stored")),
        "{}",
        r.json
    );
    let r = h.deliver(&h.sim.revoke(Chain::Evm, &evm_wid)).await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("revoked")),
        "{}",
        r.json
    );
    let verified = h.app.store.read(keyward::store::audit::verify).unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    let total: usize = per_class.values().sum();
    eprintln!(
        "bad-input corpus (webhook): {total} cases {per_class:?} in {:?}",
        started.elapsed()
    );
    assert!(total >= 200, "{total} cases");
}
