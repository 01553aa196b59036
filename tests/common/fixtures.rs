//! Known inputs shared by test binaries: the Solana instruction fixtures (built by
//! solders and solana-py), the EIP-712 Mail example, a foreign RSA key.

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

use serde_json::{json, Value};

/// EIP-712's own "Mail" example: digest
/// 0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2.
pub fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
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
