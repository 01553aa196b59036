//! The policy engine: what each client may sign for each wallet.
//!
//! Owns: the rules (`rules`), their evaluation against one parsed request (`evm`,
//! `typed_data`, `solana`), rolling spend caps as pure arithmetic over totals the caller
//! supplies (`windows`) and token-bucket arithmetic (`rate`). Input: client identity,
//! wallet, parsed payload, window totals, and a clock value (milliseconds) where time
//! matters. Output: a [`Decision`] — allowed or the refusing rule with a human reason, the
//! rules that matched, and the spend to record.
//!
//! Must never: do I/O, read the clock, keep state between calls, or put a secret in a
//! reason. Evaluation is decode-or-refuse: what a capped or allowlisting rule cannot price
//! (an instruction, a call, a typed-data family) is refused by a named built-in rule
//! ([`UNPRICED_INSTRUCTION`], [`UNPRICED_CALL`], [`UNPRICED_TYPED_DATA`]), never priced as
//! zero; and approvals are spend: an allowance counts against the caps like a transfer.
//!
//! Semantics: a rule *covers* a request when its clients and wallets match and it has a
//! section for the request's kind (`evm`, `typed_data`, `message`, `hash`, `solana`).
//! Every covering rule must allow the request. When none covers it, `default` decides
//! (`deny` once a `[policy]` is written; `allow` without one, so grants alone decide).
//! EIP-7702 authorizations (standalone or in a type-4 transaction) are refused
//! ([`DELEGATION`]) unless a covering rule writes `evm.delegations`, which then judges
//! each delegate (`delegations`).
//! EIP-712 messages of a known asset-moving family are refused ([`SPENDING_TYPED_DATA`])
//! unless a covering rule names their primary type — also when no rule covers the request.
//! Likewise an EVM message of 32 bytes is a digest in disguise ([`DIGEST_MESSAGE`]): it is
//! refused unless the policy allows this client raw digests on this wallet, or every
//! covering message rule sets `allow_digests`.

mod amounts;
pub mod delegations;
mod evm;
pub mod nonce_gap;
pub mod rate;
pub mod rules;
mod solana;
mod typed_data;
mod user_op;
pub mod windows;

use std::collections::BTreeMap;

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::chains::evm::{TypedDataInfo, UnsignedTx};
use crate::chains::solana::{ParsedTransaction, Pubkey};
pub use delegations::DELEGATION;
pub use rate::{Bucket, RateLimit};
pub use rules::{DefaultAction, PolicyError, PolicySection, Rule};

/// What is asked to be signed, parsed.
#[derive(Debug, Clone)]
pub enum Subject {
    /// EIP-191 message of `len` bytes.
    EvmMessage {
        /// Bytes.
        len: usize,
    },
    /// EIP-712 typed data.
    EvmTypedData(Box<TypedDataInfo>),
    /// An EVM transaction.
    EvmTransaction(Box<UnsignedTx>),
    /// A raw digest.
    EvmHash,
    /// An EIP-7702 authorization (`evm.authorization`).
    EvmAuthorization(alloy_eips::eip7702::Authorization),
    /// An ERC-4337 user operation (`evm.user_operation`).
    EvmUserOperation(Box<UserOpSubject>),
    /// A Solana off-chain message of `len` bytes.
    SolanaMessage {
        /// Bytes.
        len: usize,
    },
    /// A Solana transaction the wallet signs.
    SolanaTransaction {
        /// The transaction.
        tx: Box<ParsedTransaction>,
        /// The wallet's public key.
        wallet: Pubkey,
    },
}

impl Subject {
    /// The operation name (as in grants).
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::EvmMessage { .. } => "evm.message",
            Subject::EvmTypedData(_) => "evm.typed_data",
            Subject::EvmTransaction(_) => "evm.transaction",
            Subject::EvmHash => "evm.hash",
            Subject::EvmAuthorization(_) => "evm.authorization",
            Subject::EvmUserOperation(_) => "evm.user_operation",
            Subject::SolanaMessage { .. } => "solana.message",
            Subject::SolanaTransaction { .. } => "solana.transaction",
        }
    }
}

/// What the policy prices of a user operation: the account's decoded calls as one
/// batch from the account (gas: every gas field summed; fee: `maxFeePerGas`).
#[derive(Debug, Clone)]
pub struct UserOpSubject {
    /// The calls, as a transaction from the account to itself.
    pub priced: UnsignedTx,
    /// DELEGATECALL targets among the calls.
    pub delegatecalls: Vec<alloy_primitives::Address>,
    /// Why the call data did not decode for the account kind, if it did not.
    pub undecoded: Option<String>,
}

