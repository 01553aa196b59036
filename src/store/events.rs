//! Processed webhook events: the idempotency record, written in the same transaction as
//! the event's effect.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

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
pub fn get(conn: &Connection, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, event_name, message_id, wallet_id, outcome, event_ts_ms
         FROM processed_events WHERE event_id = ?1",
    )?;
    Ok(stmt
        .query_row([event_id], |r| {
            Ok(ProcessedEvent {
                event_id: r.get(0)?,
                event_name: r.get(1)?,
                message_id: r.get(2)?,
                wallet_id: r.get(3)?,
                outcome: r.get(4)?,
                event_ts_ms: r.get(5)?,
            })
        })
        .optional()?)
}

/// The outcome recorded for `event_id`, if it was processed.
pub fn outcome(conn: &Connection, event_id: &str) -> Result<Option<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT outcome FROM processed_events WHERE event_id = ?1")?;
    Ok(stmt.query_row([event_id], |r| r.get(0)).optional()?)
}

/// Records `e`; returns false (and changes nothing) if its id was already recorded.
pub fn record(conn: &Connection, e: &ProcessedEvent, now: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO processed_events (event_id, event_name, message_id, wallet_id, outcome, event_ts_ms, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(event_id) DO NOTHING",
        params![e.event_id, e.event_name, e.message_id, e.wallet_id, e.outcome, e.event_ts_ms, now],
    )?;
    Ok(n == 1)
}
