//! Rules the Solana runtime applies to a whole transaction that policy must mirror: the
//! compute-unit limit a transaction gets when it requests none (what its priority fee is
//! multiplied by), and the durable-nonce marker (what makes a signature valid until its
//! nonce is advanced instead of for about a minute).
//!
//! Must never: estimate a limit below what a current runtime would charge. Where runtime
//! versions differ (a feature active on one cluster and not yet on another), the larger
//! limit is taken.

use super::{ParsedMessage, Pubkey, COMPUTE_BUDGET_PROGRAM_ID, SYSTEM_PROGRAM_ID};

/// Largest compute-unit limit a transaction can have; a larger request is capped to it.
pub const MAX_COMPUTE_UNIT_LIMIT: u64 = 1_400_000;
/// What the runtime reserves per instruction of a non-builtin program when no limit is
/// requested (and, before SIMD-0170, per instruction of any program but Compute Budget).
pub const DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT: u64 = 200_000;
/// What SIMD-0170 reserves per instruction of a builtin program, Compute Budget included.
pub const MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT: u64 = 3_000;

/// The programs Agave counts as builtin when it sets the default limit
/// (`builtins-default-costs/src/lib.rs`, `NON_MIGRATING_BUILTINS_COSTS`): Vote, System,
/// Compute Budget, the four BPF loaders, and the secp256k1 and ed25519 precompiles.
/// Programs once listed there and since migrated to sBPF (Stake, Address Lookup Table,
/// Config) are left out: counted as non-builtins they are reserved 200,000 units, the
/// larger of their two possible allocations.
const BUILTINS: [Pubkey; 9] = [
    // Vote111111111111111111111111111111111111111
    [
        7, 97, 72, 29, 53, 116, 116, 187, 124, 77, 118, 36, 235, 211, 189, 179, 216, 53, 94, 115,
        209, 16, 67, 252, 13, 163, 83, 128, 0, 0, 0, 0,
    ],
    SYSTEM_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
    // BPFLoaderUpgradeab1e11111111111111111111111
    [
        2, 168, 246, 145, 78, 136, 161, 176, 226, 16, 21, 62, 247, 99, 174, 43, 0, 194, 185, 61,
        22, 193, 36, 210, 192, 83, 122, 16, 4, 128, 0, 0,
    ],
    // BPFLoader1111111111111111111111111111111111
    [
        2, 168, 246, 145, 78, 136, 161, 107, 189, 35, 149, 133, 95, 100, 4, 217, 180, 244, 86, 183,
        130, 27, 176, 20, 87, 73, 66, 140, 0, 0, 0, 0,
    ],
    // BPFLoader2111111111111111111111111111111111
    [
        2, 168, 246, 145, 78, 136, 161, 110, 57, 90, 225, 40, 148, 143, 250, 105, 86, 147, 55, 104,
        24, 221, 71, 67, 82, 33, 243, 198, 0, 0, 0, 0,
    ],
    // LoaderV411111111111111111111111111111111111
    [
        5, 18, 180, 17, 81, 81, 227, 122, 173, 10, 139, 197, 211, 136, 46, 123, 127, 218, 76, 243,
        210, 192, 40, 200, 207, 131, 54, 24, 0, 0, 0, 0,
    ],
    // KeccakSecp256k11111111111111111111111111111
    [
        4, 198, 252, 32, 240, 80, 204, 240, 85, 132, 215, 33, 28, 159, 140, 245, 158, 193, 71, 133,
        187, 22, 106, 30, 40, 48, 232, 18, 32, 0, 0, 0,
    ],
    // Ed25519SigVerify111111111111111111111111111
    [
        3, 125, 70, 214, 124, 147, 251, 190, 18, 249, 66, 143, 131, 141, 64, 255, 5, 112, 116, 73,
        39, 244, 138, 100, 252, 202, 112, 68, 128, 0, 0, 0,
    ],
];

/// The compute-unit limit of a transaction that requests none, from the programs its
/// top-level instructions call, capped at [`MAX_COMPUTE_UNIT_LIMIT`]. The larger of the
/// two rules current runtimes apply:
///
/// - SIMD-0170 (Agave `compute_budget_instruction_details.rs`,
///   `calculate_default_compute_unit_limit`): 3,000 per builtin instruction, Compute
///   Budget instructions included, plus 200,000 per other instruction;
/// - before it, and where its feature is not active (Agave 1.17 to 2.0
///   `process_compute_budget_instructions`): 200,000 per instruction that is not a
///   Compute Budget instruction.
///
/// So a transaction of Compute Budget instructions alone gets 3,000 units each, never 0.
pub fn default_compute_unit_limit(programs: impl IntoIterator<Item = Pubkey>) -> u64 {
    let (mut budget, mut builtin, mut other) = (0u64, 0u64, 0u64);
    for p in programs {
        if p == COMPUTE_BUDGET_PROGRAM_ID {
            budget += 1;
        } else if BUILTINS.contains(&p) {
            builtin += 1;
        } else {
            other += 1;
        }
    }
    let legacy = (builtin + other).saturating_mul(DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT);
    let simd_0170 = (budget + builtin)
        .saturating_mul(MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT)
        .saturating_add(other.saturating_mul(DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT));
    legacy.max(simd_0170).min(MAX_COMPUTE_UNIT_LIMIT)
}

