//! Serialized transactions: parsing, the signer slots, placing a verified signature, and telling a transaction message from an off-chain message.

use super::*;

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

pub(super) fn parse_transaction_with(
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
pub(super) fn verify(pubkey: &Pubkey, message: &[u8], sig: &[u8; SIGNATURE_LEN]) -> bool {
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
