//! Policy compile + evaluate (`keyward::policy`): the operator's TOML through
//! `PolicySection::parse_file` and `compile`, then `Policy::decide_with` on parsed
//! requests.
//!
//! Deny-on-doubt is the invariant: anything a covering rule forbids, anything it cannot
//! price, any cap a request would overrun, and (with `default = "deny"`) anything no rule
//! covers, is refused, as restated here from the policy's documentation (docs/policy.md,
//! `src/policy.rs`) in a model that only knows when a request *must* be denied. Also:
//! with no covering rule and `default = "allow"` a request is allowed (unless it is
//! spending typed data); a refusal names a covering rule, `default` or a `builtin.*`
//! rule; any TOML text either fails to compile or yields a policy that evaluates without
//! panicking.

use alloy_primitives::{Address, U256};
use arbitrary::Arbitrary;
use keyward::chains::evm::{self, TypedDataInfo};
use keyward::chains::solana;
use keyward::policy::{PolicySection, Request, SpendKey, Subject, Totals, WalletRef};
use serde_json::{json, Map, Value};

use crate::solana_wire::{self as wire, Class, GenMsg, Key};

mod evm_calls;
mod fees;

use evm_calls::{evm_denies, flatten_matches, Amount, GenCall};

const CHAINS: [u64; 3] = [1, 10, 137];
const WINDOWS: [(&str, u64); 3] = [
    ("1h", 3_600_000),
    ("24h", 86_400_000),
    ("7days", 604_800_000),
];
const SELECTORS: [[u8; 4]; 4] = [
    [0xa9, 0x05, 0x9c, 0xbb], // transfer(address,uint256)
    [0x09, 0x5e, 0xa7, 0xb3], // approve(address,uint256)
    [0x23, 0xb8, 0x72, 0xdd], // transferFrom(address,address,uint256)
    [0x12, 0x34, 0x56, 0x78],
];
const PRIMARY: [&str; 5] = ["Permit", "Mail", "PermitSingle", "Order", "OrderComponents"];
const SPENDING: [&str; 3] = ["Permit", "PermitSingle", "OrderComponents"];
const CLIENTS: [&str; 2] = ["alice", "bob"];
const MEMO: &str = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr";
/// The Solana wallet's key.
const WALLET: Key = [0x11; 32];

fn addr(i: u8) -> Address {
    Address::with_last_byte(0xa0 + i % 4)
}

fn mint(i: u8) -> Key {
    let mut k = [0u8; 32];
    k[0] = 1;
    k[31] = 200 + i % 2;
    k
}

fn program(i: u8) -> (&'static str, Key) {
    match i % 5 {
        0 => ("system", wire::SYSTEM),
        1 => ("token", wire::TOKEN),
        2 => ("token-2022", wire::TOKEN_2022),
        3 => ("compute-budget", wire::COMPUTE_BUDGET),
        _ => ("memo", solana::parse_pubkey(MEMO).unwrap()),
    }
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any text as a policy file, evaluated on a few fixed requests if it compiles.
    Text(String),
    Built {
        policy: GenPolicy,
        request: GenRequest,
        totals: Vec<u64>,
    },
    /// One Solana rule covering a transaction the wallet pays for, made of Compute Budget,
    /// `AdvanceNonceAccount` and transfer instructions: the priority-fee and durable-nonce
    /// refusals, which generic generation reaches too rarely.
    SolanaFees {
        rule: GenSolRule,
        ixs: Vec<fees::GenFeeIx>,
        /// Keep only the Compute Budget instructions (the runtime's default limit is then
        /// SIMD-0170's 3,000 per instruction alone).
        budget_only: bool,
        totals: Vec<u64>,
    },
}

#[derive(Arbitrary, Debug)]
struct GenPolicy {
    default_deny: bool,
    rules: Vec<GenRule>,
}

#[derive(Arbitrary, Debug)]
struct GenRule {
    clients: Option<u8>,
    wallets: u8,
    evm: Option<GenEvmRule>,
    typed: Option<(Vec<u8>, Vec<u8>)>,
    message: Option<(bool, Option<u16>)>,
    hash: Option<bool>,
    solana: Option<GenSolRule>,
}

