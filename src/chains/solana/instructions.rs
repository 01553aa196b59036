//! Decoding of every instruction of the programs spending policy prices: the System
//! Program, SPL Token and Token-2022, Compute Budget, Associated Token Account and Memo.
//! Any other program decodes to [`Instruction::Other`]; data a known program would refuse
//! decodes to [`Instruction::Undecoded`]. Neither is "harmless": policy refuses what it
//! cannot price.
//!
//! Layouts (all little-endian):
//! - System: bincode of `SystemInstruction`, a `u32` tag then the fields; strings are a
//!   `u64` length then UTF-8 bytes
//!   (<https://github.com/anza-xyz/solana-sdk/blob/master/system-interface/src/instruction.rs>).
//! - SPL Token / Token-2022: a `u8` tag then packed fields; Token-2022 extensions add a
//!   `u8` sub-tag (<https://github.com/solana-program/token/blob/main/interface/src/instruction.rs>,
//!   <https://github.com/solana-program/token-2022/blob/main/interface/src/instruction.rs>).
//! - Compute Budget: borsh, a `u8` tag then the field
//!   (<https://github.com/anza-xyz/solana-sdk/blob/master/compute-budget-interface/src/lib.rs>).
//! - Associated Token Account: empty data or a `u8` tag
//!   (<https://github.com/solana-program/associated-token-account/blob/main/interface/src/instruction.rs>).
//!
//! Every program decodes only a prefix of its data and ignores the rest (bincode and borsh
//! with trailing bytes allowed, SPL's manual unpack), so decoding does too: whatever the
//! chain would execute as a transfer must be seen as one.

use super::{
    ParsedMessage, Pubkey, SPL_TOKEN_2022_PROGRAM_ID, SPL_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID,
};

/// Compute Budget program, base58 `ComputeBudget111111111111111111111111111111`.
pub const COMPUTE_BUDGET_PROGRAM_ID: Pubkey = [
    3, 6, 70, 111, 229, 33, 23, 50, 255, 236, 173, 186, 114, 195, 155, 231, 188, 140, 229, 187,
    197, 247, 18, 107, 44, 67, 155, 58, 64, 0, 0, 0,
];
/// Associated Token Account program, base58 `ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL`.
pub const ASSOCIATED_TOKEN_PROGRAM_ID: Pubkey = [
    140, 151, 37, 143, 78, 36, 137, 241, 187, 61, 16, 41, 20, 142, 13, 131, 11, 90, 19, 153, 218,
    255, 16, 132, 4, 142, 123, 216, 219, 233, 248, 89,
];
/// SPL Memo v2, base58 `MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr`.
pub const MEMO_PROGRAM_ID: Pubkey = [
    5, 74, 83, 90, 153, 41, 33, 6, 77, 36, 232, 113, 96, 218, 56, 124, 124, 53, 181, 221, 188, 146,
    187, 129, 228, 31, 168, 64, 65, 5, 68, 141,
];
/// SPL Memo v1, base58 `Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo`.
pub const MEMO_V1_PROGRAM_ID: Pubkey = [
    5, 74, 83, 80, 248, 93, 200, 130, 214, 20, 165, 86, 114, 120, 138, 41, 109, 223, 30, 171, 171,
    208, 166, 6, 120, 136, 73, 50, 244, 238, 246, 160,
];

/// An instruction account: `None` when it is loaded from an address lookup table, so its
/// address is not in the transaction bytes.
pub type Acct = Option<Pubkey>;

/// One top-level instruction, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// System Program.
    System(SystemInstruction),
    /// SPL Token or Token-2022 (`program` says which).
    Token {
        /// The token program called.
        program: Pubkey,
        /// What it does.
        ix: TokenInstruction,
        /// The owner / delegate / authority that must sign, when the instruction has one.
        authority: Acct,
        /// Multisig co-signers listed after the fixed accounts (empty for a single owner).
        signers: Vec<Acct>,
    },
    /// Compute Budget program.
    ComputeBudget(ComputeBudgetInstruction),
    /// Associated Token Account program.
    AssociatedToken(AssociatedTokenInstruction),
    /// SPL Memo (v1 or v2): logs its data, moves nothing.
    Memo,
    /// A known program whose data it would refuse (short, unknown tag): named for the
    /// refusal message.
    Undecoded {
        /// Program.
        program: Pubkey,
        /// Why it does not decode.
        reason: &'static str,
    },
    /// A program this module does not decode.
    Other {
        /// Program.
        program: Pubkey,
    },
}

