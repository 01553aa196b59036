//! The SQLite store on a real file: migrations, pragmas, atomic writes, the audit chain.

mod common;

use keyward::store::{audit, state, AuditEvent, Store, StoreError};

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

#[test]
fn migrates_an_empty_file_with_the_safety_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, 2).unwrap();
    let current = keyward::store::SCHEMA_VERSION.to_string();
    assert_eq!(store.pragma("user_version").unwrap(), current);
    assert_eq!(store.pragma("journal_mode").unwrap(), "wal");
    assert_eq!(store.pragma("secure_delete").unwrap(), "1");
    assert_eq!(store.pragma("foreign_keys").unwrap(), "1");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(store);
    // reopening an up-to-date file changes nothing
    let store = Store::open(&path, 1).unwrap();
    assert_eq!(store.pragma("user_version").unwrap(), current);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    drop(Store::open(&path, 1).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    match Store::open(&path, 1) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_failing_write_leaves_nothing_and_neighbours_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.db"), 2).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                s.spawn(move || {
                    store.write_blocking(move |ctx| {
                        state::set(ctx.conn, &format!("k{i}"), Some("v"))?;
                        audit::append(ctx, event(i))?;
                        if i % 5 == 0 {
                            return Err(StoreError::Corrupt("refused on purpose".into()));
                        }
                        Ok(i)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 40);
    let rows: i64 = store
        .read(|c| {
            c.row("SELECT COUNT(*) FROM appliance_state", &[])?
                .unwrap()
                .i64(0)
        })
        .unwrap();
    assert_eq!(rows, 40, "refused jobs left no state behind");
    assert_eq!(
        store.read(audit::verify).unwrap(),
        Ok(40),
        "chain has no gaps from rolled-back jobs"
    );
}

#[test]
fn audit_verify_names_the_edited_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, 1).unwrap();
    for i in 0..10 {
        store
            .write_blocking(move |ctx| audit::append(ctx, event(i)))
            .unwrap();
    }
    assert_eq!(store.read(audit::verify).unwrap(), Ok(10));
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("UPDATE audit SET result = 'forged' WHERE seq = 6", [])
        .unwrap();
    let broken = store.read(audit::verify).unwrap().unwrap_err();
    assert_eq!(broken.seq, 6);
    c.execute("UPDATE audit SET result = 'ok' WHERE seq = 6", [])
        .unwrap();
    c.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
    let broken = store.read(audit::verify).unwrap().unwrap_err();
    assert_eq!(broken.seq, 3);
}

#[test]
fn deleted_blobs_do_not_stay_in_the_file() {
    use keyward::store::wallets::{self, Chain, Engine, Source, Status, Wallet};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, 1).unwrap();
    let marker = b"WRAPPED-BLOB-MARKER-0123456789-WRAPPED-BLOB-MARKER".to_vec();
    let w = Wallet {
        id: "w1".into(),
        chain: Chain::Evm,
        address: Some("0x00".into()),
        label: None,
        source: Source::Generated,
        engine: Engine::Local,
        status: Status::Active,
        key_version: Some(1),
        wrapped_share: Some(marker.clone()),
        wrapped_api_key: None,
        environment_id: None,
        user_id: None,
        delegated_at_ms: None,
        revoked_at_ms: None,
        created_at: "t".into(),
        updated_at: "t".into(),
        public_key: None,
    };
    store
        .write_blocking(move |ctx| wallets::upsert(ctx.conn, &w))
        .unwrap();
    store
        .write_blocking(|ctx| {
            ctx.scrub_wal_after_commit();
            wallets::mark_revoked(ctx.conn, "w1", 1, "t2")
        })
        .unwrap();
    let bytes = common::all_bytes_under(dir.path());
    assert!(
        !common::contains(&bytes, &marker),
        "revoked blob still readable in the database files"
    );
}

#[test]
fn a_panicking_write_job_rolls_back_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyward::store::Store::open(&dir.path().join("k.db"), 1).unwrap();
    let r = store.write_blocking(|ctx| -> Result<(), keyward::store::StoreError> {
        keyward::store::state::set(ctx.conn, "half", Some("written"))?;
        panic!("a bug inside a write job");
    });
    match r {
        Err(keyward::store::StoreError::Io(m)) => assert!(m.contains("nothing was written"), "{m}"),
        other => panic!("{other:?}"),
    }
    // the writer thread is still there, and the panicking job left nothing behind
    store
        .write_blocking(|ctx| keyward::store::state::set(ctx.conn, "after", Some("ok")))
        .unwrap();
    let half = store
        .read(|c| keyward::store::state::get(c, "half"))
        .unwrap();
    assert_eq!(half, None);
    let after = store
        .read(|c| keyward::store::state::get(c, "after"))
        .unwrap();
    assert_eq!(after.as_deref(), Some("ok"));
}

