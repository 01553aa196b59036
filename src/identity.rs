//! Client identities: `uri:<URI>` (a URI SAN, e.g. SPIFFE) or `cn:<NAME>` (the subject
//! common name). Pure; no I/O.
//!
//! The kind is part of the identity. Before it was, a configured `spiffe://…` matched
//! either a URI SAN or a CN with the same text, so any certificate the CA issued with
//! that CN could act as the workload. Plain strings in `[[clients]].identity` and in
//! policy `clients` still work (deprecated): one containing `://` means `uri:`, any
//! other `cn:`.

use std::fmt;

/// A typed client identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A URI SAN.
    Uri(String),
    /// A subject common name.
    Cn(String),
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Uri(u) => write!(f, "uri:{u}"),
            Identity::Cn(c) => write!(f, "cn:{c}"),
        }
    }
}

impl Identity {
    /// Reads a configured identity; the flag is true for the deprecated plain form.
    pub fn parse_config(s: &str) -> Result<(Identity, bool), String> {
        let s = s.trim();
        let (id, plain) = if let Some(u) = s.strip_prefix("uri:") {
            (Identity::Uri(u.to_owned()), false)
        } else if let Some(c) = s.strip_prefix("cn:") {
            (Identity::Cn(c.to_owned()), false)
        } else if s.contains("://") {
            (Identity::Uri(s.to_owned()), true)
        } else {
            (Identity::Cn(s.to_owned()), true)
        };
        match &id {
            Identity::Uri(u) if !u.contains(':') || u.chars().any(char::is_whitespace) => {
                Err(format!("{u:?} is not a URI (expected uri:scheme:…)"))
            }
            Identity::Uri(v) | Identity::Cn(v) if v.is_empty() => {
                Err("expected a non-empty identity".into())
            }
            _ => Ok((id, plain)),
        }
    }

    /// The canonical text (`uri:…` / `cn:…`) of a configured identity, if it is valid.
    pub fn canonical(s: &str) -> Option<String> {
        Identity::parse_config(s).ok().map(|(i, _)| i.to_string())
    }
}

/// Whether configured entry `entry` (typed, plain or `*`) names the connection's typed
/// identity `who`.
pub fn matches(entry: &str, who: &str) -> bool {
    entry == "*" || entry == who || Identity::canonical(entry).is_some_and(|c| c == who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_part_of_the_identity() {
        assert!(matches("uri:spiffe://a/b", "uri:spiffe://a/b"));
        assert!(matches("spiffe://a/b", "uri:spiffe://a/b"));
        // a CN spelling the URI is not the URI
        assert!(!matches("spiffe://a/b", "cn:spiffe://a/b"));
        assert!(!matches("uri:spiffe://a/b", "cn:spiffe://a/b"));
        assert!(matches("svc", "cn:svc"));
        assert!(matches("cn:svc", "cn:svc"));
        assert!(!matches("cn:svc", "uri:svc"));
        assert!(matches("*", "cn:anyone"));
    }

    #[test]
    fn config_forms() {
        assert_eq!(
            Identity::parse_config("cn:payments").unwrap(),
            (Identity::Cn("payments".into()), false)
        );
        assert_eq!(
            Identity::parse_config("payments").unwrap(),
            (Identity::Cn("payments".into()), true)
        );
        assert_eq!(
            Identity::parse_config("spiffe://x/y").unwrap(),
            (Identity::Uri("spiffe://x/y".into()), true)
        );
        assert!(Identity::parse_config("uri:not a uri").is_err());
        assert!(Identity::parse_config("cn:").is_err());
    }
}
