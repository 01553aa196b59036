//! Who is delivering: the TCP peer, or the client a trusted proxy names in
//! `X-Forwarded-For`, checked against `webhook.allowed_sources`.
//!
//! Must never: believe `X-Forwarded-For` from a peer that is not a configured trusted
//! proxy, or take the left-most (client-controlled) entry of the header.

use std::net::IpAddr;

use hyper::header::HeaderMap;
use ipnet::IpNet;

pub use crate::http::admission::canonical;

fn in_any(ip: IpAddr, nets: &[IpNet]) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

/// The delivering source: the peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` address that is not itself a trusted proxy.
/// `None` when a trusted proxy sent an unusable header (refused as not allowed).
pub fn effective_source(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(peer);
    if !in_any(peer, trusted) {
        return Some(peer);
    }
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<_>>()?;
    if values.is_empty() {
        // a trusted proxy that adds no header is itself the source
        return Some(peer);
    }
    let entries: Vec<&str> = values.iter().flat_map(|v| v.split(',')).collect();
    for entry in entries.iter().rev() {
        let ip = canonical(parse_entry(entry.trim())?);
        if !in_any(ip, trusted) {
            return Some(ip);
        }
    }
    // every hop is a trusted proxy: the left-most is the origin
    None
}

/// One `X-Forwarded-For` element: a bare address, `[v6]`, `[v6]:port` or `v4:port`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

/// True when `ip` may deliver webhooks.
pub fn allowed(ip: IpAddr, allowed_sources: &[IpNet]) -> bool {
    in_any(canonical(ip), allowed_sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for x in v {
            m.append("x-forwarded-for", x.parse().unwrap());
        }
        m
    }

    #[test]
    fn xff_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            effective_source(peer, &h(&["44.198.112.228"]), &trusted),
            Some(peer)
        );
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        assert_eq!(
            effective_source(proxy, &h(&["1.2.3.4, 44.198.112.228, 10.2.2.2"]), &trusted),
            Some("44.198.112.228".parse().unwrap())
        );
        assert_eq!(
            effective_source(proxy, &h(&["1.2.3.4", "[2001:db8::1]:443"]), &trusted),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(effective_source(proxy, &h(&["garbage"]), &trusted), None);
        assert_eq!(effective_source(proxy, &h(&[]), &trusted), Some(proxy));
        assert_eq!(effective_source(proxy, &h(&["10.9.9.9"]), &trusted), None);
    }

    #[test]
    fn mapped_v4_matches_v4_cidrs() {
        let nets: Vec<IpNet> = vec!["127.0.0.2/32".parse().unwrap()];
        assert!(allowed("::ffff:127.0.0.2".parse().unwrap(), &nets));
        assert!(!allowed("127.0.0.3".parse().unwrap(), &nets));
    }
}
