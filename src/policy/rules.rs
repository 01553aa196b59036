//! The policy as the operator writes it (TOML) and its compilation into checked values.
//!
//! Owns: the file shape (`default`, `[[rule]]`, `[[rate_limit]]`), duration syntax (amounts:
//! `amounts`), and every validation message (naming the rule id and the key). Must never:
//! read files or the clock; the caller hands in text and gets a [`Policy`] or an error.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use super::amounts::{amount, Units};
use super::rate::RateLimit;
use super::{Policy, Scope};
use crate::chains::solana::{self, Pubkey};

/// What happens to a request that no rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Allowed (what a config without `[policy]` does: grants alone decide).
    #[default]
    Allow,
    /// Refused with rule id `default`.
    Deny,
}

fn deny() -> DefaultAction {
    DefaultAction::Deny
}

fn star() -> Vec<String> {
    vec!["*".into()]
}

/// `[policy]` in keyward.toml, or the whole of a separate policy file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// A separate policy file (keyward.toml only); its rules replace inline ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
    /// Requests no rule covers: `deny` (the default once a policy is written) or `allow`.
    #[serde(default = "deny")]
    pub default: DefaultAction,
    /// Rules; every rule that covers a request must allow it.
    #[serde(default)]
    pub rule: Vec<RuleConfig>,
    /// Token-bucket rate limits.
    #[serde(default)]
    pub rate_limit: Vec<RateLimitConfig>,
}

/// One `[[rule]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Stable id, reported in refusals and the audit record.
    pub id: String,
    /// Client identities (`*` = any).
    #[serde(default = "star")]
    pub clients: Vec<String>,
    /// Wallet selectors: wallet id, `label:NAME`, `chain:evm|solana`, `*`.
    #[serde(default = "star")]
    pub wallets: Vec<String>,
    /// EVM transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evm: Option<EvmRuleConfig>,
    /// EIP-712 typed data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_data: Option<TypedDataRuleConfig>,
    /// EIP-191 and Solana off-chain messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MessageRuleConfig>,
    /// Raw 32-byte digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<HashRuleConfig>,
    /// Solana transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solana: Option<SolanaRuleConfig>,
}

/// `[rule.evm]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvmRuleConfig {
    /// Allowed chain ids (empty = any).
    #[serde(default)]
    pub chain_ids: Vec<u64>,
    /// Allowed recipients (empty = any).
    #[serde(default)]
    pub to_allow: Vec<String>,
    /// Refused recipients.
    #[serde(default)]
    pub to_deny: Vec<String>,
    /// Allowed 4-byte selectors per `to` (`"*"` = any contract); empty = no restriction.
    #[serde(default)]
    pub selectors: BTreeMap<String, Vec<String>>,
    /// Allow contract creation (`to` absent).
    #[serde(default)]
    pub contract_creation: bool,
    /// Per-transaction `value` cap per chain id (`"*"` = every chain).
    #[serde(default)]
    pub max_value: BTreeMap<String, String>,
    /// Largest `gas` accepted.
    #[serde(default)]
    pub max_gas_limit: Option<u64>,
    /// Largest `maxFeePerGas` / `gasPrice`.
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
    /// Rolling caps on the sum of `value`.
    #[serde(default)]
    pub spend: Vec<EvmSpendConfig>,
    /// ERC-20 caps per token contract.
    #[serde(default)]
    pub token: Vec<TokenConfig>,
    /// Largest distance of a transaction's nonce above the wallet's pending nonce (as the
    /// `[rpc] upstream` node reports it), 0..=1000.
    #[serde(default)]
    pub max_nonce_gap: Option<u64>,
    /// EIP-7702 delegate contracts per chain id (`policy::delegations`); absent: this
    /// rule allows no authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<super::delegations::DelegationsConfig>,
    /// Targets an ERC-4337 account may DELEGATECALL (Kernel's delegatecall mode), by
    /// address; any other delegatecall is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegatecall: Vec<String>,
}

