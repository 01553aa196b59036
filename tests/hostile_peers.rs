//! Hostile peers at the listeners of a real daemon: a source outside the webhook
//! allowlist is closed at accept (no ServerHello), and thousands of idle connections
//! neither stop an allowed delivery nor a sign request.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::daemon::{http_get, simulate, Daemon};
use common::https::mtls_request;
use common::Env;

fn env() -> Env {
    let env = Env::with_extra(common::grant("test-client", &["*"], &["evm.message"]));
    // caps small enough for a test to reach them
    env.edit_config(
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\nmax_connections = 3000\nmax_connections_per_source = 100",
    );
    env
}

fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    )
    .unwrap();
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: &str) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    sock.bind(&local.into()).unwrap();
    let to: SocketAddr = to.parse().unwrap();
    sock.connect(&to.into()).unwrap();
    sock.into()
}

/// The first bytes of a TLS 1.3 handshake, as any client sends them.
fn client_hello() -> Vec<u8> {
    let roots = rustls::RootCertStore::empty();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(cfg), "localhost".try_into().unwrap())
            .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    assert!(out.len() > 100 && out[0] == 0x16, "a TLS handshake record");
    out
}

/// What the server sends back to a ClientHello from `from` within 5 s.
fn answer_to_hello(from: &str, to: &str) -> Vec<u8> {
    let mut s = connect_from(from, to);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // the server may already have closed: a failed write is part of the answer
    let _ = s.write_all(&client_hello());
    let mut buf = vec![0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) => buf.truncate(n),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => buf.clear(),
        Err(e) => panic!("from {from}: neither an answer nor a close within 5 s: {e}"),
    }
    buf
}

fn metric(d: &Daemon, series: &str) -> f64 {
    let (_, text) = http_get(&d.admin, "/metrics");
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn sign(env: &Env, d: &Daemon, wallet: &str) -> u16 {
    mtls_request(
        env,
        &d.api,
        "POST",
        &format!("/v1/wallets/{wallet}/evm/message"),
        Some(r#"{"message":"still here"}"#),
    )
    .expect("the signing API answers")
    .0
}

#[test]
fn a_refused_source_gets_no_server_hello() {
    let env = env();
    let d = Daemon::start(&env);
    // allowed (127.0.0.2 is in the test allowlist): the server answers the hello
    let allowed = answer_to_hello("127.0.0.2", &d.webhook);
    assert!(
        !allowed.is_empty() && allowed[0] == 0x16,
        "an allowed source gets a ServerHello: {allowed:?}"
    );
    let before = metric(
        &d,
        "keyward_connections_refused_total{face=\"webhook\",reason=\"source\"}",
    );
    // refused (127.0.0.3 is not): closed at accept, not one byte back
    assert_eq!(answer_to_hello("127.0.0.3", &d.webhook), Vec::<u8>::new());
    let after = metric(
        &d,
        "keyward_connections_refused_total{face=\"webhook\",reason=\"source\"}",
    );
    assert_eq!(after - before, 1.0);
}

#[test]
fn thousands_of_idle_connections_do_not_stop_deliveries_or_signing() {
    raise_fd_limit();
    let env = env();
    let d = Daemon::start(&env);
    let wallet = simulate(&env, &d, "delegation", None);

    // 2,000 connections from a refused source to the webhook face: each closed at accept
    let refused: Vec<TcpStream> = (0..2000)
        .map(|_| connect_from("127.0.0.3", &d.webhook))
        .collect();
    // 2,000 idle connections (no handshake) from one source to the signing API: beyond
    // the per-source cap (100 here) they are closed at accept
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| connect_from("127.0.0.4", &d.api))
        .collect();

    // an allowed delivery and a sign request from other sources still go through
    let fresh = simulate(&env, &d, "delegation", None);
    assert_eq!(sign(&env, &d, &wallet), 200);
    assert_eq!(sign(&env, &d, &fresh), 200);

    let closed_by_gate = metric(
        &d,
        "keyward_connections_refused_total{face=\"webhook\",reason=\"source\"}",
    );
    assert!(closed_by_gate >= 2000.0, "{closed_by_gate}");
    let over_cap = metric(
        &d,
        "keyward_connections_refused_total{face=\"api\",reason=\"source_cap\"}",
    );
    // at most 100 are open at once; an idle one is closed after the 10 s handshake
    // timeout, so a slow burst may see a few more slots free up than 100
    assert!(over_cap >= 1000.0, "{over_cap}");
    drop(refused);
    drop(idle);
}