/// System Program instructions, by tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemInstruction {
    /// 0: funds a new account with `lamports` from `funder`.
    CreateAccount {
        funder: Acct,
        account: Acct,
        lamports: u64,
        space: u64,
        owner: Pubkey,
    },
    /// 1: hands `account` to program `owner`.
    Assign { account: Acct, owner: Pubkey },
    /// 2: moves `lamports` from `from` to `to`.
    Transfer { from: Acct, to: Acct, lamports: u64 },
    /// 3: funds a new account derived from `base`, with `lamports` from `funder`.
    CreateAccountWithSeed {
        funder: Acct,
        account: Acct,
        base: Pubkey,
        lamports: u64,
        space: u64,
        owner: Pubkey,
    },
    /// 4: consumes a durable nonce.
    AdvanceNonceAccount { nonce: Acct, authority: Acct },
    /// 5: moves `lamports` out of a nonce account, signed by its authority.
    WithdrawNonceAccount {
        nonce: Acct,
        to: Acct,
        authority: Acct,
        lamports: u64,
    },
    /// 6: initialises a new nonce account.
    InitializeNonceAccount { nonce: Acct, authority: Pubkey },
    /// 7: gives a nonce account to a new authority.
    AuthorizeNonceAccount {
        nonce: Acct,
        authority: Acct,
        new_authority: Pubkey,
    },
    /// 8: allocates space in a new (system-owned, empty) account.
    Allocate { account: Acct, space: u64 },
    /// 9: allocates space in a new account derived from `base`.
    AllocateWithSeed {
        account: Acct,
        base: Pubkey,
        space: u64,
        owner: Pubkey,
    },
    /// 10: hands an account derived from `base` to program `owner`.
    AssignWithSeed {
        account: Acct,
        base: Pubkey,
        owner: Pubkey,
    },
    /// 11: moves `lamports` out of an account derived from `base`; `base` signs.
    TransferWithSeed {
        from: Acct,
        base: Acct,
        to: Acct,
        lamports: u64,
    },
    /// 12: upgrades a legacy nonce account.
    UpgradeNonceAccount { nonce: Acct },
    /// 13: funds (optionally) and creates an account that may already hold lamports.
    CreateAccountAllowPrefund {
        account: Acct,
        funder: Option<Acct>,
        lamports: u64,
        space: u64,
        owner: Pubkey,
    },
}

/// SPL Token / Token-2022 instructions the policy tells apart. The authority that signs
/// is carried next to it in [`Instruction::Token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInstruction {
    /// 3: moves `amount` of an unnamed mint.
    Transfer {
        source: Acct,
        destination: Acct,
        amount: u64,
    },
    /// 4: lets `delegate` move up to `amount` of an unnamed mint.
    Approve {
        source: Acct,
        delegate: Acct,
        amount: u64,
    },
    /// 5: removes the delegate.
    Revoke { source: Acct },
    /// 6: changes (or removes) an authority of an account or mint.
    SetAuthority {
        target: Acct,
        authority_type: u8,
        new_authority: Option<Pubkey>,
    },
    /// 7 / 14: mints `amount` of `mint`.
    MintTo {
        mint: Acct,
        destination: Acct,
        amount: u64,
        checked: bool,
    },
    /// 8 / 15: destroys `amount` of `mint` held by `account`.
    Burn {
        account: Acct,
        mint: Acct,
        amount: u64,
        checked: bool,
    },
    /// 9: closes `account`, its lamports go to `destination`.
    CloseAccount { account: Acct, destination: Acct },
    /// 10 / 11: freezes or thaws an account (the mint's freeze authority signs).
    FreezeOrThaw {
        account: Acct,
        mint: Acct,
        freeze: bool,
    },
    /// 12: moves `amount` of `mint`.
    TransferChecked {
        source: Acct,
        mint: Acct,
        destination: Acct,
        amount: u64,
        decimals: u8,
    },
    /// 13: lets `delegate` move up to `amount` of `mint`.
    ApproveChecked {
        source: Acct,
        mint: Acct,
        delegate: Acct,
        amount: u64,
        decimals: u8,
    },
    /// Initialisation of a new mint, account or multisig (tags 0, 1, 2, 16, 18, 19, 20, 22,
    /// and Token-2022's 25, 32, 35): acts on an account that holds nothing yet.
    Initialize { tag: u8 },
    /// 17: syncs a wrapped-SOL account's amount with its lamports.
    SyncNative { account: Acct },
    /// Read-only helpers (21 GetAccountDataSize, 23 AmountToUiAmount, 24 UiAmountToAmount).
    ReadOnly { tag: u8 },
    /// Token-2022 26/1: moves `amount` of `mint`; `fee` of it is withheld at the
    /// destination (the source is debited `amount`, fee included).
    TransferCheckedWithFee {
        source: Acct,
        mint: Acct,
        destination: Acct,
        amount: u64,
        decimals: u8,
        fee: u64,
    },
    /// Token-2022 26/4: moves withheld fees into the mint; anyone may call it.
    HarvestWithheldTokensToMint,
    /// Any other Token-2022 extension instruction (`sub` = its sub-tag when it has one):
    /// authority actions, confidential transfers, reallocation. Not priced.
    Extension { tag: u8, sub: Option<u8> },
}

