//! Solana transaction and off-chain message handling for keyward.
//!
//! This module owns everything Solana-specific that sits between a request
//! and the HSM: a strict parser for legacy and v0 transaction wire bytes,
//! placement of a signature into its slot, decoding of the few instructions
//! that spending policy understands, the off-chain message signing format,
//! and base58 key handling. It does no I/O: callers hand in bytes (already
//! base64-decoded) and get bytes or typed values back.
//!
//! # Why a hand-written parser
//!
//! The split `solana-*` crates pull in bincode, serde and a large dependency
//! tree for what is about two hundred lines of a stable, documented wire
//! format. We also need things those crates do not give us directly: the
//! exact byte offset of each signature slot (so the HSM signature is written
//! into the caller's bytes without a re-serialisation that could change
//! them), and strict rejection of trailing bytes, non-canonical lengths and
//! anything else the cluster would refuse, so that what the policy engine
//! inspects is exactly what gets signed.
//!
//! # Wire format
//!
//! ```text
//! transaction = shortvec(sig count) || sig[64]* || message
//! message     = [0x80 | version]? || header[3] || shortvec || key[32]*
//!               || blockhash[32] || shortvec || instruction*
//!               || (v0 only) shortvec || lookup*
//! instruction = program_id_index u8 || shortvec || u8* || shortvec || data
//! lookup      = table[32] || shortvec || u8* || shortvec || u8*
//! ```
//!
//! `shortvec` is Solana's compact-u16: 1 to 3 bytes, 7 bits per byte,
//! little-endian, continuation in the high bit.

use std::fmt;

pub mod instructions;
mod message;
mod offchain;
pub mod runtime;
mod transaction;
mod wire;
pub use instructions::{
    instruction_name, Acct, AssociatedTokenInstruction, ComputeBudgetInstruction, Instruction,
    SystemInstruction, TokenInstruction, ASSOCIATED_TOKEN_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID,
};
pub use message::*;
use message::{check_size, parse_message_with, read_message, SizeLimit};
pub use offchain::*;
pub use transaction::*;
use wire::*;

use thiserror::Error;

/// Largest transaction the cluster accepts (IPv6 minimum MTU less headers).
pub const PACKET_DATA_SIZE: usize = 1232;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an ed25519 public key / Solana address.
pub const PUBKEY_LEN: usize = 32;

/// A Solana address.
pub type Pubkey = [u8; PUBKEY_LEN];

/// System Program, base58 `11111111111111111111111111111111`.
pub const SYSTEM_PROGRAM_ID: Pubkey = [0; 32];
/// SPL Token, base58 `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`.
pub const SPL_TOKEN_PROGRAM_ID: Pubkey = [
    0x06, 0xdd, 0xf6, 0xe1, 0xd7, 0x65, 0xa1, 0x93, 0xd9, 0xcb, 0xe1, 0x46, 0xce, 0xeb, 0x79, 0xac,
    0x1c, 0xb4, 0x85, 0xed, 0x5f, 0x5b, 0x37, 0x91, 0x3a, 0x8c, 0xf5, 0x85, 0x7e, 0xff, 0x00, 0xa9,
];
/// SPL Token-2022, base58 `TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb`.
pub const SPL_TOKEN_2022_PROGRAM_ID: Pubkey = [
    0x06, 0xdd, 0xf6, 0xe1, 0xee, 0x75, 0x8f, 0xde, 0x18, 0x42, 0x5d, 0xbc, 0xe4, 0x6c, 0xcd, 0xda,
    0xb6, 0x1a, 0xfc, 0x4d, 0x83, 0xb9, 0x0d, 0x27, 0xfe, 0xbd, 0xf9, 0x28, 0xd8, 0xa1, 0x8b, 0xfc,
];

/// Prefix of every off-chain message. 0xff can never start a transaction
/// message (it would be version 127), which is what keeps the two domains
/// apart.
pub const OFFCHAIN_SIGNING_DOMAIN: &[u8; 16] = b"\xffsolana offchain";
/// Signing domain + version + format + u16 length.
pub const OFFCHAIN_V0_HEADER_LEN: usize = 16 + 1 + 1 + 2;
/// Longest body for formats 0 and 1, so the whole thing fits a packet and
/// hardware wallets can display it.
pub const OFFCHAIN_MAX_LEN_LEDGER: usize = PACKET_DATA_SIZE - OFFCHAIN_V0_HEADER_LEN;
/// Longest body for format 2; the total must fit the u16 length space.
pub const OFFCHAIN_MAX_LEN: usize = u16::MAX as usize - OFFCHAIN_V0_HEADER_LEN;

