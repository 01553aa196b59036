//! Moving every wallet to the newest wrapping key, one wallet per transaction.
//!
//! Resumable by construction: the work list is "active wallets not on the target
//! version", re-read after every wallet, and each wallet's move (unwrap under the old
//! version, wrap under the new, update the row, audit) commits on its own. A crash
//! between two wallets loses nothing; running again finishes the rest.

use crate::appliance::Appliance;
use crate::custody::{self, Binding, Purpose};
use crate::hsm::Token;
use crate::store::wallets::{self, Wallet};
use crate::store::{audit, AuditEvent, StoreError};

/// Progress after each wallet: (done so far, remaining when the run started).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

fn rewrap_one(token: &Token, w: &mut Wallet, target: u32) -> Result<(), StoreError> {
    let chain = w.chain.as_str();
    let move_blob = |blob: &Option<Vec<u8>>, purpose| -> Result<Option<Vec<u8>>, StoreError> {
        let Some(blob) = blob else { return Ok(None) };
        let binding = Binding {
            wallet_id: &w.id,
            chain,
            purpose,
        };
        custody::rewrap(token, &binding, blob, target)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("wallet {}: {e}", w.id)))
    };
    let share = move_blob(&w.wrapped_share, Purpose::Share)?;
    let api_key = move_blob(&w.wrapped_api_key, Purpose::ApiKey)?;
    w.wrapped_share = share;
    w.wrapped_api_key = api_key;
    w.key_version = Some(target);
    w.updated_at = crate::store::now_rfc3339();
    Ok(())
}

/// Rewraps every active wallet under the current wrapping key. Returns how many moved.
pub fn rewrap_all(app: &Appliance, progress: Progress<'_>) -> Result<u64, StoreError> {
    let target = app
        .token
        .current_wrap_version()
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let total = app.store.read(|c| {
        Ok(wallets::count_by_version(c)?
            .into_iter()
            .filter(|(v, _)| *v != target)
            .map(|(_, n)| n)
            .sum::<i64>())
    })? as u64;
    let mut done = 0u64;
    loop {
        let page = app.store.read(|c| wallets::not_on_version(c, target, 64))?;
        if page.is_empty() {
            return Ok(done);
        }
        for w in page {
            let token = app.token.clone();
            let id = w.id.clone();
            let moved = app.store.write_blocking(move |ctx| {
                // re-read inside the transaction: a webhook may have changed the row since
                let Some(mut w) = wallets::get(ctx.conn, &id)? else {
                    return Ok(false);
                };
                if w.status != wallets::Status::Active || w.key_version == Some(target) {
                    return Ok(false);
                }
                let from = w.key_version;
                rewrap_one(&token, &mut w, target)?;
                wallets::upsert(ctx.conn, &w)?;
                audit::append(
                    ctx,
                    AuditEvent {
                        actor: "operator".into(),
                        action: "wallet.rewrap".into(),
                        wallet_id: Some(w.id.clone()),
                        chain: Some(w.chain.as_str().into()),
                        decision: "allowed".into(),
                        result: "ok".into(),
                        detail: Some(serde_json::json!({ "from": from, "to": target })),
                        ..Default::default()
                    },
                )?;
                Ok(true)
            })?;
            if moved {
                done += 1;
                progress(done, total);
            }
        }
    }
}