/// Compute Budget instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeBudgetInstruction {
    /// 0 (deprecated): units and an extra fee in lamports.
    RequestUnitsDeprecated { units: u32, additional_fee: u32 },
    /// 1: heap size.
    RequestHeapFrame(u32),
    /// 2: compute unit limit.
    SetComputeUnitLimit(u32),
    /// 3: price per compute unit, micro-lamports.
    SetComputeUnitPrice(u64),
    /// 4: loaded accounts data size limit.
    SetLoadedAccountsDataSizeLimit(u32),
}

/// Associated Token Account instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociatedTokenInstruction {
    /// Empty data or 0: creates the wallet's associated account (the payer funds rent).
    Create,
    /// 1: the same, succeeding when the account exists.
    CreateIdempotent,
    /// 2: moves tokens from a nested associated account back to the owner's own.
    RecoverNested,
}

struct Data<'a>(&'a [u8]);

impl Data<'_> {
    fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }
    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.0.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            self.0.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    }
    fn pubkey(&self, at: usize) -> Option<Pubkey> {
        self.0.get(at..at.checked_add(32)?)?.try_into().ok()
    }
    /// A bincode string at `at`: returns the offset after it. Invalid UTF-8 fails to
    /// deserialize on chain, so it does not decode here either.
    fn string_end(&self, at: usize) -> Option<usize> {
        let len = usize::try_from(self.u64(at)?).ok()?;
        let start = at.checked_add(8)?;
        let end = start.checked_add(len)?;
        std::str::from_utf8(self.0.get(start..end)?).ok()?;
        Some(end)
    }
    /// A packed `COption<Pubkey>`: tag 0 = none, 1 = some.
    fn coption_pubkey(&self, at: usize) -> Option<Option<Pubkey>> {
        match self.u8(at)? {
            0 => Some(None),
            1 => Some(Some(self.pubkey(at + 1)?)),
            _ => None,
        }
    }
}

impl ParsedMessage {
    /// Decodes top-level instruction `ix`. Out of range decodes to
    /// [`Instruction::Undecoded`] with the System Program id (never reached by callers
    /// that iterate `instructions()`).
    pub fn decode_instruction(&self, ix: usize) -> Instruction {
        let (Some(program), Some(instruction)) = (self.program_id(ix), self.instructions().get(ix))
        else {
            return Instruction::Undecoded {
                program: SYSTEM_PROGRAM_ID,
                reason: "no such instruction",
            };
        };
        let n = instruction.accounts.len();
        // `Some(acct)` when the instruction has that many accounts
        let acct = |p: usize| -> Option<Acct> { (p < n).then(|| self.instruction_account(ix, p)) };
        let rest = |from: usize| -> Vec<Acct> {
            (from..n).map(|p| self.instruction_account(ix, p)).collect()
        };
        let data = Data(instruction.data.as_slice());
        let undecoded = |reason| Instruction::Undecoded { program, reason };
        if program == SYSTEM_PROGRAM_ID {
            decode_system(&data, acct).map_or_else(
                || undecoded("System Program data or accounts do not decode"),
                Instruction::System,
            )
        } else if program == SPL_TOKEN_PROGRAM_ID || program == SPL_TOKEN_2022_PROGRAM_ID {
            decode_token(program == SPL_TOKEN_2022_PROGRAM_ID, &data, acct, rest).map_or_else(
                || undecoded("token program data or accounts do not decode"),
                |(ix, authority, signers)| Instruction::Token {
                    program,
                    ix,
                    authority,
                    signers,
                },
            )
        } else if program == COMPUTE_BUDGET_PROGRAM_ID {
            decode_compute_budget(&data).map_or_else(
                || undecoded("Compute Budget data does not decode"),
                Instruction::ComputeBudget,
            )
        } else if program == ASSOCIATED_TOKEN_PROGRAM_ID {
            match data.u8(0) {
                None | Some(0) => Instruction::AssociatedToken(AssociatedTokenInstruction::Create),
                Some(1) => {
                    Instruction::AssociatedToken(AssociatedTokenInstruction::CreateIdempotent)
                }
                Some(2) => Instruction::AssociatedToken(AssociatedTokenInstruction::RecoverNested),
                Some(_) => undecoded("unknown Associated Token Account instruction"),
            }
        } else if program == MEMO_PROGRAM_ID || program == MEMO_V1_PROGRAM_ID {
            Instruction::Memo
        } else {
            Instruction::Other { program }
        }
    }
}