/// `[[rule.evm.spend]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvmSpendConfig {
    /// Chain id the cap counts.
    pub chain_id: u64,
    /// Rolling window (`1h`, `24h`, `7days`).
    pub window: String,
    /// Largest sum of `value` in the window.
    pub max: String,
}

/// `[[rule.evm.token]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Token contract address.
    pub contract: String,
    /// Chain id (absent = any).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Largest `transfer`/`transferFrom`/`approve` amount, base units.
    #[serde(default)]
    pub max_per_tx: Option<String>,
    /// Rolling window for `max_per_window`.
    #[serde(default)]
    pub window: Option<String>,
    /// Largest sum transferred in `window`, base units.
    #[serde(default)]
    pub max_per_window: Option<String>,
    /// Allow `approve` of an unlimited amount (≥ 2^255).
    #[serde(default)]
    pub unlimited_approval: bool,
}

/// `[rule.typed_data]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TypedDataRuleConfig {
    /// Allowed domains (empty = any); each listed field must match.
    #[serde(default)]
    pub domains: Vec<DomainConfig>,
    /// Primary types signed on every listed domain (or any domain when `domains` is
    /// empty); `"*"` = any type that moves no assets. Asset-moving types must be named.
    #[serde(default)]
    pub allow_primary_types: Vec<String>,
    /// Primary types refused.
    #[serde(default)]
    pub deny_primary_types: Vec<String>,
    /// Under a rule whose `evm.chain_ids` scopes it, accept a domain without `chainId`
    /// (valid on every chain) for types that move no assets. Default false: refused.
    #[serde(default)]
    pub allow_domain_without_chain_id: bool,
}

/// One allowed EIP-712 domain.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `version`.
    #[serde(default)]
    pub version: Option<String>,
    /// `chainId`.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// `verifyingContract`.
    #[serde(default)]
    pub verifying_contract: Option<String>,
    /// Primary types signed on this domain (absent: the rule's `allow_primary_types`).
    #[serde(default)]
    pub primary_types: Option<Vec<String>>,
}

/// `[rule.message]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRuleConfig {
    /// Whether messages may be signed at all.
    #[serde(default = "yes")]
    pub allow: bool,
    /// Longest message, bytes.
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Sign EVM messages of exactly 32 bytes, which are indistinguishable from a digest
    /// (a Safe accepts an `eth_sign` signature over its `safeTxHash`). Default false:
    /// such a message needs what a raw digest needs (`hash.allow`).
    #[serde(default)]
    pub allow_digests: bool,
}

fn yes() -> bool {
    true
}

/// `[rule.hash]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HashRuleConfig {
    /// Raw digests are refused unless this is true.
    #[serde(default)]
    pub allow: bool,
}

/// `[rule.solana]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SolanaRuleConfig {
    /// Programs every top-level instruction must call (base58 or an alias:
    /// `system`, `token`, `token-2022`, `associated-token`, `compute-budget`, `memo`).
    pub programs: Vec<String>,
    /// Largest lamports moved by System transfers from the wallet in one transaction.
    #[serde(default)]
    pub max_lamports_per_tx: Option<String>,
    /// Rolling caps on lamports.
    #[serde(default)]
    pub spend: Vec<SolanaSpendConfig>,
    /// SPL token caps per mint.
    #[serde(default)]
    pub token: Vec<SplTokenConfig>,
    /// The wallet must be the fee payer.
    #[serde(default)]
    pub require_fee_payer: bool,
    /// Largest priority fee (`compute_unit_price` × `compute_unit_limit`), lamports.
    #[serde(default)]
    pub max_priority_fee: Option<String>,
    /// Durable-nonce transactions (first instruction System `AdvanceNonceAccount`), whose
    /// signature stays valid until the nonce is advanced. Default: false in a rule that
    /// caps lamports, tokens or fees, true in one that caps nothing.
    #[serde(default)]
    pub allow_durable_nonce: Option<bool>,
    /// Instructions accepted although unpriced, per program (base58 or alias): data
    /// prefixes in hex (`"e517cb977ae3ad2a"`) or, for `system` / `token` / `token-2022`,
    /// instruction names (`"SetAuthority"`).
    #[serde(default)]
    pub instructions: BTreeMap<String, Vec<String>>,
}

