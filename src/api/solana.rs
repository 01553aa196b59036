//! Solana sign requests: off-chain messages and transactions.
//!
//! `solana/message` signs raw bytes by default — what wallets' `signMessage` (and Sign In
//! With Solana) produce and verify — or, with `"format": "offchain"`, the off-chain
//! message envelope (`\xffsolana offchain`, header version 0) of `chains::solana`. Either
//! way, bytes that are (or begin with) a transaction or a transaction message are refused
//! (`message_is_transaction`): otherwise a "message" signature would authorise a transfer.
//! `solana/transaction` signs the message of a legacy or v0 transaction in which the
//! wallet is a required signer and places the signature in the wallet's slot.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::errors::{self, refuse};
use super::{parse_body, Prepared};
use crate::chains::solana::{self, ParsedTransaction, Pubkey};
use crate::config::Operation;
use crate::http::Refusal;

/// What to build once the bytes are signed.
#[derive(Debug)]
pub enum Finish {
    /// A message signature.
    Message,
    /// A transaction; the signature goes into slot `index`.
    Tx {
        /// The parsed transaction.
        parsed: Box<ParsedTransaction>,
        /// The wallet's signer index.
        index: usize,
    },
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    #[default]
    Utf8,
    Base64,
    Hex,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Raw,
    Offchain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageReq {
    message: String,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    format: Format,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionReq {
    transaction: String,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn decode(field: &str, encoding: Encoding, text: &str) -> Result<Vec<u8>, Refusal> {
    let bad = |what: &str| refuse("invalid_encoding", format!("`{field}` is not valid {what}"));
    match encoding {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Base64 => B64.decode(text).map_err(|_| bad("base64")),
        Encoding::Hex => {
            hex::decode(text.strip_prefix("0x").unwrap_or(text)).map_err(|_| bad("hex"))
        }
    }
}

/// Parses the body of a Solana sign route into the bytes to sign.
pub fn prepare(
    op: Operation,
    body: Value,
    wallet: &Pubkey,
) -> Result<Prepared<Vec<u8>, Finish>, Refusal> {
    let e = |err: solana::SolanaError| errors::solana(&err);
    match op {
        Operation::SolanaMessage => {
            let req: MessageReq = parse_body(body)?;
            let bytes = decode("message", req.encoding, &req.message)?;
            if bytes.is_empty() {
                return Err(refuse("invalid_message", "`message` is empty"));
            }
            solana::ensure_not_transaction(&bytes).map_err(e)?;
            let (signed, format) = match req.format {
                Format::Raw => (bytes, "raw"),
                Format::Offchain => (solana::offchain_message_v0(&bytes).map_err(e)?, "offchain"),
            };
            Ok(Prepared {
                digest: sha256_hex(&signed),
                detail: json!({ "format": format, "messageLen": signed.len() }),
                subject: crate::policy::Subject::SolanaMessage { len: signed.len() },
                payload: signed,
                finish: Finish::Message,
            })
        }
        Operation::SolanaTransaction => {
            let req: TransactionReq = parse_body(body)?;
            let raw = B64
                .decode(req.transaction.as_bytes())
                .map_err(|_| refuse("invalid_encoding", "`transaction` is not valid base64"))?;
            let parsed = solana::parse_transaction(&raw).map_err(e)?;
            let index = parsed.require_signer(wallet).map_err(e)?;
            let message = parsed.message_bytes().to_vec();
            let programs: Vec<String> = (0..parsed.instructions().len())
                .filter_map(|i| parsed.program_id(i))
                .map(|p| solana::to_base58(&p))
                .collect();
            Ok(Prepared {
                digest: sha256_hex(&message),
                detail: json!({
                    "version": parsed.version().map_or("legacy".to_string(), |v| v.to_string()),
                    "signerIndex": index,
                    "feePayer": solana::to_base58(&parsed.fee_payer()),
                    "programs": programs,
                }),
                payload: message,
                subject: crate::policy::Subject::SolanaTransaction {
                    tx: Box::new(parsed.clone()),
                    wallet: *wallet,
                },
                finish: Finish::Tx {
                    parsed: Box::new(parsed),
                    index,
                },
            })
        }
        other => Err(refuse(
            "internal_error",
            format!("{} is not a Solana operation", other.as_str()),
        )),
    }
}

/// The answer for signature `sig` over `signed` by `wallet`. `sig` must come from the
/// [`crate::signer::Signer`], which has verified it strictly under `wallet` over
/// `signed`; it is not verified again here.
pub fn answer(
    signed: &[u8],
    finish: Finish,
    sig: &[u8; 64],
    wallet: &Pubkey,
) -> Result<Value, Refusal> {
    match finish {
        Finish::Message => Ok(json!({
            "signature": solana::to_base58(sig),
            "signedMessage": B64.encode(signed),
            "publicKey": solana::to_base58(wallet),
        })),
        Finish::Tx { parsed, index } => {
            let tx = solana::place_verified_signature(&parsed, index, sig, wallet, signed)
                .map_err(|err| errors::solana(&err))?;
            Ok(json!({
                "signature": solana::to_base58(sig),
                "transaction": B64.encode(tx),
                "signerIndex": index,
                "publicKey": solana::to_base58(wallet),
            }))
        }
    }
}
