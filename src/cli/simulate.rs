//! `keyward simulate …`: send a delivery exactly as the vendor would (demos, checks).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use keyward::simulator::{self, EventKind, SimulationOptions};

use super::wallets::ChainArg;
use super::{fail, CliError, ConfigArg};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Delegation,
    Revoke,
    Ping,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long, value_enum, default_value = "evm")]
    chain: ChainArg,
    /// Wallet id (default: a new UUID; required for a meaningful revoke).
    #[arg(long)]
    wallet_id: Option<String>,
    /// Webhook URL (default: the configured webhook face on loopback).
    #[arg(long)]
    to: Option<String>,
    /// CA that signed the webhook certificate (default: ca.pem beside it).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// AES-GCM IV length of the envelope: 16 (the vendor's example) or 12.
    #[arg(long, default_value_t = 16)]
    iv_len: usize,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCmd {
    /// wallet.delegation.created with a freshly generated complete key.
    Delegation(SimArgs),
    /// wallet.delegation.revoked.
    Revoke(SimArgs),
    /// The vendor's registration ping.
    Ping(SimArgs),
}

pub fn run(cmd: SimulateCmd) -> Result<(), CliError> {
    let (kind, a) = match cmd {
        SimulateCmd::Delegation(a) => (Kind::Delegation, a),
        SimulateCmd::Revoke(a) => (Kind::Revoke, a),
        SimulateCmd::Ping(a) => (Kind::Ping, a),
    };
    let config = a.config.load()?;
    super::init_logging(Some(&config), false);
    let kind = match kind {
        Kind::Delegation => EventKind::Delegation,
        Kind::Revoke => EventKind::Revoke,
        Kind::Ping => EventKind::Ping,
    };
    let opts = SimulationOptions {
        ca: a.ca,
        iv_len: Some(a.iv_len),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let report = rt
        .block_on(simulator::run_simulation_with(
            &config,
            kind,
            a.chain.into(),
            a.wallet_id,
            a.to,
            opts,
        ))
        .map_err(fail)?;
    println!(
        "{} {} -> {} {}",
        report.event_name, report.event_id, report.url, report.status
    );
    if let Some(w) = &report.wallet_id {
        println!("wallet {w} ({})", report.chain);
    }
    if let Some(addr) = &report.address {
        println!("address {addr}");
    }
    if !(200..300).contains(&report.status) {
        return Err(fail(format!(
            "the webhook face answered {}: {}",
            report.status, report.response
        )));
    }
    Ok(())
}
