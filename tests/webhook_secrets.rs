//! Secrets never leave custody: the delegated key, the API key and the HMAC secret appear
//! in no log line (captured at TRACE, every crate) and nowhere in the database files.
//! Its own binary, because the log capture is a process-wide subscriber.

mod common;
mod webhook_support;

use keyward::store::wallets::Chain;
use webhook_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_log_line_and_nowhere_in_the_database_files() {
    let logs = common::logs::capture();
    let h = start(|_| {}).await;
    let mut needles: Vec<(String, Vec<u8>)> = vec![(
        "HMAC secret".into(),
        common::HMAC_SECRET.as_bytes().to_vec(),
    )];
    let mut revoke_later = None;
    for chain in [Chain::Evm, Chain::Solana] {
        let wid = uuid::Uuid::new_v4().to_string();
        let d = h.sim.delegation(chain, &wid).unwrap();
        let r = h.deliver(&d).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let key = d.key.as_ref().unwrap().expose().to_vec();
        needles.push((format!("{chain:?} key hex"), hex::encode(&key).into_bytes()));
        needles.push((format!("{chain:?} key bytes"), key));
        needles.push((
            format!("{chain:?} API key"),
            d.api_key.as_ref().unwrap().expose().to_vec(),
        ));
        // a refused replay with a tampered signature, and a plain replay
        let mut bad = d.headers();
        bad[1].1 = hmac_header(&d.body, "dyn_not_the_secret");
        let r = h
            .raw(ALLOWED, hyper::Method::POST, &h.url, d.body.clone(), &bad)
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(h.deliver(&d).await.status, 200);
        revoke_later = Some((chain, wid));
    }
    let (chain, wid) = revoke_later.unwrap();
    assert_eq!(h.deliver(&h.sim.revoke(chain, &wid)).await.status, 200);

    let captured = logs.bytes();
    assert!(
        captured.len() > 1000,
        "the capture saw the traffic ({} bytes)",
        captured.len()
    );
    let db = h.app.store.path().unwrap().to_path_buf();
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(b) = std::fs::read(&p) {
            files.push((p, b));
        }
    }
    assert!(files.len() >= 2, "database and its WAL were scanned");
    for (what, needle) in &needles {
        assert!(
            !common::contains(&captured, needle),
            "{what} appears in the logs"
        );
        for (p, bytes) in &files {
            assert!(
                !common::contains(bytes, needle),
                "{what} appears in {}",
                p.display()
            );
        }
    }
}
