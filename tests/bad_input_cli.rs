//! The bad-input corpus of the operator face: the `keyward` binary with bad arguments,
//! bad config files and bad key files. Each case is (command line, files, expected exit
//! status, text the error must contain: the config key, the argument, the reason). For
//! every case the harness checks the exact exit status (2 for usage and configuration,
//! 1 for everything else; never a panic's 101), that stderr says why, that stdout is
//! empty, and that nothing changed: every row of the database, the audit chain
//! included (a refused command audits nothing), and the token's objects.
//!
//! Config files that `keyward serve` refuses at start are run twice, as `config check`
//! and as `serve`: both must refuse with the same exit status and name the same key and
//! path, so `config check`'s OK can be trusted. While the corpus runs the test holds the
//! database's service lock, so a `serve` that wrongly got past its checks stops at once
//! ("already serves this database", exit 1) instead of serving.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::daemon::{bin, keyward_ok};
use common::Env;

struct Case {
    class: &'static str,
    name: String,
    args: Vec<String>,
    stdin: Vec<u8>,
    exit: i32,
    says: String,
}

struct Cases<'e> {
    env: &'e Env,
    base: String,
    n: usize,
    out: Vec<Case>,
}

impl Cases<'_> {
    /// A case run with the environment's config appended as `--config`.
    fn run(&mut self, class: &'static str, name: &str, args: &[&str], exit: i32, says: &str) {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.push("--config".into());
        a.push(self.env.config_path.display().to_string());
        self.push(class, name, a, Vec::new(), exit, says);
    }

    fn push(
        &mut self,
        class: &'static str,
        name: &str,
        args: Vec<String>,
        stdin: Vec<u8>,
        exit: i32,
        says: &str,
    ) {
        self.out.push(Case {
            class,
            name: name.into(),
            args,
            stdin,
            exit,
            says: says.into(),
        });
    }

    /// A private file in the environment's directory; returns its path.
    fn file(&mut self, contents: &[u8], mode: u32) -> String {
        self.n += 1;
        let p = self.env.path(&format!("case-{}", self.n));
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    }

    /// The environment's config with `edit` applied, as a private file; fails the test if
    /// the edit did not change the text.
    fn edited(&mut self, name: &str, edit: impl FnOnce(&str) -> String, mode: u32) -> String {
        let text = edit(&self.base);
        assert_ne!(text, self.base, "{name}: the edit changed nothing");
        self.file(text.as_bytes(), mode)
    }

    /// `keyward config check` of the environment's config with `edit` applied.
    fn config(&mut self, name: &str, edit: impl FnOnce(&str) -> String, says: &str) {
        let p = self.edited(name, edit, 0o600);
        let args = vec!["config".into(), "check".into(), "--config".into(), p];
        self.push("config", name, args, Vec::new(), 2, says);
    }

    /// `keyward config check` and `keyward serve` of the config file `p`: both must exit
    /// with `exit` and say `says`.
    fn check_and_serve(&mut self, name: &str, p: &str, exit: i32, says: &str) {
        for (class, command) in [
            ("config", ["config", "check"].as_slice()),
            ("serve", &["serve"]),
        ] {
            let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
            args.extend(["--config".into(), p.to_owned()]);
            self.push(class, name, args, Vec::new(), exit, says);
        }
    }

    /// [`Self::check_and_serve`] of the environment's config with `edit` applied.
    fn both(&mut self, name: &str, edit: impl FnOnce(&str) -> String, exit: i32, says: &str) {
        let p = self.edited(name, edit, 0o600);
        self.check_and_serve(name, &p, exit, says);
    }

    /// `keyward wallets import --key-file <file>`.
    fn key_file(&mut self, name: &str, contents: &[u8], mode: u32, says: &str) {
        let p = self.file(contents, mode);
        let args = [
            "wallets",
            "import",
            "--chain",
            "evm",
            "--key-file",
            &p,
            "--config",
            &self.env.config_path.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        self.push("key files", name, args, Vec::new(), 1, says);
    }
}

/// `old` replaced by `new`, which must occur.
fn replace(text: &str, old: &str, new: &str) -> String {
    assert!(text.contains(old), "{old:?} not in the config");
    text.replacen(old, new, 1)
}

