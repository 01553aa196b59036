//! Solana transactions and messages (`keyward::chains::solana::{parse_transaction,
//! parse_message}`) and instruction classification (`decode_instruction`), against the
//! reference parser and classifier in `solana_wire` (written from the wire format, not
//! from keyward's code).
//!
//! Invariants: keyward accepts exactly what the reference accepts (strictly: one packet,
//! canonical lengths, nothing trailing, the validator's structural rules, as many
//! signatures as the header requires); an accepted transaction re-encodes from its parts
//! to the very bytes given (so no two spellings of one message exist), its message and
//! signature slots are where the reference finds them, and every instruction is
//! classified as the reference classifies it; transaction-shaped bytes are recognised by
//! `is_transaction_message`.

use arbitrary::Arbitrary;
use keyward::chains::solana::{self, runtime, ParsedMessage};

use crate::solana_wire::{self as wire, GenMsg, Msg};

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Built {
        msg: GenMsg,
        wallet: [u8; 32],
        /// Signature count: the header's (else this one).
        signatures: Option<u8>,
        bare: bool,
        trailing: Vec<u8>,
    },
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Raw(bytes) => {
            transaction(&bytes);
            message(&bytes);
        }
        Input::Built {
            msg,
            wallet,
            signatures,
            bare,
            trailing,
        } => {
            let m = msg.build(&wallet);
            let n = signatures.map_or(usize::from(m.header[0]), usize::from);
            let mut bytes = if bare { m.encode() } else { m.transaction(n) };
            let exact = bytes.len();
            bytes.extend_from_slice(&trailing);
            let accepted = if bare {
                message(&bytes).is_some()
            } else {
                transaction(&bytes)
            };
            // a valid message the generator built, within a packet, with nothing after it
            // and the right signature count, must be accepted
            let fits = if bare {
                let r = usize::from(m.header[0]);
                wire::shortvec(r).len() + 64 * r + exact <= wire::PACKET
            } else {
                exact <= wire::PACKET && n == usize::from(m.header[0])
            };
            if m.valid() && trailing.is_empty() && fits {
                assert!(
                    accepted,
                    "a valid {} was refused",
                    if bare { "message" } else { "transaction" }
                );
            }
            // with or without what trails it, a valid message is transaction-shaped
            if m.valid() && (bare || n == usize::from(m.header[0])) {
                assert!(solana::is_transaction_message(&bytes));
            }
        }
    }
}

fn same_message(k: &ParsedMessage, r: &Msg) {
    assert_eq!(k.version(), r.version);
    let h = k.header();
    assert_eq!(
        [
            h.num_required_signatures,
            h.num_readonly_signed,
            h.num_readonly_unsigned
        ],
        r.header
    );
    assert_eq!(k.account_keys(), &r.keys[..]);
    assert_eq!(k.recent_blockhash(), &r.blockhash);
    let ixs: Vec<(u8, Vec<u8>, Vec<u8>)> = k
        .instructions()
        .iter()
        .map(|i| (i.program_id_index, i.accounts.clone(), i.data.clone()))
        .collect();
    assert_eq!(ixs, r.ixs);
    let lookups: Vec<_> = k
        .address_table_lookups()
        .iter()
        .map(|l| {
            (
                l.account_key,
                l.writable_indexes.clone(),
                l.readonly_indexes.clone(),
            )
        })
        .collect();
    assert_eq!(lookups, r.lookups);
    assert_eq!(k.fee_payer(), r.keys[0]);
    for i in 0..r.ixs.len() {
        assert_eq!(k.program_id(i), Some(r.keys[usize::from(r.ixs[i].0)]));
        assert_eq!(
            wire::class_of(&k.decode_instruction(i)),
            wire::classify(r, i),
            "instruction {i} classified differently"
        );
    }
    assert_eq!(k.program_id(r.ixs.len()), None);
    // the whole-transaction rules policy mirrors: the durable-nonce marker, and a default
    // compute-unit limit never below either runtime rule's
    assert_eq!(k.uses_durable_nonce(), wire::durable_nonce(r));
    let programs: Vec<[u8; 32]> = r
        .ixs
        .iter()
        .map(|(p, _, _)| r.keys[usize::from(*p)])
        .collect();
    let limit = runtime::default_compute_unit_limit(programs);
    assert!(limit <= runtime::MAX_COMPUTE_UNIT_LIMIT);
    for floor in wire::default_limit_floors(r) {
        assert!(
            limit >= floor,
            "default limit {limit} below a runtime's {floor}"
        );
    }
    for (slot, key) in r.keys[..usize::from(r.header[0])].iter().enumerate() {
        assert_eq!(k.signer_index(key), Some(slot));
    }
}

/// Parses `bytes` as a transaction with keyward and the reference; returns acceptance.
fn transaction(bytes: &[u8]) -> bool {
    let ours = solana::parse_transaction(bytes);
    let reference = wire::parse_transaction(bytes, true);
    match (&ours, &reference) {
        (Ok(tx), Some((sigs, m, _))) => {
            same_message(tx.message(), m);
            assert_eq!(tx.bytes(), bytes);
            assert_eq!(tx.message_bytes(), m.encode(), "message bytes differ");
            assert_eq!(m.transaction(sigs.len()).len(), bytes.len());
            for (i, s) in sigs.iter().enumerate() {
                assert_eq!(tx.signature(i), Some(s));
            }
            assert_eq!(tx.signature(sigs.len()), None);
            // the exact bytes again from the parts: one spelling per transaction
            let mut again = wire::shortvec(sigs.len());
            sigs.iter().for_each(|s| again.extend_from_slice(s));
            again.extend(m.encode());
            assert_eq!(again, bytes, "accepted a non-canonical spelling");
            let bare = solana::parse_message(tx.message_bytes()).expect("its message parses");
            assert_eq!(&bare, tx.message());
            assert!(solana::is_transaction_message(bytes));
            assert!(solana::is_transaction_message(tx.message_bytes()));
            true
        }
        (Err(_), None) => false,
        (Ok(_), None) => panic!("accepted a transaction the reference refuses"),
        (Err(e), Some(_)) => panic!("refused a transaction the reference accepts: {e}"),
    }
}

/// Parses `bytes` as a bare message with keyward and the reference.
fn message(bytes: &[u8]) -> Option<ParsedMessage> {
    let ours = solana::parse_message(bytes);
    let reference = wire::parse_message(bytes, true);
    match (ours, reference) {
        (Ok(m), Some(r)) => {
            same_message(&m, &r);
            assert_eq!(r.encode(), bytes, "accepted a non-canonical spelling");
            Some(m)
        }
        (Err(_), None) => None,
        (Ok(_), None) => panic!("accepted a message the reference refuses"),
        (Err(e), Some(_)) => panic!("refused a message the reference accepts: {e}"),
    }
}
