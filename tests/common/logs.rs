//! A process-wide log capture at TRACE (every crate, and the `log` crate's records), for
//! "no secret in any log line" checks. One subscriber per process: a binary that uses it
//! is its own test binary.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything logged so far, shared with the subscriber's writer.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// The bytes logged so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    /// The text logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// The capture, installed as the global subscriber on first use.
pub fn capture() -> Capture {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Capture::default();
        let writer = buf.clone();
        // `try_init` also routes the `log` crate's records (hyper, rustls, vendor SDKs)
        // into the capture
        tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .expect("one subscriber per test binary");
        buf
    })
    .clone()
}
