//! `keyward-load`: the in-repo load generator behind `scripts/bench`.
//!
//! Subcommands:
//! - `setup`: creates wallets straight through the library (wrapped in the token, stored
//!   with their audit records in batched transactions) and writes `wallets.tsv` and the
//!   webhook RSA public key (`rsa-public.pem`, `rsa-kid`) into a state directory.
//! - `ports`: prints free loopback ports for a config.
//! - `ready`: waits for the admin `/readyz` and prints how long it took.
//! - `run`: drives the signing API and the webhook face over TLS on loopback (keep-alive,
//!   N connections, bounded duration) and prints, per scenario, a table row and one JSON
//!   line with throughput, latency percentiles, errors, server CPU per request (from
//!   `/proc/<pid>/stat`), server context switches per request (all threads, from
//!   `/proc/<pid>/task/*/status`) and server RSS (from `/proc/<pid>/status`); the server's
//!   child processes are counted with it; and, from keyward's admin `/metrics`, the
//!   store's group commits per second, their mean latency, requests per commit and the
//!   fraction of the time the writer thread spent committing.
//! - `run --target https://IP:PORT/path --cert --key --ca --body FILE`: the same
//!   generator against any mTLS signer (a peer keyward is compared with): one row,
//!   the same POST on every request, only 200 counts.
//!
//! It refuses any target that is not a loopback address.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use keyward::appliance::Appliance;
use keyward::config::Config;
use keyward::simulator::{Delivery, Simulator};
use keyward::store::wallets::{Chain, Source, Wallet};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use secrecy::SecretString;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

#[derive(Parser)]
#[command(
    name = "keyward-load",
    about = "keyward load generator (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create wallets through the library and write the state directory.
    Setup {
        /// keyward config.
        #[arg(long)]
        config: PathBuf,
        /// Wallets to create (alternating EVM and Solana).
        #[arg(long, default_value_t = 1000)]
        wallets: usize,
        /// Where wallets.tsv and the RSA public key go.
        #[arg(long)]
        state: PathBuf,
    },
    /// Print COUNT free loopback TCP ports, one per line.
    Ports {
        /// How many.
        #[arg(long, default_value_t = 3)]
        count: usize,
    },
    /// Wait until GET http://ADMIN/readyz answers 200; print the milliseconds waited.
    Ready {
        /// Admin address (loopback).
        #[arg(long)]
        admin: SocketAddr,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Run scenarios against a serving keyward, or (--target) against any mTLS signer.
    Run(Box<RunArgs>),
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// keyward config (addresses, webhook path and secret).
    #[arg(long, required_unless_present = "target", conflicts_with = "target")]
    config: Option<PathBuf>,
    /// Directory with client.pem, client.key and ca.pem.
    #[arg(long, required_unless_present = "target", conflicts_with = "target")]
    pki: Option<PathBuf>,
    /// State directory written by `setup`.
    #[arg(long, required_unless_present = "target", conflicts_with = "target")]
    state: Option<PathBuf>,
    /// Measure any mTLS signer instead of keyward: POST the --body file to this
    /// `https://` URL on loopback (e.g. https://127.0.0.1:8443/sign) with the same
    /// connections, duration and statistics. Only a 200 answer counts as a success.
    #[arg(long, requires_all = ["cert", "key", "ca", "body"])]
    target: Option<String>,
    /// With --target: the client certificate chain (PEM).
    #[arg(long, requires = "target")]
    cert: Option<PathBuf>,
    /// With --target: the client private key (PEM).
    #[arg(long, requires = "target")]
    key: Option<PathBuf>,
    /// With --target: the CA the server certificate must chain to (PEM); the certificate
    /// must name the target's IP address.
    #[arg(long, requires = "target")]
    ca: Option<PathBuf>,
    /// With --target: the request body, sent as application/json on every request.
    #[arg(long, requires = "target")]
    body: Option<PathBuf>,
    /// With --target: the row's name in the output (default `target`).
    #[arg(long, requires = "target")]
    name: Option<String>,
    /// The server's pid (for CPU, context switches and RSS; its child processes, e.g.
    /// node:cluster workers, are counted with it).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// A scenario name, or `all`.
    #[arg(long, default_value = "all", conflicts_with = "target")]
    scenario: String,
}

