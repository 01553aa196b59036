//! Processed webhook events: the idempotency record, written in the same transaction as
//! the event's effect.

use super::db::Db;
use super::StoreError;
use crate::vals;

/// A processed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// The vendor's eventId.
    pub event_id: String,
    /// Its name.
    pub event_name: String,
    /// The delivery that carried it first.
    pub message_id: Option<String>,
    /// Wallet affected.
    pub wallet_id: Option<String>,
    /// What keyward did (`stored`, `revoked`, `ignored_stale`, `ignored`, …).
    pub outcome: String,
    /// Event time (ms since epoch).
    pub event_ts_ms: Option<i64>,
}

/// The record of `event_id`, if it was processed.
pub fn get(conn: &dyn Db, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
    conn.row(
        "SELECT event_id, event_name, message_id, wallet_id, outcome, event_ts_ms
         FROM processed_events WHERE event_id = ?1",
        vals![event_id],
    )?
    .map(|mut r| {
        Ok(ProcessedEvent {
            event_id: r.text(0)?,
            event_name: r.text(1)?,
            message_id: r.opt_text(2)?,
            wallet_id: r.opt_text(3)?,
            outcome: r.text(4)?,
            event_ts_ms: r.opt_i64(5)?,
        })
    })
    .transpose()
}

/// The outcome recorded for `event_id`, if it was processed.
pub fn outcome(conn: &dyn Db, event_id: &str) -> Result<Option<String>, StoreError> {
    conn.row(
        "SELECT outcome FROM processed_events WHERE event_id = ?1",
        vals![event_id],
    )?
    .map(|mut r| r.text(0))
    .transpose()
}

/// Records `e`; returns false (and changes nothing) if its id was already recorded.
pub fn record(conn: &dyn Db, e: &ProcessedEvent, now: &str) -> Result<bool, StoreError> {
    let n = conn.exec(
        "INSERT INTO processed_events (event_id, event_name, message_id, wallet_id, outcome, event_ts_ms, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(event_id) DO NOTHING",
        vals![&e.event_id, &e.event_name, &e.message_id, &e.wallet_id, &e.outcome, e.event_ts_ms, now],
    )?;
    Ok(n == 1)
}
