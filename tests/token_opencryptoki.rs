//! A second real PKCS#11 implementation: opencryptoki's soft token (tests/common/ock.rs).
//! Debian's 3.8.1 has no AES-GCM (AES ECB/CBC only, like a YubiHSM 2's AES), so keyward
//! must refuse it at `init` and `serve` in one line that says what is missing and that no
//! setting works around it, and `keys list` must report what the token does offer, read
//! from the token itself.

mod common;

use common::daemon::{keyward, text};
use common::Env;

/// The test environment pointed at opencryptoki's token instead of a SoftHSM2 one.
fn ock_env() -> Env {
    let module = common::ock::token();
    let env = Env::new();
    env.edit_config(
        &format!("module = \"{}\"", common::MODULE),
        &format!("module = \"{module}\""),
    );
    // by slot id: cryptoki cannot read opencryptoki 3.8's token info (its clock string),
    // so a label cannot be matched (tested below)
    env.edit_config(
        &format!("token_label = \"{}\"", env.token_label),
        &format!("slot_id = {}", common::ock::SLOT),
    );
    keyward::pki::write_private(&env.path("pin"), common::ock::USER_PIN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    env
}

#[test]
fn a_token_whose_info_cannot_be_read_is_found_by_slot_id_and_named_when_not() {
    let env = ock_env();
    env.edit_config(
        &format!("slot_id = {}", common::ock::SLOT),
        &format!("token_label = \"{}\"", common::ock::LABEL),
    );
    let out = keyward(&env, &["init"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("token info cannot be read") && t.contains("no token with label"),
        "{t}"
    );
}

#[test]
fn opencryptoki_without_aes_gcm_is_refused_by_name_and_its_mechanisms_are_listed() {
    let env = ock_env();
    for cmd in [&["init"][..], &["serve"][..]] {
        let out = keyward(&env, cmd);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {t}");
        assert!(
            t.contains("no CKM_AES_GCM for C_Encrypt/C_Decrypt")
                && t.contains("no setting works around it"),
            "{cmd:?}: {t}"
        );
    }
    // what the token offers, as it says itself (pkcsconf -m -c 3 agrees)
    let out = keyward(&env, &["keys", "list"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    for (mechanism, offered) in [
        ("CKM_AES_GCM", false),
        ("CKM_RSA_PKCS_OAEP", true),
        ("CKM_RSA_X_509", true),
        ("CKM_AES_KEY_GEN", true),
        ("CKM_RSA_PKCS_KEY_PAIR_GEN", true),
    ] {
        let want = if offered { "yes" } else { "no" };
        assert!(
            t.lines()
                .any(|l| l.contains(mechanism) && l.trim_end().ends_with(want)),
            "{mechanism} should be {want}:\n{t}"
        );
    }
}