/// `[[rule.solana.spend]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SolanaSpendConfig {
    /// Rolling window.
    pub window: String,
    /// Largest lamports in the window (`"2 sol"` or a lamport count).
    pub max: String,
}

/// `[[rule.solana.token]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplTokenConfig {
    /// Mint address (base58).
    pub mint: String,
    /// Largest amount per transaction, base units.
    #[serde(default)]
    pub max_per_tx: Option<String>,
    /// Rolling window for `max_per_window`.
    #[serde(default)]
    pub window: Option<String>,
    /// Largest sum in `window`, base units.
    #[serde(default)]
    pub max_per_window: Option<String>,
    /// Allow `Approve` / `ApproveChecked` of an unlimited amount (≥ 2^63).
    #[serde(default)]
    pub unlimited_approval: bool,
}

/// `[[rate_limit]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Stable id.
    pub id: String,
    /// `client` (one bucket per client) or `wallet` (one bucket per wallet).
    pub scope: Scope,
    /// Clients it applies to.
    #[serde(default = "star")]
    pub clients: Vec<String>,
    /// Wallets it applies to.
    #[serde(default = "star")]
    pub wallets: Vec<String>,
    /// Sustained requests per `per`.
    pub requests: u32,
    /// The period of `requests` (`1s`, `1m`, `1h`).
    pub per: String,
    /// Bucket size (default: `requests`).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A policy that does not compile: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct PolicyError {
    /// Dotted key path, with the rule id (`rule[1](hot-evm).evm.max_value.1`).
    pub key: String,
    /// What was expected.
    pub message: String,
}

pub(crate) fn err(key: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        key: key.into(),
        message: message.into(),
    }
}

impl PolicySection {
    /// Parses a separate policy file's text.
    pub fn parse_file(text: &str) -> Result<PolicySection, PolicyError> {
        let de = toml::Deserializer::parse(text).map_err(|e| err("(syntax)", e.to_string()))?;
        let section: PolicySection = serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), e.into_inner().message().to_string()))?;
        if section.file.is_some() {
            return Err(err("file", "a policy file cannot point to another file"));
        }
        Ok(section)
    }

    /// Checks every value and builds the policy.
    pub fn compile(&self) -> Result<Policy, PolicyError> {
        let mut ids = BTreeSet::new();
        let mut rules = Vec::with_capacity(self.rule.len());
        for (i, r) in self.rule.iter().enumerate() {
            let at = format!("rule[{i}]({})", r.id);
            if r.id.is_empty()
                || !r
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(err(
                    format!("rule[{i}].id"),
                    "expected a non-empty id of letters, digits, - _ .",
                ));
            }
            if !ids.insert(r.id.clone()) {
                return Err(err(
                    format!("{at}.id"),
                    format!("rule id {:?} appears twice", r.id),
                ));
            }
            rules.push(compile_rule(r, &at)?);
        }
        let mut limits = Vec::new();
        for (i, l) in self.rate_limit.iter().enumerate() {
            let at = format!("rate_limit[{i}]({})", l.id);
            if l.id.is_empty() || !ids.insert(format!("rate:{}", l.id)) {
                return Err(err(format!("{at}.id"), "expected a unique non-empty id"));
            }
            check_selectors(&l.clients, &l.wallets, &at)?;
            let per = duration(&l.per, &format!("{at}.per"))?;
            if l.requests == 0 {
                return Err(err(format!("{at}.requests"), "expected at least 1"));
            }
            let burst = l.burst.unwrap_or(l.requests);
            if burst == 0 {
                return Err(err(format!("{at}.burst"), "expected at least 1"));
            }
            limits.push(RateLimit {
                id: l.id.clone(),
                scope: l.scope,
                clients: l.clients.clone(),
                wallets: l.wallets.clone(),
                per_ms: per,
                requests: l.requests,
                burst,
            });
        }
        Ok(Policy {
            default: self.default,
            rules,
            rate_limits: limits,
        })
    }
}

