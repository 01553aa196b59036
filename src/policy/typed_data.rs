//! EIP-712 rules: allowlist semantics. A message is signed only if its (domain,
//! primaryType) pair is listed by every covering rule; a listed family the engine can
//! price (EIP-2612 / DAI `Permit`, Permit2, EIP-3009) counts its amount against the
//! rule's `[[evm.token]]` caps, like the transfer or approval it authorises. The
//! built-in refusal of unlisted asset-moving families is in `policy.rs`, because it
//! applies even when no rule covers the request.

use alloy_primitives::U256;

use super::evm::{self as evm_rules, Movement};
use super::rules::{Domain, EvmRule, TypedDataRule};
use super::{Cap, Refuse, SpendKey, UNPRICED_TYPED_DATA};
use crate::chains::evm::{TypedDataInfo, TypedFamily};

impl TypedDataRule {
    /// True when the rule names `primary_type` (not through `"*"`).
    pub(crate) fn names(&self, primary_type: &str) -> bool {
        self.allow_primary_types.iter().any(|t| t == primary_type)
            || self.domains.iter().any(|d| {
                d.primary_types
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|t| t == primary_type))
            })
    }

    fn lists(&self, list: &[String], info: &TypedDataInfo) -> bool {
        list.iter()
            .any(|t| *t == info.primary_type || (t == "*" && !info.family.moves_assets()))
    }
}

pub(super) fn family_name(f: &TypedFamily) -> &'static str {
    match f {
        TypedFamily::Other => "no known family",
        TypedFamily::Priced { family, .. } | TypedFamily::Unpriced { family } => family,
    }
}

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

/// `(chain, asset, amount)` a typed-data signature lets others move or take.
pub(super) fn spend(info: &TypedDataInfo) -> Vec<(String, String, U256)> {
    let TypedFamily::Priced {
        chain_id, moves, ..
    } = &info.family
    else {
        return Vec::new();
    };
    moves
        .iter()
        .filter(|m| !m.unlimited)
        .map(|m| {
            (
                format!("eip155:{chain_id}"),
                format!("erc20:{:#x}", m.token),
                m.amount,
            )
        })
        .collect()
}

fn describe(info: &TypedDataInfo) -> String {
    format!(
        "EIP-712 message {:?} on domain (name {:?}, version {:?}, chainId {:?}, verifyingContract {})",
        info.primary_type,
        info.domain_name,
        info.domain_version,
        info.domain_chain_id,
        info.domain_verifying_contract
            .map_or("none".to_string(), |a| format!("{a:#x}"))
    )
}

/// The rule's chain scope (`evm.chain_ids`) reaches typed data: the domain's `chainId`
/// must be one of the rule's chains. A domain without `chainId` is valid on every chain,
/// so under a scoped rule it is refused, unless `allow_domain_without_chain_id` accepts
/// it for a type that moves no assets.
fn check_chain_scope(
    rule: &TypedDataRule,
    evm: Option<&EvmRule>,
    info: &TypedDataInfo,
) -> Result<(), Refuse> {
    let Some(scope) = evm.map(|e| &e.chain_ids).filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    match info.domain_chain_id {
        Some(c) if scope.contains(&c) => Ok(()),
        Some(c) => Err(format!(
            "{} is for chain {c}, which is not in evm.chain_ids {scope:?}",
            describe(info)
        )
        .into()),
        None if rule.allow_domain_without_chain_id && !info.family.moves_assets() => Ok(()),
        None => Err(format!(
            "{} has no chainId, so it is valid on every chain; this rule is scoped to evm.chain_ids {scope:?} (typed_data.allow_domain_without_chain_id accepts it for types that move no assets)",
            describe(info)
        )
        .into()),
    }
}

