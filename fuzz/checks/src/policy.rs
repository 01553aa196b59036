//! Policy compile + evaluate (`keyward::policy`): the operator's TOML through
//! `PolicySection::parse_file` and `compile`, then `Policy::decide_with` on parsed
//! requests.
//!
//! Deny-on-doubt is the invariant: anything a covering rule forbids, anything it cannot
//! price, any cap a request would overrun, and (with `default = "deny"`) anything no rule
//! covers, is refused, as restated here from the policy's documentation (README,
//! `src/policy.rs`) in a model that only knows when a request *must* be denied. Also:
//! with no covering rule and `default = "allow"` a request is allowed (unless it is
//! spending typed data); a refusal names a covering rule, `default` or a `builtin.*`
//! rule; any TOML text either fails to compile or yields a policy that evaluates without
//! panicking.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};
use arbitrary::Arbitrary;
use keyward::chains::evm::{self, TypedDataInfo};
use keyward::chains::solana;
use keyward::policy::{PolicySection, Request, SpendKey, Subject, Totals, WalletRef};
use serde_json::{json, Map, Value};

use crate::solana_wire::{self as wire, Class, GenMsg, Key};

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
    match i % 4 {
        0 => ("system", wire::SYSTEM),
        1 => ("token", wire::TOKEN),
        2 => ("token-2022", wire::TOKEN_2022),
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
enum Amount {
    Small(u64),
    Huge([u8; 32]),
}

impl Amount {
    fn value(&self) -> U256 {
        match self {
            Amount::Small(n) => U256::from(*n),
            Amount::Huge(b) => U256::from_be_bytes(*b),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum GenCall {
    None,
    Transfer(u8, Amount),
    Approve(u8, Amount),
    TransferFrom(u8, u8, Amount),
    /// A known selector with arguments cut short.
    Short(u8, u8),
    /// Call data behind a selector nothing decodes (`0xfeed…`).
    Raw(Vec<u8>),
    /// ERC-721 / ERC-1155 `setApprovalForAll(operator, approved)`.
    NftApproveAll(u8, bool),
    /// ERC-721 `safeTransferFrom(from, to, id)`.
    NftTransfer(u8),
    /// A wrapper (`kind`: multicall, Multicall3 aggregate, account execute / executeBatch)
    /// of `(target, value, call)`: a multicall's calls go to its own `to` with no value,
    /// an aggregate's to their targets with no value.
    Wrapped(u8, Vec<(u8, u64, GenCall)>),
}

static NO_CALL: GenCall = GenCall::None;

/// A call that is not a wrapper, where it lands, and how deep.
struct Leaf<'a> {
    to: Address,
    value: U256,
    depth: usize,
    call: &'a GenCall,
}

impl GenCall {
    /// The calls this call makes, as keyward's wrapper limits allow them (depth 4, 64
    /// calls in all); `None` past a bound.
    fn leaves(&self, to: Address, value: U256) -> Option<Vec<Leaf<'_>>> {
        let mut out = Vec::new();
        let mut count = 1usize;
        let mut ok = true;
        self.walk(to, value, 0, &mut out, &mut count, &mut ok);
        (ok && count <= 64).then_some(out)
    }

    fn walk<'a>(
        &'a self,
        to: Address,
        value: U256,
        depth: usize,
        out: &mut Vec<Leaf<'a>>,
        count: &mut usize,
        ok: &mut bool,
    ) {
        let GenCall::Wrapped(kind, inner) = self else {
            out.push(Leaf {
                to,
                value,
                depth,
                call: self,
            });
            return;
        };
        if depth >= 4 {
            *ok = false;
            return;
        }
        if kind % 4 == 2 && inner.is_empty() {
            // execute(addr(0), 0, ""): one plain call
            *count += 1;
            out.push(Leaf {
                to: addr(0),
                value: U256::ZERO,
                depth: depth + 1,
                call: &NO_CALL,
            });
            return;
        }
        *count += if kind % 4 == 2 { 1 } else { inner.len() };
        for (t, v, c) in inner {
            let (t, v) = match kind % 4 {
                0 => (to, U256::ZERO),
                1 => (addr(*t), U256::ZERO),
                // execute takes its first call only
                _ => (addr(*t), U256::from(*v)),
            };
            c.walk(t, v, depth + 1, out, count, ok);
            if kind % 4 == 2 {
                break;
            }
        }
    }
}

impl GenCall {
    fn data(&self) -> Vec<u8> {
        let word_addr = |a: u8| {
            let mut w = [0u8; 32];
            w[12..].copy_from_slice(addr(a).as_slice());
            w
        };
        let call = |sel: usize, words: &[[u8; 32]]| {
            let mut d = SELECTORS[sel].to_vec();
            words.iter().for_each(|w| d.extend_from_slice(w));
            d
        };
        match self {
            GenCall::None => Vec::new(),
            GenCall::Transfer(to, a) => call(0, &[word_addr(*to), a.value().to_be_bytes()]),
            GenCall::Approve(to, a) => call(1, &[word_addr(*to), a.value().to_be_bytes()]),
            GenCall::TransferFrom(f, t, a) => {
                call(2, &[word_addr(*f), word_addr(*t), a.value().to_be_bytes()])
            }
            GenCall::Short(sel, len) => {
                let full = call(usize::from(*sel) % 3, &[[0u8; 32], [0u8; 32], [0u8; 32]]);
                // shorter than the call's own arguments (transferFrom has three)
                let need = if sel % 3 == 2 { 100 } else { 68 };
                full[..4 + usize::from(*len) % (need - 4)].to_vec()
            }
            GenCall::Raw(b) => [&[0xfe, 0xed][..], b].concat(),
            GenCall::NftApproveAll(op, on) => abi(
                [0xa2, 0x2c, 0xb4, 0x65],
                vec![DynSolValue::Address(addr(*op)), DynSolValue::Bool(*on)],
            ),
            GenCall::NftTransfer(to) => abi(
                [0x42, 0x84, 0x2e, 0x0e],
                vec![
                    DynSolValue::Address(addr(0)),
                    DynSolValue::Address(addr(*to)),
                    DynSolValue::Uint(U256::from(1), 256),
                ],
            ),
            GenCall::Wrapped(kind, inner) => {
                let bytes = |c: &GenCall| DynSolValue::Bytes(c.data());
                match kind % 4 {
                    // multicall(bytes[])
                    0 => abi(
                        [0xac, 0x96, 0x50, 0xd8],
                        vec![DynSolValue::Array(
                            inner.iter().map(|(_, _, c)| bytes(c)).collect(),
                        )],
                    ),
                    // aggregate((address,bytes)[])
                    1 => abi(
                        [0x25, 0x2d, 0xba, 0x42],
                        vec![DynSolValue::Array(
                            inner
                                .iter()
                                .map(|(t, _, c)| {
                                    DynSolValue::Tuple(vec![
                                        DynSolValue::Address(addr(*t)),
                                        bytes(c),
                                    ])
                                })
                                .collect(),
                        )],
                    ),
                    // execute(address,uint256,bytes) of the first call (or an empty one)
                    2 => {
                        let (t, v, d) = inner
                            .first()
                            .map_or((0, 0, Vec::new()), |(t, v, c)| (*t, *v, c.data()));
                        abi(
                            [0xb6, 0x1d, 0x27, 0xf6],
                            vec![
                                DynSolValue::Address(addr(t)),
                                DynSolValue::Uint(U256::from(v), 256),
                                DynSolValue::Bytes(d),
                            ],
                        )
                    }
                    // executeBatch((address,uint256,bytes)[])
                    _ => abi(
                        [0x34, 0xfc, 0xd5, 0xbe],
                        vec![DynSolValue::Array(
                            inner
                                .iter()
                                .map(|(t, v, c)| {
                                    DynSolValue::Tuple(vec![
                                        DynSolValue::Address(addr(*t)),
                                        DynSolValue::Uint(U256::from(*v), 256),
                                        bytes(c),
                                    ])
                                })
                                .collect(),
                        )],
                    ),
                }
            }
        }
    }
}

fn abi(selector: [u8; 4], args: Vec<DynSolValue>) -> Vec<u8> {
    [&selector[..], &DynSolValue::Tuple(args).abi_encode_params()].concat()
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
        Subject::EvmTransaction(_) => g.evm.is_some(),
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

/// keyward's wrapper decoder against the generator's own model of the calls: the same
/// calls, targets, values, depths and bytes, or an error exactly when the model is past
/// the bounds; and cut or corrupted encodings never panic nor pass the bounds.
fn flatten_matches(call: &GenCall, to: Address, tx: &evm::UnsignedTx) {
    use keyward::chains::evm::wrappers::{flatten, Limits};
    let data = tx.data();
    let got = flatten(to, tx.value(), data, &Limits::DEFAULT);
    match call.leaves(to, tx.value()) {
        None => assert!(got.is_err(), "wrappers past the bounds decoded: {call:?}"),
        Some(want) => {
            let got = got.unwrap_or_else(|e| panic!("generated wrappers do not decode: {e}"));
            assert_eq!(got.len(), want.len(), "{call:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    (g.to, g.value, g.depth, &g.data),
                    (w.to, w.value, w.depth, &w.call.data()),
                    "{call:?}"
                );
            }
        }
    }
    let mut flipped = data.to_vec();
    if let Some(b) = flipped.get_mut(data.len() / 3) {
        *b ^= 0x80;
    }
    for bytes in [
        &data[..data.len() / 2],
        &data[..data.len().saturating_sub(1)],
        &flipped,
    ] {
        if let Ok(calls) = flatten(to, tx.value(), bytes, &Limits::DEFAULT) {
            assert!(calls.len() <= 64 && calls.iter().all(|c| c.depth <= 4));
        }
    }
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
        Subject::SolanaTransaction { tx, wallet } => {
            sol_denies(g.solana.as_ref()?, tx, wallet, totals, w)
        }
    }
}

