//! The priority fee at the runtime's compute-unit limit, and as lamports the wallet pays.

use super::*;

// --- the priority fee at the runtime's limit ---

fn fee_rule(max: &str) -> String {
    format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\nmax_priority_fee = \"{max}\"\n")
}

/// The largest fee `ixs` passes under: the fee itself, found by the cap's edge.
fn fee_edge(ixs: &[(Pubkey, Vec<Pubkey>, Vec<u8>)], fee: u64) {
    let s = tx(WALLET, ixs);
    let d = run(&fee_rule(&fee.to_string()), &s, &Totals::new());
    assert!(d.allowed(), "{fee}: {d:?}");
    if fee > 0 {
        let d = run(&fee_rule(&(fee - 1).to_string()), &s, &Totals::new());
        let den = d.denial.unwrap();
        assert_eq!(den.rule, "s");
        assert!(
            den.reason
                .contains(&format!("priority fee of {fee} lamports")),
            "{}",
            den.reason
        );
    }
}

fn price(micro_lamports: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    budget(3, &micro_lamports.to_le_bytes())
}

#[test]
fn a_price_without_a_limit_is_priced_at_the_runtimes_default_limit() {
    // Agave compute_budget_instruction_details.rs (`calculate_default_compute_unit_limit`,
    // `test_try_from_compute_unit_price`): the Compute Budget program is a builtin,
    // reserved 3,000 units per instruction when no limit is requested
    fee_edge(&[price(1_000_000)], 3_000);
    // 3,000 units × u64::MAX micro-lamports: 55,340,232,221,128,655 lamports, not 0
    let den = run(
        &fee_rule("0.001 sol"),
        &tx(WALLET, &[price(u64::MAX)]),
        &Totals::new(),
    )
    .denial
    .unwrap();
    assert_eq!(den.rule, "s");
    assert!(
        den.reason
            .contains("priority fee of 55340232221128655 lamports")
            && den.reason.contains("limit 3000, the runtime's default"),
        "{}",
        den.reason
    );
    // with a heap request (another Compute Budget instruction): 6,000 units
    fee_edge(
        &[price(1_000_000), budget(1, &(64u32 * 1024).to_le_bytes())],
        6_000,
    );
    // with a System transfer: the pre-SIMD-0170 rule's 200,000 beats 3,000 + 3,000
    fee_edge(&[price(1_000_000), transfer(1)], 200_000);
    // eight instructions of another program: 1,600,000 capped at 1,400,000
    let other = (UNKNOWN, vec![], vec![1]);
    let mut ixs = vec![price(1_000_000)];
    ixs.extend(std::iter::repeat_n(other, 8));
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"compute-budget\", \"{}\"]\nmax_priority_fee = \"1400000\"\ninstructions = {{ \"{}\" = [\"01\"] }}\n", to_base58(&UNKNOWN), to_base58(&UNKNOWN));
    assert!(run(&p, &tx(WALLET, &ixs), &Totals::new()).allowed());
    let p = p.replace("1400000", "1399999");
    assert!(run(&p, &tx(WALLET, &ixs), &Totals::new())
        .denial
        .unwrap()
        .reason
        .contains("1400000 lamports"));
}

#[test]
fn a_requested_limit_is_used_as_the_runtime_uses_it() {
    // requested: capped at 1,400,000 (`sanitize_and_convert_to_compute_budget_limits`)
    fee_edge(
        &[budget(2, &u32::MAX.to_le_bytes()), price(1_000_000)],
        1_400_000,
    );
    // the deprecated request: its units are the limit, its fee is added (older runtimes;
    // today's refuse the transaction)
    let mut units = 10_000u32.to_le_bytes().to_vec();
    units.extend(7u32.to_le_bytes());
    fee_edge(&[price(1_000_000), budget(0, &units)], 10_007);
    // an explicit limit of 0 is accepted by the runtime (the same test's "requested
    // compute unit limit Some((1, 0))") and `get_prioritization_fee(price, 0)` is 0: the
    // transaction can execute nothing, and pays no priority fee
    fee_edge(&[budget(2, &0u32.to_le_bytes()), price(u64::MAX)], 0);
    // rounding up: 333,333,334 × 3,000 / 10^6 = 1,000,000.002
    fee_edge(&[price(333_333_333)], 1_000_000);
    fee_edge(&[price(333_333_334)], 1_000_001);
}

#[test]
fn the_priority_fee_the_wallet_pays_counts_against_its_lamport_caps() {
    // no max_priority_fee: the fee is still lamports leaving the wallet
    let p = "[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"system\", \"compute-budget\"]\nmax_lamports_per_tx = \"3000\"\n[[rule.solana.spend]]\nwindow = \"1h\"\nmax = \"5000\"\n";
    // 3,000 units (the runtime's default for one Compute Budget instruction) × 10^6
    let at = tx(WALLET, &[price(1_000_000)]);
    let d = run(p, &at, &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.spend[0].0.asset, "lamports");
    assert_eq!(d.spend[0].1, U256::from(3_000));
    // with a transfer: 200,000 units × 10^6 = 200,000 lamports, plus the 1 sent
    let den = run(
        p,
        &tx(WALLET, &[price(1_000_000), transfer(1)]),
        &Totals::new(),
    )
    .denial
    .unwrap();
    assert_eq!(den.rule, "s");
    assert!(
        den.reason.starts_with("200001 lamports leaving the wallet"),
        "{}",
        den.reason
    );
    // and in the rolling window: 2,001 already counted, 3,000 more exceeds 5,000
    let q = run(p, &at, &Totals::new()).queries();
    let mut t = Totals::new();
    t.insert(q[0].clone(), U256::from(2_000));
    assert!(run(p, &at, &t).allowed());
    t.insert(q[0].clone(), U256::from(2_001));
    assert!(run(p, &at, &t).denial.unwrap().reason.contains("rolling"));
    // another fee payer pays it: nothing of the wallet's
    let d = run(p, &tx([8; 32], &[price(u64::MAX)]), &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert!(d.spend.is_empty());
}
