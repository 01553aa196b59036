//! The signing API end to end: real mTLS on loopback (hyper + tokio-rustls with test
//! client certificates), a real SoftHSM2 token, a real SQLite file. Every signature is
//! checked with an independent implementation (alloy recovery, ed25519-dalek, parsing
//! the signed Solana transaction back), and every sign request's audit record is read
//! back from the store.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Signature, B256};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use common::{Env, EnvOptions};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keyward::appliance::{Appliance, LOCK_KEY};
use keyward::chains::solana;
use keyward::custody::{self, Binding, Purpose, SecretBytes};
use keyward::pki::{Issued, Validity};
use keyward::store::audit;
use keyward::store::state;
use keyward::store::wallets::{self as rows, Chain, Engine, Source, Status, Wallet};
use keyward::wallet_key;
use serde_json::{json, Value};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "solana.message", "solana.transaction"]

[[clients]]
identity = "hash-client"
wallets = ["label:hot"]
operations = ["evm.hash", "evm.message"]

[[clients]]
identity = "spiffe://keyward.test/svc/payments"
wallets = ["chain:solana"]
operations = ["solana.message"]
"#;

/// EIP-155's example key (0x4646…46) and EIP-712's "cow" key.
const EIP155_KEY: &str = "4646464646464646464646464646464646464646464646464646464646464646";
const COW_KEY: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";

struct Server {
    env: Env,
    app: Arc<Appliance>,
    addr: SocketAddr,
    _stop: tokio::sync::watch::Sender<bool>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn start() -> Server {
    let env = Env::with(EnvOptions {
        extra: CLIENTS.into(),
        ..Default::default()
    });
    let app = Arc::new(env.appliance());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let serving = app.clone();
    tokio::spawn(async move {
        keyward::api::serve(serving, listener, rx)
            .await
            .expect("api serves");
    });
    Server {
        env,
        app,
        addr,
        _stop: stop,
    }
}

fn tls_client(ca_pem: &str, cert: Option<&Issued>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
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

struct Client {
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
}

struct Answer {
    status: StatusCode,
    body: Value,
    allow: Option<String>,
}

impl Client {
    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            allow,
        })
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, Vec::new()).await.unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
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
    fn client(&self) -> Client {
        Client {
            tls: tls_client(&self.env.pki.ca.cert_pem, Some(&self.env.pki.client)),
            addr: self.addr,
        }
    }

    fn client_as(&self, cn: &str, uri: Option<&str>, serial: u64) -> Client {
        let cert = self
            .env
            .pki
            .ca
            .client(cn, uri, Validity::Current, serial)
            .unwrap();
        Client {
            tls: tls_client(&self.env.pki.ca.cert_pem, Some(&cert)),
            addr: self.addr,
        }
    }

    fn import(&self, chain: Chain, hex_key: &str, label: Option<&str>) -> Wallet {
        keyward::wallets::import(
            &self.app,
            chain,
            wallet_key::parse_secret_hex(hex_key).unwrap(),
            label,
        )
        .unwrap()
    }

    fn record(&self, id: &str) -> audit::AuditRecord {
        let id = id.to_owned();
        self.app
            .store
            .read(move |c| audit::get(c, &id))
            .unwrap()
            .expect("audit record exists")
    }

    fn put(&self, w: Wallet) {
        self.app
            .store
            .write_blocking(move |ctx| rows::upsert(ctx.conn, &w))
            .unwrap();
    }
}

fn path(wallet: &Wallet, route: &str) -> String {
    format!("/v1/wallets/{}/{route}", wallet.id)
}

fn b256(s: &str) -> B256 {
    s.parse().unwrap()
}

fn recover(sig_hex: &str, digest: &B256) -> Address {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27/28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(digest)
        .unwrap()
}

fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

