//! The single writer: every change goes through one thread and one connection, and
//! concurrent changes share one fsync'd commit (group commit).
//!
//! Each job runs inside its own SAVEPOINT of the batch transaction, so a failing job
//! leaves nothing behind while its neighbours commit. A job learns its outcome only after
//! the COMMIT returned: nobody is told "done" before the change is durable.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;

use super::StoreError;

/// What a job sees: the open transaction (`BEGIN IMMEDIATE`, so this process holds the
/// database's write lock: whatever the job reads is what its writes will follow).
///
/// It deliberately carries no cached state (no audit chain head, no lock state): other
/// keyward processes (`keyward lock`, `wallets rewrap`, …) commit to the same file
/// between our transactions, so anything read before `BEGIN IMMEDIATE` may be stale.
pub struct WriteCtx<'a> {
    /// The batch transaction (inside this job's savepoint).
    pub conn: &'a Connection,
    scrub: &'a mut bool,
}

impl WriteCtx<'_> {
    /// Asks for the WAL to be checkpointed and truncated after this commit, so deleted
    /// secrets (overwritten in the main file by `secure_delete`) do not survive in old
    /// WAL frames. Costly; for revocations and rewraps, not for every request.
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

/// Largest number of jobs folded into one commit.
const MAX_BATCH: usize = 512;

/// Starts the writer thread on `conn`.
pub(crate) fn spawn(mut conn: Connection) -> Result<mpsc::Sender<Job>, StoreError> {
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

/// Runs a parameterless statement through the connection's statement cache: the writer
/// issues `SAVEPOINT`/`RELEASE` for every job, and re-parsing them each time showed up in
/// profiles of the single writer thread.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn run_batch(conn: &mut Connection, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    crate::metrics::audit_queue_depth(batch.len());
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = StoreError::from(e);
        for job in batch {
            (job.done)(Some(&err));
        }
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    let mut scrub = false;
    for job in batch {
        let savepoint = exec_cached(conn, "SAVEPOINT job");
        let mut wants_scrub = false;
        let ok = savepoint.is_ok()
            && (job.run)(&mut WriteCtx {
                conn,
                scrub: &mut wants_scrub,
            });
        scrub |= ok && wants_scrub;
        if ok {
            let _ = exec_cached(conn, "RELEASE job");
        } else {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
        }
        completions.push(job.done);
    }
    let commit = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    crate::metrics::record_commit(completions.len(), started.elapsed());
    if scrub && commit.is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint after a deletion failed; old frames remain until the next checkpoint");
        }
    }
    for done in completions {
        done(commit.as_ref().err());
    }
}
