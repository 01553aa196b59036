//! The kit against a live keyward: the appliance's signing API in-process on loopback
//! (real mTLS, SoftHSM2 token, SQLite file; the appliance's own test harness), signatures
//! checked by alloy's and ed25519-dalek's own verification, refusals as the error enum.

#[path = "../../../tests/common/mod.rs"]
mod common;

#[path = "../examples/alloy_send.rs"]
#[allow(
    dead_code,
    reason = "the example's main is not called: its signing function is"
)]
mod alloy_send;

#[path = "../examples/solana_transfer.rs"]
#[allow(
    dead_code,
    reason = "the example's main is not called: its signing function is"
)]
mod solana_transfer;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_network::eip2718::Decodable2718;
use alloy_network::TxSigner;
use alloy_primitives::{address, b256, Address, TxKind, U256};
use alloy_signer::Signer;
use alloy_sol_types::{eip712_domain, sol, SolStruct};
use common::kits::{EVM_KEY, SOLANA_SEED};
use keyward::pki::Validity;
use keyward::store::wallets::Chain;
use keyward_client::{Error, KeywardClient, KeywardSigner, KeywardSolanaSigner, Tls};
use serde_json::json;

sol! {
    #[derive(Debug)]
    struct Person {
        string name;
        address wallet;
    }

    #[derive(Debug)]
    struct Mail {
        Person from;
        Person to;
        string contents;
    }

    /// Every kind of EIP-712 field the typed-data JSON conversion handles.
    #[derive(Debug)]
    struct KitNote {
        uint256 amount;
        int64 delta;
        bytes32 salt;
        bytes4 selector;
        bytes data;
        bool flag;
        address[] path;
        uint8[2] pair;
        Person[] people;
        string memo;
    }
}

struct Live {
    s: common::api::Server,
    url: String,
}

impl Live {
    async fn start() -> Live {
        let s = common::api::start(common::kits::CONFIG).await;
        let url = format!("https://127.0.0.1:{}", s.addr.port());
        Live { s, url }
    }

    fn tls(&self) -> Tls {
        let env = &self.s.env;
        Tls::from_pem(
            env.pki.ca.cert_pem.as_bytes(),
            env.pki.client.cert_pem.as_bytes(),
            env.pki.client.key_pem.as_bytes(),
        )
        .unwrap()
    }

    fn client(&self) -> KeywardClient {
        KeywardClient::new(&self.url, self.tls()).unwrap()
    }

    async fn evm(&self) -> (KeywardSigner, Address) {
        let w = self.s.import(Chain::Evm, EVM_KEY, None);
        let address: Address = w.address.unwrap().parse().unwrap();
        let signer = KeywardSigner::new(self.client(), &w.id).await.unwrap();
        assert_eq!(Signer::address(&signer), address);
        (signer, address)
    }
}

