//! Bad deliveries: ranges: lengths, times, sizes.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("ranges", cases);
    for (k, v) in [
        ("eventId", "e".repeat(129)),
        ("eventName", String::new()),
        ("eventName", "n".repeat(129)),
        ("messageId", String::new()),
        ("messageId", "m".repeat(129)),
        ("environmentId", "v".repeat(129)),
        ("userId", String::new()),
    ] {
        c.json(
            format!("{k} of {} chars", v.len()),
            &x.url,
            &x.ping.clone().tap(|p| p[k] = v.clone().into()),
            MALFORMED,
        );
    }
    for (name, ts) in [
        ("a word", "yesterday".to_string()),
        ("month 13", "2025-13-01T00:00:00Z".into()),
        ("no zone", "2025-01-01T00:00:00".into()),
        ("epoch seconds", "1700000000".into()),
        ("date only", "2025-01-01".into()),
        ("empty", String::new()),
    ] {
        c.json(
            format!("timestamp {name}"),
            &x.url,
            &x.ping.clone().tap(|p| p["timestamp"] = ts.clone().into()),
            MALFORMED,
        );
    }
    for (name, ts, code) in [
        ("6 minutes ahead", now_ts(6 * 60_000), "event_in_future"),
        (
            "in 9999",
            "9999-12-31T23:59:59Z".to_string(),
            "event_in_future",
        ),
        ("31 days old", now_ts(-31 * 86_400_000), "event_too_old"),
        ("in 1970", "1970-01-01T00:00:00Z".into(), "event_too_old"),
        // RFC 3339 allows second 60, and it is an instant like any other
        (
            "at a leap second",
            "2016-12-31T23:59:60Z".into(),
            "event_too_old",
        ),
        ("in year 1", "0001-01-01T00:00:00Z".into(), "event_too_old"),
    ] {
        c.json(
            format!("timestamp {name}"),
            &x.url,
            &x.ping.clone().tap(|p| p["timestamp"] = ts.clone().into()),
            (400, code),
        );
    }
    for len in [0, 8, 11, 13, 32] {
        c.json(
            format!("iv of {len} bytes"),
            &x.url,
            &x.m.created(|d| d["encryptedDelegatedShare"]["iv"] = b64(&vec![0u8; len]).into()),
            ENV_MALFORMED,
        );
    }
    for len in [0, 15, 17] {
        c.json(
            format!("tag of {len} bytes"),
            &x.url,
            &x.m.created(|d| d["encryptedDelegatedShare"]["tag"] = b64(&vec![0u8; len]).into()),
            ENV_MALFORMED,
        );
    }
    c.json(
        "ek empty",
        &x.url,
        &x.m.created(|d| d["encryptedDelegatedShare"]["ek"] = "".into()),
        ENV_MALFORMED,
    );
}
