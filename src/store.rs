//! The SQLite store: wallets (wrapped material only), processed webhook events, the audit
//! chain and appliance state.
//!
//! One writer thread with group commit ([`writer`]), a small pool of read connections.
//! WAL with `synchronous=FULL` (a commit is on disk when it returns), `secure_delete=ON`
//! (deleted wrapped blobs are overwritten in the file), `foreign_keys=ON`.
//! Must never: receive an unwrapped secret. Everything it stores is already sealed by
//! `custody`.

pub mod audit;
pub mod audit_search;
pub mod events;
mod schema;
/// The schema version this binary writes (SQLite `user_version`).
pub use schema::CURRENT as SCHEMA_VERSION;
pub mod service_lock;
pub mod spend;
pub mod state;
pub mod wallets;
mod writer;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

pub use audit::{AuditEvent, AuditRecord};
pub use writer::WriteCtx;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file's schema is newer than this binary.
    #[error("database schema version {found} is newer than this keyward supports ({supported}); upgrade keyward")]
    SchemaTooNew {
        /// In the file.
        found: i64,
        /// Known here.
        supported: i64,
    },
    /// Files and threads.
    #[error("store: {0}")]
    Io(String),
    /// The writer thread is gone.
    #[error("the store writer has stopped")]
    WriterGone,
    /// Another `keyward serve` runs on this database.
    #[error("another keyward serve ({holder}) is already serving {db} (lock file {lock}); stop it first, or point this one at another database")]
    InUse {
        /// The database.
        db: String,
        /// `pid N` of the running server.
        holder: String,
        /// The lock file.
        lock: String,
    },
    /// Material wrapped under a wrapping key that `keyward keys retire` has marked for
    /// destruction (the wrap raced with the retire): storing it would lose it.
    #[error(
        "wrapping key version {0} is retired; the material must be wrapped under the current key"
    )]
    KeyRetired(u32),
    /// Another active wallet holds the address on the chain: two active wallets on one
    /// address would each get the address's rolling caps (they are kept per wallet id).
    #[error("an active {chain} wallet with address {address} already exists ({holder})")]
    AddressHeld {
        /// Chain.
        chain: &'static str,
        /// The address.
        address: String,
        /// The active wallet holding it.
        holder: String,
    },
    /// The database holds what this version's schema forbids (an upgrade found it).
    #[error("{0}")]
    Upgrade(String),
    /// A row's content is not what this version understands.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Read transactions run, for tests and metrics (see [`Store::reads`]).
    reads: std::sync::atomic::AtomicU64,
    writer: Mutex<mpsc::Sender<writer::Job>>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// Current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Creates the file with mode 0600 first, so SQLite (and its -wal/-shm, which copy the
/// database's permissions) never exist readable by others.
fn create_private(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) and migrates the database, starts the writer.
    pub fn open(path: &Path, read_connections: usize) -> Result<Store, StoreError> {
        create_private(path)?;
        let mut conn = open_conn(path, false)?;
        schema::migrate(&mut conn)?;
        let writer = writer::spawn(conn)?;
        let readers = (0..read_connections.max(1))
            .map(|_| open_conn(path, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                reads: std::sync::atomic::AtomicU64::new(0),
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many reads ([`Store::read`]) this store has run: a test counts the reads one
    /// request makes with it.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a read connection, on a blocking thread: what an async task calls, so
    /// a long read (a listing of many rows) never holds an async worker (and with it
    /// every face's requests queued behind it).
    pub async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|e| StoreError::Io(format!("a read task failed: {e}")))?
    }

    /// Runs `f` on a read connection, on the calling thread (blocking code and the CLI;
    /// async code uses [`Store::read_async`]).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.inner
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.inner.path, true)?,
        };
        let out = f(&conn);
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        out
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
        reply: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let slot: Arc<Mutex<Option<Result<T, StoreError>>>> = Arc::new(Mutex::new(None));
        let run_slot = slot.clone();
        let job = writer::Job {
            run: Box::new(move |ctx| {
                // a panicking job must not take the single writer thread (and with it every
                // later write) down: its savepoint is rolled back like any failed job's
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx)))
                    .unwrap_or_else(|_| {
                        tracing::error!("a store write job panicked; its changes were rolled back");
                        Err(StoreError::Io(
                            "a write job failed unexpectedly; nothing was written".into(),
                        ))
                    });
                let ok = r.is_ok();
                *run_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                ok
            }),
            done: Box::new(move |commit_err| {
                let r = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                let out = match (commit_err, r) {
                    (Some(e), _) => Err(StoreError::Io(format!("commit failed: {e}"))),
                    (None, Some(r)) => r,
                    (None, None) => Err(StoreError::WriterGone),
                };
                reply(out);
            }),
        };
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::WriterGone)
    }

    /// Runs `f` in a write transaction and returns once it is durable (blocking).
    pub fn write_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `f` in a write transaction and resolves once it is durable.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Online backup to `dest`, safe while a service writes to the database.
    ///
    /// `VACUUM INTO` copies one read snapshot: in WAL mode it neither blocks writers nor
    /// restarts when they commit (the page-by-page backup API restarts on every commit by
    /// another connection, so under steady signing it may never finish), and the copy
    /// holds no free pages with old content.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        create_private(dest)?;
        let target = dest
            .to_str()
            .ok_or_else(|| StoreError::Io(format!("{}: not UTF-8", dest.display())))?
            .to_owned();
        self.read(move |conn| {
            conn.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })
    }

    /// PRAGMA values that the invariants rely on (for tests and `doctor` output).
    pub fn pragma(&self, name: &str) -> Result<String, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            let v: rusqlite::types::Value = c.pragma_query_value(None, &name, |r| r.get(0))?;
            Ok(match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
        })
    }
}
