//! Audit sequencing: which record a finished call gets — a `call`, the `outcome` of its
//! `intent`, or a late record naming the run's `run_end` — and the order of records written
//! on I/O threads against the run's end (docs/AUDIT.md "Late records").

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{AuditLog, CallInfo};

/// The end of a run as the I/O pool's threads see it. Held while `run_end` is written, so that
/// a call finishing on another thread meanwhile is recorded either before it (and not counted
/// as unfinished) or as late.
#[derive(Default)]
pub struct Sequence(Mutex<RunEnd>);

#[derive(Default)]
struct RunEnd {
    /// The `seq` of the run's `run_end` record, once written.
    seq: Option<u64>,
    /// Calls sent to the I/O pool whose record is not written yet.
    unrecorded: usize,
    /// The `seq`s of the intents among them (side effects whose outcome is not written yet).
    intents: BTreeSet<u64>,
    /// The `seq` of the run's `run_start` record (0: none), which `run_end` names as `run`.
    start: u64,
}

/// What the run's `run_end` record says about the calls it leaves behind (`Sequence::end_run`).
pub struct Unfinished {
    /// Calls still running whose records are not written.
    pub calls: usize,
    /// The intents among them, by `seq`: side effects whose outcome is not on record.
    pub intents: Vec<u64>,
    /// The `seq` of the run's `run_start` record (0: none was written).
    pub run: u64,
}

/// How a finished call is recorded.
pub struct Ending {
    /// Its outcome (`ok` or an error code's name).
    pub outcome: &'static str,
    /// Bytes it moved out to the script.
    pub bytes_out: u64,
    /// When it started (`None`: no duration).
    pub started: Option<Instant>,
    /// The `seq` of its intent, for a side effect.
    pub intent: Option<u64>,
}

impl Sequence {
    fn lock(&self) -> MutexGuard<'_, RunEnd> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the run's `run_end` record with `write`, given what is still running (it returns
    /// the record's `seq`); calls that finish afterwards are recorded as late, naming it. A run
    /// has one `run_end`: the first call writes it (the run's own end, or the watchdog giving
    /// up on a stuck run), and returns whether it did.
    pub fn end_run(&self, write: impl FnOnce(Unfinished) -> u64) -> bool {
        let mut end = self.lock();
        if end.seq.is_some() {
            return false;
        }
        let unfinished = Unfinished {
            calls: end.unrecorded,
            intents: end.intents.iter().copied().collect(),
            run: end.start,
        };
        end.seq = Some(write(unfinished));
        true
    }

    /// Notes the `seq` of the run's `run_start` record, for its `run_end` to name.
    pub fn started_run(&self, run_start: u64) {
        self.lock().start = run_start;
    }

    /// A call (with its intent's `seq`, 0 for none) leaves for the I/O pool: its record is owed.
    pub fn pooled(&self, intent: u64) {
        let mut end = self.lock();
        end.unrecorded += 1;
        if intent != 0 {
            end.intents.insert(intent);
        }
    }

    /// Records a call finished on the isolate's thread (which writes `run_end` itself, after
    /// its own records).
    pub fn finished(&self, audit: &AuditLog, info: CallInfo, end: Ending) {
        record(audit, info, end, None);
    }

    /// Records a call finished on an I/O pool thread, ordered against `run_end`. `last`: the
    /// call's own record, which it no longer owes (see `pooled`); a redirect hop's record is
    /// not.
    pub fn finished_on_pool(&self, audit: &AuditLog, info: CallInfo, ending: Ending, last: bool) {
        let mut end = self.lock();
        if last {
            end.unrecorded -= 1;
            if let Some(seq) = ending.intent {
                end.intents.remove(&seq);
            }
        }
        record(audit, info, ending, end.seq);
    }
}

/// Its `outcome` if it had an intent, else a `call`; with `run_end` (that record's `seq`), as a
/// late record.
fn record(audit: &AuditLog, info: CallInfo, e: Ending, run_end: Option<u64>) {
    match (run_end, e.intent) {
        (Some(end), _) => {
            audit.late(end, info, e.outcome, e.bytes_out, e.started, e.intent);
        }
        (None, Some(seq)) => {
            audit.outcome(seq, info, e.outcome, e.bytes_out, e.started);
        }
        (None, None) => {
            audit.call(info, e.outcome, e.bytes_out, e.started);
        }
    }
}
