//! `keyward audit search`: the audit records matching a filter, streamed one row at a
//! time in chain order (memory stays bounded whatever the chain's length).
//!
//! The SQL is portable (plain comparisons, `substr`, no SQLite-only function) and built
//! by [`query`] with the placeholder style as a parameter, so a PostgreSQL backend can run
//! the same statement with `$n` placeholders. Must never: interpolate a filter value into
//! the SQL text (every value is a bound parameter).

use super::db::{Db, Val};
use super::{AuditRecord, StoreError};

/// What to look for; every present field must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Wallet id.
    pub wallet: Option<String>,
    /// Actor: a client identity as the audit records it, `webhook` or `operator`.
    pub client: Option<String>,
    /// `allowed`, `denied` or `error`.
    pub decision: Option<String>,
    /// Records at or after this UTC second (`YYYY-MM-DDTHH:MM:SS`).
    pub since: Option<String>,
    /// Records before this UTC second (`YYYY-MM-DDTHH:MM:SS`).
    pub until: Option<String>,
    /// An operation (`evm.message`, …) or an action (`sign`, `appliance.lock`,
    /// `delegation.created`, …).
    pub operation: Option<String>,
}

const COLUMNS: &str = "seq, id, at, actor, action, wallet_id, chain, operation, digest, decision, result, detail, prev_hash, hash";

/// The statement and its parameters, in order. `placeholder(n)` spells the n-th (from 1)
/// parameter: `?n` for SQLite, `$n` for PostgreSQL.
///
/// Times are compared on their first 19 characters (`YYYY-MM-DDTHH:MM:SS`): records store
/// RFC 3339 UTC with a fraction only when it is not zero, so whole strings do not order
/// by time within a second; the second prefix does.
pub fn query(filter: &AuditFilter, placeholder: impl Fn(usize) -> String) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    // a value used twice in one condition is bound once and named twice
    let mut bind = |template: &str, value: &str| {
        params.push(value.to_owned());
        let p = placeholder(params.len());
        conditions.push(template.replace("{}", &p));
    };
    if let Some(w) = &filter.wallet {
        bind("wallet_id = {}", w);
    }
    if let Some(c) = &filter.client {
        bind("actor = {}", c);
    }
    if let Some(d) = &filter.decision {
        bind("decision = {}", d);
    }
    if let Some(s) = &filter.since {
        bind("substr(at, 1, 19) >= {}", s);
    }
    if let Some(u) = &filter.until {
        bind("substr(at, 1, 19) < {}", u);
    }
    if let Some(o) = &filter.operation {
        bind("(operation = {} OR action = {})", o);
    }
    let mut sql = format!("SELECT {COLUMNS} FROM audit");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(" ORDER BY seq");
    (sql, params)
}

/// Calls `each` with every matching record, in chain order; returns how many matched.
/// An error from `each` (a closed pipe) stops the walk and is returned.
pub fn search(
    conn: &dyn Db,
    filter: &AuditFilter,
    mut each: impl FnMut(&AuditRecord) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    // the row modules' numbering; each backend turns it into its own
    let (sql, params) = query(filter, |n| format!("?{n}"));
    let params: Vec<Val> = params.into_iter().map(Val::Text).collect();
    let mut n = 0;
    conn.each(&sql, &params, &mut |row| {
        each(&super::audit::from_row(row)?).map_err(|e| StoreError::Io(e.to_string()))?;
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filter_selects_every_record_in_chain_order() {
        let (sql, params) = query(&AuditFilter::default(), |n| format!("?{n}"));
        assert_eq!(sql, format!("SELECT {COLUMNS} FROM audit ORDER BY seq"));
        assert!(params.is_empty());
    }

    #[test]
    fn every_value_is_a_parameter_numbered_in_order() {
        let f = AuditFilter {
            wallet: Some("w'; DROP TABLE audit; --".into()),
            client: Some("cn:a".into()),
            decision: Some("denied".into()),
            since: Some("2026-01-01T00:00:00".into()),
            until: Some("2026-02-01T00:00:00".into()),
            operation: Some("evm.message".into()),
        };
        let (sql, params) = query(&f, |n| format!("${n}"));
        assert_eq!(
            sql,
            format!("SELECT {COLUMNS} FROM audit WHERE wallet_id = $1 AND actor = $2 AND decision = $3 AND substr(at, 1, 19) >= $4 AND substr(at, 1, 19) < $5 AND (operation = $6 OR action = $6) ORDER BY seq")
        );
        assert_eq!(params.len(), 6);
        assert_eq!(params[0], "w'; DROP TABLE audit; --");
        assert!(!sql.contains("DROP"));
    }
}
