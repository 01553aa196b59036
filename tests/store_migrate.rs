//! `keyward store migrate --from sqlite:PATH --to postgres`: a store of 10,000 wallets
//! with its events, spend rows, state and audit chain copied into an empty PostgreSQL
//! database, byte for byte, the chain verified at the target; a non-empty target refused.

mod common;

use alloy_primitives::U256;
use common::daemon::{keyward, text};
use common::{pg, Env};
use keyward::policy::SpendKey;
use keyward::store::wallets::{self, Chain, Engine, Source, Status, Wallet};
use keyward::store::{audit, events, spend, state, AuditEvent, Store};

fn wallet(i: usize) -> Wallet {
    Wallet {
        id: format!("w-{i:05}"),
        chain: if i % 3 == 0 {
            Chain::Solana
        } else {
            Chain::Evm
        },
        address: Some(format!("addr-{i}")),
        label: (i % 7 == 0).then(|| format!("label {i}")),
        source: Source::Delegation,
        engine: if i % 5 == 0 {
            Engine::Mpc
        } else {
            Engine::Local
        },
        status: if i % 11 == 0 {
            Status::Revoked
        } else {
            Status::Active
        },
        key_version: (i % 11 != 0).then_some(1 + (i % 2) as u32),
        wrapped_share: (i % 11 != 0).then(|| (0..80).map(|b| (b * i) as u8).collect()),
        wrapped_api_key: (i % 11 != 0 && i % 5 == 0).then(|| vec![i as u8; 44]),
        public_key: (i % 4 == 1).then(|| vec![4; 65]),
        environment_id: Some("env".into()),
        user_id: Some(format!("user-{i}")),
        delegated_at_ms: Some(i as i64),
        revoked_at_ms: (i % 11 == 0).then_some(i as i64 + 5),
        created_at: format!("2026-12-04T10:00:{:02}.000Z", i % 60),
        updated_at: "2026-12-04T11:00:00.000Z".into(),
    }
}

fn source(path: &std::path::Path) -> Store {
    let store = Store::open(path, 1).unwrap();
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(1_000) {
        let chunk = chunk.to_vec();
        store
            .write_blocking(move |ctx| {
                for i in chunk {
                    wallets::upsert(ctx.conn, &wallet(i))?;
                }
                Ok(())
            })
            .unwrap();
    }
    store
        .write_blocking(|ctx| {
            for i in 0..300usize {
                let id = audit::append(
                    ctx,
                    AuditEvent {
                        actor: "test-client".into(),
                        action: "sign".into(),
                        wallet_id: Some(format!("w-{i:05}")),
                        decision: "allowed".into(),
                        result: "ok".into(),
                        detail: Some(serde_json::json!({ "n": i })),
                        ..Default::default()
                    },
                )?;
                let key = SpendKey {
                    wallet: format!("w-{i:05}"),
                    chain: "eip155:1".into(),
                    asset: "native".into(),
                };
                spend::record(ctx.conn, &[(key, U256::MAX >> i)], 1_000 + i as u64, &id)?;
                events::record(
                    ctx.conn,
                    &events::ProcessedEvent {
                        event_id: format!("e{i}"),
                        event_name: "wallet.delegation.created".into(),
                        message_id: Some(format!("m{i}")),
                        wallet_id: Some(format!("w-{i:05}")),
                        outcome: "stored".into(),
                        event_ts_ms: Some(i as i64),
                    },
                    "2026-12-04T10:00:00.000Z",
                )?;
            }
            state::set(ctx.conn, "wrap.retired.0", Some("2026-12-01T00:00:00Z"))
        })
        .unwrap();
    store
}

fn every_spend_row(s: &Store) -> Vec<(String, i64, String, String)> {
    s.read(|c| {
        c.rows(
            "SELECT wallet_id, at_ms, amount, audit_id FROM spend ORDER BY seq",
            &[],
        )?
        .into_iter()
        .map(|mut r| Ok((r.text(0)?, r.i64(1)?, r.text(2)?, r.text(3)?)))
        .collect()
    })
    .unwrap()
}

fn every_record(s: &Store) -> Vec<keyward::store::AuditRecord> {
    let mut out = Vec::new();
    s.read(|c| {
        audit::export(c, None, |r| {
            out.push(r.clone());
            Ok(())
        })
    })
    .unwrap();
    out
}

#[test]
fn ten_thousand_wallets_and_the_chain_move_to_postgres_unchanged() {
    let env = Env::new();
    let db = pg::use_postgres(&env);
    let path = env.path("old.db");
    let from = source(&path);
    let from_arg = format!("sqlite:{}", path.display());
    let out = keyward(
        &env,
        &["store", "migrate", "--from", &from_arg, "--to", "postgres"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("10000 wallets, 300 processed events, 300 spend rows, 1 state entries, 300 audit records (chain verified at the target)"),
        "{said}"
    );
    let to = Store::from_config(&env.config().store).unwrap();
    let (a, b) = (
        from.read(wallets::list).unwrap(),
        to.read(wallets::list).unwrap(),
    );
    assert_eq!(a.len(), 10_000);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (
                &x.id,
                &x.wrapped_share,
                &x.wrapped_api_key,
                &x.public_key,
                x.status,
                x.key_version,
                &x.label,
                x.revoked_at_ms,
                &x.created_at
            ),
            (
                &y.id,
                &y.wrapped_share,
                &y.wrapped_api_key,
                &y.public_key,
                y.status,
                y.key_version,
                &y.label,
                y.revoked_at_ms,
                &y.created_at
            )
        );
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(every_record(&from), every_record(&to));
    assert_eq!(every_spend_row(&from), every_spend_row(&to));
    assert_eq!(to.read(audit::verify).unwrap(), Ok(300));
    assert_eq!(
        to.read(|c| events::get(c, "e7")).unwrap(),
        from.read(|c| events::get(c, "e7")).unwrap()
    );
    // a second copy into the now non-empty target changes nothing
    let again = keyward(
        &env,
        &["store", "migrate", "--from", &from_arg, "--to", "postgres"],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    assert_eq!(
        pg::shared().sql(&db, "SELECT COUNT(*) FROM wallets"),
        "10000"
    );
}

#[test]
fn migrate_refuses_what_it_cannot_copy_to_or_from() {
    let env = Env::new();
    for (args, says) in [
        (
            vec!["--from", "postgres:x", "--to", "postgres"],
            "expected sqlite:PATH",
        ),
        (
            vec!["--from", "sqlite:/nonexistent/k.db", "--to", "postgres"],
            "no such database file",
        ),
        (
            vec!["--from", "sqlite:/etc/hostname", "--to", "mysql"],
            "expected postgres",
        ),
        // the config's store is SQLite here
        (
            vec!["--from", "sqlite:/etc/hostname", "--to", "postgres"],
            "is not \"postgres\"",
        ),
    ] {
        let mut all = vec!["store", "migrate"];
        all.extend(args);
        let out = keyward(&env, &all);
        assert!(!out.status.success());
        assert!(text(&out).contains(says), "{all:?}: {}", text(&out));
    }
}
