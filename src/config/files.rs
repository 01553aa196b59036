//! The files a config names, and the checks `serve` makes on them before it starts.
//!
//! One list ([`Config::path_keys`], [`Config::secret_keys`]) feeds both the pure check
//! that no path is empty ([`Config::validate`]) and the file checks of
//! [`Config::check_files`], which `keyward serve`, SIGHUP and `keyward config check` all
//! run: a key added here is checked by all three, so `config check` cannot say OK to a
//! file that `serve` then fails to open.

use std::path::Path;

use super::{Config, ConfigError, SecretRef};

/// What a path key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A file `serve` reads: it must exist, be a regular file and open for reading.
    File(&'static str),
    /// The SQLite file: it may be absent (`serve` creates it), but not a directory, and its
    /// directory must exist and be writable (the journal and the lock file go there).
    Database,
}

/// One path-valued key, with its resolved path.
#[derive(Debug)]
pub(super) struct PathKey<'a> {
    /// Dotted key path, with an index for list entries (`api.client_ca[1]`).
    pub key: String,
    pub path: &'a Path,
    pub kind: Kind,
}

impl Config {
    /// Every path-valued key that is set, secret files excepted (see [`Self::secret_keys`]).
    pub(super) fn path_keys(&self) -> Vec<PathKey<'_>> {
        let single = [
            (
                "pkcs11.module",
                Some(self.pkcs11.module.as_path()),
                Kind::File("the PKCS#11 module (.so)"),
            ),
            (
                "store.path",
                (self.store.backend == super::StoreBackend::Sqlite)
                    .then_some(self.store.path.as_path()),
                Kind::Database,
            ),
            (
                "store.postgres.ca",
                self.store
                    .postgres
                    .as_ref()
                    .filter(|_| self.store.backend == super::StoreBackend::Postgres)
                    .and_then(|p| p.ca.as_deref()),
                Kind::File("a PEM CA bundle"),
            ),
            (
                "api.cert",
                self.api.cert.as_deref(),
                Kind::File("a PEM certificate chain"),
            ),
            (
                "api.key",
                self.api.key.as_deref(),
                Kind::File("a PEM private key"),
            ),
            (
                "webhook.cert",
                self.webhook.cert.as_deref(),
                Kind::File("a PEM certificate chain"),
            ),
            (
                "webhook.key",
                self.webhook.key.as_deref(),
                Kind::File("a PEM private key"),
            ),
            (
                "policy.file",
                self.policy.file.as_deref(),
                Kind::File("a policy file"),
            ),
            (
                "rpc.upstream_ca",
                self.rpc.upstream_ca.as_deref(),
                Kind::File("a PEM CA bundle"),
            ),
        ];
        let mut out: Vec<PathKey<'_>> = single
            .into_iter()
            .filter_map(|(key, path, kind)| {
                path.map(|path| PathKey {
                    key: key.to_owned(),
                    path,
                    kind,
                })
            })
            .collect();
        for (list, name, what) in [
            (&self.api.client_ca, "api.client_ca", "a PEM CA bundle"),
            (&self.api.crls, "api.crls", "a CRL (PEM or DER)"),
        ] {
            out.extend(list.iter().enumerate().map(|(i, p)| PathKey {
                key: format!("{name}[{i}]"),
                path: p,
                kind: Kind::File(what),
            }));
        }
        out
    }

    /// Every secret reference, by key.
    pub(super) fn secret_keys(&self) -> Vec<(String, &SecretRef)> {
        std::iter::once(("pkcs11.pin".to_owned(), &self.pkcs11.pin))
            .chain(
                self.store
                    .postgres
                    .as_ref()
                    .filter(|_| self.store.backend == super::StoreBackend::Postgres)
                    .map(|p| ("store.postgres.url".to_owned(), &p.url)),
            )
            .chain(
                self.webhook
                    .secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("webhook.secrets[{i}]"), s)),
            )
            .collect()
    }

    /// Empty paths and variable names, before they are resolved: an empty path would
    /// otherwise become the config file's directory.
    pub(super) fn empty_path_problem(&self) -> Option<(String, &'static str)> {
        if let Some(p) = self
            .path_keys()
            .into_iter()
            .find(|p| p.path.as_os_str().is_empty())
        {
            return Some((p.key, "expected a path, got an empty string"));
        }
        self.secret_keys().into_iter().find_map(|(key, s)| match s {
            SecretRef::File { file } if file.as_os_str().is_empty() => Some((
                key,
                "expected { file = \"PATH\" } with a path, got an empty string",
            )),
            SecretRef::Env { env } if env.is_empty() => Some((
                key,
                "expected { env = \"VAR\" } with a variable name, got an empty string",
            )),
            _ => None,
        })
    }

    /// What `serve` needs from the files this config names, checked without the token:
    /// the TLS settings it cannot start without are set; every named file exists, is a
    /// regular file and opens for reading; the database's directory exists and is
    /// writable; every secret reads (present, private, not empty). Reports every problem
    /// found, each naming its key and path; never a secret value.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for (key, set, what) in [
            (
                "api.cert",
                self.api.cert.is_some(),
                "a PEM certificate chain",
            ),
            ("api.key", self.api.key.is_some(), "a PEM private key"),
            (
                "webhook.cert",
                self.webhook.cert.is_some(),
                "a PEM certificate chain",
            ),
            (
                "webhook.key",
                self.webhook.key.is_some(),
                "a PEM private key",
            ),
            (
                "api.client_ca",
                !self.api.client_ca.is_empty(),
                "at least one PEM CA bundle",
            ),
        ] {
            if !set {
                problems.push(self.invalid(key, format!("is required to serve: expected {what}")));
            }
        }
        for p in self.path_keys() {
            let problem = match p.kind {
                Kind::File(what) => file_problem(p.path, what),
                Kind::Database => database_problem(p.path),
            };
            if let Some(m) = problem {
                problems.push(self.invalid(&p.key, m));
            }
        }
        // reading each secret proves it is present, private and not empty; the value is
        // dropped (and zeroized) at once
        for (key, s) in self.secret_keys() {
            if let Err(e) = s.read() {
                problems.push(self.invalid(&key, e.to_string()));
            }
        }
        // the module reads this file at C_Initialize and fails the token open without it
        if let Some(conf) = self.pkcs11.environment.get("SOFTHSM2_CONF") {
            if let Some(m) = file_problem(Path::new(conf), "a SoftHSM2 configuration file") {
                problems.push(self.invalid("pkcs11.environment.SOFTHSM2_CONF", m));
            }
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            _ => Err(ConfigError::Several(problems)),
        }
    }
}