const SCENARIOS: &[&str] = &[
    "noop",
    "evm-message",
    "evm-typed-data",
    "evm-tx-1559",
    "solana-tx",
    "webhook-created",
    "webhook-replay",
    "handshake",
];

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = match cli.cmd {
        Cmd::Setup {
            config,
            wallets,
            state,
        } => setup(&config, wallets, &state),
        Cmd::Ports { count } => ports(count),
        Cmd::Ready { admin, timeout } => rt.block_on(ready(admin, timeout)),
        Cmd::Run(args) => rt.block_on(run(*args)),
    };
    if let Err(e) = r {
        eprintln!("keyward-load: {e}");
        std::process::exit(1);
    }
}

fn require_loopback(what: &str, addr: &SocketAddr) -> Res<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(
            format!("{what} {addr} is not a loopback address; keyward-load only targets loopback")
                .into(),
        )
    }
}

/// The address to connect to for a listen address (unspecified → 127.0.0.1).
fn target(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), listen.port())
    } else {
        listen
    }
}

// ---------------------------------------------------------------- setup

fn setup(config: &Path, n: usize, state: &Path) -> Res<()> {
    let config = Config::load(config)?;
    let app = Appliance::open(config)?;
    std::fs::create_dir_all(state)?;
    let rsa = app.token.rsa_keys()?;
    let newest = rsa
        .last()
        .ok_or("no RSA key in the token (run keyward init)")?;
    let public = newest
        .public
        .as_ref()
        .ok_or("RSA key without public part")?;
    std::fs::write(
        state.join("rsa-public.pem"),
        public.to_public_key_pem(rsa::pkcs8::LineEnding::LF)?,
    )?;
    std::fs::write(
        state.join("rsa-kid"),
        newest.fingerprint().unwrap_or_default(),
    )?;
    let version = app.token.current_wrap_version()?;
    let started = Instant::now();
    let mut lines = String::new();
    const BATCH: usize = 500;
    let mut done = 0;
    while done < n {
        let count = BATCH.min(n - done);
        // wrap on two threads (the token pool serves both), store in one transaction
        let half = count / 2;
        let make = |range: std::ops::Range<usize>| -> Res<Vec<Wallet>> {
            range
                .map(|i| {
                    let chain = if i % 2 == 0 {
                        Chain::Evm
                    } else {
                        Chain::Solana
                    };
                    let (secret, address) = keyward::wallet_key::generate(chain);
                    let label = format!("bench-{i}");
                    Ok(keyward::wallets::wrap_local(
                        &app.token,
                        chain,
                        &secret,
                        address,
                        Some(&label),
                        Source::Generated,
                        version,
                    )?)
                })
                .collect()
        };
        let (a, b) = std::thread::scope(|s| {
            let h = s.spawn(|| make(done..done + half));
            let b = make(done + half..done + count);
            (h.join().expect("setup thread"), b)
        });
        let mut batch = a?;
        batch.extend(b?);
        for w in &batch {
            lines.push_str(&format!(
                "{}\t{}\t{}\n",
                w.chain.as_str(),
                w.id,
                w.address.as_deref().unwrap_or_default()
            ));
        }
        app.store.write_blocking(move |ctx| {
            for w in &batch {
                keyward::wallets::record_new(ctx, w)?;
            }
            Ok(())
        })?;
        done += count;
    }
    std::fs::write(state.join("wallets.tsv"), lines)?;
    eprintln!(
        "created {n} wallets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ports(count: usize) -> Res<()> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    for l in &listeners {
        println!("{}", l.local_addr()?.port());
    }
    Ok(())
}

