//! The PKCS#11 token: module loading, login, the session pool, cached key handles, and
//! the few operations keyward needs (RSA-OAEP decryption, AES-256-GCM seal/open under the
//! wrapping key, key generation, public-key export).
//!
//! Must never: return or log key material other than plaintexts the caller asked to
//! decrypt (handed back in zeroizing buffers), or look keys up per request. Handles are
//! found once when the token is (re)connected; if the token disappears, the next call
//! reconnects, so service comes back without a restart.

mod capabilities;
mod error;
mod gcm;
pub mod keys;
mod module;
mod oaep;
mod pool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use rand::RngCore;
use secrecy::SecretString;
use zeroize::Zeroizing;

pub use capabilities::Capabilities;
pub use error::HsmError;
pub use gcm::MAX_SEALED_PLAINTEXT;
pub use keys::{KeyKind, KeyObject};
use module::{find_slot, load_module};
pub use module::{provision_token, with_slot_table};

use crate::config::{GcmIvMode, OaepMode, Pkcs11Config};
use error::{classify, classify_decrypt, is_mechanism_refusal, Fault};
use pool::Pool;

/// The host-side EME-OAEP decoder (SHA-256, MGF1-SHA-256, empty label) applied to the raw
/// RSA output of the token, as a pure function. Exposed only so the fuzz targets in `fuzz/`
/// and their stable replay (`tests/fuzz_replay.rs`) can reach it; not part of the API.
#[doc(hidden)]
pub fn oaep_decode_for_fuzzing(em: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    oaep::decode(em)
}

/// GCM nonce length used for everything keyward seals itself.
pub const GCM_IV_LEN: usize = 12;
/// GCM tag length.
pub const GCM_TAG_LEN: usize = 16;

/// What the token layer needs from the config.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// PKCS#11 module path.
    pub module: PathBuf,
    /// Token label.
    pub token_label: Option<String>,
    /// Token serial.
    pub token_serial: Option<String>,
    /// Slot id.
    pub slot_id: Option<u64>,
    /// Sessions in the pool.
    pub pool_size: usize,
    /// OAEP mode.
    pub oaep: OaepMode,
    /// Who picks the GCM IV.
    pub gcm_iv: GcmIvMode,
    /// Label prefix of keyward's objects.
    pub label_prefix: String,
    /// RSA modulus bits for new keys.
    pub rsa_bits: u32,
    /// Environment for the module (set before it is loaded).
    pub environment: Vec<(String, String)>,
}

impl From<&Pkcs11Config> for TokenSettings {
    fn from(c: &Pkcs11Config) -> Self {
        TokenSettings {
            module: c.module.clone(),
            token_label: c.token_label.clone(),
            token_serial: c.token_serial.clone(),
            slot_id: c.slot_id,
            pool_size: c.pool_size,
            oaep: c.rsa_oaep,
            gcm_iv: c.gcm_iv,
            label_prefix: c.label_prefix.clone(),
            rsa_bits: c.rsa_bits,
            environment: c.environment.clone().into_iter().collect(),
        }
    }
}

/// The connected token. Cheap to clone; all clones share one pool.
#[derive(Clone)]
pub struct Token {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.inner.settings.module)
            .field("token_label", &self.inner.settings.token_label)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: TokenSettings,
    ctx: Pkcs11,
    pin: SecretString,
    live: RwLock<Option<Arc<Live>>>,
    reconnect: Mutex<Option<Instant>>,
    syncing: Mutex<()>,
    /// Resolved OAEP mode: 0 undecided, 1 native, 2 raw.
    oaep: AtomicU8,
    /// Connections re-established after the token failed.
    reconnects: AtomicU64,
    /// Resolved GCM IV mode (`gcm::IV_*`).
    gcm_iv: AtomicU8,
    /// Moving average of how long an open (unwrap) takes in the token, in microseconds:
    /// whether an async caller may run one inline ([`Token::try_open_sealed`]).
    open_micros: AtomicU64,
}

/// An unwrap slower than this on average is never run on an async worker: a network HSM
/// (0.5-5 ms per operation) would hold the worker, and every connection it serves, for
/// that long, and cap a node's rate at one operation per worker at a time whatever the
/// pool size (measured: BENCHMARKS.md, "Token latency"). SoftHSM2 takes ~10 us.
const INLINE_OPEN_MICROS: u64 = 100;

