//! An alloy wallet whose key stays in keyward: fill an EIP-1559 transfer, sign it through
//! `EthereumWallet::from(KeywardSigner)`, print the raw transaction for
//! `eth_sendRawTransaction`. With `alloy-provider`, the same wallet goes into
//! `ProviderBuilder::new().wallet(wallet)`, which fills nonce, gas and fees itself.
//!
//! ```sh
//! KEYWARD_URL=https://127.0.0.1:8443 KEYWARD_CA=dev/pki/ca.pem \
//! KEYWARD_CERT=dev/pki/client.pem KEYWARD_KEY=dev/pki/client.key \
//! KEYWARD_WALLET=<wallet id> cargo run --example alloy_send
//! ```

use alloy_network::eip2718::Encodable2718;
use alloy_network::{
    Ethereum, EthereumWallet, Network, NetworkTransactionBuilder, TransactionBuilder,
};
use alloy_primitives::{address, Bytes, U256};
use keyward_client::{KeywardClient, KeywardSigner, Tls};

/// Signs a transfer of 0.001 ether on `chain_id` with the keyward wallet `wallet_id`.
pub async fn sign_transfer(
    url: &str,
    tls: Tls,
    wallet_id: &str,
    chain_id: u64,
    nonce: u64,
) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let client = KeywardClient::new(url, tls)?;
    let signer = KeywardSigner::new(client, wallet_id).await?;
    let wallet = EthereumWallet::from(signer);

    let tx = <Ethereum as Network>::TransactionRequest::default()
        .with_to(address!("0x3535353535353535353535353535353535353535"))
        .with_value(U256::from(1_000_000_000_000_000u64))
        .with_chain_id(chain_id)
        .with_nonce(nonce)
        .with_gas_limit(21_000)
        .with_max_fee_per_gas(30_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000);
    // keyward decides on these fields (its policy sees recipient, value, chain) and signs
    let signed = tx.build(&wallet).await?;
    Ok(signed.encoded_2718().into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let tls = Tls::from_files(
        var("KEYWARD_CA")?,
        var("KEYWARD_CERT")?,
        var("KEYWARD_KEY")?,
    )?;
    let raw = sign_transfer(&var("KEYWARD_URL")?, tls, &var("KEYWARD_WALLET")?, 1, 0).await?;
    println!("{raw}");
    Ok(())
}
