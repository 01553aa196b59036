//! The store: wallets (wrapped material only), processed webhook events, the audit chain,
//! spend counters and appliance state.
//!
//! Two backends behind one interface ([`Backend`]): SQLite (`sqlite`, one file, the
//! embedded default) and PostgreSQL ([`postgres`], several nodes on one database). The
//! row modules (`wallets`, `audit`, …) are written once against [`db::Db`]; callers hold
//! a [`Store`] and never learn which backend it is. Every change goes through one writer
//! per process with group commit (`writer`).
//! Must never: receive an unwrapped secret. Everything it stores is already sealed by
//! `custody`.

pub mod audit;
pub mod audit_search;
pub mod copy;
pub mod db;
pub mod events;
pub mod postgres;
pub mod service_lock;
pub mod spend;
mod sqlite;
pub mod state;
pub mod wallets;
mod writer;

/// The schema version this binary writes (both backends count the same versions).
pub use sqlite::schema::CURRENT as SCHEMA_VERSION;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub use audit::{AuditEvent, AuditRecord};
pub use db::Db;
pub use writer::WriteCtx;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// PostgreSQL said no.
    #[error("database: {0}")]
    Postgres(String),
    /// The database cannot be reached (PostgreSQL down, connection refused or cut, a
    /// statement past its timeout): the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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

/// Current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Claims the database `config` names for this `keyward serve`, where only one process
/// may serve it (a SQLite file); `None` where any number of nodes may (PostgreSQL). Done
/// before anything else is opened; hold the lock for the service's life.
pub fn claim_service(
    config: &crate::config::StoreConfig,
) -> Result<Option<service_lock::ServiceLock>, StoreError> {
    match config.backend {
        crate::config::StoreBackend::Sqlite => service_lock::claim(&config.path).map(Some),
        crate::config::StoreBackend::Postgres => Ok(None),
    }
}

/// What a backend provides. One file per backend; nothing outside `store` sees it.
pub(crate) trait Backend: Send + Sync {
    /// `sqlite:PATH` or `postgres://host:port/db` (no credentials), for messages.
    fn describe(&self) -> String;
    /// The database file, for a file-based backend.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// Runs `f` on a read connection, on the calling thread.
    fn read(&self, f: &mut dyn FnMut(&dyn Db)) -> Result<(), StoreError>;
    /// Queues a write job for this process's writer.
    fn submit(&self, job: writer::Job) -> Result<(), StoreError>;
    /// An online copy of the database into the file `dest`.
    fn backup_to(&self, dest: &Path) -> Result<(), StoreError>;
    /// A database setting (SQLite PRAGMA, PostgreSQL `SHOW`), for tests and `doctor`.
    fn setting(&self, name: &str) -> Result<String, StoreError>;
    /// The schema version of the database.
    fn schema_version(&self) -> Result<i64, StoreError>;
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    /// Read transactions run, for tests and metrics (see [`Store::reads`]).
    reads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend.describe())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the SQLite database at `path`.
    pub fn open(path: &Path, read_connections: usize) -> Result<Store, StoreError> {
        Ok(Store::with(Box::new(sqlite::Sqlite::open(
            path,
            read_connections,
        )?)))
    }

    /// Opens the store `[store]` names, migrating it to this binary's schema.
    pub fn from_config(config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        match (&config.backend, &config.postgres) {
            (crate::config::StoreBackend::Postgres, Some(pg)) => {
                Ok(Store::with(Box::new(postgres::Postgres::open(pg)?)))
            }
            (crate::config::StoreBackend::Postgres, None) => Err(StoreError::Io(
                "store.backend = \"postgres\" needs a [store.postgres] section".into(),
            )),
            (crate::config::StoreBackend::Sqlite, _) => {
                Store::open(&config.path, config.read_connections)
            }
        }
    }

    /// Like [`Store::from_config`], with few connections: for operator commands.
    pub fn for_command(config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        let mut c = config.clone();
        c.read_connections = 1;
        if let Some(pg) = &mut c.postgres {
            pg.pool_size = pg.pool_size.min(2);
        }
        Store::from_config(&c)
    }

    fn with(backend: Box<dyn Backend>) -> Store {
        Store {
            inner: Arc::new(Inner {
                backend,
                reads: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// `sqlite:PATH` or `postgres://host:port/db`, for messages (never credentials).
    pub fn describe(&self) -> String {
        self.inner.backend.describe()
    }

    /// The database file of a SQLite store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.backend.path()
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.inner.backend.schema_version()
    }

    /// How many reads ([`Store::read`]) this store has run: a test counts the reads one
    /// request makes with it.
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a read connection, on a blocking thread: what an async task calls, so
    /// a long read (a listing of many rows, a slow database) never holds an async worker
    /// (and with it every face's requests queued behind it).
    pub async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Db) -> Result<T, StoreError> + Send + 'static,
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
        f: impl FnOnce(&dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.inner
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut f = Some(f);
        let mut out = None;
        self.inner.backend.read(&mut |db| {
            if let Some(f) = f.take() {
                out = Some(f(db));
            }
        })?;
        out.unwrap_or_else(|| Err(StoreError::Io("a read did not run".into())))
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
                    (Some(StoreError::Unavailable(e)), _) => {
                        Err(StoreError::Unavailable(e.clone()))
                    }
                    (Some(e), _) => Err(StoreError::Io(format!("commit failed: {e}"))),
                    (None, Some(r)) => r,
                    (None, None) => Err(StoreError::WriterGone),
                };
                reply(out);
            }),
        };
        self.inner.backend.submit(job)
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

    /// Online backup to the file `dest`, safe while a service writes to the database
    /// (SQLite; a PostgreSQL store is backed up with PostgreSQL's own tools).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        self.inner.backend.backup_to(dest)
    }

    /// A setting the invariants rely on (SQLite PRAGMA, PostgreSQL `SHOW`), for tests
    /// and `doctor` output.
    pub fn pragma(&self, name: &str) -> Result<String, StoreError> {
        self.inner.backend.setting(name)
    }
}