fn corpus(env: &Env, held_key: &str) -> Vec<Case> {
    let base = std::fs::read_to_string(&env.config_path).unwrap();
    let mut c = Cases {
        env,
        base,
        n: 0,
        out: Vec::new(),
    };

    // --- the command line itself (clap: exit 2 with usage)
    let usage = "Usage";
    for (name, args, says) in [
        ("no command", vec![], usage),
        (
            "unknown command",
            vec!["frobnicate"],
            "unrecognized subcommand",
        ),
        (
            "unknown flag",
            vec!["init", "--force"],
            "unexpected argument",
        ),
        ("wallets without a command", vec!["wallets"], usage),
        (
            "create without --chain",
            vec!["wallets", "create"],
            "--chain",
        ),
        (
            "create --chain bitcoin",
            vec!["wallets", "create", "--chain", "bitcoin"],
            "invalid value",
        ),
        (
            "create --chain EVM (case)",
            vec!["wallets", "create", "--chain", "EVM"],
            "invalid value",
        ),
        (
            "a key on the command line",
            vec!["wallets", "import", "--chain", "evm", "--key", "00"],
            "unexpected argument",
        ),
        (
            "import without --key-file",
            vec!["wallets", "import", "--chain", "evm"],
            "--key-file",
        ),
        ("lock without --reason", vec!["lock"], "--reason"),
        ("retire without a label", vec!["keys", "retire"], "LABEL"),
        ("show without an id", vec!["wallets", "show"], "<ID>"),
        ("backup without --to", vec!["backup"], "--to"),
        (
            "simulate --chain bitcoin",
            vec!["simulate", "delegation", "--chain", "bitcoin"],
            "invalid value",
        ),
        (
            "simulate --iv-len twelve",
            vec!["simulate", "delegation", "--iv-len", "twelve"],
            "invalid value",
        ),
        (
            "simulate an unknown event",
            vec!["simulate", "transfer"],
            "unrecognized subcommand",
        ),
        (
            "solana-transfer --lamports -1",
            vec![
                "dev",
                "solana-transfer",
                "--from",
                "11111111111111111111111111111111",
                "--to",
                "11111111111111111111111111111112",
                "--lamports",
                "-1",
            ],
            "--lamports",
        ),
        (
            "solana-transfer --lamports 2^64",
            vec![
                "dev",
                "solana-transfer",
                "--from",
                "11111111111111111111111111111111",
                "--to",
                "11111111111111111111111111111112",
                "--lamports",
                "18446744073709551616",
            ],
            "--lamports",
        ),
    ] {
        c.run("arguments", name, &args, 2, says);
    }
    let cfg = env.config_path.display().to_string();
    c.push(
        "arguments",
        "--config twice",
        ["init", "--config", &cfg, "--config", &cfg]
            .map(String::from)
            .to_vec(),
        Vec::new(),
        2,
        "--config",
    );

    // --- the config file: each broken in one place, named by its key
    let missing = env.path("no-such.toml").display().to_string();
    c.push(
        "config",
        "config file missing",
        ["config", "check", "--config", &missing]
            .map(String::from)
            .to_vec(),
        Vec::new(),
        2,
        "cannot read",
    );
    let dir = env.dir.path().display().to_string();
    c.push(
        "config",
        "config file is a directory",
        ["config", "check", "--config", &dir]
            .map(String::from)
            .to_vec(),
        Vec::new(),
        2,
        "cannot read",
    );
    let p = c.file(b"\xff\xfe[pkcs11]\n", 0o600);
    c.push(
        "config",
        "config file not UTF-8",
        ["config", "check", "--config", &p]
            .map(String::from)
            .to_vec(),
        Vec::new(),
        2,
        "cannot read",
    );
    let p = c.file(b"", 0o600);
    c.push(
        "config",
        "config file empty",
        ["config", "check", "--config", &p]
            .map(String::from)
            .to_vec(),
        Vec::new(),
        2,
        "pkcs11",
    );
    type Edit = Box<dyn FnOnce(&str) -> String>;
    let r =
        |old: &'static str, new: &'static str| -> Edit { Box::new(move |t| replace(t, old, new)) };
    let append = |extra: &'static str| -> Edit { Box::new(move |t| format!("{t}\n{extra}\n")) };
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("misspelt key", r("pool_size = 4", "pool_sise = 4"), "pool_sise"),
        ("pool size 0", r("pool_size = 4", "pool_size = 0"), "pkcs11.pool_size"),
        ("pool size 65", r("pool_size = 4", "pool_size = 65"), "pkcs11.pool_size"),
        ("pool size a string", r("pool_size = 4", "pool_size = \"4\""), "pool_size"),
        ("pool size negative", r("pool_size = 4", "pool_size = -4"), "pool_size"),
        ("RSA 2048", r("rsa_bits = 3072", "rsa_bits = 2048"), "pkcs11.rsa_bits"),
        ("RSA 1e9", r("rsa_bits = 3072", "rsa_bits = 1000000000"), "pkcs11.rsa_bits"),
        ("OAEP mode", r("rsa_oaep = \"auto\"", "rsa_oaep = \"sometimes\""), "rsa_oaep"),
        ("pin as plain text", r("pin = { file = \"pin\" }", "pin = \"1234\""), "pin"),
        ("pin from two places", r("pin = { file = \"pin\" }", "pin = { file = \"pin\", env = \"PIN\" }"), "pin"),
        ("no store", r("[store]\npath = \"keyward.db\"", ""), "store"),
        ("api listen not an address", r("[api]\nlisten = \"127.0.0.1:0\"", "[api]\nlisten = \"localhost\""), "api.listen"),
        ("api listen port 99999", r("[api]\nlisten = \"127.0.0.1:0\"", "[api]\nlisten = \"127.0.0.1:99999\""), "api.listen"),
        ("webhook CIDR /33", r("\"127.0.0.2/32\"", "\"127.0.0.2/33\""), "webhook.allowed_sources"),
        ("webhook CIDR word", r("\"127.0.0.2/32\"", "\"localhost\""), "webhook.allowed_sources"),
        ("unknown table", append("[webhook.x]"), "x"),
        ("webhook secrets empty", r("secrets = [{ file = \"webhook-secret\" }]", "secrets = [{ file = \"\" }]"), "key `webhook.secrets[0]`: expected { file = \"PATH\" } with a path"),
        ("future skew in parsecs", r("[webhook]\n", "[webhook]\nmax_future_skew = \"5 parsecs\"\n"), "max_future_skew"),
        ("body limit negative", r("[webhook]\n", "[webhook]\nbody_limit = -1\n"), "body_limit"),
        ("body limit 0", r("[webhook]\n", "[webhook]\nbody_limit = 0\n"), "webhook.body_limit"),
        ("per-source rate 0", r("[webhook]\n", "[webhook]\nper_source_rate = 0\n"), "webhook.per_source_rate"),
        ("cluster of 0 nodes", append("[cluster]\nnodes = 0"), "key `cluster.nodes`: expected 1 to 64"),
        ("cluster of 65 nodes", append("[cluster]\nnodes = 65"), "key `cluster.nodes`: expected 1 to 64"),
        ("cluster nodes negative", append("[cluster]\nnodes = -2"), "nodes"),
        // a SQLite file serves one node: two nodes on it would each divide the rate
        // limits and neither would see the other's writes
        ("two nodes on SQLite", append("[cluster]\nnodes = 2"), "key `cluster.nodes`: several nodes need store.backend = \"postgres\""),
        ("cluster key misspelt", append("[cluster]\nnode = 2"), "node"),
        ("admin on all interfaces", r("[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"0.0.0.0:0\""), "admin.listen"),
        ("log format xml", append("[log]\nformat = \"xml\""), "log.format"),
        ("client identity empty", append("[[clients]]\nidentity = \"\"\nwallets = [\"*\"]\noperations = [\"evm.message\"]"), "clients[0].identity"),
        ("client identity twice", append("[[clients]]\nidentity = \"a\"\nwallets = [\"*\"]\noperations = [\"evm.message\"]\n[[clients]]\nidentity = \"a\"\nwallets = [\"*\"]\noperations = [\"evm.message\"]"), "clients[1].identity"),
        ("client operation unknown", append("[[clients]]\nidentity = \"a\"\nwallets = [\"*\"]\noperations = [\"evm.everything\"]"), "operations"),
        ("client wallet selector unknown", append("[[clients]]\nidentity = \"a\"\nwallets = [\"chain:bitcoin\"]\noperations = [\"evm.message\"]"), "wallets"),
        ("client without operations", append("[[clients]]\nidentity = \"a\"\nwallets = [\"*\"]"), "operations"),
        ("inline policy: lamports in ether", append("[policy]\n[[policy.rule]]\nid = \"s\"\n[policy.rule.solana]\nprograms = [\"system\"]\nmax_lamports_per_tx = \"1 ether\""), "(s).solana.max_lamports_per_tx`: \"1 ether\" is in an EVM unit"),
        ("inline policy: value in sol", append("[policy]\n[[policy.rule]]\nid = \"e\"\n[policy.rule.evm]\nmax_value = { \"*\" = \"1 sol\" }"), "(e).evm.max_value.*`: \"1 sol\" is in a Solana unit"),
        // evm.max_nonce_gap is checked against the upstream node's pending nonce: written
        // without `[rpc] upstream` it could not be, whatever its value
        ("inline policy: nonce gap without upstream", append("[policy]\n[[policy.rule]]\nid = \"g\"\n[policy.rule.evm]\nmax_nonce_gap = 2"), "(g).evm.max_nonce_gap`: needs `[rpc] upstream`"),
        ("inline policy: nonce gap 0 without upstream", append("[policy]\n[[policy.rule]]\nid = \"g\"\n[policy.rule.evm]\nmax_nonce_gap = 0\nmax_value = { \"*\" = \"1 ether\" }"), "(g).evm.max_nonce_gap`: needs `[rpc] upstream`"),
        ("inline policy: nonce gap in a second rule without upstream", append("[policy]\n[[policy.rule]]\nid = \"a\"\nmessage = {}\n[[policy.rule]]\nid = \"g\"\n[policy.rule.evm]\nmax_nonce_gap = 1000"), "rule[1](g).evm.max_nonce_gap`: needs `[rpc] upstream`"),
        ("inline policy: nonce gap 1001", append("[policy]\n[[policy.rule]]\nid = \"g\"\n[policy.rule.evm]\nmax_nonce_gap = 1001"), "(g).evm.max_nonce_gap`: 1001 is above 1000"),
        ("inline policy: nonce gap negative", append("[policy]\n[[policy.rule]]\nid = \"g\"\n[policy.rule.evm]\nmax_nonce_gap = -1"), "max_nonce_gap"),
        ("TOML syntax", append("[[clients]\n"), "TOML parse error"),
        ("table twice", append("[store]\npath = \"other.db\""), "store"),
    ];
    for (name, edit, says) in cases {
        c.config(name, edit, says);
    }
    config_refused_at_start(&mut c, env);

    // --- key files for `wallets import`
    let evm_key = "4646464646464646464646464646464646464646464646464646464646464646";
    let bad_key = "the key must be 32 bytes of hex";
    c.key_file("key file mode 0644", evm_key.as_bytes(), 0o644, "0644");
    for (name, text) in [
        ("empty", ""),
        ("31 bytes", &evm_key[..62]),
        ("33 bytes", "464646464646464646464646464646464646464646464646464646464646464646"),
        ("not hex", "zz46464646464646464646464646464646464646464646464646464646464646"),
        ("base64", "RkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkY="),
        ("two keys", "46464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646464646"),
        ("a PEM", "-----BEGIN EC PRIVATE KEY-----\nMHQCAQEEIEZGRkZG\n-----END EC PRIVATE KEY-----\n"),
    ] {
        c.key_file(&format!("key {name}"), text.as_bytes(), 0o600, bad_key);
    }
    c.key_file(
        "key zero",
        "0".repeat(64).as_bytes(),
        0o600,
        "not a valid EVM private key",
    );
    c.key_file(
        "key above the curve order",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff".as_bytes(),
        0o600,
        "not a valid EVM private key",
    );
    let missing_key = env.path("no-such-key").display().to_string();
    c.push(
        "key files",
        "key file missing",
        [
            "wallets",
            "import",
            "--chain",
            "solana",
            "--key-file",
            &missing_key,
            "--config",
            &cfg,
        ]
        .map(String::from)
        .to_vec(),
        Vec::new(),
        1,
        "no-such-key",
    );
    c.push(
        "key files",
        "key on stdin not hex",
        [
            "wallets",
            "import",
            "--chain",
            "solana",
            "--key-file",
            "-",
            "--config",
            &cfg,
        ]
        .map(String::from)
        .to_vec(),
        b"not a key\n".to_vec(),
        1,
        bad_key,
    );

    // --- operations on what exists (or does not)
    let backup_exists = c.file(b"", 0o600);
    for (name, args, says) in [
        (
            "show an unknown wallet",
            vec!["wallets", "show", "no-such-wallet"],
            "no-such-wallet",
        ),
        (
            "retire an unknown key",
            vec!["keys", "retire", "keyward-rsa-9"],
            "keyward-rsa-9",
        ),
        (
            "retire an unknown wrapping key",
            vec!["keys", "retire", "keyward-wrap-9"],
            "no token object labelled keyward-wrap-9",
        ),
        (
            "retire the only RSA key",
            vec!["keys", "retire", "keyward-rsa-1"],
            "only webhook RSA key",
        ),
        (
            "retire the wrapping key wallets use",
            vec!["keys", "retire", "keyward-wrap-1"],
            "still wrapped under keyward-wrap-1",
        ),
        (
            "public key of an unknown label",
            vec!["keys", "public", "--label", "nope"],
            "no such RSA key",
        ),
        (
            "backup over a file",
            vec!["backup", "--to", &backup_exists],
            "exists",
        ),
        (
            "backup into no directory",
            vec!["backup", "--to", "/nonexistent-dir/x.db"],
            "nonexistent-dir",
        ),
        (
            "export since a word",
            vec!["audit", "export", "--since", "yesterday"],
            "--since",
        ),
        (
            "export since no zone",
            vec!["audit", "export", "--since", "2025-01-01T00:00:00"],
            "--since",
        ),
        (
            "simulate to the configured port 0",
            vec!["simulate", "revoke"],
            "sending to https://127.0.0.1:0/",
        ),
        (
            "simulate to nowhere",
            vec![
                "simulate",
                "ping",
                "--to",
                "https://127.0.0.1:1/webhooks/dynamic",
            ],
            "127.0.0.1:1",
        ),
        (
            "simulate to plain http",
            vec!["simulate", "ping", "--to", "ftp://127.0.0.1/x"],
            "ftp",
        ),
    ] {
        c.run("operations", name, &args, 1, says);
    }
    // commands that take no config file
    for (name, args, says) in [
        (
            "solana-transfer from not base58",
            [
                "dev",
                "solana-transfer",
                "--from",
                "0OIl",
                "--to",
                "11111111111111111111111111111112",
                "--lamports",
                "1",
            ],
            "--from",
        ),
        (
            "solana-transfer to not base58",
            [
                "dev",
                "solana-transfer",
                "--from",
                "11111111111111111111111111111112",
                "--to",
                "0x35",
                "--lamports",
                "1",
            ],
            "--to",
        ),
    ] {
        let args = args.into_iter().map(String::from).collect();
        c.push("operations", name, args, Vec::new(), 1, says);
    }
    c.push(
        "config",
        "policy check of a missing file",
        vec!["policy".into(), "check".into(), "nope.toml".into()],
        Vec::new(),
        2,
        "nope.toml: cannot read",
    );
    // amounts in the other chain's units ("1 ether" of lamports is 10^18 lamports: no cap),
    // refused naming the key, in every amount key of both chains
    let evm_unit = "is in an EVM unit, and this key is a Solana amount: write it in lamports, sol or as a base-unit integer";
    let sol_unit = "is in a Solana unit, and this key is an EVM amount: write it in wei, gwei, ether or as a base-unit integer";
    let sol_rule = "[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"system\"]\n";
    let evm_rule = "[[rule]]\nid = \"e\"\n[rule.evm]\n";
    let usdc = "contract = \"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48\"";
    let mint = "mint = \"EPjFWdd5AufqSxqeM2qN1xzybapC8G4wEGGkZwyTDt1v\"";
    for (name, policy, says) in [
        ("lamports in ether", format!("{sol_rule}max_lamports_per_tx = \"1 ether\"\n"), format!("key `rule[0](s).solana.max_lamports_per_tx`: \"1 ether\" {evm_unit}")),
        ("priority fee in wei", format!("{sol_rule}max_priority_fee = \"1 wei\"\n"), format!("key `rule[0](s).solana.max_priority_fee`: \"1 wei\" {evm_unit}")),
        ("lamport window in gwei", format!("{sol_rule}[[rule.solana.spend]]\nwindow = \"1h\"\nmax = \"5 gwei\"\n"), format!("key `rule[0](s).solana.spend[0].max`: \"5 gwei\" {evm_unit}")),
        ("SPL cap in eth", format!("{sol_rule}[[rule.solana.token]]\n{mint}\nmax_per_tx = \"1 eth\"\n"), format!("key `rule[0](s).solana.token[0].max_per_tx`: \"1 eth\" {evm_unit}")),
        ("value in sol", format!("{evm_rule}max_value = {{ \"1\" = \"2 sol\" }}\n"), format!("key `rule[0](e).evm.max_value.1`: \"2 sol\" {sol_unit}")),
        ("gas price in lamports", format!("{evm_rule}max_fee_per_gas = \"100 lamports\"\n"), format!("key `rule[0](e).evm.max_fee_per_gas`: \"100 lamports\" {sol_unit}")),
        ("EVM window in sol", format!("{evm_rule}[[rule.evm.spend]]\nchain_id = 1\nwindow = \"1h\"\nmax = \"3 sol\"\n"), format!("key `rule[0](e).evm.spend[0].max`: \"3 sol\" {sol_unit}")),
        ("ERC-20 window in sol", format!("{evm_rule}[[rule.evm.token]]\n{usdc}\nwindow = \"1h\"\nmax_per_window = \"1 sol\"\n"), format!("key `rule[0](e).evm.token[0].max_per_window`: \"1 sol\" {sol_unit}")),
    ] {
        let p = c.file(policy.as_bytes(), 0o600);
        let args = vec!["policy".into(), "check".into(), p];
        c.push("config", &format!("policy check: {name}"), args, Vec::new(), 2, &says);
    }
    c.key_file(
        "a key an active wallet holds",
        held_key.as_bytes(),
        0o600,
        "already exists",
    );
    c.out
}

