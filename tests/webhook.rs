//! The webhook face end to end: real TLS on loopback, a real SoftHSM2 token, a real
//! SQLite file. Envelopes come from the simulator and from an independent
//! implementation (`rsa` + `aes-gcm` directly, in `webhook_support`).

mod common;
mod webhook_support;

use hyper::Method;
use keyward::custody::{self, Binding, Purpose};
use keyward::store::wallets::{self, Chain, Engine, Status, Wallet};
use keyward::wallet_key;
use webhook_support::*;

fn wallet(h: &Harness, id: &str) -> Option<Wallet> {
    let id = id.to_owned();
    h.app.store.read(move |c| wallets::get(c, &id)).unwrap()
}

fn unwrap(h: &Harness, w: &Wallet, purpose: Purpose) -> Vec<u8> {
    let blob = match purpose {
        Purpose::Share => w.wrapped_share.as_ref(),
        Purpose::ApiKey => w.wrapped_api_key.as_ref(),
    }
    .expect("material present");
    custody::unwrap(
        &h.app.token,
        &Binding {
            wallet_id: &w.id,
            chain: w.chain.as_str(),
            purpose,
        },
        blob,
    )
    .unwrap()
    .expose()
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_delegations_land_local_wallets_on_both_chains() {
    let mut h = start(|_| {}).await;
    for (chain, iv_len) in [(Chain::Evm, 16), (Chain::Solana, 12)] {
        h.sim.iv_len = iv_len;
        let wid = id();
        let d = h.sim.delegation(chain, &wid).unwrap();
        let r = h.deliver(&d).await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["outcome"], "stored");
        let w = wallet(&h, &wid).unwrap();
        assert_eq!(w.chain, chain);
        assert_eq!(w.engine, Engine::Local);
        assert_eq!(w.status, Status::Active);
        assert_eq!(w.address, d.address);
        // the raw 32 key bytes are stored (wrapped), not the JSON around them
        assert_eq!(
            unwrap(&h, &w, Purpose::Share),
            d.key.as_ref().unwrap().expose()
        );
        assert_eq!(
            unwrap(&h, &w, Purpose::ApiKey),
            d.api_key.as_ref().unwrap().expose()
        );
        let audit = count(
            h.app.store.path().unwrap(),
            &format!("SELECT COUNT(*) FROM audit WHERE wallet_id = '{wid}' AND action = 'delegation.created'"),
        );
        assert_eq!(audit, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_envelopes_are_accepted_with_both_iv_lengths() {
    let h = start(|_| {}).await;
    let env_id = id();
    let cases = [
        Enc {
            iv_len: 12,
            ..Default::default()
        },
        Enc {
            iv_len: 16,
            padded: true,
            alg: "HYBRID-RSA-AES-256",
            ..Default::default()
        },
        Enc {
            iv_len: 16,
            kid: Some(h.rsa_label.clone()),
            alg: "RSA-OAEP",
            ..Default::default()
        },
        Enc {
            iv_len: 12,
            kid: Some("dynamic_rsa_lSuvWlCy".into()),
            ..Default::default()
        },
    ];
    for (i, enc) in cases.iter().enumerate() {
        let chain = if i % 2 == 0 {
            Chain::Evm
        } else {
            Chain::Solana
        };
        let (key, address) = wallet_key::generate(chain);
        let share = format!(
            r#"{{"secretShare":"{}","pubkey":{{}}}}"#,
            hex::encode(key.expose())
        );
        let api_key = format!("dyn_api_{i}_{}", id());
        let wid = id();
        let data = serde_json::json!({
            "chain": if chain == Chain::Evm { "evm" } else { "SOL" },
            "walletId": wid,
            "publicKey": if chain == Chain::Evm { address.to_uppercase().replace("0X", "0x") } else { address.clone() },
            "encryptedDelegatedShare": encrypt(&h.public, share.as_bytes(), enc),
            "encryptedWalletApiKey": encrypt(&h.public, api_key.as_bytes(), enc),
        });
        let b = body(
            &id(),
            "wallet.delegation.created",
            &now_ts(0),
            &env_id,
            data,
        );
        let r = h.post_signed(&b).await;
        assert_eq!(r.status, 200, "case {i}: {}", r.json);
        let w = wallet(&h, &wid).unwrap();
        assert_eq!(w.engine, Engine::Local, "case {i}");
        assert_eq!(
            w.address.as_deref(),
            Some(address.as_str()),
            "canonical address"
        );
        assert_eq!(unwrap(&h, &w, Purpose::Share), key.expose());
        assert_eq!(unwrap(&h, &w, Purpose::ApiKey), api_key.as_bytes());
    }

    // a share that is not a complete key is an MPC share, stored whole
    let (_, address) = wallet_key::generate(Chain::Evm);
    let share = br#"{"keyShareId":"ks-1","secretShare":"{\"x\":\"mpc-share-material\"}"}"#;
    let wid = id();
    let enc = Enc::default();
    let data = serde_json::json!({
        "chain": "EVM", "walletId": wid, "publicKey": address,
        "encryptedDelegatedShare": encrypt(&h.public, share, &enc),
        "encryptedWalletApiKey": encrypt(&h.public, b"dyn_api_key_mpc", &enc),
    });
    let r = h
        .post_signed(&body(
            &id(),
            "wallet.delegation.created",
            &now_ts(0),
            &env_id,
            data,
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let w = wallet(&h, &wid).unwrap();
    assert_eq!(w.engine, Engine::Mpc);
    assert_eq!(unwrap(&h, &w, Purpose::Share), share);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_allowlist_and_forwarded_for() {
    let h = start(|c| c.webhook.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let before = h.dump();
    // not allowed: closed at accept, before TLS, so not even a handshake completes —
    // whatever the request would have been (a ping, a body over the limit, an
    // X-Forwarded-For naming an allowed address from a peer that is not a proxy)
    let d = h.sim.ping();
    let mut spoofed = d.headers();
    spoofed.push(("x-forwarded-for".into(), "44.198.112.228".into()));
    for (body, headers) in [
        (d.body.clone(), d.headers()),
        (vec![b' '; 200_000], d.headers()),
        (d.body.clone(), spoofed),
    ] {
        let r = keyward::simulator::request(
            Some(DENIED.parse().unwrap()),
            Method::POST,
            &h.url,
            &h.ca,
            body,
            &headers,
        )
        .await;
        match r {
            Err(e) => assert!(e.to_string().contains("TLS"), "{e}"),
            Ok(a) => panic!("a refused source got an HTTP answer: {}", a.status),
        }
    }
    // from the trusted proxy, the right-most untrusted address is the source
    let mut hdrs = d.headers();
    hdrs.push(("x-forwarded-for".into(), "127.0.0.2, 127.0.0.3".into()));
    let r = h
        .raw("127.0.0.1", Method::POST, &h.url, d.body.clone(), &hdrs)
        .await;
    assert_eq!((r.status, r.code()), (403, "source_not_allowed"));
    assert_eq!(h.dump(), before, "refusals change nothing");

    let mut hdrs = d.headers();
    hdrs.push(("x-forwarded-for".into(), "127.0.0.3, 127.0.0.2".into()));
    let r = h
        .raw("127.0.0.1", Method::POST, &h.url, d.body.clone(), &hdrs)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let d2 = h.sim.ping();
    let mut hdrs2 = d2.headers();
    hdrs2.push(("x-forwarded-for".into(), "127.0.0.3".into()));
    let r = h
        .raw(ALLOWED, Method::POST, &h.url, d2.body.clone(), &hdrs2)
        .await;
    assert_eq!(
        r.status, 200,
        "XFF from a non-proxy does not make an allowed peer refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_concurrency_limits_answer_429() {
    let h = start(|c| c.webhook.per_source_rate = 1).await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = h.deliver(&h.sim.ping()).await;
        codes.push((r.status, r.code().to_owned()));
    }
    assert_eq!(codes[0].0, 200);
    assert_eq!(codes[1].0, 200, "burst is twice the rate");
    assert!(
        codes[2..]
            .iter()
            .any(|c| c == &(429, "rate_limited".to_owned())),
        "{codes:?}"
    );
    // another allowed source is not starved by the first
    let d = h.sim.ping();
    let r = h
        .raw(
            "127.0.0.1",
            Method::POST,
            &h.url,
            d.body.clone(),
            &d.headers(),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_concurrent_duplicates_are_processed_once() {
    let h = std::sync::Arc::new(start(|_| {}).await);
    let wid = id();
    let d = h.sim.delegation(Chain::Evm, &wid).unwrap();
    assert_eq!(h.deliver(&d).await.json["status"], "processed");
    let before = h.dump();
    let r = h.deliver(&d).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(h.dump(), before, "a replay changes nothing");

    let wid2 = id();
    let d2 = std::sync::Arc::new(h.sim.delegation(Chain::Solana, &wid2).unwrap());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (h, d2) = (h.clone(), d2.clone());
        tasks.push(tokio::spawn(async move { h.deliver(&d2).await }));
    }
    let mut processed = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.json);
        if r.json["status"] == "processed" {
            processed += 1;
        }
    }
    assert_eq!(processed, 1);
    let db = h.app.store.path().unwrap();
    assert_eq!(
        count(
            db,
            &format!("SELECT COUNT(*) FROM audit WHERE wallet_id = '{wid2}'")
        ),
        1
    );
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT COUNT(*) FROM processed_events WHERE event_id = '{}'",
                d2.event_id
            )
        ),
        1
    );
}

fn at(base: time::OffsetDateTime, secs: i64) -> time::OffsetDateTime {
    base + time::Duration::seconds(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_rules() {
    let h = start(|_| {}).await;
    let t0 = time::OffsetDateTime::now_utc() - time::Duration::hours(1);

    // revoke for a wallet never seen: tombstone
    let w = id();
    let r = h
        .deliver(&h.sim.revoke_at(Chain::Evm, &w, at(t0, 100)))
        .await;
    assert_eq!(r.json["outcome"], "tombstoned", "{}", r.json);
    let row = wallet(&h, &w).unwrap();
    assert_eq!(
        (row.status, row.wrapped_share.is_none()),
        (Status::Revoked, true)
    );
    // a created older than the tombstone: recorded and ignored
    let before = wallet(&h, &w).unwrap();
    let r = h
        .deliver(&h.sim.delegation_at(Chain::Evm, &w, at(t0, 50)).unwrap())
        .await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("ignored_stale"))
    );
    let after = wallet(&h, &w).unwrap();
    assert_eq!(
        (after.status, after.updated_at),
        (Status::Revoked, before.updated_at)
    );
    // a created newer than the tombstone: a fresh delegation
    let fresh = h.sim.delegation_at(Chain::Evm, &w, at(t0, 200)).unwrap();
    let r = h.deliver(&fresh).await;
    assert_eq!(r.json["outcome"], "stored", "{}", r.json);
    let row = wallet(&h, &w).unwrap();
    assert_eq!(row.status, Status::Active);
    assert_eq!(
        unwrap(&h, &row, Purpose::Share),
        fresh.key.as_ref().unwrap().expose()
    );

    // a second, newer created for an active wallet replaces its material
    let newer = h.sim.delegation_at(Chain::Evm, &w, at(t0, 300)).unwrap();
    let r = h.deliver(&newer).await;
    assert_eq!(r.json["outcome"], "replaced");
    let row = wallet(&h, &w).unwrap();
    assert_eq!(row.address, newer.address);
    assert_eq!(
        unwrap(&h, &row, Purpose::Share),
        newer.key.as_ref().unwrap().expose()
    );
    // an older created arriving late does not
    let r = h
        .deliver(&h.sim.delegation_at(Chain::Evm, &w, at(t0, 250)).unwrap())
        .await;
    assert_eq!(r.json["outcome"], "ignored_stale");
    assert_eq!(wallet(&h, &w).unwrap().address, newer.address);
    // a revoke older than the delegation in force does not end it
    let r = h
        .deliver(&h.sim.revoke_at(Chain::Evm, &w, at(t0, 280)))
        .await;
    assert_eq!(r.json["outcome"], "ignored_stale");
    assert_eq!(wallet(&h, &w).unwrap().status, Status::Active);

    // revoke: material gone, tombstone kept, audited
    let r = h
        .deliver(&h.sim.revoke_at(Chain::Evm, &w, at(t0, 400)))
        .await;
    assert_eq!(r.json["outcome"], "revoked");
    let row = wallet(&h, &w).unwrap();
    assert_eq!(row.status, Status::Revoked);
    assert!(row.wrapped_share.is_none() && row.wrapped_api_key.is_none());
    assert_eq!(
        row.revoked_at_ms,
        Some((at(t0, 400).unix_timestamp_nanos() / 1_000_000) as i64)
    );
    let db = h.app.store.path().unwrap();
    assert_eq!(count(db, &format!("SELECT COUNT(*) FROM audit WHERE wallet_id = '{w}' AND action = 'delegation.revoked'")), 3);
    // and the audit chain is intact
    let verified = h.app.store.read(keyward::store::audit::verify).unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_unknown_events_are_recorded_without_effect() {
    let h = start(|_| {}).await;
    let wallets_before = count(h.app.store.path().unwrap(), "SELECT COUNT(*) FROM wallets");
    let audit_before = count(h.app.store.path().unwrap(), "SELECT COUNT(*) FROM audit");
    let ping = h.sim.ping();
    let r = h.deliver(&ping).await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("ignored"))
    );
    let other = h.sim.delivery(
        &id(),
        "user.session.created",
        serde_json::json!({"x": 1}),
        time::OffsetDateTime::now_utc(),
    );
    let r = h.deliver(&other).await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("ignored"))
    );
    let db = h.app.store.path().unwrap();
    assert_eq!(count(db, "SELECT COUNT(*) FROM wallets"), wallets_before);
    assert_eq!(count(db, "SELECT COUNT(*) FROM audit"), audit_before);
    assert_eq!(
        count(
            db,
            &format!(
                "SELECT COUNT(*) FROM processed_events WHERE event_id IN ('{}', '{}')",
                ping.event_id, other.event_id
            )
        ),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_simulation_sends_to_the_configured_face() {
    let h = start(|_| {}).await;
    let mut cfg = h.app.config().as_ref().clone();
    cfg.webhook.listen = h
        .url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let report = keyward::simulator::run_simulation(
        &cfg,
        keyward::simulator::EventKind::Delegation,
        Chain::Solana,
        Some("sim-wallet-1".into()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.status, 200, "{}", report.response);
    let w = wallet(&h, "sim-wallet-1").unwrap();
    assert_eq!(w.address, report.address);
    assert_eq!(w.engine, Engine::Local);
    let report = keyward::simulator::run_simulation(
        &cfg,
        keyward::simulator::EventKind::Revoke,
        Chain::Solana,
        Some("sim-wallet-1".into()),
        Some(h.url.clone()),
    )
    .await
    .unwrap();
    assert_eq!(report.status, 200, "{}", report.response);
    assert_eq!(wallet(&h, "sim-wallet-1").unwrap().status, Status::Revoked);
}

/// Issue 13: an eventId already processed as another event (name or wallet) is 409
/// `event_id_conflict`, never 200 "duplicate"; the wallet is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_event_id_is_a_conflict_not_a_duplicate() {
    let h = start(|_| {}).await;
    let wid = id();
    let created = h.sim.delegation(Chain::Evm, &wid).unwrap();
    assert_eq!(h.deliver(&created).await.json["outcome"], "stored");
    let before = h.dump();

    let now = time::OffsetDateTime::now_utc();
    let revoke_same_id = h.sim.delivery(
        &created.event_id,
        "wallet.delegation.revoked",
        serde_json::json!({"walletId": wid, "chain": "EVM"}),
        now,
    );
    let other_wallet = h.sim.delivery(
        &created.event_id,
        "wallet.delegation.revoked",
        serde_json::json!({"walletId": id(), "chain": "EVM"}),
        now,
    );
    let ping_same_id = h
        .sim
        .delivery(&created.event_id, "ping", serde_json::json!({}), now);
    for d in [&revoke_same_id, &other_wallet, &ping_same_id] {
        let r = h.deliver(d).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "event_id_conflict"),
            "{}",
            r.json
        );
    }
    assert_eq!(h.dump(), before, "nothing changed");
    assert_eq!(wallet(&h, &wid).unwrap().status, Status::Active);
    // the true duplicate is still a 200 duplicate
    let r = h.deliver(&created).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("duplicate"))
    );
    // and a revocation under its own id revokes
    let r = h.deliver(&h.sim.revoke(Chain::Evm, &wid)).await;
    assert_eq!(r.json["outcome"], "revoked", "{}", r.json);
}

