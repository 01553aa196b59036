//! `keyward audit verify|export|search`: offline checks and queries of the hash chain.

use std::io::Write;

use clap::Subcommand;
use keyward::store::{audit, Store};

use super::{fail, CliError, ConfigArg};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Walk the chain; exit 1 naming the first broken record.
    Verify(ConfigArg),
    /// Write records as JSON lines to stdout.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// Only records at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Records matching every filter given, in chain order: a table on a terminal, JSON
    /// lines otherwise (streamed: bounded memory on any chain length).
    Search(super::audit_search::SearchArgs),
}

pub fn run(cmd: AuditCmd) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Search(a) => super::audit_search::run(a),
        AuditCmd::Verify(c) => {
            let config = c.load()?;
            let store = Store::for_command(&config.store).map_err(fail)?;
            match store.read(audit::verify).map_err(fail)? {
                Ok(n) => {
                    println!("audit chain OK: {n} records");
                    Ok(())
                }
                Err(b) => Err(fail(format!(
                    "audit chain broken at record {} ({}): {}",
                    b.seq,
                    b.id.unwrap_or_else(|| "missing".into()),
                    b.reason
                ))),
            }
        }
        AuditCmd::Export { config, since } => {
            if let Some(s) = &since {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        fail(format!(
                            "--since {s:?} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)"
                        ))
                    })?;
            }
            let config = config.load()?;
            let store = Store::for_command(&config.store).map_err(fail)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let n = store
                .read(|c| {
                    audit::export(c, since.as_deref(), |r| {
                        serde_json::to_writer(&mut out, r)?;
                        out.write_all(b"\n")
                    })
                })
                .map_err(fail)?;
            eprintln!("{n} records");
            Ok(())
        }
    }
}
