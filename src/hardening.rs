//! Process hardening applied before `serve` touches a secret: no core dumps, not
//! dumpable (no ptrace by other users, no /proc/PID/mem), umask 077, optionally all
//! memory locked; and a refusal to start on files and directories that others can read
//! or write.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::process::{Resource, Rlimit};

use crate::config::{Config, SecretRef};

/// Hardening could not be applied, or a path is too open.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// Which step.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A path is readable or writable by group or others.
    #[error("{path} has mode {mode:04o}: it must not be readable or writable by group or others (chmod {fix:o})")]
    TooOpen {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The mode to set.
        fix: u32,
    },
    /// A file that decides who may sign (client CAs, CRLs, the policy, the PKCS#11
    /// module), or a directory above it, can be changed by someone other than the
    /// service user or root.
    #[error("{path} (mode {mode:04o}, owner uid {uid}) {why}; it decides who may sign or what the token runs, so only the service user or root may change it (chmod go-w / chown)")]
    Untrusted {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// What is wrong.
        why: &'static str,
    },
    /// A path could not be inspected.
    #[error("{path}: {source}")]
    Missing {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn sys(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> HardenError {
    move |e| HardenError::Sys {
        what,
        source: e.into(),
    }
}

/// Core size 0, not dumpable, umask 077; `mlock_all` also locks current and future pages.
pub fn harden_process(mlock_all: bool) -> Result<(), HardenError> {
    rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(sys("setrlimit(RLIMIT_CORE, 0)"))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(sys("prctl(PR_SET_DUMPABLE, 0)"))?;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    // every connection is a descriptor: take the whole hard limit (`LimitNOFILE` in the
    // unit), so the connection caps, not EMFILE at accept, decide who is refused
    let limit = rustix::process::getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = rustix::process::setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    if mlock_all {
        rustix::mm::mlockall(
            rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE,
        )
        .map_err(sys(
            "mlockall (raise LimitMEMLOCK or disable process.mlock_all)",
        ))?;
    }
    Ok(())
}

fn check(path: &Path) -> Result<(), HardenError> {
    let meta = std::fs::metadata(path).map_err(|source| HardenError::Missing {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(HardenError::TooOpen {
            path: path.to_path_buf(),
            mode,
            fix: if meta.is_dir() { 0o700 } else { 0o600 },
        });
    }
    Ok(())
}

/// SoftHSM2's token directory, from the `SOFTHSM2_CONF` file the module will read.
fn softhsm_token_dir(config: &Config) -> Option<PathBuf> {
    let conf = config
        .pkcs11
        .environment
        .get("SOFTHSM2_CONF")
        .cloned()
        .or_else(|| std::env::var("SOFTHSM2_CONF").ok())?;
    let text = std::fs::read_to_string(conf).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
    })
}

/// The paths that must be private to the service user: the config file, secret files,
/// TLS keys, the database directory and (for SoftHSM2) the token directory.
pub fn private_paths(config: &Config) -> Vec<PathBuf> {
    let mut paths = vec![config.source.clone()];
    let secrets = std::iter::once(&config.pkcs11.pin).chain(config.webhook.secrets.iter());
    paths.extend(secrets.filter_map(|s| match s {
        SecretRef::File { file } => Some(file.clone()),
        SecretRef::Env { .. } => None,
    }));
    paths.extend(
        config
            .api
            .key
            .iter()
            .chain(config.webhook.key.iter())
            .cloned(),
    );
    if let Some(dir) = config
        .store
        .path
        .parent()
        .filter(|_| config.store.backend == crate::config::StoreBackend::Sqlite)
    {
        paths.push(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
    }
    paths.extend(softhsm_token_dir(config));
    paths
}

/// The files whose content grants power without being secret: whoever can rewrite
/// them can admit a client (`api.client_ca`), un-revoke one (`api.crls`), change what is
/// allowed (`policy.file`) or run code inside the service (`pkcs11.module`).
pub fn trusted_paths(config: &Config) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = config.api.client_ca.clone();
    paths.extend(config.api.crls.iter().cloned());
    paths.extend(config.policy.file.iter().cloned());
    paths.push(config.pkcs11.module.clone());
    paths
}

fn check_trusted(path: &Path, euid: u32) -> Result<(), HardenError> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::canonicalize(path).map_err(|source| HardenError::Missing {
        path: path.to_path_buf(),
        source,
    })?;
    // the file itself and every directory above it: a writable directory lets its
    // writer replace the file with another
    for p in path.ancestors() {
        let meta = std::fs::metadata(p).map_err(|source| HardenError::Missing {
            path: p.to_path_buf(),
            source,
        })?;
        let (mode, uid) = (meta.mode() & 0o7777, meta.uid());
        let untrusted = |why| {
            Err(HardenError::Untrusted {
                path: p.to_path_buf(),
                mode,
                uid,
                why,
            })
        };
        if uid != euid && uid != 0 {
            return untrusted("is owned by another user");
        }
        // a sticky directory (/tmp) only lets others remove or rename their own entries
        let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
        if mode & 0o022 != 0 && !sticky_dir {
            return untrusted("is writable by group or others");
        }
    }
    Ok(())
}

/// Refuses the first file that grants power (see [`trusted_paths`]) that someone other
/// than the service user or root could change. Run at start and at every reload.
pub fn check_trusted_paths(config: &Config) -> Result<(), HardenError> {
    let euid = rustix::process::geteuid().as_raw();
    trusted_paths(config)
        .iter()
        .try_for_each(|p| check_trusted(p, euid))
}

/// Refuses the first path that others can read or write.
pub fn check_private_paths(config: &Config) -> Result<(), HardenError> {
    private_paths(config).iter().try_for_each(|p| check(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_files_refuse_group_writable_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "x").unwrap();
        let euid = rustix::process::geteuid().as_raw();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_trusted(&file, euid).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        match check_trusted(&file, euid) {
            Err(HardenError::Untrusted { path, mode, .. }) => {
                assert_eq!(
                    (path.file_name().unwrap().to_str(), mode),
                    (Some("ca.pem"), 0o664)
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
        match check_trusted(&file, euid) {
            Err(HardenError::Untrusted { path, .. }) => {
                assert_eq!(path, std::fs::canonicalize(dir.path()).unwrap())
            }
            other => panic!("{other:?}"),
        }
        // a sticky world-writable directory (like /tmp) does not let others swap the file
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_trusted(&file, euid).unwrap();
    }
}
