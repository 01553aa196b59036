//! EIP-712 rules: domain allowlist and primary-type allow/deny lists. The default refusal
//! of spending primary types is in `policy.rs`, because it applies even when no rule
//! covers the request.

use super::rules::{Domain, TypedDataRule};
use crate::chains::evm::TypedDataInfo;

fn domain_matches(d: &Domain, info: &TypedDataInfo) -> bool {
    d.name
        .as_ref()
        .is_none_or(|n| info.domain_name.as_ref() == Some(n))
        && d.version
            .as_ref()
            .is_none_or(|v| info.domain_version.as_ref() == Some(v))
        && d.chain_id.is_none_or(|c| info.domain_chain_id == Some(c))
        && d.verifying_contract
            .is_none_or(|a| info.domain_verifying_contract == Some(a))
}

pub(super) fn check(rule: &TypedDataRule, info: &TypedDataInfo) -> Result<(), String> {
    if rule.deny_primary_types.contains(&info.primary_type) {
        return Err(format!(
            "primary type {:?} is in typed_data.deny_primary_types",
            info.primary_type
        ));
    }
    if !rule.domains.is_empty() && !rule.domains.iter().any(|d| domain_matches(d, info)) {
        return Err(format!(
            "EIP-712 domain (name {:?}, version {:?}, chainId {:?}, verifyingContract {}) is not in typed_data.domains",
            info.domain_name,
            info.domain_version,
            info.domain_chain_id,
            info.domain_verifying_contract
                .map_or("none".to_string(), |a| format!("{a:#x}"))
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Subject, Totals};
    use crate::chains::evm::typed_data;
    use serde_json::json;

    const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

    fn permit(primary: &str, chain: u64) -> Subject {
        let td = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
                ],
                primary: [
                    {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"}
                ]
            },
            "primaryType": primary,
            "domain": {"name": "USD Coin", "version": "2", "chainId": chain, "verifyingContract": USDC},
            "message": {"owner": USDC, "spender": USDC, "value": "1"}
        });
        Subject::EvmTypedData(Box::new(typed_data(&td).expect("typed data")))
    }

    #[test]
    fn permit_refused_by_default_even_without_rules() {
        let p = crate::policy::Policy::permissive();
        let d = decide(&p, "c", "evm", &permit("Permit", 1), &Totals::new());
        assert_eq!(d.denial.unwrap().rule, "builtin.spending_typed_data");
        assert!(decide(&p, "c", "evm", &permit("Mail", 1), &Totals::new()).allowed());
        let p = policy("[[rule]]\nid = \"t\"\ntyped_data = {}\n");
        let d = decide(&p, "c", "evm", &permit("PermitSingle", 1), &Totals::new());
        assert_eq!(d.denial.unwrap().rule, "builtin.spending_typed_data");
    }

    #[test]
    fn permit_allowed_by_explicit_rule() {
        let p =
            policy("[[rule]]\nid = \"t\"\n[rule.typed_data]\nallow_primary_types = [\"Permit\"]\n");
        let d = decide(&p, "c", "evm", &permit("Permit", 1), &Totals::new());
        assert!(d.allowed(), "{d:?}");
        assert_eq!(d.matched, vec!["t"]);
        // a rule for other clients does not help
        let p = policy("[[rule]]\nid = \"t\"\nclients = [\"x\"]\n[rule.typed_data]\nallow_primary_types = [\"Permit\"]\n");
        assert!(!decide(&p, "c", "evm", &permit("Permit", 1), &Totals::new()).allowed());
    }

    #[test]
    fn domain_allowlist_and_denied_types() {
        let p = policy(&format!(
            "[[rule]]\nid = \"t\"\n[rule.typed_data]\ndeny_primary_types = [\"Mail\"]\nallow_primary_types = [\"Permit\"]\ndomains = [{{ name = \"USD Coin\", chain_id = 1, verifying_contract = \"{USDC}\" }}]\n"
        ));
        assert!(decide(&p, "c", "evm", &permit("Permit", 1), &Totals::new()).allowed());
        let d = decide(&p, "c", "evm", &permit("Permit", 10), &Totals::new());
        assert!(d.denial.unwrap().reason.contains("typed_data.domains"));
        let d = decide(&p, "c", "evm", &permit("Mail", 1), &Totals::new());
        assert!(d.denial.unwrap().reason.contains("deny_primary_types"));
    }
}