pub(super) fn check(
    rule: &TypedDataRule,
    evm: Option<&EvmRule>,
    rule_id: &str,
    wallet: &str,
    info: &TypedDataInfo,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    if rule.deny_primary_types.contains(&info.primary_type) {
        return Err(format!(
            "primary type {:?} is in typed_data.deny_primary_types",
            info.primary_type
        )
        .into());
    }
    let listed = if rule.domains.is_empty() {
        rule.lists(&rule.allow_primary_types, info)
    } else {
        rule.domains.iter().any(|d| {
            domain_matches(d, info)
                && rule.lists(
                    d.primary_types
                        .as_deref()
                        .unwrap_or(&rule.allow_primary_types),
                    info,
                )
        })
    };
    if !listed {
        return Err(format!(
            "{} is not listed: typed_data signs only the (domain, primary type) pairs of typed_data.domains / allow_primary_types",
            describe(info)
        )
        .into());
    }
    check_chain_scope(rule, evm, info)?;
    let caps_anything = evm.is_some_and(EvmRule::caps_anything);
    let (chain_id, moves) = match &info.family {
        TypedFamily::Other => return Ok(()),
        TypedFamily::Unpriced { family } => {
            if caps_anything {
                return Err(Refuse::builtin(
                    UNPRICED_TYPED_DATA,
                    format!(
                        "{} is a {family}, which cannot be priced, and this rule caps tokens or value",
                        describe(info)
                    ),
                ));
            }
            return Ok(());
        }
        TypedFamily::Priced {
            chain_id, moves, ..
        } => (*chain_id, moves),
    };
    let chain = format!("eip155:{chain_id}");
    let mut seen = Vec::new();
    for m in moves {
        let movement = Movement {
            token: m.token,
            amount: m.amount,
            party: m.party,
            approval: m.approval,
            unlimited: m.unlimited,
        };
        evm_rules::check_movement(evm, chain_id, &movement, false).map_err(|r| Refuse {
            // a typed-data message is not a call: the same refusal, in its family's name
            builtin: r.builtin.map(|_| UNPRICED_TYPED_DATA),
            reason: format!("{}: {}", describe(info), r.reason),
        })?;
        let token = evm.and_then(|e| e.token(m.token, chain_id));
        let Some(token) = token else { continue };
        if seen.contains(&m.token) {
            continue;
        }
        seen.push(m.token);
        let asset = format!("erc20:{:#x}", m.token);
        let amount = spend
            .iter()
            .filter(|(k, _)| k.chain == chain && k.asset == asset)
            .map(|(_, a)| *a)
            .fold(U256::ZERO, U256::saturating_add);
        if let Some(max) = token.max_per_tx {
            if amount > max {
                return Err(format!(
                    "{} authorises {amount} of token {:#x}, over evm.token.max_per_tx {max}",
                    describe(info),
                    m.token
                )
                .into());
            }
        }
        if let Some((window_ms, limit)) = token.window {
            caps.push(Cap {
                rule: rule_id.to_owned(),
                key: SpendKey {
                    wallet: wallet.to_owned(),
                    chain: chain.clone(),
                    asset,
                },
                window_ms,
                limit,
                amount,
            });
        }
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
        // a spender with an amount is a permit, whatever its name
        let d = decide(&p, "c", "evm", &permit("Mail", 1), &Totals::new());
        assert_eq!(d.denial.unwrap().rule, "builtin.spending_typed_data");
        assert!(decide(&p, "c", "evm", &named("Mail"), &Totals::new()).allowed());
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
        let d = decide(&p, "c", "evm", &named("Mail"), &Totals::new());
        assert!(d.denial.unwrap().reason.contains("deny_primary_types"));
    }

    // --- every family, built by alloy `sol!` structs declared here and serialised with
    // alloy's `TypedData::from_struct` (independent of the classifier's definitions) ---

    use crate::policy::{SPENDING_TYPED_DATA, UNPRICED_TYPED_DATA};
    use alloy_dyn_abi::TypedData;
    use alloy_primitives::aliases::{U160, U48};
    use alloy_primitives::{address, Address, B256, U256};
    use alloy_sol_types::{eip712_domain, Eip712Domain, SolStruct};

    mod fam {
        alloy_sol_types::sol! {
            #[derive(serde::Serialize)]
            struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
            #[derive(serde::Serialize)]
            struct PermitDetails { address token; uint160 amount; uint48 expiration; uint48 nonce; }
            #[derive(serde::Serialize)]
            struct PermitSingle { PermitDetails details; address spender; uint256 sigDeadline; }
            #[derive(serde::Serialize)]
            struct PermitBatch { PermitDetails[] details; address spender; uint256 sigDeadline; }
            #[derive(serde::Serialize)]
            struct TokenPermissions { address token; uint256 amount; }
            #[derive(serde::Serialize)]
            struct PermitTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; }
            #[derive(serde::Serialize)]
            struct Witness { address recipient; }
            #[derive(serde::Serialize)]
            struct PermitWitnessTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; Witness witness; }
            #[derive(serde::Serialize)]
            struct TransferWithAuthorization { address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce; }
            #[derive(serde::Serialize)]
            struct ReceiveWithAuthorization { address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce; }
            #[derive(serde::Serialize)]
            struct CancelAuthorization { address authorizer; bytes32 nonce; }
            #[derive(serde::Serialize)]
            struct SafeTx { address to; uint256 value; bytes data; uint8 operation; uint256 safeTxGas; uint256 baseGas; uint256 gasPrice; address gasToken; address refundReceiver; uint256 nonce; }
        }
        pub mod dai {
            alloy_sol_types::sol! {
                #[derive(serde::Serialize)]
                struct Permit { address holder; address spender; uint256 nonce; uint256 expiry; bool allowed; }
            }
        }
        pub mod nft {
            alloy_sol_types::sol! {
                #[derive(serde::Serialize)]
                struct Permit { address spender; uint256 tokenId; uint256 nonce; uint256 deadline; }
            }
        }
    }
    const TOKEN: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
    const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");
    const SPENDER: Address = Address::repeat_byte(0x5e);

    fn token_domain() -> Eip712Domain {
        eip712_domain! { name: "USD Coin", version: "2", chain_id: 1, verifying_contract: TOKEN, }
    }

    fn permit2_domain() -> Eip712Domain {
        eip712_domain! { name: "Permit2", chain_id: 1, verifying_contract: PERMIT2, }
    }

    fn subject<S: SolStruct + serde::Serialize>(s: &S, d: Eip712Domain) -> Subject {
        let json = serde_json::to_value(TypedData::from_struct(s, Some(d))).unwrap();
        Subject::EvmTypedData(Box::new(typed_data(&json).expect("typed data")))
    }

    fn eip2612(value: U256) -> Subject {
        subject(
            &fam::Permit {
                owner: Address::repeat_byte(1),
                spender: SPENDER,
                value,
                nonce: U256::ZERO,
                deadline: U256::from(1),
            },
            token_domain(),
        )
    }

    fn details(amount: U160) -> fam::PermitDetails {
        fam::PermitDetails {
            token: TOKEN,
            amount,
            expiration: U48::from(1u64),
            nonce: U48::from(0u64),
        }
    }

    fn auth(value: U256) -> fam::TransferWithAuthorization {
        fam::TransferWithAuthorization {
            from: Address::repeat_byte(1),
            to: SPENDER,
            value,
            validAfter: U256::ZERO,
            validBefore: U256::from(9),
            nonce: B256::repeat_byte(3),
        }
    }

    /// Lists every priced family on any domain, with a token cap of 100 (window 150).
    /// Builds a message of one family for an amount.
    type Maker = Box<dyn Fn(u64) -> Subject>;

    fn capped(extra: &str) -> crate::policy::Policy {
        policy(&format!(
            "[[rule]]\nid = \"t\"\n[rule.typed_data]\nallow_primary_types = [\"Permit\", \"PermitSingle\", \"PermitBatch\", \"PermitTransferFrom\", \"PermitWitnessTransferFrom\", \"TransferWithAuthorization\", \"ReceiveWithAuthorization\", \"SafeTx\", \"*\"]\n[rule.evm]\n[[rule.evm.token]]\ncontract = \"{TOKEN:#x}\"\nchain_id = 1\nmax_per_tx = \"100\"\nwindow = \"1h\"\nmax_per_window = \"150\"\n{extra}"
        ))
    }

    fn refusal(p: &crate::policy::Policy, s: &Subject) -> Option<(String, String)> {
        decide(p, "c", "evm", s, &Totals::new())
            .denial
            .map(|d| (d.rule, d.reason))
    }

    #[test]
    fn priced_families_count_against_the_token_caps() {
        let p = capped("");
        let cases: Vec<(&str, Maker)> = vec![
            ("EIP-2612", Box::new(|v| eip2612(U256::from(v)))),
            (
                "PermitSingle",
                Box::new(|v| {
                    subject(
                        &fam::PermitSingle {
                            details: details(U160::from(v)),
                            spender: SPENDER,
                            sigDeadline: U256::from(1),
                        },
                        permit2_domain(),
                    )
                }),
            ),
            (
                "PermitBatch",
                Box::new(|v| {
                    subject(
                        &fam::PermitBatch {
                            details: vec![details(U160::from(v - 1)), details(U160::from(1u64))],
                            spender: SPENDER,
                            sigDeadline: U256::from(1),
                        },
                        permit2_domain(),
                    )
                }),
            ),
            (
                "PermitTransferFrom",
                Box::new(|v| {
                    subject(
                        &fam::PermitTransferFrom {
                            permitted: fam::TokenPermissions {
                                token: TOKEN,
                                amount: U256::from(v),
                            },
                            spender: SPENDER,
                            nonce: U256::ZERO,
                            deadline: U256::from(1),
                        },
                        permit2_domain(),
                    )
                }),
            ),
            (
                "PermitWitnessTransferFrom",
                Box::new(|v| {
                    subject(
                        &fam::PermitWitnessTransferFrom {
                            permitted: fam::TokenPermissions {
                                token: TOKEN,
                                amount: U256::from(v),
                            },
                            spender: SPENDER,
                            nonce: U256::ZERO,
                            deadline: U256::from(1),
                            witness: fam::Witness { recipient: SPENDER },
                        },
                        permit2_domain(),
                    )
                }),
            ),
            (
                "TransferWithAuthorization",
                Box::new(|v| subject(&auth(U256::from(v)), token_domain())),
            ),
            (
                "ReceiveWithAuthorization",
                Box::new(|v| {
                    let a = auth(U256::from(v));
                    subject(
                        &fam::ReceiveWithAuthorization {
                            from: a.from,
                            to: a.to,
                            value: a.value,
                            validAfter: a.validAfter,
                            validBefore: a.validBefore,
                            nonce: a.nonce,
                        },
                        token_domain(),
                    )
                }),
            ),
        ];
        for (name, make) in cases {
            let ok = make(100);
            let d = decide(&p, "c", "evm", &ok, &Totals::new());
            assert!(d.allowed(), "{name}: {d:?}");
            assert_eq!(d.spend.len(), 1, "{name}");
            assert_eq!(d.spend[0].0.asset, format!("erc20:{TOKEN:#x}"), "{name}");
            assert_eq!(d.spend[0].0.chain, "eip155:1", "{name}");
            assert_eq!(d.spend[0].1, U256::from(100), "{name}");
            // the rolling window counts it
            let q = d.queries();
            let mut t = Totals::new();
            t.insert(q[0].clone(), U256::from(51));
            assert!(!decide(&p, "c", "evm", &ok, &t).allowed(), "{name}");
            let (rule, reason) = refusal(&p, &make(101)).expect(name);
            assert_eq!(rule, "t", "{name}");
            assert!(reason.contains("max_per_tx 100"), "{name}: {reason}");
        }
    }

    #[test]
    fn unlimited_signed_allowances_need_unlimited_approval() {
        let p = capped("");
        let dai = subject(
            &fam::dai::Permit {
                holder: Address::repeat_byte(1),
                spender: SPENDER,
                nonce: U256::ZERO,
                expiry: U256::from(1),
                allowed: true,
            },
            token_domain(),
        );
        let single = subject(
            &fam::PermitSingle {
                details: details(U160::MAX),
                spender: SPENDER,
                sigDeadline: U256::from(1),
            },
            permit2_domain(),
        );
        for s in [eip2612(U256::MAX), dai.clone(), single] {
            let (rule, reason) = refusal(&p, &s).unwrap();
            assert_eq!(rule, "t");
            assert!(reason.contains("unlimited"), "{reason}");
        }
        let p = capped("unlimited_approval = true\n");
        let d = decide(&p, "c", "evm", &eip2612(U256::MAX), &Totals::new());
        assert!(d.allowed(), "{d:?}");
        assert!(d.spend.is_empty(), "exempt, not counted");
        // DAI's allowed = false only revokes
        let revoke = subject(
            &fam::dai::Permit {
                holder: Address::repeat_byte(1),
                spender: SPENDER,
                nonce: U256::ZERO,
                expiry: U256::from(1),
                allowed: false,
            },
            token_domain(),
        );
        assert_eq!(refusal(&capped(""), &revoke), None);
    }

    #[test]
    fn every_known_family_is_refused_without_a_rule_naming_it() {
        let permissive = crate::policy::Policy::permissive();
        let star = policy("[[rule]]\nid = \"t\"\ntyped_data = { allow_primary_types = [\"*\"] }\n");
        let nft = subject(
            &fam::nft::Permit {
                spender: SPENDER,
                tokenId: U256::from(7),
                nonce: U256::ZERO,
                deadline: U256::from(1),
            },
            token_domain(),
        );
        let safe = subject(
            &fam::SafeTx {
                to: SPENDER,
                value: U256::ZERO,
                data: Default::default(),
                operation: 0,
                safeTxGas: U256::ZERO,
                baseGas: U256::ZERO,
                gasPrice: U256::ZERO,
                gasToken: Address::ZERO,
                refundReceiver: Address::ZERO,
                nonce: U256::ZERO,
            },
            token_domain(),
        );
        let mut all = vec![
            eip2612(U256::from(1)),
            subject(&auth(U256::from(1)), token_domain()),
            nft,
            safe,
        ];
        for name in crate::chains::evm::typed_data::UNPRICED_FAMILIES
            .iter()
            .map(|(n, _)| *n)
        {
            all.push(named(name));
        }
        for s in &all {
            for p in [&permissive, &star] {
                let (rule, reason) = refusal(p, s).unwrap();
                assert_eq!(rule, SPENDING_TYPED_DATA, "{reason}");
            }
        }
    }

    /// A message of primary type `name` with one field.
    fn named(name: &str) -> Subject {
        let td = serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                name: [{"name": "nonce", "type": "uint256"}]
            },
            "primaryType": name,
            "domain": {"name": "X", "chainId": 1},
            "message": {"nonce": 1}
        });
        Subject::EvmTypedData(Box::new(typed_data(&td).unwrap()))
    }

    #[test]
    fn unpriced_families_listed_by_name_pass_only_without_caps() {
        let s = named("SafeTx");
        let (rule, reason) = refusal(&capped(""), &s).unwrap();
        assert_eq!(rule, UNPRICED_TYPED_DATA);
        assert!(reason.contains("Safe transaction"), "{reason}");
        let p =
            policy("[[rule]]\nid = \"t\"\ntyped_data = { allow_primary_types = [\"SafeTx\"] }\n");
        assert_eq!(refusal(&p, &s), None);
    }

    #[test]
    fn allowlist_pairs_domain_and_primary_type() {
        let p = policy(&format!(
            "[[rule]]\nid = \"t\"\n[rule.typed_data]\ndomains = [{{ name = \"X\", primary_types = [\"Login\"] }}, {{ verifying_contract = \"{TOKEN:#x}\", primary_types = [\"Permit\"] }}]\n"
        ));
        assert_eq!(refusal(&p, &named("Login")), None);
        // Login is listed for domain X only; Permit for the token only
        let (rule, reason) = refusal(&p, &named("Other")).unwrap();
        assert_eq!(rule, "t");
        assert!(reason.contains("not listed"), "{reason}");
        // listed, but an allowance no cap bounds (no evm section at all) needs an
        // allowlisted spender or unlimited_approval
        let (rule, reason) = refusal(&p, &eip2612(U256::from(5))).unwrap();
        assert_eq!(rule, "t");
        assert!(reason.contains("bounded by no cap"), "{reason}");
        let p2 = subject(
            &fam::PermitSingle {
                details: details(U160::from(1u64)),
                spender: SPENDER,
                sigDeadline: U256::from(1),
            },
            permit2_domain(),
        );
        assert_eq!(refusal(&p, &p2).unwrap().0, SPENDING_TYPED_DATA);
        // "*" is any type that moves nothing: CancelAuthorization is one, Permit is not
        let star = policy("[[rule]]\nid = \"t\"\ntyped_data = { allow_primary_types = [\"*\"] }\n");
        let cancel = subject(
            &fam::CancelAuthorization {
                authorizer: Address::repeat_byte(1),
                nonce: B256::ZERO,
            },
            token_domain(),
        );
        assert_eq!(refusal(&star, &cancel), None);
        // an empty typed_data section signs nothing
        let none = policy("[[rule]]\nid = \"t\"\ntyped_data = {}\n");
        assert_eq!(refusal(&none, &cancel).unwrap().0, "t");
    }

    #[test]
    fn decoded_spenders_meet_the_rules_address_lists() {
        let p = policy(&format!(
            "[[rule]]\nid = \"t\"\ntyped_data = {{ allow_primary_types = [\"Permit\"] }}\n[rule.evm]\nto_deny = [\"{SPENDER:#x}\"]\n"
        ));
        let (rule, reason) = refusal(&p, &eip2612(U256::from(1))).unwrap();
        assert_eq!(rule, "t");
        assert!(reason.contains("spender"), "{reason}");
    }

    #[test]
    fn a_value_cap_alone_refuses_unpriced_families() {
        let p = policy("[[rule]]\nid = \"t\"\ntyped_data = { allow_primary_types = [\"SafeTx\"] }\n[rule.evm]\nmax_value = { \"*\" = \"1\" }\n");
        assert_eq!(
            refusal(&p, &named("SafeTx")).unwrap().0,
            UNPRICED_TYPED_DATA
        );
    }

    #[test]
    fn the_rules_chains_reach_typed_data() {
        let scoped = |extra: &str| {
            policy(&format!(
                "[[rule]]\nid = \"t\"\n[rule.typed_data]\nallow_primary_types = [\"Permit\", \"*\"]\n{extra}[rule.evm]\nchain_ids = [8453]\n[[rule.evm.token]]\ncontract = \"{TOKEN:#x}\"\nchain_id = 8453\nmax_per_tx = \"100\"\n"
            ))
        };
        let on = |chain: Option<u64>| {
            let mut d = json!({"name": "X"});
            let mut f = vec![json!({"name": "name", "type": "string"})];
            if let Some(c) = chain {
                d["chainId"] = json!(c);
                f.push(json!({"name": "chainId", "type": "uint256"}));
            }
            let td = json!({"types": {"EIP712Domain": f, "Login": [{"name": "n", "type": "uint256"}]},
                "primaryType": "Login", "domain": d, "message": {"n": 1}});
            Subject::EvmTypedData(Box::new(typed_data(&td).unwrap()))
        };
        let p = scoped("");
        assert_eq!(refusal(&p, &on(Some(8453))), None);
        assert!(refusal(&p, &on(Some(1)))
            .unwrap()
            .1
            .contains("not in evm.chain_ids"));
        assert!(refusal(&p, &on(None)).unwrap().1.contains("no chainId"));
        let lenient = scoped("allow_domain_without_chain_id = true\n");
        assert_eq!(refusal(&lenient, &on(None)), None);
        // priced against the Base cap, not passed as an uncapped token
        let base_permit = subject(
            &fam::Permit {
                owner: Address::repeat_byte(1),
                spender: SPENDER,
                value: U256::from(101),
                nonce: U256::ZERO,
                deadline: U256::from(1),
            },
            eip712_domain! { name: "USD Coin", version: "2", chain_id: 8453, verifying_contract: TOKEN, },
        );
        assert!(refusal(&p, &base_permit)
            .unwrap()
            .1
            .contains("max_per_tx 100"));
        // the key means nothing without a chain scope: config refuses it
        let e = crate::policy::PolicySection::parse_file(
            "[[rule]]\nid = \"t\"\ntyped_data = { allow_domain_without_chain_id = true }\n",
        )
        .unwrap()
        .compile()
        .unwrap_err();
        assert!(
            e.to_string().contains("allow_domain_without_chain_id"),
            "{e}"
        );
    }
}
