//! A real Prometheus server (Debian's `prometheus` package) scraping a test daemon and
//! evaluating keyward's rules, for tests that watch an alert fire and resolve.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Prometheus binary: `/usr/bin/prometheus` or the first on `PATH`. None when it is
/// not installed; under `CI=true` that fails the test instead (scripts/test installs it,
/// so a CI run without it is a broken run, not a skipped test).
pub fn binary() -> Option<PathBuf> {
    let found = std::iter::once(PathBuf::from("/usr/bin/prometheus"))
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("prometheus"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file());
    if found.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("prometheus is not installed (CI=true): scripts/test installs Debian's `prometheus` package");
    }
    found
}

/// keyward's rules with every `for:` shortened to one second, so a test sees an alert
/// fire within a few evaluations.
pub fn short_rules(repo_rules: &str) -> String {
    repo_rules
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 1s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A running Prometheus; killed and reaped on drop.
pub struct Prometheus {
    child: Child,
    /// `host:port` of its HTTP API.
    pub addr: String,
}

impl Prometheus {
    /// Starts `bin` in `dir` with a 1 s scrape of `target` (job `keyward`) and 1 s rule
    /// evaluation of `rules`; waits (bounded) until its API is ready.
    pub fn start(bin: &Path, dir: &Path, target: &str, rules: &str) -> Prometheus {
        std::fs::write(dir.join("keyward.rules.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: keyward\n    static_configs:\n      - targets: ['{target}']\n",
            dir.join("keyward.rules.yml").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus { child, addr };
        p.wait_for(Duration::from_secs(60), "its API to be ready", |p| {
            p.get("/-/ready").is_some_and(|(s, _)| s == 200)
        });
        p
    }

    /// GET `path` over HTTP/1.0 (no chunked answer): status and body, None when the
    /// connection fails.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.get(9..12)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((status, body))
    }

    /// `/api/v1/alerts` as (alert name, state) pairs.
    pub fn alerts(&self) -> Vec<(String, String)> {
        let Some((200, body)) = self.get("/api/v1/alerts") else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The value of an instant query's single sample, if it has one.
    pub fn query(&self, expr: &str) -> Option<String> {
        let q: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = self.get(&format!("/api/v1/query?query={q}"))?;
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    }

    /// Polls `ready` (bounded) and fails the test, with Prometheus' log, when it never
    /// holds.
    pub fn wait_for(&self, within: Duration, what: &str, ready: impl Fn(&Prometheus) -> bool) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if ready(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("waited {within:?} for {what}; alerts {:?}", self.alerts());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
