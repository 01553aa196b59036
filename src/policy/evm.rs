//! EVM transaction rules: chain ids, recipients, selectors, contract creation, value,
//! gas and fee caps, ERC-20 and Permit2 amounts and approvals, rolling caps on `value`
//! and tokens.
//!
//! Must never: treat call data it cannot decode as harmless. An ERC-20 selector whose
//! arguments do not decode is refused; at a token contract with an `[[evm.token]]` entry
//! and at Permit2 only decoded selectors (or ones `evm.selectors` lists for that
//! contract) pass, others are refused with [`UNPRICED_CALL`]. Approvals are spend: an
//! allowance counts against the same caps as a transfer of that amount.

use alloy_primitives::{Address, U256};

use super::rules::{EvmRule, Token};
use super::{Cap, Refuse, SpendKey, UNPRICED_CALL};
use crate::chains::evm::{
    decode_erc20, decode_permit2, Erc20Call, Permit2Call, UnsignedTx, ERC20_SELECTORS, PERMIT2,
};

/// Approvals with the top bit of their width set are "unlimited": wallets send the
/// type's maximum (`uint256` for tokens, `uint160` for Permit2), and nothing that large is
/// a deliberate finite amount.
fn unlimited(amount: U256, bits: usize) -> bool {
    amount.bit(bits - 1) || amount.bit(255)
}

fn chain_key(tx: &UnsignedTx) -> String {
    format!("eip155:{}", tx.chain_id())
}

fn erc20_key(contract: Address) -> String {
    format!("erc20:{contract:#x}")
}

/// One token movement or allowance a call makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Movement {
    /// The token contract.
    pub(super) token: Address,
    /// Amount moved or allowed.
    pub(super) amount: U256,
    /// The recipient or spender (checked against `to_allow` / `to_deny`).
    pub(super) party: Address,
    /// An allowance rather than a transfer.
    pub(super) approval: bool,
    /// An allowance at the type's maximum.
    pub(super) unlimited: bool,
}

impl Movement {
    /// What it adds to the token's spend counter: nothing for an unlimited approval,
    /// which is refused or else explicitly exempt.
    pub(super) fn counted(&self) -> U256 {
        if self.unlimited {
            U256::ZERO
        } else {
            self.amount
        }
    }
}

/// What `tx`'s call data does to tokens: `Ok(None)` when it is not a call policy prices,
/// `Err` naming the selector when it looks like one but does not decode.
fn movements(tx: &UnsignedTx) -> Result<Option<Vec<Movement>>, String> {
    let (Some(to), Some(sel)) = (tx.to(), tx.selector()) else {
        return Ok(None);
    };
    let data = tx.data();
    if to == PERMIT2 {
        let Some(call) = decode_permit2(data) else {
            return Ok(None);
        };
        let approval = |token, party, amount| Movement {
            token,
            amount,
            party,
            approval: true,
            unlimited: unlimited(amount, 160),
        };
        return Ok(Some(match call {
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
        }));
    }
    if !ERC20_SELECTORS.contains(&sel) {
        return Ok(None);
    }
    let Some(call) = decode_erc20(data) else {
        return Err(format!(
            "call data has the ERC-20 selector 0x{} but its arguments do not decode",
            hex::encode(sel)
        ));
    };
    let transfer = |party, amount| Movement {
        token: to,
        amount,
        party,
        approval: false,
        unlimited: false,
    };
    let approval = |party, amount| Movement {
        token: to,
        amount,
        party,
        approval: true,
        unlimited: unlimited(amount, 256),
    };
    Ok(Some(match call {
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
    }))
}

/// `(chain, asset, amount)` moved out or approved by `tx`: its `value`, and ERC-20 /
/// Permit2 transfers and allowances.
pub(super) fn spend(tx: &UnsignedTx) -> Vec<(String, String, U256)> {
    let mut out = vec![(chain_key(tx), "native".to_owned(), tx.value())];
    if let Ok(Some(moves)) = movements(tx) {
        for m in moves {
            out.push((chain_key(tx), erc20_key(m.token), m.counted()));
        }
    }
    out
}

fn token_for(rule: &EvmRule, contract: Address, chain: u64) -> Option<&Token> {
    rule.tokens
        .iter()
        .find(|t| t.contract == contract && t.chain_id.is_none_or(|c| c == chain))
}

