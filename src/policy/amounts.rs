//! Amounts as the operator writes them in the policy: a base-unit integer, or a decimal
//! with a unit of the chain the key counts for. Must never: accept a unit of the other
//! chain (`"1 ether"` of lamports is 10^18 lamports: no cap at all).

use alloy_primitives::U256;

use super::rules::{err, PolicyError};

/// Whose units an amount key counts in: a key of an `evm` section takes `wei`, `gwei`,
/// `ether`/`eth`; a key of a `solana` section takes `lamports`, `sol`. A unit of the
/// other chain is refused, naming the key: `"1 ether"` of lamports would be 10^18
/// lamports, which caps nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Units {
    Evm,
    Solana,
}

impl Units {
    const EVM: &'static [(&'static str, u32)] =
        &[("ether", 18), ("eth", 18), ("gwei", 9), ("wei", 0)];
    const SOLANA: &'static [(&'static str, u32)] = &[("sol", 9), ("lamports", 0)];

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Units::Evm => Self::EVM,
            Units::Solana => Self::SOLANA,
        }
    }

    fn names(self) -> &'static str {
        match self {
            Units::Evm => "wei, gwei, ether",
            Units::Solana => "lamports, sol",
        }
    }

    fn chain(self) -> &'static str {
        match self {
            Units::Evm => "an EVM",
            Units::Solana => "a Solana",
        }
    }

    fn other(self) -> Units {
        match self {
            Units::Evm => Units::Solana,
            Units::Solana => Units::Evm,
        }
    }
}

/// An amount: a base-unit integer, or a decimal with a unit of the key's chain (`units`).
pub(crate) fn amount(s: &str, units: Units, key: &str) -> Result<U256, PolicyError> {
    let bad = || {
        err(
            key,
            format!(
                "{s:?} is not an amount: a base-unit integer or a number with a unit ({})",
                units.names()
            ),
        )
    };
    let t = s.trim().replace('_', "");
    let (num, exp) = match t.split_once(' ') {
        None => (t.as_str(), 0u32),
        Some((n, unit)) => {
            let unit = unit.trim();
            let find = |u: Units| u.table().iter().find(|(name, _)| *name == unit);
            match (find(units), find(units.other())) {
                (Some((_, exp)), _) => (n, *exp),
                (None, Some(_)) => {
                    return Err(err(
                        key,
                        format!(
                            "{s:?} is in {} unit, and this key is {} amount: write it in {} or as a base-unit integer",
                            units.other().chain(),
                            units.chain(),
                            units.names()
                        ),
                    ))
                }
                (None, None) => return Err(bad()),
            }
        }
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > exp as usize
    {
        return Err(bad());
    }
    let digits = format!("{int}{frac}{}", "0".repeat(exp as usize - frac.len()));
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(U256::ZERO);
    }
    U256::from_str_radix(digits, 10).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_with_units() {
        let evm = |s: &str| amount(s, Units::Evm, "k");
        let sol = |s: &str| amount(s, Units::Solana, "k");
        assert_eq!(evm("1").unwrap(), U256::from(1));
        assert_eq!(sol("1").unwrap(), U256::from(1));
        assert_eq!(
            evm("1.5 ether").unwrap(),
            U256::from(1_500_000_000_000_000_000u128)
        );
        assert_eq!(evm("1 eth").unwrap(), evm("1 ether").unwrap());
        assert_eq!(evm("30 gwei").unwrap(), U256::from(30_000_000_000u64));
        assert_eq!(evm("7 wei").unwrap(), U256::from(7));
        assert_eq!(sol("2 sol").unwrap(), U256::from(2_000_000_000u64));
        assert_eq!(sol("5 lamports").unwrap(), U256::from(5));
        assert_eq!(evm("1_000").unwrap(), U256::from(1000));
        for bad in [
            "",
            "x",
            "1.5",
            "1e18",
            "1 btc",
            "0.0000000001 sol",
            "-1",
            "1 SOL",
        ] {
            let e = sol(bad).unwrap_err();
            assert_eq!(e.key, "k", "{bad}");
            assert!(e.message.contains("(lamports, sol)"), "{bad}: {e}");
        }
        assert!(evm("1 btc")
            .unwrap_err()
            .message
            .contains("(wei, gwei, ether)"));
    }

    #[test]
    fn a_unit_of_the_other_chain_is_refused_naming_the_key() {
        for unit in ["ether", "eth", "gwei", "wei"] {
            let e = amount(
                &format!("1 {unit}"),
                Units::Solana,
                "rule[0](s).solana.max_lamports_per_tx",
            )
            .unwrap_err();
            assert_eq!(e.key, "rule[0](s).solana.max_lamports_per_tx");
            assert_eq!(
                e.message,
                format!("\"1 {unit}\" is in an EVM unit, and this key is a Solana amount: write it in lamports, sol or as a base-unit integer")
            );
        }
        for unit in ["sol", "lamports"] {
            let e = amount(
                &format!("2 {unit}"),
                Units::Evm,
                "rule[0](e).evm.max_value.1",
            )
            .unwrap_err();
            assert_eq!(e.key, "rule[0](e).evm.max_value.1");
            assert_eq!(
                e.message,
                format!("\"2 {unit}\" is in a Solana unit, and this key is an EVM amount: write it in wei, gwei, ether or as a base-unit integer")
            );
        }
    }
}
