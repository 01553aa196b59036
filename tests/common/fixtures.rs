//! Known inputs shared by test binaries: the Solana instruction fixtures (built by
//! solders and solana-py), the EIP-712 Mail example, a foreign RSA key, the EIPs' example
//! keys and transaction, and EVM signature recovery.

use alloy_primitives::{Address, Signature, B256};
use base64::Engine as _;
use serde_json::{json, Value};

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

/// The golden policy cases (`config/policy-cases.jsonl`, built by
/// scripts/fixtures/policy_cases.py with eth_abi, solders and solana-py) whose name starts
/// with `prefix`, as `(name, case)`.
pub fn golden_cases(prefix: &str) -> Vec<(String, Value)> {
    include_str!("../../config/policy-cases.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["name"].as_str().unwrap().starts_with(prefix))
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect()
}

/// A golden Solana case's transaction with its wallet (32 bytes of 1, wherever it occurs)
/// replaced by `wallet`, base64 as the API takes it.
pub fn golden_solana_tx(case: &Value, wallet: &[u8; 32]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = b64
        .decode(case["body"]["transaction"].as_str().unwrap())
        .unwrap();
    let mut replaced = 0;
    while let Some(at) = raw.windows(32).position(|w| w == FIXTURE_WALLET) {
        raw[at..at + 32].copy_from_slice(wallet);
        replaced += 1;
    }
    assert!(replaced > 0, "{}: the case names its wallet", case["name"]);
    b64.encode(raw)
}

/// EIP-712's own "Mail" example: digest
/// 0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2.
pub fn mail_typed_data() -> Value {
    serde_json::from_str(include_str!("../fixtures/eip712_mail.json")).unwrap()
}

/// An RSA-3072 public key that is none of the token's (made once with
/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`): envelopes encrypted
/// to it cannot be opened. Generating one in a debug build takes seconds.
pub fn foreign_rsa_public() -> rsa::RsaPublicKey {
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(
        "-----BEGIN PUBLIC KEY-----
MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAnkV7ucGp3X3jkrbu8VX+
OlsgUXv634cFe0y/zKhYcLp2xajpydqvI/eCk3UgHGrrczhgUgf65k/Hx1HWzgzw
GlCKO7XR1DQPtE7roHFSfLXV0Zw3VPmfDfGQnEUvCzgnt5k5K1KaKwgDm6FnjRHz
bX+h5SjYw942YPkEw3O1agZ8zTT9Irb657ddcKeR2OtM8C+W3qheAx7ql+TAh6Fp
LMaFcmFxGmjw2gfZXNRRraTv+Ngx9AIEkuvPCVLbFJX4zAdElWq5GQ89nm/hT0xQ
ahl+sG6ekMeJcXOns3XvSYegx6F6NKBe86EPMUsdIZ1hpSVK3SMe/pp37gqbWxyh
u5VXeLo4urolSipYbVqOzBM6oj72WSA9tth9eioh0xtJc+VtgTsfLNHFeXgPm3uI
A3c+m162wIDlvaIPCcnbF9FP98wRh+Zz+W8wyq5jv0f54ScGC9pYRoQuEuqL/YAe
o/7ww2TgyvjhaMUzWdF9B7F5E5QQ7XsRrDIAcUSFknjtAgMBAAE=
-----END PUBLIC KEY-----",
    )
    .expect("fixture key parses")
}

/// EIP-155's example key (0x9d8a…) and EIP-712's "cow" key (0xcd2a…).
pub const EIP155_KEY: &str = "4646464646464646464646464646464646464646464646464646464646464646";
pub const COW_KEY: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
pub const EIP155_ADDR: &str = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F";
pub const COW_ADDR: &str = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826";

/// EIP-155's example transaction, without its chain id (the endpoint's is used).
pub fn eip155_tx() -> Value {
    json!({
        "from": EIP155_ADDR, "nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
        "to": "0x3535353535353535353535353535353535353535", "value": "0xde0b6b3a7640000", "data": "0x"
    })
}

/// Its signed bytes (the EIP's own).
pub const EIP155_RAW: &str = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

/// The Mail example's digest, and its (RFC 6979 deterministic) signature by [`COW_KEY`].
pub const MAIL_DIGEST: &str = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";
pub const MAIL_SIGNATURE: &str = "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c";

/// The address that made `sig_hex` (65 bytes r‖s‖v, v = 27/28) over `digest`.
pub fn recover(sig_hex: &str, digest: &B256) -> Address {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27/28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(digest)
        .unwrap()
}