fn decode_system(d: &Data<'_>, acct: impl Fn(usize) -> Option<Acct>) -> Option<SystemInstruction> {
    use SystemInstruction as S;
    Some(match d.u32(0)? {
        0 => S::CreateAccount {
            funder: acct(0)?,
            account: acct(1)?,
            lamports: d.u64(4)?,
            space: d.u64(12)?,
            owner: d.pubkey(20)?,
        },
        1 => S::Assign {
            account: acct(0)?,
            owner: d.pubkey(4)?,
        },
        2 => S::Transfer {
            from: acct(0)?,
            to: acct(1)?,
            lamports: d.u64(4)?,
        },
        3 => {
            // base, seed, lamports, space, owner
            let base = d.pubkey(4)?;
            let after = d.string_end(36)?;
            S::CreateAccountWithSeed {
                funder: acct(0)?,
                account: acct(1)?,
                base,
                lamports: d.u64(after)?,
                space: d.u64(after + 8)?,
                owner: d.pubkey(after + 16)?,
            }
        }
        4 => S::AdvanceNonceAccount {
            nonce: acct(0)?,
            authority: acct(2)?,
        },
        5 => S::WithdrawNonceAccount {
            nonce: acct(0)?,
            to: acct(1)?,
            authority: acct(4)?,
            lamports: d.u64(4)?,
        },
        6 => S::InitializeNonceAccount {
            nonce: acct(0)?,
            authority: d.pubkey(4)?,
        },
        7 => S::AuthorizeNonceAccount {
            nonce: acct(0)?,
            authority: acct(1)?,
            new_authority: d.pubkey(4)?,
        },
        8 => S::Allocate {
            account: acct(0)?,
            space: d.u64(4)?,
        },
        9 => {
            let base = d.pubkey(4)?;
            let after = d.string_end(36)?;
            S::AllocateWithSeed {
                account: acct(0)?,
                base,
                space: d.u64(after)?,
                owner: d.pubkey(after + 8)?,
            }
        }
        10 => {
            let base = d.pubkey(4)?;
            let after = d.string_end(36)?;
            S::AssignWithSeed {
                account: acct(0)?,
                base,
                owner: d.pubkey(after)?,
            }
        }
        11 => {
            // lamports, from_seed, from_owner
            let after = d.string_end(12)?;
            d.pubkey(after)?;
            S::TransferWithSeed {
                from: acct(0)?,
                base: acct(1)?,
                to: acct(2)?,
                lamports: d.u64(4)?,
            }
        }
        12 => S::UpgradeNonceAccount { nonce: acct(0)? },
        13 => S::CreateAccountAllowPrefund {
            account: acct(0)?,
            funder: acct(1),
            lamports: d.u64(4)?,
            space: d.u64(12)?,
            owner: d.pubkey(20)?,
        },
        _ => return None,
    })
}

type TokenDecoded = (TokenInstruction, Acct, Vec<Acct>);

