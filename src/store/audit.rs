//! The audit chain: every record carries the SHA-256 of its predecessor, so an edited,
//! removed or reordered row is found by walking the chain offline.
//!
//! A record holds who asked, what for, the digest signed and the outcome; never a
//! secret, never the request body.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::{Db, Row};
use super::writer::WriteCtx;
use super::StoreError;
use crate::vals;

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
    fn load(conn: &dyn Db) -> Result<ChainHead, StoreError> {
        Ok(
            match conn.row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])? {
                Some(mut r) => ChainHead {
                    seq: r.i64(0)?,
                    hash: r.text(1)?,
                },
                None => ChainHead {
                    seq: 0,
                    hash: GENESIS.into(),
                },
            },
        )
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
/// write lock, as the writer's batches do).
pub fn append_in(conn: &dyn Db, event: AuditEvent) -> Result<String, StoreError> {
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
    insert(conn, &rec)?;
    Ok(rec.id)
}

/// Writes `rec` as it is (its hashes included): for [`append_in`], and for copying a
/// chain between stores unchanged.
pub fn insert(conn: &dyn Db, rec: &AuditRecord) -> Result<(), StoreError> {
    // one INSERT per audited request on the single writer: prepared once per connection
    conn.exec(
        "INSERT INTO audit (seq, id, at, actor, action, wallet_id, chain, operation, digest, decision, result, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        vals![
            rec.seq, &rec.id, &rec.at, &rec.actor, &rec.action, &rec.wallet_id, &rec.chain,
            &rec.operation, &rec.digest, &rec.decision, &rec.result, &rec.detail,
            &rec.prev_hash, &rec.hash
        ],
    )?;
    Ok(())
}

pub(crate) fn from_row(mut r: Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: r.i64(0)?,
        id: r.text(1)?,
        at: r.text(2)?,
        actor: r.text(3)?,
        action: r.text(4)?,
        wallet_id: r.opt_text(5)?,
        chain: r.opt_text(6)?,
        operation: r.opt_text(7)?,
        digest: r.opt_text(8)?,
        decision: r.text(9)?,
        result: r.text(10)?,
        detail: r.opt_text(11)?,
        prev_hash: r.text(12)?,
        hash: r.text(13)?,
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
pub fn verify(conn: &dyn Db) -> Result<Result<i64, ChainBreak>, StoreError> {
    let mut prev = GENESIS.to_string();
    let mut expected = 1i64;
    let mut broken = None;
    conn.each(&format!("{SELECT} ORDER BY seq"), &[], &mut |row| {
        if broken.is_some() {
            return Ok(());
        }
        let rec = from_row(row)?;
        let at = |reason: &str| ChainBreak {
            seq: rec.seq,
            id: Some(rec.id.clone()),
            reason: reason.into(),
        };
        if rec.seq != expected {
            broken = Some(ChainBreak {
                seq: expected,
                id: None,
                reason: format!("record {expected} is missing (next is {})", rec.seq),
            });
        } else if rec.prev_hash != prev {
            broken = Some(at("prev_hash does not match the previous record's hash"));
        } else if rec.compute_hash() != rec.hash {
            broken = Some(at("content does not match its hash (record edited)"));
        } else {
            prev = rec.hash;
            expected += 1;
        }
        Ok(())
    })?;
    Ok(match broken {
        Some(b) => Err(b),
        None => Ok(expected - 1),
    })
}

/// Records at or after `since` (RFC 3339), oldest first, passed to `each`.
pub fn export(
    conn: &dyn Db,
    since: Option<&str>,
    mut each: impl FnMut(&AuditRecord) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let mut n = 0;
    conn.each(
        &format!("{SELECT} WHERE at >= ?1 ORDER BY seq"),
        vals![since.unwrap_or("")],
        &mut |row| {
            each(&from_row(row)?).map_err(|e| StoreError::Io(e.to_string()))?;
            n += 1;
            Ok(())
        },
    )?;
    Ok(n)
}

/// Up to `limit` records after sequence number `after`, in order.
pub fn page(
    conn: &dyn Db,
    after: i64,
    limit: i64,
    each: &mut dyn FnMut(AuditRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.each(
        &format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
        vals![after, limit],
        &mut |row| each(from_row(row)?),
    )
}

/// One record by id.
pub fn get(conn: &dyn Db, id: &str) -> Result<Option<AuditRecord>, StoreError> {
    conn.row(&format!("{SELECT} WHERE id = ?1"), vals![id])?
        .map(from_row)
        .transpose()
}
