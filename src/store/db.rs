//! What the store's modules see of a database connection, whichever backend holds it.
//!
//! The row modules (`wallets`, `audit`, `spend`, …) write their SQL once against this
//! trait: plain SQL that SQLite and PostgreSQL both accept, parameters numbered `?1`,
//! `?2`, … (each backend turns them into its own form), values as [`Val`]. Where the two
//! dialects differ (the schema, backups, server settings), each backend owns that code in
//! its own file. Why not an "any database" crate: sqlx's `Any` driver is the only one,
//! and it has no pipelining and a second async stack; the trait here is four methods.

use super::StoreError;

/// A parameter or a column value.
#[derive(Clone, PartialEq, Eq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA). Wrapped material only: never a secret.
    Blob(Vec<u8>),
}

impl std::fmt::Debug for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Null => f.write_str("NULL"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Text(s) => write!(f, "{s:?}"),
            // lengths only: even sealed blobs have no business in a log line
            Val::Blob(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Val {
        Val::Blob(v)
    }
}
impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Val {
        Val::Blob(v.to_vec())
    }
}
impl<T: Clone + Into<Val>> From<&Option<T>> for Val {
    fn from(v: &Option<T>) -> Val {
        v.clone().map_or(Val::Null, Into::into)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

/// `vals![a, b]`: the parameters of one statement.
#[macro_export]
#[doc(hidden)]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::store::db::Val::from($v)),*][..] };
}
pub use crate::vals;

/// One result row; values are taken out by column index.
#[derive(Debug)]
pub struct Row(pub(crate) Vec<Val>);

fn wrong(i: usize, want: &str, got: &Val) -> StoreError {
    StoreError::Corrupt(format!("column {i}: expected {want}, found {got:?}"))
}

impl Row {
    fn take(&mut self, i: usize) -> Result<Val, StoreError> {
        self.0
            .get_mut(i)
            .map(|v| std::mem::replace(v, Val::Null))
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i}")))
    }

    /// A nullable integer.
    pub fn opt_i64(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.take(i)? {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(v)),
            other => Err(wrong(i, "an integer", &other)),
        }
    }

    /// An integer.
    pub fn i64(&mut self, i: usize) -> Result<i64, StoreError> {
        self.opt_i64(i)?
            .ok_or_else(|| wrong(i, "an integer", &Val::Null))
    }

    /// A nullable text.
    pub fn opt_text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        match self.take(i)? {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v)),
            other => Err(wrong(i, "text", &other)),
        }
    }

    /// A text.
    pub fn text(&mut self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| wrong(i, "text", &Val::Null))
    }

    /// A nullable blob.
    pub fn opt_blob(&mut self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.take(i)? {
            Val::Null => Ok(None),
            Val::Blob(v) => Ok(Some(v)),
            other => Err(wrong(i, "bytes", &other)),
        }
    }
}

/// A connection, inside a transaction for writes.
pub trait Db {
    /// Runs one statement; the number of rows it changed.
    fn exec(&self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;

    /// Runs one query, handing each row to `each` as it arrives (bounded memory for
    /// listings of any length).
    fn each(
        &self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Every row of a query.
    fn rows(&self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, params, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query, if any.
    fn row(&self, sql: &str, params: &[Val]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }
}
