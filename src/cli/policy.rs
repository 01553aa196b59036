//! `keyward policy check FILE`: validates a policy file the way `serve` and a SIGHUP
//! reload would, and prints what it contains.
//!
//! `keyward policy test POLICY CASES.jsonl`: decides golden cases offline, each request
//! parsed by the signing API's own parsers and judged by the policy engine (no token,
//! no database: rolling windows start empty and rate limits are not applied), and prints
//! a table; any case whose decision differs from the expected one fails the command.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use keyward::config::{Config, Operation};
use keyward::policy::{Policy, Request, Totals, WalletRef};
use serde::Deserialize;
use serde_json::Value;

use super::{fail, CliError};

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Validate a policy file (the file `policy.file` points to); errors name the file,
    /// the rule and the key.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Decide golden cases (JSON lines) offline against a policy file or a keyward.toml
    /// with a [policy] section; exits 1 when any decision differs from the expected one.
    Test {
        /// A policy file, or a keyward.toml whose [policy] is used.
        policy: PathBuf,
        /// One case per line: {"name", "operation", "client", "wallet": {"chain",
        /// "label", "id", "address"}, "body", "expect": "allow" | rule id | "error:<code>"}.
        cases: PathBuf,
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
        PolicyCmd::Test { policy, cases } => test(&policy, &cases),
    }
}

/// The policy in `path`: a keyward.toml's [policy] (inline, or the file it names) or a
/// policy file.
fn load(path: &Path) -> Result<Policy, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("{}: cannot read: {e}", path.display())))?;
    let is_config = toml::from_str::<toml::Table>(&text)
        .map(|t| t.contains_key("policy") || t.contains_key("clients"))
        .unwrap_or(false);
    if !is_config {
        return Ok(Config::load_policy(path)?);
    }
    let config = Config::parse(&text, path)?;
    if let Some(file) = &config.policy.file {
        let base = path.parent().unwrap_or(Path::new("."));
        return Ok(Config::load_policy(&base.join(file))?);
    }
    config.policy.compile().map_err(|e| {
        fail(format!(
            "{}: key `policy.{}`: {}",
            path.display(),
            e.key,
            e.message
        ))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    name: Option<String>,
    operation: Operation,
    client: String,
    wallet: CaseWallet,
    body: Value,
    expect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseWallet {
    chain: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    id: Option<String>,
    /// EVM: 0x address (checked against `from`); Solana: base58 key, which must sign.
    #[serde(default)]
    address: Option<String>,
}

/// What the engine decided: `allow`, the refusing rule id, or `error:<code>` when the
/// request does not parse.
fn decide(policy: &Policy, case: &Case) -> (String, String) {
    let w = &case.wallet;
    let subject = match w.chain.as_str() {
        "evm" => {
            let address = match w.address.as_deref() {
                Some(a) => match keyward::chains::evm::parse_address("wallet.address", a) {
                    Ok(a) => a,
                    Err(e) => return ("error:bad_case".into(), e.to_string()),
                },
                None => alloy_primitives::Address::ZERO,
            };
            keyward::api::evm::prepare(case.operation, case.body.clone(), address)
                .map(|p| p.subject)
        }
        "solana" => {
            let Some(Ok(key)) = w
                .address
                .as_deref()
                .map(keyward::chains::solana::parse_pubkey)
            else {
                return (
                    "error:bad_case".into(),
                    "a Solana case needs wallet.address (base58)".into(),
                );
            };
            keyward::api::solana::prepare(case.operation, case.body.clone(), &key)
                .map(|p| p.subject)
        }
        other => {
            return (
                "error:bad_case".into(),
                format!("wallet.chain {other:?} is not evm or solana"),
            )
        }
    };
    let subject = match subject {
        Ok(s) => s,
        Err(r) => return (format!("error:{}", r.code), r.message),
    };
    let wallet = WalletRef {
        id: w.id.as_deref().unwrap_or("case-wallet"),
        chain: &w.chain,
        label: w.label.as_deref(),
    };
    let d = policy.decide_with(
        &Request {
            client: &case.client,
            wallet,
            subject: &subject,
            pending_nonce: None,
        },
        &Totals::new(),
    );
    match d.denial {
        None => ("allow".into(), String::new()),
        Some(x) => (x.rule, x.reason),
    }
}

fn test(policy_path: &Path, cases_path: &Path) -> Result<(), CliError> {
    let policy = load(policy_path)?;
    let text = std::fs::read_to_string(cases_path)
        .map_err(|e| fail(format!("{}: cannot read: {e}", cases_path.display())))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| {
            fail(format!(
                "{}:{}: not a case: {e}",
                cases_path.display(),
                n + 1
            ))
        })?;
        let (actual, reason) = decide(&policy, &case);
        let name = case
            .name
            .clone()
            .unwrap_or_else(|| format!("line {}", n + 1));
        rows.push((actual == case.expect, name, case.expect, actual, reason));
    }
    if rows.is_empty() {
        return Err(fail(format!("{}: no cases", cases_path.display())));
    }
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(4).max(4);
    let ew = rows.iter().map(|r| r.2.len()).max().unwrap_or(6).max(8);
    println!("{:<4}  {:<width$}  {:<ew$}  actual", "", "case", "expected");
    for (ok, name, expected, actual, _) in &rows {
        let mark = if *ok { "ok" } else { "FAIL" };
        println!("{mark:<4}  {name:<width$}  {expected:<ew$}  {actual}");
    }
    let failed: Vec<_> = rows.iter().filter(|r| !r.0).collect();
    for (_, name, _, actual, reason) in &failed {
        eprintln!("{name}: decided {actual}: {reason}");
    }
    println!("{} cases, {} failed", rows.len(), failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(fail(format!(
            "{} of {} golden cases decided differently than expected",
            failed.len(),
            rows.len()
        )))
    }
}
