//! The PostgreSQL backend: any number of keyward nodes on one database.
//!
//! Every node has one writer (group commit, as with SQLite) and a bounded pool of read
//! connections. Every write transaction of every node takes one transaction-scoped
//! advisory lock first ([`WRITE_LOCK`]): the audit chain has one head, the rolling caps,
//! the lock failsafe, revocations and processed events are re-read after the lock, so a
//! commit sees every commit of every node before it (READ COMMITTED: each statement sees
//! what committed before it began). Transaction-scoped, never session-level: a pooled
//! connection must never carry a lock to its next user, and a node that dies mid-commit
//! releases it with its connection. One lock taken first by every writer also means no
//! two writers can deadlock or hit a serialization failure on each other; a transaction
//! that fails anyway (a 40001/40P01 from a future change, a cut connection) fails the
//! requests of that batch with `store_unavailable`, nothing committed, and the client
//! retries (with an `Idempotency-Key`, safely).
//!
//! Why group commit still, with a server that takes many writers: the lock serialises
//! the nodes' commits anyway, so each node folds what arrived during the previous commit
//! into one transaction and one lock acquisition (the contention is per batch, not per
//! request).

mod conn;
mod schema;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio_postgres::config::Host;

use self::conn::{pg_err, PgConn};
use super::db::Db;
use super::writer::{self, Job, WriterConn};
use super::{Backend, StoreError};
use crate::config::PostgresConfig;

/// The advisory lock key every write transaction takes first ("keyward" in ASCII, so it
/// does not collide with another application's small integers). Written out in
/// [`BEGIN`]; kept here as the number a test checks it against.
#[cfg(test)]
const WRITE_LOCK: i64 = 0x006b_6579_7761_7264;

/// How every write transaction of every node starts: the write lock is its first
/// statement (see the module), sent with the `BEGIN` in one round trip. The number is
/// `WRITE_LOCK` (a test checks they agree).
const BEGIN: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(30229394876363364)";

/// Extra client-side time beyond the server's `statement_timeout` before a statement is
/// given up (the server's own cancellation normally answers first).
const CLIENT_MARGIN: Duration = Duration::from_secs(2);

/// Longest a read waits for one of the node's connections to be free.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// What the writer and the readers share: how to connect.
struct Connector {
    config: PostgresConfig,
    /// The backend's own runtime, for the connections' I/O (callers are synchronous).
    rt: Option<tokio::runtime::Runtime>,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    describe: String,
}

