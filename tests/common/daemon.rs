//! A real `keyward serve` process for tests that drive the appliance as an operator does:
//! started from the built binary, its log captured, stopped (and reaped) on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Env;

/// The `keyward` binary with a clean log environment. `option_env!`: the client kit's tests
/// (clients/rust, another package) include this harness too, and cargo names the binary
/// only to this package's tests; they never start a daemon process.
pub fn bin() -> Command {
    let Some(exe) = option_env!("CARGO_BIN_EXE_keyward") else {
        panic!("the keyward binary is built for this package's tests only")
    };
    let mut c = Command::new(exe);
    c.env_remove("RUST_LOG");
    c
}

/// Runs `keyward ARGS --config <env's config>`.
pub fn keyward(env: &Env, args: &[&str]) -> Output {
    let cfg = env.config_path.to_str().unwrap();
    bin()
        .args(args)
        .args(["--config", cfg])
        .stdin(Stdio::null())
        .output()
        .expect("keyward runs")
}

/// Like [`keyward`], and fails the test unless the command succeeded.
pub fn keyward_ok(env: &Env, args: &[&str]) -> String {
    let out = keyward(env, args);
    assert!(
        out.status.success(),
        "keyward {args:?} failed ({:?}): {}",
        out.status,
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's stdout and stderr, as one text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A plain-HTTP GET (the admin listener): status and the whole response text.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    (status, out)
}

/// `keyward simulate delegation|revoke --chain evm` against the daemon, whatever it
/// answers.
pub fn simulate_output(env: &Env, d: &Daemon, kind: &str, wallet: Option<&str>) -> Output {
    let url = d.webhook_url();
    let ca = env.path("ca.pem");
    let mut args = vec![
        "simulate",
        kind,
        "--chain",
        "evm",
        "--to",
        &url,
        "--ca",
        ca.to_str().unwrap(),
    ];
    if let Some(w) = wallet {
        args.extend(["--wallet-id", w]);
    }
    keyward(env, &args)
}

/// `keyward simulate delegation|revoke` against the daemon; returns the wallet id.
pub fn simulate(env: &Env, d: &Daemon, kind: &str, wallet: Option<&str>) -> String {
    let out = simulate_output(env, d, kind, wallet);
    assert!(
        out.status.success(),
        "keyward simulate {kind} failed ({:?}): {}",
        out.status,
        text(&out)
    );
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.contains("-> https://") && out.contains(" 200"), "{out}");
    out.lines()
        .find_map(|l| l.strip_prefix("wallet "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no wallet in {out}"))
        .to_owned()
}

/// The JSON body of an HTTP answer's whole text.
pub fn json_of(text: &str) -> serde_json::Value {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `(status, error code or "")` of an EIP-191 sign request for `wallet` to the daemon.
pub fn sign(env: &Env, d: &Daemon, wallet: &str) -> (u16, String) {
    let (status, text) = super::https::mtls_request(
        env,
        &d.api,
        "POST",
        &format!("/v1/wallets/{wallet}/evm/message"),
        Some(r#"{"message":"live operations"}"#),
    )
    .expect("the signing API answers");
    let body = json_of(&text);
    if status == 200 {
        assert!(body["signature"].is_string(), "{body}");
        assert!(body["auditId"].is_string(), "{body}");
    }
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    (status, code)
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// Signing API address.
    pub api: String,
    /// Webhook face address.
    pub webhook: String,
    /// Admin address.
    pub admin: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..].split_whitespace().next().map(str::to_owned)
}

impl Daemon {
    /// `keyward init` (idempotent), then `keyward serve` until its ready line.
    pub fn start(env: &Env) -> Daemon {
        Daemon::start_with_env(env, &[])
    }

    /// [`Daemon::start`] with `vars` in the server's environment.
    pub fn start_with_env(env: &Env, vars: &[(&str, &str)]) -> Daemon {
        std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        keyward_ok(env, &["init"]);
        let mut child = bin()
            .args(["serve", "--config", env.config_path.to_str().unwrap()])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("keyward ready") {
                    let _ = ready_tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "serve never logged ready: {:?}\n{}",
                    child.wait(),
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Daemon {
            api: field(&line, "api").expect("api address"),
            webhook: field(&line, "webhook").expect("webhook address"),
            admin: field(&line, "admin").expect("admin address"),
            child,
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The webhook URL, for `keyward simulate --to`.
    pub fn webhook_url(&self) -> String {
        format!("https://{}/webhooks/dynamic", self.webhook)
    }

    /// Waits (bounded) until the log holds `needle`; fails the test with the whole log
    /// when it does not come within `within`.
    pub fn expect_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the `n`th log line (1-based) containing `needle`, and
    /// returns it; `None` when it did not come within `within`.
    pub fn wait_for_nth(&self, needle: &str, n: usize, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .nth(n - 1)
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits (bounded) for the process to exit; fails the test if
    /// it is still running after `within`.
    pub fn stop(&mut self, signal: &str, within: Duration) -> std::process::ExitStatus {
        self.signal(signal);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after SIG{signal}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reaps it: no drain, no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().expect("reaped");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }

    /// Sends `signal` (e.g. "HUP") to the daemon.
    pub fn signal(&self, signal: &str) {
        use rustix::process::{kill_process, Pid, Signal};
        let sig = match signal {
            "HUP" => Signal::HUP,
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "KILL" => Signal::KILL,
            other => panic!("no signal {other}"),
        };
        // sent from this process (no `kill` to spawn): as soon after "ready" as it gets
        let pid = Pid::from_raw(self.pid() as i32).expect("a pid");
        kill_process(pid, sig).unwrap_or_else(|e| panic!("kill -{signal}: {e}"));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