/// A compiled rule.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub(crate) id: String,
    pub(crate) clients: Vec<String>,
    pub(crate) wallets: Vec<String>,
    pub(crate) evm: Option<EvmRule>,
    pub(crate) typed_data: Option<TypedDataRule>,
    pub(crate) message: Option<MessageRule>,
    pub(crate) hash: Option<bool>,
    pub(crate) solana: Option<SolanaRule>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EvmRule {
    pub(crate) chain_ids: Vec<u64>,
    pub(crate) to_allow: Vec<Address>,
    pub(crate) to_deny: Vec<Address>,
    /// `None` key = `"*"`.
    pub(crate) selectors: Vec<(Option<Address>, Vec<[u8; 4]>)>,
    pub(crate) contract_creation: bool,
    /// `None` chain = `"*"`.
    pub(crate) max_value: Vec<(Option<u64>, U256)>,
    pub(crate) max_gas_limit: Option<u64>,
    pub(crate) max_fee_per_gas: Option<U256>,
    pub(crate) spend: Vec<(u64, u64, U256)>,
    pub(crate) tokens: Vec<Token>,
    /// `evm.max_nonce_gap`, or the default a capped rule gets once an upstream node is
    /// configured (`crate::policy::nonce_gap`).
    pub(crate) max_nonce_gap: Option<u64>,
    /// True when `max_nonce_gap` was written (not defaulted): it then needs an upstream.
    pub(crate) nonce_gap_written: bool,
    /// `evm.delegations`; `None`: not written (no delegate allowed).
    pub(crate) delegations: Option<super::delegations::Delegations>,
    /// `evm.delegatecall`: the only DELEGATECALL targets of a user operation.
    pub(crate) delegatecall: Vec<Address>,
}

impl EvmRule {
    /// True when the rule caps value or tokens (`max_value`, `spend`, `[[token]]`): then
    /// whatever the engine cannot price is refused rather than passed as free.
    pub(crate) fn caps_anything(&self) -> bool {
        !self.max_value.is_empty() || !self.spend.is_empty() || !self.tokens.is_empty()
    }

