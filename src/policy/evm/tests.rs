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
    let p = policy(
        "[[rule]]\nid = \"e\"\n[rule.evm]\nmax_gas_limit = 196608\nmax_fee_per_gas = \"1 gwei\"\n",
    );
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
    // a multicall is priced by the calls it makes: 10,000 is over the token's 100
    let (rule, reason) = refusal(&capped(), TOKEN, multicall.clone()).unwrap();
    assert_eq!(rule, "e");
    assert!(reason.contains("max_per_tx 100"), "{reason}");
    // at a contract without a token entry, under a capping rule: unpriced
    let (rule, reason) = refusal(&capped(), BOB, multicall.clone()).unwrap();
    assert_eq!(rule, UNPRICED_CALL);
    assert!(reason.contains("no evm.token entry"), "{reason}");
    // a selector nothing decodes, at the capped token
    let custom = vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1];
    let (rule, reason) = refusal(&capped(), TOKEN, custom.clone()).unwrap();
    assert_eq!(rule, UNPRICED_CALL);
    assert!(reason.contains("0xdeadbeef"), "{reason}");
    // listed for that contract: the operator accepts it unpriced
    let p = policy(&format!(
            "[[rule]]\nid = \"e\"\n[rule.evm]\nselectors = {{ \"{TOKEN}\" = [\"0xdeadbeef\"] }}\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\nmax_per_tx = \"100\"\n"
        ));
    assert_eq!(refusal(&p, TOKEN, custom), None);
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
        reason.contains("recipient 0x00000000000000000000000000000000000000dd is in evm.to_deny"),
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

// --- issue 22: NFT calls, wrappers, allowances no cap bounds ---

sol! {
    interface Nft {
        function setApprovalForAll(address, bool);
        function safeTransferFrom(address, address, uint256);
    }
    interface Account {
        function execute(address, uint256, bytes);
    }
}

const NFT: &str = "0x00000000000000000000000000000000000000a7";

#[test]
fn nft_operator_approvals_are_unlimited_and_transfers_unpriced_under_caps() {
    let all = Nft::setApprovalForAllCall {
        _0: addr(BOB),
        _1: true,
    }
    .abi_encode();
    let plain = policy("[[rule]]\nid = \"e\"\nevm = {}\n");
    for p in [&capped(), &plain] {
        let (rule, reason) = refusal(p, NFT, all.clone()).unwrap();
        assert_eq!(rule, "e");
        assert!(reason.contains("unlimited allowance"), "{reason}");
    }
    let exempt = policy(&format!(
        "[[rule]]\nid = \"e\"\n[rule.evm]\n[[rule.evm.token]]\ncontract = \"{NFT}\"\nunlimited_approval = true\n"
    ));
    assert_eq!(refusal(&exempt, NFT, all), None);
    let send = Nft::safeTransferFromCall {
        _0: addr(BOB),
        _1: addr(BOB),
        _2: U256::from(1),
    }
    .abi_encode();
    assert_eq!(
        refusal(&capped(), NFT, send.clone()).unwrap().0,
        UNPRICED_CALL
    );
    assert_eq!(refusal(&plain, NFT, send.clone()), None);
    let listed = policy(&format!(
        "[[rule]]\nid = \"e\"\n[rule.evm]\nmax_value = {{ \"*\" = \"1\" }}\nselectors = {{ \"{NFT}\" = [\"0x42842e0e\"] }}\n"
    ));
    assert_eq!(refusal(&listed, NFT, send), None);
}

#[test]
fn execute_value_counts_as_native_spend() {
    let exe = Account::executeCall {
        _0: addr(BOB),
        _1: U256::from(1001),
        _2: Default::default(),
    }
    .abi_encode();
    let p = policy("[[rule]]\nid = \"e\"\n[rule.evm]\nmax_value = { \"*\" = \"1000\" }\n[[rule.evm.spend]]\nchain_id = 1\nwindow = \"1h\"\nmax = \"5000\"\n");
    let (rule, reason) = refusal(&p, BOB, exe).unwrap();
    assert_eq!(rule, "e");
    assert!(reason.contains("max_value"), "{reason}");
    let ok = Account::executeCall {
        _0: addr(BOB),
        _1: U256::from(600),
        _2: Default::default(),
    }
    .abi_encode();
    let d = decide(
        &p,
        "c",
        "evm",
        &tx(Some(BOB), 400, &call(ok)),
        &Totals::new(),
    );
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.spend[0].1, U256::from(1000), "outer 400 + inner 600");
}

#[test]
fn allowances_no_cap_bounds_need_an_allowlist_or_unlimited_approval() {
    let under = (U256::from(1) << 255) - U256::from(1);
    let approve = |amount| {
        Token::approveCall {
            _0: addr(BOB),
            _1: amount,
        }
        .abi_encode()
    };
    let plain = policy("[[rule]]\nid = \"e\"\nevm = {}\n");
    let (rule, reason) = refusal(&plain, TOKEN, approve(under)).unwrap();
    assert_eq!(rule, "e");
    assert!(reason.contains("bounded by no cap"), "{reason}");
    assert_eq!(refusal(&plain, TOKEN, approve(U256::ZERO)), None);
    // an entry without caps does not bound it either
    let entry = policy(&format!(
        "[[rule]]\nid = \"e\"\n[rule.evm]\n[[rule.evm.token]]\ncontract = \"{TOKEN}\"\n"
    ));
    assert!(refusal(&entry, TOKEN, approve(under))
        .unwrap()
        .1
        .contains("bounded by no cap"));
    let allow = policy(&format!(
        "[[rule]]\nid = \"e\"\n[rule.evm]\nto_allow = [\"{TOKEN}\", \"{BOB}\"]\n"
    ));
    assert_eq!(refusal(&allow, TOKEN, approve(under)), None);
    // a cap bounds it
    assert!(refusal(&capped(), TOKEN, approve(under))
        .unwrap()
        .1
        .contains("max_per_tx"));
}
