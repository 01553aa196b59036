//! `keyward wallets …`: appliance-held wallets and the rewrap after a key rotation.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use keyward::appliance::Appliance;
use keyward::store::wallets::{Chain, Wallet};
use keyward::{rewrap, wallet_key, wallets};
use zeroize::Zeroizing;

use super::{fail, CliError, ConfigArg};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChainArg {
    Evm,
    Solana,
}

impl From<ChainArg> for Chain {
    fn from(c: ChainArg) -> Chain {
        match c {
            ChainArg::Evm => Chain::Evm,
            ChainArg::Solana => Chain::Solana,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum WalletsCmd {
    /// Generate a key on this host (OS CSPRNG), wrap it at once, store it.
    Create {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum)]
        chain: ChainArg,
        /// Operator label (usable in grants as label:NAME).
        #[arg(long)]
        label: Option<String>,
    },
    /// Import a key (32 bytes, hex) from a file or stdin (`-`); never from the command line.
    Import {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum)]
        chain: ChainArg,
        /// File holding the hex key, or `-` for stdin.
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        label: Option<String>,
    },
    /// List wallets (no key material).
    List(ConfigArg),
    /// Show one wallet as JSON.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        /// Wallet id.
        id: String,
    },
    /// Re-wrap every wallet under the newest wrapping key (resumable; one wallet per transaction).
    Rewrap(ConfigArg),
}

fn open(c: &ConfigArg) -> Result<Appliance, CliError> {
    let config = c.load()?;
    super::init_logging(Some(&config), false);
    Appliance::open(config).map_err(fail)
}

fn line(w: &Wallet) -> String {
    format!(
        "{:<38} {:<7} {:<46} {:<6} {:<10} {:<8} v{}  {}",
        w.id,
        w.chain.as_str(),
        w.address.as_deref().unwrap_or("-"),
        w.engine.as_str(),
        w.source.as_str(),
        w.status.as_str(),
        w.key_version.map_or("-".into(), |v| v.to_string()),
        w.label.as_deref().unwrap_or("")
    )
}

fn read_key(path: &PathBuf) -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(String::new());
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map_err(fail)?;
    } else {
        keyward::config::secret::check_private_mode(path).map_err(fail)?;
        let mut f =
            std::fs::File::open(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        f.read_to_string(&mut text).map_err(fail)?;
    }
    Ok(text)
}

pub fn run(cmd: WalletsCmd) -> Result<(), CliError> {
    match cmd {
        WalletsCmd::Create {
            config,
            chain,
            label,
        } => {
            let app = open(&config)?;
            let w = wallets::create(&app, chain.into(), label.as_deref()).map_err(fail)?;
            println!("{}", line(&w));
        }
        WalletsCmd::Import {
            config,
            chain,
            key_file,
            label,
        } => {
            let app = open(&config)?;
            let text = read_key(&key_file)?;
            let secret = wallet_key::parse_secret_hex(&text).ok_or_else(|| {
                fail("the key must be 32 bytes of hex (64 hex digits, 0x optional)")
            })?;
            let w = wallets::import(&app, chain.into(), secret, label.as_deref()).map_err(fail)?;
            println!("{}", line(&w));
        }
        WalletsCmd::List(c) => {
            let app = open(&c)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for w in wallets::list(&app).map_err(fail)? {
                // `keyward wallets list | head` closes the pipe early: stop quietly
                if std::io::Write::write_all(&mut out, format!("{}\n", line(&w)).as_bytes())
                    .is_err()
                {
                    break;
                }
            }
        }
        WalletsCmd::Show { config, id } => {
            let app = open(&config)?;
            let w = wallets::get(&app, &id)
                .map_err(fail)?
                .ok_or_else(|| fail(format!("no wallet {id}")))?;
            println!("{}", serde_json::to_string_pretty(&w).map_err(fail)?);
        }
        WalletsCmd::Rewrap(c) => {
            let app = open(&c)?;
            let bar = std::io::stderr().is_terminal().then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} wallets {eta}")
                        .expect("static template"),
                );
                b
            });
            let mut progress = |done: u64, total: u64| match &bar {
                Some(b) => {
                    b.set_length(total);
                    b.set_position(done);
                }
                None if done % 100 == 0 || done == total => eprintln!("rewrapped {done}/{total}"),
                None => {}
            };
            let n = rewrap::rewrap_all(&app, &mut progress).map_err(fail)?;
            if let Some(b) = bar {
                b.finish();
            }
            println!("rewrapped {n} wallet(s); every active wallet is on the current wrapping key");
        }
    }
    Ok(())
}