    /// The `[[evm.token]]` entry for `contract` on `chain`.
    pub(crate) fn token(&self, contract: Address, chain: u64) -> Option<&Token> {
        self.tokens
            .iter()
            .find(|t| t.contract == contract && t.chain_id.is_none_or(|c| c == chain))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) contract: Address,
    pub(crate) chain_id: Option<u64>,
    pub(crate) max_per_tx: Option<U256>,
    pub(crate) window: Option<(u64, U256)>,
    pub(crate) unlimited_approval: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TypedDataRule {
    pub(crate) domains: Vec<Domain>,
    pub(crate) allow_primary_types: Vec<String>,
    pub(crate) deny_primary_types: Vec<String>,
    pub(crate) allow_domain_without_chain_id: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Domain {
    pub(crate) name: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) verifying_contract: Option<Address>,
    pub(crate) primary_types: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub(crate) struct MessageRule {
    pub(crate) allow: bool,
    pub(crate) max_len: Option<usize>,
    pub(crate) allow_digests: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SolanaRule {
    pub(crate) programs: Vec<Pubkey>,
    pub(crate) max_lamports_per_tx: Option<U256>,
    pub(crate) spend: Vec<(u64, U256)>,
    pub(crate) tokens: Vec<SplToken>,
    pub(crate) require_fee_payer: bool,
    pub(crate) max_priority_fee: Option<U256>,
    /// Whether durable-nonce transactions are signed.
    pub(crate) allow_durable_nonce: bool,
    /// Data prefixes accepted unpriced, per program.
    pub(crate) instructions: Vec<(Pubkey, Vec<Vec<u8>>)>,
}

impl SolanaRule {
    /// True when the rule caps something, so an instruction that could move a capped
    /// asset through a program the engine does not price is refused.
    pub(crate) fn caps_anything(&self) -> bool {
        self.max_lamports_per_tx.is_some()
            || !self.spend.is_empty()
            || !self.tokens.is_empty()
            || self.max_priority_fee.is_some()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SplToken {
    pub(crate) mint: Pubkey,
    pub(crate) max_per_tx: Option<U256>,
    pub(crate) window: Option<(u64, U256)>,
    pub(crate) unlimited_approval: bool,
}

/// Longest rolling window: the spend table keeps rows this long.
pub const MAX_WINDOW_MS: u64 = 31 * 24 * 3600 * 1000;

fn check_selectors(clients: &[String], wallets: &[String], at: &str) -> Result<(), PolicyError> {
    if clients.is_empty() || clients.iter().any(|c| c.trim().is_empty()) {
        return Err(err(format!("{at}.clients"), "expected identities or \"*\""));
    }
    if wallets.is_empty() {
        return Err(err(
            format!("{at}.wallets"),
            "expected wallet selectors or \"*\"",
        ));
    }
    for w in wallets {
        let ok = match (w.strip_prefix("chain:"), w.strip_prefix("label:")) {
            (Some(c), _) => c == "evm" || c == "solana",
            (_, Some(l)) => !l.is_empty(),
            _ => !w.is_empty() && !w.contains(char::is_whitespace),
        };
        if !ok {
            return Err(err(
                format!("{at}.wallets"),
                format!("{w:?} is not a wallet id, label:NAME, chain:evm|solana or *"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn address(s: &str, key: &str) -> Result<Address, PolicyError> {
    s.parse::<Address>()
        .map_err(|_| err(key, format!("{s:?} is not a 0x-prefixed 20-byte address")))
}

fn pubkey(s: &str, key: &str) -> Result<Pubkey, PolicyError> {
    let alias = match s {
        "system" => Some(solana::SYSTEM_PROGRAM_ID),
        "token" => Some(solana::SPL_TOKEN_PROGRAM_ID),
        "token-2022" => Some(solana::SPL_TOKEN_2022_PROGRAM_ID),
        "associated-token" => Some(solana::ASSOCIATED_TOKEN_PROGRAM_ID),
        "compute-budget" => Some(solana::COMPUTE_BUDGET_PROGRAM_ID),
        "memo" => Some(solana::MEMO_PROGRAM_ID),
        "memo-v1" => Some(solana::MEMO_V1_PROGRAM_ID),
        _ => None,
    };
    if let Some(p) = alias {
        return Ok(p);
    }
    solana::parse_pubkey(s).map_err(|_| {
        err(
            key,
            format!("{s:?} is not a base58 address or a known program alias (system, token, token-2022, associated-token, compute-budget, memo, memo-v1)"),
        )
    })
}

/// A window or period in milliseconds (1 s to 31 days).
pub(crate) fn duration(s: &str, key: &str) -> Result<u64, PolicyError> {
    let d = humantime::parse_duration(s).map_err(|e| {
        err(
            key,
            format!("{s:?} is not a duration like \"1h\" or \"24h\": {e}"),
        )
    })?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if !(1000..=MAX_WINDOW_MS).contains(&ms) {
        return Err(err(key, "expected a duration from 1s to 31days"));
    }
    Ok(ms)
}

fn selector(s: &str, key: &str) -> Result<[u8; 4], PolicyError> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(h).map_err(|_| err(key, format!("{s:?} is not 4 bytes of hex")))?;
    bytes.try_into().map_err(|_| {
        err(
            key,
            format!("{s:?} is not 4 bytes of hex (like 0xa9059cbb)"),
        )
    })
}

fn window_cap(
    window: &Option<String>,
    max: &Option<String>,
    units: Units,
    at: &str,
) -> Result<Option<(u64, U256)>, PolicyError> {
    match (window, max) {
        (None, None) => Ok(None),
        (Some(w), Some(m)) => Ok(Some((
            duration(w, &format!("{at}.window"))?,
            amount(m, units, &format!("{at}.max_per_window"))?,
        ))),
        _ => Err(err(at, "`window` and `max_per_window` go together")),
    }
}

fn compile_rule(r: &RuleConfig, at: &str) -> Result<Rule, PolicyError> {
    check_selectors(&r.clients, &r.wallets, at)?;
    if r.evm.is_none()
        && r.typed_data.is_none()
        && r.message.is_none()
        && r.hash.is_none()
        && r.solana.is_none()
    {
        return Err(err(
            at,
            "a rule needs at least one of evm, typed_data, message, hash, solana (it covers only those)",
        ));
    }
    let evm = r
        .evm
        .as_ref()
        .map(|e| compile_evm(e, &format!("{at}.evm")))
        .transpose()?;
    let typed_data = r
        .typed_data
        .as_ref()
        .map(|t| -> Result<TypedDataRule, PolicyError> {
            let k = format!("{at}.typed_data");
            let domains = t
                .domains
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    Ok(Domain {
                        name: d.name.clone(),
                        version: d.version.clone(),
                        chain_id: d.chain_id,
                        verifying_contract: d
                            .verifying_contract
                            .as_deref()
                            .map(|a| address(a, &format!("{k}.domains[{i}].verifying_contract")))
                            .transpose()?,
                        primary_types: d.primary_types.clone(),
                    })
                })
                .collect::<Result<_, PolicyError>>()?;
            let scoped = r.evm.as_ref().is_some_and(|e| !e.chain_ids.is_empty());
            if t.allow_domain_without_chain_id && !scoped {
                return Err(err(
                    format!("{k}.allow_domain_without_chain_id"),
                    "applies only to a rule whose evm.chain_ids scopes it (without a scope every domain is accepted)",
                ));
            }
            if let Some(both) = t
                .allow_primary_types
                .iter()
                .find(|p| t.deny_primary_types.contains(p))
            {
                return Err(err(k, format!("{both:?} is both allowed and denied")));
            }
            Ok(TypedDataRule {
                domains,
                allow_primary_types: t.allow_primary_types.clone(),
                deny_primary_types: t.deny_primary_types.clone(),
                allow_domain_without_chain_id: t.allow_domain_without_chain_id,
            })
        })
        .transpose()?;
    let message = r.message.as_ref().map(|m| MessageRule {
        allow: m.allow,
        max_len: m.max_len,
        allow_digests: m.allow_digests,
    });
    let solana = r
        .solana
        .as_ref()
        .map(|s| compile_solana(s, &format!("{at}.solana")))
        .transpose()?;
    Ok(Rule {
        id: r.id.clone(),
        clients: r.clients.clone(),
        wallets: r.wallets.clone(),
        evm,
        typed_data,
        message,
        hash: r.hash.as_ref().map(|h| h.allow),
        solana,
    })
}

fn compile_evm(e: &EvmRuleConfig, at: &str) -> Result<EvmRule, PolicyError> {
    let addrs = |list: &[String], k: &str| -> Result<Vec<Address>, PolicyError> {
        list.iter()
            .map(|a| address(a, &format!("{at}.{k}")))
            .collect()
    };
    let mut selectors = Vec::new();
    for (to, sels) in &e.selectors {
        let k = format!("{at}.selectors.{to}");
        let to = if to == "*" {
            None
        } else {
            Some(address(to, &k)?)
        };
        let sels = sels
            .iter()
            .map(|s| selector(s, &k))
            .collect::<Result<_, _>>()?;
        selectors.push((to, sels));
    }
    let mut max_value = Vec::new();
    for (chain, v) in &e.max_value {
        let k = format!("{at}.max_value.{chain}");
        let chain = if chain == "*" {
            None
        } else {
            Some(
                chain
                    .parse::<u64>()
                    .map_err(|_| err(&k, "expected a chain id or \"*\" as the key"))?,
            )
        };
        max_value.push((chain, amount(v, Units::Evm, &k)?));
    }
    let spend = e
        .spend
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let k = format!("{at}.spend[{i}]");
            Ok((
                s.chain_id,
                duration(&s.window, &format!("{k}.window"))?,
                amount(&s.max, Units::Evm, &format!("{k}.max"))?,
            ))
        })
        .collect::<Result<_, PolicyError>>()?;
    let tokens = e
        .token
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let k = format!("{at}.token[{i}]");
            Ok(Token {
                contract: address(&t.contract, &format!("{k}.contract"))?,
                chain_id: t.chain_id,
                max_per_tx: t
                    .max_per_tx
                    .as_deref()
                    .map(|m| amount(m, Units::Evm, &format!("{k}.max_per_tx")))
                    .transpose()?,
                window: window_cap(&t.window, &t.max_per_window, Units::Evm, &k)?,
                unlimited_approval: t.unlimited_approval,
            })
        })
        .collect::<Result<_, PolicyError>>()?;
    Ok(EvmRule {
        chain_ids: e.chain_ids.clone(),
        to_allow: addrs(&e.to_allow, "to_allow")?,
        to_deny: addrs(&e.to_deny, "to_deny")?,
        selectors,
        contract_creation: e.contract_creation,
        max_value,
        max_gas_limit: e.max_gas_limit,
        max_fee_per_gas: e
            .max_fee_per_gas
            .as_deref()
            .map(|m| amount(m, Units::Evm, &format!("{at}.max_fee_per_gas")))
            .transpose()?,
        spend,
        tokens,
        max_nonce_gap: match e.max_nonce_gap {
            Some(g) if g > crate::policy::nonce_gap::MAX_NONCE_GAP => {
                return Err(err(
                    format!("{at}.max_nonce_gap"),
                    format!(
                        "{g} is above {}; expected 0..={}",
                        crate::policy::nonce_gap::MAX_NONCE_GAP,
                        crate::policy::nonce_gap::MAX_NONCE_GAP
                    ),
                ))
            }
            g => g,
        },
        nonce_gap_written: e.max_nonce_gap.is_some(),
        delegations: e
            .delegations
            .as_ref()
            .map(|d| super::delegations::compile(d, &format!("{at}.delegations")))
            .transpose()?,
        delegatecall: addrs(&e.delegatecall, "delegatecall")?,
    })
}

fn compile_solana(s: &SolanaRuleConfig, at: &str) -> Result<SolanaRule, PolicyError> {
    if s.programs.is_empty() {
        return Err(err(
            format!("{at}.programs"),
            "expected the programs transactions may call (e.g. [\"system\", \"compute-budget\"])",
        ));
    }
    let mut rule = SolanaRule {
        programs: s
            .programs
            .iter()
            .map(|p| pubkey(p, &format!("{at}.programs")))
            .collect::<Result<_, _>>()?,
        max_lamports_per_tx: s
            .max_lamports_per_tx
            .as_deref()
            .map(|m| amount(m, Units::Solana, &format!("{at}.max_lamports_per_tx")))
            .transpose()?,
        spend: s
            .spend
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let k = format!("{at}.spend[{i}]");
                Ok((
                    duration(&c.window, &format!("{k}.window"))?,
                    amount(&c.max, Units::Solana, &format!("{k}.max"))?,
                ))
            })
            .collect::<Result<_, PolicyError>>()?,
        tokens: s
            .token
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let k = format!("{at}.token[{i}]");
                Ok(SplToken {
                    mint: pubkey(&t.mint, &format!("{k}.mint"))?,
                    max_per_tx: t
                        .max_per_tx
                        .as_deref()
                        .map(|m| amount(m, Units::Solana, &format!("{k}.max_per_tx")))
                        .transpose()?,
                    window: window_cap(&t.window, &t.max_per_window, Units::Solana, &k)?,
                    unlimited_approval: t.unlimited_approval,
                })
            })
            .collect::<Result<_, PolicyError>>()?,
        require_fee_payer: s.require_fee_payer,
        max_priority_fee: s
            .max_priority_fee
            .as_deref()
            .map(|m| amount(m, Units::Solana, &format!("{at}.max_priority_fee")))
            .transpose()?,
        instructions: s
            .instructions
            .iter()
            .map(|(program, list)| {
                let k = format!("{at}.instructions.{program}");
                let p = pubkey(program, &k)?;
                let prefixes = list
                    .iter()
                    .map(|d| instruction_prefix(&p, d, &k))
                    .collect::<Result<_, _>>()?;
                Ok((p, prefixes))
            })
            .collect::<Result<_, PolicyError>>()?,
        allow_durable_nonce: false,
    };
    // a durable-nonce signature outlives rolling windows, policy changes and locks: a
    // rule that caps something refuses it unless it says otherwise
    rule.allow_durable_nonce = s.allow_durable_nonce.unwrap_or(!rule.caps_anything());
    Ok(rule)
}