fn decode_token(
    is_2022: bool,
    d: &Data<'_>,
    acct: impl Fn(usize) -> Option<Acct>,
    rest: impl Fn(usize) -> Vec<Acct>,
) -> Option<TokenDecoded> {
    use TokenInstruction as T;
    let tag = d.u8(0)?;
    // the checked variants carry `decimals` after the amount; without it they fail to unpack
    if matches!(tag, 14 | 15) {
        d.u8(9)?;
    }
    // the fixed accounts, the authority's position; co-signers follow it
    let with_authority =
        |ix: T, at: usize| -> Option<TokenDecoded> { Some((ix, acct(at)?, rest(at + 1))) };
    match tag {
        3 => with_authority(
            T::Transfer {
                source: acct(0)?,
                destination: acct(1)?,
                amount: d.u64(1)?,
            },
            2,
        ),
        4 => with_authority(
            T::Approve {
                source: acct(0)?,
                delegate: acct(1)?,
                amount: d.u64(1)?,
            },
            2,
        ),
        5 => with_authority(T::Revoke { source: acct(0)? }, 1),
        6 => with_authority(
            T::SetAuthority {
                target: acct(0)?,
                authority_type: d.u8(1)?,
                new_authority: d.coption_pubkey(2)?,
            },
            1,
        ),
        7 | 14 => with_authority(
            T::MintTo {
                mint: acct(0)?,
                destination: acct(1)?,
                amount: d.u64(1)?,
                checked: tag == 14,
            },
            2,
        ),
        8 | 15 => with_authority(
            T::Burn {
                account: acct(0)?,
                mint: acct(1)?,
                amount: d.u64(1)?,
                checked: tag == 15,
            },
            2,
        ),
        9 => with_authority(
            T::CloseAccount {
                account: acct(0)?,
                destination: acct(1)?,
            },
            2,
        ),
        10 | 11 => with_authority(
            T::FreezeOrThaw {
                account: acct(0)?,
                mint: acct(1)?,
                freeze: tag == 10,
            },
            2,
        ),
        12 => with_authority(
            T::TransferChecked {
                source: acct(0)?,
                mint: acct(1)?,
                destination: acct(2)?,
                amount: d.u64(1)?,
                decimals: d.u8(9)?,
            },
            3,
        ),
        13 => with_authority(
            T::ApproveChecked {
                source: acct(0)?,
                mint: acct(1)?,
                delegate: acct(2)?,
                amount: d.u64(1)?,
                decimals: d.u8(9)?,
            },
            3,
        ),
        0 | 1 | 2 | 16 | 18 | 19 | 20 | 22 => Some((T::Initialize { tag }, None, Vec::new())),
        17 => Some((T::SyncNative { account: acct(0)? }, None, Vec::new())),
        21 | 23 | 24 => Some((T::ReadOnly { tag }, None, Vec::new())),
        // Token-2022 only from here on
        _ if !is_2022 => None,
        25 | 32 | 35 => Some((T::Initialize { tag }, None, Vec::new())),
        26 => match d.u8(1)? {
            1 => with_authority(
                T::TransferCheckedWithFee {
                    source: acct(0)?,
                    mint: acct(1)?,
                    destination: acct(2)?,
                    amount: d.u64(2)?,
                    decimals: d.u8(10)?,
                    fee: d.u64(11)?,
                },
                3,
            ),
            4 => Some((T::HarvestWithheldTokensToMint, None, Vec::new())),
            sub @ (0 | 2 | 3 | 5) => Some((
                T::Extension {
                    tag,
                    sub: Some(sub),
                },
                None,
                Vec::new(),
            )),
            _ => None,
        },
        // extensions with sub-instructions
        27..=31 | 33 | 34 | 36..=44 => {
            let sub = match tag {
                29 | 31 | 38 => None,
                _ => Some(d.u8(1)?),
            };
            Some((T::Extension { tag, sub }, None, Vec::new()))
        }
        _ => None,
    }
}

fn decode_compute_budget(d: &Data<'_>) -> Option<ComputeBudgetInstruction> {
    use ComputeBudgetInstruction as C;
    Some(match d.u8(0)? {
        0 => C::RequestUnitsDeprecated {
            units: d.u32(1)?,
            additional_fee: d.u32(5)?,
        },
        1 => C::RequestHeapFrame(d.u32(1)?),
        2 => C::SetComputeUnitLimit(d.u32(1)?),
        3 => C::SetComputeUnitPrice(d.u64(1)?),
        4 => C::SetLoadedAccountsDataSizeLimit(d.u32(1)?),
        _ => return None,
    })
}