/// Highest number of accounts a message may reference: indices are u8.
const MAX_ACCOUNTS: usize = 256;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What is wrong with transaction or message wire bytes. Every variant names
/// the part at fault and, where it helps, the byte offset.
#[allow(
    missing_docs,
    reason = "each variant is described by its #[error] text"
)]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("{len} bytes exceeds the {max}-byte packet size")]
    TooLarge { len: usize, max: usize },
    #[error("truncated at byte {offset} while reading {field}")]
    Truncated { field: &'static str, offset: usize },
    #[error("{count} trailing byte(s) after the end at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
    #[error("non-canonical compact-u16 for {field} at byte {offset}")]
    NonCanonicalLength { field: &'static str, offset: usize },
    #[error("compact-u16 for {field} at byte {offset} exceeds u16::MAX")]
    LengthOverflow { field: &'static str, offset: usize },
    #[error("{signatures} signature(s) but the header requires {required}")]
    SignatureCountMismatch { signatures: usize, required: u8 },
    #[error("header requires zero signatures")]
    NoRequiredSignatures,
    #[error("header requires {required} signer(s) but there are only {keys} account key(s)")]
    TooFewAccountKeys { required: u8, keys: usize },
    #[error(
        "readonly signed count {readonly} must be below the required signature count {required}"
    )]
    ReadonlySigned { readonly: u8, required: u8 },
    #[error("readonly unsigned count {readonly} exceeds the {unsigned} unsigned account key(s)")]
    ReadonlyUnsigned { readonly: u8, unsigned: usize },
    #[error("account key {index} duplicates an earlier key")]
    DuplicateAccountKey { index: usize },
    #[error("{total} accounts exceed the limit of {MAX_ACCOUNTS}")]
    TooManyAccounts { total: usize },
    #[error("instruction {instruction} program id index {index} is not a static non-payer key (static keys: {static_keys})")]
    ProgramIdIndex {
        instruction: usize,
        index: u8,
        static_keys: usize,
    },
    #[error("instruction {instruction} account {position} index {index} is out of range (accounts: {total})")]
    AccountIndex {
        instruction: usize,
        position: usize,
        index: u8,
        total: usize,
    },
    #[error("address table lookup {table} selects no accounts")]
    EmptyLookup { table: usize },
}

/// Errors surfaced to keyward callers. [`SolanaError::code`] is the stable
/// machine-readable identifier; Display is for humans and names the part.
#[allow(
    missing_docs,
    reason = "each variant is described by its #[error] text"
)]
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SolanaError {
    #[error("invalid transaction: {0}")]
    InvalidTransaction(WireError),
    #[error("unsupported transaction message version {0}")]
    UnsupportedVersion(u8),
    #[error("key is not a required signer of this transaction")]
    NotASigner,
    #[error("signer index {index} out of range: transaction requires {required} signature(s)")]
    SignerIndexOutOfRange { index: usize, required: usize },
    #[error("signature does not verify for signer {index}")]
    BadSignature { index: usize },
    #[error("bytes to sign as a message parse as a Solana transaction")]
    MessageIsTransaction,
    #[error("invalid off-chain message: {0}")]
    InvalidMessage(&'static str),
    #[error("invalid public key: {0}")]
    InvalidPubkey(&'static str),
}

impl SolanaError {
    /// Stable snake_case code for API responses and audit logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidTransaction(_) => "invalid_transaction",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::NotASigner | Self::SignerIndexOutOfRange { .. } => "not_a_signer",
            Self::BadSignature { .. } => "bad_signature",
            Self::MessageIsTransaction => "message_is_transaction",
            Self::InvalidMessage(_) => "invalid_message",
            Self::InvalidPubkey(_) => "invalid_pubkey",
        }
    }
}

impl From<WireError> for SolanaError {
    fn from(e: WireError) -> Self {
        Self::InvalidTransaction(e)
    }
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// An unsigned legacy transaction with one System Program transfer of `lamports` from
/// `from` (fee payer, only signer) to `to`; the signature slot is zeroed. For demos and
/// tests: real clients build their transactions with their own SDK.
pub fn unsigned_transfer(
    from: &Pubkey,
    to: &Pubkey,
    lamports: u64,
    blockhash: &[u8; 32],
) -> Vec<u8> {
    let mut tx = vec![1u8]; // one signature slot (compact-u16 of 1)
    tx.extend_from_slice(&[0u8; SIGNATURE_LEN]);
    // header: 1 required signature, 0 read-only signed, 1 read-only unsigned (the program)
    tx.extend_from_slice(&[1, 0, 1]);
    tx.push(3); // account keys
    tx.extend_from_slice(from);
    tx.extend_from_slice(to);
    tx.extend_from_slice(&SYSTEM_PROGRAM_ID);
    tx.extend_from_slice(blockhash);
    tx.push(1); // instructions
    tx.push(2); // program id index
    tx.extend_from_slice(&[2, 0, 1]); // accounts: from, to
    tx.push(12); // data: u32 discriminant 2 (Transfer) + u64 lamports
    tx.extend_from_slice(&2u32.to_le_bytes());
    tx.extend_from_slice(&lamports.to_le_bytes());
    tx
}

pub fn pubkey_of(sk: &ed25519_dalek::SigningKey) -> Pubkey {
    sk.verifying_key().to_bytes()
}

pub fn to_base58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// Parses a base58 address. The round-trip check refuses any spelling other
/// than the canonical one, so one key has exactly one accepted string.
pub fn parse_pubkey(base58: &str) -> Result<Pubkey, SolanaError> {
    let mut out = [0u8; PUBKEY_LEN];
    let n = bs58::decode(base58)
        .onto(&mut out)
        .map_err(|_| SolanaError::InvalidPubkey("not base58 of 32 bytes"))?;
    if n != PUBKEY_LEN || to_base58(&out) != base58 {
        return Err(SolanaError::InvalidPubkey("not base58 of 32 bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
