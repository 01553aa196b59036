//! The listener plumbing both faces share (`keyward::http::serve`), over real TLS on
//! loopback: a handler that panics answers 500 `internal_error` for that request, and the
//! same keep-alive connection and the listener go on serving.

mod common;

use std::sync::Arc;

use common::Env;
use hyper::{Request, StatusCode};
use keyward::http::{self, Body, Conn};

async fn handle(req: Request<hyper::body::Incoming>, _conn: Arc<Conn>) -> hyper::Response<Body> {
    match req.uri().path() {
        "/panic" => panic!("a bug reachable by one request"),
        "/slow-panic" => {
            tokio::task::yield_now().await;
            let v: Vec<u8> = Vec::new();
            // an index bug after an await point
            let _ = v[usize::from(req.method() == hyper::Method::GET)];
            unreachable!()
        }
        _ => http::json(StatusCode::OK, &serde_json::json!({"ok": true})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_and_the_connection_survives() {
    let env = Env::new();
    let tls = keyward::tls::webhook_server(&env.path("server.pem"), &env.path("server.key"))
        .expect("server TLS");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let handler = Arc::new(handle);
    let admission = http::admission::Admission::new(
        "test",
        http::admission::Caps {
            total: 8,
            per_source: 8,
        },
        None,
    );
    tokio::spawn(http::serve(
        listener,
        tokio_rustls::TlsAcceptor::from(tls),
        admission,
        handler,
        rx,
    ));

    let mut conn = common::https::connect(
        common::https::client_config(&env.pki.ca.cert_pem, None),
        &addr.to_string(),
    )
    .await
    .unwrap();
    // one connection, several requests: the panics do not end it
    for (path, want) in [
        ("/panic", StatusCode::INTERNAL_SERVER_ERROR),
        ("/fine", StatusCode::OK),
        ("/slow-panic", StatusCode::INTERNAL_SERVER_ERROR),
        ("/fine", StatusCode::OK),
    ] {
        conn.sender.ready().await.expect("connection still open");
        let a = conn
            .send("GET", path, &[], Vec::new())
            .await
            .expect("an answer, not a reset");
        assert_eq!(a.status, want, "{path}");
        assert!(a.headers.contains_key("x-request-id"));
        if want == StatusCode::OK {
            assert_eq!(a.body["ok"], true, "{path}");
        } else {
            assert_eq!(a.body["error"]["code"], "internal_error", "{path}");
        }
    }
}
