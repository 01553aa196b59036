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
    if let Some(dir) = config.store.path.parent() {
        paths.push(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
    }
    paths.extend(softhsm_token_dir(config));
    paths
}

/// Refuses the first path that others can read or write.
pub fn check_private_paths(config: &Config) -> Result<(), HardenError> {
    private_paths(config).iter().try_for_each(|p| check(p))
}
