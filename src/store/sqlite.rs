//! The SQLite backend: one file, the embedded default.
//!
//! One writer thread with group commit, a small pool of read connections. WAL with
//! `synchronous=FULL` (a commit is on disk when it returns), `secure_delete=ON` (deleted
//! wrapped blobs are overwritten in the file), `foreign_keys=ON`. One `keyward serve` per
//! file ([`super::service_lock`]); operator commands open the file beside it.

pub(super) mod schema;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::db::{Db, Row, Val};
use super::writer::{self, Job, WriterConn};
use super::{Backend, StoreError};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

fn to_sql(v: &Val) -> rusqlite::types::ToSqlOutput<'_> {
    use rusqlite::types::ToSqlOutput::Borrowed;
    match v {
        Val::Null => Borrowed(ValueRef::Null),
        Val::Int(i) => Borrowed(ValueRef::Integer(*i)),
        Val::Text(s) => Borrowed(ValueRef::Text(s.as_bytes())),
        Val::Blob(b) => Borrowed(ValueRef::Blob(b)),
    }
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Val]) -> Result<(), StoreError> {
    if stmt.parameter_count() != params.len() {
        return Err(StoreError::Io(format!(
            "a statement takes {} parameters, {} given",
            stmt.parameter_count(),
            params.len()
        )));
    }
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, to_sql(p))?;
    }
    Ok(())
}

fn row_of(r: &rusqlite::Row<'_>, n: usize) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Val::Null,
            ValueRef::Integer(v) => Val::Int(v),
            ValueRef::Real(v) => {
                return Err(StoreError::Corrupt(format!(
                    "column {i}: unexpected real {v}"
                )))
            }
            ValueRef::Text(t) => Val::Text(
                std::str::from_utf8(t)
                    .map_err(|_| StoreError::Corrupt(format!("column {i}: text is not UTF-8")))?
                    .to_owned(),
            ),
            ValueRef::Blob(b) => Val::Blob(b.to_vec()),
        });
    }
    Ok(Row(out))
}

impl Db for Connection {
    fn exec(&self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        // every statement of the request path runs on every request: prepared once per
        // connection
        let mut stmt = self.prepare_cached(sql)?;
        bind(&mut stmt, params)?;
        Ok(stmt.raw_execute()? as u64)
    }

    fn each(
        &self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        bind(&mut stmt, params)?;
        let n = stmt.column_count();
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next()? {
            each(row_of(r, n)?)?;
        }
        Ok(())
    }
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
pub(crate) fn create_private(path: &Path) -> Result<(), StoreError> {
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

/// Runs a parameterless statement through the connection's statement cache: the writer
/// issues `SAVEPOINT`/`RELEASE` for every job, and re-parsing them each time showed up in
/// profiles of the single writer thread.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

struct Writer(Connection);

impl WriterConn for Writer {
    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.0.execute_batch("BEGIN IMMEDIATE")?)
    }
    fn db(&self) -> &dyn Db {
        &self.0
    }
    fn savepoint(&mut self) -> Result<(), StoreError> {
        exec_cached(&self.0, "SAVEPOINT job")?;
        Ok(())
    }
    fn release(&mut self) {
        let _ = exec_cached(&self.0, "RELEASE job");
    }
    fn rollback_to(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK TO job; RELEASE job");
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.0.execute_batch("COMMIT")?)
    }
    fn rollback(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
    fn scrub(&mut self) {
        if let Err(e) = self
            .0
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "WAL checkpoint after a deletion failed; old frames remain until the next checkpoint");
        }
    }
}

pub(super) struct Sqlite {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database, starts the writer.
    pub(super) fn open(path: &Path, read_connections: usize) -> Result<Sqlite, StoreError> {
        create_private(path)?;
        let mut conn = open_conn(path, false)?;
        schema::migrate(&mut conn)?;
        let writer = writer::spawn(Writer(conn))?;
        let readers = (0..read_connections.max(1))
            .map(|_| open_conn(path, true))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
        })
    }
}

impl Backend for Sqlite {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn read(&self, f: &mut dyn FnMut(&dyn Db)) -> Result<(), StoreError> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.path, true)?,
        };
        f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        Ok(())
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::WriterGone)
    }

    /// `VACUUM INTO` copies one read snapshot: in WAL mode it neither blocks writers nor
    /// restarts when they commit (the page-by-page backup API restarts on every commit by
    /// another connection, so under steady signing it may never finish), and the copy
    /// holds no free pages with old content.
    fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        create_private(dest)?;
        let target = dest
            .to_str()
            .ok_or_else(|| StoreError::Io(format!("{}: not UTF-8", dest.display())))?
            .to_owned();
        let conn = open_conn(&self.path, true)?;
        conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    fn setting(&self, name: &str) -> Result<String, StoreError> {
        let conn = open_conn(&self.path, true)?;
        let v: rusqlite::types::Value = conn.pragma_query_value(None, name, |r| r.get(0))?;
        Ok(match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.setting("user_version")?
            .parse()
            .map_err(|_| StoreError::Corrupt("user_version".into()))
    }
}
