//! Micro-benchmarks of the operations a request is made of: `cargo bench --bench micro`.
//!
//! Uses a throw-away SoftHSM2 token in a temp dir (like the integration tests), so the
//! token figures are SoftHSM2's. Not part of `cargo test`.

// criterion_group! generates an undocumented `pub fn benches`
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use alloy_primitives::B256;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::Signer as _;
use keyward::chains::{evm, solana};
use keyward::config::OaepMode;
use keyward::custody::{self, Binding, Purpose};
use keyward::hsm::{Token, TokenSettings};
use keyward::signer::ecdsa;
use keyward::simulator::Simulator;
use keyward::store::audit::{self, AuditEvent};
use keyward::store::wallets::Chain;
use keyward::store::Store;
use secrecy::SecretString;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "bench-user-pin-1234";

struct Env {
    _dir: tempfile::TempDir,
    raw: Token,
    native: Token,
    store: Store,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("tokens dir");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let pin = SecretString::from(PIN.to_owned());
    keyward::hsm::provision_token(
        Path::new(MODULE),
        "kw-bench",
        &SecretString::from("bench-so-pin-5678".to_owned()),
        &pin,
    )
    .expect("provision token");
    let settings = |oaep| TokenSettings {
        module: MODULE.into(),
        token_label: Some("kw-bench".into()),
        token_serial: None,
        slot_id: None,
        pool_size: 4,
        oaep,
        gcm_iv: keyward::config::GcmIvMode::Auto,
        label_prefix: "keyward".into(),
        rsa_bits: 3072,
        environment: Vec::new(),
    };
    let raw = Token::open(settings(OaepMode::Raw), pin.clone()).expect("token");
    keyward::appliance::init_keys(&raw).expect("init keys");
    let raw = Token::open(settings(OaepMode::Raw), pin.clone()).expect("token");
    let native = Token::open(settings(OaepMode::Native), pin).expect("token");
    let store = Store::open(&dir.path().join("bench.db"), 2).expect("store");
    Env {
        _dir: dir,
        raw,
        native,
        store,
    }
}

fn mail_typed_data() -> serde_json::Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eip712_mail.json"
    )))
    .unwrap()
}

fn solana_transfer(from: &[u8; 32]) -> Vec<u8> {
    let keys = [*from, [7u8; 32], [0u8; 32]];
    let mut msg = vec![1u8, 0, 1, 3];
    for k in &keys {
        msg.extend_from_slice(k);
    }
    msg.extend_from_slice(&[9u8; 32]);
    msg.extend([1, 2, 2, 0, 1]);
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend(1_000_000u64.to_le_bytes());
    msg.push(data.len() as u8);
    msg.extend(data);
    let mut tx = vec![1u8];
    tx.extend([0u8; 64]);
    tx.extend(msg);
    tx
}

fn token(c: &mut Criterion, e: &Env) {
    let version = e.raw.current_wrap_version().expect("wrap key");
    let binding = Binding {
        wallet_id: "0b6f5c1e-bench-wallet",
        chain: "evm",
        purpose: Purpose::Share,
    };
    let secret = [0x42u8; 32];
    let blob = custody::wrap(&e.raw, &binding, version, &secret).expect("wrap");
    let mut g = c.benchmark_group("token");
    g.bench_function("aes-gcm wrap 32 B (custody::wrap)", |b| {
        b.iter(|| custody::wrap(&e.raw, &binding, version, &secret).expect("wrap"))
    });
    g.bench_function("aes-gcm unwrap 32 B (custody::unwrap)", |b| {
        b.iter(|| custody::unwrap(&e.raw, &binding, &blob).expect("unwrap"))
    });

    let rsa = e.raw.rsa_keys().expect("rsa keys");
    let key = rsa.last().expect("rsa key");
    let public = key.public.clone().expect("public");
    let ct = public
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            &[7u8; 32],
        )
        .expect("encrypt");
    match e.native.rsa_decrypt(&key.label, &ct) {
        Ok(_) => {
            g.bench_function("rsa-3072 oaep-sha256 decrypt native", |b| {
                b.iter(|| e.native.rsa_decrypt(&key.label, &ct).expect("decrypt"))
            });
        }
        Err(err) => {
            println!("token/rsa-3072 oaep-sha256 decrypt native: unsupported by this token ({err})")
        }
    }
    g.sample_size(20);
    g.bench_function("rsa-3072 decrypt raw + host OAEP", |b| {
        b.iter(|| e.raw.rsa_decrypt(&key.label, &ct).expect("decrypt"))
    });
    let sim = Simulator::new(
        public,
        key.fingerprint(),
        SecretString::from("bench".to_owned()),
    );
    let enc = keyward::envelope::parse(&sim.encrypt(&[0x11u8; 200]).expect("envelope"))
        .expect("parse envelope");
    g.bench_function("envelope decrypt 200 B (RSA raw + AES-GCM)", |b| {
        b.iter(|| keyward::envelope::decrypt_blocking(&e.raw, &enc).expect("decrypt"))
    });
    g.finish();
}

