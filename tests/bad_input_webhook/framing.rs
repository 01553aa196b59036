//! Bad deliveries: framing: path, method, media type, size.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("framing", cases);
    for p in [
        "/other",
        "/",
        "/webhooks",
        "/webhooks/dynamic/",
        "/WEBHOOKS/DYNAMIC",
        "/webhooks/dynamic/x",
        "/webhooks//dynamic",
        "/webhooks/dynamic%2f",
    ] {
        c.post(
            format!("path {p}"),
            &format!("{}{p}", x.h.base),
            x.good.body.clone(),
            x.good.headers(),
            (404, "not_found"),
        );
    }
    for m in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let req = Req {
            from: ALLOWED,
            method: m.clone(),
            url: x.url.clone(),
            body: x.good.body.clone(),
            headers: x.good.headers(),
        };
        c.push(format!("method {m}"), req, (405, "method_not_allowed"));
    }
    let sig = (
        "x-dynamic-signature-256".to_string(),
        x.good.signature.clone(),
    );
    for (name, ct) in [
        ("no content type", None),
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("application/jsonx", Some("application/jsonx")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("application/problem+json", Some("application/problem+json")),
    ] {
        let mut headers = vec![sig.clone()];
        if let Some(ct) = ct {
            headers.push(("content-type".into(), ct.into()));
        }
        c.post(
            name,
            &x.url,
            x.good.body.clone(),
            headers,
            (415, "unsupported_media_type"),
        );
    }
    for n in [65_537, 70_000, 200_000] {
        let body = vec![b' '; n];
        c.signed(format!("{n} bytes"), &x.url, body, (413, "body_too_large"));
    }
}
