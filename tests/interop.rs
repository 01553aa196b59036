//! The JSON-RPC face with the real client libraries: ethers v6, viem and web3.py sign
//! through keyward over mTLS, each verifying with its own recovery, and transactions sent
//! through keyward are mined by a real Ethereum node (ganache, on 127.0.0.1, stopped
//! after). Needs node and python3 with the clients installed: `scripts/interop` installs
//! them (tests/interop/package.json, requirements.txt) into `KEYWARD_INTEROP_DIR` and runs
//! this test, and `scripts/test` runs `scripts/interop`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::rpc::{EVM_CLIENT, SHORT_MESSAGES};
use keyward::store::audit;
use keyward::store::wallets::Chain;

/// Ganache's deterministic account 0 (funded; ganache runs with its accounts locked, so
/// only keyward can sign for it).
const GANACHE_KEY: &str = "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";
const GANACHE_CHAIN_ID: u64 = 1337;

/// Kills the child (ganache) when the test ends, however it ends.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls the node until it answers (bounded: a node that never comes up fails the test).
fn wait_for_node(port: u16) {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    for _ in 0..240 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!(
                "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut out = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut out).is_ok()
                && out.contains("\"result\"")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("ganache did not answer on 127.0.0.1:{port}");
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {what}\n{stdout}{stderr}");
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}\n{stderr}",
        out.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node and python3 with the client libraries: run by scripts/interop"]
async fn ethers_viem_and_web3py_sign_through_keyward() {
    let dir = PathBuf::from(
        std::env::var("KEYWARD_INTEROP_DIR").expect("KEYWARD_INTEROP_DIR (set by scripts/interop)"),
    );
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    // ESM resolves packages next to the script: the script runs from the install folder
    std::fs::copy(here.join("clients.mjs"), dir.join("clients.mjs")).unwrap();

    let node_port = free_port();
    let ganache = Command::new("node")
        .arg(dir.join("node_modules/ganache/dist/node/cli.js"))
        .args([
            "--server.host=127.0.0.1",
            &format!("--server.port={node_port}"),
            "--wallet.deterministic",
            "--wallet.lock",
            &format!("--chain.chainId={GANACHE_CHAIN_ID}"),
            "--logging.quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ganache");
    let _ganache = Reap(ganache);
    wait_for_node(node_port);

    let s = common::api::start(&format!(
        "{EVM_CLIENT}{SHORT_MESSAGES}\n[rpc]\nupstream = \"http://127.0.0.1:{node_port}\"\n"
    ))
    .await;
    let (env, app) = (&s.env, &s.app);
    let wallet = s.import(Chain::Evm, GANACHE_KEY, None);
    let address = wallet.address.clone().unwrap();
    let port = s.addr.port();
    let cert = env.path("client.pem");
    let key = env.path("client.key");
    keyward::pki::write_private(&cert, &env.pki.client.cert_pem).unwrap();
    keyward::pki::write_private(&key, &env.pki.client.key_pem).unwrap();
    let vars = [
        ("KW_URL", format!("https://127.0.0.1:{port}/v1/rpc")),
        ("KW_CA", env.path("ca.pem").display().to_string()),
        ("KW_CERT", cert.display().to_string()),
        ("KW_KEY", key.display().to_string()),
        ("KW_ADDRESS", address.clone()),
        ("KW_CHAIN_ID", GANACHE_CHAIN_ID.to_string()),
    ];

    // the clients block on keyward, which serves on this runtime: run them off it
    let (d, v) = (dir.clone(), vars.clone());
    tokio::task::spawn_blocking(move || {
        run(
            "ethers + viem",
            Command::new("node").arg(d.join("clients.mjs")).envs(v),
        )
    })
    .await
    .unwrap();
    let (d, v, script) = (dir.clone(), vars.clone(), here.join("web3_client.py"));
    tokio::task::spawn_blocking(move || {
        run(
            "web3.py",
            Command::new(d.join("venv/bin/python")).arg(script).envs(v),
        )
    })
    .await
    .unwrap();

    // every signature went through the decision path and its audit record
    let records = app
        .store
        .read(|c| {
            c.rows(
                "SELECT result, detail FROM audit WHERE action = 'sign' ORDER BY seq",
                &[],
            )?
            .into_iter()
            .map(|mut r| Ok((r.text(0)?, r.text(1)?)))
            .collect::<Result<Vec<_>, keyward::store::StoreError>>()
        })
        .unwrap();
    let count = |method: &str, result: &str| {
        records
            .iter()
            .filter(|(r, d)| r == result && d.contains(&format!("\"rpcMethod\":\"{method}\"")))
            .count()
    };
    assert_eq!(
        count("eth_sendTransaction", "ok"),
        2,
        "ethers and viem each sent one"
    );
    assert!(count("personal_sign", "ok") >= 2);
    assert!(count("eth_sign", "ok") >= 1, "web3.py's eth.sign");
    assert!(count("eth_signTypedData_v4", "ok") >= 2);
    assert!(
        count("eth_signTypedData", "ok") >= 1,
        "web3.py's eth.sign_typed_data"
    );
    assert!(count("eth_signTransaction", "ok") >= 4);
    assert_eq!(
        count("personal_sign", "policy_denied") + count("eth_sign", "policy_denied"),
        3
    );
    assert!(records.iter().all(|(_, d)| d.contains("\"face\":\"rpc\"")));
    assert!(app.store.read(audit::verify).unwrap().is_ok());
}

/// The TypeScript client kit (clients/ts: a viem account and an @solana/kit signer) against
/// keyward and a ganache node: its `node --test` suite (clients/ts/test) signs through the
/// kit and checks every signature with viem's and @solana/kit's own verifiers; viem's
/// wallet client sends a transaction ganache mines. `scripts/interop` installs the kit's
/// locked dependencies and builds it into `KEYWARD_INTEROP_DIR/kit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node with the kit's dependencies: run by scripts/interop"]
async fn typescript_client_kit_signs_through_keyward() {
    use common::kits::{CONFIG, EVM_KEY, SOLANA_SEED};
    use keyward::pki::{write_private, Validity};

    let dir = PathBuf::from(
        std::env::var("KEYWARD_INTEROP_DIR").expect("KEYWARD_INTEROP_DIR (set by scripts/interop)"),
    )
    .join("kit");
    let node_port = free_port();
    let ganache = Command::new("node")
        .arg(dir.join("node_modules/ganache/dist/node/cli.js"))
        .args([
            "--server.host=127.0.0.1",
            &format!("--server.port={node_port}"),
            "--wallet.deterministic",
            "--wallet.lock",
            &format!("--chain.chainId={GANACHE_CHAIN_ID}"),
            "--logging.quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ganache");
    let _ganache = Reap(ganache);
    wait_for_node(node_port);

    let s = common::api::start(CONFIG).await;
    let (env, app) = (&s.env, &s.app);
    let evm = s.import(Chain::Evm, EVM_KEY, None);
    let sol = s.import(Chain::Solana, SOLANA_SEED, None);
    let foreign = env
        .pki
        .other_ca
        .client("test-client", None, Validity::Current, 41)
        .unwrap();
    let file = |name: &str, pem: &str| {
        let p = env.path(name);
        write_private(&p, pem).unwrap();
        p.display().to_string()
    };
    let vars = [
        (
            "KEYWARD_URL",
            format!("https://127.0.0.1:{}", s.addr.port()),
        ),
        ("KEYWARD_CA", file("kit-ca.pem", &env.pki.ca.cert_pem)),
        (
            "KEYWARD_CERT",
            file("kit-client.pem", &env.pki.client.cert_pem),
        ),
        (
            "KEYWARD_KEY",
            file("kit-client.key", &env.pki.client.key_pem),
        ),
        (
            "KEYWARD_FOREIGN_CA",
            file("kit-foreign-ca.pem", &env.pki.other_ca.cert_pem),
        ),
        (
            "KEYWARD_FOREIGN_CERT",
            file("kit-foreign.pem", &foreign.cert_pem),
        ),
        (
            "KEYWARD_FOREIGN_KEY",
            file("kit-foreign.key", &foreign.key_pem),
        ),
        ("KEYWARD_WALLET", evm.id.clone()),
        ("KEYWARD_SOLANA_WALLET", sol.id.clone()),
        ("CHAIN_ID", GANACHE_CHAIN_ID.to_string()),
        ("RPC_URL", format!("http://127.0.0.1:{node_port}")),
    ];

    // node blocks on keyward, which serves on this runtime: run it off it
    tokio::task::spawn_blocking(move || {
        run(
            "TypeScript kit (node --test)",
            Command::new("node")
                .args(["--test", "dist/test/kit.test.js"])
                .current_dir(&dir)
                .envs(vars),
        )
    })
    .await
    .unwrap();

    // each kind went through its own sign route (never evm/hash) and its audit record
    let ops = common::store::audit_since(app.store.path().unwrap(), 0);
    let count = |op: &str, result: &str| {
        ops.iter()
            .filter(|r| {
                r.action == "sign" && r.operation.as_deref() == Some(op) && r.result == result
            })
            .count()
    };
    assert_eq!(count("evm.message", "ok"), 3, "three signMessage calls");
    assert_eq!(count("evm.typed_data", "ok"), 1);
    assert_eq!(
        count("evm.transaction", "ok"),
        4,
        "three signTransaction calls and the wallet client's"
    );
    assert_eq!(count("evm.transaction", "policy_denied"), 1);
    assert_eq!(count("evm.hash", "ok"), 0);
    assert_eq!(count("solana.transaction", "ok"), 1);
    assert_eq!(count("solana.message", "ok"), 1);
    assert!(app.store.read(audit::verify).unwrap().is_ok());
}