#[test]
fn a_public_key_is_filled_only_for_the_key_it_was_proven_for() {
    use keyward::store::wallets::{self, Chain, Engine, Source, Status, Wallet};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.db"), 1).unwrap();
    let w = Wallet {
        id: "w1".into(),
        chain: Chain::Evm,
        address: Some("0x00".into()),
        label: None,
        source: Source::Delegation,
        engine: Engine::Local,
        status: Status::Active,
        key_version: Some(1),
        wrapped_share: Some(b"blob-1".to_vec()),
        wrapped_api_key: None,
        environment_id: None,
        user_id: None,
        delegated_at_ms: None,
        revoked_at_ms: None,
        created_at: "t".into(),
        updated_at: "t".into(),
        public_key: None,
    };
    let put = |w: Wallet| {
        store
            .write_blocking(move |ctx| wallets::upsert(ctx.conn, &w))
            .unwrap()
    };
    let fill = |blob: &'static [u8], pk: &'static [u8]| {
        store
            .write_blocking(move |ctx| wallets::fill_public_key(ctx.conn, "w1", blob, pk))
            .unwrap()
    };
    let stored = || {
        store
            .read(|c| wallets::get(c, "w1"))
            .unwrap()
            .unwrap()
            .public_key
    };
    put(w.clone());
    // the row was re-delegated meanwhile (another blob): not filled
    assert!(!fill(b"blob-0", b"pk-0"));
    assert_eq!(stored(), None);
    assert!(fill(b"blob-1", b"pk-1"));
    assert_eq!(stored(), Some(b"pk-1".to_vec()));
    // never overwritten by a later fill
    assert!(!fill(b"blob-1", b"pk-2"));
    assert_eq!(stored(), Some(b"pk-1".to_vec()));
    // an upsert carries its own value: a replaced key clears the old public key
    put(Wallet {
        wrapped_share: Some(b"blob-2".to_vec()),
        public_key: None,
        ..w.clone()
    });
    assert_eq!(stored(), None);
    // a revoked wallet gets none
    store
        .write_blocking(|ctx| wallets::mark_revoked(ctx.conn, "w1", 1, "t2"))
        .unwrap();
    assert!(!fill(b"blob-2", b"pk-3"));
    assert_eq!(stored(), None);
}

#[test]
fn upgrades_a_version_3_file_keeping_its_wallets_without_public_keys() {
    use keyward::store::wallets;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    drop(Store::open(&path, 1).unwrap());
    // make it what a version-3 keyward left: no public_key column, one wallet row
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "ALTER TABLE wallets DROP COLUMN public_key;
         DROP INDEX wallets_active_address;
         INSERT INTO wallets (id, chain, address, source, engine, status, key_version,
           wrapped_share, created_at, updated_at)
         VALUES ('w3', 'evm', '0x00', 'generated', 'local', 'active', 1, x'00', 't', 't');
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(c);
    let store = Store::open(&path, 1).unwrap();
    assert_eq!(
        store.pragma("user_version").unwrap(),
        keyward::store::SCHEMA_VERSION.to_string()
    );
    const { assert!(keyward::store::SCHEMA_VERSION >= 4) };
    let w = store.read(|c| wallets::get(c, "w3")).unwrap().unwrap();
    assert_eq!((w.address.as_deref(), w.public_key), (Some("0x00"), None));
}

fn active_row(
    id: &str,
    chain: keyward::store::wallets::Chain,
    address: &str,
) -> keyward::store::wallets::Wallet {
    use keyward::store::wallets::{Engine, Source, Status, Wallet};
    Wallet {
        id: id.into(),
        chain,
        address: Some(address.into()),
        label: None,
        source: Source::Delegation,
        engine: Engine::Mpc,
        status: Status::Active,
        key_version: Some(1),
        wrapped_share: Some(format!("share-{id}").into_bytes()),
        wrapped_api_key: Some(format!("api-{id}").into_bytes()),
        environment_id: None,
        user_id: None,
        delegated_at_ms: None,
        revoked_at_ms: None,
        created_at: "t".into(),
        updated_at: "t".into(),
        public_key: Some(b"pk".to_vec()),
    }
}

