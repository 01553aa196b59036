//! `keyward policy check FILE`: validates a policy file the way `serve` and a SIGHUP
//! reload would, and prints what it contains.

use std::path::PathBuf;

use clap::Subcommand;
use keyward::config::Config;

use super::CliError;

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Validate a policy file (the file `policy.file` points to); errors name the file,
    /// the rule and the key.
    Check {
        /// The policy file.
        file: PathBuf,
    },
}

pub fn run(cmd: PolicyCmd) -> Result<(), CliError> {
    match cmd {
        PolicyCmd::Check { file } => {
            let policy = Config::load_policy(&file)?;
            let ids: Vec<&str> = policy.rule_ids().collect();
            println!(
                "default: {}",
                match policy.default_action() {
                    keyward::policy::DefaultAction::Allow => "allow",
                    keyward::policy::DefaultAction::Deny => "deny",
                }
            );
            println!("rules ({}): {}", ids.len(), ids.join(", "));
            for l in policy.rate_limits() {
                println!(
                    "rate limit {}: {} requests per {} ms per {:?}, burst {}",
                    l.id, l.requests, l.per_ms, l.scope, l.burst
                );
            }
            eprintln!("{}: OK", file.display());
            Ok(())
        }
    }
}
