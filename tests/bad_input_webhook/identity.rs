//! Bad deliveries: identity: who is delivering (the TCP peer itself is checked at accept).

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("identity/grants", cases);
    for xff in [
        "127.0.0.3",
        "127.0.0.2, 127.0.0.3",
        "10.0.0.1",
        "not-an-ip",
        "unknown",
        "127.0.0.1",
        "::ffff:127.0.0.3",
        "[2001:db8::1]:443",
        "127.0.0.2,,",
        "",
    ] {
        let mut headers = x.good.headers();
        headers.push(("x-forwarded-for".into(), xff.into()));
        let req = Req {
            from: "127.0.0.1",
            method: Method::POST,
            url: x.url.clone(),
            body: x.good.body.clone(),
            headers,
        };
        c.push(
            format!("from the proxy, X-Forwarded-For {xff:?}"),
            req,
            (403, "source_not_allowed"),
        );
    }
}
