//! The fuzz targets on stable: for each target of `fuzz/` (FUZZING.md), every committed
//! corpus input (`fuzz/corpus/<target>/`) and regression input (`fuzz/regressions/<target>/`)
//! is run through the target's check, then a fixed number of inputs drawn from a seeded
//! RNG. The checks are the same functions the libFuzzer targets call
//! (`keyward-fuzz-checks`), so CI without nightly still runs every invariant; a failure
//! names the target and the input (a file, or the hex of a generated one).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Generated inputs per target, on top of the committed corpus (which libFuzzer grew with
/// coverage feedback); bounded so the whole file stays well under 30 s in a debug build.
const GENERATED: usize = 500;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn run(target: &str, check: keyward_fuzz_checks::Check, what: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
        eprintln!(
            "fuzz target {target} failed on {what} ({} bytes): {}",
            input.len(),
            hex::encode(input)
        );
        std::panic::resume_unwind(panic);
    }
}

fn replay(target: &str) {
    let (_, check) = *keyward_fuzz_checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "regressions"] {
        for f in files(&root.join(dir).join(target)) {
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            run(target, check, &f.display().to_string(), &bytes);
            replayed += 1;
        }
    }
    // one seed per target, so a failure reproduces alone
    let seed = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..GENERATED {
        // mostly short inputs (where `arbitrary` makes small structures), some long
        let len = if i % 10 == 0 {
            rng.gen_range(0..4096)
        } else {
            rng.gen_range(0..256)
        };
        let mut input = vec![0u8; len];
        rng.fill(&mut input[..]);
        run(target, check, &format!("generated input {i}"), &input);
    }
    eprintln!("{target}: {replayed} committed inputs and {GENERATED} generated ones");
}

#[test]
fn every_target_is_replayed_here() {
    let names: Vec<&str> = keyward_fuzz_checks::TARGETS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    // a target added to the list without a test below would never run on stable
    assert_eq!(
        names,
        [
            "webhook_delivery",
            "envelope_oaep",
            "evm_transaction",
            "eip712",
            "eip191",
            "eip7702",
            "user_operation",
            "solana_transaction",
            "solana_offchain",
            "policy",
            "config",
            "rpc_upstream_answer"
        ]
    );
    for n in names {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{n}.rs"));
        assert!(bin.is_file(), "no cargo-fuzz target {}", bin.display());
    }
}

#[test]
fn webhook_delivery() {
    replay("webhook_delivery");
}

#[test]
fn envelope_oaep() {
    replay("envelope_oaep");
}

#[test]
fn evm_transaction() {
    replay("evm_transaction");
}

#[test]
fn eip712() {
    replay("eip712");
}

#[test]
fn rpc_upstream_answer() {
    replay("rpc_upstream_answer");
}

#[test]
fn eip191() {
    replay("eip191");
}

#[test]
fn eip7702() {
    replay("eip7702");
}

#[test]
fn user_operation() {
    replay("user_operation");
}

#[test]
fn solana_transaction() {
    replay("solana_transaction");
}

#[test]
fn solana_offchain() {
    replay("solana_offchain");
}

#[test]
fn policy() {
    replay("policy");
}

#[test]
fn config() {
    replay("config");
}
