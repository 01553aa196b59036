//! EVM transaction rules: chain ids, recipients, selectors, contract creation, value,
//! gas and fee caps, ERC-20 amounts and approvals, rolling caps on `value` and tokens.
//!
//! Must never: treat call data it cannot decode as harmless. An ERC-20 selector whose
//! arguments do not decode is refused.

use alloy_primitives::{Address, U256};

use super::rules::{EvmRule, Token};
use super::{Cap, SpendKey};
use crate::chains::evm::{decode_erc20, Erc20Call, UnsignedTx};

const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];

/// Approvals at or above 2^255 are "unlimited": wallets send `type(uint256).max`, and
/// nothing that large is a deliberate finite amount.
fn unlimited(amount: U256) -> bool {
    amount.bit(255)
}

fn chain_key(tx: &UnsignedTx) -> String {
    format!("eip155:{}", tx.chain_id())
}

fn erc20_key(contract: Address) -> String {
    format!("erc20:{contract:#x}")
}

/// `(chain, asset, amount)` moved out by `tx`: its `value`, and ERC-20 transfers.
pub(super) fn spend(tx: &UnsignedTx) -> Vec<(String, String, U256)> {
    let mut out = vec![(chain_key(tx), "native".to_owned(), tx.value())];
    if let (Some(to), Some(call)) = (tx.to(), decode_erc20(tx.data())) {
        match call {
            Erc20Call::Transfer { amount, .. } | Erc20Call::TransferFrom { amount, .. } => {
                out.push((chain_key(tx), erc20_key(to), amount));
            }
            Erc20Call::Approve { .. } => {}
        }
    }
    out
}

fn token_for(rule: &EvmRule, to: Address, chain: u64) -> Option<&Token> {
    rule.tokens
        .iter()
        .find(|t| t.contract == to && t.chain_id.is_none_or(|c| c == chain))
}

fn spent(spend: &[(SpendKey, U256)], chain: &str, asset: &str) -> U256 {
    spend
        .iter()
        .filter(|(k, _)| k.chain == chain && k.asset == asset)
        .map(|(_, a)| *a)
        .fold(U256::ZERO, U256::saturating_add)
}

/// Checks `tx` against `rule`; pushes the rolling caps it must also fit under.
pub(super) fn check(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), String> {
    let chain = tx.chain_id();
    if !rule.chain_ids.is_empty() && !rule.chain_ids.contains(&chain) {
        return Err(format!(
            "chain id {chain} is not in evm.chain_ids {:?}",
            rule.chain_ids
        ));
    }
    let Some(to) = tx.to() else {
        if !rule.contract_creation {
            return Err("contract creation is refused (evm.contract_creation is false)".into());
        }
        return check_amounts(rule, rule_id, wallet, tx, None, spend, caps);
    };
    if rule.to_deny.contains(&to) {
        return Err(format!("recipient {to:#x} is in evm.to_deny"));
    }
    if !rule.to_allow.is_empty() && !rule.to_allow.contains(&to) {
        return Err(format!("recipient {to:#x} is not in evm.to_allow"));
    }
    let data = tx.data();
    if !rule.selectors.is_empty() && !data.is_empty() {
        let Some(sel) = tx.selector() else {
            return Err(format!(
                "call data of {} bytes has no 4-byte selector",
                data.len()
            ));
        };
        let allowed = rule
            .selectors
            .iter()
            .filter(|(t, _)| t.is_none_or(|t| t == to))
            .any(|(_, sels)| sels.contains(&sel));
        if !allowed {
            return Err(format!(
                "function selector 0x{} is not allowed for {to:#x} (evm.selectors)",
                hex::encode(sel)
            ));
        }
    }
    check_amounts(rule, rule_id, wallet, tx, Some(to), spend, caps)
}

fn check_amounts(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    to: Option<Address>,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), String> {
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
            ));
        }
    }
    if let Some(max) = rule.max_gas_limit {
        if tx.gas_limit() > max {
            return Err(format!(
                "gas limit {} exceeds evm.max_gas_limit {max}",
                tx.gas_limit()
            ));
        }
    }
    if let Some(max) = rule.max_fee_per_gas {
        let fee = U256::from(tx.max_fee_per_gas());
        if fee > max {
            return Err(format!(
                "fee per gas {fee} wei exceeds evm.max_fee_per_gas {max} wei"
            ));
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
    let Some(to) = to else { return Ok(()) };
    let Some(sel) = tx.selector() else {
        return Ok(());
    };
    if ![TRANSFER, APPROVE, TRANSFER_FROM].contains(&sel) {
        return Ok(());
    }
    let Some(call) = decode_erc20(tx.data()) else {
        return Err(format!(
            "call data has the ERC-20 selector 0x{} but its arguments do not decode",
            hex::encode(sel)
        ));
    };
    let token = token_for(rule, to, chain);
    let amount = match call {
        Erc20Call::Approve { spender, amount } => {
            if unlimited(amount) && !token.is_some_and(|t| t.unlimited_approval) {
                return Err(format!(
                    "unlimited ERC-20 approval of {to:#x} to {spender:#x} is refused (evm.token.unlimited_approval)"
                ));
            }
            amount
        }
        Erc20Call::Transfer { amount, .. } | Erc20Call::TransferFrom { amount, .. } => amount,
    };
    let Some(token) = token else { return Ok(()) };
    if let Some(max) = token.max_per_tx {
        if amount > max && !(unlimited(amount) && token.unlimited_approval) {
            return Err(format!(
                "ERC-20 amount {amount} of token {to:#x} exceeds evm.token.max_per_tx {max}"
            ));
        }
    }
    if let (Some((window_ms, limit)), false) =
        (token.window, matches!(call, Erc20Call::Approve { .. }))
    {
        let asset = erc20_key(to);
        caps.push(Cap {
            rule: rule_id.to_owned(),
            amount: spent(spend, &ck, &asset),
            key: SpendKey {
                wallet: wallet.to_owned(),
                chain: ck,
                asset,
            },
            window_ms,
            limit,
        });
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
}
