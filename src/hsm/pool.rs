//! A fixed-size pool of logged-in sessions with exclusive checkout.
//!
//! A cryptoki `Session` is `Send` but not `Sync`: each one is handed to one caller at a
//! time. A session that the token declared dead is dropped and replaced on a later
//! checkout, so one bad handle never poisons the pool.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::error::{classify, HsmError};

pub(crate) const CHECKOUT_WAIT: Duration = Duration::from_secs(5);

struct Slots {
    idle: Vec<Session>,
    /// Sessions discarded and not yet replaced.
    missing: usize,
}

pub(crate) struct Pool {
    ctx: Pkcs11,
    slot: Slot,
    size: usize,
    slots: Mutex<Slots>,
    freed: Condvar,
}

/// A session checked out of the pool; returned on drop unless discarded.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    session: Option<Session>,
}

impl Pool {
    pub(crate) fn open(
        ctx: &Pkcs11,
        slot: Slot,
        size: usize,
        pin: &SecretString,
    ) -> Result<Pool, HsmError> {
        let first = open_session(ctx, slot)?;
        login(&first, pin)?;
        let mut idle = vec![first];
        for _ in 1..size {
            match ctx.open_rw_session(slot) {
                Ok(s) => idle.push(s),
                // a token that caps sessions per application (CloudHSM, the YubiHSM 2):
                // serve with what it gives rather than not at all, and say so
                Err(CkError::Pkcs11(RvError::SessionCount, _)) => {
                    tracing::warn!(
                        wanted = size,
                        got = idle.len(),
                        "the token refused more sessions (CKR_SESSION_COUNT): the pool is \
                         smaller than pkcs11.pool_size; lower it to silence this"
                    );
                    break;
                }
                Err(e) => return Err(classify(e)),
            }
        }
        let size = idle.len();
        Ok(Pool {
            ctx: ctx.clone(),
            slot,
            size,
            slots: Mutex::new(Slots { idle, missing: 0 }),
            freed: Condvar::new(),
        })
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Sessions currently checked out.
    pub(crate) fn in_use(&self) -> usize {
        let s = self.lock();
        self.size - s.idle.len() - s.missing
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session without waiting: `None` when every session is checked out (the caller
    /// then waits somewhere that may block, never on an async worker thread).
    pub(crate) fn try_checkout(&self) -> Option<Result<Pooled<'_>, HsmError>> {
        let mut slots = self.lock();
        if let Some(session) = slots.idle.pop() {
            return Some(Ok(Pooled {
                pool: self,
                session: Some(session),
            }));
        }
        if slots.missing == 0 {
            return None;
        }
        drop(slots);
        Some(self.checkout())
    }

    pub(crate) fn checkout(&self) -> Result<Pooled<'_>, HsmError> {
        let mut slots = self.lock();
        loop {
            if let Some(session) = slots.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    session: Some(session),
                });
            }
            if slots.missing > 0 {
                slots.missing -= 1;
                drop(slots);
                return match open_session(&self.ctx, self.slot) {
                    Ok(session) => Ok(Pooled {
                        pool: self,
                        session: Some(session),
                    }),
                    Err(e) => {
                        self.lock().missing += 1;
                        Err(e)
                    }
                };
            }
            let (guard, timeout) = self
                .freed
                .wait_timeout(slots, CHECKOUT_WAIT)
                .unwrap_or_else(|p| p.into_inner());
            slots = guard;
            if timeout.timed_out() && slots.idle.is_empty() && slots.missing == 0 {
                return Err(HsmError::PoolExhausted(CHECKOUT_WAIT));
            }
        }
    }
}

impl Pooled<'_> {
    pub(crate) fn session(&self) -> &Session {
        self.session.as_ref().expect("session present until drop")
    }

    /// Drops this session instead of returning it; a fresh one replaces it later.
    pub(crate) fn discard(mut self) {
        if let Some(s) = self.session.take() {
            drop(s);
            self.pool.lock().missing += 1;
            self.pool.freed.notify_one();
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.pool.lock().idle.push(s);
            self.pool.freed.notify_one();
        }
    }
}

pub(crate) fn open_session(ctx: &Pkcs11, slot: Slot) -> Result<Session, HsmError> {
    ctx.open_rw_session(slot).map_err(classify)
}

/// Logs the application in; login state is shared by all sessions of the process.
pub(crate) fn login(session: &Session, pin: &SecretString) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(classify(e)),
    }
}
