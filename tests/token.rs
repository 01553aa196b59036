//! The token layer against a real SoftHSM2 token.

mod common;

use std::sync::Arc;

use common::{Env, EnvOptions};
use cryptoki::object::{Attribute, AttributeType};
use keyward::appliance;
use keyward::custody::{self, Binding, Purpose};
use keyward::hsm::{HsmError, KeyKind};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

fn env_with(oaep: &'static str) -> Env {
    Env::with(EnvOptions {
        oaep,
        ..Default::default()
    })
}

#[test]
fn init_is_idempotent_and_keys_have_safe_attributes() {
    let env = Env::new();
    let token = env.token();
    let first = appliance::init_keys(&token).unwrap();
    assert_eq!(first.created.len(), 2, "{first:?}");
    let second = appliance::init_keys(&token).unwrap();
    assert!(
        second.created.is_empty(),
        "second init changed nothing: {second:?}"
    );
    assert_eq!(second.existing.len(), 2);

    let rsa = token.rsa_keys().unwrap();
    assert_eq!(rsa.len(), 1);
    assert_eq!(rsa[0].label, "keyward-rsa-1");
    for (name, value) in &rsa[0].attributes {
        let want = !matches!(
            *name,
            "CKA_EXTRACTABLE" | "CKA_SIGN" | "CKA_UNWRAP" | "CKA_DERIVE"
        );
        assert_eq!(*value, want, "{name}");
    }
    assert!(rsa[0]
        .public_pem()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert!(rsa[0].fingerprint().unwrap().starts_with("sha256:"));
    let bits = rsa::traits::PublicKeyParts::size(rsa[0].public.as_ref().unwrap()) * 8;
    assert_eq!(bits, 3072);

    // an independent PKCS#11 session cannot read the secret values
    let ctx = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == env.token_label)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    let _ = session.login(
        cryptoki::session::UserType::User,
        Some(&common::USER_PIN.to_owned().into()),
    );
    for label in ["keyward-rsa-1", "keyward-wrap-1"] {
        let handles = session
            .find_objects(&[
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Private(true),
            ])
            .unwrap();
        assert!(!handles.is_empty(), "{label}");
        for h in handles {
            let attrs = session
                .get_attributes(h, &[AttributeType::Value, AttributeType::PrivateExponent])
                .unwrap_or_default();
            assert!(
                !attrs
                    .iter()
                    .any(|a| matches!(a, Attribute::Value(_) | Attribute::PrivateExponent(_))),
                "{label}: secret attribute readable"
            );
        }
    }
}

fn oaep_roundtrip(mode: &'static str) {
    let env = env_with(mode);
    let token = env.token();
    appliance::init_keys(&token).unwrap();
    let key = token.rsa_keys().unwrap().remove(0);
    let public: RsaPublicKey = key.public.clone().unwrap();
    let mut rng = rand::thread_rng();
    let aes_key = [7u8; 32];
    let ct = public
        .encrypt(&mut rng, Oaep::new::<Sha256>(), &aes_key)
        .unwrap();
    match token.rsa_decrypt(&key.label, &ct) {
        Ok(pt) => assert_eq!(pt.as_slice(), &aes_key),
        // SoftHSM2 2.6.1 refuses OAEP-SHA256: `native` must say so clearly
        Err(HsmError::MechanismRefused { .. }) if mode == "native" => return,
        Err(e) => panic!("{mode}: {e}"),
    }
    // truncated, oversized, corrupted, and encrypted to another key: all refused cleanly
    let mut corrupted = ct.clone();
    corrupted[100] ^= 0x40;
    let mut oversized = ct.clone();
    oversized.push(0);
    let other = RsaPrivateKey::new(&mut rng, 3072).unwrap();
    let foreign = RsaPublicKey::from(&other)
        .encrypt(&mut rng, Oaep::new::<Sha256>(), &aes_key)
        .unwrap();
    for (what, bad) in [
        ("truncated", &ct[..ct.len() - 1]),
        ("oversized", oversized.as_slice()),
        ("corrupted", corrupted.as_slice()),
        ("other key", foreign.as_slice()),
        ("above the modulus", vec![0xffu8; ct.len()].leak()),
    ] {
        let e = token.rsa_decrypt(&key.label, bad).unwrap_err();
        assert!(matches!(e, HsmError::DecryptFailed), "{mode} {what}: {e}");
    }
    // and none of that took the token down
    assert_eq!(
        token.rsa_decrypt(&key.label, &ct).unwrap().as_slice(),
        &aes_key
    );
}

#[test]
fn oaep_raw_mode() {
    oaep_roundtrip("raw");
}

#[test]
fn oaep_auto_mode() {
    oaep_roundtrip("auto");
}

#[test]
fn oaep_native_mode() {
    oaep_roundtrip("native");
}