impl ParsedMessage {
    /// True when the runtime treats this transaction as a durable-nonce transaction: its
    /// first instruction calls the System Program with `AdvanceNonceAccount`'s tag (the
    /// SDK's `uses_durable_nonce`: `NONCED_TX_MARKER_IX_INDEX` = 0, the data's first four
    /// bytes `04 00 00 00`, whatever follows or whichever accounts it names). Such a
    /// transaction's recent-blockhash field is a nonce: the signature stays valid until
    /// that nonce is advanced, not for the ~150 blocks of a recent blockhash.
    pub fn uses_durable_nonce(&self) -> bool {
        self.instructions().first().is_some_and(|ix| {
            self.program_id(0) == Some(SYSTEM_PROGRAM_ID) && ix.data.starts_with(&[4, 0, 0, 0])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chains::solana::to_base58;

    #[test]
    fn builtin_ids_are_the_runtimes() {
        let names: Vec<String> = BUILTINS.iter().map(|p| to_base58(p)).collect();
        assert_eq!(
            names,
            [
                "Vote111111111111111111111111111111111111111",
                "11111111111111111111111111111111",
                "ComputeBudget111111111111111111111111111111",
                "BPFLoaderUpgradeab1e11111111111111111111111",
                "BPFLoader1111111111111111111111111111111111",
                "BPFLoader2111111111111111111111111111111111",
                "LoaderV411111111111111111111111111111111111",
                "KeccakSecp256k11111111111111111111111111111",
                "Ed25519SigVerify111111111111111111111111111",
            ]
        );
    }

    const CB: Pubkey = COMPUTE_BUDGET_PROGRAM_ID;
    const SYS: Pubkey = SYSTEM_PROGRAM_ID;
    const DUMMY: Pubkey = [0x55; 32];

    #[test]
    fn default_limit_vectors_from_agave() {
        // Agave compute-budget-instruction/src/compute_budget_instruction_details.rs,
        // `test_try_from_compute_unit_price`: [dummy, SetComputeUnitPrice, dummy] counts 1
        // builtin (the Compute Budget instruction) and 2 non-builtins: SIMD-0170 gives
        // 2 × 200,000 + 3,000; the older rule 400,000
        assert_eq!(default_compute_unit_limit([DUMMY, CB, DUMMY]), 403_000);
        // `test_sanitize_and_convert_to_compute_budget_limits`: 1 builtin and 3 non-builtins
        // = 603,000 under SIMD-0170, but 800,000 under the older rule: the larger counts
        assert_eq!(
            default_compute_unit_limit([SYS, DUMMY, DUMMY, DUMMY]),
            800_000
        );
        // `test_builtin_program_migration`: [dummy, migrating builtin] is 203,000 before the
        // migration feature and 400,000 after it: a migrated builtin counts 200,000
        let stake =
            crate::chains::solana::parse_pubkey("Stake11111111111111111111111111111111111111")
                .unwrap();
        assert_eq!(default_compute_unit_limit([DUMMY, stake]), 400_000);
        // the empty transaction of `test_sanitize_and_convert_to_compute_budget_limits`
        assert_eq!(default_compute_unit_limit([]), 0);
    }

    #[test]
    fn compute_budget_instructions_alone_are_never_zero() {
        // SIMD-0170 counts the Compute Budget program as a builtin (3,000 units each);
        // the older rule counted it as nothing
        assert_eq!(default_compute_unit_limit([CB]), 3_000);
        assert_eq!(default_compute_unit_limit([CB, CB]), 6_000);
        // a System instruction: 200,000 under the older rule beats SIMD-0170's 3,000 + 3,000
        assert_eq!(default_compute_unit_limit([CB, SYS]), 200_000);
        // capped at 1,400,000
        assert_eq!(
            default_compute_unit_limit([DUMMY; 8]),
            MAX_COMPUTE_UNIT_LIMIT
        );
        assert_eq!(
            default_compute_unit_limit(vec![CB; 1000]),
            MAX_COMPUTE_UNIT_LIMIT
        );
    }
}
