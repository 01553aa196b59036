//! `keyward config check`.

use clap::Subcommand;

use super::{CliError, ConfigArg};

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the file and everything `serve` checks before it opens the token (every
    /// named file, secret, file mode and owner, the TLS material), and print the effective
    /// config, secrets shown as <redacted>. Run it as the service user.
    Check(ConfigArg),
}

pub fn run(cmd: ConfigCmd) -> Result<(), CliError> {
    match cmd {
        ConfigCmd::Check(c) => {
            let config = c.load()?;
            print!("{}", config.redacted_toml());
            // the very checks `serve` runs before the token: an OK here cannot drift from
            // what start-up refuses
            keyward::server::preflight(&config).map_err(super::serve_error)?;
            let uid = rustix::process::geteuid().as_raw();
            let token = config
                .pkcs11
                .token_label
                .as_deref()
                .map(|l| format!("token {l:?}"))
                .or_else(|| {
                    config
                        .pkcs11
                        .token_serial
                        .as_deref()
                        .map(|s| format!("token serial {s:?}"))
                })
                .or_else(|| {
                    config
                        .pkcs11
                        .slot_id
                        .map(|n| format!("the token in slot {n}"))
                })
                .unwrap_or_else(|| "the token".into());
            let file = config.source.display();
            eprintln!(
                "{file}: OK: the config is valid; every file it names is present and readable; \
                 secrets read; modes and owners pass for uid {uid} (serve judges them as its own \
                 user); TLS material loads"
            );
            eprintln!(
                "{file}: not checked (only the token or the database can tell): that the PKCS#11 \
                 module loads, {token} is present, the PIN is accepted, the keys `keyward init` \
                 creates exist, the database opens and no other `keyward serve` holds it; nor \
                 that the listen addresses are free, nor the process limits (`process.mlock_all` \
                 needs LimitMEMLOCK=infinity)"
            );
            Ok(())
        }
    }
}
