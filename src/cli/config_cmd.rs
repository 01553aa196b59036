//! `keyward config check`.

use clap::Subcommand;

use super::{CliError, ConfigArg};

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the file (and its secret files' modes) and print the effective config,
    /// secrets shown as <redacted>.
    Check(ConfigArg),
}

pub fn run(cmd: ConfigCmd) -> Result<(), CliError> {
    match cmd {
        ConfigCmd::Check(c) => {
            let config = c.load()?;
            // reading each secret proves it is present and privately stored; values are dropped at once
            let mut problems = Vec::new();
            if let Err(e) = config.pkcs11.pin.read() {
                problems.push(format!("pkcs11.pin: {e}"));
            }
            for (i, s) in config.webhook.secrets.iter().enumerate() {
                if let Err(e) = s.read() {
                    problems.push(format!("webhook.secrets[{i}]: {e}"));
                }
            }
            print!("{}", config.redacted_toml());
            if problems.is_empty() {
                eprintln!("{}: OK", config.source.display());
                Ok(())
            } else {
                Err(CliError::Config(keyward::config::ConfigError::Invalid {
                    file: config.source.clone(),
                    key: "secrets".into(),
                    message: problems.join("; "),
                }))
            }
        }
    }
}
