//! Shared test helper: a throw-away SoftHSM2 token per test, a temp SQLite file, a dev
//! PKI, and a config file that points at all of them.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once per process (at `C_Initialize`), so each test
//! binary gets one config and token directory, and each test its own token label.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helper"
)]

pub mod api;
pub mod corpus;
pub mod daemon;
pub mod fixtures;
pub mod https;
pub mod kits;
pub mod logs;
pub mod metrics;
pub mod ock;
pub mod pg;
pub mod prometheus;
pub mod rpc;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use keyward::appliance::{self, Appliance};
use keyward::config::Config;
use keyward::hsm::Token;
use keyward::pki::{write_private, DevCa, Issued, Validity};
use secrecy::SecretString;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const USER_PIN: &str = "test-user-pin-8472";
pub const SO_PIN: &str = "test-so-pin-1192";
pub const HMAC_SECRET: &str = "dyn_test_webhook_secret_5cf1e0";

struct SoftHsmDir {
    _dir: tempfile::TempDir,
}

fn softhsm() {
    static DIR: OnceLock<SoftHsmDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o700)).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens.display()),
        )
        .unwrap();
        // The one `set_var` of the test suite (keep it so: tests/bad_input_cli.rs has no
        // other, and neither has any test). It runs once per test binary, inside this
        // OnceLock, before the module is first loaded in the process: every path to a
        // token (`new_token`, hence `Env`) passes here first and blocks until it is done.
        // std serialises it with std's own env reads; no C code of the process reads the
        // environment yet (SoftHSM2 reads it at its first C_Initialize, after this).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        SoftHsmDir { _dir: dir }
    });
}

/// Initialises a new token named `label` (serialised: C_InitToken picks "the" free slot).
pub fn new_token(label: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    softhsm();
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    keyward::hsm::provision_token(
        Path::new(MODULE),
        label,
        &SecretString::from(SO_PIN.to_owned()),
        &SecretString::from(USER_PIN.to_owned()),
    )
    .expect("provision token");
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 10000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One `[[clients]]` grant as the config file spells it.
pub fn grant(identity: &str, wallets: &[&str], operations: &[&str]) -> String {
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "\n[[clients]]\nidentity = {identity:?}\nwallets = [{}]\noperations = [{}]\n",
        list(wallets),
        list(operations)
    )
}

/// The rate-limited client of the policy and JSON-RPC tests: EVM messages on every wallet.
pub fn slow_client() -> String {
    grant("slow-client", &["*"], &["evm.message"])
}

/// The test PKI: a CA with server and client certificates, plus a foreign CA.
pub struct Pki {
    pub ca: DevCa,
    pub other_ca: DevCa,
    pub server: Issued,
    pub client: Issued,
}

/// A test environment: directory, token, config file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub token_label: String,
    pub config_path: PathBuf,
    pub pki: Pki,
}

pub struct EnvOptions {
    pub oaep: &'static str,
    pub rsa_bits: u32,
    pub extra: String,
}

impl Default for EnvOptions {
    fn default() -> Self {
        EnvOptions {
            oaep: "auto",
            rsa_bits: 3072,
            extra: String::new(),
        }
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with(EnvOptions::default())
    }

    /// The default environment with `extra` appended to its config (grants, policy).
    pub fn with_extra(extra: impl Into<String>) -> Env {
        Env::with(EnvOptions {
            extra: extra.into(),
            ..Default::default()
        })
    }

    /// Replaces the first `from` in the config file with `to` (fails the test when the
    /// file has no `from`: an edit that matched nothing would test the unedited file).
    pub fn edit_config(&self, from: &str, to: &str) {
        let cfg = std::fs::read_to_string(&self.config_path).unwrap();
        assert!(cfg.contains(from), "the config has no {from:?}");
        std::fs::write(&self.config_path, cfg.replacen(from, to, 1)).unwrap();
    }

