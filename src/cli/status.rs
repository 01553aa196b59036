//! `keyward status`: one screen an operator reads first in an incident: is the service
//! running, is it locked, does the token answer, what the store holds, which keys are in
//! use, when certificates and CRLs run out, when the last delivery came. Read-only; every
//! part is judged on its own, so a token that does not answer still shows the rest.

use keyward::appliance::{self, LOCK_KEY};
use keyward::config::Config;
use keyward::store::{service_lock, state, Store, StoreError};
use keyward::tls::TlsDates;

use super::{fail, CliError, ConfigArg};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `2027-01-05T00:00:00Z (in 31 d)` / `(EXPIRED 2 d ago)`.
fn when(t: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string());
    let left = t - now();
    let days = left.abs() / 86_400;
    let hours = (left.abs() % 86_400) / 3_600;
    if left >= 0 {
        format!("{at} (in {days} d {hours} h)")
    } else {
        format!("{at} (EXPIRED {days} d {hours} h ago)")
    }
}

fn tls_lines(face: &str, dates: Result<TlsDates, keyward::tls::TlsError>) -> Vec<String> {
    let dates = match dates {
        Ok(d) => d,
        Err(e) => return vec![format!("{face:<10} unreadable: {e}")],
    };
    let mut out = Vec::new();
    if let Some(t) = dates.server_not_after {
        out.push(format!("{face:<10} server certificate expires {}", when(t)));
    }
    if let Some(t) = dates.client_ca_not_after {
        out.push(format!("{face:<10} client CA expires {}", when(t)));
    }
    for crl in &dates.crls {
        let next = crl
            .next_update
            .map_or_else(|| "no nextUpdate".to_owned(), when);
        out.push(format!(
            "{face:<10} CRL {} issued {} s ago, next update {next}",
            crl.file,
            now() - crl.this_update
        ));
    }
    out
}

fn token_line(config: &Config) -> String {
    let token = match appliance::open_token(config) {
        Ok(t) => t,
        Err(e) => return format!("{:<10} UNREACHABLE: {e}", "token"),
    };
    if let Err(e) = token.ping() {
        return format!("{:<10} UNREACHABLE: {e}", "token");
    }
    let labels = |keys: Result<Vec<keyward::hsm::KeyObject>, _>| match keys {
        Ok(k) => k
            .iter()
            .map(|k| k.label.clone())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("unreadable: {e}"),
    };
    format!(
        "{:<10} ok ({}); RSA keys: {}; wrapping keys: {}",
        "token",
        config
            .pkcs11
            .token_label
            .as_deref()
            .map_or_else(|| "slot from config".to_owned(), |l| format!("label {l}")),
        labels(token.rsa_keys()),
        labels(token.wrap_keys())
    )
}

/// The store's part of the screen: lock, audit chain, wallets, key versions, deliveries.
fn store_lines(store: &Store) -> Result<Vec<String>, StoreError> {
    store.read(|c| {
        let mut out = Vec::new();
        out.push(match state::get(c, LOCK_KEY)? {
            Some(reason) => format!("{:<10} LOCKED: {reason}", "lock"),
            None => format!("{:<10} unlocked", "lock"),
        });
        let (records, last) = match c.row(
            "SELECT COUNT(*), (SELECT at FROM audit ORDER BY seq DESC LIMIT 1) FROM audit",
            &[],
        )? {
            Some(mut r) => (r.i64(0)?, r.opt_text(1)?),
            None => (0, None),
        };
        out.push(format!(
            "{:<10} {records} audit records, last at {}",
            "audit",
            last.as_deref().unwrap_or("-")
        ));
        let counts = c
            .rows(
                "SELECT chain, status, COUNT(*) FROM wallets GROUP BY chain, status ORDER BY chain, status",
                &[],
            )?
            .into_iter()
            .map(|mut r| {
                let (chain, status, n) = (r.text(0)?, r.text(1)?, r.i64(2)?);
                Ok(format!("{chain} {n} {status}"))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(format!(
            "{:<10} {}",
            "wallets",
            if counts.is_empty() {
                "none".to_owned()
            } else {
                counts.join(", ")
            }
        ));
        let versions: Vec<String> = keyward::store::wallets::count_by_version(c)?
            .into_iter()
            .map(|(v, n)| format!("wrap v{v}: {n} wallets"))
            .collect();
        out.push(format!(
            "{:<10} {}",
            "in use",
            if versions.is_empty() {
                "no active wallet".to_owned()
            } else {
                versions.join(", ")
            }
        ));
        let last = c
            .row(
                "SELECT received_at, event_name, outcome FROM processed_events ORDER BY received_at DESC LIMIT 1",
                &[],
            )?
            .map(|mut r| Ok::<_, StoreError>((r.text(0)?, r.text(1)?, r.text(2)?)))
            .transpose()?;
        out.push(match last {
            Some((at, name, outcome)) => format!("{:<10} {at} {name} ({outcome})", "delivery"),
            None => format!("{:<10} none yet", "delivery"),
        });
        Ok(out)
    })
}

pub fn run(c: ConfigArg) -> Result<(), CliError> {
    let config = c.load()?;
    println!(
        "keyward {} — {}",
        env!("CARGO_PKG_VERSION"),
        c.config.display()
    );
    println!(
        "{:<10} {}",
        "service",
        match (
            config.store.backend,
            service_lock::holder(&config.store.path)
        ) {
            (keyward::config::StoreBackend::Postgres, _) => {
                "several nodes may serve this database: ask each node's /readyz".to_owned()
            }
            (_, Some(pid)) => format!("serving (pid {pid})"),
            (_, None) => "not running".to_owned(),
        }
    );
    let store = Store::for_command(&config.store).map_err(fail)?;
    for line in store_lines(&store).map_err(fail)? {
        println!("{line}");
    }
    println!("{}", token_line(&config));
    let api = &config.api;
    for line in tls_lines(
        "api",
        keyward::tls::dates_of_files(api.cert.as_deref(), &api.client_ca, &api.crls),
    ) {
        println!("{line}");
    }
    for line in tls_lines(
        "webhook",
        keyward::tls::dates_of_files(config.webhook.cert.as_deref(), &[], &[]),
    ) {
        println!("{line}");
    }
    Ok(())
}
