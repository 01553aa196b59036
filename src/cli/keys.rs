//! `keyward init` and `keyward keys …`: token objects, never their values.

use clap::Subcommand;
use keyward::appliance;
use keyward::config::Config;
use keyward::hsm::{Capabilities, HsmError, KeyKind, Token, TokenSettings};
use keyward::store::{now_rfc3339, state, wallets, Store};

use super::{fail, CliError, ConfigArg};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Print the webhook RSA public key (SPKI PEM) and its fingerprint, for the vendor's dashboard.
    Public {
        #[command(flatten)]
        config: ConfigArg,
        /// Which key (default: the newest).
        #[arg(long)]
        label: Option<String>,
    },
    /// List keyward's token objects with their checked attributes.
    List(ConfigArg),
    /// Generate a new webhook RSA key pair (both decrypt until the old one is retired).
    RotateRsa(ConfigArg),
    /// Generate a new wrapping key version; then run `keyward wallets rewrap`.
    RotateWrapping(ConfigArg),
    /// Destroy a retired key. Refuses the last RSA key and any wrapping key still in use.
    Retire {
        #[command(flatten)]
        config: ConfigArg,
        /// Label of the key to destroy.
        label: String,
    },
}

fn token(config: &Config) -> Result<Token, CliError> {
    appliance::open_token(config).map_err(fail)
}

pub fn init(config: &Config) -> Result<(), CliError> {
    super::init_logging(Some(config), false);
    let token = token(config)?;
    let report = appliance::init_keys(&token).map_err(fail)?;
    let store = Store::for_command(&config.store).map_err(fail)?;
    let described = store.describe();
    drop(store);
    if report.created.is_empty() {
        println!(
            "nothing to do: token keys already present ({})",
            report.existing.join(", ")
        );
    } else {
        println!("created: {}", report.created.join(", "));
    }
    println!("database ready: {described}");
    Ok(())
}

pub fn run(cmd: KeysCmd) -> Result<(), CliError> {
    match cmd {
        KeysCmd::Public { config, label } => public(&config.load()?, label.as_deref()),
        KeysCmd::List(c) => list(&c.load()?),
        KeysCmd::RotateRsa(c) => rotate(&c.load()?, KeyKind::Rsa),
        KeysCmd::RotateWrapping(c) => rotate(&c.load()?, KeyKind::Wrap),
        KeysCmd::Retire { config, label } => retire(&config.load()?, &label),
    }
}

fn public(config: &Config, label: Option<&str>) -> Result<(), CliError> {
    let keys = token(config)?.rsa_keys().map_err(fail)?;
    let key = match label {
        Some(l) => keys.iter().find(|k| k.label == l),
        None => keys.last(),
    }
    .ok_or_else(|| fail("no such RSA key in the token (run `keyward init`)"))?;
    eprintln!("# {} {}", key.label, key.fingerprint().unwrap_or_default());
    print!("{}", key.public_pem().unwrap_or_default());
    Ok(())
}

fn list(config: &Config) -> Result<(), CliError> {
    let token = match appliance::open_token(config) {
        Ok(t) => t,
        Err(appliance::OpenError::Hsm(HsmError::Capability(gap))) => {
            // what the token does offer, before the refusal: the operator's next step
            if let Ok(caps) = Token::probe(&TokenSettings::from(&config.pkcs11)) {
                print_capabilities(&caps);
            }
            return Err(fail(appliance::OpenError::Hsm(HsmError::Capability(gap))));
        }
        Err(e) => return Err(fail(e)),
    };
    for k in token
        .rsa_keys()
        .map_err(fail)?
        .iter()
        .chain(token.wrap_keys().map_err(fail)?.iter())
    {
        let kind = match k.kind {
            KeyKind::Rsa => format!(
                "RSA-{} {}",
                k.public
                    .as_ref()
                    .map_or(0, |p| rsa::traits::PublicKeyParts::size(p) * 8),
                k.fingerprint().unwrap_or_default()
            ),
            KeyKind::Wrap => "AES-256".to_string(),
        };
        let attrs: Vec<String> = k
            .attributes
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        println!("{:<24} {:<40} {}", k.label, kind, attrs.join(" "));
    }
    println!("RSA-OAEP mode: {}", token.oaep_mode());
    let (size, _) = token.pool_usage();
    println!("sessions in the pool: {size}");
    print_capabilities(&token.capabilities().map_err(fail)?);
    Ok(())
}

