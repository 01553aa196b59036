//! A Solana wallet of keyward as a `solana_signer::Signer`: a system transfer message,
//! signed through keyward (which decodes it: its policy sees the program, recipient and
//! lamports). The same signer goes wherever the Solana crates take a `&dyn Signer`,
//! e.g. `Transaction::new(&[&signer], message, blockhash)` with `solana-transaction`.
//!
//! ```sh
//! KEYWARD_URL=https://127.0.0.1:8443 KEYWARD_CA=dev/pki/ca.pem \
//! KEYWARD_CERT=dev/pki/client.pem KEYWARD_KEY=dev/pki/client.key \
//! KEYWARD_WALLET=<wallet id> cargo run --example solana_transfer
//! ```

use keyward_client::{KeywardClient, KeywardSolanaSigner, Tls};
use solana_signer::Signer;

/// A legacy message: `from` sends `lamports` to `to` (System Program `Transfer`).
pub fn transfer_message(
    from: [u8; 32],
    to: [u8; 32],
    lamports: u64,
    blockhash: [u8; 32],
) -> Vec<u8> {
    let mut m = vec![1, 0, 1]; // 1 signer (from), 0 read-only signed, 1 read-only (program)
    m.push(3); // accounts: from, to, the System Program (all zeros)
    m.extend_from_slice(&from);
    m.extend_from_slice(&to);
    m.extend_from_slice(&[0; 32]);
    m.extend_from_slice(&blockhash);
    m.extend_from_slice(&[1, 2, 2, 0, 1, 12]); // 1 instruction: program 2, accounts [0, 1], 12 data bytes
    m.extend_from_slice(&2u32.to_le_bytes()); // Transfer
    m.extend_from_slice(&lamports.to_le_bytes());
    m
}

/// Signs a transfer of `lamports` to `to` with the keyward wallet `wallet_id`; returns the
/// message and the signature.
pub async fn sign_transfer(
    url: &str,
    tls: Tls,
    wallet_id: &str,
    to: [u8; 32],
    lamports: u64,
    blockhash: [u8; 32],
) -> Result<(Vec<u8>, [u8; 64]), Box<dyn std::error::Error + Send + Sync>> {
    let client = KeywardClient::new(url, tls)?;
    let signer = KeywardSolanaSigner::new(client, wallet_id).await?;
    let message = transfer_message(signer.pubkey().to_bytes(), to, lamports, blockhash);
    // `Signer` is synchronous: off the async runtime's threads
    let (message, signature) = tokio::task::spawn_blocking(move || {
        signer.try_sign_message(&message).map(|s| (message, s))
    })
    .await??;
    Ok((message, signature.into()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let tls = Tls::from_files(
        var("KEYWARD_CA")?,
        var("KEYWARD_CERT")?,
        var("KEYWARD_KEY")?,
    )?;
    let to = [7; 32];
    let (_, signature) = sign_transfer(
        &var("KEYWARD_URL")?,
        tls,
        &var("KEYWARD_WALLET")?,
        to,
        1_000_000,
        [9; 32],
    )
    .await?;
    println!("{}", bs58::encode(signature).into_string());
    Ok(())
}