fn keyward_error(e: &alloy_signer::Error) -> &Error {
    Error::from_alloy(e).unwrap_or_else(|| panic!("not a keyward error: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloy_message_typed_data_and_hash_recover_to_the_wallet() {
    let live = Live::start().await;
    let (signer, address) = live.evm().await;

    let msg = b"hello keyward";
    let sig = signer.sign_message(msg).await.unwrap();
    assert_eq!(sig.recover_address_from_msg(msg).unwrap(), address);

    // alloy's static typed data: sent as eth_signTypedData_v4 JSON, hashed by keyward
    let domain = eip712_domain! {
        name: "Ether Mail",
        version: "1",
        chain_id: 1,
        verifying_contract: address!("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
    };
    let mail = Mail {
        from: Person {
            name: "Cow".into(),
            wallet: address!("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"),
        },
        to: Person {
            name: "Bob".into(),
            wallet: address!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"),
        },
        contents: "Hello, Bob!".into(),
    };
    let hash = mail.eip712_signing_hash(&domain);
    // the EIP's own digest of its Mail example
    assert_eq!(
        hash,
        b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
    );
    let sig = signer.sign_typed_data(&mail, &domain).await.unwrap();
    assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), address);

    // every field kind, through the same conversion to JSON
    let domain = eip712_domain! { name: "Kit Notes", chain_id: 1, };
    let note = KitNote {
        amount: U256::MAX - U256::from(1u64),
        delta: -42,
        salt: b256!("0x0102030405060708091011121314151617181920212223242526272829303132"),
        selector: [0xa9, 0x05, 0x9c, 0xbb].into(),
        data: vec![0, 1, 2, 0xff].into(),
        flag: true,
        path: vec![address, Address::ZERO],
        pair: [7, 255],
        people: vec![Person {
            name: "Ünïcode ✓".into(),
            wallet: address,
        }],
        memo: String::new(),
    };
    let hash = note.eip712_signing_hash(&domain);
    let sig = signer.sign_typed_data(&note, &domain).await.unwrap();
    assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), address);

    // dynamic typed data (the same message as JSON)
    let typed: alloy_dyn_abi::TypedData =
        serde_json::from_value(common::fixtures::mail_typed_data()).unwrap();
    let sig = signer.sign_dynamic_typed_data(&typed).await.unwrap();
    assert_eq!(
        sig.recover_address_from_prehash(&typed.eip712_signing_hash().unwrap())
            .unwrap(),
        address
    );

    let digest = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
    let sig = signer.sign_hash(&digest).await.unwrap();
    assert_eq!(sig.recover_address_from_prehash(&digest).unwrap(), address);

    // each went to its own route: the audit log names the operations
    let ops = common::store::audit_since(live.s.db(), 0)
        .into_iter()
        .filter(|r| r.result == "ok" && r.action == "sign")
        .map(|r| r.operation.unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(
        ops,
        [
            "evm.message",
            "evm.typed_data",
            "evm.typed_data",
            "evm.typed_data",
            "evm.hash"
        ],
        "message and typed data never went to the hash route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloy_wallet_signs_transactions_that_decode_and_recover() {
    let live = Live::start().await;
    let w = live.s.import(Chain::Evm, EVM_KEY, None);
    let address: Address = w.address.unwrap().parse().unwrap();

    // the example, as docs/client-kits.md shows it
    let raw = alloy_send::sign_transfer(&live.url, live.tls(), &w.id, 1, 7)
        .await
        .unwrap();
    let envelope = TxEnvelope::decode_2718(&mut raw.as_ref()).unwrap();
    assert!(envelope.is_eip1559());
    assert_eq!(envelope.recover_signer().unwrap(), address);
    let tx = envelope.as_eip1559().unwrap().tx();
    assert_eq!(
        (tx.chain_id, tx.nonce, tx.value),
        (1, 7, U256::from(1_000_000_000_000_000u64))
    );

    // a legacy transaction through TxSigner: EIP-155 with the signer's chain id
    let signer = KeywardSigner::new(live.client(), &w.id)
        .await
        .unwrap()
        .with_chain_id(Some(5));
    let mut legacy = TxLegacy {
        chain_id: None,
        nonce: 1,
        gas_price: 2_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(address!("0x3535353535353535353535353535353535353535")),
        value: U256::from(5u64),
        input: Default::default(),
    };
    let sig = TxSigner::sign_transaction(&signer, &mut legacy)
        .await
        .unwrap();
    assert_eq!(legacy.chain_id, Some(5));
    let signed = TxEnvelope::from(legacy.into_signed(sig));
    assert_eq!(signed.recover_signer().unwrap(), address);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusal_is_the_error_enum_with_its_rule_and_audit_id() {
    let live = Live::start().await;
    let (signer, _) = live.evm().await;
    let mut tx = TxLegacy {
        chain_id: Some(1),
        nonce: 0,
        gas_price: 1_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(address!("0x3535353535353535353535353535353535353535")),
        // 0.02 ether: over kit-evm's 0.01
        value: U256::from(20_000_000_000_000_000u64),
        input: Default::default(),
    };
    let err = TxSigner::sign_transaction(&signer, &mut tx)
        .await
        .unwrap_err();
    let e = keyward_error(&err);
    let api = e.api().expect("keyward's answer");
    assert_eq!(
        (api.status, api.code.as_str(), api.rule.as_deref()),
        (403, "policy_denied", Some("kit-evm"))
    );
    assert!(e.is_policy_denied());
    assert_eq!(api.matched_rules, ["kit-evm"]);
    let audit_id = e.audit_id().expect("an auditId");
    live.s
        .assert_audited(&json!(audit_id), "denied", "policy_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_signer_signatures_verify_with_ed25519_dalek() {
    let live = Live::start().await;
    let w = live.s.import(Chain::Solana, SOLANA_SEED, None);
    let pubkey: [u8; 32] = bs58::decode(w.address.as_deref().unwrap())
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();

    // the example, as docs/client-kits.md shows it
    let (message, signature) =
        solana_transfer::sign_transfer(&live.url, live.tls(), &w.id, [7; 32], 1_000_000, [9; 32])
            .await
            .unwrap();
    assert_eq!(&message[4..36], &pubkey);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&pubkey).unwrap();
    key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .unwrap();

    // over the cap (0.01 SOL): refused by the rule, through the sync Signer trait
    let signer = KeywardSolanaSigner::new(live.client(), &w.id)
        .await
        .unwrap();
    let big = solana_transfer::transfer_message(pubkey, [7; 32], 50_000_000, [9; 32]);
    let err =
        tokio::task::spawn_blocking(move || solana_signer::Signer::try_sign_message(&signer, &big))
            .await
            .unwrap()
            .unwrap_err();
    match err {
        solana_signer::SignerError::Custom(m) => assert!(
            m.starts_with("keyward policy_denied (rule kit-solana): "),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }

    // a message the wallet is not a signer of: keyward's 422, as the enum
    let signer = KeywardSolanaSigner::new(live.client(), &w.id)
        .await
        .unwrap();
    let foreign = solana_transfer::transfer_message([5; 32], [7; 32], 1, [9; 32]);
    let e = signer.sign_message_bytes(&foreign).await.unwrap_err();
    assert_eq!(
        e.api().map(|a| (a.status, a.code.as_str())),
        Some((422, "not_a_signer"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_wallet_is_wallet_not_found_and_a_wrong_chain_refused() {
    let live = Live::start().await;
    for e in [
        KeywardSigner::new(live.client(), "no-such-wallet")
            .await
            .unwrap_err(),
        KeywardSolanaSigner::new(live.client(), "no-such-wallet")
            .await
            .unwrap_err(),
        live.client()
            .evm_message("no-such-wallet", b"hi", None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            e.api().map(|a| (a.status, a.code.as_str())),
            Some((404, "wallet_not_found")),
            "{e:?}"
        );
    }

    // a wallet of the other chain: refused before anything is signed
    let sol = live.s.import(Chain::Solana, SOLANA_SEED, None);
    let evm = live.s.import(Chain::Evm, EVM_KEY, None);
    let e = KeywardSigner::new(live.client(), &sol.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.ends_with("is a solana wallet, not an EVM one")),
        "{e:?}"
    );
    let e = KeywardSolanaSigner::new(live.client(), &evm.id)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.ends_with("is an evm wallet, not a Solana one")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificates_fail_as_tls_errors() {
    let live = Live::start().await;
    let env = &live.s.env;
    // a client certificate from a CA keyward does not trust
    let foreign = env
        .pki
        .other_ca
        .client("test-client", None, Validity::Current, 77)
        .unwrap();
    let tls = Tls::from_pem(
        env.pki.ca.cert_pem.as_bytes(),
        foreign.cert_pem.as_bytes(),
        foreign.key_pem.as_bytes(),
    )
    .unwrap();
    let e = KeywardClient::new(&live.url, tls)
        .unwrap()
        .wallet("any")
        .await
        .unwrap_err();
    match &e {
        Error::Tls(m) => assert!(m.contains("does not accept this client certificate"), "{m}"),
        other => panic!("{other:?}"),
    }

    // an expired client certificate of the right CA
    let expired = env
        .pki
        .ca
        .client("test-client", None, Validity::Expired, 78)
        .unwrap();
    let tls = Tls::from_pem(
        env.pki.ca.cert_pem.as_bytes(),
        expired.cert_pem.as_bytes(),
        expired.key_pem.as_bytes(),
    )
    .unwrap();
    let e = KeywardClient::new(&live.url, tls)
        .unwrap()
        .wallet("any")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Tls(m) if m.contains("does not accept")),
        "{e:?}"
    );

    // a server this client does not trust (it trusts only the other CA)
    let tls = Tls::from_pem(
        env.pki.other_ca.cert_pem.as_bytes(),
        env.pki.client.cert_pem.as_bytes(),
        env.pki.client.key_pem.as_bytes(),
    )
    .unwrap();
    let e = KeywardClient::new(&live.url, tls)
        .unwrap()
        .wallet("any")
        .await
        .unwrap_err();
    match &e {
        Error::Tls(m) => assert!(m.contains("UnknownIssuer"), "{m}"),
        other => panic!("{other:?}"),
    }
}