/// Configs that `serve` refuses before it opens the token, and `config check` with it:
/// each named file missing, of the wrong kind, too open or unparseable; each secret
/// unreadable; the settings serve cannot start without; an empty path; a log filter that
/// would hide keyward's own lines.
fn config_refused_at_start(c: &mut Cases<'_>, env: &Env) {
    let at = |name: &str| env.path(name).display().to_string();
    let (module, client_ca, crls) = (
        format!("module = \"{}\"", common::MODULE),
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\ncrls = [\"nope.crl\"]",
    );
    let webhook_tls =
        "[webhook]\nlisten = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"server.key\"";
    let no_such = "No such file or directory";
    type Edit = Box<dyn FnOnce(&str) -> String>;
    let r = |old: String, new: String| -> Edit { Box::new(move |t| replace(t, &old, &new)) };
    let s = |x: &str| x.to_owned();
    let append = |extra: String| -> Edit { Box::new(move |t| format!("{t}\n{extra}\n")) };
    let cases: Vec<(&str, Edit, i32, String)> = vec![
        // the module the token is opened with
        ("pkcs11.module missing", r(module.clone(), s("module = \"/nonexistent/libnope.so\"")), 2, format!("key `pkcs11.module`: /nonexistent/libnope.so: {no_such}")),
        ("pkcs11.module a directory", r(module.clone(), s("module = \"/usr/lib\"")), 2, s("key `pkcs11.module`: /usr/lib is a directory; expected the PKCS#11 module (.so)")),
        ("pkcs11.module empty", r(module.clone(), s("module = \"\"")), 2, s("key `pkcs11.module`: expected a path, got an empty string")),
        ("SOFTHSM2_CONF missing", r(s("pool_size = 4"), s("pool_size = 4\nenvironment = { SOFTHSM2_CONF = \"/nonexistent/softhsm2.conf\" }")), 2, format!("key `pkcs11.environment.SOFTHSM2_CONF`: /nonexistent/softhsm2.conf: {no_such}")),
        // the PIN
        ("pin file missing", r(s("pin = { file = \"pin\" }"), s("pin = { file = \"nope-pin\" }")), 2, format!("key `pkcs11.pin`: secret file {}: {no_such}", at("nope-pin"))),
        ("pin variable unset", r(s("pin = { file = \"pin\" }"), s("pin = { env = \"KEYWARD_CORPUS_UNSET_PIN\" }")), 2, s("key `pkcs11.pin`: environment variable KEYWARD_CORPUS_UNSET_PIN is not set")),
        ("pin file a directory", r(s("pin = { file = \"pin\" }"), format!("pin = {{ file = \"{}\" }}", env.dir.path().display())), 2, s("key `pkcs11.pin`: secret file")),
        // the database
        ("store.path empty", r(s("path = \"keyward.db\""), s("path = \"\"")), 2, s("key `store.path`: expected a path, got an empty string")),
        ("store.path a directory", r(s("path = \"keyward.db\""), s("path = \"/tmp\"")), 2, s("key `store.path`: /tmp is a directory; expected the SQLite database file")),
        ("store.path in no directory", r(s("path = \"keyward.db\""), s("path = \"no-such-dir/keyward.db\"")), 2, format!("key `store.path`: {} (the database's directory): {no_such}", at("no-such-dir"))),
        // the signing API's TLS material
        ("api.client_ca missing", r(s(client_ca), s("client_ca = [\"nope-ca.pem\"]")), 2, format!("key `api.client_ca[0]`: {}: {no_such}", at("nope-ca.pem"))),
        ("api.client_ca second missing", r(s(client_ca), s("client_ca = [\"ca.pem\", \"nope-ca.pem\"]")), 2, format!("key `api.client_ca[1]`: {}: {no_such}", at("nope-ca.pem"))),
        ("api.client_ca not set", r(s(client_ca), s("")), 2, s("key `api.client_ca`: is required to serve")),
        ("api.crls missing", r(s(client_ca), s(crls)), 2, format!("key `api.crls[0]`: {}: {no_such}", at("nope.crl"))),
        ("api.cert missing", r(s("cert = \"server.pem\""), s("cert = \"nope.pem\"")), 2, format!("key `api.cert`: {}: {no_such}", at("nope.pem"))),
        ("api.cert not set", r(s("cert = \"server.pem\"\n"), s("")), 2, s("key `api.cert`: is required to serve")),
        ("api.key missing", r(s("key = \"server.key\""), s("key = \"nope.key\"")), 2, format!("key `api.key`: {}: {no_such}", at("nope.key"))),
        ("api.key a directory", r(s("key = \"server.key\""), s("key = \"/tmp\"")), 2, s("key `api.key`: /tmp is a directory")),
        ("api.client_ca not PEM", r(s(client_ca), s("client_ca = [\"pin\"]")), 1, format!("api: {}: no PEM certificate found", at("pin"))),
        // the webhook face
        ("webhook.cert missing", r(s(webhook_tls), s("[webhook]\nlisten = \"127.0.0.1:0\"\ncert = \"nope.pem\"\nkey = \"server.key\"")), 2, format!("key `webhook.cert`: {}: {no_such}", at("nope.pem"))),
        ("webhook.key missing", r(s(webhook_tls), s("[webhook]\nlisten = \"127.0.0.1:0\"\ncert = \"server.pem\"\nkey = \"nope.key\"")), 2, format!("key `webhook.key`: {}: {no_such}", at("nope.key"))),
        ("webhook.key not set", r(s(webhook_tls), s("[webhook]\nlisten = \"127.0.0.1:0\"\ncert = \"server.pem\"")), 2, s("key `webhook.key`: is required to serve")),
        ("webhook secret file missing", r(s("secrets = [{ file = \"webhook-secret\" }]"), s("secrets = [{ file = \"webhook-secret\" }, { file = \"nope-secret\" }]")), 2, format!("key `webhook.secrets[1]`: secret file {}: {no_such}", at("nope-secret"))),
        // the policy, the node, the log filter
        ("policy.file missing", append(s("[policy]\nfile = \"nope-policy.toml\"")), 2, format!("key `policy.file`: {}: cannot read: {no_such}", at("nope-policy.toml"))),
        ("rpc.upstream_ca missing", append(s("[rpc]\nupstream = \"https://node.example\"\nupstream_ca = \"nope-ca.pem\"")), 2, format!("key `rpc.upstream_ca`: expected a PEM CA bundle: {}: {no_such}", at("nope-ca.pem"))),
        ("rpc.forward_methods a signing method", append(s("[rpc]\nforward_methods = [\"eth_call\", \"eth_signTransaction\"]")), 2, s("key `rpc.forward_methods`: \"eth_signTransaction\" is never forwarded")),
        ("rpc.forward_methods eth_decrypt", append(s("[rpc]\nforward_methods = [\"eth_decrypt\"]")), 2, s("key `rpc.forward_methods`: \"eth_decrypt\" is never forwarded")),
        ("rpc.forward_methods with a space", append(s("[rpc]\nforward_methods = [\"eth_call \"]")), 2, s("key `rpc.forward_methods`: entry 0: expected a method name")),
        ("rpc.max_upstream_response_bytes too small", append(s("[rpc]\nmax_upstream_response_bytes = 1024")), 2, s("key `rpc.max_upstream_response_bytes`: expected a byte count from 65536")),
        ("rpc.max_upstream_inflight_bytes below one request's", append(s("[rpc]\nmax_upstream_response_bytes = 2097152\nmax_upstream_inflight_bytes = 1048576")), 2, s("key `rpc.max_upstream_inflight_bytes`: is smaller than rpc.max_upstream_response_bytes")),
        ("rpc.max_upstream_inflight_bytes not a number", append(s("[rpc]\nmax_upstream_inflight_bytes = \"64 MiB\"")), 2, s("key `rpc.max_upstream_inflight_bytes`: invalid type: string \"64 MiB\", expected usize")),
        ("log.level not a level", append(s("[log]\nlevel = \"verbose\"")), 2, s("key `log.level`: \"verbose\" is not a level")),
        ("log.level bad directive", append(s("[log]\nlevel = \"info,keyward=loud\"")), 2, s("key `log.level`: \"info,keyward=loud\" does not parse")),
        ("log.level empty", append(s("[log]\nlevel = \"\"")), 2, s("key `log.level`: is empty")),
    ];
    for (name, edit, exit, says) in cases {
        c.both(name, edit, exit, &says);
    }
    // modes and owners: a secret too open is a secret that does not read (2); a file
    // that is not secret but too open is refused by the start-up hardening (1)
    let pin = c.file(b"pin-readable-by-others\n", 0o644);
    let says = format!("key `pkcs11.pin`: secret file {pin} has mode 0644");
    c.both(
        "pin file mode 0644",
        move |t| {
            replace(
                t,
                "pin = { file = \"pin\" }",
                &format!("pin = {{ file = \"{pin}\" }}"),
            )
        },
        2,
        &says,
    );
    let secret = c.file(b"secret-readable-by-group", 0o640);
    let says = format!("key `webhook.secrets[0]`: secret file {secret} has mode 0640");
    c.both(
        "webhook secret mode 0640",
        move |t| {
            replace(
                t,
                "secrets = [{ file = \"webhook-secret\" }]",
                &format!("secrets = [{{ file = \"{secret}\" }}]"),
            )
        },
        2,
        &says,
    );
    let ca = c.file(env.pki.ca.cert_pem.as_bytes(), 0o664);
    let says = format!("refusing to start: {ca} (mode 0664, owner uid");
    c.both(
        "client CA group-writable",
        move |t| {
            replace(
                t,
                "client_ca = [\"ca.pem\"]",
                &format!("client_ca = [\"{ca}\"]"),
            )
        },
        1,
        &says,
    );
    let p = c.edited(
        "config 0644",
        |t| format!("{t}\n# readable by others\n"),
        0o644,
    );
    c.check_and_serve(
        "config file mode 0644",
        &p,
        1,
        &format!("refusing to start: {p} has mode 0644"),
    );
}

/// Every token object's label and kind, for "the token did not change".
fn token_objects(env: &Env) -> String {
    keyward_ok(env, &["keys", "list"])
}

#[test]
fn every_bad_command_exits_with_its_status_says_why_and_changes_nothing() {
    let env = Env::new();
    keyward_ok(&env, &["init"]);
    keyward_ok(
        &env,
        &["wallets", "create", "--chain", "solana", "--label", "w"],
    );
    let held = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
    let key_file = env.path("held.key");
    keyward::pki::write_private(&key_file, held).unwrap();
    let kf = key_file.display().to_string();
    keyward_ok(
        &env,
        &["wallets", "import", "--chain", "evm", "--key-file", &kf],
    );
    keyward_ok(&env, &["lock", "--reason", "corpus"]);
    keyward_ok(&env, &["unlock"]);
    let db = env.config().store.path;
    // a `serve` that gets past its checks stops here instead of serving
    let _claim = keyward::store::service_lock::claim(&db).unwrap();
    let cases = corpus(&env, held);
    let objects = token_objects(&env);
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        let what = format!("[{}] {} ({})", case.class, case.name, case.args.join(" "));
        let before = common::store::dump(&db);
        let mut child = bin()
            .args(&case.args)
            .env_remove("KEYWARD_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&case.stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        *per_class.entry(case.class).or_default() += 1;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(case.exit) {
            failures.push(format!(
                "{what}: want exit {}, got {:?}: {stderr:.300}",
                case.exit,
                out.status.code()
            ));
        } else if !stderr.contains(&case.says) {
            failures.push(format!(
                "{what}: stderr lacks {:?}: {stderr:.300}",
                case.says
            ));
        }
        if stderr.contains("panicked") {
            failures.push(format!("{what}: panicked: {stderr}"));
        }
        // `config check` prints the effective (redacted) config before it checks the
        // files; every other refusal (`serve` included) prints nothing on stdout
        if !stdout.is_empty() && case.class != "config" {
            failures.push(format!("{what}: stdout not empty: {:.120?}", stdout));
        }
        if common::store::dump(&db) != before {
            failures.push(format!("{what}: the database changed"));
        }
        for secret in [common::USER_PIN, common::HMAC_SECRET, held] {
            if stderr.contains(secret) {
                failures.push(format!("{what}: a secret in the error"));
            }
        }
    }
    common::assert_no_failures(&failures, cases.len());
    assert_eq!(
        token_objects(&env),
        objects,
        "a refused command changed the token"
    );
    let total: usize = per_class.values().sum();
    eprintln!(
        "bad-input corpus (CLI): {total} cases {per_class:?} in {:?}",
        started.elapsed()
    );
}
