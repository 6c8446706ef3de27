//! `v8box audit verify`: JSON, the hash chain, each record's own hash, and the `seq` order;
//! then that the log is whole: every run has its `run_end`, every intent its outcome.

use std::collections::BTreeMap;

use serde_json::Value;

use super::seal::{split_sig, PublicKey, Trust, CHECKPOINT};
use super::{escaped, sha256_hex, unseal, GENESIS};

/// The result of verifying a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record checks out.
    Ok {
        /// How many records were verified.
        records: u64,
    },
    /// Every record checks out, but the log is not whole: a run without its `run_end`, an
    /// intent without its outcome — a log whose tail was cut at a line boundary, or that is
    /// still being written.
    Incomplete {
        /// How many records were verified.
        records: u64,
        /// What is missing, one line each (escaped, ready to print), in `seq` order.
        missing: Vec<String>,
    },
    /// The first bad line (1-based) and why.
    Bad {
        /// The 1-based line number of the first bad record.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// What verifying a log found: the verdict on its records, and how much of it is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The records' chain, their order and whether the log is whole; with a key, the
    /// checkpoints' signatures too (a bad one is `Verdict::Bad` on its line).
    pub verdict: Verdict,
    /// Checkpoint records in the log (with a key: those verified, up to the first bad line).
    pub checkpoints: u64,
    /// Whether a key was given, so that the checkpoints were checked.
    pub keyed: bool,
    /// The `seq` of the last checkpoint (0: none): every record up to it is sealed (with a
    /// key; without one, nothing is proven).
    pub sealed_through: u64,
    /// The first and last `seq` of the records after the last checkpoint, if there are any:
    /// nothing proves that they are as they were written.
    pub unsealed: Option<(u64, u64)>,
}

impl Report {
    /// Whether the log holds: `Verdict::Ok` and, with a key, every record sealed.
    pub fn holds(&self) -> bool {
        matches!(self.verdict, Verdict::Ok { .. }) && !(self.keyed && self.unsealed.is_some())
    }
}

/// Verifies the bytes of an audit log: its chain, and that it is whole (see `verify_report`).
pub fn verify(log: &[u8]) -> Verdict {
    verify_report(log, None).verdict
}

/// Verifies the bytes of an audit log and, with `key` (the verification key of the key pair
/// that sealed it), every checkpoint in it: each one's epoch follows the last, its key is
/// certified by the last one's (the first by `key`), and its signature covers its own text and
/// so, through `prev`, every record before it. The first record that does not hold is
/// `Verdict::Bad` on its line; records after the last checkpoint are `unsealed`.
pub fn verify_report(log: &[u8], key: Option<&PublicKey>) -> Report {
    let mut trust = key.map(Trust::new);
    let mut report = Report {
        verdict: Verdict::Ok { records: 0 },
        checkpoints: 0,
        keyed: key.is_some(),
        sealed_through: 0,
        unsealed: None,
    };
    report.verdict = walk(log, |n, value, body| {
        if value.get("kind").and_then(Value::as_str) != Some(CHECKPOINT) {
            return Ok(());
        }
        if let Some(trust) = trust.as_mut() {
            let Some((signed, sig)) = split_sig(body) else {
                return Err("the checkpoint does not end with its \"sig\" field".into());
            };
            let expect = (report.sealed_through + 1, n as u64 - 1);
            trust.check(value, &signed, sig).map_err(|why| {
                format!(
                    "checkpoint seq {n} (sealing records {}..{}) does not verify: {why}",
                    expect.0, expect.1
                )
            })?;
            let covers = (
                value.get("first").and_then(Value::as_u64),
                value.get("last").and_then(Value::as_u64),
            );
            if covers != (Some(expect.0), Some(expect.1)) {
                return Err(format!(
                    "the checkpoint says it seals records {}..{}, but they are {}..{}",
                    covers.0.map_or("?".into(), |v| v.to_string()),
                    covers.1.map_or("?".into(), |v| v.to_string()),
                    expect.0,
                    expect.1
                ));
            }
        }
        report.checkpoints += 1;
        report.sealed_through = n as u64;
        Ok(())
    });
    let records = match &report.verdict {
        Verdict::Ok { records } | Verdict::Incomplete { records, .. } => *records,
        Verdict::Bad { .. } => 0,
    };
    if records > report.sealed_through && !matches!(report.verdict, Verdict::Bad { .. }) {
        report.unsealed = Some((report.sealed_through + 1, records));
    }
    report
}