/// Why `path` is not a readable regular file, if it is not.
pub(super) fn file_problem(path: &Path, what: &str) -> Option<String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{shown}: {e}; expected {what}")),
    };
    if meta.is_dir() {
        return Some(format!("{shown} is a directory; expected {what}"));
    }
    if !meta.is_file() {
        return Some(format!("{shown} is not a regular file; expected {what}"));
    }
    if let Err(e) = std::fs::File::open(path) {
        return Some(format!("{shown}: cannot open: {e}"));
    }
    None
}

/// Why `path` cannot hold the SQLite database, if it cannot.
pub(super) fn database_problem(path: &Path) -> Option<String> {
    use rustix::fs::{accessat, Access, AtFlags, CWD};
    // the effective ids, as the open() of the running service and the mode checks use
    let access = |p: &Path, a: Access| accessat(CWD, p, a, AtFlags::EACCESS);
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Some(format!(
                "{shown} is a directory; expected the SQLite database file (created if absent)"
            ))
        }
        Ok(m) if !m.is_file() => {
            return Some(format!(
                "{shown} is not a regular file; expected the SQLite database file"
            ))
        }
        Ok(_) => {
            if let Err(e) = access(path, Access::READ_OK | Access::WRITE_OK) {
                return Some(format!("{shown}: cannot read and write it: {e}"));
            }
        }
        // absent, or a path component is not a directory: the directory check says which
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) => {}
        Err(e) => return Some(format!("{shown}: {e}")),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let shown_dir = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Some(format!(
                "{shown_dir} (the database's directory) is not a directory"
            ))
        }
        Err(e) => return Some(format!("{shown_dir} (the database's directory): {e}")),
    }
    // the journal and the lock file are created beside the database
    if let Err(e) = access(dir, Access::WRITE_OK | Access::EXEC_OK) {
        return Some(format!(
            "{shown_dir} (the database's directory) is not writable: {e}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_key_must_name_a_readable_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(file_problem(&file, "a PEM CA bundle"), None);
        let missing = dir.path().join("nope.pem");
        let m = file_problem(&missing, "a PEM CA bundle").unwrap();
        assert!(
            m.starts_with(&format!("{}: ", missing.display()))
                && m.contains("No such file")
                && m.ends_with("expected a PEM CA bundle"),
            "{m}"
        );
        let m = file_problem(dir.path(), "the PKCS#11 module (.so)").unwrap();
        assert_eq!(
            m,
            format!(
                "{} is a directory; expected the PKCS#11 module (.so)",
                dir.path().display()
            )
        );
        let m = file_problem(Path::new("/dev/null"), "a PEM CA bundle").unwrap();
        assert_eq!(
            m,
            "/dev/null is not a regular file; expected a PEM CA bundle"
        );
    }

    #[test]
    fn the_database_may_be_absent_but_its_directory_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(database_problem(&dir.path().join("k.db")), None);
        let m = database_problem(dir.path()).unwrap();
        assert!(m.contains("is a directory"), "{m}");
        let lost = dir.path().join("no-such-dir").join("k.db");
        let m = database_problem(&lost).unwrap();
        assert!(
            m.starts_with(&format!(
                "{} (the database's directory): ",
                dir.path().join("no-such-dir").display()
            )) && m.contains("No such file"),
            "{m}"
        );
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let m = database_problem(&file.join("k.db")).unwrap();
        assert!(m.contains("is not a directory"), "{m}");
    }

    #[test]
    fn an_unwritable_database_directory_is_refused_unless_root() {
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let problem = database_problem(&ro.join("k.db"));
        // root may write anywhere (so may `serve` when it runs as root)
        if rustix::process::getuid().is_root() {
            assert_eq!(problem, None);
        } else {
            let m = problem.unwrap();
            assert!(m.contains("is not writable"), "{m}");
        }
    }
}
