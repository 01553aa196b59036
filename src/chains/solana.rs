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
pub use instructions::{
    instruction_name, Acct, AssociatedTokenInstruction, ComputeBudgetInstruction, Instruction,
    SystemInstruction, TokenInstruction, ASSOCIATED_TOKEN_PROGRAM_ID, COMPUTE_BUDGET_PROGRAM_ID,
    MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID,
};

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
// Byte reader
// ---------------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(WireError::Truncated {
            field,
            offset: self.buf.len(),
        })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?[0])
    }

    fn pubkey(&mut self, field: &'static str) -> Result<Pubkey, WireError> {
        let mut out = [0u8; PUBKEY_LEN];
        out.copy_from_slice(self.take(PUBKEY_LEN, field)?);
        Ok(out)
    }

    fn bytes_with_len(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.shortvec(field)?;
        Ok(self.take(n, field)?.to_vec())
    }

    /// Decodes compact-u16 the way the validator does: an encoding that has a
    /// shorter form is rejected, otherwise one payload could have two
    /// byte-different (and differently signed) serialisations.
    fn shortvec(&mut self, field: &'static str) -> Result<usize, WireError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for nth in 0..3 {
            let byte = self.u8(field)?;
            if byte == 0 && nth > 0 {
                return Err(WireError::NonCanonicalLength {
                    field,
                    offset: start,
                });
            }
            value |= u32::from(byte & 0x7f) << (7 * nth);
            let done = byte & 0x80 == 0;
            if value > u32::from(u16::MAX) || (nth == 2 && !done) {
                return Err(WireError::LengthOverflow {
                    field,
                    offset: start,
                });
            }
            if done {
                return Ok(value as usize);
            }
        }
        // Not reached: the third byte either finishes or overflows above.
        Err(WireError::LengthOverflow {
            field,
            offset: start,
        })
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

/// Number of bytes compact-u16 uses for `n`.
fn shortvec_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        _ => 3,
    }
}

// ---------------------------------------------------------------------------
// Message
// ---------------------------------------------------------------------------

/// The three header counts, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    pub num_required_signatures: u8,
    pub num_readonly_signed: u8,
    pub num_readonly_unsigned: u8,
}

/// An instruction as it appears on the wire: indices into the account list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledInstruction {
    pub program_id_index: u8,
    pub accounts: Vec<u8>,
    pub data: Vec<u8>,
}

/// A v0 address table lookup. The table's contents live on chain, so the
/// addresses it loads are unknown here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressTableLookup {
    pub account_key: Pubkey,
    pub writable_indexes: Vec<u8>,
    pub readonly_indexes: Vec<u8>,
}

impl AddressTableLookup {
    fn loaded_count(&self) -> usize {
        self.writable_indexes.len() + self.readonly_indexes.len()
    }
}

/// A validated legacy or v0 transaction message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    version: Option<u8>,
    header: MessageHeader,
    account_keys: Vec<Pubkey>,
    recent_blockhash: [u8; 32],
    instructions: Vec<CompiledInstruction>,
    lookups: Vec<AddressTableLookup>,
}

/// How strictly to parse. Detection of transaction-shaped bytes skips the
/// packet size, so that an oversized (or future, larger-packet) message is
/// still recognised and refused as an off-chain message, and accepts trailing
/// bytes: a message followed by anything is still that message to a parser
/// that reads what it needs and ignores the rest (bincode-style), and a
/// signature over those bytes must not be obtainable as a "message".
#[derive(Clone, Copy)]
enum SizeLimit {
    Enforce,
    Ignore,
}

/// Parses a bare message (no signature section). Trailing bytes are an
/// error, as is a message too large to fit a transaction packet.
/// Errors carry the `invalid_transaction` code: a message is the signed
/// part of a transaction and fails for the same reasons.
pub fn parse_message(bytes: &[u8]) -> Result<ParsedMessage, SolanaError> {
    parse_message_with(bytes, SizeLimit::Enforce)
}

fn parse_message_with(bytes: &[u8], limit: SizeLimit) -> Result<ParsedMessage, SolanaError> {
    if matches!(limit, SizeLimit::Enforce) {
        check_size(bytes.len())?;
    }
    let mut r = Reader::new(bytes);
    let msg = read_message(&mut r)?;
    if matches!(limit, SizeLimit::Enforce) {
        r.finish()?;
        let n = usize::from(msg.header.num_required_signatures);
        check_size(shortvec_len(n) + n * SIGNATURE_LEN + bytes.len())?;
    }
    Ok(msg)
}

fn check_size(len: usize) -> Result<(), WireError> {
    if len > PACKET_DATA_SIZE {
        return Err(WireError::TooLarge {
            len,
            max: PACKET_DATA_SIZE,
        });
    }
    Ok(())
}

fn read_message(r: &mut Reader<'_>) -> Result<ParsedMessage, SolanaError> {
    let version = read_version(r)?;
    let header = MessageHeader {
        num_required_signatures: r.u8("num_required_signatures")?,
        num_readonly_signed: r.u8("num_readonly_signed")?,
        num_readonly_unsigned: r.u8("num_readonly_unsigned")?,
    };
    let key_count = r.shortvec("account key count")?;
    let account_keys = (0..key_count)
        .map(|_| r.pubkey("account key"))
        .collect::<Result<Vec<_>, _>>()?;
    let recent_blockhash = r.pubkey("recent blockhash")?;
    let ix_count = r.shortvec("instruction count")?;
    let instructions = (0..ix_count)
        .map(|_| read_instruction(r))
        .collect::<Result<Vec<_>, _>>()?;
    let lookups = match version {
        Some(_) => read_lookups(r)?,
        None => Vec::new(),
    };
    let msg = ParsedMessage {
        version,
        header,
        account_keys,
        recent_blockhash,
        instructions,
        lookups,
    };
    msg.validate()?;
    Ok(msg)
}

/// A legacy message starts with num_required_signatures, which is always
/// below 128, so the high bit is free to flag a versioned message.
fn read_version(r: &mut Reader<'_>) -> Result<Option<u8>, SolanaError> {
    let first = *r.buf.get(r.pos).ok_or(WireError::Truncated {
        field: "message prefix",
        offset: r.pos,
    })?;
    if first & 0x80 == 0 {
        return Ok(None);
    }
    r.pos += 1;
    match first & 0x7f {
        0 => Ok(Some(0)),
        v => Err(SolanaError::UnsupportedVersion(v)),
    }
}

