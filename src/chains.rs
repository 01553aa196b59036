//! Pure chain encodings: what bytes get signed, and how signatures are formatted.
//! No I/O, no secrets kept: callers pass keys in for the duration of a call.

#[allow(
    missing_docs,
    reason = "accessors are named after the wire-format fields they return"
)]
pub mod evm;
#[allow(
    missing_docs,
    reason = "accessors are named after the wire-format fields they return"
)]
pub mod solana;