impl GenEvmRule {
    fn caps_anything(&self) -> bool {
        self.max_value.is_some()
            || self.max_value_exact.is_some()
            || self.spend.is_some()
            || self.token.is_some()
    }

    fn party_refused(&self, who: Address) -> bool {
        self.to_deny.iter().any(|a| addr(*a) == who)
            || (!self.to_allow.is_empty() && !self.to_allow.iter().any(|a| addr(*a) == who))
    }

    fn entry(&self, token: Address, chain: u64) -> Option<&GenToken> {
        self.token.as_ref().filter(|t| {
            addr(t.contract) == token && t.chain.is_none_or(|c| CHAINS[usize::from(c) % 3] == chain)
        })
    }
}

fn evm_denies(
    e: &GenEvmRule,
    tx: &evm::UnsignedTx,
    totals: &Totals,
    w: &WalletRef<'_>,
    call: &GenCall,
) -> Option<String> {
    let chain = tx.chain_id();
    let chains: Vec<u64> = e
        .chain_ids
        .iter()
        .map(|c| CHAINS[usize::from(*c) % 3])
        .collect();
    if !chains.is_empty() && !chains.contains(&chain) {
        return Some("chain not allowed".into());
    }
    let to = tx.to();
    match to {
        None if !e.contract_creation => return Some("contract creation".into()),
        Some(to) if e.party_refused(to) => return Some("to refused".into()),
        _ => {}
    }
    // what the transaction's calls send and move, wrappers flattened
    let leaves = match to {
        Some(to) => match call.leaves(to, tx.value()) {
            Some(l) => l,
            None => return Some("wrappers past their bounds".into()),
        },
        None => Vec::new(),
    };
    let native = leaves
        .iter()
        .filter(|l| l.depth > 0)
        .fold(tx.value(), |a, l| a.saturating_add(l.value));
    // the cap for the exact chain wins over "*"
    let mut caps: Vec<(Option<u64>, u64)> = Vec::new();
    if let Some((c, v)) = e.max_value {
        caps.push((c.map(|c| CHAINS[usize::from(c) % 3]), v));
    }
    if let Some((c, v)) = e.max_value_exact {
        let c = Some(CHAINS[usize::from(c) % 3]);
        caps.retain(|(k, _)| *k != c);
        caps.push((c, v));
    }
    let cap = caps
        .iter()
        .find(|(c, _)| *c == Some(chain))
        .or_else(|| caps.iter().find(|(c, _)| c.is_none()));
    if let Some((_, max)) = cap {
        if native > U256::from(*max) {
            return Some("value above max_value".into());
        }
    }
    if e.max_gas.is_some_and(|g| tx.gas_limit() > u64::from(g)) {
        return Some("gas above max".into());
    }
    if e.max_fee
        .is_some_and(|f| tx.max_fee_per_gas() > u128::from(f))
    {
        return Some("fee above max".into());
    }
    let ck = format!("eip155:{chain}");
    if let Some((c, win, max)) = e.spend {
        let (_, window) = WINDOWS[usize::from(win) % 3];
        if CHAINS[usize::from(c) % 3] == chain && !native.is_zero() {
            let t = total(totals, w.id, &ck, "native", window);
            if t.saturating_add(native) > U256::from(max) {
                return Some("native rolling cap".into());
            }
        }
    }
    let capped = e.caps_anything();
    // the amount counted per token contract
    let mut moved: Vec<(Address, U256)> = Vec::new();
    for l in &leaves {
        if l.depth > 0 && e.party_refused(l.to) {
            return Some("wrapped call target refused".into());
        }
        let entry = e.entry(l.to, chain);
        let movement = |party: u8, amount: U256, approval: bool| -> Result<U256, String> {
            if e.party_refused(addr(party)) {
                return Err("recipient or spender refused".into());
            }
            let unlimited = approval && amount.bit(255);
            let exempt = entry.is_some_and(|t| t.unlimited_approval);
            if unlimited && !exempt {
                return Err("unlimited approval".into());
            }
            let bounded = entry.is_some_and(|t| t.max_per_tx.is_some() || t.window.is_some());
            if approval
                && !unlimited
                && !amount.is_zero()
                && !bounded
                && !exempt
                && e.to_allow.is_empty()
            {
                return Err("approval no cap bounds".into());
            }
            if capped && entry.is_none() {
                return Err("token without an entry under caps".into());
            }
            Ok(if unlimited { U256::ZERO } else { amount })
        };
        let counted = match l.call {
            GenCall::None => continue,
            GenCall::Raw(_) if capped || entry.is_some() => {
                return Some("call data nothing decodes, under caps or at a capped token".into())
            }
            GenCall::Raw(_) => continue,
            GenCall::Short(..) => return Some("ERC-20 call that does not decode".into()),
            GenCall::Transfer(p, a) | GenCall::TransferFrom(_, p, a) => {
                movement(*p, a.value(), false)
            }
            GenCall::Approve(p, a) => movement(*p, a.value(), true),
            GenCall::NftApproveAll(op, true) => movement(*op, U256::MAX, true),
            GenCall::NftApproveAll(_, false) => continue,
            GenCall::NftTransfer(r) => {
                if e.party_refused(addr(*r)) {
                    return Some("NFT recipient refused".into());
                }
                if capped {
                    return Some("NFT transfer under caps".into());
                }
                continue;
            }
            GenCall::Wrapped(..) => unreachable!("leaves are not wrappers"),
        };
        match counted {
            Err(why) => return Some(why),
            Ok(a) => match moved.iter_mut().find(|(t, _)| *t == l.to) {
                Some((_, sum)) => *sum = sum.saturating_add(a),
                None => moved.push((l.to, a)),
            },
        }
    }
    for (token, amount) in moved {
        let Some(t) = e.entry(token, chain) else {
            continue;
        };
        if t.max_per_tx.is_some_and(|m| amount > U256::from(m)) {
            return Some("token amount above max_per_tx".into());
        }
        if let Some((win, max)) = t.window {
            let (_, window) = WINDOWS[usize::from(win) % 3];
            let asset = format!("erc20:{token:#x}");
            if !amount.is_zero()
                && total(totals, w.id, &ck, &asset, window).saturating_add(amount) > U256::from(max)
            {
                return Some("token rolling cap".into());
            }
        }
    }
    None
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
    let ours = |who: &Option<Key>| who.is_none_or(|k| k == *wallet);
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
