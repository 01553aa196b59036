//! One PostgreSQL connection as a [`Db`]: statements prepared once per connection,
//! `?N` parameters turned into PostgreSQL's `$N`, values converted to and from [`Val`].
//!
//! The connection's I/O runs on the backend's own small tokio runtime; callers are
//! synchronous (the writer thread, blocking read threads, operator commands) and wait for
//! each statement with a client-side bound of the server's `statement_timeout` plus a
//! margin, so a database that stops answering (a host gone, a partition) fails the
//! request with `store_unavailable` instead of holding a thread forever.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use crate::store::db::{Db, Row, Val};
use crate::store::StoreError;

/// SQLSTATEs after which the request may be retried on a healthy database: connection
/// exceptions (class 08), the server shutting down or the backend terminated (57P01-03),
/// a statement cancelled by `statement_timeout` (57014), serialization failures and
/// deadlocks (40001, 40P01), lock not available (55P03), out of resources (class 53).
fn transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "57014" | "40001" | "40P01" | "55P03")
}

/// Maps a client error: transient ones are [`StoreError::Unavailable`].
pub(super) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c) if !transient(c.code()) => StoreError::Postgres(e.to_string()),
        // no SQLSTATE: an I/O error, a closed connection, a TLS failure
        _ => StoreError::Unavailable(e.to_string()),
    }
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Val::Text(s) => s.to_sql(ty, out),
            Val::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // the server decides each parameter's type from the statement; `to_sql` refuses
        // a value that does not fit it
        true
    }

    to_sql_checked!();
}

fn val_of(row: &tokio_postgres::Row, i: usize) -> Result<Val, tokio_postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Val::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Val::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Val::Int(v.into())),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Val::Blob),
        _ => row.try_get::<_, Option<String>>(i)?.map(Val::Text),
    }
    .unwrap_or(Val::Null))
}

fn row_of(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    (0..row.len())
        .map(|i| val_of(row, i))
        .collect::<Result<Vec<_>, _>>()
        .map(Row)
}

/// Waits on this (synchronous) thread for a future driven by the backend's runtime.
/// Unconstrained: a caller inside another tokio task (a sync read from async code)
/// would otherwise spend that task's cooperative budget on every poll and, once it is
/// spent, poll a pending join handle forever.
pub(super) fn wait<F: std::future::Future>(f: F) -> F::Output {
    futures_executor::block_on(tokio::task::unconstrained(f))
}

/// `?1` → `$1`: the row modules' SQL is written once, in SQLite's numbering.
fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A connection and its prepared statements.
pub(crate) struct PgConn {
    client: Arc<Client>,
    rt: tokio::runtime::Handle,
    /// Client-side bound on one statement (the server's own is shorter).
    bound: Duration,
    statements: RefCell<HashMap<String, Statement>>,
}

impl PgConn {
    pub(super) fn new(client: Client, rt: tokio::runtime::Handle, bound: Duration) -> PgConn {
        PgConn {
            client: Arc::new(client),
            rt,
            bound,
            statements: RefCell::new(HashMap::new()),
        }
    }

    /// Whether the connection is gone (the server closed it, or it failed).
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs `fut` on the backend's runtime and waits for it, at most `self.bound`.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let bound = self.bound;
        let task = self
            .rt
            .spawn(async move { tokio::time::timeout(bound, fut).await });
        match wait(task) {
            Ok(Ok(r)) => r.map_err(pg_err),
            Ok(Err(_)) => Err(StoreError::Unavailable(format!(
                "the database did not answer within {} ms",
                bound.as_millis()
            ))),
            Err(e) => Err(StoreError::Unavailable(format!("database task: {e}"))),
        }
    }

    /// Statements that take no parameters and return nothing (transaction control,
    /// settings), by the simple query protocol.
    pub(super) fn batch(&self, sql: &'static str) -> Result<(), StoreError> {
        let client = self.client.clone();
        self.run(async move { client.batch_execute(sql).await })
    }

    fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let client = self.client.clone();
        let text = dollar_params(sql);
        let stmt = self.run(async move { client.prepare(&text).await })?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

impl Db for PgConn {
    fn exec(&self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let client = self.client.clone();
        let params = params.to_vec();
        self.run(async move {
            client
                .execute_raw(&stmt, params.iter().map(|v| v as &(dyn ToSql + Sync)))
                .await
        })
    }

    fn each(
        &self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let stmt = self.statement(sql)?;
        let client = self.client.clone();
        let params = params.to_vec();
        // rows cross from the runtime to this thread through a small queue: a listing of
        // any length is read in bounded memory
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Row, tokio_postgres::Error>>(64);
        let bound = self.bound;
        let task = self.rt.spawn(async move {
            let stream = match tokio::time::timeout(
                bound,
                client.query_raw(&stmt, params.iter().map(|v| v as &(dyn ToSql + Sync))),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return false;
                }
                Err(_) => return false,
            };
            pin_mut!(stream);
            loop {
                match tokio::time::timeout(bound, stream.try_next()).await {
                    Ok(Ok(Some(row))) => {
                        if tx.send(row_of(&row)).await.is_err() {
                            return true;
                        }
                    }
                    Ok(Ok(None)) => return true,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return false;
                    }
                    Err(_) => return false,
                }
            }
        });
        let mut failed = None;
        while let Some(item) = wait(rx.recv()) {
            match item {
                Ok(row) => {
                    if failed.is_none() {
                        if let Err(e) = each(row) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                Err(e) => {
                    failed = Some(pg_err(e));
                    break;
                }
            }
        }
        drop(rx);
        let finished = wait(task).unwrap_or(false);
        match failed {
            Some(e) => Err(e),
            None if finished => Ok(()),
            None => Err(StoreError::Unavailable(format!(
                "the database did not answer within {} ms",
                bound.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_become_dollars() {
        assert_eq!(
            dollar_params("SELECT a FROM t WHERE x = ?1 AND y > ?12 LIMIT ?3"),
            "SELECT a FROM t WHERE x = $1 AND y > $12 LIMIT $3"
        );
        assert_eq!(dollar_params("SELECT '?' || ?"), "SELECT '?' || ?");
    }

    #[test]
    fn transient_states_are_the_retryable_ones() {
        for c in [
            "08006", "57P01", "57014", "40001", "40P01", "53300", "55P03",
        ] {
            assert!(transient(c), "{c}");
        }
        for c in ["23505", "42P01", "22P02"] {
            assert!(!transient(c), "{c}");
        }
    }
}
