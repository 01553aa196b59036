//! Reading the SQLite file behind the appliance's back, for "nothing changed" checks: a
//! row dump of every table, and the audit records written since a point.

use std::path::Path;

fn open(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("database opens read-only")
}

fn tables(c: &rusqlite::Connection) -> Vec<String> {
    c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn rows(c: &rusqlite::Connection, table: &str, out: &mut Vec<String>) {
    let mut stmt = c
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
        .unwrap();
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    for row in rows {
        out.push(format!("{table}: {:?}", row.unwrap()));
    }
}

/// Every row of every table, in a stable order.
pub fn dump(db: &Path) -> Vec<String> {
    let c = open(db);
    let mut out = Vec::new();
    for t in tables(&c) {
        rows(&c, &t, &mut out);
    }
    out
}

/// Every row of every table except the two that change by design while nothing else
/// does: `audit` (it records refusals too; checked separately, see [`audit_since`]) and
/// the admin face's `readyz.probe` row of `appliance_state` (a readiness write). Every
/// other table — wallets, processed events, spend counters, the lock — is in, including
/// tables added later.
pub fn state(db: &Path) -> Vec<String> {
    let c = open(db);
    let mut out = Vec::new();
    for t in tables(&c).into_iter().filter(|t| t != "audit") {
        rows(&c, &t, &mut out);
    }
    out.retain(|r| !r.starts_with("appliance_state: [Text(\"readyz.probe\")"));
    out
}

/// `SELECT COUNT(*) …`-style single value.
pub fn count(db: &Path, sql: &str) -> i64 {
    open(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The newest audit sequence number (0 for an empty chain).
pub fn audit_seq(db: &Path) -> i64 {
    count(db, "SELECT COALESCE(MAX(seq), 0) FROM audit")
}

/// The fields of an audit row the refusal checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub actor: String,
    pub action: String,
    pub wallet_id: Option<String>,
    pub operation: Option<String>,
    pub decision: String,
    pub result: String,
}

/// The audit rows written after sequence number `seq`, oldest first.
pub fn audit_since(db: &Path, seq: i64) -> Vec<AuditRow> {
    let c = open(db);
    let mut stmt = c
        .prepare(
            "SELECT seq, id, actor, action, wallet_id, operation, decision, result \
             FROM audit WHERE seq > ?1 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([seq], |r| {
        Ok(AuditRow {
            seq: r.get(0)?,
            id: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            wallet_id: r.get(4)?,
            operation: r.get(5)?,
            decision: r.get(6)?,
            result: r.get(7)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A point to compare against: the state (see [`state`]) and the audit position.
pub struct Snapshot {
    pub state: Vec<String>,
    pub audit_seq: i64,
}

impl Snapshot {
    pub fn take(db: &Path) -> Snapshot {
        Snapshot {
            state: state(db),
            audit_seq: audit_seq(db),
        }
    }

    /// Fails (naming `what` and the first differing row) unless the state is as it was;
    /// returns the audit rows written since.
    pub fn unchanged(&self, db: &Path, what: &str) -> Vec<AuditRow> {
        let now = state(db);
        if now != self.state {
            let gone: Vec<_> = self.state.iter().filter(|r| !now.contains(r)).collect();
            let new: Vec<_> = now.iter().filter(|r| !self.state.contains(r)).collect();
            panic!("{what}: the store changed\n  gone: {gone:?}\n  new: {new:?}");
        }
        audit_since(db, self.audit_seq)
    }
}