/// Issue 13: a wallet answers to the environment that delegated it: a `created`
/// (replace) or `revoked` from another environment is 403 `environment_mismatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_another_environment_are_refused() {
    let mut h = start(|_| {}).await;
    h.sim.environment_id = "env-a".into();
    let wid = id();
    let first = h.sim.delegation(Chain::Evm, &wid).unwrap();
    assert_eq!(h.deliver(&first).await.json["outcome"], "stored");
    assert_eq!(
        wallet(&h, &wid).unwrap().environment_id.as_deref(),
        Some("env-a")
    );
    let before = h.dump();

    h.sim.environment_id = "env-b".into();
    for d in [
        h.sim.revoke(Chain::Evm, &wid),
        h.sim.delegation(Chain::Evm, &wid).unwrap(),
    ] {
        let r = h.deliver(&d).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "environment_mismatch"),
            "{}: {}",
            d.event_name,
            r.json
        );
    }
    assert_eq!(
        h.dump(),
        before,
        "nothing changed, not even processed_events"
    );
    let w = wallet(&h, &wid).unwrap();
    assert_eq!((w.status, w.address), (Status::Active, first.address));

    // its own environment still can
    h.sim.environment_id = "env-a".into();
    let r = h.deliver(&h.sim.revoke(Chain::Evm, &wid)).await;
    assert_eq!(r.json["outcome"], "revoked", "{}", r.json);
    // and the tombstone stays bound
    h.sim.environment_id = "env-b".into();
    let r = h
        .deliver(&h.sim.delegation(Chain::Evm, &wid).unwrap())
        .await;
    assert_eq!(r.code(), "environment_mismatch", "{}", r.json);
}

