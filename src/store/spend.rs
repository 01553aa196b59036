//! Policy spend counters (migration 2): one row per amount a signed request moved, read
//! back as sums over rolling windows.
//!
//! Owns: the `spend` table. Rows are written by the same write job as the request's audit
//! record, after the caps were re-checked inside that job's transaction, so concurrent
//! requests are serialised by the single writer and can never overrun a cap together.
//! Must never: decide anything; the rules are `policy::windows`, whose window semantics
//! (`at_ms > now - window`) this file mirrors in SQL.

use alloy_primitives::U256;

use super::db::Db;
use super::StoreError;
use crate::policy::{SpendKey, Totals};
use crate::vals;

/// Sum of one counter over `(now_ms - window_ms, now_ms]`.
pub fn sum(conn: &dyn Db, key: &SpendKey, window_ms: u64, now_ms: u64) -> Result<U256, StoreError> {
    let since = i64::try_from(now_ms.saturating_sub(window_ms)).unwrap_or(i64::MAX);
    let mut total = U256::ZERO;
    conn.each(
        "SELECT amount FROM spend WHERE wallet_id = ?1 AND chain = ?2 AND asset = ?3 AND at_ms > ?4",
        vals![&key.wallet, &key.chain, &key.asset, since],
        &mut |mut r| {
            let text = r.text(0)?;
            let v = U256::from_str_radix(&text, 10)
                .map_err(|_| StoreError::Corrupt(format!("spend amount {text:?}")))?;
            total = total.saturating_add(v);
            Ok(())
        },
    )?;
    Ok(total)
}

/// Totals for every `(counter, window)` at `now_ms`.
pub fn totals(
    conn: &dyn Db,
    queries: &[(SpendKey, u64)],
    now_ms: u64,
) -> Result<Totals, StoreError> {
    queries
        .iter()
        .map(|(k, w)| Ok(((k.clone(), *w), sum(conn, k, *w, now_ms)?)))
        .collect()
}

/// Records the amounts of one signed request, and drops rows of the same counters that
/// no window can reach any more.
pub fn record(
    conn: &dyn Db,
    spend: &[(SpendKey, U256)],
    at_ms: u64,
    audit_id: &str,
) -> Result<(), StoreError> {
    let at = i64::try_from(at_ms).unwrap_or(i64::MAX);
    let horizon =
        i64::try_from(at_ms.saturating_sub(crate::policy::rules::MAX_WINDOW_MS)).unwrap_or(0);
    for (k, amount) in spend {
        conn.exec(
            "INSERT INTO spend (wallet_id, chain, asset, at_ms, amount, audit_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            vals![&k.wallet, &k.chain, &k.asset, at, amount.to_string(), audit_id],
        )?;
        conn.exec(
            "DELETE FROM spend WHERE wallet_id = ?1 AND chain = ?2 AND asset = ?3 AND at_ms <= ?4",
            vals![&k.wallet, &k.chain, &k.asset, horizon],
        )?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_follow_the_window_and_old_rows_are_pruned() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::sqlite::schema::migrate(&mut conn).unwrap();
        let k = SpendKey {
            wallet: "w".into(),
            chain: "eip155:1".into(),
            asset: "native".into(),
        };
        let big = U256::MAX >> 1;
        record(&conn, &[(k.clone(), U256::from(5))], 1_000, "a").unwrap();
        record(&conn, &[(k.clone(), big)], 2_000, "b").unwrap();
        assert_eq!(sum(&conn, &k, 1_000, 2_000).unwrap(), big);
        assert_eq!(sum(&conn, &k, 1_001, 2_000).unwrap(), big + U256::from(5));
        let later = 2_000 + crate::policy::rules::MAX_WINDOW_MS;
        record(&conn, &[(k.clone(), U256::from(1))], later, "c").unwrap();
        let n = conn
            .row("SELECT COUNT(*) FROM spend", &[])
            .unwrap()
            .unwrap()
            .i64(0)
            .unwrap();
        assert_eq!(n, 1);
    }
}
