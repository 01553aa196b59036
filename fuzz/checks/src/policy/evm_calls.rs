//! The EVM calls the policy check generates (ERC-20, NFT, unknown call data, nested
//! wrappers), their ABI encoding (alloy's `DynSolValue`, not keyward's decoders), the deny
//! model for a transaction under one generated `evm` rule, and the differential check of
//! keyward's wrapper decoder against the generator's own calls.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};
use arbitrary::Arbitrary;
use keyward::chains::evm;
use keyward::policy::{Totals, WalletRef};

use super::{addr, total, GenEvmRule, GenToken, CHAINS, SELECTORS, WINDOWS};

#[derive(Arbitrary, Debug)]
pub(super) enum Amount {
    Small(u64),
    Huge([u8; 32]),
}

impl Amount {
    pub(super) fn value(&self) -> U256 {
        match self {
            Amount::Small(n) => U256::from(*n),
            Amount::Huge(b) => U256::from_be_bytes(*b),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub(super) enum GenCall {
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
    pub(super) fn data(&self) -> Vec<u8> {
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

/// keyward's wrapper decoder against the generator's own model of the calls: the same
/// calls, targets, values, depths and bytes, or an error exactly when the model is past
/// the bounds; and cut or corrupted encodings never panic nor pass the bounds.
pub(super) fn flatten_matches(call: &GenCall, to: Address, tx: &evm::UnsignedTx) {
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

impl GenEvmRule {
    pub(super) fn caps_anything(&self) -> bool {
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

pub(super) fn evm_denies(
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
