//! A throw-away PostgreSQL cluster for a test binary: Debian's server binaries, `initdb`
//! in a temp dir, TLS on (a certificate from a test CA), password authentication over
//! loopback TCP only, on a free port. Run as the `postgres` system user when the tests
//! run as root (`initdb` refuses root; CI runs as root). No Docker, no downloads.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keyward::pki::DevCa;

/// The database user's password (a test value: the URL file holds it).
pub const PASSWORD: &str = "kw-test-Pa55word-7c1e";

/// The newest installed server's binaries (`/usr/lib/postgresql/<major>/bin`).
pub fn bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries (scripts/test installs the postgresql package)")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
        .1
}

fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `tool args…` as the cluster's owner.
fn run(tool: &str, args: &[&str]) -> std::process::Output {
    let path = bin_dir().join(tool);
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn chown_to_postgres(p: &Path) {
    if as_root() {
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running cluster; stopped and deleted on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The CA the server's certificate chains to (PEM file).
    pub ca_file: PathBuf,
    databases: AtomicU32,
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new().prefix("kw-pg").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        chown_to_postgres(dir.path());
        let out = run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "keyward",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ca = DevCa::new("keyward test database CA").unwrap();
        let server = ca.server(&["localhost", "127.0.0.1"], 2).unwrap();
        let ca_file = dir.path().join("db-ca.pem");
        std::fs::write(&ca_file, &ca.cert_pem).unwrap();
        std::fs::write(data.join("server.crt"), &server.cert_pem).unwrap();
        std::fs::write(data.join("server.key"), &server.key_pem).unwrap();
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             max_connections = 200\nfsync = off\nfull_page_writes = off\n\
             log_min_messages = warning\n",
            sock = dir.path().display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).unwrap();
        // TLS only over TCP: a connection without it is refused by the server itself
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n",
        )
        .unwrap();
        chown_to_postgres(dir.path());
        let c = Cluster {
            dir,
            port,
            ca_file,
            databases: AtomicU32::new(0),
        };
        c.pg_ctl_start();
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) {
        let log = self.dir.path().join("server.log");
        let out = run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: sessions are ended, as in a failover).
    pub fn stop(&self) {
        let out = run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop: {:?}", out);
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// The URL of database `db` (with the password: for a secret file).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://keyward:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// A new empty database in the cluster; its name.
    pub fn new_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("kw{}_{n}", std::process::id());
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Runs `sql` (several statements allowed) on `db` as the cluster's superuser, with
    /// `psql` over the cluster's Unix socket.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql(db, sql);
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `psql` on `db`, whatever it answers.
    pub fn psql(&self, db: &str, sql: &str) -> std::process::Output {
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "env"])
                .arg(format!("PGPASSWORD={PASSWORD}"))
                .arg(bin_dir().join("psql"));
            c
        } else {
            let mut c = Command::new(bin_dir().join("psql"));
            c.env("PGPASSWORD", PASSWORD);
            c
        };
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "keyward",
                "-d",
                db,
                "-c",
                sql,
            ])
            .current_dir("/")
            .output()
            .unwrap()
    }

    /// A `[store]` section for database `db`, the URL in a private file under `dir`.
    pub fn store_section(&self, dir: &Path, db: &str) -> String {
        let url_file = dir.join(format!("pg-url-{db}"));
        std::fs::write(&url_file, self.url(db)).unwrap();
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "[store]\nbackend = \"postgres\"\n\n[store.postgres]\nurl = {{ file = \"{}\" }}\nca = \"{}\"\npool_size = 8\nstatement_timeout = \"3s\"\nconnect_timeout = \"2s\"\n",
            url_file.display(),
            self.ca_file.display()
        )
    }

    /// A `StoreConfig` for database `db`.
    pub fn store_config(&self, dir: &Path, db: &str) -> keyward::config::StoreConfig {
        #[derive(serde::Deserialize)]
        struct Wrapper {
            store: keyward::config::StoreConfig,
        }
        let w: Wrapper = toml::from_str(&self.store_section(dir, db)).unwrap();
        w.store
    }

    /// Another session takes `ACCESS EXCLUSIVE` on `table` of `db` and holds it for
    /// `secs` seconds; returns once the lock is granted, with the holding `psql`'s thread.
    pub fn hold_table_lock(
        &'static self,
        db: &str,
        table: &str,
        secs: u32,
    ) -> std::thread::JoinHandle<std::process::Output> {
        let sql = format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({secs}); COMMIT;"
        );
        let holder = {
            let db = db.to_owned();
            std::thread::spawn(move || self.psql(&db, &sql))
        };
        let granted = format!("SELECT COUNT(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '{table}' AND l.mode = 'AccessExclusiveLock' AND l.granted");
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while self.sql(db, &granted) != "1" {
            assert!(
                std::time::Instant::now() < until,
                "the lock was never taken"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        holder
    }

    /// Another session takes keyward's write lock (the advisory lock every node's write
    /// transaction takes first), waits until some node's writer queues behind it, runs
    /// `then` in the same transaction and commits: `then` lands between that writer's
    /// decision and its commit. Returns once the lock is held, with the holder's thread.
    pub fn hold_write_lock_then(
        &'static self,
        db: &str,
        then: &str,
    ) -> std::thread::JoinHandle<std::process::Output> {
        // 0x006b_6579_7761_7264, src/store/postgres.rs WRITE_LOCK
        let sql = format!(
            "BEGIN; SELECT pg_advisory_xact_lock(30229394876363364); \
             DO $$ BEGIN FOR i IN 1..600 LOOP \
               EXIT WHEN (SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) > 0; \
               PERFORM pg_sleep(0.05); \
               IF i = 600 THEN RAISE EXCEPTION 'no writer queued behind the lock'; END IF; \
             END LOOP; END $$; {then}; COMMIT;"
        );
        let holder = {
            let db = db.to_owned();
            std::thread::spawn(move || self.psql(&db, &sql))
        };
        // advisory locks are per database; the binary's other tests use other databases
        let granted = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while self.sql(db, granted) != "1" {
            assert!(
                std::time::Instant::now() < until,
                "the write lock was never taken"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        holder
    }

    /// Waits until `pg_isready` says the server accepts connections.
    pub fn wait_ready(&self) {
        for _ in 0..100 {
            let out = run(
                "pg_isready",
                &["-h", "127.0.0.1", "-p", &self.port.to_string()],
            );
            if out.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the database never became ready");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// One cluster per test binary, started by the first test that asks. Statics are never
/// dropped, so a watchdog process stops the server and deletes its directory once the
/// test binary has exited.
pub fn shared() -> &'static Cluster {
    static CLUSTER: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        let c = Cluster::start();
        let stop = if as_root() {
            format!(
                "runuser -u postgres -- {} -D {} -m immediate -w stop",
                bin_dir().join("pg_ctl").display(),
                c.data().display()
            )
        } else {
            format!(
                "{} -D {} -m immediate -w stop",
                bin_dir().join("pg_ctl").display(),
                c.data().display()
            )
        };
        // never waited for: it outlives this process on purpose
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
                pid = std::process::id(),
                dir = c.dir.path().display()
            ))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the cluster's watchdog starts");
        c
    })
}

/// Points `env`'s store at a new database of the binary's cluster (unless the suite
/// already runs on PostgreSQL); returns the database's name.
pub fn use_postgres(env: &super::Env) -> String {
    let cfg = std::fs::read_to_string(&env.config_path).unwrap();
    if let Some(rest) = cfg.split("pg-url-").nth(1) {
        return rest.split('"').next().unwrap().to_owned();
    }
    let cluster = shared();
    let db = cluster.new_database();
    env.edit_config(
        "[store]\npath = \"keyward.db\"\n",
        &cluster.store_section(env.dir.path(), &db),
    );
    db
}
