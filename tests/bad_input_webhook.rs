//! The bad-input corpus of the webhook face, through the real listener (TLS on loopback,
//! source allowlist, HMAC, SoftHSM2 token, SQLite file). Each case is (request, expected
//! status, expected code). For every case the harness checks the exact status and code
//! and a message, and that nothing changed: the store state (every table but the audit
//! chain, `common::store::state`) and the audit chain itself, since the webhook face
//! audits only events it processed (a refusal, a replay, a conflict writes nothing).

mod common;
mod webhook_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use common::corpus::{self, Expect, Tap};
use common::store::AuditRow;
use hyper::Method;
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
    let mut cases = Vec::new();

    // --- framing: path, method, media type, size
    let mut c = Class::new("framing", &mut cases);
    for p in [
        "/other",
        "/",
        "/webhooks",
        "/webhooks/dynamic/",
        "/WEBHOOKS/DYNAMIC",
        "/webhooks/dynamic/x",
        "/webhooks//dynamic",
        "/webhooks/dynamic%2f",
    ] {
        c.post(
            format!("path {p}"),
            &format!("{}{p}", h.base),
            good.body.clone(),
            good.headers(),
            (404, "not_found"),
        );
    }
    for m in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let req = Req {
            from: ALLOWED,
            method: m.clone(),
            url: url.clone(),
            body: good.body.clone(),
            headers: good.headers(),
        };
        c.push(format!("method {m}"), req, (405, "method_not_allowed"));
    }
    let sig = (
        "x-dynamic-signature-256".to_string(),
        good.signature.clone(),
    );
    for (name, ct) in [
        ("no content type", None),
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("application/jsonx", Some("application/jsonx")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("application/problem+json", Some("application/problem+json")),
    ] {
        let mut headers = vec![sig.clone()];
        if let Some(ct) = ct {
            headers.push(("content-type".into(), ct.into()));
        }
        c.post(
            name,
            &url,
            good.body.clone(),
            headers,
            (415, "unsupported_media_type"),
        );
    }
    for n in [65_537, 70_000, 200_000] {
        let body = vec![b' '; n];
        c.signed(format!("{n} bytes"), &url, body, (413, "body_too_large"));
    }

    // --- crypto fields: the HMAC header, then the envelope's cryptography
    let mut c = Class::new("crypto fields", &mut cases);
    let json_ct = ("content-type".to_string(), "application/json".to_string());
    let mac = hmac_header(&good.body, common::HMAC_SECRET);
    let hex_mac = mac.strip_prefix("sha256=").unwrap().to_owned();
    let missing = (401, "signature_missing");
    for (name, value) in [
        ("md5 scheme", "md5=abc".to_string()),
        ("empty", String::new()),
        ("no hex", "sha256=".into()),
        ("63 hex digits", format!("sha256={}", &hex_mac[..63])),
        ("65 hex digits", format!("sha256={hex_mac}0")),
        ("not hex", format!("sha256={}", "zz".repeat(32))),
        ("upper-case scheme", format!("SHA256={hex_mac}")),
        ("no scheme", hex_mac.clone()),
        ("two MACs", format!("sha256={hex_mac},sha256={hex_mac}")),
        (
            "base64 MAC",
            format!("sha256={}", b64(&hex::decode(&hex_mac).unwrap())),
        ),
    ] {
        c.post(
            format!("signature {name}"),
            &url,
            good.body.clone(),
            vec![json_ct.clone(), ("x-dynamic-signature-256".into(), value)],
            missing,
        );
    }
    c.post(
        "no signature header",
        &url,
        good.body.clone(),
        vec![json_ct.clone()],
        missing,
    );
    let invalid = (401, "signature_invalid");
    let mut tampered = good.body.clone();
    let n = tampered.len();
    tampered[n - 3] ^= 1;
    let mut newline = good.body.clone();
    newline.push(b'\n');
    for (name, body, header) in [
        (
            "wrong secret",
            good.body.clone(),
            hmac_header(&good.body, "dyn_wrong_secret"),
        ),
        ("tampered body", tampered, mac.clone()),
        ("body with a newline added", newline, mac.clone()),
        (
            "MAC of the empty body",
            good.body.clone(),
            hmac_header(b"", common::HMAC_SECRET),
        ),
        (
            "another delivery's MAC",
            good.body.clone(),
            seed_ping.signature.clone(),
        ),
        (
            "secret with a trailing newline",
            good.body.clone(),
            hmac_header(&good.body, &format!("{}\n", common::HMAC_SECRET)),
        ),
    ] {
        c.post(
            name,
            &url,
            body,
            vec![json_ct.clone(), ("x-dynamic-signature-256".into(), header)],
            invalid,
        );
    }
    let foreign_pub = common::fixtures::foreign_rsa_public();
    let alg = (422, "envelope_alg_unsupported");
    for a in ["A256GCMKW", "none", "", "rsa-oaep-256", "RSA1_5", "dir"] {
        c.json(
            format!("alg {a:?}"),
            &url,
            &m.created(|d| {
                d["encryptedDelegatedShare"] = m.enc(
                    &m.share,
                    &Enc {
                        alg: a,
                        ..Default::default()
                    },
                )
            }),
            alg,
        );
    }
    c.json(
        "ek under another RSA key",
        &url,
        &m.created(|d| {
            d["encryptedDelegatedShare"] = encrypt(&foreign_pub, &m.share, &Enc::default())
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "api key ek under another RSA key",
        &url,
        &m.created(|d| {
            d["encryptedWalletApiKey"] = encrypt(&foreign_pub, b"dyn_api", &Enc::default())
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek random bytes",
        &url,
        &m.created(|d| d["encryptedDelegatedShare"]["ek"] = b64(&[0x5a; 384]).into()),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek of another envelope's length",
        &url,
        &m.created(|d| d["encryptedDelegatedShare"]["ek"] = b64(&[0x5a; 256]).into()),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "tag flipped",
        &url,
        &m.created(|d| {
            d["encryptedDelegatedShare"] = m.enc(
                &m.share,
                &Enc {
                    flip_tag: true,
                    ..Default::default()
                },
            )
        }),
        (422, "envelope_decrypt_failed"),
    );
    let share = m.enc(&m.share, &Enc::default());
    let mut ct = B64URL.decode(share["ct"].as_str().unwrap()).unwrap();
    ct[0] ^= 0x80;
    c.json(
        "ciphertext flipped",
        &url,
        &m.created(|d| {
            d["encryptedDelegatedShare"] = share.clone();
            d["encryptedDelegatedShare"]["ct"] = b64(&ct).into();
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "iv of another envelope",
        &url,
        &m.created(|d| {
            d["encryptedDelegatedShare"]["iv"] = m.enc(b"x", &Enc::default())["iv"].clone()
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek of the other field",
        &url,
        &m.created(|d| {
            d["encryptedDelegatedShare"]["ek"] = d["encryptedWalletApiKey"]["ek"].clone()
        }),
        (422, "envelope_decrypt_failed"),
    );
    for len in [0, 16, 31, 33, 64] {
        c.json(
            format!("content key of {len} bytes"),
            &url,
            &m.created(|d| {
                d["encryptedDelegatedShare"] = m.enc(
                    &m.share,
                    &Enc {
                        content_key_len: len,
                        ..Default::default()
                    },
                )
            }),
            (422, "envelope_decrypt_failed"),
        );
    }
    let (_, other_address) = wallet_key::generate(Chain::Evm);
    c.json(
        "share for another address",
        &url,
        &m.created(|d| d["publicKey"] = other_address.clone().into()),
        (422, "share_address_mismatch"),
    );
    for (name, api) in [("empty", &b""[..]), ("not UTF-8", &[0xff, 0xfe, 0x00][..])] {
        c.json(
            format!("api key {name}"),
            &url,
            &m.created(|d| d["encryptedWalletApiKey"] = m.enc(api, &Enc::default())),
            (422, "api_key_invalid"),
        );
    }

    // --- JSON shape: the envelope and `data`
    let mut c = Class::new("JSON shape", &mut cases);
    for (name, body) in [
        ("not JSON", &b"{not json"[..]),
        ("empty body", b""),
        ("array", b"[]"),
        ("string", b"\"ping\""),
        ("null", b"null"),
        ("number", b"42"),
        ("truncated", b"{\"eventId\":\"e1\",\"eventName\":\"ping\""),
        ("object, then bytes", b"{} x"),
    ] {
        c.signed(name, &url, body.to_vec(), MALFORMED);
    }
    let ping = envelope("ping", json!({}));
    let ping_text = serde_json::to_string(&ping).unwrap();
    c.signed(
        "two envelopes",
        &url,
        format!("{ping_text}{ping_text}").into_bytes(),
        MALFORMED,
    );
    c.signed(
        "eventId twice",
        &url,
        ping_text
            .replacen('{', &format!("{{\"eventId\":\"{}\",", id()), 1)
            .into_bytes(),
        MALFORMED,
    );
    for k in ["eventId", "eventName", "timestamp"] {
        c.json(format!("no {k}"), &url, &remove(ping.clone(), k), MALFORMED);
    }
    for k in [
        "chain",
        "walletId",
        "publicKey",
        "encryptedDelegatedShare",
        "encryptedWalletApiKey",
    ] {
        c.json(
            format!("created without data.{k}"),
            &url,
            &envelope("wallet.delegation.created", remove(m.data(), k)),
            MALFORMED,
        );
    }
    for (name, data) in [
        ("created with data {}", json!({})),
        ("created with data null", json!(null)),
        ("created with data array", json!([m.data()])),
        ("created with data string", json!("data")),
    ] {
        c.json(
            name,
            &url,
            &envelope("wallet.delegation.created", data),
            MALFORMED,
        );
    }
    c.json(
        "created without data",
        &url,
        &remove(envelope("wallet.delegation.created", json!({})), "data"),
        MALFORMED,
    );
    for (name, data) in [
        ("revoked without walletId", json!({"chain": "EVM"})),
        ("revoked without chain", json!({"walletId": id()})),
        ("revoked with data null", json!(null)),
    ] {
        c.json(
            name,
            &url,
            &envelope("wallet.delegation.revoked", data),
            MALFORMED,
        );
    }
    for k in ["alg", "iv", "ct", "tag", "ek"] {
        c.json(
            format!("share envelope without {k}"),
            &url,
            &m.created(|d| {
                d["encryptedDelegatedShare"]
                    .as_object_mut()
                    .unwrap()
                    .remove(k);
            }),
            ENV_MALFORMED,
        );
    }
    for (name, v) in [
        ("share envelope a string", json!("eyJhbGciOi...")),
        ("share envelope null", json!(null)),
        ("share envelope an array", json!([])),
    ] {
        c.json(
            name,
            &url,
            &m.created(|d| d["encryptedDelegatedShare"] = v),
            ENV_MALFORMED,
        );
    }

    // --- types: the right field, the wrong JSON type
    let mut c = Class::new("types", &mut cases);
    for (k, v) in [
        ("eventId", json!(17)),
        ("eventName", json!(1)),
        ("timestamp", json!(1_700_000_000)),
        ("messageId", json!(5)),
        ("environmentId", json!(["env-a"])),
        ("userId", json!({"id": 1})),
        ("eventId", json!(null)),
        ("timestamp", json!(true)),
    ] {
        c.json(
            format!("{k} as {v}"),
            &url,
            &ping.clone().tap(|p| p[k] = v.clone()),
            MALFORMED,
        );
    }
    for (k, v) in [
        ("chain", json!(1)),
        ("walletId", json!(7)),
        ("publicKey", json!(["0x12"])),
        ("userId", json!(3)),
    ] {
        c.json(
            format!("data.{k} as {v}"),
            &url,
            &m.created(|d| d[k] = v.clone()),
            MALFORMED,
        );
    }
    for (k, v) in [
        ("alg", json!(256)),
        ("iv", json!(12)),
        ("ct", json!(null)),
        ("tag", json!([1, 2])),
        ("ek", json!({"n": 1})),
        ("kid", json!(1)),
    ] {
        c.json(
            format!("share envelope {k} as {v}"),
            &url,
            &m.created(|d| d["encryptedDelegatedShare"][k] = v.clone()),
            ENV_MALFORMED,
        );
    }

    // --- ranges: lengths, times, sizes
    let mut c = Class::new("ranges", &mut cases);
    for (k, v) in [
        ("eventId", "e".repeat(129)),
        ("eventName", String::new()),
        ("eventName", "n".repeat(129)),
        ("messageId", String::new()),
        ("messageId", "m".repeat(129)),
        ("environmentId", "v".repeat(129)),
        ("userId", String::new()),
    ] {
        c.json(
            format!("{k} of {} chars", v.len()),
            &url,
            &ping.clone().tap(|p| p[k] = v.clone().into()),
            MALFORMED,
        );
    }
    for (name, ts) in [
        ("a word", "yesterday".to_string()),
        ("month 13", "2025-13-01T00:00:00Z".into()),
        ("no zone", "2025-01-01T00:00:00".into()),
        ("epoch seconds", "1700000000".into()),
        ("date only", "2025-01-01".into()),
        ("empty", String::new()),
    ] {
        c.json(
            format!("timestamp {name}"),
            &url,
            &ping.clone().tap(|p| p["timestamp"] = ts.clone().into()),
            MALFORMED,
        );
    }
    for (name, ts, code) in [
        ("6 minutes ahead", now_ts(6 * 60_000), "event_in_future"),
        (
            "in 9999",
            "9999-12-31T23:59:59Z".to_string(),
            "event_in_future",
        ),
        ("31 days old", now_ts(-31 * 86_400_000), "event_too_old"),
        ("in 1970", "1970-01-01T00:00:00Z".into(), "event_too_old"),
        // RFC 3339 allows second 60, and it is an instant like any other
        (
            "at a leap second",
            "2016-12-31T23:59:60Z".into(),
            "event_too_old",
        ),
        ("in year 1", "0001-01-01T00:00:00Z".into(), "event_too_old"),
    ] {
        c.json(
            format!("timestamp {name}"),
            &url,
            &ping.clone().tap(|p| p["timestamp"] = ts.clone().into()),
            (400, code),
        );
    }
    for len in [0, 8, 11, 13, 32] {
        c.json(
            format!("iv of {len} bytes"),
            &url,
            &m.created(|d| d["encryptedDelegatedShare"]["iv"] = b64(&vec![0u8; len]).into()),
            ENV_MALFORMED,
        );
    }
    for len in [0, 15, 17] {
        c.json(
            format!("tag of {len} bytes"),
            &url,
            &m.created(|d| d["encryptedDelegatedShare"]["tag"] = b64(&vec![0u8; len]).into()),
            ENV_MALFORMED,
        );
    }
    c.json(
        "ek empty",
        &url,
        &m.created(|d| d["encryptedDelegatedShare"]["ek"] = "".into()),
        ENV_MALFORMED,
    );

    // --- encodings: base64url, UTF-8, printable ids
    let mut c = Class::new("encodings", &mut cases);
    for (k, v) in [
        ("iv", "AAAA+AAAAAAAAAAA"),
        ("ct", "not*base64"),
        ("tag", "AAAA AAAAAAAAAAAAAAAAAA"),
        ("ek", "a.b.c"),
        ("iv", "AAAAAAAAAAAAAAAA="),
        ("ct", "A"),
    ] {
        c.json(
            format!("{k} {v:?}"),
            &url,
            &m.created(|d| d["encryptedDelegatedShare"][k] = v.into()),
            ENV_MALFORMED,
        );
    }
    let ping_bytes = serde_json::to_vec(&ping).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&ping_bytes);
    c.signed("byte order mark", &url, bom, MALFORMED);
    // in `eventName`, a field keyward reads (an ignored field's bytes are not decoded)
    let mut latin1 = ping_text.clone().into_bytes();
    let at = latin1.windows(6).position(|w| w == b"\"ping\"").unwrap();
    latin1[at + 1] = 0xe9; // a lone Latin-1 byte inside a string
    c.signed("invalid UTF-8", &url, latin1, MALFORMED);
    c.signed(
        "lone surrogate escape",
        &url,
        ping_text
            .replacen("\"ping\"", "\"\\ud800\"", 1)
            .into_bytes(),
        MALFORMED,
    );
    for (k, v) in [
        ("environmentId", "env a"),
        ("messageId", "m\u{e9}ssage"),
        ("userId", "user\n1"),
        ("environmentId", "env-a\u{0}"),
        ("messageId", "\u{200b}"),
    ] {
        c.json(
            format!("{k} {v:?}"),
            &url,
            &ping.clone().tap(|p| p[k] = v.into()),
            MALFORMED,
        );
    }

    // --- identifiers: event and wallet ids, chains, addresses
    let mut c = Class::new("identifiers", &mut cases);
    for wid in [
        "../../etc/passwd",
        "..",
        ".",
        "a b",
        "",
        "w/1",
        "wallet\u{e9}",
        "w".repeat(129).as_str(),
    ] {
        c.json(
            format!("created walletId {wid:.20?}"),
            &url,
            &m.created(|d| d["walletId"] = wid.into()),
            MALFORMED,
        );
        c.json(
            format!("revoked walletId {wid:.20?}"),
            &url,
            &envelope(
                "wallet.delegation.revoked",
                json!({"walletId": wid, "chain": "SVM"}),
            ),
            MALFORMED,
        );
    }
    for eid in ["../evil", "e/1", ".", "...", "e 1", "e\u{e9}", ""] {
        c.json(
            format!("eventId {eid:?}"),
            &url,
            &ping.clone().tap(|p| p["eventId"] = eid.into()),
            MALFORMED,
        );
    }
    let unsupported = (422, "chain_unsupported");
    for chain in ["BTC", "", "ETH", "EVM ", "SOLANA-DEVNET"] {
        c.json(
            format!("created chain {chain:?}"),
            &url,
            &m.created(|d| d["chain"] = chain.into()),
            unsupported,
        );
    }
    c.json(
        "revoked chain BTC",
        &url,
        &envelope(
            "wallet.delegation.revoked",
            json!({"walletId": id(), "chain": "BTC"}),
        ),
        unsupported,
    );
    let pk = (422, "public_key_invalid");
    let (_, sol_address) = wallet_key::generate(Chain::Solana);
    for (name, chain, key) in [
        ("EVM, short", "EVM", "0x1234".to_string()),
        ("EVM, empty", "EVM", String::new()),
        ("EVM, a Solana address", "EVM", sol_address.clone()),
        ("EVM, not hex", "EVM", format!("0x{}", "zz".repeat(20))),
        ("Solana, an EVM address", "SVM", m.address.clone()),
        ("Solana, not base58", "SVM", "0OIl".repeat(11)),
        (
            "Solana, 31 bytes",
            "SOL",
            bs58::encode([1u8; 31]).into_string(),
        ),
    ] {
        c.json(
            format!("publicKey {name}"),
            &url,
            &m.created(|d| {
                d["chain"] = chain.into();
                d["publicKey"] = key.clone().into();
            }),
            pk,
        );
    }

    // --- replay and ordering: what the store already knows decides
    let mut c = Class::new("replay/ordering", &mut cases);
    for (name, d) in [
        ("created again", &seed_created),
        ("Solana created again", &seed_sol),
        ("revoked again", &seed_revoke),
        ("ping again", &seed_ping),
    ] {
        c.post(name, &url, d.body.clone(), d.headers(), (200, "duplicate"));
    }
    let conflict = (409, "event_id_conflict");
    let now = time::OffsetDateTime::now_utc();
    for (name, d) in [
        (
            "created's eventId as its revoke",
            h.sim.delivery(
                &seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": evm_wid, "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId for another wallet",
            h.sim.delivery(
                &seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": id(), "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId as a ping",
            h.sim
                .delivery(&seed_created.event_id, "ping", json!({}), now),
        ),
        (
            "revoke's eventId as a created",
            h.sim.delivery(
                &seed_revoke.event_id,
                "wallet.delegation.created",
                m.data(),
                now,
            ),
        ),
        (
            "ping's eventId as an unknown event",
            h.sim
                .delivery(&seed_ping.event_id, "user.created", json!({}), now),
        ),
    ] {
        c.post(name, &url, d.body.clone(), d.headers(), conflict);
    }
    let local = (409, "wallet_conflict");
    c.json(
        "created for a generated wallet",
        &url,
        &m.created(|d| d["walletId"] = generated.id.clone().into()),
        local,
    );
    c.json(
        "revoked for a generated wallet",
        &url,
        &envelope(
            "wallet.delegation.revoked",
            json!({"walletId": generated.id, "chain": "EVM"}),
        ),
        local,
    );
    let mismatch = (403, "environment_mismatch");
    let from_b = |v: Value| v.tap(|v| v["environmentId"] = "env-b".into());
    c.json(
        "created for a wallet of another environment",
        &url,
        &from_b(m.created(|d| d["walletId"] = evm_wid.clone().into())),
        mismatch,
    );
    c.json(
        "revoked for a wallet of another environment",
        &url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": sol_wid, "chain": "SVM"}),
        )),
        mismatch,
    );
    c.json(
        "revoked for a tombstone of another environment",
        &url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": tomb_wid, "chain": "EVM"}),
        )),
        mismatch,
    );
    let not_allowed = (403, "environment_not_allowed");
    c.json(
        "environment not configured",
        &url,
        &ping.clone().tap(|p| p["environmentId"] = "env-c".into()),
        not_allowed,
    );
    c.json(
        "no environment",
        &url,
        &remove(ping.clone(), "environmentId"),
        not_allowed,
    );
    c.json(
        "environment in another case",
        &url,
        &ping.clone().tap(|p| p["environmentId"] = "ENV-A".into()),
        not_allowed,
    );

    // --- identity: who is delivering (the TCP peer itself is checked at accept)
    let mut c = Class::new("identity/grants", &mut cases);
    for xff in [
        "127.0.0.3",
        "127.0.0.2, 127.0.0.3",
        "10.0.0.1",
        "not-an-ip",
        "unknown",
        "127.0.0.1",
        "::ffff:127.0.0.3",
        "[2001:db8::1]:443",
        "127.0.0.2,,",
        "",
    ] {
        let mut headers = good.headers();
        headers.push(("x-forwarded-for".into(), xff.into()));
        let req = Req {
            from: "127.0.0.1",
            method: Method::POST,
            url: url.clone(),
            body: good.body.clone(),
            headers,
        };
        c.push(
            format!("from the proxy, X-Forwarded-For {xff:?}"),
            req,
            (403, "source_not_allowed"),
        );
    }

    corpus::assert_distinct(&cases);
    let db = h.app.store.path().to_owned();
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