async fn ready(admin: SocketAddr, timeout: u64) -> Res<()> {
    require_loopback("admin", &admin)?;
    let started = Instant::now();
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(admin).await {
            let io = hyper_util::rt::TokioIo::new(tcp);
            if let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await {
                tokio::spawn(conn);
                let req = Request::get("/readyz")
                    .header("host", admin.to_string())
                    .body(Full::new(Bytes::new()))?;
                if let Ok(r) = sender.send_request(req).await {
                    if r.status() == StatusCode::OK {
                        println!("{}", started.elapsed().as_millis());
                        return Ok(());
                    }
                }
            }
        }
        if started.elapsed() > Duration::from_secs(timeout) {
            return Err(format!("{admin} not ready after {timeout} s").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------- clients

fn read_pem_certs(path: &Path) -> Res<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(rustls_pemfile::certs(&mut &pem[..]).collect::<Result<Vec<_>, _>>()?)
}

/// A TLS client trusting only `ca`, presenting `client` (certificate chain, key) if given.
fn tls_client(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    resumption: bool,
) -> Res<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_pem_certs(ca)? {
        roots.add(c)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let mut cfg = if let Some((cert, key)) = client {
        let certs = read_pem_certs(cert)?;
        let key_pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let key = rustls_pemfile::private_key(&mut &key_pem[..])?
            .ok_or_else(|| format!("{}: no private key", key.display()))?;
        builder.with_client_auth_cert(certs, key)?
    } else {
        builder.with_no_client_auth()
    };
    if !resumption {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(cfg))
}

#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

type Sender = SendRequest<Full<Bytes>>;

impl Endpoint {
    async fn connect(&self) -> Res<Sender> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Res<StatusCode> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    resp.into_body().collect().await?;
    Ok(status)
}

// ---------------------------------------------------------------- scenarios

struct WalletRef {
    id: String,
    address: String,
}

struct Shared {
    evm: Vec<WalletRef>,
    solana: Vec<WalletRef>,
    /// Solana transaction bodies, one per Solana wallet (built once; parsing is the server's job).
    solana_bodies: Vec<Bytes>,
    next: AtomicUsize,
    typed_data: String,
    webhook_path: String,
    deliveries: Mutex<Vec<Delivery>>,
    replay: Mutex<Option<(Bytes, String)>>,
    sim: Simulator,
}

/// EIP-712's own "Mail" example (the `evm-typed-data` scenario's request).
fn mail_typed_data() -> serde_json::Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eip712_mail.json"
    )))
    .expect("the Mail fixture is JSON")
}

/// A legacy System Program transfer of 1,000,000 lamports signed by `from` alone.
fn solana_transfer(from: &[u8; 32]) -> Vec<u8> {
    let system = [0u8; 32];
    let to = [7u8; 32];
    let keys = [*from, to, system];
    let mut msg = vec![1u8, 0, 1, keys.len() as u8];
    for k in &keys {
        msg.extend_from_slice(k);
    }
    msg.extend_from_slice(&[9u8; 32]); // recent blockhash
    msg.push(1); // one instruction
    msg.push(2); // program: system
    msg.extend([2, 0, 1]); // accounts: from, to
    let mut data = 2u32.to_le_bytes().to_vec(); // Transfer
    data.extend(1_000_000u64.to_le_bytes());
    msg.push(data.len() as u8);
    msg.extend(data);
    let mut tx = vec![1u8];
    tx.extend([0u8; 64]);
    tx.extend(msg);
    tx
}

fn json_req(path: &str, body: Bytes) -> Res<Request<Full<Bytes>>> {
    Ok(Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(body))?)
}

fn pick<'a>(list: &'a [WalletRef], n: usize, what: &str) -> Res<&'a WalletRef> {
    if list.is_empty() {
        return Err(format!("no {what} wallets in wallets.tsv").into());
    }
    Ok(&list[n % list.len()])
}

