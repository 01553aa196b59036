//! The logic of keyward's fuzz targets, one module per parser or decision that takes
//! outside bytes. Each module's `check(data)` turns `data` into an input (the raw bytes,
//! or a structure built with `arbitrary` where random bytes would never get past the
//! first check), runs keyward's code on it and panics when an invariant breaks.
//!
//! Callers: the libFuzzer targets in `fuzz/fuzz_targets/` (nightly, `cargo fuzz run`),
//! and `tests/fuzz_replay.rs` in the main crate, which replays every committed corpus and
//! regression input plus a bounded number of seeded random inputs on stable.

// Each input enum is built once per run; boxing its large variants would only add noise.
#![allow(clippy::large_enum_variant)]

pub mod config;
pub mod eip191;
pub mod eip712;
pub mod eip7702;
pub mod envelope_oaep;
pub mod evm_transaction;
pub mod policy;
pub mod rpc_upstream_answer;
pub mod solana_offchain;
pub mod solana_transaction;
mod solana_wire;
pub mod user_operation;
pub mod webhook_delivery;

/// A target's check: panics when an invariant breaks on this input.
pub type Check = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and `fuzz/regressions/`,
/// and the cargo-fuzz binary) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("webhook_delivery", webhook_delivery::check),
    ("envelope_oaep", envelope_oaep::check),
    ("evm_transaction", evm_transaction::check),
    ("eip712", eip712::check),
    ("eip191", eip191::check),
    ("eip7702", eip7702::check),
    ("user_operation", user_operation::check),
    ("solana_transaction", solana_transaction::check),
    ("solana_offchain", solana_offchain::check),
    ("policy", policy::check),
    ("config", config::check),
    ("rpc_upstream_answer", rpc_upstream_answer::check),
];

/// Reads an `arbitrary` value from all of `data`; `None` when the bytes do not make one
/// (libFuzzer then moves on: such an input tests nothing).
pub(crate) fn take<'a, T: arbitrary::Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(arbitrary::Unstructured::new(data)).ok()
}
