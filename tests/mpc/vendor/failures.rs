//! Every failure of a round, each to its documented code.

use super::*;

// -----------------------------------------------------------------------------------
// failure paths, each to its documented code
// -----------------------------------------------------------------------------------

/// Posts `evm/message` and `solana/message` and expects `code` for both.
async fn both_fail(s: &Server, evm_w: &Wallet, sol_w: &Wallet, code: &str) -> Vec<String> {
    let mut messages = Vec::new();
    for (w, op) in [(evm_w, "evm/message"), (sol_w, "solana/message")] {
        let a = s.post(&path(w, op), json!({"message": "hi"})).await;
        s.assert_cosigner_error(&a, code);
        messages.push(a.body["error"]["message"].as_str().unwrap().to_owned());
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_failures_answer_their_documented_codes() {
    let api = VendorApi::start(sse(b"", true)).await;
    let (relay, relay_hits) = slamming_listener().await;
    let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
    let (evm_w, sol_w) = two_wallets(&s).await;

    // the vendor's own refusals: an error event (with and without a message), a 4xx
    for (reply, says) in [
        (
            sse(
                b"event: error\ndata: {\"error\":\"wallet is locked by the vendor\"}\n\n",
                false,
            ),
            "wallet is locked by the vendor",
        ),
        (
            sse(b"event: error\ndata: {\"code\":7}\n\n", true),
            "Unknown error",
        ),
        (
            http_json("403 Forbidden", r#"{"error":"delegation revoked"}"#),
            "HTTP 403",
        ),
    ] {
        api.answer(reply);
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
            assert!(m.contains(says), "{m}");
        }
    }

    // everything else: the SDK's own stream failures and garbage
    let mut not_utf8 = b"event: room_created\ndata: ".to_vec();
    not_utf8.extend([0xff, 0xfe, 0xfd]);
    not_utf8.extend(b"\n\n");
    for (reply, says) in [
        // the stream ends before any room
        (sse(b"", true), "stream ended before trigger event"),
        (sse(b"event: keepalive\ndata: {}\n\n", true), "stream ended before trigger event"),
        (sse(b"this is not an event stream\r\n\r\n", true), "stream ended before trigger event"),
        (sse(&not_utf8, true), "non-UTF-8 SSE chunk"),
        (
            sse(b"event: room_created\ndata: not json\n\n", true),
            "room_created payload was not JSON",
        ),
        (sse(b"event: room_created\ndata: {\"room\":1}\n\n", true), "serialization error"),
        // a body cut short: the SDK's reader reports a stream error
        (
            Reply::Close(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot a chunk"
                    .to_vec(),
            ),
            "stream error",
        ),
        (http_json("503 Service Unavailable", "{}"), "HTTP 503"),
        (http_json("429 Too Many Requests", "{}"), "HTTP 429"),
        (Reply::Close(b"garbage, not HTTP\r\n\r\n".to_vec()), "network error"),
    ] {
        api.answer(reply);
        for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
            assert!(m.contains(says), "{says}: {m}");
        }
    }
    let stats = settled(&engine).await;
    assert_eq!((stats.started, stats.aborted), (26, 0), "{stats:?}");
    assert_eq!(relay_hits.load(Ordering::SeqCst), 0, "no room, no relay");

    // a room, then the stream ends: the SDK hands the round to the vendor's library,
    // which refuses the test share before it would connect
    api.answer(sse(room_created().as_bytes(), true));
    for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
        assert!(share_refused(&m), "{m}");
    }
    settled(&engine).await;
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_past_the_timeout_aborts_the_round() {
    // the API opens the stream and says nothing more
    let api = VendorApi::start(sse(b"", false)).await;
    let relay = closed_port().await;
    let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
    let (evm_w, sol_w) = two_wallets(&s).await;
    for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
        assert!(m.contains("did not finish within 1s 500ms"), "{m}");
    }
    // both rounds were cancelled with their request; their threads end without the
    // relay (no blocking call was running)
    let stats = settled(&engine).await;
    assert_eq!((stats.started, stats.aborted), (2, 2), "{stats:?}");
    assert!(metric("keyward_mpc_rounds_aborted_total") >= 2.0);
    // the stand-in saw the client leave: the SDK's connection was closed, not left
    // reading a stream nobody waits for
    assert_eq!(api.count(), 2);
    assert_no_secret_logged();
}

/// The vendor's library checks, in this order, the relay host (a bare `host:port`:
/// a scheme is "Invalid host URL"), the room id (32 hex: a dashed UUID is "Invalid
/// UUID"), then the share, before any network access. The test share is not a real
/// share (those come only out of a keygen with the vendor), so the library stops at
/// that last check: the answer proves the configured relay and the vendor's room id
/// were accepted; the relay port sees no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_relay_is_cosigner_unavailable() {
    let api = VendorApi::start(sse(room_created().as_bytes(), false)).await;
    let (relay, relay_hits) = slamming_listener().await;
    let (s, engine) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
    let (evm_w, sol_w) = two_wallets(&s).await;
    for m in both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await {
        assert!(
            share_refused(&m) && !m.contains("Invalid host URL") && !m.contains("Invalid UUID"),
            "{m}"
        );
    }
    let seen = api.last();
    assert!(
        seen.path().starts_with(&format!(
            "/api/v0/sdk/{ENV_ID}/waas/{}/signMessage",
            sol_w.id
        )),
        "{}",
        seen.head
    );
    assert_eq!(relay_hits.load(Ordering::SeqCst), 0);
    let stats = settled(&engine).await;
    assert_eq!((stats.started, stats.aborted), (2, 0));
    assert_no_secret_logged();
}