fn host(c: &mut Criterion, e: &Env) {
    let mut g = c.benchmark_group("host");
    let (evm_secret, _) = keyward::wallet_key::generate(Chain::Evm);
    let digest = B256::from([0x5au8; 32]);
    let sk = keyward::wallet_key::evm_key(&evm_secret).expect("evm key");
    g.bench_function("k256 key from bytes + sign prehash", |b| {
        b.iter(|| {
            let k = keyward::wallet_key::evm_key(&evm_secret).expect("key");
            evm::sign_digest(&k, &digest)
        })
    });
    let sig = evm::sign_digest(&sk, &digest);
    g.bench_function("k256 recover address (signer's check)", |b| {
        b.iter(|| evm::recover_address(&digest, &sig).expect("recover"))
    });
    g.bench_function("k256 verify prehash with known key", |b| {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let vk = *sk.verifying_key();
        let (s, _) = sk
            .sign_prehash_recoverable(digest.as_slice())
            .expect("sign");
        b.iter(|| vk.verify_prehash(digest.as_slice(), &s).expect("verify"))
    });

    // the local engine since issue 16: libsecp256k1 through keyward::signer::ecdsa
    g.bench_function("libsecp256k1 sign prehash (local engine)", |b| {
        b.iter(|| ecdsa::sign_prehash(evm_secret.expose(), &digest).expect("sign"))
    });
    let lsig = ecdsa::sign_prehash(evm_secret.expose(), &digest).expect("sign");
    g.bench_function("libsecp256k1 recover address (signer's check)", |b| {
        b.iter(|| ecdsa::recover_address(&digest, &lsig).expect("recover"))
    });
    let pk_bytes = ecdsa::public_key_of_secret(evm_secret.expose()).expect("public key");
    g.bench_function("libsecp256k1 parse stored public key (65 B)", |b| {
        b.iter(|| ecdsa::parse_public_key(&pk_bytes).expect("parse"))
    });
    g.bench_function("libsecp256k1 verify with known key", |b| {
        let pk = ecdsa::parse_public_key(&pk_bytes).expect("parse");
        let mut compact = [0u8; 64];
        compact[..32].copy_from_slice(&lsig.r);
        compact[32..].copy_from_slice(&lsig.s);
        let s = secp256k1::ecdsa::Signature::from_compact(&compact).expect("sig");
        let msg = secp256k1::Message::from_digest(digest.0);
        b.iter(|| ecdsa::context().verify_ecdsa(msg, &s, &pk).expect("verify"))
    });
    g.bench_function(
        "libsecp256k1 public key from secret (wallet creation)",
        |b| b.iter(|| ecdsa::public_key_of_secret(evm_secret.expose()).expect("derive")),
    );

    let (sol_secret, _) = keyward::wallet_key::generate(Chain::Solana);
    let msg = solana_transfer(&[1u8; 32]);
    g.bench_function("ed25519 key from seed + sign 150 B", |b| {
        b.iter(|| {
            let k = keyward::wallet_key::solana_key(&sol_secret).expect("key");
            k.sign(&msg)
        })
    });
    let sol_key = keyward::wallet_key::solana_key(&sol_secret).expect("key");
    let sol_pub = sol_key.verifying_key().to_bytes();
    g.bench_function("ed25519 public key from address bytes (decompress)", |b| {
        b.iter(|| ed25519_dalek::VerifyingKey::from_bytes(&sol_pub).expect("point"))
    });
    g.bench_function(
        "ed25519 expand seed + raw_sign 150 B, known public key",
        |b| {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&sol_pub).expect("point");
            let seed: &[u8; 32] = sol_secret.expose().try_into().expect("32 bytes");
            b.iter(|| {
                let esk = ed25519_dalek::hazmat::ExpandedSecretKey::from(seed);
                ed25519_dalek::hazmat::raw_sign::<sha2::Sha512>(&esk, &msg, &vk)
            })
        },
    );
    let sol_sig = sol_key.sign(&msg);
    g.bench_function("ed25519 verify_strict (signer's check)", |b| {
        let vk = sol_key.verifying_key();
        b.iter(|| vk.verify_strict(&msg, &sol_sig).expect("verify"))
    });

    let typed = mail_typed_data();
    g.bench_function("eip-712 hash (Mail example)", |b| {
        b.iter(|| evm::typed_data(&typed).expect("typed data"))
    });
    g.bench_function("eip-191 personal message digest 32 B", |b| {
        b.iter(|| evm::personal_message_digest(b"keyward bench message 123456789"))
    });
    let tx = solana_transfer(&solana::pubkey_of(&sol_key));
    g.bench_function("solana transaction parse (transfer)", |b| {
        b.iter(|| solana::parse_transaction(&tx).expect("parse"))
    });

    let policy = keyward::policy::PolicySection::parse_file(
        r#"
default = "deny"
[[rule]]
id = "bench"
clients = ["bench-client"]
wallets = ["*"]
[rule.evm]
chain_ids = [1]
max_value = { "*" = "1000000000000000000" }
[rule.message]
allow = true
"#,
    )
    .expect("policy parses")
    .compile()
    .expect("policy compiles");
    let unsigned = evm::parse_transaction(
        &serde_json::json!({
            "type": "0x2", "chainId": "0x1", "nonce": "0x0", "maxFeePerGas": "0x4a817c800",
            "maxPriorityFeePerGas": "0x3b9aca00", "gas": "0x5208",
            "to": "0x3535353535353535353535353535353535353535", "value": "0x1", "data": "0x"
        }),
        1 << 17,
    )
    .expect("tx");
    let subject = keyward::policy::Subject::EvmTransaction(Box::new(unsigned));
    let req = keyward::policy::Request {
        client: "bench-client",
        wallet: keyward::policy::WalletRef {
            id: "w1",
            chain: "evm",
            label: None,
        },
        subject: &subject,
        pending_nonce: None,
    };
    g.bench_function("policy decide (EIP-1559 tx, one rule)", |b| {
        b.iter(|| {
            let d = policy.decide(&req);
            assert!(d.allowed());
            d
        })
    });

    // the sign routes' body handling: today bytes -> Value -> struct (two passes)
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct MessageReq {
        message: String,
    }
    let body = br#"{"message":"keyward-load evm-message 0000000123"}"#;
    g.bench_function("request body bytes -> Value -> struct (evm.message)", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(body).expect("json");
            serde_json::from_value::<MessageReq>(v).expect("struct")
        })
    });
    g.bench_function("request body bytes -> struct (evm.message)", |b| {
        b.iter(|| serde_json::from_slice::<MessageReq>(body).expect("struct"))
    });
    g.finish();

    let mut g = c.benchmark_group("store");
    // the read-pool checkouts a sign request makes (lock state, wallet row)
    let (secret, address) = keyward::wallet_key::generate(Chain::Evm);
    let version = e.raw.current_wrap_version().expect("wrap key");
    let row = keyward::wallets::wrap_local(
        &e.raw,
        Chain::Evm,
        &secret,
        address,
        None,
        keyward::store::wallets::Source::Generated,
        version,
    )
    .expect("wrap");
    let id = row.id.clone();
    e.store
        .write_blocking(move |ctx| keyward::store::wallets::upsert(ctx.conn, &row))
        .expect("wallet row");
    let lock = keyward::appliance::LOCK_KEY;
    g.bench_function("read checkout: lock state", |b| {
        b.iter(|| {
            e.store
                .read(|c| keyward::store::state::get(c, lock))
                .expect("read")
        })
    });
    g.bench_function("read checkout: wallet row by id", |b| {
        b.iter(|| {
            e.store
                .read(|c| keyward::store::wallets::get(c, &id))
                .expect("read")
        })
    });
    g.bench_function("read checkout: lock state + wallet row together", |b| {
        b.iter(|| {
            e.store
                .read(|c| {
                    Ok((
                        keyward::store::state::get(c, lock)?,
                        keyward::store::wallets::get(c, &id)?,
                    ))
                })
                .expect("read")
        })
    });
    g.sample_size(20);
    let store = e.store.clone();
    g.bench_function("audit append, one durable commit (write_blocking)", |b| {
        b.iter(|| {
            store
                .write_blocking(|ctx| audit::append(ctx, bench_event()))
                .expect("append")
        })
    });
    let store = Arc::new(e.store.clone());
    g.bench_function(
        "audit append x16 concurrent (group commit), per batch",
        |b| {
            b.iter_batched(
                || (),
                |()| {
                    std::thread::scope(|s| {
                        for _ in 0..16 {
                            let st = store.clone();
                            s.spawn(move || {
                                st.write_blocking(|ctx| audit::append(ctx, bench_event()))
                                    .expect("append")
                            });
                        }
                    })
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

fn bench_event() -> AuditEvent {
    AuditEvent {
        actor: "bench-client".into(),
        action: "sign".into(),
        wallet_id: Some("0b6f5c1e-bench-wallet".into()),
        chain: Some("evm".into()),
        operation: Some("evm.message".into()),
        digest: Some(hex::encode([0x5au8; 32])),
        decision: "allowed".into(),
        result: "ok".into(),
        detail: Some(serde_json::json!({ "messageLen": 32 })),
    }
}

fn all(c: &mut Criterion) {
    let e = env();
    token(c, &e);
    host(c, &e);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = all
}
criterion_main!(benches);