fn print_capabilities(caps: &Capabilities) {
    println!("token mechanisms:");
    for (name, has) in caps.table() {
        println!("  {name:<32} {}", if has { "yes" } else { "no" });
    }
}

fn rotate(config: &Config, kind: KeyKind) -> Result<(), CliError> {
    let token = token(config)?;
    let label = token.generate(kind).map_err(fail)?;
    println!("created {label}");
    match kind {
        KeyKind::Rsa => {
            let key = token.rsa_keys().map_err(fail)?.into_iter().find(|k| k.label == label);
            if let Some(k) = key {
                eprintln!("# register this public key in the vendor's dashboard ({})", k.fingerprint().unwrap_or_default());
                print!("{}", k.public_pem().unwrap_or_default());
            }
            println!("both keys decrypt until `keyward keys retire` removes the old one; a running service uses the new one from its next delivery");
        }
        KeyKind::Wrap => println!("new wraps use it from now on (a running service too); run `keyward wallets rewrap` to move existing wallets"),
    }
    Ok(())
}

fn retire(config: &Config, label: &str) -> Result<(), CliError> {
    let token = token(config)?;
    let prefix = &config.pkcs11.label_prefix;
    if KeyKind::Rsa.version_of(prefix, label).is_some()
        && token.rsa_keys().map_err(fail)?.len() <= 1
    {
        return Err(fail(format!(
            "{label} is the only webhook RSA key; rotate first"
        )));
    }
    // a wrapping key's retire marks its version first; the store stays open to lift the
    // mark if the destroy fails
    let mut marked = None;
    if let Some(v) = KeyKind::Wrap.version_of(prefix, label) {
        if !token
            .wrap_keys()
            .map_err(fail)?
            .iter()
            .any(|k| k.label == label)
        {
            return Err(fail(format!("no token object labelled {label}")));
        }
        let current = token.current_wrap_version().map_err(fail)? == v;
        // "no wallet uses it" and the mark that keeps any from starting to are one
        // transaction: a running service's wrap under this key either committed before
        // (counted here) or is refused after (see `wallets::retired_marker`)
        let store = Store::for_command(&config.store).map_err(fail)?;
        let label_owned = label.to_owned();
        store
            .write_blocking(move |ctx| {
                let counts = wallets::count_by_version(ctx.conn)?;
                if let Some((_, n)) = counts.iter().find(|(ver, _)| *ver == v) {
                    return Ok(Err(format!(
                        "{n} wallet(s) are still wrapped under {label_owned}; run `keyward wallets rewrap` first"
                    )));
                }
                if current {
                    return Ok(Err(format!("{label_owned} is the current wrapping key: new wallets are wrapped under it; rotate first (`keyward keys rotate-wrapping`), then `keyward wallets rewrap`")));
                }
                state::set(
                    ctx.conn,
                    &wallets::retired_marker(v),
                    Some(&now_rfc3339()),
                )?;
                Ok(Ok(()))
            })
            .map_err(fail)?
            .map_err(fail)?;
        marked = Some((store, v));
    }
    let n = match token.destroy(label) {
        Ok(n) => n,
        Err(e) => {
            // the key is still there: lift the mark, so nothing under it is refused
            if let Some((store, v)) = marked {
                store
                    .write_blocking(move |ctx| {
                        state::set(ctx.conn, &wallets::retired_marker(v), None)
                    })
                    .map_err(fail)?;
            }
            return Err(fail(e));
        }
    };
    if n == 0 {
        return Err(fail(format!("no token object labelled {label}")));
    }
    println!("destroyed {n} object(s) labelled {label}");
    Ok(())
}