fn addr(w: &Wallet) -> Address {
    w.address.as_deref().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_routes_sign_and_verify_end_to_end() {
    let s = start().await;
    let c = s.client();
    let eip155 = s.import(Chain::Evm, EIP155_KEY, Some("hot"));
    let cow = s.import(Chain::Evm, COW_KEY, None);
    assert_eq!(
        eip155.address.as_deref(),
        Some("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")
    );
    assert_eq!(
        cow.address.as_deref(),
        Some("0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826")
    );

    // EIP-191: text and hex forms
    for (message, bytes) in [
        (json!("hello keyward"), b"hello keyward".to_vec()),
        (json!("0xdeadbeef"), vec![0xde, 0xad, 0xbe, 0xef]),
    ] {
        let a = c
            .post(&path(&eip155, "evm/message"), json!({ "message": message }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let digest = alloy_primitives::eip191_hash_message(&bytes);
        assert_eq!(a.body["digest"], format!("{digest:#x}"));
        assert_eq!(
            recover(a.body["signature"].as_str().unwrap(), &digest),
            addr(&eip155)
        );
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.actor, "cn:test-client");
        assert_eq!(rec.action, "sign");
        assert_eq!(rec.decision, "allowed");
        assert_eq!(rec.result, "ok");
        assert_eq!(rec.operation.as_deref(), Some("evm.message"));
        assert_eq!(rec.wallet_id.as_deref(), Some(eip155.id.as_str()));
        assert_eq!(rec.digest.as_deref(), Some(format!("{digest:#x}").as_str()));
    }

    // EIP-712 "Mail": the spec's digest and (RFC 6979 deterministic) signature
    let a = c
        .post(
            &path(&cow, "evm/typed-data"),
            json!({ "typedData": mail_typed_data() }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["digest"],
        "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    assert_eq!(
        a.body["signature"],
        "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c"
    );
    let digest = b256(a.body["digest"].as_str().unwrap());
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &digest),
        addr(&cow)
    );
    // the typed data may also come as a JSON string, as eth_signTypedData_v4 sends it
    let a2 = c
        .post(
            &path(&cow, "evm/typed-data"),
            json!({ "typedData": mail_typed_data().to_string() }),
        )
        .await;
    assert_eq!(a2.body["signature"], a.body["signature"]);

    // EIP-155's example transaction, byte for byte
    let a = c
        .post(
            &path(&eip155, "evm/transaction"),
            json!({ "transaction": {
                "type": "0x0", "chainId": "1", "nonce": "9", "gasPrice": "20000000000", "gas": "21000",
                "to": "0x3535353535353535353535353535353535353535", "value": "1000000000000000000", "data": "0x"
            }}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["rawTransaction"],
        "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    assert_eq!(a.body["signature"]["v"], "0x25");

    // EIP-1559 and EIP-2930: decode the raw transaction with alloy and recover its signer
    for tx in [
        json!({
            "type": "0x2", "chainId": "0x1", "nonce": "0x0", "maxFeePerGas": "0x4a817c800",
            "maxPriorityFeePerGas": "0x3b9aca00", "gas": "0x5208",
            "to": "0x3535353535353535353535353535353535353535", "value": "0x1", "data": "0x",
            "from": eip155.address.clone().unwrap()
        }),
        json!({
            "type": "0x1", "chainId": "0x89", "nonce": "0x7", "gasPrice": "0x4a817c800", "gas": "0x10000",
            "to": "0x3535353535353535353535353535353535353535", "value": "0x0", "input": "0xa9059cbb",
            "accessList": [{"address": "0x3535353535353535353535353535353535353535", "storageKeys": []}]
        }),
    ] {
        let a = c
            .post(
                &path(&eip155, "evm/transaction"),
                json!({ "transaction": tx }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let raw = hex::decode(&a.body["rawTransaction"].as_str().unwrap()[2..]).unwrap();
        let env = alloy_consensus::TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
        assert_eq!(env.recover_signer().unwrap(), addr(&eip155));
        assert_eq!(a.body["hash"], format!("{:#x}", env.tx_hash()));
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.operation.as_deref(), Some("evm.transaction"));
        assert_eq!(rec.digest.as_deref(), a.body["digest"].as_str());
    }

    // raw digests: test-client lacks the explicit grant; hash-client has it (label:hot)
    let digest = "0x1111111111111111111111111111111111111111111111111111111111111111";
    let a = c
        .post(&path(&eip155, "evm/hash"), json!({ "digest": digest }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["code"], "not_authorized");
    assert!(a.body["auditId"].is_string());
    let hc = s.client_as("hash-client", None, 40);
    let a = hc
        .post(&path(&eip155, "evm/hash"), json!({ "digest": digest }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &b256(digest)),
        addr(&eip155)
    );
    // …but not on a wallet outside its selector
    let a = hc
        .post(&path(&cow, "evm/hash"), json!({ "digest": digest }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // dry run: decision and digest, nothing signed, audited as such
    let a = c
        .post(
            &format!("{}?dryRun=true", path(&eip155, "evm/message")),
            json!({ "message": "hi" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["dryRun"], true);
    assert!(a.body.get("signature").is_none());
    let rec = s.record(a.body["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.action.as_str(), rec.result.as_str()),
        ("sign.dry_run", "dry_run")
    );

    // the imported keys never reach the database file unwrapped
    let files = common::all_bytes_under(s.env.dir.path());
    for key in [EIP155_KEY, COW_KEY] {
        assert!(!common::contains(&files, &hex::decode(key).unwrap()));
        assert!(!common::contains(&files, key.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_routes_sign_and_verify_end_to_end() {
    let s = start().await;
    let c = s.client();
    let w = keyward::wallets::create(&s.app, Chain::Solana, Some("sol")).unwrap();
    assert_eq!(w.source, Source::Generated);
    let pk = solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let sig_of = |a: &Answer| {
        let raw = bs58::decode(a.body["signature"].as_str().unwrap())
            .into_vec()
            .unwrap();
        ed25519_dalek::Signature::from_slice(&raw).unwrap()
    };

    // raw message (default) and the off-chain envelope
    let a = c
        .post(
            &path(&w, "solana/message"),
            json!({ "message": "Sign in to example.com" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    vk.verify_strict(b"Sign in to example.com", &sig_of(&a))
        .unwrap();
    let a = c
        .post(
            &path(&w, "solana/message"),
            json!({ "message": "aGVsbG8=", "encoding": "base64", "format": "offchain" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let signed = B64
        .decode(a.body["signedMessage"].as_str().unwrap())
        .unwrap();
    assert_eq!(signed, solana::offchain_message_v0(b"hello").unwrap());
    assert!(signed.starts_with(b"\xffsolana offchain"));
    vk.verify_strict(&signed, &sig_of(&a)).unwrap();

    // a transaction (or its message) is never signed as a "message"
    let tx = common::solana_tx(&pk, None, false);
    for bytes in [tx.clone(), tx[65..].to_vec()] {
        let a = c
            .post(
                &path(&w, "solana/message"),
                json!({ "message": B64.encode(&bytes), "encoding": "base64" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"]["code"], "message_is_transaction");
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            ("denied", "message_is_transaction")
        );
    }

    // legacy and v0 transactions, with the wallet as the only or the second signer
    let other = [5u8; 32];
    for (v0, second) in [(false, false), (true, false), (false, true), (true, true)] {
        let tx = if second {
            // the wallet is signer 1; signer 0 (the fee payer) is someone else
            common::solana_tx(&other, Some(pk), v0)
        } else {
            common::solana_tx(&pk, None, v0)
        };
        let a = c
            .post(
                &path(&w, "solana/transaction"),
                json!({ "transaction": B64.encode(&tx) }),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "v0={v0} second={second}: {}",
            a.body
        );
        let index = usize::from(second);
        assert_eq!(a.body["signerIndex"], index);
        let signed = B64.decode(a.body["transaction"].as_str().unwrap()).unwrap();
        let parsed = solana::parse_transaction(&signed).unwrap();
        assert_eq!(parsed.version(), v0.then_some(0));
        assert_eq!(
            parsed.message_bytes(),
            &tx[1 + 64 * parsed.num_required_signatures()..]
        );
        let placed = ed25519_dalek::Signature::from_bytes(parsed.signature(index).unwrap());
        assert_eq!(placed, sig_of(&a));
        vk.verify_strict(parsed.message_bytes(), &placed).unwrap();
        if second {
            assert_eq!(
                parsed.signature(0).unwrap(),
                &[0u8; 64],
                "other slot untouched"
            );
        }
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(
            rec.digest.as_deref().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                parsed.message_bytes()
            ))
        );
    }

    // not a signer: 422; garbage: 400 with the chain code
    let a = c
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": B64.encode(common::solana_tx(&other, None, false)) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["error"]["code"], "not_a_signer");
    for (body, code) in [
        (json!({ "transaction": "%%%" }), "invalid_encoding"),
        (
            json!({ "transaction": B64.encode([1u8, 2, 3]) }),
            "invalid_transaction",
        ),
        (json!({ "transaction": 5 }), "invalid_request"),
    ] {
        let a = c.post(&path(&w, "solana/transaction"), body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"]["code"], code);
    }

    // an identity from a URI SAN, granted solana.message on chain:solana only
    let spiffe = s.client_as("ignored-cn", Some("spiffe://keyward.test/svc/payments"), 41);
    let who = spiffe.get("/v1/whoami").await;
    assert_eq!(
        who.body["identity"],
        "uri:spiffe://keyward.test/svc/payments"
    );
    let a = spiffe
        .post(&path(&w, "solana/message"), json!({ "message": "x" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = spiffe
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": B64.encode(&tx) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refused_without_a_valid_client_certificate() {
    let s = start().await;
    let ca = &s.env.pki.ca;
    let expired = ca
        .client("test-client", None, Validity::Expired, 50)
        .unwrap();
    let future = ca
        .client("test-client", None, Validity::NotYetValid, 51)
        .unwrap();
    let foreign = s
        .env
        .pki
        .other_ca
        .client("test-client", None, Validity::Current, 52)
        .unwrap();
    for (name, cert) in [
        ("no certificate", None),
        ("expired", Some(&expired)),
        ("not yet valid", Some(&future)),
        ("other CA", Some(&foreign)),
    ] {
        let c = Client {
            tls: tls_client(&ca.cert_pem, cert),
            addr: s.addr,
        };
        // TLS 1.3: the client may finish its side before the server rejects its
        // certificate; the refusal then surfaces on the first request
        let r = c.send("GET", "/v1/whoami", None, Vec::new()).await;
        assert!(r.is_err(), "{name}: got HTTP {}", r.unwrap().status);
    }
    // the same server answers a valid certificate
    let c = s.client();
    let a = c.get("/v1/whoami").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["identity"], "cn:test-client");
    // OpenAPI is served and names every route
    let doc = c.get("/v1/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    for r in keyward::api::routes::ROUTES {
        let m = r.method.as_str().to_ascii_lowercase();
        assert!(
            doc.body["paths"][r.template][&m].is_object(),
            "{}",
            r.template
        );
    }
    // and the router serves every route the table names: a wrong method is 405, not 404
    for r in keyward::api::routes::ROUTES {
        let p = r
            .template
            .replace("{walletId}", "nope")
            .replace("{chainId}", "1");
        let other = if r.method == hyper::Method::GET {
            "DELETE"
        } else {
            "GET"
        };
        let a = c.send(other, &p, None, Vec::new()).await.unwrap();
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{p}");
        assert_eq!(a.allow.as_deref(), Some(r.method.as_str()));
    }
    let a = c.get("/v1/nothing").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_codes_and_audit_records() {
    let s = start().await;
    let c = s.client();
    let evm = keyward::wallets::create(&s.app, Chain::Evm, Some("hot")).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();

    // a valid certificate without a grant: 403, audited with the identity
    let stranger = s.client_as("stranger", None, 60);
    let a = stranger
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["code"], "not_authorized");
    let rec = s.record(a.body["auditId"].as_str().unwrap());
    assert_eq!(
        (
            rec.actor.as_str(),
            rec.decision.as_str(),
            rec.result.as_str()
        ),
        ("cn:stranger", "denied", "not_authorized")
    );
    assert_eq!(
        stranger.get("/v1/wallets").await.status,
        StatusCode::FORBIDDEN
    );

    // listing shows only what the client may use
    let hc = s.client_as("hash-client", None, 61);
    let list = hc.get("/v1/wallets").await;
    let ids: Vec<&str> = list.body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![evm.id.as_str()]);
    assert_eq!(
        hc.get(&format!("/v1/wallets/{}", sol.id)).await.status,
        StatusCode::FORBIDDEN
    );
    let one = c.get(&format!("/v1/wallets/{}", sol.id)).await;
    assert_eq!(one.body["address"], sol.address.clone().unwrap());
    assert_eq!(
        c.get("/v1/wallets/unknown-id").await.status,
        StatusCode::NOT_FOUND
    );

    // unknown wallet
    let a = c
        .post(
            "/v1/wallets/no-such-wallet/evm/message",
            json!({ "message": "hi" }),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("wallet_not_found"))
    );
    assert!(a.body["auditId"].is_string());

    // wrong chain
    let a = c
        .post(&path(&sol, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("wrong_chain"))
    );

    // malformed bodies, each with its code
    let p = path(&evm, "evm/message");
    let t = path(&evm, "evm/transaction");
    let base_tx = json!({"chainId": "1", "nonce": "0", "gas": "21000", "to": "0x3535353535353535353535353535353535353535", "value": "0"});
    let with = |k: &str, v: Value| {
        let mut tx = base_tx.clone();
        tx[k] = v;
        json!({ "transaction": tx })
    };
    let mut no_chain = base_tx.clone();
    no_chain.as_object_mut().unwrap().remove("chainId");
    no_chain["gasPrice"] = json!("1");
    let cases: Vec<(String, Value, &str)> = vec![
        (p.clone(), json!({}), "invalid_request"),
        (
            p.clone(),
            json!({ "message": "hi", "extra": 1 }),
            "invalid_request",
        ),
        (p.clone(), json!({ "message": 7 }), "invalid_request"),
        (p.clone(), json!({ "message": "0xzz" }), "invalid_message"),
        (
            path(&evm, "evm/typed-data"),
            json!({ "typedData": {"types": {}} }),
            "invalid_typed_data",
        ),
        (
            t.clone(),
            json!({ "transaction": no_chain }),
            "missing_chain_id",
        ),
        (
            t.clone(),
            with("gasPrice", json!("1"))
                .clone()
                .tap(|v| v["transaction"]["maxFeePerGas"] = json!("2")),
            "fee_inconsistent",
        ),
        (t.clone(), with("gasPrice", json!("-1")), "invalid_quantity"),
        (t.clone(), with("bogus", json!("1")), "unknown_field"),
        (t.clone(), with("to", json!("0x12")), "invalid_address"),
        (t.clone(), with("type", json!("0x3")), "unsupported_tx_type"),
        (
            t.clone(),
            with("from", json!("0x3535353535353535353535353535353535353535"))
                .tap(|v| v["transaction"]["gasPrice"] = json!("1")),
            "from_mismatch",
        ),
        (
            path(&sol, "solana/message"),
            json!({ "message": "" }),
            "invalid_message",
        ),
        (
            path(&sol, "solana/message"),
            json!({ "message": "zz", "encoding": "hex" }),
            "invalid_encoding",
        ),
        (
            path(&sol, "solana/message"),
            json!({ "message": "x", "format": "weird" }),
            "invalid_request",
        ),
    ];
    for (route, body, code) in cases {
        let a = c.post(&route, body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.body);
        assert_eq!(a.body["error"]["code"], code, "{body}: {}", a.body);
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.result, code);
        assert_eq!(rec.decision, "denied");
    }
    let raw = |ct: Option<&str>, body: &[u8]| {
        let p = p.clone();
        let c = &c;
        let body = body.to_vec();
        let ct = ct.map(str::to_owned);
        async move { c.send("POST", &p, ct.as_deref(), body).await.unwrap() }
    };
    let a = raw(Some("application/json"), b"{not json").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let a = raw(Some("application/json"), b"[1,2]").await;
    assert_eq!(a.body["error"]["code"], "invalid_json");
    let a = raw(Some("text/plain"), b"{}").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let a = raw(
        Some("application/json; charset=utf-8"),
        &vec![b' '; 300 * 1024],
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let a = c
        .post(&format!("{p}?dryRun=yes"), json!({ "message": "x" }))
        .await;
    assert_eq!(a.body["error"]["code"], "invalid_query");

    // revoked: 410, final
    let revoked = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let id = revoked.id.clone();
    s.app
        .store
        .write_blocking(move |ctx| rows::mark_revoked(ctx.conn, &id, 1, "now"))
        .unwrap();
    let a = c
        .post(&path(&revoked, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::GONE, Some("wallet_revoked"))
    );

    // an MPC share: 409 with the reason
    let mpc_id = uuid::Uuid::new_v4().to_string();
    let version = s.app.token.current_wrap_version().unwrap();
    let share = custody::wrap(
        &s.app.token,
        &Binding {
            wallet_id: &mpc_id,
            chain: "evm",
            purpose: Purpose::Share,
        },
        version,
        &[0x42; 48],
    )
    .unwrap();
    let mpc = Wallet {
        id: mpc_id,
        engine: Engine::Mpc,
        source: Source::Delegation,
        wrapped_share: Some(share),
        ..evm.clone()
    };
    s.put(mpc.clone());
    let a = c
        .post(&path(&mpc, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("engine_unavailable"))
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dynamic-mpc"));

    // custody mismatch, fail closed: (1) a row whose address is not its key's
    let (_, other_address) = wallet_key::generate(Chain::Evm);
    let liar = Wallet {
        address: Some(other_address),
        ..evm.clone()
    };
    s.put(liar);
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("custody_mismatch"))
    );
    assert!(a.body.get("signature").is_none());
    let rec = s.record(a.body["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("error", "custody_mismatch")
    );
    s.put(evm.clone());
    // (2) a blob moved to another wallet's row does not open there
    let victim = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    s.put(Wallet {
        wrapped_share: evm.wrapped_share.clone(),
        ..victim.clone()
    });
    let a = c
        .post(&path(&victim, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.body["error"]["code"], "custody_mismatch");
    // and the original still signs
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // locked: 423 until the lock is cleared
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, Some("test lock")))
        .unwrap();
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::LOCKED, Some("appliance_locked"))
    );
    assert!(a.body["auditId"].is_string());
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, None))
        .unwrap();
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK);

    // after all of that, the chain is intact
    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert!(n > 20, "{n}");
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signing_is_durably_audited_and_tampering_is_found() {
    let s = start().await;
    let evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    let client = Arc::new(s.client());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = client.clone();
        let (route, body) = if i % 2 == 0 {
            (
                path(&evm, "evm/message"),
                json!({ "message": format!("m{i}") }),
            )
        } else {
            (
                path(&sol, "solana/message"),
                json!({ "message": format!("m{i}") }),
            )
        };
        tasks.push(tokio::spawn(async move { c.post(&route, body).await }));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let a = t.await.unwrap();
        assert_eq!(a.status, StatusCode::OK, "request {i}: {}", a.body);
        assert!(a.body["signature"].is_string());
        ids.insert(a.body["auditId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 200);
    for id in &ids {
        let rec = s.record(id);
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            ("allowed", "ok")
        );
    }
    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert_eq!(n, 202, "two wallet creations + 200 signatures");

    // edit one row behind the appliance's back: verify names exactly that row
    let db = rusqlite::Connection::open(s.app.store.path()).unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 57", [])
        .unwrap();
    drop(db);
    let broken = s.app.store.read(audit::verify).unwrap().unwrap_err();
    assert_eq!(broken.seq, 57);
    assert!(broken.reason.contains("edited"), "{}", broken.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_operations_wrap_at_once_and_refuse_duplicates() {
    let s = start().await;
    let w = s.import(Chain::Evm, EIP155_KEY, Some("imported"));
    assert_eq!(
        (w.source, w.engine, w.status),
        (Source::Imported, Engine::Local, Status::Active)
    );
    let again = keyward::wallets::import(
        &s.app,
        Chain::Evm,
        wallet_key::parse_secret_hex(EIP155_KEY).unwrap(),
        None,
    );
    assert!(matches!(
        again,
        Err(keyward::wallets::WalletError::Duplicate { .. })
    ));
    let bad = keyward::wallets::import(&s.app, Chain::Evm, SecretBytes::new(vec![0u8; 32]), None);
    assert!(bad.is_err());
    let listed = keyward::wallets::list(&s.app).unwrap();
    assert_eq!(listed.len(), 1);
    let got = keyward::wallets::get(&s.app, &w.id).unwrap().unwrap();
    // the stored blob opens only for this wallet and yields the imported key
    let secret = custody::unwrap(
        &s.app.token,
        &Binding {
            wallet_id: &got.id,
            chain: "evm",
            purpose: Purpose::Share,
        },
        got.wrapped_share.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(hex::encode(secret.expose()), EIP155_KEY);
    let records: Vec<audit::AuditRecord> = {
        let mut v = Vec::new();
        s.app
            .store
            .read(|c| {
                audit::export(c, None, |r| {
                    v.push(r.clone());
                    Ok(())
                })
            })
            .unwrap();
        v
    };
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].actor.as_str(), records[0].action.as_str()),
        ("operator", "wallet.import")
    );
    assert!(!records[0].detail.as_deref().unwrap().contains(EIP155_KEY));
}

/// The EIP-155 example key's public key, uncompressed SEC1, computed with k256 (not the
/// library keyward signs with).
fn eip155_public_key() -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let secret = k256::SecretKey::from_slice(&hex::decode(EIP155_KEY).unwrap()).unwrap();
    secret
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec()
}

/// Waits (bounded) until `wallet`'s row has a public key; the signer records it in the
/// background after the answer.
async fn stored_public_key(s: &Server, wallet: &str) -> Option<Vec<u8>> {
    for _ in 0..200 {
        let id = wallet.to_owned();
        let row = s
            .app
            .store
            .read(move |c| rows::get(c, &id))
            .unwrap()
            .unwrap();
        if row.public_key.is_some() {
            return row.public_key;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_public_keys_are_stored_and_signatures_verified_under_them() {
    let s = start().await;
    let c = s.client();
    // stored at creation for EVM; Solana's public key is its address
    let w = s.import(Chain::Evm, EIP155_KEY, None);
    assert_eq!(w.public_key, Some(eip155_public_key()));
    let sol = s.import(Chain::Solana, COW_KEY, None);
    assert_eq!(sol.public_key, None);
    let created = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    assert_eq!(created.public_key.as_ref().map(Vec::len), Some(65));

    // a row without one (older schema, a delegation): signs by recovery, then has it
    s.put(Wallet {
        public_key: None,
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let digest = keyward::chains::evm::personal_message_digest(b"hi");
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &digest),
        addr(&w)
    );
    assert_eq!(
        stored_public_key(&s, &w.id).await,
        Some(eip155_public_key())
    );
    // and signs under it afterwards, with the same bytes (RFC 6979)
    let b = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(a.body["signature"], b.body["signature"]);

    // a stored key that does not derive the row's address: fail closed, nothing signed
    s.put(Wallet {
        public_key: created.public_key.clone(),
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("custody_mismatch"))
    );
    assert!(a.body.get("signature").is_none());
    // a row whose address and stored key agree but whose blob holds another key: the
    // signature does not verify under the stored key
    s.put(Wallet {
        address: created.address.clone(),
        public_key: created.public_key.clone(),
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("custody_mismatch"))
    );
    assert!(a.body.get("signature").is_none());
    // ... nor, without a stored key, recover to the address, and nothing is recorded
    s.put(Wallet {
        address: created.address.clone(),
        public_key: None,
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.body["error"]["code"], "custody_mismatch");
    // (a key is recorded only after a signature proved it, so there is nothing to wait for)
    let id = w.id.clone();
    let row = s
        .app
        .store
        .read(move |c| rows::get(c, &id))
        .unwrap()
        .unwrap();
    assert_eq!(row.public_key, None);
}

/// kill -9 under load: every signature a client received has its audit record after
/// the restart, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_received_signature_survives_kill_9() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;

    let env = Env::with(EnvOptions {
        extra: CLIENTS.into(),
        ..Default::default()
    });
    // the daemon refuses paths others can read, as an operator's setup would have them
    let private = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    private(env.dir.path(), 0o700);
    private(&env.config_path, 0o600);
    let conf = std::fs::read_to_string(std::env::var("SOFTHSM2_CONF").unwrap()).unwrap();
    if let Some(dir) = conf
        .lines()
        .find_map(|l| l.strip_prefix("directories.tokendir = "))
    {
        private(std::path::Path::new(dir.trim()), 0o700);
    }
    let wallet = {
        let app = env.appliance();
        keyward::wallets::create(&app, Chain::Evm, None).unwrap()
    };

    /// Kills the daemon however the test ends, so no orphan keeps serving.
    struct Daemon(std::process::Child);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["serve", "--config", env.config_path.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !sent && line.contains("keyward ready") {
                // drop ANSI colour sequences, then take the address after `api=`
                let mut plain = String::new();
                let mut in_escape = false;
                for c in line.chars() {
                    match (in_escape, c) {
                        (false, '\x1b') => in_escape = true,
                        (true, 'm') => in_escape = false,
                        (false, c) => plain.push(c),
                        _ => {}
                    }
                }
                let line = plain;
                let at = line.find("api=").expect("api address logged");
                let api: String = line[at + 4..]
                    .trim_start_matches(|c: char| !c.is_ascii_digit())
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                eprintln!("serve: {line}");
                let _ = tx.send(api);
                sent = true;
            }
        }
    });
    let api: SocketAddr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("serve reports ready")
        .parse()
        .unwrap();
    let tls = tls_client(&env.pki.ca.cert_pem, Some(&env.pki.client));
    let route = path(&wallet, "evm/message");
    let mut load = Vec::new();
    for worker in 0..8 {
        let c = Client {
            tls: tls.clone(),
            addr: api,
        };
        let route = route.clone();
        load.push(tokio::spawn(async move {
            let mut received = Vec::new();
            for i in 0.. {
                let body =
                    serde_json::to_vec(&json!({ "message": format!("w{worker} m{i}") })).unwrap();
                match c.send("POST", &route, Some("application/json"), body).await {
                    Ok(a) if a.status == StatusCode::OK => {
                        received.push(a.body["auditId"].as_str().unwrap().to_owned())
                    }
                    Ok(a) => panic!("unexpected answer {}: {}", a.status, a.body),
                    Err(_) => break,
                }
            }
            received
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let mut received = Vec::new();
    for t in load {
        received.extend(t.await.unwrap());
    }
    assert!(received.len() > 10, "load ran: {}", received.len());

    let store = keyward::store::Store::open(&env.config().store.path, 1).unwrap();
    for id in &received {
        let owned = id.clone();
        let rec = store.read(move |c| audit::get(c, &owned)).unwrap();
        assert!(
            rec.is_some(),
            "signature with audit id {id} has no record after kill -9"
        );
    }
    let n = store.read(audit::verify).unwrap().unwrap();
    assert!(
        n as usize > received.len(),
        "{n} records, {} received",
        received.len()
    );
}

/// Issue 13: typed data shaped to exhaust alloy's recursion or CPU answers 400 with
/// `typed_data_too_complex` (and an audit record), and the appliance keeps signing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_typed_data_is_refused_and_signing_continues() {
    let s = start().await;
    let c = s.client();
    let cow = s.import(Chain::Evm, COW_KEY, None);
    let deep_array = json!({
        "types": {"P": [{"name": "a", "type": format!("uint256{}", "[]".repeat(100_000))}]},
        "primaryType": "P", "domain": {}, "message": {"a": []}
    });
    let mut chain = serde_json::Map::new();
    for i in 0..200 {
        chain.insert(
            format!("S{i}"),
            json!([{"name": "n", "type": format!("S{}", i + 1)}]),
        );
    }
    chain.insert("S200".into(), json!([{"name": "x", "type": "bool"}]));
    let struct_chain = json!({"types": chain, "primaryType": "S0", "domain": {}, "message": {}});
    let many: serde_json::Map<String, Value> =
        (0..5000).map(|i| (format!("T{i}"), json!([]))).collect();
    let many_types = json!({"types": many, "primaryType": "T0", "domain": {}, "message": {}});
    let fields: Vec<Value> = (0..5000)
        .map(|i| json!({"name": format!("f{i}"), "type": "bool"}))
        .collect();
    let many_fields =
        json!({"types": {"P": fields}, "primaryType": "P", "domain": {}, "message": {}});
    for (what, td, limit) in [
        ("100,000 []", deep_array, "max_name_len"),
        ("200 chained structs", struct_chain, "max_types"),
        ("5,000 types", many_types, "max_types"),
        ("5,000 fields", many_fields, "max_fields"),
    ] {
        let a = c
            .post(&path(&cow, "evm/typed-data"), json!({ "typedData": td }))
            .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("typed_data_too_complex")),
            "{what}: {}",
            a.body
        );
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(limit), "{what}: {message}");
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(
            (rec.decision.as_str(), rec.result.as_str()),
            ("denied", "typed_data_too_complex")
        );
    }
    // the same shape sent as a JSON string is checked the same way
    let as_string = json!({"typedData": json!({
        "types": {"P": [{"name": "a", "type": format!("bool{}", "[]".repeat(9))}]},
        "primaryType": "P", "message": {}
    }).to_string()});
    let a = c.post(&path(&cow, "evm/typed-data"), as_string).await;
    assert_eq!(
        a.body["error"]["code"], "typed_data_too_complex",
        "{}",
        a.body
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_array_dims"));

    // still serving: the EIP's Mail example signs to its known digest
    let a = c
        .post(
            &path(&cow, "evm/typed-data"),
            json!({ "typedData": mail_typed_data() }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let digest = b256("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &digest),
        addr(&cow)
    );
}

/// Issue 13: transaction shapes that used to overflow or slip through are refused with
/// precise codes, and the appliance then signs normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_transactions_and_messages_are_refused() {
    let s = start().await;
    let c = s.client();
    let evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();

    // legacy: 2 * chainId + 35 + parity must fit 64 bits
    let legacy = |chain_id: &str| {
        json!({"transaction": {"chainId": chain_id, "nonce": 0, "gas": 21000, "gasPrice": 1,
            "to": "0x3535353535353535353535353535353535353535"}})
    };
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            legacy("9223372036854775790"),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_quantity")),
        "{}",
        a.body
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("chainId"));
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            legacy("9223372036854775789"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let v = u128::from_str_radix(
        a.body["signature"]["v"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(v == 2 * 9223372036854775789 + 35 || v == 2 * 9223372036854775789 + 36);

    // access lists are bounded
    let entry = json!({"address": "0x0000000000000000000000000000000000000001", "storageKeys": []});
    let a = c
        .post(
            &path(&evm, "evm/transaction"),
            json!({"transaction": {"type": 1, "chainId": 1, "nonce": 0, "gas": 21000,
                "gasPrice": 1, "accessList": vec![entry; 257]}}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_list_too_large")),
        "{}",
        a.body
    );

    // a Solana transaction message with bytes after it is still no "message"
    let tx = common::solana_tx(&solana_key(&sol), None, false);
    let message = &tx[65..];
    for tail in [&b""[..], b"\n", b" - please sign"] {
        let mut bytes = message.to_vec();
        bytes.extend_from_slice(tail);
        let a = c
            .post(
                &path(&sol, "solana/message"),
                json!({"message": B64.encode(&bytes), "encoding": "base64"}),
            )
            .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("message_is_transaction")),
            "tail {tail:?}: {}",
            a.body
        );
    }
    // still serving
    let a = c
        .post(&path(&sol, "solana/message"), json!({"message": "hello"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

fn solana_key(w: &Wallet) -> [u8; 32] {
    solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap()
}
