//! Transactions from tests/fixtures/solana_instructions.json (built by solders and
//! solana-py, see scripts/fixtures/solana_instructions.py), re-keyed to a real wallet.

use base64::Engine as _;

const FIXTURES: &str = include_str!("../fixtures/solana_instructions.json");

/// The fixture's wallet: 32 bytes of 1, the fee payer and signer of every case.
pub const FIXTURE_WALLET: [u8; 32] = [1; 32];

/// The unsigned transaction of fixture `name` with the fixture wallet replaced by
/// `wallet` (the 32-byte pattern occurs only as that key), base64 as the API takes it.
pub fn solana_fixture(name: &str, wallet: &[u8; 32]) -> String {
    let f: serde_json::Value = serde_json::from_str(FIXTURES).unwrap();
    let case = f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64.decode(case["transaction"].as_str().unwrap()).unwrap();
    let at = raw
        .windows(32)
        .position(|w| w == FIXTURE_WALLET)
        .expect("the fixture names its wallet");
    raw[at..at + 32].copy_from_slice(wallet);
    assert!(
        !raw.windows(32).any(|w| w == FIXTURE_WALLET),
        "the wallet occurs once"
    );
    b64.encode(raw)
}
