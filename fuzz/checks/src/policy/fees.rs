//! The `SolanaFees` input: one Solana rule covering a wallet-paid transaction of Compute
//! Budget, `AdvanceNonceAccount` and transfer instructions, so the priority-fee and
//! durable-nonce refusals are reached far more often than generic generation reaches them.

use super::*;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub(super) enum GenFeeIx {
    Price(u64),
    Limit(u32),
    Heap(u32),
    AdvanceNonce,
    Transfer(u64),
}

impl GenFeeIx {
    /// As an instruction of the message built in [`solana_fees`]: keys wallet, nonce,
    /// sysvar, System, Compute Budget.
    fn ix(self) -> wire::GenIx {
        let (program, accounts, data) = match self {
            GenFeeIx::Price(p) => (4, vec![], wire::GenData::Price(p)),
            GenFeeIx::Limit(l) => (4, vec![], wire::GenData::Limit(l)),
            GenFeeIx::Heap(h) => (4, vec![], wire::GenData::Heap(h)),
            GenFeeIx::AdvanceNonce => (3, vec![1, 2, 0], wire::GenData::AdvanceNonce),
            GenFeeIx::Transfer(l) => (3, vec![0, 1], wire::GenData::Transfer(l)),
        };
        wire::GenIx {
            program,
            accounts,
            data,
        }
    }
}

/// The [`Input::SolanaFees`] case as a generated policy and request.
pub(super) fn solana_fees(rule: GenSolRule, ixs: &[GenFeeIx], totals: &[u64]) {
    let mut rule = rule;
    // System and Compute Budget allowed, so the refusals under test are the ones reached
    rule.programs.extend([0, 3]);
    let policy = GenPolicy {
        default_deny: true,
        rules: vec![GenRule {
            clients: None,
            wallets: 4, // chain:solana
            evm: None,
            typed: None,
            message: None,
            hash: None,
            solana: Some(rule),
        }],
    };
    let msg = wire::GenMsg {
        v0: false,
        header: [1, 0, 3],
        sane_header: false,
        keys: vec![
            wire::GenKey::Wallet,
            wire::GenKey::Small(7),
            wire::GenKey::Small(8),
            wire::GenKey::System,
            wire::GenKey::ComputeBudget,
        ],
        blockhash: [9; 32],
        ixs: ixs.iter().take(12).map(|i| i.ix()).collect(),
        sane_indices: false,
        lookups: Vec::new(),
    };
    let request = GenRequest {
        client: 0,
        subject: GenSubject::SolanaTx(msg),
    };
    built(&policy, &request, totals);
}
