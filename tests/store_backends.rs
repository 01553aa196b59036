//! The store's contract on both backends: a real SQLite file and a real PostgreSQL
//! (a throw-away cluster from Debian's server binaries, TLS on): atomic jobs, the audit
//! chain, spend sums, processed events, one active wallet per address, migrations; and,
//! for PostgreSQL, what a shared server adds: nodes migrating at once, the server going
//! away and coming back, a cut connection, a statement held by another session's lock.

mod common;

use alloy_primitives::U256;
use common::pg;
use keyward::policy::SpendKey;
use keyward::store::wallets::{self, Chain, Engine, Source, Status, Wallet};
use keyward::store::{audit, events, spend, state, AuditEvent, Store, StoreError};

/// A store, and a way to run SQL on its database behind its back.
struct Backend {
    name: &'static str,
    store: Store,
    raw: Box<dyn Fn(&str)>,
    _dir: tempfile::TempDir,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, 2).unwrap();
    Backend {
        name: "sqlite",
        store,
        raw: Box::new(move |sql| {
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(sql)
                .unwrap()
        }),
        _dir: dir,
    }
}

fn postgres() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let store = Store::from_config(&cluster.store_config(dir.path(), &db)).unwrap();
    Backend {
        name: "postgres",
        store,
        raw: Box::new(move |sql| {
            cluster.sql(&db, sql);
        }),
        _dir: dir,
    }
}

fn both() -> [Backend; 2] {
    [sqlite(), postgres()]
}

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        actor: "test".into(),
        action: "sign".into(),
        wallet_id: Some(format!("w{n}")),
        decision: "allowed".into(),
        result: "ok".into(),
        ..Default::default()
    }
}

fn wallet(id: &str, address: &str) -> Wallet {
    Wallet {
        id: id.into(),
        chain: Chain::Evm,
        address: Some(address.into()),
        label: None,
        source: Source::Generated,
        engine: Engine::Local,
        status: Status::Active,
        key_version: Some(1),
        wrapped_share: Some(vec![7; 60]),
        wrapped_api_key: None,
        public_key: None,
        environment_id: None,
        user_id: None,
        delegated_at_ms: None,
        revoked_at_ms: None,
        created_at: keyward::store::now_rfc3339(),
        updated_at: keyward::store::now_rfc3339(),
    }
}

