//! The `SolanaFees` input: one Solana rule covering a wallet-paid transaction of Compute
//! Budget, `AdvanceNonceAccount`, transfer and account-handover instructions, so the
//! priority-fee, durable-nonce and handover refusals are reached far more often than
//! generic generation reaches them.

use super::*;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub(super) enum GenFeeIx {
    Price(u64),
    Limit(u32),
    Heap(u32),
    AdvanceNonce,
    Transfer(u64),
    /// System `CreateAccountAllowPrefund` of the wallet's own account, unfunded.
    PrefundWallet(u64),
    /// System `AllocateWithSeed` of an account derived from the wallet.
    AllocateWithSeedOfWallet(u64),
    /// System `CreateAccount` of the wallet's own address, funded by another key.
    CreateWallet(u64),
}

/// A System instruction's data: its `u32` tag, then the fields.
fn system(tag: u32, fields: &[&[u8]]) -> wire::GenData {
    let mut d = tag.to_le_bytes().to_vec();
    fields.iter().for_each(|f| d.extend_from_slice(f));
    wire::GenData::Raw(d)
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
            // lamports, space, owner
            GenFeeIx::PrefundWallet(l) => (
                3,
                vec![0],
                system(13, &[&l.to_le_bytes(), &[0; 8], &[6; 32]]),
            ),
            // base, seed "s", space, owner
            GenFeeIx::AllocateWithSeedOfWallet(space) => (
                3,
                vec![1, 0],
                system(
                    9,
                    &[
                        &WALLET,
                        &1u64.to_le_bytes(),
                        b"s",
                        &space.to_le_bytes(),
                        &[6; 32],
                    ],
                ),
            ),
            // lamports, space, owner: [funder, new account]
            GenFeeIx::CreateWallet(l) => (
                3,
                vec![1, 0],
                system(0, &[&l.to_le_bytes(), &[0; 8], &[6; 32]]),
            ),
        };
        wire::GenIx {
            program,
            accounts,
            data,
        }
    }
}

/// The [`Input::SolanaFees`] case as a generated policy and request.
pub(super) fn solana_fees(rule: GenSolRule, ixs: &[GenFeeIx], budget_only: bool, totals: &[u64]) {
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
        ixs: ixs
            .iter()
            .filter(|i| {
                !budget_only
                    || matches!(
                        i,
                        GenFeeIx::Price(_) | GenFeeIx::Limit(_) | GenFeeIx::Heap(_)
                    )
            })
            .take(12)
            .map(|i| i.ix())
            .collect(),
        sane_indices: false,
        lookups: Vec::new(),
    };
    let request = GenRequest {
        client: 0,
        subject: GenSubject::SolanaTx(msg),
    };
    built(&policy, &request, totals);
}