/// One active wallet per address and chain, decided inside the write that stores the row:
/// a second active row on the address is refused with the holder named, and nothing of
/// its write job is kept; the same id, another chain, or a revoked holder are no conflict.
#[test]
fn an_address_has_at_most_one_active_wallet_per_chain() {
    use keyward::store::wallets::{self, Chain};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, 1).unwrap();
    let put = |w: keyward::store::wallets::Wallet| {
        store.write_blocking(move |ctx| {
            // something else in the same job, to see it rolled back with the refusal
            state::set(ctx.conn, &format!("marker.{}", w.id), Some("x"))?;
            wallets::upsert(ctx.conn, &w)
        })
    };
    put(active_row("w1", Chain::Evm, "0xaa")).unwrap();
    match put(active_row("w2", Chain::Evm, "0xaa")) {
        Err(StoreError::AddressHeld {
            chain,
            address,
            holder,
        }) => assert_eq!(
            (chain, address.as_str(), holder.as_str()),
            ("evm", "0xaa", "w1")
        ),
        other => panic!("{other:?}"),
    }
    assert!(store.read(|c| wallets::get(c, "w2")).unwrap().is_none());
    assert!(store
        .read(|c| state::get(c, "marker.w2"))
        .unwrap()
        .is_none());
    // an existing wallet moved onto a held address: refused, the row unchanged
    put(active_row("w3", Chain::Evm, "0xbb")).unwrap();
    assert!(matches!(
        put(active_row("w3", Chain::Evm, "0xaa")),
        Err(StoreError::AddressHeld { .. })
    ));
    let w3 = store.read(|c| wallets::get(c, "w3")).unwrap().unwrap();
    assert_eq!(w3.address.as_deref(), Some("0xbb"));
    // the holder itself (a re-delegation) and another chain: no conflict
    put(active_row("w1", Chain::Evm, "0xaa")).unwrap();
    put(active_row("s1", Chain::Solana, "0xaa")).unwrap();
    // once the holder is revoked, the address is free
    store
        .write_blocking(|ctx| wallets::mark_revoked(ctx.conn, "w1", 1, "t2"))
        .unwrap();
    put(active_row("w2", Chain::Evm, "0xaa")).unwrap();
    // the unique index backs the check: SQL that bypasses it is refused too
    let c = rusqlite::Connection::open(&path).unwrap();
    let e = c
        .execute(
            "INSERT INTO wallets (id, chain, address, source, engine, status, key_version,
               wrapped_share, created_at, updated_at)
             VALUES ('w9', 'evm', '0xaa', 'generated', 'local', 'active', 1, x'00', 't', 't')",
            [],
        )
        .unwrap_err();
    assert!(e.to_string().contains("UNIQUE constraint failed"), "{e}");
}

/// A database from before the unique index that already holds two active wallets on one
/// address is not upgraded (the index could not be made): the error names them.
#[test]
fn an_upgrade_refuses_a_file_with_two_active_wallets_on_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    drop(Store::open(&path, 1).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP INDEX wallets_active_address;
         INSERT INTO wallets (id, chain, address, source, engine, status, key_version,
           wrapped_share, created_at, updated_at)
         VALUES ('a1', 'evm', '0xaa', 'generated', 'local', 'active', 1, x'00', 't', 't'),
                ('a2', 'evm', '0xaa', 'delegation', 'mpc', 'active', 1, x'00', 't', 't'),
                ('a3', 'evm', '0xbb', 'generated', 'local', 'active', 1, x'00', 't', 't');
         PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(c);
    match Store::open(&path, 1) {
        Err(StoreError::Upgrade(m)) => {
            assert!(m.contains("evm 0xaa: a1, a2"), "{m}");
            assert!(!m.contains("0xbb"), "{m}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // nothing changed: still version 4, and once one is revoked the upgrade goes through
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 4);
    c.execute_batch("UPDATE wallets SET status = 'revoked', wrapped_share = NULL WHERE id = 'a2'")
        .unwrap();
    drop(c);
    let store = Store::open(&path, 1).unwrap();
    assert_eq!(
        store.pragma("user_version").unwrap(),
        keyward::store::SCHEMA_VERSION.to_string()
    );
}

/// The listing `eth_accounts` uses reads no key material: active wallets of one chain,
/// in address order, every blob column empty although the rows hold blobs.
#[test]
fn the_active_listing_reads_no_material() {
    use keyward::store::wallets::{self, Chain};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("k.db"), 1).unwrap();
    for w in [
        active_row("e2", Chain::Evm, "0x02"),
        active_row("e1", Chain::Evm, "0x01"),
        active_row("e3", Chain::Evm, "0x03"),
        active_row("s1", Chain::Solana, "So1"),
    ] {
        store
            .write_blocking(move |ctx| wallets::upsert(ctx.conn, &w))
            .unwrap();
    }
    store
        .write_blocking(|ctx| wallets::mark_revoked(ctx.conn, "e3", 1, "t2"))
        .unwrap();
    let listed = store
        .read(|c| wallets::active_without_material(c, Chain::Evm))
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, vec!["e1", "e2"]);
    for w in &listed {
        assert_eq!(
            (&w.wrapped_share, &w.wrapped_api_key, &w.public_key),
            (&None, &None, &None),
            "{}",
            w.id
        );
    }
    // the rows do hold material
    let full = store.read(|c| wallets::get(c, "e1")).unwrap().unwrap();
    assert!(full.wrapped_share.is_some() && full.public_key.is_some());
}