    pub fn with(opts: EnvOptions) -> Env {
        let token_label = unique("kw");
        new_token(&token_label);
        let dir = tempfile::tempdir().unwrap();
        // as an operator would set it up: the state directory is private
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let p = dir.path();
        write_private(&p.join("pin"), &format!("{USER_PIN}\n")).unwrap();
        write_private(&p.join("webhook-secret"), HMAC_SECRET).unwrap();
        let ca = DevCa::new("keyward test CA").unwrap();
        let other_ca = DevCa::new("someone else's CA").unwrap();
        let server = ca.server(&["localhost", "127.0.0.1"], 2).unwrap();
        let client = ca
            .client("test-client", None, Validity::Current, 3)
            .unwrap();
        write_private(&p.join("ca.pem"), &ca.cert_pem).unwrap();
        write_private(&p.join("server.pem"), &server.cert_pem).unwrap();
        write_private(&p.join("server.key"), &server.key_pem).unwrap();
        let config = format!(
            r#"
[pkcs11]
module = "{MODULE}"
token_label = "{token_label}"
pin = {{ file = "pin" }}
pool_size = 4
rsa_oaep = "{oaep}"
rsa_bits = {bits}

[store]
path = "keyward.db"

[api]
listen = "127.0.0.1:0"
cert = "server.pem"
key = "server.key"
client_ca = ["ca.pem"]

[webhook]
listen = "127.0.0.1:0"
cert = "server.pem"
key = "server.key"
secrets = [{{ file = "webhook-secret" }}]
allowed_sources = ["127.0.0.1/32", "127.0.0.2/32", "::1/128"]

[admin]
listen = "127.0.0.1:0"

{extra}
"#,
            oaep = opts.oaep,
            bits = opts.rsa_bits,
            extra = opts.extra,
        );
        // KEYWARD_TEST_STORE=postgres: the same tests on a database of the binary's
        // PostgreSQL cluster (scripts/test runs the daemon-level suites both ways)
        let config = if std::env::var("KEYWARD_TEST_STORE").as_deref() == Ok("postgres") {
            let cluster = pg::shared();
            let db = cluster.new_database();
            config.replacen(
                "[store]\npath = \"keyward.db\"\n",
                &cluster.store_section(p, &db),
                1,
            )
        } else {
            config
        };
        let config_path = p.join("keyward.toml");
        std::fs::write(&config_path, config).unwrap();
        Env {
            dir,
            token_label,
            config_path,
            pki: Pki {
                ca,
                other_ca,
                server,
                client,
            },
        }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).expect("test config loads")
    }

    pub fn token(&self) -> Token {
        appliance::open_token(&self.config()).expect("token opens")
    }

    /// Token keys created, appliance opened.
    pub fn appliance(&self) -> Appliance {
        let token = self.token();
        appliance::init_keys(&token).expect("init keys");
        Appliance::open(self.config()).expect("appliance opens")
    }

    /// Points `[pkcs11] module` at the fault-injecting module in front of SoftHSM2
    /// (tests/fixtures/pkcs11_fault_shim.c, built here with the system C compiler), with
    /// `vars` in its environment.
    pub fn use_fault_shim(&self, vars: &[(&str, &str)]) {
        let out = self.path("fault-shim.so");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pkcs11_fault_shim.c");
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .status()
            .expect("a C compiler (scripts/test installs one)");
        assert!(status.success(), "the shim builds");
        let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
        self.edit_config(
            &format!("module = \"{MODULE}\""),
            &format!(
                "module = \"{}\"\nenvironment = {{ {} }}",
                out.display(),
                vars.join(", ")
            ),
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Every file under `dir`, recursively (database, WAL, logs, backups in subdirectories),
/// concatenated, for secret scans. An unreadable file fails the test: a scan that
/// skipped it would pass without having looked.
pub fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let p = entry
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
                .path();
            // symlink_metadata: a link is scanned as itself, never followed out of `dir`
            let meta =
                std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.extend(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
            }
        }
    }
    out
}

/// The slot holding the token labelled `label`, in an independent PKCS#11 context (for
/// tests that look at or disturb the token behind keyward's back).
/// Lists slots under keyward's slot-table lock, as every slot listing of the process must
/// (SoftHSM2 aborts when two threads add one token to its table: hsm::with_slot_table).
pub fn token_slot(ctx: &cryptoki::context::Pkcs11, label: &str) -> cryptoki::slot::Slot {
    keyward::hsm::with_slot_table(|| {
        ctx.get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label() == label)
            .unwrap_or_else(|| panic!("no token labelled {label}"))
    })
}

/// For table-driven corpora: fails listing every failed case at once.
pub fn assert_no_failures(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A legacy or v0 transfer from `from` (required signer 0) with `extra_signer` optional.
pub fn solana_tx(from: &[u8; 32], other_signer: Option<[u8; 32]>, v0: bool) -> Vec<u8> {
    let to = [7u8; 32];
    let mut keys = vec![*from];
    if let Some(o) = other_signer {
        keys.push(o);
    }
    let required = keys.len() as u8;
    keys.push(to);
    keys.push(keyward::chains::solana::SYSTEM_PROGRAM_ID);
    let mut msg = Vec::new();
    if v0 {
        msg.push(0x80);
    }
    msg.extend([required, 0, 1]);
    msg.push(keys.len() as u8);
    for k in &keys {
        msg.extend_from_slice(k);
    }
    msg.extend_from_slice(&[9u8; 32]); // recent blockhash
    msg.push(1); // one instruction
    msg.push((keys.len() - 1) as u8); // system program
    msg.extend([2, 0, (keys.len() - 2) as u8]); // accounts: from, to
    let mut data = 2u32.to_le_bytes().to_vec(); // SystemInstruction::Transfer
    data.extend(1_000_000u64.to_le_bytes());
    msg.push(data.len() as u8);
    msg.extend(data);
    if v0 {
        msg.push(0); // no address table lookups
    }
    let mut tx = vec![required];
    tx.extend(vec![0u8; 64 * required as usize]);
    tx.extend(msg);
    tx
}