#[test]
fn a_failing_job_leaves_nothing_and_its_neighbours_commit() {
    for b in both() {
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|i| {
                    let store = b.store.clone();
                    s.spawn(move || {
                        store.write_blocking(move |ctx| {
                            state::set(ctx.conn, &format!("k{i}"), Some("v"))?;
                            audit::append(ctx, event(i))?;
                            if i % 4 == 0 {
                                return Err(StoreError::Io("refused".into()));
                            }
                            Ok(())
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            30,
            "{}",
            b.name
        );
        let n = b
            .store
            .read(|c| {
                c.row("SELECT COUNT(*) FROM appliance_state", &[])?
                    .unwrap()
                    .i64(0)
            })
            .unwrap();
        assert_eq!(n, 30, "{}: refused jobs left no state", b.name);
        assert_eq!(b.store.read(audit::verify).unwrap(), Ok(30), "{}", b.name);
    }
}

#[test]
fn a_panicking_job_rolls_back_and_the_writer_goes_on() {
    for b in both() {
        let r = b.store.write_blocking(|ctx| -> Result<(), StoreError> {
            state::set(ctx.conn, "half", Some("written"))?;
            panic!("a bug in a job");
        });
        assert!(
            matches!(&r, Err(StoreError::Io(m)) if m.contains("nothing was written")),
            "{}: {r:?}",
            b.name
        );
        b.store
            .write_blocking(|ctx| state::set(ctx.conn, "after", Some("yes")))
            .unwrap();
        let (half, after) = b
            .store
            .read(|c| Ok((state::get(c, "half")?, state::get(c, "after")?)))
            .unwrap();
        assert_eq!((half, after.as_deref()), (None, Some("yes")), "{}", b.name);
    }
}

#[test]
fn audit_verify_names_a_record_edited_behind_the_stores_back() {
    for b in both() {
        for i in 0..5 {
            b.store
                .write_blocking(move |ctx| audit::append(ctx, event(i)))
                .unwrap();
        }
        assert_eq!(b.store.read(audit::verify).unwrap(), Ok(5), "{}", b.name);
        (b.raw)("UPDATE audit SET result = 'forged' WHERE seq = 3");
        let broken = b.store.read(audit::verify).unwrap().unwrap_err();
        assert_eq!(broken.seq, 3, "{}", b.name);
        assert!(broken.reason.contains("edited"), "{}: {broken:?}", b.name);
        (b.raw)("DELETE FROM audit WHERE seq = 2");
        let broken = b.store.read(audit::verify).unwrap().unwrap_err();
        assert_eq!((broken.seq, broken.id), (2, None), "{}", b.name);
    }
}

#[test]
fn spend_sums_follow_the_window_with_256_bit_amounts() {
    for b in both() {
        let k = SpendKey {
            wallet: "w".into(),
            chain: "eip155:1".into(),
            asset: "native".into(),
        };
        let big = U256::MAX >> 1;
        let k2 = k.clone();
        b.store
            .write_blocking(move |ctx| {
                spend::record(ctx.conn, &[(k2.clone(), U256::from(5))], 1_000, "a")?;
                spend::record(ctx.conn, &[(k2, big)], 2_000, "b")
            })
            .unwrap();
        let (w1, w2) = b
            .store
            .read(|c| {
                Ok((
                    spend::sum(c, &k, 1_000, 2_000)?,
                    spend::sum(c, &k, 1_001, 2_000)?,
                ))
            })
            .unwrap();
        assert_eq!((w1, w2), (big, big + U256::from(5)), "{}", b.name);
    }
}

#[test]
fn a_processed_event_is_recorded_once() {
    for b in both() {
        let e = events::ProcessedEvent {
            event_id: "e1".into(),
            event_name: "wallet.delegation.created".into(),
            message_id: Some("m".into()),
            wallet_id: Some("w".into()),
            outcome: "stored".into(),
            event_ts_ms: Some(5),
        };
        let (e1, e2) = (e.clone(), e.clone());
        let first = b
            .store
            .write_blocking(move |ctx| events::record(ctx.conn, &e1, "now"))
            .unwrap();
        let again = b
            .store
            .write_blocking(move |ctx| events::record(ctx.conn, &e2, "later"))
            .unwrap();
        assert_eq!((first, again), (true, false), "{}", b.name);
        assert_eq!(
            b.store.read(|c| events::get(c, "e1")).unwrap(),
            Some(e),
            "{}",
            b.name
        );
    }
}

#[test]
fn one_active_wallet_per_address_and_revocation_keeps_the_later_time() {
    for b in both() {
        let a = wallet("wa", "0xabc");
        b.store
            .write_blocking(move |ctx| wallets::upsert(ctx.conn, &a))
            .unwrap();
        let clash = wallet("wb", "0xabc");
        match b
            .store
            .write_blocking(move |ctx| wallets::upsert(ctx.conn, &clash))
        {
            Err(StoreError::AddressHeld { holder, .. }) => assert_eq!(holder, "wa", "{}", b.name),
            other => panic!("{}: {other:?}", b.name),
        }
        b.store
            .write_blocking(|ctx| {
                wallets::mark_revoked(ctx.conn, "wa", 500, "t1")?;
                wallets::mark_revoked(ctx.conn, "wa", 300, "t2")
            })
            .unwrap();
        let w = b.store.read(|c| wallets::get(c, "wa")).unwrap().unwrap();
        assert_eq!(
            (w.status, w.revoked_at_ms, w.wrapped_share),
            (Status::Revoked, Some(500), None),
            "{}",
            b.name
        );
        // the address is free again
        let again = wallet("wb", "0xabc");
        b.store
            .write_blocking(move |ctx| wallets::upsert(ctx.conn, &again))
            .unwrap();
        let page = b
            .store
            .read(|c| wallets::page_without_material(c, Some("wa"), 10))
            .unwrap();
        assert_eq!(page.len(), 1, "{}", b.name);
        assert_eq!(page[0].id, "wb", "{}", b.name);
        assert_eq!(page[0].wrapped_share, None, "{}", b.name);
    }
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let config = cluster.store_config(dir.path(), &db);
    drop(Store::from_config(&config).unwrap());
    cluster.sql(&db, "UPDATE keyward_schema SET version = 99");
    match Store::from_config(&config) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// Web3Signer's users met a start-up deadlock here: nodes started at the same instant on
/// an empty database. Each migrates under a transaction-scoped lock, so one does, the
/// others find it done, and all come up.
#[test]
fn nodes_started_at_once_on_an_empty_database_migrate_once_and_all_come_up() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let config = cluster.store_config(dir.path(), &db);
    let barrier = std::sync::Barrier::new(6);
    let stores: Vec<Store> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    Store::from_config(&config).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in &stores {
        assert_eq!(s.schema_version().unwrap(), keyward::store::SCHEMA_VERSION);
    }
    assert_eq!(cluster.sql(&db, "SELECT COUNT(*) FROM keyward_schema"), "1");
    // and they share one chain
    for (i, s) in stores.iter().enumerate() {
        s.write_blocking(move |ctx| audit::append(ctx, event(i)))
            .unwrap();
    }
    assert_eq!(stores[0].read(audit::verify).unwrap(), Ok(6));
}

#[test]
fn without_tls_only_a_loopback_database_is_accepted_and_the_url_never_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let mut config = cluster.store_config(dir.path(), &db);
    // the server accepts only TLS: a loopback connection without it is refused by it
    config.postgres.as_mut().unwrap().ca = None;
    let err = Store::from_config(&config).unwrap_err().to_string();
    assert!(!err.contains(pg::PASSWORD), "{err}");
    // a remote host without a CA is refused before any connection
    let url_file = dir.path().join("remote-url");
    std::fs::write(
        &url_file,
        format!("postgresql://keyward:{}@db.example:5432/x", pg::PASSWORD),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    config.postgres.as_mut().unwrap().url = keyward::config::SecretRef::File { file: url_file };
    let err = Store::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("only a loopback host"), "{err}");
    assert!(!err.contains(pg::PASSWORD), "{err}");
    // the store's description names no credentials
    let store = Store::from_config(&cluster.store_config(dir.path(), &db)).unwrap();
    let shown = format!("{} {store:?}", store.describe());
    assert!(
        !shown.contains(pg::PASSWORD) && !shown.contains("keyward@"),
        "{shown}"
    );
}

/// The writer's connection is ended by the server (`pg_terminate_backend`, as a failover
/// or an administrator does): the batch on it fails cleanly, the next one reconnects.
#[test]
fn a_connection_cut_mid_transaction_fails_that_write_and_the_next_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let store = Store::from_config(&cluster.store_config(dir.path(), &db)).unwrap();
    store
        .write_blocking(|ctx| audit::append(ctx, event(0)))
        .unwrap();
    let cut = store.write_blocking(move |ctx| {
        audit::append(ctx, event(1))?;
        // this job's own connection is ended while its transaction is open
        ctx.conn
            .exec("SELECT pg_terminate_backend(pg_backend_pid())", &[])
            .map(|_| ())
    });
    assert!(matches!(cut, Err(StoreError::Unavailable(_))), "{cut:?}");
    store
        .write_blocking(|ctx| audit::append(ctx, event(2)))
        .unwrap();
    assert_eq!(
        store.read(audit::verify).unwrap(),
        Ok(2),
        "the cut write left nothing"
    );
}

/// Another session holds a lock the write needs: the write is bounded by the statement
/// timeout and fails as unavailable; no worker stays stuck, and once the lock is gone the
/// next write commits.
#[test]
fn a_statement_held_by_another_sessions_lock_is_bounded_by_the_statement_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = pg::shared();
    let db = cluster.new_database();
    let store = Store::from_config(&cluster.store_config(dir.path(), &db)).unwrap();
    store
        .write_blocking(|ctx| audit::append(ctx, event(0)))
        .unwrap();
    let holder = cluster.hold_table_lock(&db, "audit", 6);
    let r = store.write_blocking(|ctx| audit::append(ctx, event(1)));
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(holder.join().unwrap().status.success());
    store
        .write_blocking(|ctx| audit::append(ctx, event(2)))
        .unwrap();
    assert_eq!(store.read(audit::verify).unwrap(), Ok(2));
}