fn spent(spend: &[(SpendKey, U256)], chain: &str, asset: &str) -> U256 {
    spend
        .iter()
        .filter(|(k, _)| k.chain == chain && k.asset == asset)
        .map(|(_, a)| *a)
        .fold(U256::ZERO, U256::saturating_add)
}

fn selector_listed(rule: &EvmRule, to: Address, sel: [u8; 4]) -> bool {
    rule.selectors
        .iter()
        .filter(|(t, _)| t.is_none_or(|t| t == to))
        .any(|(_, sels)| sels.contains(&sel))
}

/// Checks `tx` against `rule`; pushes the rolling caps it must also fit under.
pub(super) fn check(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    let chain = tx.chain_id();
    if !rule.chain_ids.is_empty() && !rule.chain_ids.contains(&chain) {
        return Err(format!(
            "chain id {chain} is not in evm.chain_ids {:?}",
            rule.chain_ids
        )
        .into());
    }
    let Some(to) = tx.to() else {
        if !rule.contract_creation {
            return Err("contract creation is refused (evm.contract_creation is false)".into());
        }
        return check_amounts(rule, rule_id, wallet, tx, &[], spend, caps);
    };
    check_party(rule, to, "recipient")?;
    let data = tx.data();
    if !rule.selectors.is_empty() && !data.is_empty() {
        let Some(sel) = tx.selector() else {
            return Err(format!("call data of {} bytes has no 4-byte selector", data.len()).into());
        };
        if !selector_listed(rule, to, sel) {
            return Err(format!(
                "function selector 0x{} is not allowed for {to:#x} (evm.selectors)",
                hex::encode(sel)
            )
            .into());
        }
    }
    let moves = match movements(tx) {
        Ok(m) => m,
        Err(reason) => return Err(Refuse::builtin(UNPRICED_CALL, reason)),
    };
    if moves.is_none() && !data.is_empty() {
        // a capped token and Permit2 can move the wallet's tokens through any function:
        // only what is decoded, or what the operator lists for that contract, passes
        let guarded = to == PERMIT2 || token_for(rule, to, chain).is_some();
        let listed = tx.selector().is_some_and(|s| selector_listed(rule, to, s));
        if guarded && !listed {
            let what = tx.selector().map_or_else(
                || format!("{} bytes of call data without a selector", data.len()),
                |s| format!("selector 0x{}", hex::encode(s)),
            );
            let whom = if to == PERMIT2 {
                "Permit2".to_owned()
            } else {
                "a token with an evm.token cap".to_owned()
            };
            return Err(Refuse::builtin(
                UNPRICED_CALL,
                format!(
                    "call to {to:#x} ({whom}) with {what} cannot be priced; it is refused unless evm.selectors lists it for that contract"
                ),
            ));
        }
    }
    let moves = moves.unwrap_or_default();
    for m in &moves {
        check_party(
            rule,
            m.party,
            if m.approval { "spender" } else { "recipient" },
        )?;
        if m.unlimited && !token_for(rule, m.token, chain).is_some_and(|t| t.unlimited_approval) {
            return Err(format!(
                "unlimited allowance of token {:#x} to {:#x} is refused (evm.token.unlimited_approval)",
                m.token, m.party
            )
            .into());
        }
    }
    check_amounts(rule, rule_id, wallet, tx, &moves, spend, caps)
}

/// `to_deny` / `to_allow` for the transaction's `to` and for every decoded recipient and
/// spender.
fn check_party(rule: &EvmRule, who: Address, role: &str) -> Result<(), Refuse> {
    if rule.to_deny.contains(&who) {
        return Err(format!("{role} {who:#x} is in evm.to_deny").into());
    }
    if !rule.to_allow.is_empty() && !rule.to_allow.contains(&who) {
        return Err(format!("{role} {who:#x} is not in evm.to_allow").into());
    }
    Ok(())
}

