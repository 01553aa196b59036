//! Loading a PKCS#11 module (once per process, with its environment) and choosing the
//! slot keyward uses; initialising a SoftHSM2 token for tests and the dev set-up.
//!
//! Must never: list or change slots outside [`with_slot_table`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::error::{classify, HsmError};
use super::TokenSettings;
use crate::config::{GcmIvMode, OaepMode};

/// Loads a module once per process: SoftHSM2 reads its config at `C_Initialize`, and
/// finalizing while another `Token` uses it would break that one. `environment` is set
/// under the same lock as the load, so a module reads the variables meant for it even
/// when two are loaded at once.
pub(crate) fn load_module(
    path: &Path,
    environment: &[(String, String)],
) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = map.get(path) {
        return Ok(ctx.clone());
    }
    for (k, v) in environment {
        // read by the module when it loads or at C_Initialize, both below
        std::env::set_var(k, v);
    }
    let fail = |reason: String| HsmError::Module {
        path: path.display().to_string(),
        reason,
    };
    if !path.exists() {
        return Err(fail("file not found".into()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| fail(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    map.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Runs `f` while no other thread of this process lists or changes the module's slots.
///
/// SoftHSM2 rescans its token directory on `C_GetSlotList` and adds what it finds to a
/// slot table that is not safe against a concurrent scan or `C_InitToken` (two threads
/// adding one token abort the process: `SlotManager::insertToken: Assertion
/// 'result.second' failed`). keyward lists slots when it connects and reconnects, and a
/// test process also initialises tokens: every such call goes through here.
#[doc(hidden)]
pub fn with_slot_table<T>(f: impl FnOnce() -> T) -> T {
    static SLOT_TABLE: Mutex<()> = Mutex::new(());
    let _one = SLOT_TABLE.lock().unwrap_or_else(|p| p.into_inner());
    f()
}

pub(crate) fn find_slot(ctx: &Pkcs11, s: &TokenSettings) -> Result<Slot, HsmError> {
    with_slot_table(|| find_slot_locked(ctx, s))
}

fn find_slot_locked(ctx: &Pkcs11, s: &TokenSettings) -> Result<Slot, HsmError> {
    let slots = ctx.get_slots_with_token().map_err(classify)?;
    for slot in slots {
        let id_ok = s.slot_id.is_none_or(|id| slot.id() == id);
        if !id_ok {
            continue;
        }
        let info = match ctx.get_token_info(slot) {
            Ok(info) => info,
            // the slot named by id is taken even when its token info cannot be read
            // (opencryptoki 3.8's clock string is refused by cryptoki), as long as nothing
            // else was asked of it
            Err(e) if s.token_label.is_none() && s.token_serial.is_none() => {
                tracing::warn!(slot = slot.id(), error = %e, "the token's info cannot be read; using the slot named by pkcs11.slot_id");
                return Ok(slot);
            }
            Err(e) => {
                tracing::warn!(slot = slot.id(), error = %e, "skipping a slot whose token info cannot be read (name it by pkcs11.slot_id alone to use it)");
                continue;
            }
        };
        let label_ok = s
            .token_label
            .as_deref()
            .is_none_or(|l| info.label().trim_end() == l);
        let serial_ok = s
            .token_serial
            .as_deref()
            .is_none_or(|n| info.serial_number().trim_end() == n);
        if label_ok && serial_ok && info.token_initialized() {
            return Ok(slot);
        }
    }
    let mut wanted: Vec<String> = Vec::new();
    if let Some(l) = &s.token_label {
        wanted.push(format!("label {l:?}"));
    }
    if let Some(n) = &s.token_serial {
        wanted.push(format!("serial {n:?}"));
    }
    if let Some(id) = s.slot_id {
        wanted.push(format!("slot id {id}"));
    }
    let wanted = if wanted.is_empty() {
        "any label".into()
    } else {
        wanted.join(" and ")
    };
    Err(HsmError::TokenNotFound {
        wanted,
        module: s.module.display().to_string(),
    })
}

/// Initialises a fresh token in the first free slot (tests and `scripts/dev-up` helpers).
/// SoftHSM2 only: real HSMs are initialised with their vendor's tools.
pub fn provision_token(
    module: &Path,
    label: &str,
    so_pin: &SecretString,
    user_pin: &SecretString,
) -> Result<(), HsmError> {
    let ctx = load_module(module, &[])?;
    with_slot_table(|| provision_locked(&ctx, module, label, so_pin, user_pin))
}

fn provision_locked(
    ctx: &Pkcs11,
    module: &Path,
    label: &str,
    so_pin: &SecretString,
    user_pin: &SecretString,
) -> Result<(), HsmError> {
    use cryptoki::session::UserType;
    let slots = ctx.get_all_slots().map_err(classify)?;
    let free = slots
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|i| !i.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| HsmError::Invalid("no free slot to initialise a token in".into()))?;
    ctx.init_token(free, so_pin, label).map_err(classify)?;
    // after C_InitToken the token moves; find it again by label
    let settings = TokenSettings {
        module: module.to_path_buf(),
        token_label: Some(label.into()),
        token_serial: None,
        slot_id: None,
        pool_size: 1,
        oaep: OaepMode::Auto,
        gcm_iv: GcmIvMode::Auto,
        label_prefix: "keyward".into(),
        rsa_bits: 3072,
        environment: Vec::new(),
    };
    let slot = find_slot_locked(ctx, &settings)?;
    let session = ctx.open_rw_session(slot).map_err(classify)?;
    session
        .login(UserType::So, Some(so_pin))
        .map_err(classify)?;
    session.init_pin(user_pin).map_err(classify)?;
    session.logout().map_err(classify)?;
    Ok(())
}
