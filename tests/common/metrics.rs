//! Reading a live daemon's `/metrics`: the exposition parsed into samples, for tests that
//! check what an operator's Prometheus, alerts and dashboard will see.

use std::collections::BTreeSet;

use super::daemon::{http_get, Daemon};

/// One sample: metric name, labels as written (`a="x",b="y"`, sorted by the encoder),
/// value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: String,
    pub value: f64,
}

/// The daemon's exposition text (fails the test unless `/metrics` answers 200).
pub fn scrape(d: &Daemon) -> String {
    let (status, text) = http_get(&d.admin, "/metrics");
    assert_eq!(status, 200, "{text}");
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Every sample of an exposition text.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line has a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Sample {
                name: name.to_owned(),
                labels: labels.to_owned(),
                value: value.parse().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The metric families an exposition declares (`# TYPE` lines): also those with no
/// sample yet (a vector nobody has incremented).
pub fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The value of the sample `name{labels}` (labels exactly as encoded), if present.
pub fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|s| s.name == name && s.labels == labels)
        .map(|s| s.value)
}