#[derive(Arbitrary, Debug)]
struct GenEvmRule {
    chain_ids: Vec<u8>,
    to_allow: Vec<u8>,
    to_deny: Vec<u8>,
    contract_creation: bool,
    max_value: Option<(Option<u8>, u64)>,
    max_value_exact: Option<(u8, u64)>,
    max_gas: Option<u32>,
    max_fee: Option<u64>,
    spend: Option<(u8, u8, u64)>,
    token: Option<GenToken>,
}

#[derive(Arbitrary, Debug)]
struct GenToken {
    contract: u8,
    chain: Option<u8>,
    max_per_tx: Option<u64>,
    window: Option<(u8, u64)>,
    unlimited_approval: bool,
}

#[derive(Arbitrary, Debug)]
struct GenSolRule {
    programs: Vec<u8>,
    max_lamports: Option<u64>,
    max_priority_fee: Option<u64>,
    allow_durable_nonce: Option<bool>,
    spend: Option<(u8, u64)>,
    token: Option<GenSplToken>,
    require_fee_payer: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct GenSplToken {
    mint: u8,
    max_per_tx: Option<u64>,
    window: Option<(u8, u64)>,
}

impl GenSolRule {
    /// At least one program: an empty list does not compile (by design).
    fn programs(&self) -> Vec<u8> {
        if self.programs.is_empty() {
            vec![0]
        } else {
            self.programs.clone()
        }
    }
}

impl GenRule {
    /// The primary types allowed and denied (a type in both lists does not compile, by
    /// design, so the denied ones are those not allowed).
    fn typed_lists(&self) -> Option<(Vec<&'static str>, Vec<&'static str>)> {
        let (allow, deny) = self.typed.as_ref()?;
        let names = |v: &[u8]| -> Vec<&'static str> {
            v.iter()
                .map(|i| PRIMARY[usize::from(*i) % PRIMARY.len()])
                .collect()
        };
        let allow = names(allow);
        let deny = names(deny)
            .into_iter()
            .filter(|d| !allow.contains(d))
            .collect();
        Some((allow, deny))
    }

    fn clients(&self) -> Vec<&'static str> {
        match self.clients {
            None => vec!["*"],
            Some(i) => vec![CLIENTS[usize::from(i) % 2]],
        }
    }

    fn wallets(&self) -> &'static str {
        ["*", "w1", "w2", "chain:evm", "chain:solana", "label:hot"][usize::from(self.wallets) % 6]
    }
}

