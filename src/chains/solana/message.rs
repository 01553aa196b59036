//! Legacy and v0 transaction messages: strict parsing (bounded sizes and counts, every byte accounted for) and what the policy needs to know of them.

use super::*;

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
    pub(super) version: Option<u8>,
    pub(super) header: MessageHeader,
    pub(super) account_keys: Vec<Pubkey>,
    pub(super) recent_blockhash: [u8; 32],
    pub(super) instructions: Vec<CompiledInstruction>,
    pub(super) lookups: Vec<AddressTableLookup>,
}

/// How strictly to parse. Detection of transaction-shaped bytes skips the
/// packet size, so that an oversized (or future, larger-packet) message is
/// still recognised and refused as an off-chain message, and accepts trailing
/// bytes: a message followed by anything is still that message to a parser
/// that reads what it needs and ignores the rest (bincode-style), and a
/// signature over those bytes must not be obtainable as a "message".
#[derive(Clone, Copy)]
pub(super) enum SizeLimit {
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

pub(super) fn parse_message_with(
    bytes: &[u8],
    limit: SizeLimit,
) -> Result<ParsedMessage, SolanaError> {
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

pub(super) fn check_size(len: usize) -> Result<(), WireError> {
    if len > PACKET_DATA_SIZE {
        return Err(WireError::TooLarge {
            len,
            max: PACKET_DATA_SIZE,
        });
    }
    Ok(())
}

pub(super) fn read_message(r: &mut Reader<'_>) -> Result<ParsedMessage, SolanaError> {
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
pub(super) fn read_version(r: &mut Reader<'_>) -> Result<Option<u8>, SolanaError> {
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

pub(super) fn read_instruction(r: &mut Reader<'_>) -> Result<CompiledInstruction, WireError> {
    Ok(CompiledInstruction {
        program_id_index: r.u8("instruction program id index")?,
        accounts: r.bytes_with_len("instruction account indices")?,
        data: r.bytes_with_len("instruction data")?,
    })
}

pub(super) fn read_lookups(r: &mut Reader<'_>) -> Result<Vec<AddressTableLookup>, WireError> {
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