impl Shared {
    /// The next request of `scenario`.
    fn request(&self, scenario: &str) -> Res<Request<Full<Bytes>>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match scenario {
            "noop" | "handshake" => Ok(Request::get("/v1/whoami")
                .header("host", "127.0.0.1")
                .body(Full::new(Bytes::new()))?),
            "evm-message" => {
                let w = pick(&self.evm, n, "EVM")?;
                json_req(
                    &format!("/v1/wallets/{}/evm/message", w.id),
                    Bytes::from(format!(r#"{{"message":"keyward bench message {n}"}}"#)),
                )
            }
            "evm-typed-data" => {
                let w = pick(&self.evm, n, "EVM")?;
                json_req(
                    &format!("/v1/wallets/{}/evm/typed-data", w.id),
                    Bytes::from(format!(r#"{{"typedData":{}}}"#, self.typed_data)),
                )
            }
            "evm-tx-1559" => {
                let w = pick(&self.evm, n, "EVM")?;
                let body = serde_json::json!({ "transaction": {
                    "type": "0x2", "chainId": "0x1", "nonce": format!("{n:#x}"),
                    "maxFeePerGas": "0x4a817c800", "maxPriorityFeePerGas": "0x3b9aca00",
                    "gas": "0x5208", "to": "0x3535353535353535353535353535353535353535",
                    "value": "0x1", "data": "0x", "from": w.address,
                }});
                json_req(
                    &format!("/v1/wallets/{}/evm/transaction", w.id),
                    Bytes::from(serde_json::to_vec(&body)?),
                )
            }
            "solana-tx" => {
                let w = pick(&self.solana, n, "Solana")?;
                json_req(
                    &format!("/v1/wallets/{}/solana/transaction", w.id),
                    self.solana_bodies[n % self.solana.len()].clone(),
                )
            }
            "webhook-created" => {
                let d = self.deliveries.lock().expect("deliveries").pop();
                let d = match d {
                    Some(d) => d,
                    None => self.delivery(n)?,
                };
                Ok(Request::post(self.webhook_path.as_str())
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/json")
                    .header(
                        keyward::webhook::verify::SIGNATURE_HEADER,
                        d.signature.as_str(),
                    )
                    .body(Full::new(Bytes::from(d.body)))?)
            }
            "webhook-replay" => {
                let mut g = self.replay.lock().expect("replay");
                if g.is_none() {
                    let d = self.delivery(n)?;
                    *g = Some((Bytes::from(d.body), d.signature));
                }
                let (body, sig) = g.as_ref().expect("set above");
                Ok(Request::post(self.webhook_path.as_str())
                    .header("host", "127.0.0.1")
                    .header("content-type", "application/json")
                    .header(keyward::webhook::verify::SIGNATURE_HEADER, sig.as_str())
                    .body(Full::new(body.clone()))?)
            }
            other => Err(format!("unknown scenario {other}").into()),
        }
    }

    fn delivery(&self, n: usize) -> Res<Delivery> {
        let chain = if n % 2 == 0 {
            Chain::Evm
        } else {
            Chain::Solana
        };
        Ok(self
            .sim
            .delegation(chain, &uuid::Uuid::new_v4().to_string())?)
    }
}

/// Where a run's requests come from.
enum Requests {
    /// keyward's scenarios.
    Keyward(Arc<Shared>),
    /// `--target`: any signer, the same POST again and again.
    Fixed {
        path: String,
        host: String,
        body: Bytes,
    },
}

impl Requests {
    fn request(&self, scenario: &str) -> Res<Request<Full<Bytes>>> {
        match self {
            Requests::Keyward(s) => s.request(scenario),
            Requests::Fixed { path, host, body } => Ok(Request::post(path.as_str())
                .header("host", host.as_str())
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))?),
        }
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies in microseconds.
    lat: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

/// `pid` and all its descendants, read from `/proc/*/stat`: a server may be several
/// processes (node:cluster forks its workers), and a worker's CPU only reaches the
/// parent's `cutime` once it has exited. Empty if `pid` does not exist.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // a process may exit between the listing and the read
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat.get(i + 2..))
                .and_then(|rest| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((child, ppid));
            }
        }
    }
    if !parents.iter().any(|&(p, _)| p == pid) {
        return Vec::new();
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(c, _)| c),
        );
        i += 1;
    }
    tree
}

/// Sums `f` over `pid` and its descendants; `None` if `pid` is gone.
fn over_tree<T: std::iter::Sum<T>>(pid: u32, f: impl Fn(u32) -> Option<T>) -> Option<T> {
    let tree = process_tree(pid);
    if tree.is_empty() {
        return None;
    }
    // a descendant that exited meanwhile counts as nothing
    Some(tree.into_iter().filter_map(f).sum())
}

/// utime + stime of one process (all its threads), in USER_HZ ticks.
fn cpu_ticks_one(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    over_tree(pid, cpu_ticks_one)
}

