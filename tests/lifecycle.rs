//! The daemon as an operator runs it: refusal on open permissions, readiness, metrics,
//! SIGTERM; and the resumable rewrap surviving kill -9.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use keyward::store::wallets::Chain;

use common::daemon::{bin, http_get};

/// Kills the daemon if the test fails half-way, so no server outlives its test.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    line[start..].split_whitespace().next()
}

#[test]
fn serve_hardens_reports_ready_and_stops_on_sigterm() {
    let env = Env::new();
    let cfg = env.config_path.to_str().unwrap().to_owned();
    assert!(bin()
        .args(["init", "--config", &cfg])
        .output()
        .unwrap()
        .status
        .success());

    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = bin().args(["serve", "--config", &cfg]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("refusing to start") && msg.contains("0644") && msg.contains(&cfg),
        "{msg}"
    );

    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = Reaped(
        bin()
            .args(["serve", "--config", &cfg])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let admin = loop {
        assert!(Instant::now() < deadline, "no ready line");
        let Some(line) = lines.next() else {
            panic!("serve exited early: {:?}", child.wait());
        };
        let line = line.unwrap();
        eprintln!("serve: {line}");
        if line.contains("keyward ready") {
            break field(&line, "admin")
                .expect("admin address logged")
                .to_owned();
        }
    };
    assert_eq!(http_get(&admin, "/healthz").0, 200);
    let (status, body) = http_get(&admin, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&admin, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("keyward_token_sessions"), "{body}");

    // a core dump limit of zero and not dumpable: read back from /proc
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(core.split_whitespace().any(|w| w == "0"), "{core}");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn rewrap_resumes_after_kill_9() {
    let env = Env::new();
    let cfg = env.config_path.to_str().unwrap().to_owned();
    let ids: Vec<String> = {
        let app = env.appliance();
        (0..400)
            .map(|i| {
                let chain = if i % 2 == 0 {
                    Chain::Evm
                } else {
                    Chain::Solana
                };
                keyward::wallets::create(&app, chain, None).unwrap().id
            })
            .collect()
    };
    assert!(bin()
        .args(["keys", "rotate-wrapping", "--config", &cfg])
        .output()
        .unwrap()
        .status
        .success());

    let mut child = bin()
        .args(["wallets", "rewrap", "--config", &cfg])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // progress lines come every 100 wallets; kill in the middle
    loop {
        let line = lines
            .next()
            .expect("rewrap ended before any progress")
            .unwrap();
        if line.starts_with("rewrapped 100/") {
            break;
        }
    }
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();

    let second = bin()
        .args(["wallets", "rewrap", "--config", &cfg])
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let resumed = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(
        !resumed.contains("rewrapped 400 "),
        "the second run resumed, it did not start over: {resumed}"
    );

    let app = env.appliance();
    let all = keyward::wallets::list(&app).unwrap();
    assert_eq!(all.len(), ids.len(), "no wallet lost");
    for w in &all {
        assert_eq!(
            w.key_version,
            Some(2),
            "{} still on {:?}",
            w.id,
            w.key_version
        );
        let b = keyward::custody::Binding {
            wallet_id: &w.id,
            chain: w.chain.as_str(),
            purpose: keyward::custody::Purpose::Share,
        };
        let secret =
            keyward::custody::unwrap(&app.token, &b, w.wrapped_share.as_ref().unwrap()).unwrap();
        assert_eq!(
            keyward::wallet_key::address_of_secret(w.chain, secret.expose()).unwrap(),
            w.address.clone().unwrap()
        );
    }
    assert_eq!(
        app.store
            .read(keyward::store::audit::verify)
            .unwrap()
            .map(|n| n >= 400),
        Ok(true)
    );
    let retire = bin()
        .args(["keys", "retire", "keyward-wrap-1", "--config", &cfg])
        .output()
        .unwrap();
    assert!(
        retire.status.success(),
        "{}",
        String::from_utf8_lossy(&retire.stderr)
    );
}

fn mtls_get(env: &Env, addr: &str, path: &str) -> Result<u16, String> {
    common::mtls_request(env, addr, "GET", path, None).map(|(status, _)| status)
}

#[test]
fn sighup_reloads_crls_and_refuses_a_broken_config() {
    let env = Env::new();
    let cfg = env.config_path.to_str().unwrap().to_owned();
    assert!(bin()
        .args(["init", "--config", &cfg])
        .output()
        .unwrap()
        .status
        .success());
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let original = std::fs::read_to_string(&env.config_path).unwrap();
    let mut child = Reaped(
        bin()
            .args(["serve", "--config", &cfg])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let mut wait_for = |needle: &str| -> String {
        loop {
            let line = lines.next().expect("serve exited").unwrap();
            if line.contains(needle) {
                return line;
            }
        }
    };
    let ready = wait_for("keyward ready");
    let api = field(&ready, "api").unwrap().to_owned();
    assert_eq!(mtls_get(&env, &api, "/v1/whoami"), Ok(200));

    // a broken file is refused and the running config stays
    std::fs::write(
        &env.config_path,
        original.replace("pool_size = 4", "pool_size = \"four\""),
    )
    .unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let refused = wait_for("reload");
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(mtls_get(&env, &api, "/v1/whoami"), Ok(200));

    // a CRL revoking the client certificate takes effect for new connections
    keyward::pki::write_private(
        &env.path("crl.pem"),
        &env.pki.ca.crl(&[env.pki.client.serial]).unwrap(),
    )
    .unwrap();
    let with_crl = original.replace(
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\ncrls = [\"crl.pem\"]",
    );
    assert_ne!(with_crl, original);
    std::fs::write(&env.config_path, with_crl).unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let done = wait_for("reload");
    assert!(done.contains("reloaded"), "{done}");
    assert!(
        mtls_get(&env, &api, "/v1/whoami").is_err(),
        "revoked client still accepted"
    );
}

#[test]
fn a_restored_backup_signs() {
    let env = Env::new();
    let cfg = env.config_path.to_str().unwrap().to_owned();
    let wallet = {
        let app = env.appliance();
        keyward::wallets::create(&app, Chain::Evm, Some("hot")).unwrap()
    };
    let backup = env.path("backup.db");
    let out = bin()
        .args(["backup", "--config", &cfg, "--to", backup.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // restore: the original database is lost, the backup takes its place
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("keyward.db{suffix}")));
    }
    std::fs::copy(&backup, env.path("keyward.db")).unwrap();
    let app = keyward::appliance::Appliance::open(env.config()).unwrap();
    let restored = keyward::wallets::get(&app, &wallet.id)
        .unwrap()
        .expect("wallet restored");
    let signer = keyward::signer::Signer::new(app.token.clone());
    let digest = keyward::chains::evm::personal_message_digest(b"after restore");
    let sig = signer.sign_evm_digest(&restored, &digest).unwrap();
    let recovered = keyward::chains::evm::recover_address(&digest, &sig).unwrap();
    assert_eq!(format!("{recovered:#x}"), wallet.address.unwrap());
    assert_eq!(
        app.store.read(keyward::store::audit::verify).unwrap(),
        Ok(1)
    );
}
