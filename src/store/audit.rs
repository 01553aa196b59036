//! The audit chain: every record carries the SHA-256 of its predecessor, so an edited,
//! removed or reordered row is found by walking the chain offline.
//!
//! A record holds who asked, what for, the digest signed and the outcome; never a
//! secret, never the request body.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::writer::WriteCtx;
use super::StoreError;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain's tip.
#[derive(Debug, Clone)]
struct ChainHead {
    seq: i64,
    hash: String,
}

impl ChainHead {
    /// Read inside the appending transaction, never remembered between transactions:
    /// any keyward process may have appended since (the rightmost-rowid lookup costs a
    /// few µs, far less than the commit it is part of).
    fn load(conn: &Connection) -> Result<ChainHead, StoreError> {
        let row: Option<(i64, String)> = conn
            .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((seq, hash)) => ChainHead { seq, hash },
            None => ChainHead {
                seq: 0,
                hash: GENESIS.into(),
            },
        })
    }
}

/// What happened, before it is chained.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// Client identity, `webhook`, or `operator`.
    pub actor: String,
    /// What was attempted (`sign`, `delegation.created`, `wallet.create`, …).
    pub action: String,
    /// Wallet concerned.
    pub wallet_id: Option<String>,
    /// Chain concerned.
    pub chain: Option<String>,
    /// Operation (`evm.message`, …).
    pub operation: Option<String>,
    /// Hex digest or message hash that was (or would have been) signed.
    pub digest: Option<String>,
    /// `allowed`, `denied` or `error`.
    pub decision: String,
    /// `ok` or the error code.
    pub result: String,
    /// Extra non-secret context as JSON.
    pub detail: Option<serde_json::Value>,
}

/// A chained record as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Stable id returned to clients as `auditId`.
    pub id: String,
    /// RFC 3339 time.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Wallet.
    #[serde(rename = "walletId")]
    pub wallet_id: Option<String>,
    /// Chain.
    pub chain: Option<String>,
    /// Operation.
    pub operation: Option<String>,
    /// Digest signed.
    pub digest: Option<String>,
    /// Decision.
    pub decision: String,
    /// Result code.
    pub result: String,
    /// Extra context (JSON text).
    pub detail: Option<String>,
    /// Hash of the previous record.
    #[serde(rename = "prevHash")]
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

fn field(h: &mut Sha256, v: Option<&str>) {
    match v {
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update([0u8]),
    }
}

impl AuditRecord {
    /// The hash this record should carry, given its own `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"keyward/audit/v1");
        h.update(self.seq.to_be_bytes());
        for v in [
            Some(self.prev_hash.as_str()),
            Some(self.id.as_str()),
            Some(self.at.as_str()),
            Some(self.actor.as_str()),
            Some(self.action.as_str()),
            self.wallet_id.as_deref(),
            self.chain.as_deref(),
            self.operation.as_deref(),
            self.digest.as_deref(),
            Some(self.decision.as_str()),
            Some(self.result.as_str()),
            self.detail.as_deref(),
        ] {
            field(&mut h, v);
        }
        hex::encode(h.finalize())
    }
}

/// Appends `event` to the chain inside the write transaction `ctx`; returns its id.
pub fn append(ctx: &mut WriteCtx<'_>, event: AuditEvent) -> Result<String, StoreError> {
    append_in(ctx.conn, event)
}

/// Appends `event` inside the write transaction open on `conn` (which must hold the
/// write lock: `BEGIN IMMEDIATE`, as the writer's batches do).
pub fn append_in(conn: &Connection, event: AuditEvent) -> Result<String, StoreError> {
    let head = ChainHead::load(conn)?;
    let mut rec = AuditRecord {
        seq: head.seq + 1,
        id: uuid::Uuid::new_v4().to_string(),
        at: super::now_rfc3339(),
        actor: event.actor,
        action: event.action,
        wallet_id: event.wallet_id,
        chain: event.chain,
        operation: event.operation,
        digest: event.digest,
        decision: event.decision,
        result: event.result,
        detail: event.detail.map(|d| d.to_string()),
        prev_hash: head.hash,
        hash: String::new(),
    };
    rec.hash = rec.compute_hash();
    // one INSERT per audited request on the single writer thread: prepared once per connection
    conn.prepare_cached(
        "INSERT INTO audit (seq, id, at, actor, action, wallet_id, chain, operation, digest, decision, result, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(
        params![
            rec.seq, rec.id, rec.at, rec.actor, rec.action, rec.wallet_id, rec.chain, rec.operation,
            rec.digest, rec.decision, rec.result, rec.detail, rec.prev_hash, rec.hash
        ],
    )?;
    Ok(rec.id)
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        id: r.get(1)?,
        at: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        wallet_id: r.get(5)?,
        chain: r.get(6)?,
        operation: r.get(7)?,
        digest: r.get(8)?,
        decision: r.get(9)?,
        result: r.get(10)?,
        detail: r.get(11)?,
        prev_hash: r.get(12)?,
        hash: r.get(13)?,
    })
}

const SELECT: &str = "SELECT seq, id, at, actor, action, wallet_id, chain, operation, digest, decision, result, detail, prev_hash, hash FROM audit";

/// The first record that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Its sequence number (or the expected one, for a gap).
    pub seq: i64,
    /// Its id, when the row exists.
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Walks the whole chain; `Ok(n)` is the number of records verified.
pub fn verify(conn: &Connection) -> Result<Result<i64, ChainBreak>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_string();
    let mut expected = 1i64;
    while let Some(row) = rows.next()? {
        let rec = from_row(row)?;
        let broken = |reason: String| {
            Ok(Err(ChainBreak {
                seq: rec.seq,
                id: Some(rec.id.clone()),
                reason,
            }))
        };
        if rec.seq != expected {
            return Ok(Err(ChainBreak {
                seq: expected,
                id: None,
                reason: format!("record {expected} is missing (next is {})", rec.seq),
            }));
        }
        if rec.prev_hash != prev {
            return broken("prev_hash does not match the previous record's hash".into());
        }
        if rec.compute_hash() != rec.hash {
            return broken("content does not match its hash (record edited)".into());
        }
        prev = rec.hash.clone();
        expected += 1;
    }
    Ok(Ok(expected - 1))
}

/// Records at or after `since` (RFC 3339), oldest first, passed to `each`.
pub fn export(
    conn: &Connection,
    since: Option<&str>,
    mut each: impl FnMut(&AuditRecord) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} WHERE at >= ?1 ORDER BY seq"))?;
    let mut rows = stmt.query([since.unwrap_or("")])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        each(&from_row(row)?).map_err(|e| StoreError::Io(e.to_string()))?;
        n += 1;
    }
    Ok(n)
}

/// One record by id.
pub fn get(conn: &Connection, id: &str) -> Result<Option<AuditRecord>, StoreError> {
    Ok(conn
        .query_row(&format!("{SELECT} WHERE id = ?1"), [id], from_row)
        .optional()?)
}