/// Checks every record's JSON, hash, `prev` and `seq`, calling `each` with the 1-based line
/// number, the record and its text without `hash` for each one that holds (an error from it
/// is the verdict on that line); then that the log is whole.
fn walk(log: &[u8], mut each: impl FnMut(usize, &Value, &[u8]) -> Result<(), String>) -> Verdict {
    let mut lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    // A complete log ends with a newline, leaving one empty piece after the last record.
    let cut_short = match lines.last() {
        Some(last) if last.is_empty() => {
            lines.pop();
            None
        }
        Some(_) => lines.pop(),
        None => None,
    };
    let mut prev = GENESIS.to_string();
    let mut whole = Whole::default();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let bad = |reason: String| Verdict::Bad { line: n, reason };
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return bad(format!("not a JSON record ({e})")),
        };
        let Some((body, stored)) = unseal(line) else {
            return bad("the record does not end with its \"hash\" field".into());
        };
        if sha256_hex(&body) != stored {
            return bad("the record was changed: its text does not match its hash".into());
        }
        match value.get("prev").and_then(Value::as_str) {
            Some(p) if p == prev => {}
            Some(_) if n == 1 => {
                return bad("the first record does not start the chain (a record before it was removed)".into())
            }
            Some(_) => {
                return bad(format!(
                    "the chain is broken: \"prev\" does not match line {}'s hash (a record was removed, inserted or moved)",
                    n - 1
                ))
            }
            None => return bad("the record has no \"prev\" field".into()),
        }
        match value.get("seq").and_then(Value::as_u64) {
            Some(s) if s == n as u64 => {}
            Some(s) => return bad(format!("seq is {s}, expected {n}")),
            None => return bad("the record has no \"seq\" field".into()),
        }
        if let Err(reason) = each(n, &value, &body) {
            return bad(reason);
        }
        prev = stored.to_string();
        whole.add(&value);
    }
    if let Some(partial) = cut_short {
        let n = lines.len() + 1;
        return Verdict::Bad {
            line: n,
            reason: format!(
                "the last line is cut short ({} bytes, no end of line): the log was interrupted while \
                 writing it (e.g. the process was killed); the {} records before it verify",
                partial.len(),
                lines.len()
            ),
        };
    }
    let records = lines.len() as u64;
    let missing = whole.missing();
    if missing.is_empty() {
        Verdict::Ok { records }
    } else {
        Verdict::Incomplete { records, missing }
    }
}