impl GenPolicy {
    fn toml(&self) -> String {
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().take(4).enumerate() {
            let mut t = Map::new();
            t.insert("id".into(), json!(format!("r{i}")));
            t.insert("clients".into(), json!(r.clients()));
            t.insert("wallets".into(), json!([r.wallets()]));
            if let Some(e) = &r.evm {
                let mut m = Map::new();
                let chains: Vec<u64> = e
                    .chain_ids
                    .iter()
                    .map(|c| CHAINS[usize::from(*c) % 3])
                    .collect();
                m.insert("chain_ids".into(), json!(chains));
                let list = |v: &[u8]| -> Vec<String> {
                    v.iter().map(|a| format!("{:#x}", addr(*a))).collect()
                };
                m.insert("to_allow".into(), json!(list(&e.to_allow)));
                m.insert("to_deny".into(), json!(list(&e.to_deny)));
                m.insert("contract_creation".into(), json!(e.contract_creation));
                let mut mv = Map::new();
                if let Some((c, v)) = e.max_value {
                    let key = c.map_or("*".to_owned(), |c| CHAINS[usize::from(c) % 3].to_string());
                    mv.insert(key, json!(v.to_string()));
                }
                if let Some((c, v)) = e.max_value_exact {
                    mv.insert(CHAINS[usize::from(c) % 3].to_string(), json!(v.to_string()));
                }
                m.insert("max_value".into(), Value::Object(mv));
                if let Some(g) = e.max_gas {
                    m.insert("max_gas_limit".into(), json!(g));
                }
                if let Some(f) = e.max_fee {
                    m.insert("max_fee_per_gas".into(), json!(f.to_string()));
                }
                if let Some((c, w, max)) = e.spend {
                    m.insert(
                        "spend".into(),
                        json!([{
                            "chain_id": CHAINS[usize::from(c) % 3],
                            "window": WINDOWS[usize::from(w) % 3].0,
                            "max": max.to_string(),
                        }]),
                    );
                }
                if let Some(t) = &e.token {
                    let mut tm = Map::new();
                    tm.insert("contract".into(), json!(format!("{:#x}", addr(t.contract))));
                    if let Some(c) = t.chain {
                        tm.insert("chain_id".into(), json!(CHAINS[usize::from(c) % 3]));
                    }
                    if let Some(m) = t.max_per_tx {
                        tm.insert("max_per_tx".into(), json!(m.to_string()));
                    }
                    if let Some((w, m)) = t.window {
                        tm.insert("window".into(), json!(WINDOWS[usize::from(w) % 3].0));
                        tm.insert("max_per_window".into(), json!(m.to_string()));
                    }
                    tm.insert("unlimited_approval".into(), json!(t.unlimited_approval));
                    m.insert("token".into(), json!([tm]));
                }
                t.insert("evm".into(), Value::Object(m));
            }
            if let Some((allow, deny)) = r.typed_lists() {
                t.insert(
                    "typed_data".into(),
                    json!({ "allow_primary_types": allow, "deny_primary_types": deny }),
                );
            }
            if let Some((allow, max)) = r.message {
                let mut m = json!({ "allow": allow });
                if let Some(max) = max {
                    m["max_len"] = json!(max);
                }
                t.insert("message".into(), m);
            }
            if let Some(h) = r.hash {
                t.insert("hash".into(), json!({ "allow": h }));
            }
            if let Some(s) = &r.solana {
                let programs: Vec<&str> = s.programs().iter().map(|p| program(*p).0).collect();
                let mut m =
                    json!({ "programs": programs, "require_fee_payer": s.require_fee_payer });
                if let Some(l) = s.max_lamports {
                    m["max_lamports_per_tx"] = json!(l.to_string());
                }
                if let Some(f) = s.max_priority_fee {
                    m["max_priority_fee"] = json!(f.to_string());
                }
                if let Some(a) = s.allow_durable_nonce {
                    m["allow_durable_nonce"] = json!(a);
                }
                if let Some((w, max)) = s.spend {
                    m["spend"] = json!([{ "window": WINDOWS[usize::from(w) % 3].0, "max": max.to_string() }]);
                }
                if let Some(GenSplToken {
                    mint: mi,
                    max_per_tx: per_tx,
                    window,
                }) = s.token
                {
                    let mut tm = json!({ "mint": solana::to_base58(&mint(mi)) });
                    if let Some(p) = per_tx {
                        tm["max_per_tx"] = json!(p.to_string());
                    }
                    if let Some((w, max)) = window {
                        tm["window"] = json!(WINDOWS[usize::from(w) % 3].0);
                        tm["max_per_window"] = json!(max.to_string());
                    }
                    m["token"] = json!([tm]);
                }
                t.insert("solana".into(), m);
            }
            rules.push(Value::Object(t));
        }
        let doc = json!({
            "default": if self.default_deny { "deny" } else { "allow" },
            "rule": rules,
        });
        toml::to_string(&doc).expect("renders")
    }
}

#[derive(Arbitrary, Debug)]
enum GenSubject {
    EvmTx {
        ty: u8,
        chain: u8,
        to: Option<u8>,
        value: Amount,
        gas: u32,
        fee: u64,
        call: GenCall,
    },
    SolanaTx(GenMsg),
    Typed(u8),
    EvmMessage(u16),
    SolanaMessage(u16),
    Hash,
}