/// A delegation of an address another active wallet holds is refused (409
/// `wallet_conflict`) and nothing is stored, whatever holds it (a local wallet from
/// `wallets import`, another delegation), whatever the delegation is (an `mpc` share or a
/// complete key), however the address is spelled, on either chain; a re-delegation of the
/// holder itself is no conflict, and once the holder is revoked the same delivery (the
/// vendor's retry) is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegation_of_an_address_another_active_wallet_holds_is_refused() {
    let h = start(|_| {}).await;
    let now = time::OffsetDateTime::now_utc();
    let mpc_share = br#"{"keyShareId":"ks-1","secretShare":"{\"x\":\"mpc-share-material\"}"}"#;
    let local_share = |key: &keyward::custody::SecretBytes, address: &str| {
        serde_json::to_vec(&serde_json::json!({
            "keyShareId": id(), "secretShare": hex::encode(key.expose()), "pubkey": {"address": address},
        }))
        .unwrap()
    };
    let refused = |r: &Reply, what: &str| {
        assert_eq!(
            (r.status, r.code()),
            (409, "wallet_conflict"),
            "{what}: {}",
            r.json
        );
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nothing was stored"),
            "{what}: {}",
            r.json
        );
    };

    // a local EVM wallet and a local Solana wallet, made by the operator
    let (evm_key, evm_addr) = wallet_key::generate(Chain::Evm);
    let local = keyward::wallets::import(&h.app, Chain::Evm, evm_key.clone(), None).unwrap();
    let sol = keyward::wallets::create(&h.app, Chain::Solana, None).unwrap();
    let sol_addr = sol.address.clone().unwrap();

    let before = h.dump();
    let checksummed = evm_addr
        .parse::<alloy_primitives::Address>()
        .unwrap()
        .to_checksum(None);
    assert_ne!(checksummed, evm_addr);
    let cases = [
        (
            "an mpc share claiming a local wallet's address",
            h.sim
                .delegation_with(Chain::Evm, &id(), &evm_addr, mpc_share, b"k", now)
                .unwrap(),
        ),
        (
            "the same key delegated under another wallet id",
            h.sim
                .delegation_with(
                    Chain::Evm,
                    &id(),
                    &evm_addr,
                    &local_share(&evm_key, &evm_addr),
                    b"k",
                    now,
                )
                .unwrap(),
        ),
        (
            "the address in EIP-55 spelling",
            h.sim
                .delegation_with(Chain::Evm, &id(), &checksummed, mpc_share, b"k", now)
                .unwrap(),
        ),
        (
            "a Solana address a local wallet holds",
            h.sim
                .delegation_with(Chain::Solana, &id(), &sol_addr, mpc_share, b"k", now)
                .unwrap(),
        ),
    ];
    for (what, d) in &cases {
        refused(&h.deliver(d).await, what);
    }
    assert_eq!(h.dump(), before, "a refused delegation stores nothing");
    assert_eq!(wallet(&h, &local.id).unwrap().engine, Engine::Local);

    // between delegations: X holds B; Y claiming B is refused, X re-delegated with B is not
    let x = id();
    let (_, b_addr) = wallet_key::generate(Chain::Evm);
    let dx = h
        .sim
        .delegation_with(Chain::Evm, &x, &b_addr, mpc_share, b"k", now)
        .unwrap();
    assert_eq!(h.deliver(&dx).await.json["outcome"], "stored");
    let y = id();
    let dy = h
        .sim
        .delegation_with(Chain::Evm, &y, &b_addr, mpc_share, b"k", now)
        .unwrap();
    refused(&h.deliver(&dy).await, "another delegation's address");
    let again = h
        .sim
        .delegation_with(Chain::Evm, &x, &b_addr, mpc_share, b"k2", at(now, 1))
        .unwrap();
    assert_eq!(h.deliver(&again).await.json["outcome"], "replaced");
    // X re-delegated onto the local wallet's address: refused, X keeps B
    let moved = h
        .sim
        .delegation_with(Chain::Evm, &x, &evm_addr, mpc_share, b"k3", at(now, 2))
        .unwrap();
    refused(
        &h.deliver(&moved).await,
        "a re-delegation onto a held address",
    );
    assert_eq!(
        wallet(&h, &x).unwrap().address.as_deref(),
        Some(b_addr.as_str())
    );
    // `wallets import` of a delegated address: refused too
    assert!(matches!(
        keyward::wallets::import(&h.app, Chain::Evm, evm_key.clone(), None),
        Err(keyward::wallets::WalletError::Duplicate { .. })
    ));

    // X revoked: Y's delivery, retried as the vendor does, is taken
    assert_eq!(
        h.deliver(&h.sim.revoke_at(Chain::Evm, &x, at(now, 3)))
            .await
            .json["outcome"],
        "revoked"
    );
    let r = h.deliver(&dy).await;
    assert_eq!(
        (r.status, r.json["outcome"].as_str()),
        (200, Some("stored")),
        "{}",
        r.json
    );
    assert_eq!(
        wallet(&h, &y).unwrap().address.as_deref(),
        Some(b_addr.as_str())
    );
}
