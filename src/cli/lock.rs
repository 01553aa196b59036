//! `keyward lock|unlock|backup`, through the database: they work whether or not the
//! service is running, survive restarts, and are audited.

use std::path::PathBuf;

use keyward::appliance::LOCK_KEY;
use keyward::store::{audit, state, AuditEvent, Store};

use super::{fail, CliError, ConfigArg};

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Why (recorded in the audit chain and shown in refusals).
    #[arg(long)]
    reason: String,
}

#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Destination file (created with mode 0600; must not exist).
    #[arg(long)]
    to: PathBuf,
}

fn set_lock(config: &ConfigArg, reason: Option<String>) -> Result<(), CliError> {
    let config = config.load()?;
    let store = Store::for_command(&config.store).map_err(fail)?;
    let locking = reason.is_some();
    store
        .write_blocking(move |ctx| {
            state::set(ctx.conn, LOCK_KEY, reason.as_deref())?;
            audit::append(
                ctx,
                AuditEvent {
                    actor: "operator".into(),
                    action: if locking {
                        "appliance.lock"
                    } else {
                        "appliance.unlock"
                    }
                    .into(),
                    decision: "allowed".into(),
                    result: "ok".into(),
                    detail: reason.map(|r| serde_json::json!({ "reason": r })),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .map_err(fail)?;
    println!(
        "{}",
        if locking {
            "locked: signing requests now get 423 appliance_locked"
        } else {
            "unlocked"
        }
    );
    Ok(())
}

pub fn lock(a: LockArgs) -> Result<(), CliError> {
    if a.reason.trim().is_empty() {
        return Err(fail("--reason must not be empty"));
    }
    set_lock(&a.config, Some(a.reason))
}

pub fn unlock(a: UnlockArgs) -> Result<(), CliError> {
    set_lock(&a.config, None)
}

pub fn backup(a: BackupArgs) -> Result<(), CliError> {
    let config = a.config.load()?;
    if a.to.exists() {
        return Err(fail(format!(
            "{} exists; refusing to overwrite",
            a.to.display()
        )));
    }
    let store = Store::for_command(&config.store).map_err(fail)?;
    store.backup_to(&a.to).map_err(fail)?;
    println!("backed up {} to {}", store.describe(), a.to.display());
    println!("the wrapped material is useless without the token: back up the token as well (see docs/operations.md, Backups)");
    Ok(())
}
