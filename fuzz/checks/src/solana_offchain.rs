//! Solana off-chain messages: the refusal of transaction-shaped bytes
//! (`keyward::chains::solana::ensure_not_transaction`) and the header version 0 envelope
//! (`offchain_message_v0`), as the `solana.message` route applies them.
//!
//! Invariants: bytes are refused as a message exactly when the reference parser (any
//! size, anything trailing) reads a message or a transaction from them, so a signature
//! over a transaction can never be obtained as a "message"; the envelope is the
//! signing domain, version 0, the narrowest format that fits, the length and the message,
//! for exactly the non-empty UTF-8 messages that fit; an envelope is never itself
//! transaction-shaped.

use arbitrary::Arbitrary;
use keyward::chains::solana::{self, SolanaError};

use crate::solana_wire::{self as wire, GenMsg};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Text(String),
    /// A message or transaction, maybe with bytes after it, offered as a message.
    Disguised {
        msg: GenMsg,
        wallet: [u8; 32],
        as_transaction: bool,
        trailing: Vec<u8>,
    },
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Raw(b) => message(&b),
        Input::Text(t) => message(t.as_bytes()),
        Input::Disguised {
            msg,
            wallet,
            as_transaction,
            trailing,
        } => {
            let m = msg.build(&wallet);
            let mut b = if as_transaction {
                m.transaction(usize::from(m.header[0]))
            } else {
                m.encode()
            };
            b.extend_from_slice(&trailing);
            if m.valid() {
                assert_eq!(
                    solana::ensure_not_transaction(&b),
                    Err(SolanaError::MessageIsTransaction),
                    "transaction-shaped bytes accepted as a message"
                );
            }
            message(&b);
        }
    }
}

fn message(b: &[u8]) {
    let shaped =
        wire::parse_message(b, false).is_some() || wire::parse_transaction(b, false).is_some();
    assert_eq!(solana::is_transaction_message(b), shaped);
    match solana::ensure_not_transaction(b) {
        Ok(()) => assert!(!shaped),
        Err(e) => {
            assert_eq!(e.code(), "message_is_transaction");
            assert!(shaped);
        }
    }
    let fits = !b.is_empty() && b.len() <= 65_535 - 20 && std::str::from_utf8(b).is_ok();
    match solana::offchain_message_v0(b) {
        Ok(env) => {
            assert!(fits, "an envelope for a message that does not fit");
            let format = if b.len() > wire::PACKET - 20 {
                2
            } else if b.iter().all(|c| (0x20..=0x7e).contains(c)) {
                0
            } else {
                1
            };
            let mut expected = b"\xffsolana offchain".to_vec();
            expected.push(0);
            expected.push(format);
            expected.extend_from_slice(&(b.len() as u16).to_le_bytes());
            expected.extend_from_slice(b);
            assert_eq!(env, expected);
            assert!(
                !solana::is_transaction_message(&env),
                "an off-chain envelope is transaction-shaped"
            );
        }
        Err(e) => {
            assert_eq!(e.code(), "invalid_message");
            assert!(!fits, "a message that fits was refused");
        }
    }
}