#[derive(Arbitrary, Debug)]
struct GenRequest {
    client: u8,
    subject: GenSubject,
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Text(text) => {
            if let Ok(p) = PolicySection::parse_file(&text).and_then(|s| s.compile()) {
                let sub = Subject::EvmHash;
                let w = WalletRef {
                    id: "w1",
                    chain: "evm",
                    label: Some("hot"),
                };
                let d = p.decide_with(
                    &Request {
                        client: "alice",
                        wallet: w,
                        subject: &sub,
                        pending_nonce: None,
                    },
                    &Totals::new(),
                );
                let _ = (d.allowed(), p.rate_limits_for("alice", &w));
            }
        }
        Input::Built {
            policy,
            request,
            totals,
        } => built(&policy, &request, &totals),
        Input::SolanaFees {
            rule,
            ixs,
            budget_only,
            totals,
        } => fees::solana_fees(rule, &ixs, budget_only, &totals),
    }
}

/// The subject of a generated request (`None`: its payload does not parse; nothing to
/// decide) and whether it is for the Solana wallet.
fn subject(r: &GenRequest) -> Option<(Subject, bool)> {
    Some(match &r.subject {
        GenSubject::EvmTx {
            ty,
            chain,
            to,
            value,
            gas,
            fee,
            call,
        } => {
            let mut t = json!({
                "type": ty % 3,
                "chainId": CHAINS[usize::from(*chain) % 3],
                "nonce": 0,
                "gas": gas,
                "value": format!("{:#x}", value.value()),
                "data": format!("0x{}", hex::encode(call.data())),
            });
            if ty % 3 == 2 {
                t["maxFeePerGas"] = json!(fee);
                t["maxPriorityFeePerGas"] = json!(0);
            } else {
                t["gasPrice"] = json!(fee);
            }
            if let Some(a) = to {
                t["to"] = json!(format!("{:#x}", addr(*a)));
            }
            let tx = evm::parse_transaction(&t, 1 << 16).ok()?;
            (Subject::EvmTransaction(Box::new(tx)), false)
        }
        GenSubject::SolanaTx(m) => {
            let m = m.build(&WALLET);
            let bytes = m.transaction(usize::from(m.header[0]));
            let tx = solana::parse_transaction(&bytes).ok()?;
            (
                Subject::SolanaTransaction {
                    tx: Box::new(tx),
                    wallet: WALLET,
                },
                true,
            )
        }
        GenSubject::Typed(p) => {
            let primary = PRIMARY[usize::from(*p) % PRIMARY.len()];
            // as the parser would classify it: a spending family whose fields the engine
            // does not price (the generator carries no fields to price)
            let family = if SPENDING.contains(&primary) {
                keyward::chains::evm::TypedFamily::Unpriced {
                    family: "generated",
                }
            } else {
                keyward::chains::evm::TypedFamily::Other
            };
            (
                Subject::EvmTypedData(Box::new(TypedDataInfo {
                    digest: Default::default(),
                    primary_type: primary.into(),
                    domain_name: None,
                    domain_version: None,
                    domain_chain_id: Some(1),
                    domain_verifying_contract: None,
                    domain_salt: None,
                    family,
                })),
                false,
            )
        }
        GenSubject::EvmMessage(len) => (
            Subject::EvmMessage {
                len: usize::from(*len),
            },
            false,
        ),
        GenSubject::SolanaMessage(len) => (
            Subject::SolanaMessage {
                len: usize::from(*len),
            },
            true,
        ),
        GenSubject::Hash => (Subject::EvmHash, false),
    })
}

