//! A whole store copied into another, empty one (`keyward store migrate`): wallets with
//! their wrapped material, processed events, spend counters, appliance state and the
//! audit chain with its hashes unchanged, in one write transaction of the target (all of
//! it lands, or nothing does).

use super::db::{Db, Row, Val};
use super::{audit, Store, StoreError};

/// Rows copied per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Wallet rows.
    pub wallets: u64,
    /// Processed webhook events.
    pub events: u64,
    /// Spend counter rows.
    pub spend: u64,
    /// Appliance state entries (the lock, retired-key marks).
    pub state: u64,
    /// Audit records.
    pub audit: u64,
}

/// One table's copy: its columns (the first is the paging key, unique and ordered), and
/// the key's value before the first row.
struct Table {
    name: &'static str,
    columns: &'static str,
    key: &'static str,
    start: fn() -> Val,
}

const PAGE: i64 = 500;

const TABLES: [Table; 4] = [
    Table {
        name: "appliance_state",
        columns: "key, value",
        key: "key",
        start: || Val::Text(String::new()),
    },
    Table {
        name: "wallets",
        columns: "id, chain, address, label, source, engine, status, key_version, wrapped_share, wrapped_api_key, environment_id, user_id, delegated_at_ms, revoked_at_ms, created_at, updated_at, public_key",
        key: "id",
        start: || Val::Text(String::new()),
    },
    Table {
        name: "processed_events",
        columns: "event_id, event_name, message_id, wallet_id, outcome, event_ts_ms, received_at",
        key: "event_id",
        start: || Val::Text(String::new()),
    },
    // the counter rows keep their order, not their row numbers: the target numbers them
    Table {
        name: "spend",
        columns: "seq, wallet_id, chain, asset, at_ms, amount, audit_id",
        key: "seq",
        start: || Val::Int(-1),
    },
];

fn is_empty(db: &dyn Db) -> Result<bool, StoreError> {
    for t in [
        "wallets",
        "processed_events",
        "spend",
        "audit",
        "appliance_state",
    ] {
        let n = db
            .row(&format!("SELECT COUNT(*) FROM {t}"), &[])?
            .map(|mut r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        if n > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

fn copy_table(from: &Store, to: &dyn Db, t: &Table) -> Result<u64, StoreError> {
    let n_cols = t.columns.split(',').count();
    // spend's row number is not copied (see TABLES)
    let (select, insert_cols, skip) = if t.name == "spend" {
        (t.columns, t.columns.trim_start_matches("seq, "), 1)
    } else {
        (t.columns, t.columns, 0)
    };
    let placeholders = (1..=n_cols - skip)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!(
        "INSERT INTO {} ({insert_cols}) VALUES ({placeholders})",
        t.name
    );
    let page_sql = format!(
        "SELECT {select} FROM {} WHERE {} > ?1 ORDER BY {} LIMIT ?2",
        t.name, t.key, t.key
    );
    let mut after = (t.start)();
    let mut copied = 0;
    loop {
        let cursor = after.clone();
        let rows: Vec<Row> = from.read(|c| c.rows(&page_sql, &[cursor, Val::Int(PAGE)]))?;
        let Some(last) = rows.last() else {
            return Ok(copied);
        };
        after = last.0[0].clone();
        for row in &rows {
            to.exec(&insert, &row.0[skip..])?;
            copied += 1;
        }
    }
}

/// Copies everything in `from` into the empty store `to`, then verifies the chain at
/// the target. Refuses a target that holds any row.
pub fn copy_all(from: &Store, to: &Store) -> Result<Copied, StoreError> {
    let source_chain = from.read(audit::verify)?.map_err(|b| {
        StoreError::Upgrade(format!(
            "the source's audit chain is broken at record {} ({}): nothing was copied",
            b.seq, b.reason
        ))
    })?;
    let src = from.clone();
    let copied = to.write_blocking(move |ctx| {
        if !is_empty(ctx.conn)? {
            return Err(StoreError::Upgrade(
                "the target database is not empty: nothing was copied (point --config at an empty database)".into(),
            ));
        }
        let mut out = Copied::default();
        for t in &TABLES {
            let n = copy_table(&src, ctx.conn, t)?;
            match t.name {
                "appliance_state" => out.state = n,
                "wallets" => out.wallets = n,
                "processed_events" => out.events = n,
                _ => out.spend = n,
            }
        }
        let mut after = 0i64;
        loop {
            let page = src.read(|c| {
                let mut recs = Vec::new();
                audit::page(c, after, PAGE, &mut |r| {
                    recs.push(r);
                    Ok(())
                })?;
                Ok(recs)
            })?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for rec in &page {
                audit::insert(ctx.conn, rec)?;
                out.audit += 1;
            }
        }
        Ok(out)
    })?;
    match to.read(audit::verify)? {
        Ok(n) if n == source_chain => Ok(copied),
        Ok(n) => Err(StoreError::Upgrade(format!(
            "the target's audit chain has {n} records, the source's {source_chain}"
        ))),
        Err(b) => Err(StoreError::Upgrade(format!(
            "the target's audit chain does not verify at record {}: {}",
            b.seq, b.reason
        ))),
    }
}