/// Everything that depends on an open connection to the token.
struct Live {
    slot: Slot,
    pool: Pool,
    rsa: Vec<KeyObject>,
    wrap: Vec<KeyObject>,
    /// Non-extractable session copies of the wrapping keys, by version; they live as
    /// long as `owner` (session objects die with the session that made them).
    wrap_copies: HashMap<u32, ObjectHandle>,
    /// What the token said it offers when this connection was made.
    caps: Capabilities,
    _owner: Mutex<Session>,
}

const OAEP_NATIVE: u8 = 1;
const OAEP_RAW: u8 = 2;
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);

impl Token {
    /// Loads the module, finds the token, logs in and fills the pool.
    pub fn open(settings: TokenSettings, pin: SecretString) -> Result<Token, HsmError> {
        let ctx = load_module(&settings.module, &settings.environment)?;
        let settings_gcm_iv = settings.gcm_iv;
        let token = Token {
            inner: Arc::new(Inner {
                settings,
                ctx,
                pin,
                live: RwLock::new(None),
                reconnect: Mutex::new(None),
                syncing: Mutex::new(()),
                oaep: AtomicU8::new(0),
                reconnects: AtomicU64::new(0),
                gcm_iv: AtomicU8::new(gcm::iv_mode_of(settings_gcm_iv)),
                open_micros: AtomicU64::new(0),
            }),
        };
        let live = token.connect()?;
        *token.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Some(live);
        Ok(token)
    }

    /// What the token named by `settings` offers, asked without logging in: for
    /// `keyward keys list` when [`Token::open`] refused the token for a missing mechanism.
    pub fn probe(settings: &TokenSettings) -> Result<Capabilities, HsmError> {
        let ctx = load_module(&settings.module, &settings.environment)?;
        let slot = find_slot(&ctx, settings)?;
        Capabilities::probe(&ctx, slot)
    }

    /// The settings this token was opened with.
    pub fn settings(&self) -> &TokenSettings {
        &self.inner.settings
    }

    fn connect(&self) -> Result<Arc<Live>, HsmError> {
        let s = &self.inner.settings;
        let slot = find_slot(&self.inner.ctx, s)?;
        let caps = Capabilities::probe(&self.inner.ctx, slot)?;
        if let Some(gap) = caps.serving_gap(s.oaep) {
            return Err(HsmError::Capability(gap));
        }
        // the owner of the key copies first: a token that caps sessions per application
        // then gives the pool what is left (Pool::open takes fewer than asked, saying so)
        let owner = pool::open_session(&self.inner.ctx, slot)?;
        let pool = Pool::open(&self.inner.ctx, slot, s.pool_size, &self.inner.pin)?;
        let rsa = keys::discover(&owner, &s.label_prefix, KeyKind::Rsa)?;
        let wrap = keys::discover(&owner, &s.label_prefix, KeyKind::Wrap)?;
        let mut wrap_copies = HashMap::new();
        for k in &wrap {
            // A session copy keeps CKA_SENSITIVE/CKA_EXTRACTABLE and is ~3x faster in
            // SoftHSM2. Tokens without C_CopyObject (AWS CloudHSM, the YubiHSM 2, Google's
            // kmsp11) or that refuse it for a non-copyable key are used through the token
            // key itself: slower, never wrong.
            let handle = match owner.copy_object(k.handle, &[Attribute::Token(false)]) {
                Ok(copy) => copy,
                Err(CkError::Pkcs11(rv, _))
                    if matches!(
                        rv,
                        RvError::FunctionNotSupported
                            | RvError::ActionProhibited
                            | RvError::AttributeReadOnly
                            | RvError::TemplateInconsistent
                    ) =>
                {
                    tracing::info!(label = %k.label, rv = ?rv, "the token does not copy keys to session objects; using the token key directly");
                    k.handle
                }
                Err(e) => return Err(classify(e)),
            };
            wrap_copies.insert(k.version, handle);
        }
        let live = Arc::new(Live {
            slot,
            pool,
            rsa,
            wrap,
            wrap_copies,
            caps,
            _owner: Mutex::new(owner),
        });
        self.resolve_oaep(&live)?;
        Ok(live)
    }

