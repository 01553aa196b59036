//! One `keyward serve` per database: an advisory `flock` on `<database>.serve.lock`,
//! holding the server's pid.
//!
//! Why a lock file beside the database rather than a lock on the database itself:
//! SQLite uses POSIX record locks on the database file, and closing *any* descriptor of
//! that file releases them for the whole process; a separate file cannot disturb them.
//! The kernel drops a `flock` when its holder dies, so a crashed server never leaves a
//! stale lock behind (the pid in the file is only for messages).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use super::StoreError;

/// Held by a running `keyward serve` for its whole life; released on drop or exit.
#[derive(Debug)]
pub struct ServiceLock {
    _file: File,
    path: PathBuf,
}

impl ServiceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of the database at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve.lock");
    PathBuf::from(name)
}

fn open(path: &Path) -> Result<File, StoreError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Claims the database for this process's service, or says which process has it.
pub fn claim(db: &Path) -> Result<ServiceLock, StoreError> {
    let path = lock_path(db);
    let mut file = open(&path)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let pid = read_pid(&mut file)
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "pid unknown".into());
        return Err(StoreError::InUse {
            db: db.display().to_string(),
            holder: pid,
            lock: path.display().to_string(),
        });
    }
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .and_then(|_| file.sync_all())
        .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
    Ok(ServiceLock { _file: file, path })
}

/// The pid of the `keyward serve` holding `db`, if one is running.
pub fn holder(db: &Path) -> Option<u32> {
    let path = lock_path(db);
    let mut file = File::open(&path).ok()?;
    // a shared lock we can take means nobody holds the exclusive one
    if flock(&file, FlockOperation::NonBlockingLockShared).is_ok() {
        let _ = flock(&file, FlockOperation::Unlock);
        return None;
    }
    Some(read_pid(&mut file).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_claim_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        assert_eq!(holder(&db), None);
        let first = claim(&db).unwrap();
        assert_eq!(holder(&db), Some(std::process::id()));
        // flock is per open file description: a second open in this process conflicts
        match claim(&db) {
            Err(StoreError::InUse { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("second claim: {other:?}"),
        }
        drop(first);
        assert_eq!(holder(&db), None);
        let again = claim(&db).unwrap();
        assert_eq!(again.path(), lock_path(&db));
    }
}
