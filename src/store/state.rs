//! Appliance-wide state that must survive restarts (the lock failsafe).

use super::db::Db;
use super::StoreError;
use crate::vals;

/// Reads a state value.
pub fn get(conn: &dyn Db, key: &str) -> Result<Option<String>, StoreError> {
    // read on every sign request (the lock failsafe): the statement stays prepared
    conn.row(
        "SELECT value FROM appliance_state WHERE key = ?1",
        vals![key],
    )?
    .map(|mut r| r.text(0))
    .transpose()
}

/// Sets (or, with `None`, clears) a state value.
pub fn set(conn: &dyn Db, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    match value {
        Some(v) => conn.exec(
            "INSERT INTO appliance_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vals![key, v],
        )?,
        None => conn.exec("DELETE FROM appliance_state WHERE key = ?1", vals![key])?,
    };
    Ok(())
}
