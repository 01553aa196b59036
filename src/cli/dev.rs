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
    /// Print an unsigned Solana transfer (legacy, base64) for trying the signing API.
    SolanaTransfer {
        /// Sender (the wallet's base58 address; fee payer and only signer).
        #[arg(long)]
        from: String,
        /// Recipient (base58).
        #[arg(long)]
        to: String,
        /// Amount in lamports.
        #[arg(long)]
        lamports: u64,
        /// Recent blockhash (base58); a dummy one by default (fine for signing, not for sending).
        #[arg(long)]
        blockhash: Option<String>,
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
        DevCmd::SolanaTransfer {
            from,
            to,
            lamports,
            blockhash,
        } => {
            use base64::Engine as _;
            use keyward::chains::solana;
            let key = |s: &str, what: &str| {
                solana::parse_pubkey(s).map_err(|e| fail(format!("--{what}: {e}")))
            };
            let hash = match blockhash {
                Some(b) => key(&b, "blockhash")?,
                None => [0x42; 32],
            };
            let tx =
                solana::unsigned_transfer(&key(&from, "from")?, &key(&to, "to")?, lamports, &hash);
            println!("{}", base64::engine::general_purpose::STANDARD.encode(tx));
            Ok(())
        }
    }
}