/// The wallet as selectors see it.
#[derive(Debug, Clone, Copy)]
pub struct WalletRef<'a> {
    /// Wallet id.
    pub id: &'a str,
    /// `evm` or `solana`.
    pub chain: &'a str,
    /// Operator label.
    pub label: Option<&'a str>,
}

/// One request to decide.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Client identity.
    pub client: &'a str,
    /// Wallet.
    pub wallet: WalletRef<'a>,
    /// Payload.
    pub subject: &'a Subject,
    /// The wallet's pending nonce as the upstream node reports it, asked before deciding
    /// when [`Policy::needs_pending_nonce`] (`None`: not asked).
    pub pending_nonce: Option<u64>,
}

/// What a spend counter counts: one asset of one wallet on one chain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SpendKey {
    /// Wallet id.
    pub wallet: String,
    /// `eip155:<chainId>` or `solana`.
    pub chain: String,
    /// `native`, `erc20:<contract>`, `lamports`, `spl:<mint>`.
    pub asset: String,
}

/// A rolling cap a request must fit under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// The rule that set it.
    pub rule: String,
    /// Counter.
    pub key: SpendKey,
    /// Window length, ms.
    pub window_ms: u64,
    /// Largest sum in the window.
    pub limit: U256,
    /// What this request adds.
    pub amount: U256,
}

/// Sums per (counter, window length), over the window ending now.
pub type Totals = BTreeMap<(SpendKey, u64), U256>;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// Rule id (`default` and `builtin.*` for the implicit ones).
    pub rule: String,
    /// Human explanation.
    pub reason: String,
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Set when refused.
    pub denial: Option<Denial>,
    /// Ids of the rules that covered the request.
    pub matched: Vec<String>,
    /// Amounts to add to spend counters if the request is signed.
    pub spend: Vec<(SpendKey, U256)>,
    /// Rolling caps still to check against totals.
    pub caps: Vec<Cap>,
}

impl Decision {
    /// True when not refused.
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    /// The (counter, window) totals [`Decision::check_caps`] needs.
    pub fn queries(&self) -> Vec<(SpendKey, u64)> {
        windows::queries(&self.caps)
    }

    /// Refuses the request if a cap would be exceeded given `totals`.
    pub fn check_caps(&mut self, totals: &Totals) {
        if self.denial.is_none() {
            if let Err(d) = windows::check(&self.caps, totals) {
                self.denial = Some(d);
            }
        }
    }

    fn deny(&mut self, rule: &str, reason: impl Into<String>) {
        if self.denial.is_none() {
            self.denial = Some(Denial {
                rule: rule.into(),
                reason: reason.into(),
            });
        }
    }
}

/// Why a covering rule refuses: in its own name, or (for what no rule can price) in the
/// name of a built-in rule, so the refusal says the engine could not price it rather
/// than that the operator's rule forbade it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refuse {
    pub(crate) builtin: Option<&'static str>,
    pub(crate) reason: String,
}

impl Refuse {
    /// A refusal by built-in rule `id`.
    pub(crate) fn builtin(id: &'static str, reason: impl Into<String>) -> Refuse {
        Refuse {
            builtin: Some(id),
            reason: reason.into(),
        }
    }
}

impl From<String> for Refuse {
    fn from(reason: String) -> Refuse {
        Refuse {
            builtin: None,
            reason,
        }
    }
}

impl From<&str> for Refuse {
    fn from(reason: &str) -> Refuse {
        reason.to_owned().into()
    }
}

/// Built-in rule refusing a Solana instruction the engine cannot price.
pub const UNPRICED_INSTRUCTION: &str = "builtin.unpriced_instruction";
/// Built-in rule refusing an EVM call the engine cannot price.
pub const UNPRICED_CALL: &str = "builtin.unpriced_call";
/// Built-in rule refusing EIP-712 typed data the engine cannot price.
pub const UNPRICED_TYPED_DATA: &str = "builtin.unpriced_typed_data";
/// Built-in rule refusing asset-moving EIP-712 typed data no covering rule lists.
pub const SPENDING_TYPED_DATA: &str = "builtin.spending_typed_data";
/// Built-in rule refusing an EVM message of 32 bytes (a digest in disguise) that neither
/// `hash.allow` nor `message.allow_digests` accepts.
pub const DIGEST_MESSAGE: &str = "builtin.digest_message";

