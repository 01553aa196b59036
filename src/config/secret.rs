//! Secret references: the config names where a secret lives, never the secret.
//!
//! A file must not be readable or writable by group or others (checked at every read,
//! so a careless `chmod` is caught at the next reload). Values come back as
//! [`SecretString`], which zeroizes on drop and prints `[REDACTED]` in `Debug`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    deny_unknown_fields,
    untagged,
    expecting = "a table { file = \"PATH\" } or { env = \"VAR\" }; secrets are never written inline"
)]
pub enum SecretRef {
    /// A file holding the secret (trailing newline trimmed).
    File {
        /// Path of the file.
        file: PathBuf,
    },
    /// An environment variable holding the secret.
    Env {
        /// Name of the variable.
        env: String,
    },
}

/// A secret that could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// File unreadable.
    #[error("secret file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// File mode too open.
    #[error("secret file {path} has mode {mode:04o}: it must not be readable or writable by group or others (chmod 600)")]
    Mode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Environment variable missing or not UTF-8.
    #[error("environment variable {name} is not set (or not UTF-8)")]
    Env {
        /// Its name.
        name: String,
    },
    /// Empty secret.
    #[error("secret from {origin} is empty")]
    Empty {
        /// Where it came from.
        origin: String,
    },
}

impl SecretRef {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let SecretRef::File { file } = self {
            if file.is_relative() && !file.as_os_str().is_empty() {
                *file = base.join(&*file);
            }
        }
    }

    /// Where the secret comes from, for messages.
    pub fn origin(&self) -> String {
        match self {
            SecretRef::File { file } => format!("file {}", file.display()),
            SecretRef::Env { env } => format!("environment variable {env}"),
        }
    }

    /// Reads the secret.
    pub fn read(&self) -> Result<SecretString, SecretError> {
        let value: Zeroizing<String> = match self {
            SecretRef::File { file } => read_private_file(file)?,
            SecretRef::Env { env } => Zeroizing::new(
                std::env::var(env).map_err(|_| SecretError::Env { name: env.clone() })?,
            ),
        };
        let trimmed = value.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Err(SecretError::Empty {
                origin: self.origin(),
            });
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}

/// Refuses a path whose mode lets group or others read or write it.
pub fn check_private_mode(path: &Path) -> Result<(), SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Mode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn read_private_file(path: &Path) -> Result<Zeroizing<String>, SecretError> {
    check_private_mode(path)?;
    let bytes = std::fs::read(path).map_err(|source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = Zeroizing::new(bytes);
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        match self {
            SecretRef::File { file } => m.serialize_entry("file", &file.display().to_string())?,
            SecretRef::Env { env } => m.serialize_entry("env", env)?,
        }
        m.serialize_entry("value", "<redacted>")?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_mode_is_checked_and_value_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "s3cret-pin\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = SecretRef::File { file: path.clone() };
        let e = r.read().unwrap_err().to_string();
        assert!(e.contains("0644") && !e.contains("s3cret"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let v = r.read().unwrap();
        assert_eq!(v.expose_secret(), "s3cret-pin");
        assert!(!format!("{v:?}").contains("s3cret"));
    }

    #[test]
    fn missing_env_names_the_variable_only() {
        let r = SecretRef::Env {
            env: "KEYWARD_TEST_UNSET_VAR".into(),
        };
        assert!(r
            .read()
            .unwrap_err()
            .to_string()
            .contains("KEYWARD_TEST_UNSET_VAR"));
    }
}
