//! Table-driven bad-input corpora (tests/bad_input_api.rs, tests/bad_input_webhook.rs):
//! cases grouped by class, each the status and code it must get, and the verdicts of a
//! run over a live face: the answer's status, code and message, and that the store did
//! not change ([`super::store::Snapshot`]).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::Path;

use super::store::{AuditRow, Snapshot};

/// The answer a case must get: HTTP status and `error.code`.
pub type Expect = (u16, &'static str);

/// One case: a request of the face's own shape (`I`), and what it must get.
pub struct Case<I> {
    pub class: &'static str,
    pub name: String,
    pub input: I,
    pub status: u16,
    pub code: &'static str,
}

impl<I> Case<I> {
    /// "[class] name", as failures name the case.
    pub fn what(&self) -> String {
        format!("[{}] {}", self.class, self.name)
    }
}

/// The cases of one class, added through short builders each face defines on it.
pub struct Class<'a, I> {
    pub class: &'static str,
    pub out: &'a mut Vec<Case<I>>,
}

impl<'a, I> Class<'a, I> {
    pub fn new(class: &'static str, out: &'a mut Vec<Case<I>>) -> Self {
        Class { class, out }
    }

    pub fn push(&mut self, name: impl Into<String>, input: I, expect: Expect) {
        self.out.push(Case {
            class: self.class,
            name: name.into(),
            input,
            status: expect.0,
            code: expect.1,
        });
    }
}

/// Edits a value in an expression: `base().tap(|v| v["field"] = bad)` is a case's
/// input that differs from a valid one in one place.
pub trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for serde_json::Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

/// Fails the test when two cases share a class and a name (a copy-pasted case that
/// was meant to differ).
pub fn assert_distinct<I>(cases: &[Case<I>]) {
    let mut names = HashSet::new();
    for c in cases {
        assert!(
            names.insert(format!("{}/{}", c.class, c.name)),
            "duplicate case {}",
            c.what()
        );
    }
}

/// A face's answer to one case.
pub struct Answer {
    pub status: u16,
    /// `error.code`, or what stands for it on a success (the webhook's "duplicate").
    pub code: String,
    pub message: Option<String>,
    /// The answer's `auditId`, whatever its JSON type (a refusal that is not audited must
    /// not carry one at all).
    pub audit_id: Option<serde_json::Value>,
    /// What a failure prints of the answer.
    pub shown: String,
}

/// A face under a corpus: how a case is sent, and which audit records it may write.
pub trait Face<I> {
    /// Sends one case; `Err` when no HTTP answer came.
    fn send(&self, input: &I) -> impl Future<Output = Result<Answer, String>>;

    /// Checks the audit records the case wrote (nothing else may change); `Err` says
    /// what is wrong with them.
    fn audited(&self, case: &Case<I>, answer: &Answer, written: &[AuditRow]) -> Result<(), String>;
}

/// Sends every case in turn, checking each answer's status, code and message, that
/// the store is as it was (a change fails at once: later cases would compare against
/// it) and the audit records; fails listing every failed case. Returns how many cases
/// of each class ran.
pub async fn run<I>(
    face: &impl Face<I>,
    db: &Path,
    cases: &[Case<I>],
) -> BTreeMap<&'static str, usize> {
    let mut failures = Vec::new();
    let mut per_class = BTreeMap::new();
    for case in cases {
        let what = case.what();
        let snap = Snapshot::take(db);
        let a = match face.send(&case.input).await {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{what}: no HTTP answer: {e}"));
                continue;
            }
        };
        *per_class.entry(case.class).or_default() += 1;
        if (a.status, a.code.as_str()) != (case.status, case.code) {
            failures.push(format!(
                "{what}: want {} {}, got {} {}",
                case.status, case.code, a.status, a.shown
            ));
        }
        if case.status != 200 && a.message.as_deref().is_none_or(str::is_empty) {
            failures.push(format!("{what}: no message: {}", a.shown));
        }
        let written = snap.unchanged(db, &what);
        if let Err(e) = face.audited(case, &a, &written) {
            failures.push(format!("{what}: {e}"));
        }
    }
    super::assert_no_failures(&failures, cases.len());
    per_class
}