impl Drop for Connector {
    fn drop(&mut self) {
        // a runtime dropped inside an async context would panic; this never blocks
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn tls_config(ca: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let pem = std::fs::read(ca)
        .map_err(|e| StoreError::Io(format!("store.postgres.ca {}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert =
            cert.map_err(|e| StoreError::Io(format!("store.postgres.ca {}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::Io(format!("store.postgres.ca {}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Io(format!(
            "store.postgres.ca {}: no certificate in the file",
            ca.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Io(format!("TLS to the database: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Whether every host of `c` is a Unix socket or a loopback address: the only places a
/// connection without TLS is accepted.
fn local_only(c: &tokio_postgres::Config) -> bool {
    c.get_hosts().iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    })
}

/// Connects on the backend's runtime (bounded by `bound`) and leaves the connection's
/// task running there; the client is used from synchronous threads.
fn spawn_connect<T>(
    rt: &tokio::runtime::Handle,
    c: tokio_postgres::Config,
    tls: T,
    bound: Duration,
) -> Result<tokio_postgres::Client, StoreError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let task = rt.spawn(async move {
        let (client, connection) = tokio::time::timeout(bound, c.connect(tls))
            .await
            .map_err(|_| StoreError::Unavailable("connection timed out".into()))?
            .map_err(pg_err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a database connection closed");
            }
        });
        Ok::<_, StoreError>(client)
    });
    conn::wait(task).map_err(|e| StoreError::Unavailable(e.to_string()))?
}

impl Connector {
    fn parse(&self) -> Result<tokio_postgres::Config, StoreError> {
        let url = self
            .config
            .url
            .read()
            .map_err(|e| StoreError::Io(format!("store.postgres.url: {e}")))?;
        // the parser's messages may quote the text: none of it is repeated
        let c: tokio_postgres::Config = url.expose_secret().parse().map_err(|_| {
            StoreError::Io(
                "store.postgres.url is not a PostgreSQL connection URL (postgresql://user:password@host:port/database)".into(),
            )
        })?;
        Ok(c)
    }

    fn connect(&self) -> Result<PgConn, StoreError> {
        let rt = self
            .rt
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .handle()
            .clone();
        let mut c = self.parse()?;
        c.connect_timeout(self.config.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .application_name("keyward");
        let bound = self.config.statement_timeout + CLIENT_MARGIN;
        let connect_bound = self.config.connect_timeout + CLIENT_MARGIN;
        let client = match &self.tls {
            Some(tls) => {
                c.ssl_mode(tokio_postgres::config::SslMode::Require);
                spawn_connect(&rt, c, tls.clone(), connect_bound)?
            }
            None => {
                if !local_only(&c) {
                    return Err(StoreError::Io(
                        "store.postgres.ca is not set: without TLS only a loopback host or a Unix socket is accepted".into(),
                    ));
                }
                spawn_connect(&rt, c, tokio_postgres::NoTls, connect_bound)?
            }
        };
        let conn = PgConn::new(client, rt, bound);
        // the server bounds every statement (a lock held by another session included)
        // and ends a transaction its client abandoned
        let ms = self.config.statement_timeout.as_millis();
        conn.exec(&format!("SET statement_timeout = {ms}"), &[])?;
        conn.exec(
            &format!("SET idle_in_transaction_session_timeout = {}", ms * 4),
            &[],
        )?;
        Ok(conn)
    }
}

/// The read connections: at most `pool_size`, created on demand, broken ones dropped.
struct Pool {
    idle: Mutex<(Vec<PgConn>, usize)>,
    freed: Condvar,
    max: usize,
}

/// The node's writing connection, reconnected after a failure.
struct Writer {
    connector: Arc<Connector>,
    conn: Option<PgConn>,
    /// The previous job's `RELEASE` not yet sent: it travels with the next job's
    /// `SAVEPOINT` (one round trip per job, not two); `COMMIT` releases it anyway.
    release_pending: bool,
}

impl Writer {
    fn live(&mut self) -> Result<&PgConn, StoreError> {
        if self.conn.as_ref().is_some_and(PgConn::is_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connector.connect()?);
        }
        self.conn.as_ref().ok_or(StoreError::WriterGone)
    }

    fn current(&self) -> Result<&PgConn, StoreError> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the database connection was lost".into()))
    }

    fn forget_if_broken(&mut self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable(_)) {
            self.conn = None;
        }
    }
}

impl WriterConn for Writer {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.release_pending = false;
        let r = self.live().and_then(|c| c.batch(BEGIN));
        if let Err(e) = &r {
            if let Some(c) = &self.conn {
                let _ = c.batch("ROLLBACK");
            }
            self.forget_if_broken(e);
        }
        r
    }
    fn db(&self) -> &dyn Db {
        match &self.conn {
            Some(c) => c,
            None => &Gone,
        }
    }
    fn savepoint(&mut self) -> Result<(), StoreError> {
        // never `live()` past `begin`: a new connection would be outside the transaction
        let sql = if std::mem::take(&mut self.release_pending) {
            "RELEASE SAVEPOINT job; SAVEPOINT job"
        } else {
            "SAVEPOINT job"
        };
        self.current()?.batch(sql)
    }
    fn release(&mut self) {
        self.release_pending = true;
    }
    fn rollback_to(&mut self) {
        self.release_pending = false;
        if let Some(c) = &self.conn {
            let _ = c.batch("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job");
        }
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        // the connection the batch began on, or none: a COMMIT on a fresh connection
        // would "succeed" with nothing to commit
        let r = self.current().and_then(|c| c.batch("COMMIT"));
        if let Err(e) = &r {
            self.forget_if_broken(e);
        }
        r
    }
    fn rollback(&mut self) {
        if let Some(c) = &self.conn {
            if c.batch("ROLLBACK").is_err() {
                self.conn = None;
            }
        }
    }
}

/// What a job sees if the batch's connection is gone: every statement fails.
struct Gone;

impl Db for Gone {
    fn exec(&self, _: &str, _: &[super::db::Val]) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable(
            "the database connection was lost".into(),
        ))
    }
    fn each(
        &self,
        _: &str,
        _: &[super::db::Val],
        _: &mut dyn FnMut(super::db::Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "the database connection was lost".into(),
        ))
    }
}

/// A PostgreSQL store.
pub(crate) struct Postgres {
    connector: Arc<Connector>,
    pool: Pool,
    writer: Mutex<mpsc::Sender<Job>>,
}

impl Postgres {
    /// Connects, migrates the database to this binary's schema (once, whichever node gets
    /// there first), starts this node's writer.
    pub(crate) fn open(config: &PostgresConfig) -> Result<Postgres, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("keyward-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("database runtime: {e}")))?;
        let tls = config.ca.as_deref().map(tls_config).transpose()?;
        let mut connector = Connector {
            config: config.clone(),
            rt: Some(rt),
            tls,
            describe: String::new(),
        };
        let parsed = connector.parse()?;
        connector.describe = describe(&parsed);
        let connector = Arc::new(connector);
        let first = connector.connect()?;
        schema::migrate(&first)?;
        let writer = writer::spawn(Writer {
            release_pending: false,
            connector: connector.clone(),
            conn: Some(first),
        })?;
        Ok(Postgres {
            connector,
            pool: Pool {
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
                max: config.pool_size.max(1),
            },
            writer: Mutex::new(writer),
        })
    }

    fn acquire(&self) -> Result<PgConn, StoreError> {
        // waiting for a free connection is queueing behind this node's own reads, not a
        // sign of a sick database (each read is bounded by the statement timeout)
        let deadline = Instant::now() + POOL_WAIT;
        let mut g = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while let Some(c) = g.0.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                g.1 -= 1;
            }
            if g.1 < self.pool.max {
                g.1 += 1;
                drop(g);
                return self.connector.connect().inspect_err(|_| {
                    let mut g = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                    g.1 -= 1;
                    self.pool.freed.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(format!(
                    "all {} database connections are busy",
                    self.pool.max
                )));
            }
            g = self
                .pool
                .freed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn give_back(&self, c: PgConn) {
        let mut g = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if c.is_closed() {
            g.1 -= 1;
        } else {
            g.0.push(c);
        }
        self.pool.freed.notify_one();
    }
}

/// `postgres://host:port/db`, without user or password.
fn describe(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(n) => n.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = c
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    format!("postgres://{host}{port}/{}", c.get_dbname().unwrap_or(""))
}

impl Backend for Postgres {
    fn describe(&self) -> String {
        self.connector.describe.clone()
    }

    fn read(&self, f: &mut dyn FnMut(&dyn Db)) -> Result<(), StoreError> {
        let conn = self.acquire()?;
        f(&conn);
        self.give_back(conn);
        Ok(())
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| StoreError::WriterGone)
    }

    fn backup_to(&self, _dest: &Path) -> Result<(), StoreError> {
        Err(StoreError::Io(
            "a PostgreSQL store is backed up with PostgreSQL's tools (pg_dump, or the server's base backups and WAL archive): see docs/several-nodes.md".into(),
        ))
    }

    fn setting(&self, name: &str) -> Result<String, StoreError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StoreError::Io(format!("{name:?} is not a setting name")));
        }
        let sql = format!("SELECT current_setting('{name}')");
        let conn = self.acquire()?;
        let r = conn.row(&sql, &[]);
        self.give_back(conn);
        r?.ok_or_else(|| StoreError::Corrupt(format!("no setting {name}")))?
            .text(0)
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.acquire()?;
        let r = schema::version(&conn);
        self.give_back(conn);
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_batch_begin_takes_the_write_lock() {
        assert!(super::BEGIN.ends_with(&format!("pg_advisory_xact_lock({})", super::WRITE_LOCK)));
    }
}
