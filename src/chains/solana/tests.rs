//! Unit tests of the Solana wire format, messages, transactions and off-chain messages.

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
        255, 115, 111, 108, 97, 110, 97, 32, 111, 102, 102, 99, 104, 97, 105, 110, 0, 0, 12, 0, 84,
        101, 115, 116, 32, 77, 101, 115, 115, 97, 103, 101,
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