#[test]
fn wrap_unwrap_is_bound_to_wallet_chain_purpose_and_version() {
    let env = Env::new();
    let token = env.token();
    appliance::init_keys(&token).unwrap();
    let v = token.current_wrap_version().unwrap();
    let b = Binding {
        wallet_id: "w-1",
        chain: "evm",
        purpose: Purpose::Share,
    };
    let secret = b"0123456789abcdef0123456789abcdef";
    let blob = custody::wrap(&token, &b, v, secret).unwrap();
    assert_eq!(custody::unwrap(&token, &b, &blob).unwrap().expose(), secret);
    for other in [
        Binding {
            wallet_id: "w-2",
            ..b
        },
        Binding {
            chain: "solana",
            ..b
        },
        Binding {
            purpose: Purpose::ApiKey,
            ..b
        },
    ] {
        assert!(matches!(
            custody::unwrap(&token, &other, &blob),
            Err(custody::CustodyError::NotForThisWallet)
        ));
    }
    for i in 7..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        assert!(
            custody::unwrap(&token, &b, &bad).is_err(),
            "bit flip at {i} accepted"
        );
    }
    // claiming another key version in the header fails too
    token.generate(KeyKind::Wrap).unwrap();
    let mut relabelled = blob.clone();
    relabelled[6] = 2;
    assert!(custody::unwrap(&token, &b, &relabelled).is_err());
    assert_eq!(custody::unwrap(&token, &b, &blob).unwrap().expose(), secret);
}

#[test]
fn pool_serves_eight_threads() {
    let env = Env::new();
    let token = env.token();
    appliance::init_keys(&token).unwrap();
    let v = token.current_wrap_version().unwrap();
    let token = Arc::new(token);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let token = token.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let id = format!("w-{t}-{i}");
                    let b = Binding {
                        wallet_id: &id,
                        chain: "solana",
                        purpose: Purpose::Share,
                    };
                    let secret = format!("secret-{t}-{i}");
                    let blob = custody::wrap(&token, &b, v, secret.as_bytes()).unwrap();
                    assert_eq!(
                        custody::unwrap(&token, &b, &blob).unwrap().expose(),
                        secret.as_bytes()
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn login_and_lookup_errors_are_clear_and_carry_no_pin() {
    let env = Env::new();
    let mut cfg = env.config();
    // wrong PIN
    let wrong = env.path("wrong-pin");
    keyward::pki::write_private(&wrong, "not-the-pin-31337").unwrap();
    cfg.pkcs11.pin = keyward::config::SecretRef::File { file: wrong };
    let e = appliance::open_token(&cfg).unwrap_err().to_string();
    assert!(e.contains("login") && !e.contains("31337"), "{e}");
    // missing module
    let mut cfg = env.config();
    cfg.pkcs11.module = "/nonexistent/libpkcs11.so".into();
    let e = appliance::open_token(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/libpkcs11.so") && !e.contains(common::USER_PIN),
        "{e}"
    );
    // missing token
    let mut cfg = env.config();
    cfg.pkcs11.token_label = Some("no-such-token".into());
    let e = appliance::open_token(&cfg).unwrap_err().to_string();
    assert!(
        e.contains("no-such-token") && !e.contains(common::USER_PIN),
        "{e}"
    );
    // no keys yet: serve refuses with a pointer to `keyward init`
    let e = keyward::appliance::Appliance::open(env.config())
        .unwrap_err()
        .to_string();
    assert!(e.contains("keyward init"), "{e}");
}

/// What pkcs11/MECHANISMS.md states about SoftHSM2, measured: the mechanisms keyward
/// uses are listed, and OAEP with SHA-256 is refused at C_DecryptInit (hence `raw`).
#[test]
fn softhsm_mechanisms_match_the_notes() {
    use cryptoki::mechanism::MechanismType;
    let env = Env::new();
    let token = env.token();
    appliance::init_keys(&token).unwrap();
    let ctx = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == env.token_label)
        .unwrap();
    let list = ctx.get_mechanism_list(slot).unwrap();
    for m in [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS_OAEP,
        MechanismType::RSA_X_509,
        MechanismType::AES_KEY_GEN,
        MechanismType::AES_GCM,
    ] {
        assert!(list.contains(&m), "{m} missing");
    }
    let e = oaep_native_result(&env);
    assert!(
        matches!(e, Err(HsmError::MechanismRefused { .. })) || e.is_ok(),
        "native OAEP-SHA256 either works or is refused as a mechanism: {e:?}"
    );
    if let Ok(v) = std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
    {
        if String::from_utf8_lossy(&v.stdout).trim() == "2.6.1" {
            assert!(
                e.is_err(),
                "SoftHSM2 2.6.1 is documented to refuse OAEP-SHA256"
            );
        }
    }
}

fn oaep_native_result(env: &Env) -> Result<(), HsmError> {
    let mut cfg = env.config();
    cfg.pkcs11.rsa_oaep = keyward::config::OaepMode::Native;
    let token = appliance::open_token(&cfg).unwrap();
    let key = token.rsa_keys().unwrap().remove(0);
    let ct = key
        .public
        .unwrap()
        .encrypt(&mut rand::thread_rng(), Oaep::new::<Sha256>(), &[1u8; 32])
        .unwrap();
    token.rsa_decrypt(&key.label, &ct).map(|_| ())
}
