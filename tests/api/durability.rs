//! Durability: concurrent signing is audited record for record, tampering is found, and
//! every signature a client received survives kill -9.

use std::sync::Arc;

use hyper::StatusCode;
use keyward::store::audit;
use keyward::store::wallets::Chain;
use serde_json::json;

use super::*;
use crate::common::api::{path, Client};
use crate::common::daemon::Daemon;
use crate::common::Env;

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
    let db = rusqlite::Connection::open(s.app.store.path().unwrap()).unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 57", [])
        .unwrap();
    drop(db);
    let broken = s.app.store.read(audit::verify).unwrap().unwrap_err();
    assert_eq!(broken.seq, 57);
    assert!(broken.reason.contains("edited"), "{}", broken.reason);
}

/// kill -9 under load: every signature a client received has its audit record after
/// the restart, and the chain verifies. The kill comes once clients hold signatures
/// (counted, not timed), while they are still sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_received_signature_survives_kill_9() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let env = Env::with_extra(crate::common::api::CLIENTS);
    let wallet = {
        let app = env.appliance();
        keyward::wallets::create(&app, Chain::Evm, None).unwrap()
    };
    let mut daemon = Daemon::start(&env);
    let api: std::net::SocketAddr = daemon.api.parse().unwrap();
    let route = path(&wallet, "evm/message");
    let signed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..8 {
        let c = Client::new(&env, api, Some(&env.pki.client));
        let route = route.clone();
        let signed = signed.clone();
        load.push(tokio::spawn(async move {
            let mut received = Vec::new();
            for i in 0.. {
                let body =
                    serde_json::to_vec(&json!({ "message": format!("w{worker} m{i}") })).unwrap();
                match c.send("POST", &route, Some("application/json"), body).await {
                    Ok(a) if a.status == StatusCode::OK => {
                        received.push(a.body["auditId"].as_str().unwrap().to_owned());
                        signed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(a) => panic!("unexpected answer {}: {}", a.status, a.body),
                    // the daemon is gone: connection refused or reset
                    Err(_) => break,
                }
            }
            received
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while signed.load(Ordering::SeqCst) < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "no load: {} signatures in 60 s",
            signed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    daemon.kill9();
    let mut received = Vec::new();
    for t in load {
        received.extend(t.await.unwrap());
    }
    assert!(received.len() >= 40, "load ran: {}", received.len());

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