fn built(p: &GenPolicy, r: &GenRequest, totals_in: &[u64]) {
    let text = p.toml();
    let compiled = PolicySection::parse_file(&text).and_then(|s| s.compile());
    let sectionless = p.rules.iter().take(4).any(|r| {
        r.evm.is_none()
            && r.typed.is_none()
            && r.message.is_none()
            && r.hash.is_none()
            && r.solana.is_none()
    });
    if sectionless {
        // a rule that covers nothing is an operator mistake, refused at compile time
        assert!(compiled.is_err(), "a rule without a section compiled");
        return;
    }
    let policy = compiled.unwrap_or_else(|e| {
        panic!("a policy built from valid values does not compile: {e}\n{text}")
    });
    let Some((subject, on_solana)) = subject(r) else {
        return;
    };
    if let (GenSubject::EvmTx { call, .. }, Subject::EvmTransaction(tx)) = (&r.subject, &subject) {
        if let Some(to) = tx.to() {
            flatten_matches(call, to, tx);
        }
    }
    let client = CLIENTS[usize::from(r.client) % 2];
    let wallet = if on_solana {
        WalletRef {
            id: "w2",
            chain: "solana",
            label: None,
        }
    } else {
        WalletRef {
            id: "w1",
            chain: "evm",
            label: Some("hot"),
        }
    };
    let req = Request {
        client,
        wallet,
        subject: &subject,
        pending_nonce: None,
    };
    // totals for every (counter, window) the decision asks about, from the input
    let first = policy.decide(&req);
    let mut totals = Totals::new();
    for (i, q) in first.queries().into_iter().enumerate() {
        let t = totals_in.get(i).copied().unwrap_or(0);
        totals.insert(q, U256::from(t));
    }
    let decision = policy.decide_with(&req, &totals);

    let rules: Vec<&GenRule> = p.rules.iter().take(4).collect();
    let covering: Vec<(usize, &GenRule)> = rules
        .iter()
        .enumerate()
        .filter(|(_, g)| covers(g, &subject, client, &wallet))
        .map(|(i, g)| (i, *g))
        .collect();
    let call = match &r.subject {
        GenSubject::EvmTx { call, .. } => Some(call),
        _ => None,
    };
    let hash_ok = hash_allowed(&rules, client, &wallet);
    let must_deny = must_deny(
        &subject,
        &covering,
        p.default_deny,
        &totals,
        &wallet,
        call,
        hash_ok,
    );
    if let Some(why) = &must_deny {
        assert!(
            !decision.allowed(),
            "allowed a request the policy forbids ({why})\n{text}\n{subject:?}"
        );
    }
    if let Some(d) = &decision.denial {
        let named = d.rule == "default"
            || d.rule.starts_with("builtin.")
            || covering.iter().any(|(i, _)| d.rule == format!("r{i}"));
        assert!(
            named,
            "refused by rule {:?}, which does not cover it",
            d.rule
        );
    } else if covering.is_empty() {
        assert!(
            !p.default_deny,
            "uncovered request allowed under default deny"
        );
    }
    if covering.is_empty() && !p.default_deny {
        let spending = matches!(&subject, Subject::EvmTypedData(i) if SPENDING.contains(&i.primary_type.as_str()))
            || matches!(subject, Subject::EvmMessage { len: 32 } if !hash_ok);
        assert_eq!(
            decision.allowed(),
            !spending,
            "default allow: {:?}",
            decision.denial
        );
    }
}

fn covers(g: &GenRule, s: &Subject, client: &str, w: &WalletRef<'_>) -> bool {
    let section = match s {
        Subject::EvmMessage { .. } | Subject::SolanaMessage { .. } => g.message.is_some(),
        Subject::EvmTypedData(_) => g.typed.is_some(),
        Subject::EvmTransaction(_)
        | Subject::EvmAuthorization(_)
        | Subject::EvmUserOperation(_) => g.evm.is_some(),
        Subject::EvmHash => g.hash.is_some(),
        Subject::SolanaTransaction { .. } => g.solana.is_some(),
    };
    let clients_ok = g.clients().iter().any(|c| *c == "*" || *c == client);
    let wallet_ok = match g.wallets() {
        "*" => true,
        "label:hot" => w.label == Some("hot"),
        "chain:evm" => w.chain == "evm",
        "chain:solana" => w.chain == "solana",
        id => id == w.id,
    };
    section && clients_ok && wallet_ok
}

fn total(totals: &Totals, wallet: &str, chain: &str, asset: &str, window: u64) -> U256 {
    let key = SpendKey {
        wallet: wallet.into(),
        chain: chain.into(),
        asset: asset.into(),
    };
    totals.get(&(key, window)).copied().unwrap_or_default()
}

