//! Appliance-wide state that must survive restarts (the lock failsafe).

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

/// Reads a state value.
pub fn get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    // read on every sign request (the lock failsafe): keep the statement prepared
    let mut stmt = conn.prepare_cached("SELECT value FROM appliance_state WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
}

/// Sets (or, with `None`, clears) a state value.
pub fn set(conn: &Connection, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO appliance_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, v],
        )?,
        None => conn.execute("DELETE FROM appliance_state WHERE key = ?1", [key])?,
    };
    Ok(())
}
