//! What a transaction's call data does, call by call: wrappers (multicalls, account
//! `execute`) are replaced by the calls they make ([`crate::chains::evm::wrappers`]), and
//! each of those is decoded into the token movements policy prices, an NFT transfer
//! (recipient known, amount not priceable), or nothing known.

use alloy_primitives::{Address, U256};

use super::{unlimited, Movement};
use crate::chains::evm::wrappers::{self, Limits};
use crate::chains::evm::{
    decode_erc20, decode_nft, decode_permit2, Erc20Call, NftCall, Permit2Call, ERC20_SELECTORS,
    NFT_SELECTORS, PERMIT2,
};

/// What one call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// No call data: a plain transfer of the call's value (if any).
    Plain,
    /// Decoded token transfers and allowances (possibly none: a revoke).
    Moves(Vec<Movement>),
    /// An ERC-721 / ERC-1155 safe transfer to this recipient: its amount is not priced.
    NftTransfer(Address),
    /// Call data the engine does not decode.
    Unknown,
}

/// One call the transaction makes (the transaction's own, or one inside a wrapper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Leaf {
    /// Target.
    pub(super) to: Address,
    /// Wei it sends.
    pub(super) value: U256,
    /// Its selector, when it has call data of at least 4 bytes.
    pub(super) selector: Option<[u8; 4]>,
    /// Bytes of call data.
    pub(super) data_len: usize,
    /// Inside a wrapper.
    pub(super) wrapped: bool,
    /// What it does.
    pub(super) effect: Effect,
}

/// The calls of one transaction and the wei they send in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Calls {
    pub(super) leaves: Vec<Leaf>,
    /// The transaction's `value` plus what each wrapped call sends from the account.
    pub(super) native: U256,
}

impl Calls {
    /// Every decoded movement, in call order.
    pub(super) fn movements(&self) -> impl Iterator<Item = (&Leaf, &Movement)> {
        self.leaves.iter().flat_map(|l| match &l.effect {
            Effect::Moves(m) => m.iter().map(move |m| (l, m)).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    }
}

/// The calls `to` with `value` and `data` makes; `Err` for call data that looks like a
/// known call (a wrapper, an ERC-20, Permit2 or NFT function) but does not decode, or
/// wrappers past [`Limits::DEFAULT`].
pub(super) fn calls(to: Address, value: U256, data: &[u8]) -> Result<Calls, String> {
    let flat = wrappers::flatten(to, value, data, &Limits::DEFAULT)?;
    let mut native = value;
    let mut leaves = Vec::with_capacity(flat.len());
    for c in flat {
        if c.depth > 0 {
            native = native.saturating_add(c.value);
        }
        leaves.push(Leaf {
            to: c.to,
            value: c.value,
            selector: c.data.get(..4).and_then(|s| s.try_into().ok()),
            data_len: c.data.len(),
            wrapped: c.depth > 0,
            effect: effect(c.to, &c.data)?,
        });
    }
    Ok(Calls { leaves, native })
}

fn effect(to: Address, data: &[u8]) -> Result<Effect, String> {
    if data.is_empty() {
        return Ok(Effect::Plain);
    }
    let Some(sel) = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return Ok(Effect::Unknown);
    };
    if to == PERMIT2 {
        return Ok(decode_permit2(data).map_or(Effect::Unknown, |c| Effect::Moves(permit2(c))));
    }
    if ERC20_SELECTORS.contains(&sel) {
        let call = decode_erc20(data).ok_or_else(|| {
            format!(
                "call data has the ERC-20 selector 0x{} but its arguments do not decode",
                hex::encode(sel)
            )
        })?;
        return Ok(Effect::Moves(erc20(to, call)));
    }
    if NFT_SELECTORS.contains(&sel) {
        let call = decode_nft(data).ok_or_else(|| {
            format!(
                "call data has the ERC-721 / ERC-1155 selector 0x{} but its arguments do not decode",
                hex::encode(sel)
            )
        })?;
        return Ok(match call {
            NftCall::SetApprovalForAll { operator, approved } => Effect::Moves(if approved {
                // an operator may move every token of the collection: an unlimited allowance
                vec![Movement {
                    token: to,
                    amount: U256::MAX,
                    party: operator,
                    approval: true,
                    unlimited: true,
                }]
            } else {
                Vec::new()
            }),
            NftCall::Transfer { to: recipient, .. } => Effect::NftTransfer(recipient),
        });
    }
    Ok(Effect::Unknown)
}

fn permit2(call: Permit2Call) -> Vec<Movement> {
    let approval = |token, party, amount| Movement {
        token,
        amount,
        party,
        approval: true,
        unlimited: unlimited(amount, 160),
    };
    match call {
        Permit2Call::Approve {
            token,
            spender,
            amount,
        } => vec![approval(token, spender, amount)],
        Permit2Call::Permit {
            spender, details, ..
        } => details
            .into_iter()
            .map(|(token, amount)| approval(token, spender, amount))
            .collect(),
        Permit2Call::TransferFrom(moves) => moves
            .into_iter()
            .map(|(_, to, amount, token)| Movement {
                token,
                amount,
                party: to,
                approval: false,
                unlimited: false,
            })
            .collect(),
        Permit2Call::Revoke => Vec::new(),
    }
}

fn erc20(token: Address, call: Erc20Call) -> Vec<Movement> {
    let transfer = |party, amount| Movement {
        token,
        amount,
        party,
        approval: false,
        unlimited: false,
    };
    let approval = |party, amount| Movement {
        token,
        amount,
        party,
        approval: true,
        unlimited: unlimited(amount, 256),
    };
    match call {
        Erc20Call::Transfer { to, amount } | Erc20Call::TransferFrom { to, amount, .. } => {
            vec![transfer(to, amount)]
        }
        Erc20Call::Approve { spender, amount }
        | Erc20Call::IncreaseAllowance {
            spender,
            added: amount,
        }
        | Erc20Call::Permit {
            spender,
            value: amount,
            ..
        } => vec![approval(spender, amount)],
        // only lowers an allowance
        Erc20Call::DecreaseAllowance { .. } => Vec::new(),
    }
}