/// Context switches (voluntary + involuntary) of all the server's threads so far: how
/// many times a request's work is handed between threads shows here. A thread that exits
/// during a run takes its count with it (tokio's blocking threads linger 10 s, longer
/// than the gaps in a run), so short-lived threads would be undercounted.
fn ctx_switches_one(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(status) = std::fs::read_to_string(task.ok()?.path().join("status")) else {
            continue; // the thread ended between the listing and the read
        };
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches:")
                || line.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += line.split_whitespace().nth(1)?.parse::<u64>().ok()?;
            }
        }
    }
    Some(total)
}

fn ctx_switches(pid: u32) -> Option<u64> {
    over_tree(pid, ctx_switches_one)
}

fn rss_mib_one(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resident memory of the server and its descendants (shared pages counted per process).
fn rss_mib(pid: u32) -> Option<f64> {
    over_tree(pid, rss_mib_one)
}

/// Linux reports utime/stime in USER_HZ, which is 100 on every architecture keyward runs on.
const USER_HZ: f64 = 100.0;

struct Outcome {
    scenario: String,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    cpu_us_per_req: Option<f64>,
    ctx_switches_per_req: Option<f64>,
    rss_mib: Option<f64>,
    store: Option<StoreStats>,
}

/// The store's group commits during a scenario, from keyward's `/metrics`
/// (`keyward_store_commit_seconds`): whether the serial writer thread, rather than the
/// CPU, set the pace.
struct StoreStats {
    commits_per_s: f64,
    commit_ms_mean: f64,
    /// Requests answered per commit (each signature is one audit record).
    req_per_commit: f64,
    /// Fraction of the wall time the writer spent inside commits.
    writer_busy: f64,
}

/// `keyward_store_commit_seconds` (sum, count) from keyward's admin `/metrics`.
async fn commit_totals(admin: SocketAddr) -> Option<(f64, f64)> {
    let tcp = tokio::net::TcpStream::connect(admin).await.ok()?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .ok()?;
    tokio::spawn(conn);
    let req = Request::get("/metrics")
        .header("host", admin.to_string())
        .body(Full::new(Bytes::new()))
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    commit_totals_in(std::str::from_utf8(&body).ok()?)
}

/// (sum, count) of `keyward_store_commit_seconds` in a Prometheus text exposition.
fn commit_totals_in(text: &str) -> Option<(f64, f64)> {
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((
        value("keyward_store_commit_seconds_sum")?,
        value("keyward_store_commit_seconds_count")?,
    ))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

async fn run_scenario(
    name: &str,
    args: &RunArgs,
    shared: &Arc<Requests>,
    api: &Endpoint,
    api_fresh: &Endpoint,
    hook: &Endpoint,
    admin: Option<SocketAddr>,
) -> Res<Outcome> {
    let endpoint = match name {
        "handshake" => api_fresh.clone(),
        n if n.starts_with("webhook") => hook.clone(),
        _ => api.clone(),
    };
    if let (Requests::Keyward(keyward), "webhook-created") = (&**shared, name) {
        // deliveries are built before the clock starts (two RSA-OAEP encryptions each)
        let want = (args.duration as usize * 400).min(20_000);
        let s = keyward.clone();
        let made = tokio::task::spawn_blocking(move || -> Res<Vec<Delivery>> {
            (0..want).map(|i| s.delivery(i)).collect()
        })
        .await??;
        *keyward.deliveries.lock().expect("deliveries") = made;
    }
    let per_request_connection = name == "handshake";
    // connect everything before the clock starts
    let mut senders = Vec::new();
    if !per_request_connection {
        for _ in 0..args.connections {
            senders.push(endpoint.connect().await?);
        }
    }
    let commits0 = match admin {
        Some(a) => commit_totals(a).await,
        None => None,
    };
    let cpu0 = args.server_pid.and_then(cpu_ticks);
    let ctx0 = args.server_pid.and_then(ctx_switches);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        let mut sender = senders.pop();
        let endpoint = endpoint.clone();
        let shared = shared.clone();
        let name = name.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally {
                lat: Vec::with_capacity(1 << 16),
                ..Default::default()
            };
            let _ = i;
            while Instant::now() < deadline {
                let req = match shared.request(&name) {
                    Ok(r) => r,
                    Err(e) => {
                        t.error(e.to_string());
                        break;
                    }
                };
                let began = Instant::now();
                let result = if per_request_connection {
                    match endpoint.connect().await {
                        Ok(mut s) => send(&mut s, req).await,
                        Err(e) => Err(e),
                    }
                } else {
                    match sender.as_mut() {
                        Some(s) => send(s, req).await,
                        None => match endpoint.connect().await {
                            Ok(mut s) => {
                                let r = send(&mut s, req).await;
                                sender = Some(s);
                                r
                            }
                            Err(e) => Err(e),
                        },
                    }
                };
                let us = began.elapsed().as_micros().min(u32::MAX as u128) as u32;
                match result {
                    Ok(StatusCode::OK) => t.lat.push(us),
                    Ok(status) => t.error(format!("HTTP {status}")),
                    Err(e) => {
                        t.error(e.to_string());
                        sender = None; // reconnect
                    }
                }
            }
            t
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let t = t.await?;
        lat.extend(t.lat);
        errors += t.errors;
        first_error = first_error.or(t.first_error);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu1 = args.server_pid.and_then(cpu_ticks);
    let commits1 = match admin {
        Some(a) => commit_totals(a).await,
        None => None,
    };
    let ctx1 = args.server_pid.and_then(ctx_switches);
    if let Some(e) = first_error {
        eprintln!("  {name}: {errors} errors, first: {e}");
    }
    lat.sort_unstable();
    let total = lat.len() as u64 + errors;
    let cpu_us_per_req = match (cpu0, cpu1) {
        (Some(a), Some(b)) if total > 0 => {
            Some(b.saturating_sub(a) as f64 / USER_HZ * 1e6 / total as f64)
        }
        _ => None,
    };
    let ctx_switches_per_req = match (ctx0, ctx1) {
        (Some(a), Some(b)) if total > 0 => Some(b.saturating_sub(a) as f64 / total as f64),
        _ => None,
    };
    Ok(Outcome {
        scenario: name.to_owned(),
        rps: lat.len() as f64 / elapsed,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |&m| m as f64 / 1000.0),
        errors,
        cpu_us_per_req,
        ctx_switches_per_req,
        rss_mib: args.server_pid.and_then(rss_mib),
        store: match (commits0, commits1) {
            (Some((sum0, n0)), Some((sum1, n1))) if n1 > n0 => Some(StoreStats {
                commits_per_s: (n1 - n0) / elapsed,
                commit_ms_mean: (sum1 - sum0) / (n1 - n0) * 1e3,
                req_per_commit: total as f64 / (n1 - n0),
                writer_busy: (sum1 - sum0) / elapsed,
            }),
            _ => None,
        },
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

async fn run(args: RunArgs) -> Res<()> {
    match &args.target {
        Some(url) => run_target(url, &args).await,
        None => run_keyward(&args).await,
    }
}

/// `--target`: one row for any mTLS signer, measured like keyward's scenarios.
async fn run_target(url: &str, args: &RunArgs) -> Res<()> {
    let (addr, host, path) = parse_target(url)?;
    require_loopback("target", &addr)?;
    let (Some(cert), Some(key), Some(ca), Some(body)) =
        (&args.cert, &args.key, &args.ca, &args.body)
    else {
        return Err("--target needs --cert, --key, --ca and --body".into());
    };
    let body = std::fs::read(body).map_err(|e| format!("{}: {e}", body.display()))?;
    let requests = Arc::new(Requests::Fixed {
        path,
        host,
        body: Bytes::from(body),
    });
    let endpoint = Endpoint {
        addr,
        tls: tls_client(ca, Some((cert.as_path(), key.as_path())), true)?,
    };
    let name = args.name.as_deref().unwrap_or("target");
    print_header();
    // the same endpoint for every face: a target has one
    let o = run_scenario(name, args, &requests, &endpoint, &endpoint, &endpoint, None).await?;
    print_outcome(&o, "-");
    Ok(())
}

/// Splits `https://IP[:PORT][/path]` into the socket address, the Host header and the path.
/// Only IP literals and `localhost` (as 127.0.0.1): the TLS server name is the IP address.
fn parse_target(url: &str) -> Res<(SocketAddr, String, String)> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("--target {url}: not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("--target {url}: only https:// targets (mTLS) are supported").into());
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("--target {url}: no host"))?;
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("--target {url}: the host must be a loopback IP address"))?
    };
    let addr = SocketAddr::new(ip, uri.port_u16().unwrap_or(443));
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    Ok((addr, authority, path))
}

fn print_header() {
    println!(
        "{:<16} {:>9} {:>8} {:>8} {:>8} {:>7} {:>10} {:>8} {:>8}",
        "scenario",
        "rps",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "errors",
        "cpu_us/req",
        "rss_mib",
        "vs_noop"
    );
}

/// One table row and one JSON line.
fn print_outcome(o: &Outcome, ratio: &str) {
    println!(
        "{:<16} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>10} {:>8} {:>8}",
        o.scenario,
        o.rps,
        o.p50_ms,
        o.p99_ms,
        o.max_ms,
        o.errors,
        o.cpu_us_per_req.map_or("-".into(), |c| format!("{c:.0}")),
        o.rss_mib.map_or("-".into(), |r| format!("{r:.1}")),
        ratio
    );
    println!(
        "{}",
        serde_json::json!({
            "scenario": o.scenario,
            "rps": round(o.rps, 1),
            "p50_ms": round(o.p50_ms, 3),
            "p99_ms": round(o.p99_ms, 3),
            "max_ms": round(o.max_ms, 3),
            "errors": o.errors,
            "server_cpu_us_per_req": o.cpu_us_per_req.map(|c| round(c, 1)),
            "server_ctx_switches_per_req": o.ctx_switches_per_req.map(|c| round(c, 2)),
            "rss_mib": o.rss_mib.map(|r| round(r, 1)),
            "store_commits_per_s": o.store.as_ref().map(|c| round(c.commits_per_s, 1)),
            "store_commit_ms_mean": o.store.as_ref().map(|c| round(c.commit_ms_mean, 3)),
            "store_req_per_commit": o.store.as_ref().map(|c| round(c.req_per_commit, 2)),
            "store_writer_busy": o.store.as_ref().map(|c| round(c.writer_busy, 3)),
        })
    );
}

async fn run_keyward(args: &RunArgs) -> Res<()> {
    let (Some(config), Some(pki), Some(state)) = (&args.config, &args.pki, &args.state) else {
        return Err("run needs --config, --pki and --state (or --target)".into());
    };
    let config = Config::load(config)?;
    let api_addr = target(config.api.listen);
    let hook_addr = target(config.webhook.listen);
    // only read /metrics on loopback, like every other address here
    let admin_addr = Some(target(config.admin.listen)).filter(|a| a.ip().is_loopback());
    require_loopback("signing API", &api_addr)?;
    require_loopback("webhook", &hook_addr)?;
    let scenarios: Vec<&str> = if args.scenario == "all" {
        SCENARIOS.to_vec()
    } else {
        let s = SCENARIOS
            .iter()
            .find(|s| **s == args.scenario)
            .ok_or_else(|| {
                format!(
                    "unknown scenario {}; one of {SCENARIOS:?} or all",
                    args.scenario
                )
            })?;
        vec![*s]
    };
    let wallets = std::fs::read_to_string(state.join("wallets.tsv"))?;
    let (mut evm, mut solana) = (Vec::new(), Vec::new());
    for line in wallets.lines() {
        let mut f = line.split('\t');
        let (Some(chain), Some(id), Some(address)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let w = WalletRef {
            id: id.to_owned(),
            address: address.to_owned(),
        };
        match chain {
            "evm" => evm.push(w),
            "solana" => solana.push(w),
            _ => {}
        }
    }
    let solana_bodies = solana
        .iter()
        .map(|w| -> Res<Bytes> {
            let pk = keyward::chains::solana::parse_pubkey(&w.address)?;
            let tx = base64::engine::general_purpose::STANDARD.encode(solana_transfer(&pk));
            Ok(Bytes::from(format!(r#"{{"transaction":"{tx}"}}"#)))
        })
        .collect::<Res<Vec<_>>>()?;
    let pem = std::fs::read_to_string(state.join("rsa-public.pem"))?;
    let public = rsa::RsaPublicKey::from_public_key_pem(&pem)?;
    let kid = std::fs::read_to_string(state.join("rsa-kid"))?;
    let secret: SecretString = config
        .webhook
        .secrets
        .first()
        .ok_or("webhook.secrets is empty")?
        .read()?;
    let mut sim = Simulator::new(public, (!kid.is_empty()).then_some(kid), secret);
    if let Some(env) = config.webhook.environment_ids.first() {
        sim.environment_id = env.clone();
    }
    let shared = Arc::new(Requests::Keyward(Arc::new(Shared {
        evm,
        solana,
        solana_bodies,
        next: AtomicUsize::new(0),
        typed_data: mail_typed_data().to_string(),
        webhook_path: config.webhook.path.clone(),
        deliveries: Mutex::new(Vec::new()),
        replay: Mutex::new(None),
        sim,
    })));
    let (ca, client_cert, client_key) = (
        pki.join("ca.pem"),
        pki.join("client.pem"),
        pki.join("client.key"),
    );
    let api = Endpoint {
        addr: api_addr,
        tls: tls_client(&ca, Some((&client_cert, &client_key)), true)?,
    };
    let api_fresh = Endpoint {
        addr: api_addr,
        tls: tls_client(&ca, Some((&client_cert, &client_key)), false)?,
    };
    let hook = Endpoint {
        addr: hook_addr,
        tls: tls_client(&ca, None, true)?,
    };
    print_header();
    let mut noop_rps = None;
    for name in scenarios {
        let o = run_scenario(name, args, &shared, &api, &api_fresh, &hook, admin_addr).await?;
        if name == "noop" {
            noop_rps = Some(o.rps);
        }
        let ratio = match (name, noop_rps) {
            ("noop", _) => "1.00".to_owned(),
            (n, Some(base)) if !n.starts_with("webhook") && base > 0.0 => {
                format!("{:.2}", o.rps / base)
            }
            _ => "-".to_owned(),
        };
        print_outcome(&o, &ratio);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_url_splits_into_address_host_and_path() {
        let (addr, host, path) = parse_target("https://127.0.0.1:8443/sign").unwrap();
        assert_eq!(addr, "127.0.0.1:8443".parse::<SocketAddr>().unwrap());
        assert_eq!(host, "127.0.0.1:8443");
        assert_eq!(path, "/sign");
        let (addr, host, path) = parse_target("https://localhost").unwrap();
        assert_eq!(addr, "127.0.0.1:443".parse::<SocketAddr>().unwrap());
        assert_eq!(host, "localhost");
        assert_eq!(path, "/");
        let (addr, _, path) = parse_target("https://[::1]:9000/v1/sign?x=1").unwrap();
        assert_eq!(addr, "[::1]:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(path, "/v1/sign?x=1");
    }

    #[test]
    fn target_url_must_be_https_with_an_ip() {
        let err = |u: &str| parse_target(u).unwrap_err().to_string();
        assert!(err("http://127.0.0.1:8443/sign").contains("only https://"));
        assert!(err("https://signer.example/sign").contains("loopback IP address"));
        assert!(err("not a url at all").contains("not a URL"));
    }

    #[test]
    fn commit_totals_read_from_the_exposition() {
        let text = "# HELP keyward_store_commit_seconds Store group-commit latency\n\
                    keyward_store_commit_seconds_bucket{le=\"0.001\"} 3\n\
                    keyward_store_commit_seconds_sum 9.90142\n\
                    keyward_store_commit_seconds_count 3423\n\
                    keyward_store_commit_seconds_sum_other 1\n";
        assert_eq!(commit_totals_in(text), Some((9.90142, 3423.0)));
        assert_eq!(
            commit_totals_in("keyward_store_commit_seconds_sum 1\n"),
            None
        );
    }

    #[test]
    fn process_tree_holds_the_process_and_its_children() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = process_tree(me);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(tree.first(), Some(&me));
        assert!(tree.contains(&child.id()), "{tree:?} lacks {}", child.id());
        // pid_max is at most 2^22 on Linux: this pid cannot exist
        assert!(process_tree(u32::MAX).is_empty());
        assert_eq!(cpu_ticks(u32::MAX), None);
    }
}
