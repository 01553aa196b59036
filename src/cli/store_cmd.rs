//! `keyward store migrate`: a live appliance's SQLite store copied into PostgreSQL.

use std::path::PathBuf;

use keyward::config::StoreBackend;
use keyward::store::{copy, Store};

use super::{fail, CliError, ConfigArg};

#[derive(Debug, clap::Subcommand)]
pub enum StoreCmd {
    /// Copy a SQLite store (`--from sqlite:PATH`) into the empty PostgreSQL database the
    /// config's `[store.postgres]` names (`--to postgres`): wallets with their wrapped
    /// material, events, spend counters, state and the audit chain with its hashes
    /// unchanged, in one transaction; the chain is verified at the target. A non-empty
    /// target is refused.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The source: `sqlite:PATH` (safe while a service serves it: it is only read).
    #[arg(long)]
    from: String,
    /// The target: `postgres` (the database of the config's `[store.postgres]`).
    #[arg(long)]
    to: String,
}

pub fn run(cmd: StoreCmd) -> Result<(), CliError> {
    match cmd {
        StoreCmd::Migrate(a) => migrate(a),
    }
}

fn migrate(a: MigrateArgs) -> Result<(), CliError> {
    let source = a
        .from
        .strip_prefix("sqlite:")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| fail(format!("--from {:?}: expected sqlite:PATH", a.from)))?;
    if !source.is_file() {
        return Err(fail(format!(
            "--from {}: no such database file",
            source.display()
        )));
    }
    if a.to != "postgres" {
        return Err(fail(format!(
            "--to {:?}: expected postgres (the config's [store.postgres])",
            a.to
        )));
    }
    let config = a.config.load()?;
    if config.store.backend != StoreBackend::Postgres {
        return Err(fail(
            "the config's store.backend is not \"postgres\": set it and [store.postgres] to the target database",
        ));
    }
    let from = Store::open(&source, 1).map_err(fail)?;
    let to = Store::for_command(&config.store).map_err(fail)?;
    let n = copy::copy_all(&from, &to).map_err(fail)?;
    println!(
        "copied {} to {}: {} wallets, {} processed events, {} spend rows, {} state entries, {} audit records (chain verified at the target)",
        from.describe(),
        to.describe(),
        n.wallets,
        n.events,
        n.spend,
        n.state,
        n.audit
    );
    Ok(())
}