/// An entry of `solana.instructions`: an instruction name of the System Program or a
/// token program, or 1 to 32 bytes of hex that the instruction data must start with.
fn instruction_prefix(program: &Pubkey, s: &str, key: &str) -> Result<Vec<u8>, PolicyError> {
    if let Some(d) = solana::instructions::named_discriminator(program, s) {
        return Ok(d);
    }
    let h = s.strip_prefix("0x").unwrap_or(s);
    match hex::decode(h) {
        Ok(b) if (1..=32).contains(&b.len()) => Ok(b),
        _ => Err(err(
            key,
            format!(
                "{s:?} is neither 1 to 32 bytes of hex (the instruction data prefix) nor an instruction name this program's refusals can be lifted for (System: Assign, AssignWithSeed, Allocate, AllocateWithSeed, CreateAccount, CreateAccountWithSeed, CreateAccountAllowPrefund, AuthorizeNonceAccount; token: SetAuthority, CloseAccount, FreezeAccount, ThawAccount, MintTo, MintToChecked)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_rule_and_key() {
        let text = r#"
[[rule]]
id = "hot"
[rule.evm]
max_value = { "1" = "lots" }
"#;
        let e = PolicySection::parse_file(text)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.key, "rule[0](hot).evm.max_value.1");
        let e = PolicySection::parse_file("[[rule]]\nid = \"a\"\n[rule.evm]\nmax_valu = 1\n")
            .unwrap_err();
        assert!(e.key.contains("rule[0]"), "{e}");
        assert!(e.message.contains("max_valu"), "{e}");
        let e = PolicySection::parse_file("[[rule]]\nid = \"a\"\n")
            .unwrap()
            .compile()
            .unwrap_err();
        assert!(e.message.contains("at least one"), "{e}");
        let e = PolicySection::parse_file(
            "[[rule]]\nid = \"a\"\nhash = {allow = true}\n[[rule]]\nid = \"a\"\nhash = {}\n",
        )
        .unwrap()
        .compile()
        .unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        let e = PolicySection::parse_file("[[rule]]\nid = \"a\"\n[rule.evm]\n[[rule.evm.spend]]\nchain_id = 1\nwindow = \"forever\"\nmax = \"1\"\n")
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.key, "rule[0](a).evm.spend[0].window");
    }

    #[test]
    fn program_aliases() {
        assert_eq!(pubkey("system", "k").unwrap(), [0; 32]);
        assert!(pubkey("compute-budget", "k").is_ok());
        assert!(pubkey("nope!", "k").is_err());
    }
}
