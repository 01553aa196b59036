//! Who may open a connection, decided at `accept`, before a single TLS byte is read or
//! written: the source gate of a face (the webhook's `allowed_sources`), a cap on open
//! connections, and a cap per source address.
//!
//! Why before TLS: a handshake costs the server an asymmetric operation and a task; a
//! peer that will be refused anyway must not get either, nor a ServerHello that tells it
//! what answers here. Why a cap per source: idle connections (no handshake, or a
//! handshake and no request) hold a slot until their timeout; without a per-source cap
//! one peer could hold them all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Maps an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) to its IPv4 form, so a
/// dual-stack listener counts and matches one peer as one address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Decides by the TCP peer whether a connection may go on to TLS (reads the config in
/// force, so a reload applies to the next accept).
pub type SourceGate = Box<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The caps of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Open connections in all.
    pub total: usize,
    /// Open connections from one source address.
    pub per_source: usize,
}

/// Why a connection was closed at accept (also the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The source is not allowed on this face.
    Source,
    /// The listener holds `total` connections already.
    TotalCap,
    /// This source holds `per_source` connections already.
    SourceCap,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Source => "source",
            Refused::TotalCap => "total_cap",
            Refused::SourceCap => "source_cap",
        }
    }
}

/// The admission state of one listener.
pub struct Admission {
    face: &'static str,
    caps: Caps,
    gate: Option<SourceGate>,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("face", &self.face)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

/// A slot held for as long as the connection lives.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.by_source.remove(&self.source);
            }
        }
        crate::metrics::get()
            .connections_open
            .with_label_values(&[self.admission.face])
            .dec();
    }
}

impl Admission {
    /// Admission for the listener of `face`.
    pub fn new(face: &'static str, caps: Caps, gate: Option<SourceGate>) -> Arc<Admission> {
        Arc::new(Admission {
            face,
            caps,
            gate,
            open: Mutex::new(Open::default()),
        })
    }

    /// The face this admission guards (a metric label).
    pub fn face(&self) -> &'static str {
        self.face
    }

    /// Takes a slot for a connection from `peer`, or says why not (and counts it).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refused> {
        let source = canonical(peer);
        let verdict = self.take(source);
        match verdict {
            Ok(()) => {
                crate::metrics::get()
                    .connections_open
                    .with_label_values(&[self.face])
                    .inc();
                Ok(Admitted {
                    admission: self.clone(),
                    source,
                })
            }
            Err(why) => {
                crate::metrics::get()
                    .connections_refused
                    .with_label_values(&[self.face, why.label()])
                    .inc();
                Err(why)
            }
        }
    }

    fn take(&self, source: IpAddr) -> Result<(), Refused> {
        if let Some(gate) = &self.gate {
            if !gate(source) {
                return Err(Refused::Source);
            }
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.caps.total {
            return Err(Refused::TotalCap);
        }
        let n = open.by_source.entry(source).or_insert(0);
        if *n >= self.caps.per_source {
            if *n == 0 {
                open.by_source.remove(&source);
            }
            return Err(Refused::SourceCap);
        }
        *n += 1;
        open.total += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_hold_and_release() {
        let a = Admission::new(
            "test",
            Caps {
                total: 3,
                per_source: 2,
            },
            None,
        );
        let one = a.admit(ip("127.0.0.2")).unwrap();
        let _two = a.admit(ip("127.0.0.2")).unwrap();
        assert_eq!(a.admit(ip("127.0.0.2")).unwrap_err(), Refused::SourceCap);
        // IPv4-mapped IPv6 is the same source
        assert_eq!(
            a.admit(ip("::ffff:127.0.0.2")).unwrap_err(),
            Refused::SourceCap
        );
        let _three = a.admit(ip("127.0.0.3")).unwrap();
        assert_eq!(a.admit(ip("127.0.0.4")).unwrap_err(), Refused::TotalCap);
        drop(one);
        let _again = a.admit(ip("127.0.0.2")).unwrap();
    }

    #[test]
    fn the_gate_refuses_before_any_slot_is_taken() {
        let a = Admission::new(
            "test",
            Caps {
                total: 1,
                per_source: 1,
            },
            Some(Box::new(|ip: IpAddr| {
                ip == "127.0.0.2".parse::<IpAddr>().unwrap()
            })),
        );
        assert_eq!(a.admit(ip("127.0.0.3")).unwrap_err(), Refused::Source);
        let _ok = a.admit(ip("127.0.0.2")).unwrap();
    }
}