fn read_instruction(r: &mut Reader<'_>) -> Result<CompiledInstruction, WireError> {
    Ok(CompiledInstruction {
        program_id_index: r.u8("instruction program id index")?,
        accounts: r.bytes_with_len("instruction account indices")?,
        data: r.bytes_with_len("instruction data")?,
    })
}

fn read_lookups(r: &mut Reader<'_>) -> Result<Vec<AddressTableLookup>, WireError> {
    let count = r.shortvec("address table lookup count")?;
    (0..count)
        .map(|_| {
            Ok(AddressTableLookup {
                account_key: r.pubkey("address table key")?,
                writable_indexes: r.bytes_with_len("address table writable indexes")?,
                readonly_indexes: r.bytes_with_len("address table readonly indexes")?,
            })
        })
        .collect()
}

impl ParsedMessage {
    /// Mirrors the validator's sanitize checks, so that anything accepted
    /// here is something the cluster would also accept structurally.
    fn validate(&self) -> Result<(), WireError> {
        self.validate_header()?;
        // Bound the account count before the quadratic duplicate scan, since
        // detection parses inputs without the packet-size cap.
        let total = self.validate_lookups()?;
        self.validate_keys()?;
        self.instructions
            .iter()
            .enumerate()
            .try_for_each(|(i, ix)| self.validate_instruction(i, ix, total))
    }

    fn validate_header(&self) -> Result<(), WireError> {
        let h = self.header;
        let keys = self.account_keys.len();
        if h.num_required_signatures == 0 {
            return Err(WireError::NoRequiredSignatures);
        }
        if usize::from(h.num_required_signatures) > keys {
            return Err(WireError::TooFewAccountKeys {
                required: h.num_required_signatures,
                keys,
            });
        }
        // The fee payer (signer 0) must be writable.
        if h.num_readonly_signed >= h.num_required_signatures {
            return Err(WireError::ReadonlySigned {
                readonly: h.num_readonly_signed,
                required: h.num_required_signatures,
            });
        }
        let unsigned = keys - usize::from(h.num_required_signatures);
        if usize::from(h.num_readonly_unsigned) > unsigned {
            return Err(WireError::ReadonlyUnsigned {
                readonly: h.num_readonly_unsigned,
                unsigned,
            });
        }
        Ok(())
    }

    /// Duplicates would make "which slot does this key sign" ambiguous; the
    /// runtime rejects them too (AccountLoadedTwice).
    fn validate_keys(&self) -> Result<(), WireError> {
        let keys = &self.account_keys;
        for i in 1..keys.len() {
            if keys[..i].contains(&keys[i]) {
                return Err(WireError::DuplicateAccountKey { index: i });
            }
        }
        Ok(())
    }

    /// Returns the total number of addressable accounts.
    fn validate_lookups(&self) -> Result<usize, WireError> {
        if let Some(table) = self.lookups.iter().position(|l| l.loaded_count() == 0) {
            return Err(WireError::EmptyLookup { table });
        }
        let total = self.total_account_count();
        if total > MAX_ACCOUNTS {
            return Err(WireError::TooManyAccounts { total });
        }
        Ok(total)
    }

    /// Program ids must be static keys (the runtime cannot load a program
    /// through a lookup table) and never the fee payer.
    fn validate_instruction(
        &self,
        i: usize,
        ix: &CompiledInstruction,
        total: usize,
    ) -> Result<(), WireError> {
        let static_keys = self.account_keys.len();
        let pid = usize::from(ix.program_id_index);
        if pid == 0 || pid >= static_keys {
            return Err(WireError::ProgramIdIndex {
                instruction: i,
                index: ix.program_id_index,
                static_keys,
            });
        }
        match ix.accounts.iter().position(|&a| usize::from(a) >= total) {
            Some(position) => Err(WireError::AccountIndex {
                instruction: i,
                position,
                index: ix.accounts[position],
                total,
            }),
            None => Ok(()),
        }
    }

    fn total_account_count(&self) -> usize {
        self.account_keys.len()
            + self
                .lookups
                .iter()
                .map(AddressTableLookup::loaded_count)
                .sum::<usize>()
    }

    /// `None` for a legacy message, `Some(0)` for v0.
    pub fn version(&self) -> Option<u8> {
        self.version
    }

    pub fn header(&self) -> MessageHeader {
        self.header
    }

    pub fn num_required_signatures(&self) -> usize {
        usize::from(self.header.num_required_signatures)
    }

    /// The static account keys; accounts loaded through lookup tables are not
    /// included because their addresses are only known on chain.
    pub fn account_keys(&self) -> &[Pubkey] {
        &self.account_keys
    }

    pub fn recent_blockhash(&self) -> &[u8; 32] {
        &self.recent_blockhash
    }

    /// The account that pays fees; validation guarantees it exists.
    pub fn fee_payer(&self) -> Pubkey {
        self.account_keys[0]
    }

    /// Position of `pubkey` among the required signers, which is also its
    /// signature slot. Non-signing accounts are deliberately not matched.
    pub fn signer_index(&self, pubkey: &Pubkey) -> Option<usize> {
        self.account_keys[..self.num_required_signatures()]
            .iter()
            .position(|k| k == pubkey)
    }

    /// Like [`Self::signer_index`] but as an error for request handling.
    pub fn require_signer(&self, pubkey: &Pubkey) -> Result<usize, SolanaError> {
        self.signer_index(pubkey).ok_or(SolanaError::NotASigner)
    }

    pub fn instructions(&self) -> &[CompiledInstruction] {
        &self.instructions
    }

    pub fn address_table_lookups(&self) -> &[AddressTableLookup] {
        &self.lookups
    }

    pub fn has_lookup_tables(&self) -> bool {
        !self.lookups.is_empty()
    }

    /// Program invoked by instruction `ix`; `None` only if `ix` is out of
    /// range, since validation already forced program ids to static keys.
    pub fn program_id(&self, ix: usize) -> Option<Pubkey> {
        let index = self.instructions.get(ix)?.program_id_index;
        self.account_keys.get(usize::from(index)).copied()
    }

    /// Address of the `position`-th account of instruction `ix`, or `None`
    /// when it comes from a lookup table (or does not exist).
    pub fn instruction_account(&self, ix: usize, position: usize) -> Option<Pubkey> {
        let index = *self.instructions.get(ix)?.accounts.get(position)?;
        self.account_keys.get(usize::from(index)).copied()
    }
}

