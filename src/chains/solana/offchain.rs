//! Solana off-chain messages (`\xffsolana offchain`, header version 0): which format the bytes are, and the v0 envelope.

use super::*;

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
