//! EIP-191 `personal_sign` input (`keyward::chains::evm::parse_message`, then
//! `personal_message_digest`), with the small parsers of the same requests
//! (`parse_digest`, `parse_address`).
//!
//! Invariants: `0x` text is hex and yields exactly those bytes (bad hex is refused, never
//! signed as text); other text is signed as its UTF-8 bytes; the digest is
//! `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)` (built here); a digest
//! is exactly 32 bytes of hex; an accepted address is 40 hex digits whose mixed case, if
//! any, is its EIP-55 checksum.

use alloy_primitives::{keccak256, Address};
use keyward::chains::evm;

/// Runs one input.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    match evm::parse_message(text) {
        Ok(bytes) => {
            match text.strip_prefix("0x") {
                Some(body) => {
                    assert_eq!(hex::encode(&bytes), body.to_ascii_lowercase());
                }
                None => assert_eq!(bytes, text.as_bytes()),
            }
            let mut pre = format!("\x19Ethereum Signed Message:\n{}", bytes.len()).into_bytes();
            pre.extend_from_slice(&bytes);
            assert_eq!(evm::personal_message_digest(&bytes), keccak256(pre));
        }
        Err(e) => {
            assert_eq!(e.code(), "invalid_message");
            let body = text
                .strip_prefix("0x")
                .expect("only 0x text can be refused");
            assert!(hex::decode(body).is_err(), "valid hex refused");
        }
    }
    match evm::parse_digest(text) {
        Ok(d) => assert_eq!(format!("{d:#x}"), text.to_ascii_lowercase()),
        Err(e) => {
            assert_eq!(e.code(), "invalid_digest");
            let ok = text
                .strip_prefix("0x")
                .and_then(|h| hex::decode(h).ok())
                .is_some_and(|b| b.len() == 32);
            assert!(!ok, "a 32-byte digest refused");
        }
    }
    match evm::parse_address("to", text) {
        Ok(a) => {
            let body = text.strip_prefix("0x").expect("0x prefix");
            assert_eq!(
                format!("{a:#x}"),
                format!("0x{}", body.to_ascii_lowercase())
            );
            let lower = body.bytes().any(|b| b.is_ascii_lowercase());
            let upper = body.bytes().any(|b| b.is_ascii_uppercase());
            if lower && upper {
                assert_eq!(a.to_checksum(None), text, "a wrong checksum accepted");
            }
        }
        Err(e) => {
            assert_eq!(e.code(), "invalid_address");
            if let Some(body) = text.strip_prefix("0x") {
                if body.len() == 40 && body.bytes().all(|b| b.is_ascii_hexdigit()) {
                    let a: Address = text.parse().expect("40 hex digits");
                    let lower = body.bytes().any(|b| b.is_ascii_lowercase());
                    let upper = body.bytes().any(|b| b.is_ascii_uppercase());
                    assert!(
                        lower && upper && a.to_checksum(None) != text,
                        "a valid address refused"
                    );
                }
            }
        }
    }
}