// ---------------------------------------------------------------------------
// Transaction
// ---------------------------------------------------------------------------

/// A validated transaction. It keeps its own copy of the wire bytes (at most
/// one packet) so a signature can only ever be placed into the bytes that
/// were actually inspected.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedTransaction {
    raw: Vec<u8>,
    message_offset: usize,
    message: ParsedMessage,
}

impl fmt::Debug for ParsedTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedTransaction")
            .field("len", &self.raw.len())
            .field("message_offset", &self.message_offset)
            .field("message", &self.message)
            .finish()
    }
}

/// Parses a full transaction (signature section + message), strictly.
pub fn parse_transaction(bytes: &[u8]) -> Result<ParsedTransaction, SolanaError> {
    parse_transaction_with(bytes, SizeLimit::Enforce)
}

fn parse_transaction_with(
    bytes: &[u8],
    limit: SizeLimit,
) -> Result<ParsedTransaction, SolanaError> {
    if matches!(limit, SizeLimit::Enforce) {
        check_size(bytes.len())?;
    }
    let mut r = Reader::new(bytes);
    let signatures = r.shortvec("signature count")?;
    let sig_bytes = signatures
        .checked_mul(SIGNATURE_LEN)
        .ok_or(WireError::Truncated {
            field: "signatures",
            offset: bytes.len(),
        })?;
    r.take(sig_bytes, "signatures")?;
    let message_offset = r.pos;
    let message = read_message(&mut r)?;
    if matches!(limit, SizeLimit::Enforce) {
        r.finish()?;
    }
    let required = message.header.num_required_signatures;
    if signatures != usize::from(required) {
        return Err(WireError::SignatureCountMismatch {
            signatures,
            required,
        }
        .into());
    }
    Ok(ParsedTransaction {
        // all of `bytes` when strict; without what trails the transaction otherwise
        raw: bytes[..r.pos].to_vec(),
        message_offset,
        message,
    })
}

impl ParsedTransaction {
    /// The whole transaction as parsed.
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes every signer signs.
    pub fn message_bytes(&self) -> &[u8] {
        &self.raw[self.message_offset..]
    }

    pub fn message(&self) -> &ParsedMessage {
        &self.message
    }

    /// Byte offset of signature slot `index` within [`Self::bytes`].
    pub fn signature_offset(&self, index: usize) -> Option<usize> {
        let n = self.num_required_signatures();
        (index < n).then(|| shortvec_len(n) + index * SIGNATURE_LEN)
    }

    /// Current content of signature slot `index` (all zeros when unsigned).
    pub fn signature(&self, index: usize) -> Option<&[u8; SIGNATURE_LEN]> {
        let at = self.signature_offset(index)?;
        self.raw[at..at + SIGNATURE_LEN].try_into().ok()
    }

    pub fn version(&self) -> Option<u8> {
        self.message.version()
    }

    pub fn num_required_signatures(&self) -> usize {
        self.message.num_required_signatures()
    }

    pub fn account_keys(&self) -> &[Pubkey] {
        self.message.account_keys()
    }

    pub fn fee_payer(&self) -> Pubkey {
        self.message.fee_payer()
    }

    pub fn signer_index(&self, pubkey: &Pubkey) -> Option<usize> {
        self.message.signer_index(pubkey)
    }

    pub fn require_signer(&self, pubkey: &Pubkey) -> Result<usize, SolanaError> {
        self.message.require_signer(pubkey)
    }

    pub fn instructions(&self) -> &[CompiledInstruction] {
        self.message.instructions()
    }

    pub fn program_id(&self, ix: usize) -> Option<Pubkey> {
        self.message.program_id(ix)
    }

    pub fn has_lookup_tables(&self) -> bool {
        self.message.has_lookup_tables()
    }

    /// Decodes top-level instruction `ix` (see [`instructions`]).
    pub fn decode_instruction(&self, ix: usize) -> Instruction {
        self.message.decode_instruction(ix)
    }
}

/// Returns the transaction bytes with `sig` written into slot `index`.
///
/// The signature is verified against the slot's key first: a wrong-key or
/// corrupted HSM answer must fail here, not after broadcast.
pub fn place_signature(
    parsed: &ParsedTransaction,
    index: usize,
    sig: &[u8; SIGNATURE_LEN],
) -> Result<Vec<u8>, SolanaError> {
    let required = parsed.num_required_signatures();
    let at = parsed
        .signature_offset(index)
        .ok_or(SolanaError::SignerIndexOutOfRange { index, required })?;
    if !verify(&parsed.account_keys()[index], parsed.message_bytes(), sig) {
        return Err(SolanaError::BadSignature { index });
    }
    let mut out = parsed.raw.clone();
    out[at..at + SIGNATURE_LEN].copy_from_slice(sig);
    Ok(out)
}

/// Like [`place_signature`], for a signature its caller has already verified strictly
/// under `signer` over `message` (the signer's check before any signature leaves): only
/// checks that `message` is this transaction's message and `signer` the key of slot
/// `index`, so a request does not pay for the same verification twice.
pub fn place_verified_signature(
    parsed: &ParsedTransaction,
    index: usize,
    sig: &[u8; SIGNATURE_LEN],
    signer: &Pubkey,
    message: &[u8],
) -> Result<Vec<u8>, SolanaError> {
    let required = parsed.num_required_signatures();
    let at = parsed
        .signature_offset(index)
        .ok_or(SolanaError::SignerIndexOutOfRange { index, required })?;
    if parsed.account_keys()[index] != *signer || parsed.message_bytes() != message {
        return Err(SolanaError::BadSignature { index });
    }
    let mut out = parsed.raw.clone();
    out[at..at + SIGNATURE_LEN].copy_from_slice(sig);
    Ok(out)
}

/// Strict verification (rejects small-order keys and malleable signatures),
/// matching what the validator's signature check accepts.
fn verify(pubkey: &Pubkey, message: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(pubkey) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    key.verify_strict(message, &sig).is_ok()
}

/// True when `bytes` is, or begins with, a legacy/v0 message or a
/// transaction. Neither the packet-size limit nor the end of the input is
/// checked: refusing too much is the safe direction for "sign this arbitrary
/// message", and a message with bytes appended is still a message to a
/// parser that ignores what follows it.
pub fn is_transaction_message(bytes: &[u8]) -> bool {
    parse_message_with(bytes, SizeLimit::Ignore).is_ok()
        || parse_transaction_with(bytes, SizeLimit::Ignore).is_ok()
}