/// Whether the policy allows this client raw digests on this wallet: a 32-byte EVM
/// message needs it (the generator never sets `message.allow_digests`).
fn hash_allowed(rules: &[&GenRule], client: &str, w: &WalletRef<'_>) -> bool {
    let hash: Vec<&&GenRule> = rules
        .iter()
        .filter(|g| covers(g, &Subject::EvmHash, client, w))
        .collect();
    !hash.is_empty() && hash.iter().all(|g| g.hash == Some(true))
}

/// Why the request must be refused, if it must.
fn must_deny(
    s: &Subject,
    covering: &[(usize, &GenRule)],
    default_deny: bool,
    totals: &Totals,
    w: &WalletRef<'_>,
    call: Option<&GenCall>,
    hash_ok: bool,
) -> Option<String> {
    if matches!(s, Subject::EvmMessage { len: 32 }) && !hash_ok {
        return Some("a 32-byte message is a digest".into());
    }
    if let Subject::EvmTypedData(info) = s {
        let spending = SPENDING.contains(&info.primary_type.as_str());
        let listed = covering.iter().any(|(_, g)| {
            g.typed_lists()
                .is_some_and(|(allow, _)| allow.contains(&info.primary_type.as_str()))
        });
        if spending && !listed {
            return Some("spending typed data not listed".into());
        }
    }
    if covering.is_empty() {
        return default_deny.then(|| "no rule covers it and default is deny".into());
    }
    for (i, g) in covering {
        if let Some(why) = rule_denies(g, s, totals, w, call) {
            return Some(format!("rule r{i}: {why}"));
        }
    }
    None
}

fn rule_denies(
    g: &GenRule,
    s: &Subject,
    totals: &Totals,
    w: &WalletRef<'_>,
    call: Option<&GenCall>,
) -> Option<String> {
    match s {
        Subject::EvmMessage { len } | Subject::SolanaMessage { len } => {
            let (allow, max) = g.message?;
            if !allow {
                return Some("messages refused".into());
            }
            max.filter(|m| *len > usize::from(*m))
                .map(|m| format!("message longer than {m}"))
        }
        Subject::EvmHash => (g.hash != Some(true)).then(|| "hashes refused".into()),
        Subject::EvmTypedData(info) => {
            let (_, deny) = g.typed_lists()?;
            if deny.contains(&info.primary_type.as_str()) {
                return Some("primary type denied".into());
            }
            let e = g.evm.as_ref()?;
            // the rule's chains reach typed data (the generated domain is on chain 1)
            let chains: Vec<u64> = e
                .chain_ids
                .iter()
                .map(|c| CHAINS[usize::from(*c) % 3])
                .collect();
            if !chains.is_empty() && !chains.contains(&info.domain_chain_id.unwrap_or(0)) {
                return Some("typed data for a chain outside evm.chain_ids".into());
            }
            // an unpriced family under a rule that caps anything, max_value included
            let unpriced = matches!(
                info.family,
                keyward::chains::evm::TypedFamily::Unpriced { .. }
            );
            (unpriced && e.caps_anything()).then(|| "unpriced typed data under caps".into())
        }
        Subject::EvmTransaction(tx) => evm_denies(g.evm.as_ref()?, tx, totals, w, call?),
        // the generator writes no evm.delegations: every authorization is refused
        Subject::EvmAuthorization(_) => Some("no evm.delegations written".into()),
        // the generator builds no user operations
        Subject::EvmUserOperation(_) => None,
        Subject::SolanaTransaction { tx, wallet } => {
            sol_denies(g.solana.as_ref()?, tx, wallet, totals, w)
        }
    }
}