/// The canonical name of an instruction of a decoded program, for refusal messages and
/// for `solana.instructions` entries; `None` for programs this module does not decode.
pub fn instruction_name(ix: &Instruction) -> &'static str {
    use SystemInstruction as S;
    use TokenInstruction as T;
    match ix {
        Instruction::System(s) => match s {
            S::CreateAccount { .. } => "CreateAccount",
            S::Assign { .. } => "Assign",
            S::Transfer { .. } => "Transfer",
            S::CreateAccountWithSeed { .. } => "CreateAccountWithSeed",
            S::AdvanceNonceAccount { .. } => "AdvanceNonceAccount",
            S::WithdrawNonceAccount { .. } => "WithdrawNonceAccount",
            S::InitializeNonceAccount { .. } => "InitializeNonceAccount",
            S::AuthorizeNonceAccount { .. } => "AuthorizeNonceAccount",
            S::Allocate { .. } => "Allocate",
            S::AllocateWithSeed { .. } => "AllocateWithSeed",
            S::AssignWithSeed { .. } => "AssignWithSeed",
            S::TransferWithSeed { .. } => "TransferWithSeed",
            S::UpgradeNonceAccount { .. } => "UpgradeNonceAccount",
            S::CreateAccountAllowPrefund { .. } => "CreateAccountAllowPrefund",
        },
        Instruction::Token { ix, .. } => match ix {
            T::Transfer { .. } => "Transfer",
            T::Approve { .. } => "Approve",
            T::Revoke { .. } => "Revoke",
            T::SetAuthority { .. } => "SetAuthority",
            T::MintTo { checked: false, .. } => "MintTo",
            T::MintTo { checked: true, .. } => "MintToChecked",
            T::Burn { checked: false, .. } => "Burn",
            T::Burn { checked: true, .. } => "BurnChecked",
            T::CloseAccount { .. } => "CloseAccount",
            T::FreezeOrThaw { freeze: true, .. } => "FreezeAccount",
            T::FreezeOrThaw { freeze: false, .. } => "ThawAccount",
            T::TransferChecked { .. } => "TransferChecked",
            T::ApproveChecked { .. } => "ApproveChecked",
            T::Initialize { .. } => "Initialize*",
            T::SyncNative { .. } => "SyncNative",
            T::ReadOnly { .. } => "read-only helper",
            T::TransferCheckedWithFee { .. } => "TransferCheckedWithFee",
            T::HarvestWithheldTokensToMint => "HarvestWithheldTokensToMint",
            T::Extension { .. } => "Token-2022 extension instruction",
        },
        Instruction::ComputeBudget(c) => match c {
            ComputeBudgetInstruction::RequestUnitsDeprecated { .. } => "RequestUnits",
            ComputeBudgetInstruction::RequestHeapFrame(_) => "RequestHeapFrame",
            ComputeBudgetInstruction::SetComputeUnitLimit(_) => "SetComputeUnitLimit",
            ComputeBudgetInstruction::SetComputeUnitPrice(_) => "SetComputeUnitPrice",
            ComputeBudgetInstruction::SetLoadedAccountsDataSizeLimit(_) => {
                "SetLoadedAccountsDataSizeLimit"
            }
        },
        Instruction::AssociatedToken(a) => match a {
            AssociatedTokenInstruction::Create => "Create",
            AssociatedTokenInstruction::CreateIdempotent => "CreateIdempotent",
            AssociatedTokenInstruction::RecoverNested => "RecoverNested",
        },
        Instruction::Memo => "Memo",
        Instruction::Undecoded { .. } => "undecodable instruction",
        Instruction::Other { .. } => "instruction",
    }
}

/// Names an operator may write in `solana.instructions` for the System Program and the
/// token programs, with the data prefix each stands for (what the refusal would lift).
pub fn named_discriminator(program: &Pubkey, name: &str) -> Option<Vec<u8>> {
    if *program == SYSTEM_PROGRAM_ID {
        let tag: u32 = match name {
            "CreateAccount" => 0,
            "Assign" => 1,
            "CreateAccountWithSeed" => 3,
            "AuthorizeNonceAccount" => 7,
            "Allocate" => 8,
            "AllocateWithSeed" => 9,
            "AssignWithSeed" => 10,
            "CreateAccountAllowPrefund" => 13,
            _ => return None,
        };
        return Some(tag.to_le_bytes().to_vec());
    }
    if *program == SPL_TOKEN_PROGRAM_ID || *program == SPL_TOKEN_2022_PROGRAM_ID {
        let tag: &[u8] = match name {
            "SetAuthority" => &[6],
            "MintTo" => &[7],
            "CloseAccount" => &[9],
            "FreezeAccount" => &[10],
            "ThawAccount" => &[11],
            "MintToChecked" => &[14],
            _ => return None,
        };
        return Some(tag.to_vec());
    }
    None
}

#[cfg(test)]
mod tests;