/// Error form of [`is_transaction_message`] for request handling.
pub fn ensure_not_transaction(bytes: &[u8]) -> Result<(), SolanaError> {
    match is_transaction_message(bytes) {
        true => Err(SolanaError::MessageIsTransaction),
        false => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Off-chain messages
// ---------------------------------------------------------------------------

/// Off-chain message body format, the byte after the header version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OffchainFormat {
    RestrictedAscii = 0,
    LimitedUtf8 = 1,
    ExtendedUtf8 = 2,
}

/// Picks the narrowest format that fits, as the reference implementation
/// does, so the same text always yields the same signed bytes.
pub fn offchain_format(message: &[u8]) -> Result<OffchainFormat, SolanaError> {
    if message.is_empty() {
        return Err(SolanaError::InvalidMessage("message is empty"));
    }
    if message.len() > OFFCHAIN_MAX_LEN {
        return Err(SolanaError::InvalidMessage("message is too long"));
    }
    if std::str::from_utf8(message).is_err() {
        return Err(SolanaError::InvalidMessage("message is not valid UTF-8"));
    }
    let format = if message.len() > OFFCHAIN_MAX_LEN_LEDGER {
        OffchainFormat::ExtendedUtf8
    } else if message.iter().all(|b| (0x20..=0x7e).contains(b)) {
        OffchainFormat::RestrictedAscii
    } else {
        OffchainFormat::LimitedUtf8
    };
    Ok(format)
}

/// The bytes to sign for an off-chain message, header version 0:
///
/// ```text
/// b"\xffsolana offchain" || 0x00 (version) || format u8 || len u16 LE || message
/// ```
///
/// This is the layout of solana-sdk's `offchain_message` module up to the
/// 2.x releases and of `solana sign-offchain-message` built from them. The
/// written proposal (and solana-offchain-message 3.x) has since grown an
/// application domain (32 bytes) and a signer list between the version and
/// the format; those bytes differ, so a verifier must use the same layout.
/// Supporting the newer preamble is a separate, explicit format choice.
pub fn offchain_message_v0(message: &[u8]) -> Result<Vec<u8>, SolanaError> {
    let format = offchain_format(message)?;
    let len = u16::try_from(message.len())
        .map_err(|_| SolanaError::InvalidMessage("message is too long"))?;
    let mut out = Vec::with_capacity(OFFCHAIN_V0_HEADER_LEN + message.len());
    out.extend_from_slice(OFFCHAIN_SIGNING_DOMAIN);
    out.push(0);
    out.push(format as u8);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(message);
    Ok(out)
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
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey, Verifier};
    use rand::rngs::OsRng;

    // --- hand encoders: independent of the parser under test -------------

    fn shortvec(n: usize) -> Vec<u8> {
        let mut n = u16::try_from(n).unwrap();
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn with_len(items: &[u8]) -> Vec<u8> {
        let mut out = shortvec(items.len());
        out.extend_from_slice(items);
        out
    }

    struct Msg {
        version: Option<u8>,
        header: [u8; 3],
        keys: Vec<Pubkey>,
        blockhash: [u8; 32],
        ixs: Vec<(u8, Vec<u8>, Vec<u8>)>,
        lookups: Vec<(Pubkey, Vec<u8>, Vec<u8>)>,
    }

    impl Msg {
        fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            if let Some(v) = self.version {
                out.push(0x80 | v);
            }
            out.extend_from_slice(&self.header);
            out.extend(shortvec(self.keys.len()));
            self.keys.iter().for_each(|k| out.extend_from_slice(k));
            out.extend_from_slice(&self.blockhash);
            out.extend(shortvec(self.ixs.len()));
            for (pid, accounts, data) in &self.ixs {
                out.push(*pid);
                out.extend(with_len(accounts));
                out.extend(with_len(data));
            }
            if self.version.is_some() {
                out.extend(shortvec(self.lookups.len()));
                for (table, w, r) in &self.lookups {
                    out.extend_from_slice(table);
                    out.extend(with_len(w));
                    out.extend(with_len(r));
                }
            }
            out
        }
    }

    fn unsigned_tx(message: &[u8], signatures: usize) -> Vec<u8> {
        let mut out = shortvec(signatures);
        out.extend(vec![0u8; signatures * SIGNATURE_LEN]);
        out.extend_from_slice(message);
        out
    }

    fn transfer_data(lamports: u64) -> Vec<u8> {
        let mut d = 2u32.to_le_bytes().to_vec();
        d.extend_from_slice(&lamports.to_le_bytes());
        d
    }

    fn legacy_transfer(payer: Pubkey, to: Pubkey, lamports: u64) -> Msg {
        Msg {
            version: None,
            header: [1, 0, 1],
            keys: vec![payer, to, SYSTEM_PROGRAM_ID],
            blockhash: [7; 32],
            ixs: vec![(2, vec![0, 1], transfer_data(lamports))],
            lookups: vec![],
        }
    }

    fn payer_and_recipient() -> (SigningKey, Pubkey) {
        (SigningKey::generate(&mut OsRng), [9; 32])
    }

    fn wire_err(r: Result<impl fmt::Debug, SolanaError>) -> WireError {
        match r {
            Err(SolanaError::InvalidTransaction(e)) => e,
            other => panic!("expected wire error, got {other:?}"),
        }
    }

    /// Signs, places, reparses and checks the slot holds a valid signature.
    fn sign_and_check(sk: &SigningKey, tx: &[u8]) -> ParsedTransaction {
        let parsed = parse_transaction(tx).unwrap();
        let index = parsed.require_signer(&pubkey_of(sk)).unwrap();
        let sig = sk.sign(parsed.message_bytes()).to_bytes();
        let signed = place_signature(&parsed, index, &sig).unwrap();
        assert_eq!(signed.len(), tx.len());
        let reparsed = parse_transaction(&signed).unwrap();
        assert_eq!(reparsed.message(), parsed.message());
        assert_eq!(reparsed.message_bytes(), parsed.message_bytes());
        assert_eq!(reparsed.signature(index), Some(&sig));
        let vk = sk.verifying_key();
        let sig = ed25519_dalek::Signature::from_bytes(&sig);
        vk.verify(reparsed.message_bytes(), &sig).unwrap();
        reparsed
    }

    // --- happy paths ---------------------------------------------------

    #[test]
    fn legacy_transfer_parse_sign_place_verify() {
        let (sk, to) = payer_and_recipient();
        let payer = pubkey_of(&sk);
        let msg = legacy_transfer(payer, to, 1_500_000).encode();
        let tx = unsigned_tx(&msg, 1);
        let parsed = parse_transaction(&tx).unwrap();
        assert_eq!(parsed.version(), None);
        assert_eq!(parsed.num_required_signatures(), 1);
        assert_eq!(parsed.fee_payer(), payer);
        assert_eq!(parsed.account_keys(), &[payer, to, SYSTEM_PROGRAM_ID]);
        assert_eq!(parsed.message_bytes(), &msg[..]);
        assert_eq!(parsed.signature_offset(0), Some(1));
        assert_eq!(parsed.program_id(0), Some(SYSTEM_PROGRAM_ID));
        assert_eq!(parsed.program_id(1), None);
        assert!(!parsed.has_lookup_tables());
        assert_eq!(parsed.message().recent_blockhash(), &[7; 32]);
        assert_eq!(
            parsed.decode_instruction(0),
            Instruction::System(SystemInstruction::Transfer {
                from: Some(payer),
                to: Some(to),
                lamports: 1_500_000
            })
        );
        assert_eq!(parse_message(&msg).unwrap(), *parsed.message());
        sign_and_check(&sk, &tx);
    }

    fn v0_spl_transfer_checked(payer: Pubkey) -> Msg {
        Msg {
            version: Some(0),
            header: [1, 0, 1],
            keys: vec![payer, SPL_TOKEN_PROGRAM_ID],
            blockhash: [3; 32],
            // Index 2..=4 come from the lookup table (2 writable, 1 readonly).
            ixs: vec![(1, vec![2, 4, 3, 0], {
                let mut d = vec![12];
                d.extend_from_slice(&42_000u64.to_le_bytes());
                d.push(6);
                d
            })],
            lookups: vec![([5; 32], vec![10, 11], vec![12])],
        }
    }

    #[test]
    fn v0_with_lookup_table_parse_sign_place_verify() {
        let sk = SigningKey::generate(&mut OsRng);
        let payer = pubkey_of(&sk);
        let msg = v0_spl_transfer_checked(payer).encode();
        let tx = unsigned_tx(&msg, 1);
        let parsed = sign_and_check(&sk, &tx);
        assert_eq!(parsed.version(), Some(0));
        assert!(parsed.has_lookup_tables());
        let lookups = parsed.message().address_table_lookups();
        assert_eq!(lookups[0].account_key, [5; 32]);
        assert_eq!(lookups[0].writable_indexes, vec![10, 11]);
        assert_eq!(parsed.account_keys().len(), 2);
        assert_eq!(
            parsed.decode_instruction(0),
            Instruction::Token {
                program: SPL_TOKEN_PROGRAM_ID,
                ix: TokenInstruction::TransferChecked {
                    source: None,
                    mint: None,
                    destination: None,
                    amount: 42_000,
                    decimals: 6,
                },
                authority: Some(payer),
                signers: vec![],
            }
        );
    }

    #[test]
    fn two_signers_have_distinct_slots() {
        let a = SigningKey::generate(&mut OsRng);
        let b = SigningKey::generate(&mut OsRng);
        let mut m = legacy_transfer(pubkey_of(&a), [9; 32], 5);
        m.keys.insert(1, pubkey_of(&b));
        m.header = [2, 1, 1];
        m.ixs[0].0 = 3;
        let tx = unsigned_tx(&m.encode(), 2);
        let parsed = parse_transaction(&tx).unwrap();
        assert_eq!(parsed.signature_offset(1), Some(65));
        assert_eq!(parsed.signature_offset(2), None);
        assert_eq!(parsed.signer_index(&pubkey_of(&b)), Some(1));
        let half = sign_and_check(&b, &tx);
        assert_eq!(half.signature(0), Some(&[0u8; 64]));
        let full = sign_and_check(&a, half.bytes());
        assert_eq!(full.signature(1), half.signature(1));
    }

    #[test]
    fn base64_from_the_caller_round_trips() {
        use base64::{engine::general_purpose::STANDARD, Engine};
        let (sk, to) = payer_and_recipient();
        let tx = unsigned_tx(&legacy_transfer(pubkey_of(&sk), to, 1).encode(), 1);
        let decoded = STANDARD.decode(STANDARD.encode(&tx)).unwrap();
        let parsed = parse_transaction(&decoded).unwrap();
        let sig = sk.sign(parsed.message_bytes()).to_bytes();
        let signed = place_signature(&parsed, 0, &sig).unwrap();
        assert_eq!(&signed[1..65], &sig[..]);
        assert_eq!(&signed[65..], &tx[65..]);
    }

    #[test]
    fn huge_static_key_list_is_bounded_before_duplicate_scan() {
        let mut m = legacy_transfer([1; 32], [2; 32], 1);
        m.keys.resize(300, [3; 32]);
        assert_eq!(
            wire_err(parse_message_with(&m.encode(), SizeLimit::Ignore)),
            WireError::TooManyAccounts { total: 300 }
        );
    }

    // --- compact-u16 ---------------------------------------------------

    fn read_shortvec(bytes: &[u8]) -> Result<usize, WireError> {
        let mut r = Reader::new(bytes);
        let v = r.shortvec("test")?;
        r.finish()?;
        Ok(v)
    }

    #[test]
    fn compact_u16_canonical_values() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (0x7f, &[0x7f]),
            (0x80, &[0x80, 0x01]),
            (0x3fff, &[0xff, 0x7f]),
            (0x4000, &[0x80, 0x80, 0x01]),
            (0xffff, &[0xff, 0xff, 0x03]),
        ];
        for &(value, bytes) in cases {
            assert_eq!(shortvec(value), bytes);
            assert_eq!(shortvec_len(value), bytes.len());
            assert_eq!(read_shortvec(bytes), Ok(value));
        }
    }

    #[test]
    fn compact_u16_rejects_non_canonical_and_overflow() {
        for bytes in [&[0x80, 0x00][..], &[0xff, 0x80, 0x00], &[0x81, 0x80, 0x00]] {
            assert!(matches!(
                read_shortvec(bytes),
                Err(WireError::NonCanonicalLength { .. })
            ));
        }
        for bytes in [
            &[0xff, 0xff, 0x04][..],
            &[0x80, 0x80, 0x80],
            &[0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                read_shortvec(bytes),
                Err(WireError::LengthOverflow { .. })
            ));
        }
        assert!(matches!(
            read_shortvec(&[0x80]),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn non_canonical_signature_count_is_rejected() {
        let (sk, to) = payer_and_recipient();
        let msg = legacy_transfer(pubkey_of(&sk), to, 1).encode();
        let mut tx = vec![0x81, 0x00];
        tx.extend(vec![0u8; 64]);
        tx.extend(msg);
        assert!(matches!(
            wire_err(parse_transaction(&tx)),
            WireError::NonCanonicalLength {
                field: "signature count",
                offset: 0
            }
        ));
    }

    // --- rejection ------------------------------------------------------

    #[test]
    fn every_truncation_is_rejected() {
        let (sk, to) = payer_and_recipient();
        for msg in [
            legacy_transfer(pubkey_of(&sk), to, 1).encode(),
            v0_spl_transfer_checked(pubkey_of(&sk)).encode(),
        ] {
            let tx = unsigned_tx(&msg, 1);
            for len in 0..tx.len() {
                let err = parse_transaction(&tx[..len]).unwrap_err();
                assert_eq!(err.code(), "invalid_transaction", "len {len}: {err}");
            }
            for len in 0..msg.len() {
                assert!(parse_message(&msg[..len]).is_err(), "len {len}");
            }
        }
    }

    #[test]
    fn truncation_error_names_the_part() {
        let (sk, to) = payer_and_recipient();
        let tx = unsigned_tx(&legacy_transfer(pubkey_of(&sk), to, 1).encode(), 1);
        // 1 (count) + 64 (sig) + 3 (header) + 1 (key count) + 10 bytes of key 0.
        let err = parse_transaction(&tx[..79]).unwrap_err();
        assert_eq!(
            err,
            SolanaError::InvalidTransaction(WireError::Truncated {
                field: "account key",
                offset: 79
            })
        );
        assert!(err.to_string().contains("account key"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let (sk, to) = payer_and_recipient();
        let msg = legacy_transfer(pubkey_of(&sk), to, 1).encode();
        let mut tx = unsigned_tx(&msg, 1);
        tx.push(0);
        assert_eq!(
            wire_err(parse_transaction(&tx)),
            WireError::TrailingBytes {
                offset: tx.len() - 1,
                count: 1
            }
        );
        let mut m = msg.clone();
        m.extend_from_slice(&[1, 2]);
        assert!(matches!(
            wire_err(parse_message(&m)),
            WireError::TrailingBytes { count: 2, .. }
        ));
    }

    #[test]
    fn out_of_range_indices_are_rejected() {
        let (sk, to) = payer_and_recipient();
        let payer = pubkey_of(&sk);
        let mut m = legacy_transfer(payer, to, 1);
        m.ixs[0].0 = 3;
        assert!(matches!(
            wire_err(parse_message(&m.encode())),
            WireError::ProgramIdIndex { index: 3, .. }
        ));
        m.ixs[0].0 = 0; // the fee payer can never be the program
        assert!(matches!(
            wire_err(parse_message(&m.encode())),
            WireError::ProgramIdIndex { index: 0, .. }
        ));
        m.ixs[0] = (2, vec![0, 3], transfer_data(1));
        assert_eq!(
            wire_err(parse_message(&m.encode())),
            WireError::AccountIndex {
                instruction: 0,
                position: 1,
                index: 3,
                total: 3
            }
        );
    }

    #[test]
    fn v0_index_limits_include_lookup_accounts() {
        let payer = [1; 32];
        let mut m = v0_spl_transfer_checked(payer);
        m.ixs[0].1 = vec![4];
        assert!(parse_message(&m.encode()).is_ok());
        m.ixs[0].1 = vec![5];
        assert!(matches!(
            wire_err(parse_message(&m.encode())),
            WireError::AccountIndex {
                index: 5,
                total: 5,
                ..
            }
        ));
        // Program ids cannot come from a lookup table.
        m.ixs[0] = (2, vec![], vec![]);
        assert!(matches!(
            wire_err(parse_message(&m.encode())),
            WireError::ProgramIdIndex { index: 2, .. }
        ));
        m.ixs.clear();
        m.lookups[0].1.clear();
        m.lookups[0].2.clear();
        assert_eq!(
            wire_err(parse_message(&m.encode())),
            WireError::EmptyLookup { table: 0 }
        );
    }

    #[test]
    fn wrong_signature_count_is_rejected() {
        let (sk, to) = payer_and_recipient();
        let msg = legacy_transfer(pubkey_of(&sk), to, 1).encode();
        for n in [0, 2] {
            assert_eq!(
                wire_err(parse_transaction(&unsigned_tx(&msg, n))),
                WireError::SignatureCountMismatch {
                    signatures: n,
                    required: 1
                }
            );
        }
    }

    #[test]
    fn header_inconsistencies_are_rejected() {
        let (sk, to) = payer_and_recipient();
        let base = legacy_transfer(pubkey_of(&sk), to, 1);
        let check = |header: [u8; 3], expected: WireError| {
            let m = Msg {
                header,
                ..legacy_transfer(base.keys[0], to, 1)
            };
            assert_eq!(wire_err(parse_message(&m.encode())), expected);
        };
        check([0, 0, 1], WireError::NoRequiredSignatures);
        check(
            [4, 0, 0],
            WireError::TooFewAccountKeys {
                required: 4,
                keys: 3,
            },
        );
        check(
            [1, 1, 1],
            WireError::ReadonlySigned {
                readonly: 1,
                required: 1,
            },
        );
        check(
            [1, 0, 3],
            WireError::ReadonlyUnsigned {
                readonly: 3,
                unsigned: 2,
            },
        );
        let mut dup = base;
        dup.keys[1] = dup.keys[0];
        assert_eq!(
            wire_err(parse_message(&dup.encode())),
            WireError::DuplicateAccountKey { index: 1 }
        );
    }

    #[test]
    fn unsupported_version_is_rejected() {
        let mut msg = v0_spl_transfer_checked([1; 32]).encode();
        msg[0] = 0x81;
        let err = parse_message(&msg).unwrap_err();
        assert_eq!(err, SolanaError::UnsupportedVersion(1));
        assert_eq!(err.code(), "unsupported_version");
        let err = parse_transaction(&unsigned_tx(&msg, 1)).unwrap_err();
        assert_eq!(err, SolanaError::UnsupportedVersion(1));
    }

    #[test]
    fn oversized_transaction_is_rejected_but_still_detected() {
        let (sk, to) = payer_and_recipient();
        let mut m = legacy_transfer(pubkey_of(&sk), to, 1);
        m.ixs[0].2.resize(1060, 0);
        let msg = m.encode();
        let tx = unsigned_tx(&msg, 1);
        assert!(msg.len() <= PACKET_DATA_SIZE && tx.len() > PACKET_DATA_SIZE);
        assert!(matches!(
            wire_err(parse_transaction(&tx)),
            WireError::TooLarge { max: 1232, .. }
        ));
        // The bare message fits, but the transaction carrying it would not.
        assert!(matches!(
            wire_err(parse_message(&msg)),
            WireError::TooLarge { .. }
        ));
        assert!(is_transaction_message(&msg));
        assert!(is_transaction_message(&tx));
    }

    #[test]
    fn not_a_signer_and_bad_signatures() {
        let (sk, to) = payer_and_recipient();
        let tx = unsigned_tx(&legacy_transfer(pubkey_of(&sk), to, 1).encode(), 1);
        let parsed = parse_transaction(&tx).unwrap();
        // `to` is an account key, but not a signer.
        assert_eq!(parsed.signer_index(&to), None);
        let err = parsed.require_signer(&to).unwrap_err();
        assert_eq!(err.code(), "not_a_signer");
        let sig = sk.sign(parsed.message_bytes()).to_bytes();
        let err = place_signature(&parsed, 1, &sig).unwrap_err();
        assert_eq!(
            err,
            SolanaError::SignerIndexOutOfRange {
                index: 1,
                required: 1
            }
        );
        assert_eq!(err.code(), "not_a_signer");
        let other = SigningKey::generate(&mut OsRng);
        let wrong = other.sign(parsed.message_bytes()).to_bytes();
        let err = place_signature(&parsed, 0, &wrong).unwrap_err();
        assert_eq!(err, SolanaError::BadSignature { index: 0 });
        assert_eq!(err.code(), "bad_signature");
        // already verified: placed only in the verified key's slot, over this message
        let me = pubkey_of(&sk);
        let msg = parsed.message_bytes().to_vec();
        assert_eq!(
            place_verified_signature(&parsed, 0, &sig, &me, &msg).unwrap(),
            place_signature(&parsed, 0, &sig).unwrap()
        );
        assert_eq!(
            place_verified_signature(&parsed, 0, &wrong, &pubkey_of(&other), &msg),
            Err(SolanaError::BadSignature { index: 0 })
        );
        assert_eq!(
            place_verified_signature(&parsed, 0, &sig, &me, b"another message"),
            Err(SolanaError::BadSignature { index: 0 })
        );
        assert_eq!(
            place_verified_signature(&parsed, 1, &sig, &me, &msg),
            Err(SolanaError::SignerIndexOutOfRange {
                index: 1,
                required: 1
            })
        );
    }

    // --- transaction detection ----------------------------------------------

    #[test]
    fn transaction_message_detection() {
        let (sk, to) = payer_and_recipient();
        let legacy = legacy_transfer(pubkey_of(&sk), to, 1).encode();
        let v0 = v0_spl_transfer_checked(pubkey_of(&sk)).encode();
        assert!(is_transaction_message(&legacy));
        assert!(is_transaction_message(&v0));
        assert!(is_transaction_message(&unsigned_tx(&legacy, 1)));
        assert!(is_transaction_message(&unsigned_tx(&v0, 1)));
        assert!(!is_transaction_message(b"hello world"));
        assert!(!is_transaction_message(b""));
        assert!(!is_transaction_message(
            &offchain_message_v0(b"hello world").unwrap()
        ));
        // a message or transaction followed by anything is still refused
        for prefix in [legacy.clone(), v0.clone(), unsigned_tx(&legacy, 1)] {
            for tail in [&b"\0"[..], b" trailing text", &[0xff; 2000]] {
                let mut bytes = prefix.clone();
                bytes.extend_from_slice(tail);
                assert!(
                    is_transaction_message(&bytes),
                    "{} + {}",
                    prefix.len(),
                    tail.len()
                );
            }
        }
        // but a message cut short is not one
        assert!(!is_transaction_message(&legacy[..legacy.len() - 1]));
        // strict parsing still refuses the trailing bytes
        let mut trailing = legacy.clone();
        trailing.push(0);
        assert!(matches!(
            wire_err(parse_message(&trailing)),
            WireError::TrailingBytes { count: 1, .. }
        ));
        let err = ensure_not_transaction(&legacy).unwrap_err();
        assert_eq!(err.code(), "message_is_transaction");
        assert!(ensure_not_transaction(b"hello world").is_ok());
    }

    // --- instruction decoding -----------------------------------------

    #[test]
    fn instruction_decoding_edge_cases() {
        let (sk, to) = payer_and_recipient();
        let payer = pubkey_of(&sk);
        let mut m = legacy_transfer(payer, to, 1);
        // Programs ignore trailing instruction data, so policy must too.
        m.ixs[0].2.push(0xaa);
        let p = parse_message(&m.encode()).unwrap();
        assert!(matches!(
            p.decode_instruction(0),
            Instruction::System(SystemInstruction::Transfer { lamports: 1, .. })
        ));
        m.ixs[0].2.truncate(11);
        let p = parse_message(&m.encode()).unwrap();
        assert!(matches!(
            p.decode_instruction(0),
            Instruction::Undecoded {
                program: SYSTEM_PROGRAM_ID,
                ..
            }
        ));
        assert!(matches!(
            p.decode_instruction(5),
            Instruction::Undecoded { .. }
        ));
        // Too few accounts for a transfer: not understood.
        m.ixs[0] = (2, vec![0], transfer_data(1));
        let p = parse_message(&m.encode()).unwrap();
        assert!(matches!(
            p.decode_instruction(0),
            Instruction::Undecoded { .. }
        ));

        let mut seed = 11u32.to_le_bytes().to_vec();
        seed.extend_from_slice(&77u64.to_le_bytes());
        seed.extend_from_slice(&0u64.to_le_bytes());
        m.ixs[0] = (2, vec![1, 0, 1], seed.clone());
        // without `from_owner` the program cannot deserialize it
        let p = parse_message(&m.encode()).unwrap();
        assert!(matches!(
            p.decode_instruction(0),
            Instruction::Undecoded { .. }
        ));
        seed.extend_from_slice(&[4; 32]);
        m.ixs[0] = (2, vec![1, 0, 1], seed);
        let p = parse_message(&m.encode()).unwrap();
        assert_eq!(
            p.decode_instruction(0),
            Instruction::System(SystemInstruction::TransferWithSeed {
                from: Some(to),
                base: Some(payer),
                to: Some(to),
                lamports: 77
            })
        );
    }

    #[test]
    fn spl_transfer_on_token_2022() {
        let payer = [1; 32];
        let mut data = vec![3];
        data.extend_from_slice(&9u64.to_le_bytes());
        let m = Msg {
            version: None,
            header: [1, 0, 1],
            keys: vec![payer, [2; 32], [3; 32], SPL_TOKEN_2022_PROGRAM_ID],
            blockhash: [0; 32],
            ixs: vec![(3, vec![1, 2, 0], data)],
            lookups: vec![],
        };
        let p = parse_message(&m.encode()).unwrap();
        assert_eq!(
            p.decode_instruction(0),
            Instruction::Token {
                program: SPL_TOKEN_2022_PROGRAM_ID,
                ix: TokenInstruction::Transfer {
                    source: Some([2; 32]),
                    destination: Some([3; 32]),
                    amount: 9
                },
                authority: Some(payer),
                signers: vec![],
            }
        );
    }

    // --- off-chain messages -----------------------------------------------

    #[test]
    fn offchain_ascii_layout_byte_by_byte() {
        let out = offchain_message_v0(b"Test Message").unwrap();
        assert_eq!(&out[..16], b"\xffsolana offchain");
        assert_eq!(out[0], 0xff);
        assert_eq!(out[16], 0, "header version");
        assert_eq!(out[17], 0, "format RestrictedAscii");
        assert_eq!(&out[18..20], &[12, 0], "u16 LE length");
        assert_eq!(&out[20..], b"Test Message");
        // Serialisation published with solana-sdk's v0 offchain_message tests.
        let expected: [u8; 32] = [
            255, 115, 111, 108, 97, 110, 97, 32, 111, 102, 102, 99, 104, 97, 105, 110, 0, 0, 12, 0,
            84, 101, 115, 116, 32, 77, 101, 115, 115, 97, 103, 101,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn offchain_utf8_and_limits() {
        let text = "Тестовое сообщение".as_bytes();
        let out = offchain_message_v0(text).unwrap();
        assert_eq!(out[17], OffchainFormat::LimitedUtf8 as u8);
        assert_eq!(&out[18..20], &[35, 0]);
        assert_eq!(&out[20..], text);
        // A control character is valid UTF-8 but not restricted ASCII.
        assert_eq!(offchain_format(b"a\nb"), Ok(OffchainFormat::LimitedUtf8));

        let ledger_max = vec![b'a'; OFFCHAIN_MAX_LEN_LEDGER];
        assert_eq!(OFFCHAIN_MAX_LEN_LEDGER, 1212);
        assert_eq!(offchain_message_v0(&ledger_max).unwrap().len(), 1232);
        assert_eq!(
            offchain_format(&ledger_max),
            Ok(OffchainFormat::RestrictedAscii)
        );
        let extended = vec![b'a'; OFFCHAIN_MAX_LEN_LEDGER + 1];
        assert_eq!(offchain_format(&extended), Ok(OffchainFormat::ExtendedUtf8));
        let max = vec![b'a'; OFFCHAIN_MAX_LEN];
        let out = offchain_message_v0(&max).unwrap();
        assert_eq!(out.len(), usize::from(u16::MAX));
        assert_eq!(&out[17..20], &[2, 0xeb, 0xff]);

        for bad in [&[][..], &[0xff, 0xfe], &vec![b'a'; OFFCHAIN_MAX_LEN + 1]] {
            let err = offchain_message_v0(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_message", "{err}");
        }
    }

    // --- keys and ed25519 ---------------------------------------------------

    fn rfc8032(secret: &str, message: &str, public: &str, signature: &str) {
        let secret: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
        let sk = SigningKey::from_bytes(&secret);
        assert_eq!(hex::encode(pubkey_of(&sk)), public);
        let msg = hex::decode(message).unwrap();
        let sig = sk.sign(&msg).to_bytes();
        assert_eq!(hex::encode(sig), signature);
        assert!(verify(&pubkey_of(&sk), &msg, &sig));
    }

    #[test]
    fn rfc8032_test_1() {
        rfc8032(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
    }

    #[test]
    fn rfc8032_test_2() {
        rfc8032(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "72",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
    }

    #[test]
    fn base58_program_ids_and_pubkeys() {
        assert_eq!(
            to_base58(&SYSTEM_PROGRAM_ID),
            "11111111111111111111111111111111"
        );
        let token = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
        let token22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb";
        assert_eq!(parse_pubkey(token), Ok(SPL_TOKEN_PROGRAM_ID));
        assert_eq!(parse_pubkey(token22), Ok(SPL_TOKEN_2022_PROGRAM_ID));
        let sk = SigningKey::generate(&mut OsRng);
        let pk = pubkey_of(&sk);
        assert_eq!(parse_pubkey(&to_base58(&pk)), Ok(pk));
        for bad in [
            "",
            "0OIl",
            "1111111111111111111111111111111",   // 31 bytes
            "111111111111111111111111111111111", // 33 bytes
            &format!("1{token}"),
            &format!(" {token}"),
        ] {
            let err = parse_pubkey(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_pubkey", "{bad:?}");
        }
    }

    #[test]
    fn unsigned_transfer_parses_and_decodes() {
        let from = [7u8; 32];
        let to = [9u8; 32];
        let tx = unsigned_transfer(&from, &to, 5000, &[1u8; 32]);
        let parsed = parse_transaction(&tx).unwrap();
        assert_eq!(parsed.signer_index(&from), Some(0));
        assert_eq!(
            parsed.decode_instruction(0),
            Instruction::System(SystemInstruction::Transfer {
                from: Some(from),
                to: Some(to),
                lamports: 5000
            })
        );
    }
}
