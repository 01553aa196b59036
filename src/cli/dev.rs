//! `keyward dev …`: helpers for `scripts/dev-up` and demos. Not for production.

use std::path::PathBuf;

use clap::Subcommand;

use super::{fail, CliError};

#[derive(Debug, Subcommand)]
pub enum DevCmd {
    /// Write a development PKI (ca.pem, server.pem/key, client.pem/key with CN dev-client)
    /// into DIR, unless DIR/ca.pem already exists.
    Pki {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: DevCmd) -> Result<(), CliError> {
    match cmd {
        DevCmd::Pki { out } => {
            if keyward::pki::write_dev_pki(&out).map_err(fail)? {
                println!("wrote development PKI to {}", out.display());
            } else {
                println!("{} already has a PKI; kept it", out.display());
            }
            Ok(())
        }
    }
}
