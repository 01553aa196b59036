//! The single writer of each process: every change goes through one thread and one
//! connection, and concurrent changes share one durable commit (group commit).
//!
//! Each job runs inside its own SAVEPOINT of the batch transaction, so a failing job
//! leaves nothing behind while its neighbours commit. A job learns its outcome only after
//! the COMMIT returned: nobody is told "done" before the change is durable. The batch
//! logic is the same for every backend; what "begin", "commit" and "savepoint" mean is
//! the backend's ([`WriterConn`]).

use std::sync::mpsc;
use std::thread;

use super::db::Db;
use super::StoreError;

/// What a job sees: the open transaction, which holds the database's write lock (SQLite
/// `BEGIN IMMEDIATE`; PostgreSQL the transaction-scoped advisory lock every writer of
/// every node takes first), so whatever the job reads is what its writes will follow.
///
/// It deliberately carries no cached state (no audit chain head, no lock state): other
/// keyward processes (`keyward lock`, `wallets rewrap`, other nodes) commit to the same
/// database between our transactions, so anything read before the lock may be stale.
pub struct WriteCtx<'a> {
    /// The batch transaction (inside this job's savepoint).
    pub conn: &'a dyn Db,
    scrub: &'a mut bool,
}

impl WriteCtx<'_> {
    /// Asks for deleted data to be purged from the backend's logs after this commit
    /// (SQLite: the WAL is checkpointed and truncated, so deleted wrapped secrets do not
    /// survive in old WAL frames). Costly; for revocations and rewraps, not for every
    /// request.
    pub fn scrub_wal_after_commit(&mut self) {
        *self.scrub = true;
    }
}

/// A unit of work: `run` inside the batch (returns false to roll its savepoint back),
/// `done` after the commit, with the commit's error if there was one.
pub(crate) struct Job {
    pub(crate) run: RunFn,
    pub(crate) done: DoneFn,
}

pub(crate) type RunFn = Box<dyn FnOnce(&mut WriteCtx<'_>) -> bool + Send>;
pub(crate) type DoneFn = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A backend's writing connection.
pub(crate) trait WriterConn: Send + 'static {
    /// Opens the batch transaction and takes the write lock (connecting first if needed).
    fn begin(&mut self) -> Result<(), StoreError>;
    /// The connection, for the jobs.
    fn db(&self) -> &dyn Db;
    /// `SAVEPOINT job`.
    fn savepoint(&mut self) -> Result<(), StoreError>;
    /// Keeps the job's changes.
    fn release(&mut self);
    /// Drops the job's changes.
    fn rollback_to(&mut self);
    /// Commits the batch durably.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Abandons the batch.
    fn rollback(&mut self);
    /// After a durable commit that deleted something a job wanted purged.
    fn scrub(&mut self) {}
}

/// Largest number of jobs folded into one commit.
const MAX_BATCH: usize = 512;

/// Starts the writer thread on `conn`.
pub(crate) fn spawn(mut conn: impl WriterConn) -> Result<mpsc::Sender<Job>, StoreError> {
    let (tx, rx) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("keyward-store-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                run_batch(&mut conn, batch);
            }
        })
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok(tx)
}

fn run_batch(conn: &mut impl WriterConn, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    crate::metrics::audit_queue_depth(batch.len());
    if let Err(err) = conn.begin() {
        for job in batch {
            (job.done)(Some(&err));
        }
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    let mut scrub = false;
    for job in batch {
        let savepoint = conn.savepoint();
        let mut wants_scrub = false;
        let ok = savepoint.is_ok()
            && (job.run)(&mut WriteCtx {
                conn: conn.db(),
                scrub: &mut wants_scrub,
            });
        scrub |= ok && wants_scrub;
        if ok {
            conn.release();
        } else {
            conn.rollback_to();
        }
        completions.push(job.done);
    }
    let commit = conn.commit();
    if commit.is_err() {
        conn.rollback();
    }
    crate::metrics::record_commit(completions.len(), started.elapsed());
    if scrub && commit.is_ok() {
        conn.scrub();
    }
    for done in completions {
        done(commit.as_ref().err());
    }
}