/// Length of an EVM message that is judged as a raw digest: `personal_sign` /
/// `eth_sign` over 32 bytes is what Safe (and other EIP-1271 verifiers accepting
/// `eth_sign` signatures) checks against a transaction or message hash.
pub const DIGEST_LEN: usize = 32;

/// Whose bucket a rate limit fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One bucket per client identity.
    Client,
    /// One bucket per wallet.
    Wallet,
}

/// A compiled policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub(crate) default: DefaultAction,
    pub(crate) rules: Vec<Rule>,
    pub(crate) rate_limits: Vec<RateLimit>,
}

fn client_matches(list: &[String], client: &str) -> bool {
    list.iter().any(|c| crate::identity::matches(c, client))
}

/// Whether a wallet selector (`*`, `label:NAME`, `chain:…`, id) matches; whole strings only.
pub fn wallet_matches(list: &[String], w: &WalletRef<'_>) -> bool {
    list.iter().any(|s| {
        if s == "*" {
            true
        } else if let Some(l) = s.strip_prefix("label:") {
            w.label == Some(l)
        } else if let Some(c) = s.strip_prefix("chain:") {
            w.chain == c
        } else {
            s == w.id
        }
    })
}

impl Rule {
    fn covers(&self, req: &Request<'_>) -> bool {
        let section = match req.subject {
            Subject::EvmMessage { .. } | Subject::SolanaMessage { .. } => self.message.is_some(),
            Subject::EvmTypedData(_) => self.typed_data.is_some(),
            Subject::EvmTransaction(_)
            | Subject::EvmAuthorization(_)
            | Subject::EvmUserOperation(_) => self.evm.is_some(),
            Subject::EvmHash => self.hash.is_some(),
            Subject::SolanaTransaction { .. } => self.solana.is_some(),
        };
        section
            && client_matches(&self.clients, req.client)
            && wallet_matches(&self.wallets, &req.wallet)
    }

    fn check(
        &self,
        req: &Request<'_>,
        spend: &[(SpendKey, U256)],
        caps: &mut Vec<Cap>,
    ) -> Result<(), Refuse> {
        match req.subject {
            Subject::EvmMessage { len } | Subject::SolanaMessage { len } => {
                let m = self.message.as_ref().ok_or("no message section")?;
                if !m.allow {
                    return Err("messages may not be signed".into());
                }
                match m.max_len {
                    Some(max) if *len > max => {
                        Err(format!("message is {len} bytes; message.max_len is {max}").into())
                    }
                    _ => Ok(()),
                }
            }
            Subject::EvmHash => match self.hash {
                Some(true) => Ok(()),
                _ => Err("raw digests are refused (hash.allow is false)".into()),
            },
            Subject::EvmTypedData(info) => typed_data::check(
                self.typed_data.as_ref().ok_or("no typed_data section")?,
                self.evm.as_ref(),
                &self.id,
                req.wallet.id,
                info,
                spend,
                caps,
            ),
            Subject::EvmTransaction(tx) => {
                nonce_gap::check(self, tx.nonce(), req.pending_nonce)?;
                let rule = self.evm.as_ref().ok_or("no evm section")?;
                // each tuple hands an account to its delegate: judged as a standalone
                // authorization would be, before the call itself
                for (i, a) in tx.authorizations().iter().enumerate() {
                    delegations::check(rule, a, &format!("authorizationList[{i}]"))?;
                }
                evm::check(rule, &self.id, req.wallet.id, tx, spend, caps)
            }
            Subject::EvmUserOperation(op) => {
                user_op::check(self.evm.as_ref().ok_or("no evm section")?, op)?;
                evm::check(
                    self.evm.as_ref().ok_or("no evm section")?,
                    &self.id,
                    req.wallet.id,
                    &op.priced,
                    spend,
                    caps,
                )
            }
            Subject::EvmAuthorization(auth) => delegations::check(
                self.evm.as_ref().ok_or("no evm section")?,
                auth,
                "the authorization",
            ),
            Subject::SolanaTransaction { tx, wallet } => solana::check(
                self.solana.as_ref().ok_or("no solana section")?,
                &self.id,
                req.wallet.id,
                tx,
                wallet,
                spend,
                caps,
            ),
        }
    }

