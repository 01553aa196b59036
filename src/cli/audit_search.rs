//! `keyward audit search`: incident queries over the audit chain. Streams: one record is
//! read, written and dropped at a time, so memory stays bounded on any chain length.
//! A table on a terminal, JSON lines (the `audit export` shape) otherwise.

use std::io::{IsTerminal, Write};

use keyward::store::audit_search::{self, AuditFilter};
use keyward::store::{AuditRecord, Store};

use super::{fail, CliError, ConfigArg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Decision {
    Allowed,
    Denied,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table on a terminal, JSON lines otherwise.
    Auto,
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only this wallet id.
    #[arg(long)]
    wallet: Option<String>,
    /// Only this actor: a client identity as audited (`cn:NAME`, `uri:URI`), `webhook` or
    /// `operator`.
    #[arg(long)]
    client: Option<String>,
    /// Only this decision.
    #[arg(long, value_enum)]
    decision: Option<Decision>,
    /// Only records at or after this RFC 3339 time (compared to the second, in UTC).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this RFC 3339 time (compared to the second, in UTC).
    #[arg(long)]
    until: Option<String>,
    /// Only this operation (`evm.message`, …) or action (`sign`, `appliance.lock`,
    /// `delegation.created`, …).
    #[arg(long)]
    operation: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
}

/// `T` as the UTC second the store compares on (`YYYY-MM-DDTHH:MM:SS`).
fn utc_second(flag: &str, t: &str) -> Result<(String, i64), CliError> {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
        fail(format!(
            "{flag} {t:?} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)"
        ))
    })?;
    let utc = parsed.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let s = utc
        .format(&fmt)
        .map_err(|e| fail(format!("{flag} {t:?}: {e}")))?;
    Ok((s, utc.unix_timestamp()))
}

fn filter(a: &SearchArgs) -> Result<AuditFilter, CliError> {
    let since = a
        .since
        .as_deref()
        .map(|t| utc_second("--since", t))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|t| utc_second("--until", t))
        .transpose()?;
    if let (Some((_, s)), Some((_, u))) = (&since, &until) {
        if s >= u {
            return Err(fail(format!(
                "--since {:?} is not before --until {:?}: no record can match",
                a.since.as_deref().unwrap_or(""),
                a.until.as_deref().unwrap_or("")
            )));
        }
    }
    for (flag, v) in [
        ("--wallet", &a.wallet),
        ("--client", &a.client),
        ("--operation", &a.operation),
    ] {
        if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(fail(format!(
                "{flag} is empty: name what to look for, or leave the flag out"
            )));
        }
    }
    Ok(AuditFilter {
        wallet: a.wallet.clone(),
        client: a.client.clone(),
        decision: a.decision.map(|d| {
            match d {
                Decision::Allowed => "allowed",
                Decision::Denied => "denied",
                Decision::Error => "error",
            }
            .to_owned()
        }),
        since: since.map(|(s, _)| s),
        until: until.map(|(s, _)| s),
        operation: a.operation.clone(),
    })
}

/// `s` cut to `width` characters (the table stays one line per record).
fn cell(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let cut: String = s.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

const HEADER: [(&str, usize); 8] = [
    ("SEQ", 7),
    ("AT (UTC)", 24),
    ("ACTOR", 22),
    ("ACTION", 18),
    ("OPERATION", 16),
    ("WALLET", 38),
    ("DECISION", 8),
    ("RESULT", 24),
];

fn table_row(out: &mut impl Write, r: &AuditRecord) -> std::io::Result<()> {
    let values = [
        r.seq.to_string(),
        r.at.clone(),
        r.actor.clone(),
        r.action.clone(),
        r.operation.clone().unwrap_or_default(),
        r.wallet_id.clone().unwrap_or_default(),
        r.decision.clone(),
        r.result.clone(),
    ];
    let line: Vec<String> = values
        .iter()
        .zip(HEADER)
        .map(|(v, (_, w))| cell(v, w))
        .collect();
    writeln!(out, "{}", line.join(" ").trim_end())
}

pub fn run(a: SearchArgs) -> Result<(), CliError> {
    let f = filter(&a)?;
    let config = a.config.load()?;
    let store = Store::for_command(&config.store).map_err(fail)?;
    let stdout = std::io::stdout();
    let table = match a.format {
        Format::Auto => stdout.is_terminal(),
        Format::Table => true,
        Format::Json => false,
    };
    let mut out = std::io::BufWriter::new(stdout.lock());
    let header = || {
        HEADER
            .iter()
            .map(|(h, w)| cell(h, *w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // a reader that stopped early (`| head`) ends the walk; it is not a failure
    let mut closed = false;
    let mut write = |r: &AuditRecord, out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>| {
        let written = if table {
            table_row(out, r)
        } else {
            serde_json::to_writer(&mut *out, r)
                .map_err(std::io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        };
        if let Err(e) = &written {
            closed = e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        written
    };
    let result = store.read(|c| {
        if table {
            writeln!(out, "{}", header().trim_end())
                .map_err(|e| keyward::store::StoreError::Io(e.to_string()))?;
        }
        audit_search::search(c, &f, |r| write(r, &mut out))
    });
    let flushed = out.flush();
    match result {
        Ok(n) => {
            eprintln!("{n} records");
            flushed.map_err(fail)
        }
        Err(_) if closed => Ok(()),
        Err(e) => Err(fail(e)),
    }
}