/// The runs and intents of a log still waiting for their end, as its records are read.
///
/// A run is its `run_start` record (by `seq`) and its worker; its `run_end` names it in `run`
/// (the `run_start`'s `seq`): several workers, and runs appended one after another, share a
/// log, and a worker's run may end after another's has started. A `run_end` without `run`
/// (written by an older v8box) ends the last open run of its worker. An intent is ended by
/// the `outcome` whose `ref` is its `seq`, or declared unfinished by its run's `run_end`
/// (`intents_unfinished`: still running when the run ended; a late outcome may follow).
#[derive(Default)]
struct Whole {
    /// Open runs: `run_start` seq → worker.
    runs: BTreeMap<u64, String>,
    /// Open intents: seq → (op, resource).
    intents: BTreeMap<u64, (String, String)>,
    /// Records that end nothing open, by seq, as printed.
    strays: BTreeMap<u64, String>,
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Whole {
    fn add(&mut self, record: &Value) {
        let seq = record.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let worker = text(record, "worker");
        match record.get("kind").and_then(Value::as_str) {
            Some("run_start") => {
                self.runs.insert(seq, worker);
            }
            Some("run_end") => {
                let run = match record.get("run").and_then(Value::as_u64) {
                    Some(run) => self
                        .runs
                        .get(&run)
                        .is_some_and(|w| *w == worker)
                        .then_some(run),
                    None => self
                        .runs
                        .iter()
                        .rev()
                        .find(|(_, w)| **w == worker)
                        .map(|(s, _)| *s),
                };
                match run {
                    Some(run) => {
                        self.runs.remove(&run);
                    }
                    None => {
                        let named = record
                            .get("run")
                            .map(|r| format!(" names run {r}, but it"))
                            .unwrap_or_default();
                        self.strays.insert(
                            seq,
                            format!(
                                "run_end seq {seq} (worker {}){named} ends no run that is still going",
                                escaped(&worker)
                            ),
                        );
                    }
                }
                let declared = record.get("intents_unfinished").and_then(Value::as_array);
                for intent in declared.into_iter().flatten().filter_map(Value::as_u64) {
                    self.intents.remove(&intent);
                }
            }
            Some("intent") => {
                self.intents
                    .insert(seq, (text(record, "op"), text(record, "resource")));
            }
            Some("outcome") => {
                let of = record.get("ref").and_then(Value::as_u64);
                // A late outcome may follow its intent's declaration in `intents_unfinished`.
                let late = record.get("after_run_end").is_some();
                if of.and_then(|r| self.intents.remove(&r)).is_none() && !late {
                    let of = of.map_or("no intent".to_string(), |r| format!("intent seq {r}"));
                    self.strays.insert(
                        seq,
                        format!("outcome seq {seq} refers to {of}, which is not an open intent"),
                    );
                }
            }
            _ => {}
        }
    }

    /// What is still open at the end of the log, and what ended nothing, in `seq` order.
    fn missing(self) -> Vec<String> {
        let mut all = self.strays;
        for (seq, worker) in self.runs {
            all.insert(
                seq,
                format!(
                    "run started at seq {seq} (worker {}) has no run_end",
                    escaped(&worker)
                ),
            );
        }
        for (seq, (op, resource)) in self.intents {
            all.insert(
                seq,
                format!(
                    "intent seq {seq} ({} {}) has no outcome",
                    escaped(&op),
                    escaped(&resource)
                ),
            );
        }
        all.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn sample() -> Vec<u8> {
        let buf = Buf::default();
        let log = AuditLog::to_writer(buf.clone(), "w");
        for i in 0..4 {
            log.lifecycle(
                if i % 2 == 0 { "run.start" } else { "run.end" },
                &format!("s{i}"),
                "ok",
                0,
                serde_json::json!({}),
            );
        }
        let bytes = buf.0.lock().unwrap().clone();
        bytes
    }

    fn lines(log: &[u8]) -> Vec<Vec<u8>> {
        log.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    }

    #[test]
    fn a_clean_log_verifies() {
        assert_eq!(verify(&sample()), Verdict::Ok { records: 4 });
    }

    #[test]
    fn an_edited_byte_is_found_on_its_line() {
        let mut l = lines(&sample());
        let pos = l[3].iter().position(|&b| b == b's').unwrap();
        l[3][pos + 5] ^= 1;
        assert!(
            matches!(verify(&join(&l)), Verdict::Bad { line: 4, .. }),
            "{:?}",
            verify(&join(&l))
        );
    }

    #[test]
    fn deleted_inserted_swapped_and_cut_lines_are_found() {
        let l = lines(&sample());
        let deleted: Vec<_> = [&l[0], &l[2], &l[3]].into_iter().cloned().collect();
        assert!(matches!(
            verify(&join(&deleted)),
            Verdict::Bad { line: 2, .. }
        ));
        let swapped: Vec<_> = [&l[0], &l[2], &l[1], &l[3]].into_iter().cloned().collect();
        assert!(matches!(
            verify(&join(&swapped)),
            Verdict::Bad { line: 2, .. }
        ));
        let first_gone: Vec<_> = l[1..].to_vec();
        assert!(matches!(
            verify(&join(&first_gone)),
            Verdict::Bad { line: 1, .. }
        ));
        let mut cut = join(&l);
        cut.truncate(cut.len() - 20);
        match verify(&cut) {
            Verdict::Bad { line: 4, reason } => assert!(reason.contains("cut short"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tail_cut_at_a_line_boundary_is_incomplete() {
        let buf = Buf::default();
        let log = AuditLog::to_writer(buf.clone(), "w");
        let a = log.for_worker("a");
        let start = log.lifecycle("run.start", "s", "ok", 0, serde_json::json!({}));
        let other = a.lifecycle("run.start", "t", "ok", 0, serde_json::json!({}));
        let mut write = crate::audit::tests::info("fs.writeFile", "/x\u{1b}[2J", "[fs] write");
        write.allowed = true;
        let intent = log.intent(&write);
        log.outcome(intent, write.clone(), "ok", 0, None);
        let open = log.intent(&write);
        // `a`'s run ends naming its run_start, after `w`'s started: runs are paired by `run`.
        a.lifecycle("run.end", "t", "ok", 0, serde_json::json!({ "run": other }));
        log.flush();
        let bytes = buf.0.lock().unwrap().clone();
        assert_eq!(
            verify(&bytes),
            Verdict::Incomplete {
                records: 6,
                missing: vec![
                    format!("run started at seq {start} (worker w) has no run_end"),
                    format!("intent seq {open} (fs.writeFile /x\\x1b[2J) has no outcome"),
                ]
            }
        );
        // Its end, declaring the intent still running, makes it whole.
        let end = serde_json::json!({ "run": start, "intents_unfinished": [open] });
        log.lifecycle("run.end", "s", "ok", 0, end);
        let bytes = buf.0.lock().unwrap().clone();
        assert_eq!(verify(&bytes), Verdict::Ok { records: 7 });
    }
}