    fn has_windows(&self) -> bool {
        self.evm
            .as_ref()
            .is_some_and(|e| !e.spend.is_empty() || e.tokens.iter().any(|t| t.window.is_some()))
            || self
                .solana
                .as_ref()
                .is_some_and(|s| !s.spend.is_empty() || s.tokens.iter().any(|t| t.window.is_some()))
    }
}

impl Policy {
    /// A policy with no rules and `default = allow` (what a config without `[policy]` has).
    pub fn permissive() -> Policy {
        Policy::default()
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Rule ids, in file order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// The rate limits.
    pub fn rate_limits(&self) -> &[RateLimit] {
        &self.rate_limits
    }

    /// What happens to uncovered requests.
    pub fn default_action(&self) -> DefaultAction {
        self.default
    }

    /// True when some rule has a rolling window, so signed spends must be recorded.
    pub fn records_spend(&self) -> bool {
        self.rules.iter().any(Rule::has_windows)
    }

    /// Evaluates everything except rolling caps, which are left in [`Decision::caps`] for
    /// [`Decision::check_caps`] with totals the caller reads.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        let mut d = Decision {
            spend: spend_of(req),
            ..Decision::default()
        };
        let covering: Vec<&Rule> = self.rules.iter().filter(|r| r.covers(req)).collect();
        if let Subject::EvmMessage { len: DIGEST_LEN } = req.subject {
            // its signature is a signature over a digest: it needs what a digest needs,
            // or every covering message rule's explicit allow_digests
            let as_message = !covering.is_empty()
                && covering
                    .iter()
                    .all(|r| r.message.as_ref().is_some_and(|m| m.allow_digests));
            if !as_message && !self.allows_digests(req) {
                d.deny(
                    DIGEST_MESSAGE,
                    format!(
                        "an EVM message of {DIGEST_LEN} bytes is indistinguishable from a digest (e.g. a Safe transaction hash, which Safe accepts an eth_sign signature over); it is refused unless hash.allow is true for this client and wallet, or message.allow_digests is"
                    ),
                );
                return d;
            }
        }
        if let Subject::EvmTypedData(info) = req.subject {
            // asset-moving families need a covering rule that names them, also when no
            // rule covers the request and `default = allow` (or there is no policy)
            let named = covering.iter().any(|r| {
                r.typed_data
                    .as_ref()
                    .is_some_and(|t| t.names(&info.primary_type))
            });
            if info.family.moves_assets() && !named {
                d.deny(
                    SPENDING_TYPED_DATA,
                    format!(
                        "EIP-712 primary type {:?} ({}) moves or hands over assets; it is refused unless a covering rule lists it in typed_data",
                        info.primary_type,
                        typed_data::family_name(&info.family)
                    ),
                );
                return d;
            }
        }
        if let Some(delegate) = delegate_of(req.subject) {
            // like asset-moving typed data: needs a covering rule that writes the table,
            // also when no rule covers the request and `default = allow` (or no policy)
            if !covering
                .iter()
                .any(|r| delegations::written(r.evm.as_ref()))
            {
                d.deny(
                    DELEGATION,
                    format!(
                        "an EIP-7702 authorization hands the account (its code, and so every asset in it) to {delegate:#x}; it is refused unless a covering rule writes evm.delegations"
                    ),
                );
                return d;
            }
        }
        if covering.is_empty() {
            if self.default == DefaultAction::Deny {
                d.deny(
                    "default",
                    format!(
                        "no policy rule covers {} for client {} on wallet {}",
                        req.subject.kind(),
                        req.client,
                        req.wallet.id
                    ),
                );
            }
            return d;
        }
        for r in covering {
            d.matched.push(r.id.clone());
            let mut caps = Vec::new();
            if let Err(refuse) = r.check(req, &d.spend, &mut caps) {
                d.deny(refuse.builtin.unwrap_or(&r.id), refuse.reason);
                return d;
            }
            // a request that adds nothing to a counter fits under its cap, even one that a
            // lowered limit has already overrun
            d.caps
                .extend(caps.into_iter().filter(|c| !c.amount.is_zero()));
        }
        d
    }

    /// True when a written rule covers a raw digest from this client on this wallet and
    /// every such rule allows it (`hash.allow`). Without one, `default` would decide;
    /// a message is not let through as a digest on that ground.
    fn allows_digests(&self, req: &Request<'_>) -> bool {
        let as_hash = Request {
            subject: &Subject::EvmHash,
            ..*req
        };
        let rules: Vec<&Rule> = self.rules.iter().filter(|r| r.covers(&as_hash)).collect();
        !rules.is_empty() && rules.iter().all(|r| r.hash == Some(true))
    }

    /// [`Policy::decide`] then [`Decision::check_caps`]: the whole decision, given totals.
    pub fn decide_with(&self, req: &Request<'_>, totals: &Totals) -> Decision {
        let mut d = self.decide(req);
        d.check_caps(totals);
        d
    }

    /// The rate limits that apply to `client` on `wallet`, with their bucket keys.
    pub fn rate_limits_for(
        &self,
        client: &str,
        wallet: &WalletRef<'_>,
    ) -> Vec<(&RateLimit, String)> {
        self.rate_limits
            .iter()
            .filter(|l| client_matches(&l.clients, client) && wallet_matches(&l.wallets, wallet))
            .map(|l| {
                let who = match l.scope {
                    Scope::Client => format!("client:{client}"),
                    Scope::Wallet => format!("wallet:{}", wallet.id),
                };
                (l, format!("{}\u{0}{who}", l.id))
            })
            .collect()
    }
}

