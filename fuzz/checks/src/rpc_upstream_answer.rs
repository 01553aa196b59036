//! The JSON-RPC face's reading of an `[rpc] upstream` node's answer
//! (`keyward::api::rpc::upstream::parse_answer`): the result is kept as the node's JSON
//! text (`RawValue`, passed on to the client unparsed), the error object read strictly.
//!
//! Input: the first byte picks the shape; the rest is the node's whole body (0), the text
//! of a `result` (1), or of an error's `message` and `data` (2), so most inputs reach the
//! parts past "is this JSON".
//!
//! Invariants: never panics; only a JSON object is an answer; an accepted result is
//! exactly what a `Value` parse of the body finds under `result` (with no `error`), so
//! nothing is added, dropped or rewritten on the way to the client; an accepted error
//! carries the body's integer `error.code` and a message of at most 1024 characters; a
//! result read as a pending nonce (`nonce_of`, for `evm.max_nonce_gap`) is a 0x hex string
//! of 1 to 16 digits with exactly that value, else none.

use keyward::api::rpc::upstream::{nonce_of, parse_answer, MAX_ERROR_DATA};
use serde_json::Value;

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        run(data);
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 3 {
        0 => run(rest),
        1 => run(format!(r#"{{"jsonrpc":"2.0","id":1,"result":{text}}}"#).as_bytes()),
        _ => {
            let mid = (0..=text.len() / 2)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let (message, extra) = text.split_at(mid);
            let message = Value::String(message.to_owned());
            run(format!(
                r#"{{"id":1,"error":{{"code":-32000,"message":{message},"data":{extra}}}}}"#
            )
            .as_bytes())
        }
    }
}

fn run(body: &[u8]) {
    let parsed = parse_answer(body);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let value: Option<Value> = serde_json::from_slice(body).ok();
    match parsed {
        Ok(Ok(raw)) => {
            assert_eq!(first, Some(&b'{'), "only an object is an answer");
            if let Some(Value::Object(m)) = &value {
                assert!(
                    m.get("error").is_none_or(Value::is_null),
                    "a result beside an error"
                );
                let result = m.get("result").expect("the body has a result");
                if let Ok(r) = serde_json::from_str::<Value>(raw.get()) {
                    assert_eq!(&r, result, "the result passed on is the body's");
                    nonce(&r);
                }
            }
        }
        Ok(Err(e)) => {
            assert_eq!(first, Some(&b'{'));
            assert!(e.message.chars().count() <= 1024);
            if let Some(Value::Object(m)) = &value {
                assert_eq!(m["error"]["code"].as_i64(), Some(e.code));
                if let Some(d) = &e.data {
                    assert!(serde_json::to_string(d).unwrap().len() <= 2 * MAX_ERROR_DATA);
                }
            }
        }
        Err(_) => {}
    }
}

/// The pending nonce read from a result: only a 0x hex string of 1 to 16 digits, and
/// exactly its value.
fn nonce(result: &Value) {
    let digits = result
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .filter(|h| (1..=16).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()));
    match (nonce_of(result), digits) {
        (Some(n), Some(h)) => assert_eq!(u64::from_str_radix(h, 16).ok(), Some(n)),
        (None, None) => {}
        (got, _) => panic!("pending nonce {got:?} read from {result}"),
    }
}