fn sol_denies(
    g: &GenSolRule,
    tx: &solana::ParsedTransaction,
    wallet: &Key,
    totals: &Totals,
    w: &WalletRef<'_>,
) -> Option<String> {
    if g.require_fee_payer && tx.fee_payer() != *wallet {
        return Some("fee payer".into());
    }
    // the message as the reference parser reads it, classified by the reference
    let (_, m, _) = wire::parse_transaction(tx.bytes(), true).expect("keyward parsed it");
    let programs: Vec<Key> = g.programs().iter().map(|p| program(*p).1).collect();
    // a durable nonce outlives the windows: refused where a cap exists unless allowed
    let caps = g.max_lamports.is_some()
        || g.spend.is_some()
        || g.token.is_some()
        || g.max_priority_fee.is_some();
    if wire::durable_nonce(&m) && !g.allow_durable_nonce.unwrap_or(!caps) {
        return Some("durable nonce".into());
    }
    // the priority fee is never priced below what a runtime charges
    if let (Some(max), Some(fee)) = (g.max_priority_fee, wire::priority_fee_floor(&m)) {
        if fee > u128::from(max) {
            return Some(format!("priority fee {fee} above {max}"));
        }
    }
    let ours = |who: &Option<Key>| who.is_none_or(|k| k == *wallet);
    // System instructions that give an account the wallet controls to a program: the
    // wallet's own account created or prefunded-created, an account derived from it
    // allocated (AllocateWithSeed assigns): refused under any rule
    for i in 0..m.ixs.len() {
        let (p, _, d) = &m.ixs[i];
        if m.keys[usize::from(*p)] != wire::SYSTEM || d.len() < 4 {
            continue;
        }
        let handover = match u32::from_le_bytes(d[..4].try_into().unwrap()) {
            0 => m.account(i, 1).is_some_and(|a| ours(&a)),
            13 => m.account(i, 0).is_some_and(|a| ours(&a)),
            9 => d.get(4..36) == Some(&wallet[..]),
            _ => false,
        };
        if handover {
            return Some(format!(
                "instruction {i} hands a wallet account to a program"
            ));
        }
    }
    let mut lamports = U256::ZERO;
    let mut tokens: Vec<(Key, U256)> = Vec::new();
    for i in 0..m.ixs.len() {
        if !programs.contains(&m.keys[usize::from(m.ixs[i].0)]) {
            return Some(format!("program of instruction {i} not allowed"));
        }
        match wire::classify(&m, i) {
            Class::System(_, accounts, l) if ours(&accounts[0]) => {
                lamports = lamports.saturating_add(U256::from(l));
            }
            Class::Spl(_, 3, accounts, _, _) if g.token.is_some() && ours(&accounts[2]) => {
                return Some("SPL Transfer without a mint under token caps".into());
            }
            Class::Spl(_, 12, accounts, amount, _) if ours(&accounts[3]) => match accounts[1] {
                None if g.token.is_some() => {
                    return Some("TransferChecked with its mint in a lookup table".into())
                }
                None => {}
                Some(mint) => tokens.push((mint, U256::from(amount))),
            },
            _ => {}
        }
    }
    if g.max_lamports.is_some_and(|m| lamports > U256::from(m)) {
        return Some("lamports above max".into());
    }
    if let Some((win, max)) = g.spend {
        let (_, window) = WINDOWS[usize::from(win) % 3];
        if !lamports.is_zero()
            && total(totals, w.id, "solana", "lamports", window).saturating_add(lamports)
                > U256::from(max)
        {
            return Some("lamports rolling cap".into());
        }
    }
    if let Some(GenSplToken {
        mint: mi,
        max_per_tx: per_tx,
        window,
    }) = g.token
    {
        let mint = mint(mi);
        let amount = tokens
            .iter()
            .filter(|(m, _)| *m == mint)
            .fold(U256::ZERO, |a, (_, x)| a.saturating_add(*x));
        if per_tx.is_some_and(|p| amount > U256::from(p)) {
            return Some("token above max_per_tx".into());
        }
        if let Some((win, max)) = window {
            let (_, window) = WINDOWS[usize::from(win) % 3];
            let asset = format!("spl:{}", solana::to_base58(&mint));
            if !amount.is_zero()
                && total(totals, w.id, "solana", &asset, window).saturating_add(amount)
                    > U256::from(max)
            {
                return Some("token rolling cap".into());
            }
        }
    }
    None
}