    /// Returns the connection, reconnecting (with a short backoff) after a token fault.
    fn live(&self) -> Result<Arc<Live>, HsmError> {
        if let Some(l) = self
            .inner
            .live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(l.clone());
        }
        let mut last = self
            .inner
            .reconnect
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(l) = self
            .inner
            .live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(l.clone());
        }
        if last.is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF) {
            return Err(HsmError::Unavailable {
                function: "reconnect".into(),
                rv: "token still unavailable".into(),
            });
        }
        *last = Some(Instant::now());
        let live = self.connect().map_err(|e| match e {
            HsmError::TokenNotFound { .. } | HsmError::Module { .. } => HsmError::Unavailable {
                function: "reconnect".into(),
                rv: e.to_string(),
            },
            other => other,
        })?;
        tracing::info!("token connection re-established");
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        *self.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Some(live.clone());
        Ok(live)
    }

    fn drop_live(&self, failed: &Arc<Live>) {
        let mut guard = self.inner.live.write().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|l| Arc::ptr_eq(l, failed)) {
            tracing::warn!("token unavailable; will reconnect on the next request");
            *guard = None;
        }
    }

    /// Runs `op` on a pooled session, replacing the session or the whole connection when
    /// the token says it is dead.
    fn run<T>(&self, op: impl Fn(&Session, &Live) -> Result<T, HsmError>) -> Result<T, HsmError> {
        self.run_with(true, op)
            .unwrap_or(Err(HsmError::PoolExhausted(pool::CHECKOUT_WAIT)))
    }

    /// Like [`Token::run`]; with `wait` false, `None` instead of waiting for a session.
    ///
    /// An operation that failed because its session or the connection died is tried
    /// again, up to twice, on a fresh session and then a fresh connection: after an HSM
    /// failover every pooled session and cached handle is dead at once (sessions closed,
    /// handles renumbered), and the caller should not pay for each of them in turn. Every
    /// operation run here is safe to repeat: nothing it wrote took effect if its session
    /// was gone.
    fn run_with<T>(
        &self,
        wait: bool,
        op: impl Fn(&Session, &Live) -> Result<T, HsmError>,
    ) -> Option<Result<T, HsmError>> {
        let mut tries = 0;
        loop {
            let result = self.run_once(wait, &op)?;
            match &result {
                Err(e) if e.fault() != Fault::None && tries < 2 => tries += 1,
                _ => return Some(result),
            }
        }
    }

    fn run_once<T>(
        &self,
        wait: bool,
        op: &impl Fn(&Session, &Live) -> Result<T, HsmError>,
    ) -> Option<Result<T, HsmError>> {
        let live = match self.live() {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let checkout = if wait {
            live.pool.checkout()
        } else {
            live.pool.try_checkout()?
        };
        let pooled = match checkout {
            Ok(p) => p,
            Err(e) => {
                if e.fault() == Fault::Token {
                    self.drop_live(&live);
                }
                return Some(Err(e));
            }
        };
        let result = op(pooled.session(), &live);
        match result.as_ref().err().map(HsmError::fault) {
            Some(Fault::Session) => pooled.discard(),
            Some(Fault::Token) => {
                pooled.discard();
                self.drop_live(&live);
            }
            _ => drop(pooled),
        }
        Some(result)
    }

    /// How many times the connection was re-established after the token failed.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// Checks that the token answers (for readiness probes).
    pub fn ping(&self) -> Result<(), HsmError> {
        self.run(|s, _| s.get_session_info().map(|_| ()).map_err(classify))
    }

    /// Sessions in the pool and how many are checked out.
    pub fn pool_usage(&self) -> (usize, usize) {
        match self
            .inner
            .live
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(l) => (l.pool.size(), l.pool.in_use()),
            None => (self.inner.settings.pool_size, 0),
        }
    }

    /// The webhook RSA keys, oldest first.
    pub fn rsa_keys(&self) -> Result<Vec<KeyObject>, HsmError> {
        Ok(self.live()?.rsa.clone())
    }

    /// The wrapping keys, oldest first.
    pub fn wrap_keys(&self) -> Result<Vec<KeyObject>, HsmError> {
        Ok(self.live()?.wrap.clone())
    }

    /// Loads the token's keys again when they are not the ones this process holds.
    ///
    /// `keyward keys rotate-*` and `keys retire` run as other processes while the service
    /// serves: a wrap under a version the operator has since moved every wallet off, or a
    /// delivery encrypted to a key registered after start, must not depend on a restart.
    /// Comparing labels costs one `C_FindObjects` and a label read per key.
    pub fn sync_keys(&self) -> Result<(), HsmError> {
        let prefix = self.inner.settings.label_prefix.clone();
        let read = |token: &Token| {
            token.run(|session, _| {
                let mut in_token = keys::labels(session, &prefix, KeyKind::Rsa)?;
                in_token.extend(keys::labels(session, &prefix, KeyKind::Wrap)?);
                Ok(in_token
                    .into_iter()
                    .collect::<std::collections::BTreeSet<_>>())
            })
        };
        let loaded = |live: &Live| {
            live.rsa
                .iter()
                .chain(live.wrap.iter())
                .map(|k| k.label.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        if read(self)? == loaded(&*self.live()?) {
            return Ok(());
        }
        // one refresh at a time; whoever waited re-checks before doing it again
        let _one = self.inner.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let in_token = read(self)?;
        if in_token != loaded(&*self.live()?) {
            tracing::info!(keys = ?in_token, "the token's keys changed since they were loaded; loading them again");
            self.refresh()?;
        }
        Ok(())
    }

    /// The newest wrapping key version, used for every new wrap (checked against the
    /// token each time, see [`Token::sync_keys`]).
    pub fn current_wrap_version(&self) -> Result<u32, HsmError> {
        self.sync_keys()?;
        self.live()?
            .wrap
            .last()
            .map(|k| k.version)
            .ok_or_else(|| HsmError::KeyMissing {
                kind: "AES wrapping",
                label: KeyKind::Wrap.label(&self.inner.settings.label_prefix, 1),
            })
    }

    /// Fails unless at least one RSA key and one wrapping key exist.
    pub fn require_keys(&self) -> Result<(), HsmError> {
        let live = self.live()?;
        if live.rsa.is_empty() {
            return Err(HsmError::KeyMissing {
                kind: "RSA",
                label: KeyKind::Rsa.label(&self.inner.settings.label_prefix, 1),
            });
        }
        self.current_wrap_version().map(|_| ())
    }

    /// The OAEP mode in use (after `auto` was resolved), for logs and `keys list`.
    pub fn oaep_mode(&self) -> &'static str {
        match self.inner.oaep.load(Ordering::Relaxed) {
            OAEP_NATIVE => "native",
            OAEP_RAW => "raw",
            _ => "undecided",
        }
    }

    /// What the token offers (asked when the connection was made).
    pub fn capabilities(&self) -> Result<Capabilities, HsmError> {
        Ok(self.live()?.caps)
    }

    fn resolve_oaep(&self, live: &Live) -> Result<(), HsmError> {
        let mode = match self.inner.settings.oaep {
            // the mechanism list cannot say whether SHA-256 parameters are accepted
            // (SoftHSM2 lists CKM_RSA_PKCS_OAEP and refuses them): ask with a probe
            OaepMode::Native => match live.rsa.last().map(|k| probe_native_oaep(&live.pool, k)) {
                Some(Some(false)) => {
                    return Err(HsmError::Capability(
                        "the token refuses RSA-OAEP with SHA-256 parameters, which \
                         pkcs11.rsa_oaep = \"native\" needs (SoftHSM2 does): set \
                         pkcs11.rsa_oaep = \"raw\" or \"auto\""
                            .into(),
                    ))
                }
                _ => OAEP_NATIVE,
            },
            OaepMode::Raw => OAEP_RAW,
            OaepMode::Auto => {
                if self.inner.oaep.load(Ordering::Relaxed) != 0 {
                    return Ok(());
                }
                let Some(key) = live.rsa.last() else {
                    return Ok(());
                };
                match probe_native_oaep(&live.pool, key) {
                    Some(true) => OAEP_NATIVE,
                    Some(false) if live.caps.rsa_raw => OAEP_RAW,
                    Some(false) => {
                        return Err(HsmError::Capability(
                            "the token refuses RSA-OAEP with SHA-256 parameters and has no raw \
                             RSA (CKM_RSA_X_509) either: webhook envelopes cannot be decrypted \
                             on it"
                                .into(),
                        ))
                    }
                    None => return Ok(()),
                }
            }
        };
        if self.inner.oaep.swap(mode, Ordering::Relaxed) != mode {
            tracing::info!(
                mode = if mode == OAEP_NATIVE {
                    "native CKM_RSA_PKCS_OAEP"
                } else {
                    "raw CKM_RSA_X_509 + host OAEP decoding"
                },
                "RSA-OAEP-SHA256 decryption mode"
            );
        }
        Ok(())
    }

    /// RSA-OAEP-SHA256 decryption with the RSA key labelled `label`.
    pub fn rsa_decrypt(
        &self,
        label: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let mode = self.inner.oaep.load(Ordering::Relaxed);
        self.run(|session, live| {
            let key = live
                .rsa
                .iter()
                .find(|k| k.label == label)
                .ok_or_else(|| HsmError::Invalid(format!("no RSA key labelled {label}")))?;
            let public = key.public.as_ref().expect("RSA key has a public part");
            let k = rsa::traits::PublicKeyParts::size(public);
            // RSADP is defined for 0 <= c < n only. Checked here (public values) because
            // SoftHSM2 answers an out-of-range c with CKR_GENERAL_ERROR, which must not be
            // mistaken for a token outage.
            if ciphertext.len() != k
                || rsa::BigUint::from_bytes_be(ciphertext)
                    >= *rsa::traits::PublicKeyParts::n(public)
            {
                return Err(HsmError::DecryptFailed);
            }
            match mode {
                OAEP_NATIVE => native_oaep(session, key.handle, ciphertext),
                _ => raw_oaep(session, key.handle, ciphertext, k),
            }
        })
    }

    /// AES-256-GCM encryption under wrapping key `version`; returns `iv || ct || tag` with
    /// the IV the token used, after the blob was opened again to the same plaintext in the
    /// token ([`gcm::seal`]): what this returns is safe to store.
    pub fn seal(&self, version: u32, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let sealed = self.run(|session, live| {
            let key = wrap_handle(live, version)?;
            gcm::seal(session, key, aad, plaintext, &self.inner.gcm_iv)
        });
        if let Err(HsmError::SealCheck) = &sealed {
            tracing::error!(
                version,
                "a blob sealed by the token did not open to the same bytes; nothing stored \
                 (does the token report the GCM IV it used? see docs/hsms.md)"
            );
        }
        sealed
    }

    /// Opens `iv || ct || tag` sealed by [`Token::seal`] with the same `aad`.
    pub fn open_sealed(
        &self,
        version: u32,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        self.open_sealed_with(true, version, aad, sealed)
            .unwrap_or(Err(HsmError::PoolExhausted(pool::CHECKOUT_WAIT)))
    }

    /// [`Token::open_sealed`] if a session is free right now and the token answers
    /// quickly, else `None` (so an async caller can move the call off its worker thread).
    pub fn try_open_sealed(
        &self,
        version: u32,
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Result<Zeroizing<Vec<u8>>, HsmError>> {
        if !self.answers_inline() {
            return None;
        }
        self.open_sealed_with(false, version, aad, sealed)
    }

    /// True while unwraps take little enough time to run on an async worker.
    pub fn answers_inline(&self) -> bool {
        self.inner.open_micros.load(Ordering::Relaxed) <= INLINE_OPEN_MICROS
    }

    fn open_sealed_with(
        &self,
        wait: bool,
        version: u32,
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Result<Zeroizing<Vec<u8>>, HsmError>> {
        if sealed.len() < GCM_IV_LEN + GCM_TAG_LEN {
            return Some(Err(HsmError::DecryptFailed));
        }
        // a wallet rewrapped by another process under a version made after this process
        // loaded its keys: load them again, once (token calls: only where waiting is fine)
        let loaded = match self.live() {
            Ok(l) => l.wrap_copies.contains_key(&version),
            Err(e) => return Some(Err(e)),
        };
        if !loaded {
            if !wait {
                return None;
            }
            if let Err(e) = self.sync_keys() {
                return Some(Err(e));
            }
        }
        let started = Instant::now();
        let opened = self.run_with(wait, |session, live| {
            let key = wrap_handle(live, version)?;
            gcm::open(session, key, aad, sealed)
        });
        if opened.is_some() {
            // a moving average over about the last eight unwraps
            let took = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
            let avg = &self.inner.open_micros;
            let old = avg.load(Ordering::Relaxed);
            avg.store((old * 7 + took) / 8, Ordering::Relaxed);
        }
        opened
    }

    /// Generates a key of `kind` with the next version number; returns its label.
    pub fn generate(&self, kind: KeyKind) -> Result<String, HsmError> {
        let s = &self.inner.settings;
        let caps = self.capabilities()?;
        if let Some(gap) = caps.keygen_gap(kind) {
            return Err(HsmError::Capability(gap));
        }
        let label = self.run(|session, live| {
            let existing = match kind {
                KeyKind::Rsa => &live.rsa,
                KeyKind::Wrap => &live.wrap,
            };
            let next = existing.last().map_or(1, |k| k.version + 1);
            let label = kind.label(&s.label_prefix, next);
            match kind {
                KeyKind::Rsa => keys::generate_rsa(session, &label, next, s.rsa_bits)?,
                KeyKind::Wrap => keys::generate_wrap(session, &label, next)?,
            };
            Ok(label)
        })?;
        self.refresh()?;
        Ok(label)
    }

    /// Destroys the key objects labelled `label`.
    pub fn destroy(&self, label: &str) -> Result<usize, HsmError> {
        let n = self.run(|session, _| keys::destroy_label(session, label))?;
        self.refresh()?;
        Ok(n)
    }

    /// Re-reads the key objects (after a rotation by another process, on SIGHUP).
    pub fn refresh(&self) -> Result<(), HsmError> {
        // the old connection's sessions close first (once no call still holds them): a
        // token that caps sessions per application has none to spare for two pools
        drop(
            self.inner
                .live
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let live = self.connect()?;
        *self.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Some(live);
        Ok(())
    }

    /// The slot in use (diagnostics).
    pub fn slot_id(&self) -> Result<u64, HsmError> {
        Ok(self.live()?.slot.id())
    }
}

fn wrap_handle(live: &Live, version: u32) -> Result<ObjectHandle, HsmError> {
    live.wrap_copies
        .get(&version)
        .copied()
        .ok_or_else(|| HsmError::Invalid(format!("no wrapping key version {version} in the token")))
}

fn oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

fn native_oaep(
    session: &Session,
    key: ObjectHandle,
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    match session.decrypt(&oaep_sha256(), key, ct) {
        Ok(pt) => Ok(Zeroizing::new(pt)),
        Err(e) if is_mechanism_refusal(&e) => Err(HsmError::MechanismRefused {
            mechanism: "CKM_RSA_PKCS_OAEP(SHA-256)",
            rv: e.to_string(),
        }),
        Err(e) => Err(classify_decrypt(e, || session.get_session_info().is_ok())),
    }
}

fn raw_oaep(
    session: &Session,
    key: ObjectHandle,
    ct: &[u8],
    k: usize,
) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    let block = Zeroizing::new(
        session
            .decrypt(&Mechanism::RsaX509, key, ct)
            .map_err(|e| classify_decrypt(e, || session.get_session_info().is_ok()))?,
    );
    if block.len() > k {
        return Err(HsmError::DecryptFailed);
    }
    // Tokens may strip leading zero bytes of the integer; OAEP needs the full k bytes.
    let mut em = Zeroizing::new(vec![0u8; k]);
    em[k - block.len()..].copy_from_slice(&block);
    oaep::decode(&em).ok_or(HsmError::DecryptFailed)
}

/// Encrypts a random value on the host and asks the token to decrypt it natively.
/// `Some(true)` native works, `Some(false)` the token refuses OAEP-SHA256, `None` unknown.
fn probe_native_oaep(pool: &Pool, key: &KeyObject) -> Option<bool> {
    let public = key.public.as_ref()?;
    let mut probe = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(probe.as_mut());
    let ct = public
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            probe.as_ref(),
        )
        .ok()?;
    let session = pool.checkout().ok()?;
    match session.session().decrypt(&oaep_sha256(), key.handle, &ct) {
        Ok(pt) => Some(Zeroizing::new(pt).as_slice() == probe.as_ref()),
        Err(e) if is_mechanism_refusal(&e) => Some(false),
        Err(_) => None,
    }
}
