//! Schema migrations, versioned by SQLite's `user_version`.
//!
//! Forward only: migration N upgrades a database at version N-1. A database newer than
//! this binary is refused rather than guessed at.

use rusqlite::Connection;

use crate::store::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: wallets, processed events, the audit chain, appliance state
    r#"
CREATE TABLE wallets (
    id              TEXT PRIMARY KEY,
    chain           TEXT NOT NULL CHECK (chain IN ('evm', 'solana')),
    address         TEXT,
    label           TEXT,
    source          TEXT NOT NULL CHECK (source IN ('delegation', 'generated', 'imported')),
    engine          TEXT NOT NULL CHECK (engine IN ('local', 'mpc')),
    status          TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    key_version     INTEGER,
    wrapped_share   BLOB,
    wrapped_api_key BLOB,
    environment_id  TEXT,
    user_id         TEXT,
    delegated_at_ms INTEGER,
    revoked_at_ms   INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CHECK (status = 'active' OR (wrapped_share IS NULL AND wrapped_api_key IS NULL)),
    CHECK (status = 'revoked' OR (wrapped_share IS NOT NULL AND key_version IS NOT NULL AND address IS NOT NULL))
);
CREATE INDEX wallets_label ON wallets(label);
CREATE INDEX wallets_key_version ON wallets(key_version);

CREATE TABLE processed_events (
    event_id    TEXT PRIMARY KEY,
    event_name  TEXT NOT NULL,
    message_id  TEXT,
    wallet_id   TEXT,
    outcome     TEXT NOT NULL,
    event_ts_ms INTEGER,
    received_at TEXT NOT NULL
);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    wallet_id TEXT,
    chain     TEXT,
    operation TEXT,
    digest    TEXT,
    decision  TEXT NOT NULL,
    result    TEXT NOT NULL,
    detail    TEXT,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);

CREATE TABLE appliance_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    // 2: policy spend counters, one row per signed spend. Amounts are decimal TEXT (they
    // are 256-bit) and summed by the reader; the index makes "this counter since T" a
    // range scan and pruning of rows older than the longest window one as well.
    r#"
CREATE TABLE spend (
    seq       INTEGER PRIMARY KEY,
    wallet_id TEXT NOT NULL,
    chain     TEXT NOT NULL,
    asset     TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    amount    TEXT NOT NULL CHECK (amount GLOB '[0-9]*'),
    audit_id  TEXT NOT NULL
);
CREATE INDEX spend_window ON spend(wallet_id, chain, asset, at_ms);
"#,
    // 3: find a wallet by address without scanning (duplicate-key refusal on import)
    r#"
CREATE INDEX wallets_address ON wallets(chain, address);
"#,
    // 4: the EVM public key of a `local` wallet (65-byte uncompressed SEC1), so the signer
    // verifies against it instead of recovering, and no request derives it from the
    // secret. NULL for Solana (the address is the public key), `mpc` wallets, and rows
    // from before this migration: the signer fills those at their first signature, from
    // the public key the signature recovers to (see `signer::Signer::with_store`).
    r#"
ALTER TABLE wallets ADD COLUMN public_key BLOB;
"#,
    // 5: at most one active wallet per address and chain. Rolling caps are kept per wallet
    // id, so two active wallets on one address would double the address's caps, and the
    // JSON-RPC face (which picks the wallet by address) would pick one of them without an
    // order. `wallets::upsert` refuses such a row first, with a precise error; this index
    // is the backstop. A database that already holds such pairs is not upgraded (see
    // `duplicate_active_addresses`).
    r#"
CREATE UNIQUE INDEX wallets_active_address ON wallets(chain, address) WHERE status = 'active';
"#,
];

/// The version whose migration adds the unique index of active addresses.
const ACTIVE_ADDRESS_UNIQUE: i64 = 5;

/// Up to five `chain address: id, id` descriptions of addresses more than one active
/// wallet holds.
fn duplicate_active_addresses(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT chain, address, group_concat(id, ', ') FROM wallets WHERE status = 'active'
           GROUP BY chain, address HAVING COUNT(*) > 1 ORDER BY chain, address LIMIT 5",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} {}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The schema version this binary writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings `conn` up to [`CURRENT`], each step in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > CURRENT {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: CURRENT,
        });
    }
    while version < CURRENT {
        if version + 1 == ACTIVE_ADDRESS_UNIQUE {
            let dups = duplicate_active_addresses(conn)?;
            if !dups.is_empty() {
                return Err(StoreError::Upgrade(format!(
                    "the database cannot be upgraded: more than one active wallet holds an address ({}); with the previous keyward, have all but one of each revoked (a delegation by the vendor's revocation), then start this version",
                    dups.join("; ")
                )));
            }
        }
        let tx = conn.transaction()?;
        tx.execute_batch(MIGRATIONS[version as usize])?;
        version += 1;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(version)
}