/// The value of metric `name` in `/metrics`.
fn metric(name: &str) -> f64 {
    let text = keyward::metrics::render();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_wait_for_a_free_slot() {
    // the vendor holds each round open until the test lets it through
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let api = VendorApi::start(Reply::Gated(
        gate.clone(),
        b"event: error\ndata: {\"error\":\"released by the test\"}\n\n".to_vec(),
    ))
    .await;
    let relay = closed_port().await;
    let (s, engine) = start_real(&engines_timeout(
        &api.url(),
        &format!("127.0.0.1:{relay}"),
        60_000,
        "max_concurrent_rounds = 1\n",
    ))
    .await;
    let (evm_w, sol_w) = two_wallets(&s).await;
    let first = async {
        let a = s
            .post(&path(&evm_w, "evm/message"), json!({"message": "one"}))
            .await;
        s.assert_cosigner_error(&a, "cosigner_rejected");
    };
    let second = async {
        until("the first round reached the vendor", || api.count() == 1).await;
        let a = s
            .post(&path(&sol_w, "solana/message"), json!({"message": "two"}))
            .await;
        s.assert_cosigner_error(&a, "cosigner_rejected");
    };
    let referee = async {
        until("the second request waits for the slot", || {
            engine.round_stats().waiting == 1
        })
        .await;
        assert!(metric("keyward_mpc_rounds_waiting") >= 1.0);
        assert!(metric("keyward_mpc_rounds_running") >= 1.0);
        let stats = engine.round_stats();
        assert_eq!((stats.started, stats.running), (1, 1), "{stats:?}");
        assert_eq!(api.count(), 1, "the second round has not started");
        gate.add_permits(1);
        until("the second round reached the vendor", || {
            engine.round_stats().started == 2 && api.count() == 2
        })
        .await;
        gate.add_permits(1);
    };
    tokio::join!(first, second, referee);
    assert_eq!(
        api.most_open.load(Ordering::SeqCst),
        1,
        "one round at a time"
    );
    let stats = settled(&engine).await;
    assert_eq!((stats.started, stats.aborted, stats.waiting), (2, 0, 0));
    assert!(metric("keyward_mpc_rounds_started_total") >= 2.0);
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_port_refusing_connections_is_cosigner_unavailable() {
    let port = closed_port().await;
    let relay = closed_port().await;
    let (s, engine) = start_real(&engines(
        &format!("http://127.0.0.1:{port}"),
        &format!("127.0.0.1:{relay}"),
        "",
    ))
    .await;
    let (evm_w, sol_w) = two_wallets(&s).await;
    let from = evm_w.address.clone().unwrap();
    for (op, body) in [
        ("evm/message", json!({"message": "hi"})),
        ("evm/typed-data", json!({"typedData": mail_typed_data()})),
        ("evm/transaction", json!({"transaction": eip1559(&from)})),
        (
            "evm/hash",
            json!({"digest": format!("0x{}", "11".repeat(32))}),
        ),
    ] {
        let a = s.post(&path(&evm_w, op), body).await;
        s.assert_cosigner_error(&a, "cosigner_unavailable");
        let m = a.body["error"]["message"].as_str().unwrap();
        assert!(m.contains("unreachable"), "{op}: {m}");
    }
    let a = s
        .post(&path(&sol_w, "solana/message"), json!({"message": "hi"}))
        .await;
    s.assert_cosigner_error(&a, "cosigner_unavailable");
    // refused before a round started
    assert_eq!(engine.round_stats(), RoundStats::default());
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_garbage_and_silence_are_cosigner_unavailable() {
    let (garbage, garbage_hits) = tls_listener(true).await;
    let (hang_tls, hang_hits) = tls_listener(false).await;
    let (silent, silent_hits) = silent_listener().await;
    let relay = closed_port().await;
    for (port, hits) in [
        (garbage, garbage_hits),
        (hang_tls, hang_hits),
        (silent, silent_hits),
    ] {
        let (s, engine) = start_real(&engines(
            &format!("https://127.0.0.1:{port}"),
            &format!("127.0.0.1:{relay}"),
            "",
        ))
        .await;
        let (evm_w, sol_w) = two_wallets(&s).await;
        both_fail(&s, &evm_w, &sol_w, "cosigner_unavailable").await;
        assert!(
            hits.load(Ordering::SeqCst) >= 2,
            "the stand-in was contacted"
        );
        settled(&engine).await;
    }
    assert_no_secret_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_refusal_is_cosigner_rejected_with_its_message_and_no_secret() {
    // a vendor that quotes the key back must not get it into our answer
    let body = format!(r#"{{"error":"invalid wallet api key {API_KEY}","code":"unauthorized"}}"#);
    let api = VendorApi::start(http_json("401 Unauthorized", &body)).await;
    let relay = closed_port().await;
    let (s, _) = start_real(&engines(&api.url(), &format!("127.0.0.1:{relay}"), "")).await;
    let (evm_w, sol_w) = two_wallets(&s).await;
    for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
        assert!(
            m.contains("invalid wallet api key") && m.contains("<redacted>"),
            "{m}"
        );
    }
    // and an error event quoting the share
    api.answer(sse(
        format!("event: error\ndata: {{\"error\":\"bad share {SHARE_SECRET}\"}}\n\n").as_bytes(),
        true,
    ));
    for m in both_fail(&s, &evm_w, &sol_w, "cosigner_rejected").await {
        assert!(m.contains("bad share <redacted>"), "{m}");
    }
    assert_no_secret_logged();
}
