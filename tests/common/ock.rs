//! opencryptoki's soft token (Debian's `opencryptoki` package), a second real PKCS#11
//! implementation next to SoftHSM2: its slot daemon, started when it is not running, and
//! one token in slot 3 (the soft token in Debian's default opencryptoki.conf), initialised
//! once per machine with the fixed PINs below. It has no AES-GCM (3.8.1: AES ECB/CBC
//! only), so keyward must refuse it at start by name.
//!
//! The token is machine-wide state (opencryptoki keeps it in /var/lib/opencryptoki):
//! every use goes through [`token`], which serialises set-up.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

pub const MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so";
pub const LABEL: &str = "keyward-ock";
pub const SLOT: &str = "3";
pub const SO_PIN: &str = "52719384";
pub const USER_PIN: &str = "84736251";
const DEFAULT_SO_PIN: &str = "87654321";

fn pkcsconf(args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("pkcsconf")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pkcsconf (scripts/test installs opencryptoki)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Makes sure the slot daemon runs and the token is initialised; returns the module path.
pub fn token() -> &'static str {
    static SETUP: Mutex<bool> = Mutex::new(false);
    let mut done = SETUP.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return MODULE;
    }
    assert!(
        Path::new(MODULE).exists(),
        "{MODULE} is missing: scripts/test installs Debian's opencryptoki"
    );
    // the package makes its state directories with systemd-tmpfiles at install; a
    // machine without it (a container) gets them here
    let _ = Command::new("systemd-tmpfiles")
        .args(["--create", "opencryptoki.conf"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    for dir in [
        "/var/lib/opencryptoki/swtok/TOK_OBJ",
        "/var/lock/opencryptoki/swtok",
        "/run/lock/opencryptoki/swtok",
    ] {
        let _ = std::fs::create_dir_all(dir);
    }
    let running = Command::new("pgrep")
        .args(["-x", "pkcsslotd"])
        .status()
        .is_ok_and(|s| s.success());
    if !running {
        let s = Command::new("pkcsslotd")
            .status()
            .expect("pkcsslotd starts");
        assert!(s.success(), "pkcsslotd: {s:?}");
    }
    let (ok, info) = pkcsconf(&["-t", "-c", SLOT], "");
    assert!(ok, "pkcsconf -t: {info}");
    if !info.contains("TOKEN_INITIALIZED") {
        let (ok, out) = pkcsconf(
            &["-I", "-c", SLOT, "-S", DEFAULT_SO_PIN],
            &format!("{LABEL}\n"),
        );
        assert!(ok, "token init: {out}");
        let (ok, out) = pkcsconf(&["-P", "-c", SLOT, "-S", DEFAULT_SO_PIN, "-n", SO_PIN], "");
        assert!(ok, "SO PIN: {out}");
        let (ok, out) = pkcsconf(&["-u", "-c", SLOT, "-S", SO_PIN, "-n", USER_PIN], "");
        assert!(ok, "user PIN: {out}");
    } else {
        assert!(
            info.contains(LABEL),
            "slot {SLOT} of opencryptoki holds another token than {LABEL}: {info}"
        );
    }
    *done = true;
    MODULE
}