fn check_amounts(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    moves: &[Movement],
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    let chain = tx.chain_id();
    let value = tx.value();
    // a cap for this exact chain wins over "*"
    let cap = rule
        .max_value
        .iter()
        .find(|(c, _)| *c == Some(chain))
        .or_else(|| rule.max_value.iter().find(|(c, _)| c.is_none()));
    if let Some((_, max)) = cap {
        if value > *max {
            return Err(format!(
                "value {value} wei exceeds evm.max_value {max} wei for chain {chain}"
            )
            .into());
        }
    }
    if let Some(max) = rule.max_gas_limit {
        if tx.gas_limit() > max {
            return Err(format!(
                "gas limit {} exceeds evm.max_gas_limit {max}",
                tx.gas_limit()
            )
            .into());
        }
    }
    if let Some(max) = rule.max_fee_per_gas {
        let fee = U256::from(tx.max_fee_per_gas());
        if fee > max {
            return Err(
                format!("fee per gas {fee} wei exceeds evm.max_fee_per_gas {max} wei").into(),
            );
        }
    }
    let ck = chain_key(tx);
    for (c, window_ms, limit) in &rule.spend {
        if *c == chain {
            caps.push(Cap {
                rule: rule_id.to_owned(),
                key: SpendKey {
                    wallet: wallet.to_owned(),
                    chain: ck.clone(),
                    asset: "native".into(),
                },
                window_ms: *window_ms,
                limit: *limit,
                amount: spent(spend, &ck, "native"),
            });
        }
    }
    let mut seen: Vec<Address> = Vec::new();
    for m in moves {
        if seen.contains(&m.token) {
            continue;
        }
        seen.push(m.token);
        let Some(token) = token_for(rule, m.token, chain) else {
            continue;
        };
        let asset = erc20_key(m.token);
        // every transfer and allowance of this token in the transaction, together
        let amount = spent(spend, &ck, &asset);
        if let Some(max) = token.max_per_tx {
            if amount > max {
                return Err(format!(
                    "ERC-20 amount {amount} of token {:#x} (transfers and allowances) exceeds evm.token.max_per_tx {max}",
                    m.token
                )
                .into());
            }
        }
        if let Some((window_ms, limit)) = token.window {
            caps.push(Cap {
                rule: rule_id.to_owned(),
                amount,
                key: SpendKey {
                    wallet: wallet.to_owned(),
                    chain: ck.clone(),
                    asset,
                },
                window_ms,
                limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Subject, Totals};
    use super::*;
    use crate::chains::evm::parse_transaction;
    use serde_json::json;

    const TOKEN: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    const BOB: &str = "0x00000000000000000000000000000000000000b0";

    fn tx(to: Option<&str>, value: u128, data: &str) -> Subject {
        let mut t = json!({
            "type": "0x2", "chainId": "0x1", "nonce": "0x0", "gas": "0x30000",
            "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1",
            "value": format!("{value:#x}"), "data": data,
        });
        if let Some(to) = to {
            t["to"] = json!(to);
        }
        Subject::EvmTransaction(Box::new(parse_transaction(&t, 1 << 16).expect("tx parses")))
    }

    fn erc20(sel: &str, amount: U256) -> String {
        let mut d = sel.to_owned();
        d.push_str(&format!("{:0>64}", &BOB[2..]));
        d.push_str(&format!("{:064x}", amount));
        d
    }

    fn deny_reason(p: &super::super::Policy, s: &Subject) -> String {
        let d = decide(p, "c", "evm", s, &Totals::new());
        d.denial.expect("denied").reason
    }

    #[test]
    fn chain_ids() {
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nchain_ids = [8453]\n");
        assert!(deny_reason(&p, &tx(Some(BOB), 0, "0x")).contains("chain id 1"));
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nchain_ids = [1]\n");
        assert!(decide(&p, "c", "evm", &tx(Some(BOB), 0, "0x"), &Totals::new()).allowed());
    }

    #[test]
    fn recipients_and_creation() {
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nto_allow = [\"{BOB}\"]\nto_deny = [\"{TOKEN}\"]\n"
        ));
        assert!(decide(&p, "c", "evm", &tx(Some(BOB), 1, "0x"), &Totals::new()).allowed());
        assert!(deny_reason(&p, &tx(Some(TOKEN), 1, "0x")).contains("to_deny"));
        assert!(deny_reason(
            &p,
            &tx(Some("0x00000000000000000000000000000000000000b1"), 1, "0x")
        )
        .contains("to_allow"));
        assert!(deny_reason(&p, &tx(None, 0, "0x6000")).contains("contract creation"));
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\ncontract_creation = true\n");
        assert!(decide(&p, "c", "evm", &tx(None, 0, "0x6000"), &Totals::new()).allowed());
    }

    #[test]
    fn selectors_per_contract() {
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm.selectors]\n\"{TOKEN}\" = [\"0xa9059cbb\"]\n"
        ));
        let t = erc20("0xa9059cbb", U256::from(5));
        assert!(decide(&p, "c", "evm", &tx(Some(TOKEN), 0, &t), &Totals::new()).allowed());
        let a = erc20("0x095ea7b3", U256::from(5));
        assert!(deny_reason(&p, &tx(Some(TOKEN), 0, &a)).contains("0x095ea7b3"));
        assert!(deny_reason(&p, &tx(Some(BOB), 0, &t)).contains("not allowed"));
        assert!(deny_reason(&p, &tx(Some(TOKEN), 0, "0xa905")).contains("no 4-byte selector"));
        // plain transfers carry no selector
        assert!(decide(&p, "c", "evm", &tx(Some(BOB), 7, "0x"), &Totals::new()).allowed());
    }

    #[test]
    fn value_cap_boundary_per_chain() {
        let p = policy(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nmax_value = { \"1\" = \"1000\", \"*\" = \"1\" }\n",
        );
        assert!(decide(&p, "c", "evm", &tx(Some(BOB), 1000, "0x"), &Totals::new()).allowed());
        assert!(deny_reason(&p, &tx(Some(BOB), 1001, "0x")).contains("exceeds evm.max_value 1000"));
    }

    #[test]
    fn gas_and_fee_caps() {
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nmax_gas_limit = 196608\nmax_fee_per_gas = \"1 gwei\"\n");
        assert!(decide(&p, "c", "evm", &tx(Some(BOB), 0, "0x"), &Totals::new()).allowed());
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nmax_gas_limit = 196607\n");
        assert!(deny_reason(&p, &tx(Some(BOB), 0, "0x")).contains("gas limit"));
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nmax_fee_per_gas = \"999999999\"\n");
        assert!(deny_reason(&p, &tx(Some(BOB), 0, "0x")).contains("fee per gas"));
    }

    #[test]
    fn erc20_caps_and_unlimited_approvals() {
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\nmax_per_tx = \"100\"\nwindow = \"1h\"\nmax_per_window = \"150\"\n"
        ));
        let ok = tx(Some(TOKEN), 0, &erc20("0xa9059cbb", U256::from(100)));
        assert!(decide(&p, "c", "evm", &ok, &Totals::new()).allowed());
        let big = tx(Some(TOKEN), 0, &erc20("0xa9059cbb", U256::from(101)));
        assert!(deny_reason(&p, &big).contains("max_per_tx 100"));
        // window: 60 already spent, 100 more exceeds 150
        let d = decide(&p, "c", "evm", &ok, &Totals::new());
        let q = d.queries();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].0.asset, format!("erc20:{TOKEN}"));
        let mut totals = Totals::new();
        totals.insert(q[0].clone(), U256::from(50));
        assert!(decide(&p, "c", "evm", &ok, &totals).allowed());
        totals.insert(q[0].clone(), U256::from(51));
        assert!(!decide(&p, "c", "evm", &ok, &totals).allowed());
        let unl = tx(Some(TOKEN), 0, &erc20("0x095ea7b3", U256::MAX));
        assert!(deny_reason(&p, &unl).contains("unlimited"));
        // any contract, even one without a token entry
        let other = tx(Some(BOB), 0, &erc20("0x095ea7b3", U256::MAX));
        assert!(deny_reason(&p, &other).contains("unlimited"));
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\nunlimited_approval = true\n"
        ));
        assert!(decide(&p, "c", "evm", &unl, &Totals::new()).allowed());
        // malformed arguments behind an ERC-20 selector
        assert!(deny_reason(&p, &tx(Some(TOKEN), 0, "0xa9059cbb00")).contains("do not decode"));
    }

    #[test]
    fn rolling_value_cap_records_value() {
        let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\n[[rule.evm.spend]]\nchain_id = 1\nwindow = \"24h\"\nmax = \"1000\"\n");
        assert!(p.records_spend());
        let s = tx(Some(BOB), 400, "0x");
        let d = decide(&p, "c", "evm", &s, &Totals::new());
        assert_eq!(d.spend.len(), 1);
        assert_eq!(d.spend[0].1, U256::from(400));
        let mut totals = Totals::new();
        totals.insert(d.queries()[0].clone(), U256::from(600));
        assert!(decide(&p, "c", "evm", &s, &totals).allowed());
        totals.insert(d.queries()[0].clone(), U256::from(601));
        assert_eq!(
            decide(&p, "c", "evm", &s, &totals).denial.unwrap().rule,
            "e"
        );
    }

    // --- every selector family, with call data from alloy `sol!` encoders declared here ---

    use crate::policy::UNPRICED_CALL;
    use alloy_primitives::aliases::{U160, U48};
    use alloy_sol_types::{sol, SolCall};

    sol! {
        interface Token {
            function transfer(address, uint256);
            function approve(address, uint256);
            function increaseAllowance(address, uint256);
            function decreaseAllowance(address, uint256);
            function permit(address, address, uint256, uint256, uint8, bytes32, bytes32);
            function multicall(bytes[] calls);
        }
        interface P2 {
            function approve(address, address, uint160, uint48);
            function transferFrom(address, address, uint160, address);
            function permitTransferFrom(bytes blob);
        }
    }

    const PERMIT2_HEX: &str = "0x000000000022d473030f116ddee9f6b43ac78ba3";

    fn addr(s: &str) -> Address {
        s.parse().unwrap()
    }

    fn call(data: Vec<u8>) -> String {
        format!("0x{}", hex::encode(data))
    }

    fn capped() -> super::super::Policy {
        policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nto_deny = [\"0x00000000000000000000000000000000000000dd\"]\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\nmax_per_tx = \"100\"\nwindow = \"1h\"\nmax_per_window = \"150\"\n"
        ))
    }

    fn refusal(p: &super::super::Policy, to: &str, data: Vec<u8>) -> Option<(String, String)> {
        decide(p, "c", "evm", &tx(Some(to), 0, &call(data)), &Totals::new())
            .denial
            .map(|d| (d.rule, d.reason))
    }

    #[test]
    fn allowances_are_priced_like_transfers() {
        let p = capped();
        let bob = addr(BOB);
        for data in [
            Token::approveCall {
                _0: bob,
                _1: U256::from(100),
            }
            .abi_encode(),
            Token::increaseAllowanceCall {
                _0: bob,
                _1: U256::from(100),
            }
            .abi_encode(),
            Token::permitCall {
                _0: bob,
                _1: bob,
                _2: U256::from(100),
                _3: U256::from(1),
                _4: 27,
                _5: Default::default(),
                _6: Default::default(),
            }
            .abi_encode(),
        ] {
            assert_eq!(refusal(&p, TOKEN, data.clone()), None);
            let mut over = data.clone();
            // amount word of the approval: 100 -> 101
            let at = if data[..4] == Token::permitCall::SELECTOR {
                4 + 3 * 32 - 1
            } else {
                4 + 2 * 32 - 1
            };
            over[at] = 101;
            let (rule, reason) = refusal(&p, TOKEN, over).expect("over the cap");
            assert_eq!(rule, "e");
            assert!(reason.contains("max_per_tx 100"), "{reason}");
            // and the rolling window counts it
            let s = tx(Some(TOKEN), 0, &call(data));
            let d = decide(&p, "c", "evm", &s, &Totals::new());
            let q = d.queries();
            assert_eq!(q.len(), 1);
            let mut t = Totals::new();
            t.insert(q[0].clone(), U256::from(51));
            assert!(!decide(&p, "c", "evm", &s, &t).allowed());
        }
        // lowering an allowance moves nothing
        let dec = Token::decreaseAllowanceCall {
            _0: bob,
            _1: U256::MAX,
        }
        .abi_encode();
        assert_eq!(refusal(&p, TOKEN, dec), None);
    }

    #[test]
    fn unlimited_increase_allowance_is_refused() {
        let data = Token::increaseAllowanceCall {
            _0: addr(BOB),
            _1: U256::MAX,
        }
        .abi_encode();
        let (rule, reason) = refusal(&capped(), TOKEN, data.clone()).unwrap();
        assert_eq!(rule, "e");
        assert!(reason.contains("unlimited"), "{reason}");
        // at any contract, not only capped tokens
        assert!(refusal(&capped(), BOB, data)
            .unwrap()
            .1
            .contains("unlimited"));
    }

    #[test]
    fn other_selectors_at_a_capped_token_are_unpriced() {
        let inner = Token::transferCall {
            _0: addr(BOB),
            _1: U256::from(10_000),
        }
        .abi_encode();
        let multicall = Token::multicallCall {
            calls: vec![inner.into()],
        }
        .abi_encode();
        let (rule, reason) = refusal(&capped(), TOKEN, multicall.clone()).unwrap();
        assert_eq!(rule, UNPRICED_CALL);
        assert!(reason.contains("0xac9650d8"), "{reason}");
        // a contract without a token entry is priced by value only
        assert_eq!(refusal(&capped(), BOB, multicall.clone()), None);
        // listed for that contract: the operator accepts it unpriced
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nselectors = {{ \"{TOKEN}\" = [\"0xac9650d8\", \"0xa9059cbb\"] }}\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\nmax_per_tx = \"100\"\n"
        ));
        assert_eq!(refusal(&p, TOKEN, multicall), None);
        // no selector at all (a fallback call) at a capped token
        assert_eq!(
            refusal(&capped(), TOKEN, vec![1, 2]).unwrap().0,
            UNPRICED_CALL
        );
    }

    #[test]
    fn permit2_allowances_and_transfers_are_priced_on_the_token() {
        let p = capped();
        let token = addr(TOKEN);
        let bob = addr(BOB);
        let approve = |amount: U160| {
            P2::approveCall {
                _0: token,
                _1: bob,
                _2: amount,
                _3: U48::from(1u64),
            }
            .abi_encode()
        };
        assert_eq!(refusal(&p, PERMIT2_HEX, approve(U160::from(100u64))), None);
        let (rule, reason) = refusal(&p, PERMIT2_HEX, approve(U160::from(101u64))).unwrap();
        assert_eq!(rule, "e");
        assert!(reason.contains("max_per_tx"), "{reason}");
        let (rule, reason) = refusal(&p, PERMIT2_HEX, approve(U160::MAX)).unwrap();
        assert_eq!(rule, "e");
        assert!(reason.contains("unlimited"), "{reason}");
        let d = decide(
            &p,
            "c",
            "evm",
            &tx(Some(PERMIT2_HEX), 0, &call(approve(U160::from(7u64)))),
            &Totals::new(),
        );
        assert_eq!(d.spend[0].0.asset, format!("erc20:{TOKEN}"));
        assert_eq!(d.spend[0].1, U256::from(7));
        let pull = P2::transferFromCall {
            _0: bob,
            _1: bob,
            _2: U160::from(101u64),
            _3: token,
        }
        .abi_encode();
        assert!(refusal(&p, PERMIT2_HEX, pull)
            .unwrap()
            .1
            .contains("max_per_tx"));
        // any other Permit2 function is refused, in every evm rule
        let other = P2::permitTransferFromCall {
            blob: vec![1u8].into(),
        }
        .abi_encode();
        let plain = policy("[[rule]]\nid = \"e\"\nevm = {}\n");
        assert_eq!(
            refusal(&plain, PERMIT2_HEX, other).unwrap().0,
            UNPRICED_CALL
        );
    }

    #[test]
    fn decoded_recipients_and_spenders_meet_the_address_lists() {
        let dead = addr("0x00000000000000000000000000000000000000dd");
        let p = capped();
        let t = Token::transferCall {
            _0: dead,
            _1: U256::from(1),
        }
        .abi_encode();
        let (rule, reason) = refusal(&p, TOKEN, t).unwrap();
        assert_eq!(rule, "e");
        assert!(
            reason
                .contains("recipient 0x00000000000000000000000000000000000000dd is in evm.to_deny"),
            "{reason}"
        );
        let a = Token::approveCall {
            _0: dead,
            _1: U256::from(1),
        }
        .abi_encode();
        assert!(refusal(&p, TOKEN, a).unwrap().1.contains("spender"));
        let p2 = P2::approveCall {
            _0: addr(TOKEN),
            _1: dead,
            _2: U160::from(1u64),
            _3: U48::from(1u64),
        }
        .abi_encode();
        assert!(refusal(&p, PERMIT2_HEX, p2).unwrap().1.contains("spender"));
        // to_allow: the token contract and the recipient must both be listed
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nto_allow = [\"{TOKEN}\"]\n"
        ));
        let t = Token::transferCall {
            _0: addr(BOB),
            _1: U256::from(1),
        }
        .abi_encode();
        assert!(refusal(&p, TOKEN, t.clone())
            .unwrap()
            .1
            .contains("not in evm.to_allow"));
        let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nto_allow = [\"{TOKEN}\", \"{BOB}\"]\n"
        ));
        assert_eq!(refusal(&p, TOKEN, t), None);
    }
}