/// The (first) delegate an authorization or a type-4 transaction names.
fn delegate_of(s: &Subject) -> Option<alloy_primitives::Address> {
    match s {
        Subject::EvmAuthorization(a) => Some(a.address),
        Subject::EvmTransaction(tx) => tx.authorizations().first().map(|a| a.address),
        _ => None,
    }
}

/// Every amount the request moves out of the wallet, per counter.
fn spend_of(req: &Request<'_>) -> Vec<(SpendKey, U256)> {
    let raw = match req.subject {
        Subject::EvmTransaction(tx) => evm::spend(tx),
        Subject::EvmUserOperation(op) => evm::spend(&op.priced),
        Subject::SolanaTransaction { tx, wallet } => solana::spend(tx, wallet),
        Subject::EvmTypedData(info) => typed_data::spend(info),
        _ => Vec::new(),
    };
    let mut merged: BTreeMap<SpendKey, U256> = BTreeMap::new();
    for (chain, asset, amount) in raw {
        let key = SpendKey {
            wallet: req.wallet.id.to_owned(),
            chain,
            asset,
        };
        let e = merged.entry(key).or_default();
        *e = e.saturating_add(amount);
    }
    merged.into_iter().filter(|(_, a)| !a.is_zero()).collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn policy(text: &str) -> Policy {
        PolicySection::parse_file(text)
            .expect("parses")
            .compile()
            .expect("compiles")
    }

    pub fn wallet(chain: &'static str) -> WalletRef<'static> {
        WalletRef {
            id: "w1",
            chain,
            label: Some("hot"),
        }
    }

    pub fn decide(
        p: &Policy,
        client: &str,
        chain: &'static str,
        s: &Subject,
        totals: &Totals,
    ) -> Decision {
        p.decide_with(
            &Request {
                client,
                wallet: wallet(chain),
                subject: s,
                pending_nonce: None,
            },
            totals,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn no_policy_allows_what_grants_allow() {
        let p = Policy::permissive();
        let d = decide(&p, "svc", "evm", &Subject::EvmHash, &Totals::new());
        assert!(d.allowed());
        assert!(d.matched.is_empty());
    }

    #[test]
    fn written_policy_denies_uncovered_requests() {
        let p = policy("[[rule]]\nid = \"msgs\"\nclients = [\"svc\"]\nmessage = {}\n");
        let d = decide(
            &p,
            "svc",
            "evm",
            &Subject::EvmMessage { len: 5 },
            &Totals::new(),
        );
        assert!(d.allowed());
        assert_eq!(d.matched, vec!["msgs"]);
        let d = decide(
            &p,
            "other",
            "evm",
            &Subject::EvmMessage { len: 5 },
            &Totals::new(),
        );
        assert_eq!(d.denial.unwrap().rule, "default");
        let d = decide(&p, "svc", "evm", &Subject::EvmHash, &Totals::new());
        assert_eq!(d.denial.unwrap().rule, "default");
    }

    #[test]
    fn message_length_boundary_and_deny() {
        let p = policy("[[rule]]\nid = \"m\"\nmessage = { max_len = 10 }\n[[rule]]\nid = \"no-sol-msg\"\nwallets = [\"chain:solana\"]\nmessage = { allow = false }\n");
        assert!(decide(
            &p,
            "c",
            "evm",
            &Subject::EvmMessage { len: 10 },
            &Totals::new()
        )
        .allowed());
        let d = decide(
            &p,
            "c",
            "evm",
            &Subject::EvmMessage { len: 11 },
            &Totals::new(),
        );
        assert_eq!(d.denial.unwrap().rule, "m");
        let d = decide(
            &p,
            "c",
            "solana",
            &Subject::SolanaMessage { len: 3 },
            &Totals::new(),
        );
        let den = d.denial.unwrap();
        assert_eq!(den.rule, "no-sol-msg");
        assert_eq!(d.matched, vec!["m", "no-sol-msg"]);
    }

    #[test]
    fn raw_digests_need_explicit_allow() {
        let p = policy("[[rule]]\nid = \"h\"\nhash = {}\n");
        assert_eq!(
            decide(&p, "c", "evm", &Subject::EvmHash, &Totals::new())
                .denial
                .unwrap()
                .rule,
            "h"
        );
        let p = policy("[[rule]]\nid = \"h\"\nhash = { allow = true }\n");
        assert!(decide(&p, "c", "evm", &Subject::EvmHash, &Totals::new()).allowed());
    }

    #[test]
    fn thirty_two_byte_messages_need_what_digests_need() {
        let m32 = Subject::EvmMessage { len: DIGEST_LEN };
        let rule = |p: &Policy, s: &Subject| {
            decide(p, "c", "evm", s, &Totals::new())
                .denial
                .map(|d| d.rule)
        };
        // no policy, a message rule, default allow: refused
        for p in [
            Policy::permissive(),
            policy("[[rule]]\nid = \"m\"\nmessage = {}\n"),
            policy("default = \"allow\"\n[[rule]]\nid = \"m\"\nmessage = {}\n"),
        ] {
            assert_eq!(rule(&p, &m32).as_deref(), Some(DIGEST_MESSAGE));
            for len in [31, 33] {
                assert_eq!(rule(&p, &Subject::EvmMessage { len }), None);
            }
        }
        // hash.allow for this client and wallet
        let p = policy(
            "[[rule]]\nid = \"m\"\nmessage = {}\n[[rule]]\nid = \"h\"\nhash = { allow = true }\n",
        );
        assert_eq!(rule(&p, &m32), None);
        // ... but not for another client, nor when a second hash rule refuses
        let p = policy("[[rule]]\nid = \"m\"\nmessage = {}\n[[rule]]\nid = \"h\"\nclients = [\"x\"]\nhash = { allow = true }\n");
        assert_eq!(rule(&p, &m32).as_deref(), Some(DIGEST_MESSAGE));
        let p = policy("[[rule]]\nid = \"m\"\nmessage = {}\n[[rule]]\nid = \"h\"\nhash = { allow = true }\n[[rule]]\nid = \"h2\"\nhash = {}\n");
        assert_eq!(rule(&p, &m32).as_deref(), Some(DIGEST_MESSAGE));
        // allow_digests on every covering message rule
        let p = policy("[[rule]]\nid = \"m\"\nmessage = { allow_digests = true }\n");
        assert_eq!(rule(&p, &m32), None);
        let p = policy("[[rule]]\nid = \"m\"\nmessage = { allow_digests = true }\n[[rule]]\nid = \"m2\"\nmessage = {}\n");
        assert_eq!(rule(&p, &m32).as_deref(), Some(DIGEST_MESSAGE));
        // and the message rules still apply
        let p = policy("[[rule]]\nid = \"m\"\nmessage = { allow_digests = true, max_len = 31 }\n");
        assert_eq!(rule(&p, &m32).as_deref(), Some("m"));
        // Solana messages are not EIP-191
        assert_eq!(
            rule(&Policy::permissive(), &Subject::SolanaMessage { len: 32 }),
            None
        );
    }

    #[test]
    fn wallet_selectors_match_whole_values() {
        let w = WalletRef {
            id: "w1",
            chain: "evm",
            label: Some("hot"),
        };
        assert!(wallet_matches(&["label:hot".into()], &w));
        assert!(!wallet_matches(&["label:ho".into()], &w));
        assert!(wallet_matches(&["chain:evm".into()], &w));
        assert!(!wallet_matches(&["w".into()], &w));
        assert!(wallet_matches(&["w1".into()], &w));
    }
}
