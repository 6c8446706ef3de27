//! The dispatcher: decode → validate → policy check → execute → encode → answer.
//!
//! It runs inside `$send` on the isolate's thread. Quick operations (clock, randomness, env,
//! host channels, refusals of every kind, reads and writes of small regular files) are answered
//! at once through `$send`'s return value; other file and network operations go to the I/O pool
//! and are answered later through `$recv` (the runtime's event loop delivers them); sleeps
//! become timers owned by the event loop.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use prost::Message;

use crate::audit::{AuditLog, CallInfo, Parts};
use crate::loader::normalize;
use crate::ops::{self, fs::FsRoots, Done, OpError};
use crate::policy::{Decision, NetTarget, Permission, Policy};
use crate::proto::{self, call::Op, reply, Empty, ErrorCode, Reply};
use crate::worker::{TerminateHandle, TerminationReason};

/// The longest file path a call may name, in bytes: Linux's `PATH_MAX`, past which no file
/// can be opened by its name.
const MAX_PATH_BYTES: usize = 4096;

/// Which stream a line of script output belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: `$print`, `console.log`, `console.info`, `console.debug`.
    Stdout,
    /// Standard error: `console.warn`, `console.error`.
    Stderr,
}

/// Where script output goes (`$print`, `console.*`).
pub type OutputFn = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// Host requests waiting for the script's answer, by request id.
pub type PendingRequests = Arc<Mutex<HashMap<u64, Sender<Result<bytes::Bytes, String>>>>>;

/// Messages for the event loop.
pub enum Event {
    /// An operation finished on the I/O pool: deliver this reply through `$recv`.
    Reply {
        /// The call id the reply answers.
        id: u64,
        /// The encoded `Reply`.
        bytes: Vec<u8>,
    },
    /// Something outside (the watchdog) wants the loop to look at the worker's state.
    Wake,
}

/// What the dispatcher shares with I/O threads.
pub struct Shared {
    /// The run's policy.
    pub policy: Policy,
    /// The file-system roots the policy's file grants open.
    pub fs: FsRoots,
    /// The run's audit log.
    pub audit: AuditLog,
    quotas: Mutex<HashMap<&'static str, (u64, u64)>>,
    max_message_bytes: usize,
    epoch: Instant,
    /// The end of the run as the I/O pool's threads see it. Held while `run_end` is written,
    /// so that a call finishing on another thread meanwhile is recorded either before it (and
    /// not counted as unfinished) or as late (see `record_finished`).
    run_end: Mutex<RunEnd>,
}

/// See `Shared::run_end`.
#[derive(Default)]
struct RunEnd {
    /// The `seq` of the run's `run_end` record, once written.
    seq: Option<u64>,
    /// Calls sent to the I/O pool whose record is not written yet.
    unrecorded: usize,
    /// The `seq`s of the intents among them (side effects whose outcome is not written yet).
    intents: std::collections::BTreeSet<u64>,
    /// The `seq` of the run's `run_start` record (0: none), which `run_end` names as `run`.
    start: u64,
}

/// What the run's `run_end` record says about the calls it leaves behind (`Shared::end_run`).
pub struct Unfinished {
    /// Calls still running whose records are not written.
    pub calls: usize,
    /// The intents among them, by `seq`: side effects whose outcome is not on record.
    pub intents: Vec<u64>,
    /// The `seq` of the run's `run_start` record (0: none was written).
    pub run: u64,
}

impl Shared {
    /// State for a run under `policy`, recording to `audit`, with no quota used yet.
    pub fn new(policy: Policy, audit: AuditLog) -> Shared {
        Shared {
            fs: FsRoots::new(&policy, audit.file()),
            max_message_bytes: policy.limits.max_message_bytes(),
            policy,
            audit,
            quotas: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            run_end: Mutex::default(),
        }
    }

    fn run_end(&self) -> std::sync::MutexGuard<'_, RunEnd> {
        self.run_end.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the run's `run_end` record with `write`, given the number of calls still running
    /// whose records are not written (it returns the record's `seq`); calls that finish
    /// afterwards are recorded as late, naming it (docs/AUDIT.md). A run has one `run_end`:
    /// the first call writes it (the run's own end, or the watchdog giving up on a stuck run),
    /// and returns whether it did.
    pub fn end_run(&self, write: impl FnOnce(Unfinished) -> u64) -> bool {
        let mut end = self.run_end();
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
        self.run_end().start = run_start;
    }

    /// Records a finished call: its `outcome` if it had the intent `intent`, else a `call`;
    /// with `run_end` (that record's `seq`), as a late record.
    fn record_finished(
        &self,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
        intent: Option<u64>,
        run_end: Option<u64>,
    ) {
        match (run_end, intent) {
            (Some(end), _) => {
                self.audit
                    .late(end, info, outcome, bytes_out, started, intent);
            }
            (None, Some(seq)) => {
                self.audit.outcome(seq, info, outcome, bytes_out, started);
            }
            (None, None) => {
                self.audit.call(info, outcome, bytes_out, started);
            }
        }
    }

    /// `record_finished` on an I/O pool thread, ordered against `run_end` (the isolate's
    /// thread needs no such care: it writes `run_end` itself, after its own records). `last`:
    /// the call's own record, which it no longer owes (see `RunEnd::unrecorded`); a redirect
    /// hop's record is not.
    fn record_from_pool(
        &self,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
        intent: Option<u64>,
        last: bool,
    ) {
        let mut end = self.run_end();
        if last {
            end.unrecorded -= 1;
            if let Some(seq) = intent {
                end.intents.remove(&seq);
            }
        }
        self.record_finished(info, outcome, bytes_out, started, intent, end.seq);
    }

    /// Counts one call against the op's quota.
    fn charge_call(&self, op: &'static str) -> Result<(), OpError> {
        let Some(q) = self.policy.quotas.get(op) else {
            return Ok(());
        };
        let mut used = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        let entry = used.entry(op).or_default();
        if let Some(limit) = q.calls {
            if entry.0 >= limit {
                return Err(OpError::new(
                    ErrorCode::QuotaExceeded,
                    format!("{op}: quota of {limit} calls used up ([quotas.\"{op}\"] calls)"),
                ));
            }
        }
        entry.0 += 1;
        Ok(())
    }

    /// Counts bytes moved against the op's quota.
    fn charge_bytes(&self, op: &'static str, n: u64) -> Result<(), OpError> {
        let Some(q) = self.policy.quotas.get(op) else {
            return Ok(());
        };
        let Some(limit) = q.bytes else { return Ok(()) };
        let mut used = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        let entry = used.entry(op).or_default();
        if entry.1 + n > limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("{op}: quota of {limit} bytes exceeded ([quotas.\"{op}\"] bytes)"),
            ));
        }
        entry.1 += n;
        Ok(())
    }
}

/// Event-loop state that only the isolate's thread touches.
#[derive(Default)]
struct LoopState {
    in_flight: usize,
    /// (deadline, call id) of armed sleeps, earliest first.
    timers: BTreeMap<(Instant, u64), ()>,
    timer_deadline: HashMap<u64, Instant>,
    /// The armed sleeps that do not keep the run alive (`Sleep.unref`).
    unref_timers: HashSet<u64>,
    exit_code: Option<i32>,
    listening: HashSet<String>,
}

/// Handles the script's calls for one run: checks each against the policy, executes it or
/// hands it to the I/O pool, records it in the audit log and answers it.
pub struct Dispatcher {
    shared: Arc<Shared>,
    events: Sender<Event>,
    state: RefCell<LoopState>,
    terminate: RefCell<Option<TerminateHandle>>,
    output: OutputFn,
    args: Vec<String>,
    cwd: PathBuf,
    host_out: HashMap<String, Sender<bytes::Bytes>>,
    requests: Option<PendingRequests>,
}

fn encode(reply: &Reply) -> Vec<u8> {
    reply.encode_to_vec()
}

/// The error of a call (`what`: its operation, and resource if known) that is not made because
/// the audit log can record nothing more (`why`).
fn not_recordable(what: &str, why: &str) -> OpError {
    OpError::new(
        ErrorCode::Io,
        format!("{what}: not done: {why}, and a call that cannot be recorded is not made"),
    )
}

fn outcome_name(result: &Result<reply::Result, OpError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code.name(),
    }
}

fn to_reply(id: u64, result: Result<reply::Result, OpError>) -> Reply {
    match result {
        Ok(r) => proto::reply(id, r),
        Err(e) => proto::error_reply(id, e.code, e.message),
    }
}

impl Shared {
    /// Now, for an audit record's duration; without an audit log, no clock is read (it was a
    /// tenth of a synchronous call's cost).
    fn clock(&self) -> Instant {
        if self.audit.enabled() {
            Instant::now()
        } else {
            self.epoch
        }
    }
}

/// What a denial says: `read "/etc/passwd" (allow with --allow-read=/etc/passwd or [fs] read)`.
fn panicked(op: &str) -> Done {
    Done::err(OpError::new(
        ErrorCode::Internal,
        format!("{op}: internal error (the operation panicked)"),
    ))
}

/// An operation that ran (inline or on the I/O pool), about to be charged, audited and answered.
struct Finished {
    id: u64,
    intent: u64,
    side_effect: bool,
    started: Instant,
    /// Run on the I/O pool (see `RunEnd::unrecorded`).
    pooled: bool,
}

impl Finished {
    /// Charges the bytes it moved, records its outcome and encodes its reply.
    fn answer(self, shared: &Shared, mut info: CallInfo, mut done: Done) -> Vec<u8> {
        info.resolved = done.resolved.take();
        if done.result.is_ok() && done.bytes_out > 0 && info.op != "fs.writeFile" {
            if let Err(e) = shared.charge_bytes(info.op, done.bytes_out) {
                done = Done::err(e);
            }
        }
        let outcome = outcome_name(&done.result);
        let intent = self.side_effect.then_some(self.intent);
        let started = Some(self.started);
        if self.pooled {
            shared.record_from_pool(info, outcome, done.bytes_out, started, intent, true);
        } else {
            shared.record_finished(info, outcome, done.bytes_out, started, intent, None);
        }
        encode(&to_reply(self.id, done.result))
    }
}

fn denied(permission: Permission, resource: &str) -> OpError {
    let verb = match permission {
        Permission::Read => "read",
        Permission::Write => "write",
        Permission::Net => "net",
        Permission::Env => "env",
        Permission::Host => "host",
        Permission::Module => "module",
    };
    OpError::new(
        ErrorCode::PermissionDenied,
        format!(
            "{verb} \"{resource}\" ({})",
            Policy::hint(permission, resource)
        ),
    )
}

impl Dispatcher {
    /// A dispatcher that sends late replies to `events`, output to `output`, gives the script
    /// `args`, and connects the given host channels and pending host requests.
    pub fn new(
        shared: Arc<Shared>,
        events: Sender<Event>,
        output: OutputFn,
        args: Vec<String>,
        host_out: HashMap<String, Sender<bytes::Bytes>>,
        requests: Option<PendingRequests>,
    ) -> Dispatcher {
        Dispatcher {
            shared,
            events,
            state: RefCell::new(LoopState::default()),
            terminate: RefCell::new(None),
            output,
            args,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            host_out,
            requests,
        }
    }

    /// Gives the dispatcher the worker's handle, so that `sys.exit` can stop the script.
    pub fn set_terminate_handle(&self, handle: TerminateHandle) {
        *self.terminate.borrow_mut() = Some(handle);
    }

    /// The state shared with I/O threads.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Calls on the pool plus armed timers (but those that do not keep the run alive).
    pub fn busy(&self) -> bool {
        let st = self.state.borrow();
        st.in_flight > 0 || st.timers.len() > st.unref_timers.len()
    }

    /// Calls running on the I/O pool (timers not counted).
    pub fn in_flight(&self) -> usize {
        self.state.borrow().in_flight
    }

    /// The code passed to `sys.exit`, if the script called it.
    pub fn exit_code(&self) -> Option<i32> {
        self.state.borrow().exit_code
    }

    /// Whether the script listens on any host channel.
    pub fn any_listener(&self) -> bool {
        !self.state.borrow().listening.is_empty()
    }

    /// The earliest timer deadline.
    pub fn next_timer(&self) -> Option<Instant> {
        self.state.borrow().timers.keys().next().map(|(t, _)| *t)
    }

    /// Removes and returns the call ids of timers due at `now`, in deadline order.
    pub fn due_timers(&self, now: Instant) -> Vec<u64> {
        let mut st = self.state.borrow_mut();
        let mut due = Vec::new();
        while let Some((&(t, id), _)) = st.timers.iter().next() {
            if t > now {
                break;
            }
            st.timers.remove(&(t, id));
            st.timer_deadline.remove(&id);
            st.unref_timers.remove(&id);
            due.push(id);
        }
        due
    }

    /// An operation's reply arrived from the pool.
    pub fn completed(&self) {
        let mut st = self.state.borrow_mut();
        st.in_flight = st.in_flight.saturating_sub(1);
    }

    /// The encoded reply (id 0) that fires the timers `call_ids`, in order.
    pub fn timers_fired(call_ids: Vec<u64>) -> Vec<u8> {
        encode(&proto::reply(
            0,
            reply::Result::TimersFired(proto::TimersFired { call_ids }),
        ))
    }

    /// Handles one `$send`.
    pub fn on_send(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if bytes.len() > self.shared.max_message_bytes {
            return self.on_oversized(bytes.len() as u64, bytes);
        }
        let call = match proto::Call::decode(bytes) {
            Ok(c) => c,
            Err(e) => {
                return self.refuse_message(
                    bytes,
                    ErrorCode::InvalidArgument,
                    format!("malformed message: not a v8box.v1.Call ({e})"),
                    || "not a v8box.v1.Call".into(),
                )
            }
        };
        let id = call.id;
        let Some(op) = call.op else {
            return self.refuse_message(
                bytes,
                ErrorCode::Unsupported,
                "unknown operation: this host does not know the operation the Call carries".into(),
                || "unknown operation".into(),
            );
        };
        let spec = ops::table::spec_of(&op);
        let name = spec.name;
        // Fail closed: once the audit log can record nothing more, no call it would record is
        // made, and the run is stopped (printing, `sys.args`, cancelling a timer and `sys.exit`
        // are not recorded as calls).
        if spec.recorded && !spec.after_log_failure {
            if let Some(why) = self.audit_failed() {
                let e = not_recordable(name, &why);
                if let Op::HostSend(h) = &op {
                    // A host waiting for this answer learns at once why it will not come.
                    self.fail_request(h.reply_to, e.message.clone());
                }
                return Some(encode(&proto::error_reply(id, e.code, e.message)));
            }
        }
        let start = self.shared.clock();
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(id, op, start))) {
            Ok(answer) => answer,
            Err(_) => {
                let info = Self::info(name, "", Decision::deny(), bytes.len() as u64);
                self.quick(
                    id,
                    Some(info),
                    start,
                    Done::err(OpError::new(
                        ErrorCode::Internal,
                        format!(
                            "{name}: internal error (the host failed while handling this call)"
                        ),
                    )),
                )
            }
        }
    }

    /// Answers a message that is not a call this host can make (too large, malformed, an
    /// unknown operation) with an error, and records the refusal (`AuditLog::refused`; `rule`
    /// says what refused it).
    /// Refuses a message of `length` bytes, over `max_message_bytes`, of which `head` are the
    /// first (enough for its call id): a jailed worker sends only these
    /// (`isolation::Sent::Oversized`).
    pub fn on_oversized(&self, length: u64, head: &[u8]) -> Option<Vec<u8>> {
        let limit = self.shared.max_message_bytes;
        self.refuse_message_of(
            length,
            head,
            ErrorCode::TooLarge,
            format!(
                "message of {length} bytes exceeds the limit of {limit} bytes ([limits] max_message_bytes)"
            ),
            || format!("[limits] max_message_bytes = {limit}"),
        )
    }

    fn refuse_message(
        &self,
        bytes: &[u8],
        code: ErrorCode,
        message: String,
        rule: impl FnOnce() -> String,
    ) -> Option<Vec<u8>> {
        self.refuse_message_of(bytes.len() as u64, bytes, code, message, rule)
    }

    fn refuse_message_of(
        &self,
        length: u64,
        bytes: &[u8],
        code: ErrorCode,
        message: String,
        rule: impl FnOnce() -> String,
    ) -> Option<Vec<u8>> {
        if self.shared.audit.enabled() {
            let info = CallInfo {
                op: "message",
                resource: String::new(),
                allowed: false,
                rule: rule(),
                bytes_in: length,
                sha256: None,
                resolved: None,
                parts: Parts::None,
            };
            self.shared.audit.refused(info, code.name());
        }
        let id = proto::peek_call_id(bytes);
        Some(encode(&proto::error_reply(id, code, message)))
    }

    /// `path` made absolute (against the working directory) and normalized; refused, before the
    /// policy is asked, when no file could have that name.
    fn absolute(&self, op: &str, path: &str) -> Result<PathBuf, OpError> {
        let invalid = |why: String| Err(OpError::new(ErrorCode::InvalidArgument, why));
        if path.is_empty() {
            return invalid(format!("{op}: the path must not be empty"));
        }
        if path.len() > MAX_PATH_BYTES {
            return invalid(format!(
                "{op}: the path is {} bytes long; no path is longer than {MAX_PATH_BYTES} bytes (PATH_MAX)",
                path.len()
            ));
        }
        if path.contains('\0') {
            return invalid(format!("{op} {path:?}: the path contains a NUL byte"));
        }
        Ok(normalize(&self.cwd.join(path)))
    }

    /// Answers at once, auditing the call in one record.
    fn quick(
        &self,
        id: u64,
        info: Option<CallInfo>,
        start: Instant,
        done: Done,
    ) -> Option<Vec<u8>> {
        if let Some(info) = info {
            self.shared.audit.call(
                info,
                outcome_name(&done.result),
                done.bytes_out,
                Some(start),
            );
        }
        Some(encode(&to_reply(id, done.result)))
    }

    /// A refusal before execution (bad argument, denied, quota): audited, answered at once.
    fn refuse(&self, id: u64, info: CallInfo, start: Instant, e: OpError) -> Option<Vec<u8>> {
        self.quick(id, Some(info), start, Done::err(e))
    }

    /// Why the audit log can record nothing more, if it cannot; the run is then stopped (it
    /// ends with that error, see `runtime::run`): what it did from then on could not be shown.
    pub(crate) fn audit_failed(&self) -> Option<String> {
        let why = self.shared.audit.failure()?;
        if let Some(t) = self.terminate.borrow().as_ref() {
            t.terminate_for(TerminationReason::Terminated);
        }
        Some(why)
    }

    /// The error of a side effect whose intent record could not be written (the audit log
    /// failed): it is not done.
    fn unrecordable(&self, info: &CallInfo) -> OpError {
        let why = self
            .audit_failed()
            .unwrap_or_else(|| "the audit log stopped".into());
        not_recordable(&format!("{} {}", info.op, info.resource), &why)
    }

    /// A call's record-to-be; it takes the decision's rule (no copy per call).
    fn info(op: &'static str, resource: impl Into<String>, d: Decision, bytes_in: u64) -> CallInfo {
        CallInfo {
            op,
            resource: resource.into(),
            allowed: d.allowed,
            rule: d.rule,
            bytes_in,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        }
    }

    /// Checks a file path; on success the path as located under its grant.
    fn check_path(
        &self,
        op: &'static str,
        permission: Permission,
        path: &str,
        bytes_in: u64,
    ) -> Result<(ops::fs::Located, CallInfo), (CallInfo, OpError)> {
        let abs = match self.absolute(op, path) {
            Ok(p) => p,
            Err(e) => return Err((Self::info(op, path, Decision::invalid(), bytes_in), e)),
        };
        let shown = abs.display().to_string();
        let d = self.shared.policy.check_path(permission, &abs);
        let grant = d.grant.filter(|_| d.allowed);
        let info = Self::info(op, shown, d, bytes_in);
        match grant {
            Some(g) => Ok((self.shared.fs.locate(g, &abs), info)),
            None => {
                let e = denied(permission, &info.resource);
                Err((info, e))
            }
        }
    }

    /// Sends a job to the I/O pool; its reply comes back as an `Event::Reply`.
    fn spawn(
        &self,
        id: u64,
        info: CallInfo,
        side_effect: bool,
        start: Instant,
        job: impl FnOnce(&Shared) -> Done + Send + 'static,
    ) -> Option<Vec<u8>> {
        self.quick_or_spawn(id, info, side_effect, start, |_| ops::Quick::Defer, job)
    }

    /// Tries `quick` on this thread (small regular files); if it defers, sends `job` to the
    /// I/O pool, whose reply comes back as an `Event::Reply`. Either way the call is charged,
    /// holds a slot while it runs, and a side effect's intent is on record before it starts.
    /// With no slot free, a call without side effects is still tried here: answered at once,
    /// it never waits, so it needs no slot (only if it would have to wait is it refused).
    fn quick_or_spawn(
        &self,
        id: u64,
        info: CallInfo,
        side_effect: bool,
        start: Instant,
        quick: impl FnOnce(&Shared) -> ops::Quick,
        job: impl FnOnce(&Shared) -> Done + Send + 'static,
    ) -> Option<Vec<u8>> {
        if let Err(e) = self.shared.charge_call(info.op) {
            return self.refuse(id, info, start, e);
        }
        let no_slot = self.reserve_slot().err();
        if let Some(e) = &no_slot {
            if side_effect {
                return self.refuse(id, info, start, e.clone());
            }
        }
        let intent = if side_effect {
            self.shared.audit.intent(&info)
        } else {
            0
        };
        if side_effect && intent == 0 && self.shared.audit.enabled() {
            // The intent is not on disk: the side effect must not happen.
            if no_slot.is_none() {
                self.completed();
            }
            let e = self.unrecordable(&info);
            return self.refuse(id, info, start, e);
        }
        let done = catch_unwind(AssertUnwindSafe(|| quick(&self.shared)))
            .unwrap_or_else(|_| ops::Quick::Done(panicked(info.op)));
        if let ops::Quick::Done(done) = done {
            if no_slot.is_none() {
                self.completed();
            }
            let finished = Finished {
                id,
                intent,
                side_effect,
                started: start,
                pooled: false,
            };
            return Some(finished.answer(&self.shared, info, done));
        }
        if let Some(e) = no_slot {
            return self.refuse(id, info, start, e);
        }
        let shared = self.shared.clone();
        let events = self.events.clone();
        {
            let mut end = shared.run_end();
            end.unrecorded += 1;
            if side_effect && intent != 0 {
                end.intents.insert(intent);
            }
        }
        crate::pool::submit(move || {
            let started = shared.clock();
            let done = catch_unwind(AssertUnwindSafe(|| job(&shared)))
                .unwrap_or_else(|_| panicked(info.op));
            let finished = Finished {
                id,
                intent,
                side_effect,
                started,
                pooled: true,
            };
            let bytes = finished.answer(&shared, info, done);
            let _ = events.send(Event::Reply { id, bytes });
        });
        None
    }

    fn reserve_slot(&self) -> Result<(), OpError> {
        let limit = self.shared.policy.limits.max_calls_in_flight();
        let mut st = self.state.borrow_mut();
        let used = st.in_flight;
        if used >= limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("too many calls in flight: {used} already wait for an answer ([limits] max_calls_in_flight = {limit})"),
            ));
        }
        st.in_flight += 1;
        Ok(())
    }

    /// Runs one call; `start` is when it arrived (see `Shared::clock`).
    fn dispatch(&self, id: u64, op: Op, start: Instant) -> Option<Vec<u8>> {
        match op {
            Op::Log(log) => {
                let stream = match proto::log::Level::try_from(log.level) {
                    Ok(proto::log::Level::Warn | proto::log::Level::Error) => Stream::Stderr,
                    _ => Stream::Stdout,
                };
                (self.output)(stream, &log.message);
                None
            }
            Op::Args(_) => Some(encode(&proto::reply(
                id,
                reply::Result::Strings(proto::Strings {
                    values: self.args.clone(),
                }),
            ))),
            // Pure: touches nothing outside the isolate, so no policy and no record.
            Op::Url(u) => Some(encode(&proto::reply(
                id,
                reply::Result::UrlRecord(ops::url::parse(&u)),
            ))),
            Op::Now(_) => {
                let info = Self::info("now", "", Decision::always(), 0);
                self.quick(id, Some(info), start, ops::clock::now(self.shared.epoch))
            }
            Op::RandomBytes(r) => {
                let info = Self::info("randomBytes", r.length.to_string(), Decision::always(), 0);
                if let Err(e) = self.shared.charge_call("randomBytes") {
                    return self.refuse(id, info, start, e);
                }
                self.quick(id, Some(info), start, ops::clock::random_bytes(r.length))
            }
            Op::Sleep(s) => {
                let info = Self::info("sleep", format!("{}ms", s.ms), Decision::always(), 0);
                if let Err(e) = self
                    .shared
                    .charge_call("sleep")
                    .and_then(|()| self.reserve_timer())
                {
                    return self.refuse(id, info, start, e);
                }
                let ms = if s.ms.is_finite() && s.ms > 0.0 {
                    s.ms.min(1e12)
                } else {
                    0.0
                };
                let deadline = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
                let mut st = self.state.borrow_mut();
                st.timers.insert((deadline, id), ());
                st.timer_deadline.insert(id, deadline);
                if s.unref {
                    st.unref_timers.insert(id);
                }
                drop(st);
                self.shared.audit.call(info, "ok", 0, None);
                None
            }
            Op::Cancel(c) => {
                let mut st = self.state.borrow_mut();
                if let Some(t) = st.timer_deadline.remove(&c.call_id) {
                    st.timers.remove(&(t, c.call_id));
                }
                st.unref_timers.remove(&c.call_id);
                Some(encode(&proto::reply(id, reply::Result::Ok(Empty {}))))
            }
            Op::EnvGet(e) => {
                let d = self.shared.policy.check_name(Permission::Env, &e.name);
                let info = Self::info("env.get", e.name, d, 0);
                if let Err(err) = ops::env::validate_name(&info.resource) {
                    return self.refuse(id, info, start, err);
                }
                if !info.allowed {
                    let err = denied(Permission::Env, &info.resource);
                    return self.refuse(id, info, start, err);
                }
                if let Err(err) = self.shared.charge_call("env.get") {
                    return self.refuse(id, info, start, err);
                }
                let done = ops::env::get(&info.resource);
                self.quick(id, Some(info), start, done)
            }
            Op::Exit(x) => {
                let info = Self::info("exit", x.code.to_string(), Decision::always(), 0);
                let seq = self.shared.audit.intent(&info);
                self.state.borrow_mut().exit_code = Some(x.code);
                if let Some(t) = self.terminate.borrow().as_ref() {
                    t.terminate_for(TerminationReason::Exit);
                }
                self.shared.audit.outcome(seq, info, "ok", 0, Some(start));
                Some(encode(&proto::reply(id, reply::Result::Ok(Empty {}))))
            }
            Op::HostSend(h) => {
                let d = self.shared.policy.check_name(Permission::Host, &h.channel);
                let info = Self::info("host.send", h.channel.clone(), d, h.data.len() as u64);
                if !info.allowed {
                    return self.refuse(id, info, start, denied(Permission::Host, &h.channel));
                }
                if let Err(e) = self
                    .shared
                    .charge_call("host.send")
                    .and_then(|()| self.shared.charge_bytes("host.send", h.data.len() as u64))
                {
                    // A host waiting for this answer learns at once why it will not come.
                    self.fail_request(h.reply_to, e.message.clone());
                    return self.refuse(id, info, start, e);
                }
                let seq = self.shared.audit.intent(&info);
                if seq == 0 && self.shared.audit.enabled() {
                    let e = self.unrecordable(&info);
                    // A host waiting for this answer learns at once why it will not come.
                    self.fail_request(h.reply_to, e.message.clone());
                    return self.refuse(id, info, start, e);
                }
                let result = if h.reply_to != 0 {
                    self.answer_request(h.reply_to, h.data)
                } else {
                    self.send_to_host(&h.channel, bytes::Bytes::from(h.data))
                };
                self.shared
                    .audit
                    .outcome(seq, info, outcome_name(&result), 0, Some(start));
                Some(encode(&to_reply(id, result)))
            }
            Op::HostListen(h) => {
                let d = self.shared.policy.check_name(Permission::Host, &h.channel);
                let info = Self::info("host.listen", h.channel.clone(), d, 0);
                if !info.allowed {
                    return self.refuse(id, info, start, denied(Permission::Host, &h.channel));
                }
                self.state.borrow_mut().listening.insert(h.channel);
                self.quick(
                    id,
                    Some(info),
                    start,
                    Done::ok(reply::Result::Ok(Empty {}), 0),
                )
            }
            Op::ReadFile(r) => match self.check_path("fs.readFile", Permission::Read, &r.path, 0) {
                Err((info, e)) => self.refuse(id, info, start, e),
                Ok((loc, info)) => {
                    // Room for the reply's envelope; a limit smaller than that allows no bytes.
                    let max = (self.shared.max_message_bytes as u64).saturating_sub(64);
                    let at = loc.clone();
                    self.quick_or_spawn(
                        id,
                        info,
                        false,
                        start,
                        |s| ops::fs::read_file_quick(&s.fs, &at, max),
                        move |s| ops::fs::read_file(&s.fs, &loc, max),
                    )
                }
            },
            Op::ReadDir(r) => match self.check_path("fs.readDir", Permission::Read, &r.path, 0) {
                Err((info, e)) => self.refuse(id, info, start, e),
                Ok((loc, info)) => self.spawn(id, info, false, start, move |s| {
                    ops::fs::read_dir(&s.fs, &loc)
                }),
            },
            Op::Stat(r) => match self.check_path("fs.stat", Permission::Read, &r.path, 0) {
                Err((info, e)) => self.refuse(id, info, start, e),
                Ok((loc, info)) => {
                    self.spawn(id, info, false, start, move |s| ops::fs::stat(&s.fs, &loc))
                }
            },
            Op::WriteFile(w) => {
                let n = w.data.len() as u64;
                match self.check_path("fs.writeFile", Permission::Write, &w.path, n) {
                    Err((info, e)) => self.refuse(id, info, start, e),
                    Ok((loc, mut info)) => {
                        if self.shared.audit.enabled() {
                            info.sha256 = Some(crate::audit::sha256_hex(&w.data));
                        }
                        if let Err(e) = self.shared.charge_bytes("fs.writeFile", n) {
                            return self.refuse(id, info, start, e);
                        }
                        let append = w.append;
                        // Shared by the inline attempt and the pool's job, not copied.
                        let data = bytes::Bytes::from(w.data);
                        let (at, quick_data) = (loc.clone(), data.clone());
                        let quick = move |s: &Shared| {
                            ops::fs::write_file_quick(&s.fs, &at, &quick_data, append)
                        };
                        self.quick_or_spawn(id, info, true, start, quick, move |s| {
                            ops::fs::write_file(&s.fs, &loc, &data, append)
                        })
                    }
                }
            }
            Op::Remove(r) => match self.check_path("fs.remove", Permission::Write, &r.path, 0) {
                Err((info, e)) => self.refuse(id, info, start, e),
                Ok((loc, info)) => {
                    let recursive = r.recursive;
                    self.spawn(id, info, true, start, move |s| {
                        ops::fs::remove(&s.fs, &loc, recursive)
                    })
                }
            },
            Op::Mkdir(r) => match self.check_path("fs.mkdir", Permission::Write, &r.path, 0) {
                Err((info, e)) => self.refuse(id, info, start, e),
                Ok((loc, info)) => {
                    let recursive = r.recursive;
                    self.spawn(id, info, true, start, move |s| {
                        ops::fs::mkdir(&s.fs, &loc, recursive)
                    })
                }
            },
            Op::Rename(r) => {
                let from = self.check_path("fs.rename", Permission::Write, &r.from, 0);
                let to = self.check_path("fs.rename", Permission::Write, &r.to, 0);
                // Every record of a rename names both paths, in fields of their own (`from`,
                // `to`; `resource` joins them for the eye), and is decided as the dispatcher
                // decides it: by `from`'s check, then `to`'s.
                let shown = |end: &Result<_, (CallInfo, _)>| match end {
                    Ok((_, info)) | Err((info, _)) => info.resource.clone(),
                };
                let (from_shown, to_shown) = (shown(&from), shown(&to));
                let resource = format!("{from_shown} -> {to_shown}");
                let parts = Parts::Rename {
                    from: from_shown,
                    to: to_shown,
                };
                match (from, to) {
                    (Err((info, e)), _) | (Ok(_), Err((info, e))) => {
                        let info = CallInfo {
                            resource,
                            parts,
                            ..info
                        };
                        self.refuse(id, info, start, e)
                    }
                    (Ok((from, fi)), Ok((to, ti))) => {
                        let info = CallInfo {
                            resource,
                            parts,
                            rule: if fi.rule == ti.rule {
                                fi.rule
                            } else {
                                format!("{}; {}", fi.rule, ti.rule)
                            },
                            ..fi
                        };
                        self.spawn(id, info, true, start, move |s| {
                            ops::fs::rename(&s.fs, &from, &to)
                        })
                    }
                }
            }
            Op::Fetch(f) => self.fetch(id, f, start),
        }
    }

    /// Hands a message to the host application; blocks while its queue is full (backpressure),
    /// but gives up if the script is being stopped meanwhile.
    fn send_to_host(
        &self,
        channel: &str,
        mut data: bytes::Bytes,
    ) -> Result<reply::Result, OpError> {
        let Some(tx) = self.host_out.get(channel) else {
            return Err(OpError::new(
                ErrorCode::Unsupported,
                format!("host.send: no host application receives channel \"{channel}\""),
            ));
        };
        loop {
            match tx.send_timeout(data, Duration::from_millis(50)) {
                Ok(()) => return Ok(reply::Result::Ok(Empty {})),
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                    let stopping = self.terminate.borrow().as_ref().and_then(|t| t.reason());
                    if stopping.is_some() {
                        return Err(OpError::new(
                            ErrorCode::Io,
                            format!("host.send: the script was stopped while channel \"{channel}\" was full"),
                        ));
                    }
                    data = back;
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                    return Err(OpError::new(
                        ErrorCode::Unsupported,
                        format!("host.send: the host stopped receiving channel \"{channel}\""),
                    ))
                }
            }
        }
    }

    /// Fails the host's request `request_id` (its message was denied).
    pub fn refuse_request(&self, request_id: u64, channel: &str) {
        self.fail_request(
            request_id,
            format!(
                "the policy does not allow channel \"{channel}\" ({})",
                Policy::hint(Permission::Host, channel)
            ),
        );
    }

    /// Fails every host request still waiting for an answer (the run has ended), so that no
    /// host waits for its timeout.
    pub fn fail_waiting_requests(&self, why: &str) {
        let Some(requests) = &self.requests else {
            return;
        };
        let waiting: Vec<_> = requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(why.to_string()));
        }
    }

    /// Answers a host request (`request_id`, 0 for none) with an error: it was not delivered.
    pub fn fail_request(&self, request_id: u64, why: String) {
        if request_id == 0 {
            return;
        }
        if let Some(tx) = self.take_request(request_id) {
            let _ = tx.send(Err(why));
        }
    }

    /// Removes and returns the waiter of the host's request `request_id`.
    fn take_request(&self, request_id: u64) -> Option<Sender<Result<bytes::Bytes, String>>> {
        let requests = self.requests.as_ref()?;
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id)
    }

    /// Completes the host's request `request_id` with `data`.
    fn answer_request(&self, request_id: u64, data: Vec<u8>) -> Result<reply::Result, OpError> {
        let waiter = self.take_request(request_id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(bytes::Bytes::from(data)));
                Ok(reply::Result::Ok(Empty {}))
            }
            None => Err(OpError::new(
                ErrorCode::NotFound,
                format!("host.send: no host request {request_id} is waiting (it timed out or was answered)"),
            )),
        }
    }

    fn reserve_timer(&self) -> Result<(), OpError> {
        let limit = self.shared.policy.limits.max_timers();
        let armed = self.state.borrow().timers.len();
        if armed >= limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("too many timers: {armed} are armed ([limits] max_timers = {limit})"),
            ));
        }
        Ok(())
    }

    fn fetch(&self, id: u64, f: proto::Fetch, start: Instant) -> Option<Vec<u8>> {
        let n = f.body.len() as u64;
        let invalid = |e: OpError| {
            // Not a URL v8box would fetch: shown with anything that looks like credentials hidden.
            let shown = ops::net::shown_text(&f.url);
            let info = Self::info("net.fetch", shown, Decision::invalid(), n);
            self.refuse(id, info, start, e)
        };
        let (url, method) = match ops::net::parse(&f.url, &f.method) {
            Ok(x) => x,
            Err(e) => return invalid(e),
        };
        let target = match NetTarget::from_url(&url) {
            Ok(t) => t,
            Err(m) => return invalid(OpError::new(ErrorCode::InvalidArgument, m)),
        };
        let shown = ops::net::shown(&url);
        if let Err(e) = ops::net::check_headers(&f.headers) {
            let info = Self::info("net.fetch", shown, Decision::invalid(), n);
            let info = with_net_parts(info, url.scheme(), &target);
            return self.refuse(id, info, start, e);
        }
        let d = self.shared.policy.check_net(&target);
        let info = with_net_parts(Self::info("net.fetch", shown, d, n), url.scheme(), &target);
        if !info.allowed {
            return self.refuse(id, info, start, net_denied(&self.shared.policy, &target));
        }
        if let Err(e) = self.shared.charge_bytes("net.fetch", n) {
            return self.refuse(id, info, start, e);
        }
        let request = ops::net::Request {
            url,
            method,
            headers: f.headers,
            body: f.body,
        };
        // Room for the reply's envelope (status, headers); a smaller limit allows no body.
        let max = (self.shared.max_message_bytes as u64).saturating_sub(4096);
        let allow_address = address_check(self.shared.clone());
        self.spawn(id, info, true, start, move |s| {
            // Each redirect hop is decided and audited like a call of its own.
            let allow_hop = |next: &url::Url| -> Result<(), OpError> {
                let hop_start = s.clock();
                let shown = ops::net::shown(next);
                let target =
                    NetTarget::from_url(next).map_err(|m| OpError::new(ErrorCode::Network, m))?;
                // A hop is a request of its own: none goes out once the log has failed.
                if let Some(why) = s.audit.failure() {
                    return Err(OpError::new(
                        ErrorCode::Io,
                        format!("redirect to {shown}: not followed: {why}"),
                    ));
                }
                let d = s.policy.check_net(&target);
                let allowed = d.allowed;
                let info =
                    with_net_parts(Self::info("net.fetch", shown, d, 0), next.scheme(), &target);
                if allowed {
                    s.record_from_pool(info, "redirect", 0, Some(hop_start), None, false);
                    Ok(())
                } else {
                    let e = net_denied(&s.policy, &target);
                    let e = OpError::new(
                        e.code,
                        format!("redirect to {}: {}", info.resource, e.message),
                    );
                    s.record_from_pool(info, e.code.name(), 0, Some(hop_start), None, false);
                    Err(e)
                }
            };
            ops::net::fetch(request, max, &allow_hop, allow_address)
        })
    }
}

/// `info` (a `net.fetch` record) with the fields that identify its target, which no cut of its
/// URL can remove: `scheme`, `host` and `port`, as the policy decided them.
fn with_net_parts(info: CallInfo, scheme: &str, target: &NetTarget) -> CallInfo {
    CallInfo {
        parts: Parts::Net {
            scheme: scheme.to_string(),
            host: target.host.clone(),
            port: target.port,
        },
        ..info
    }
}

/// A fetch's denial: `net "127.0.0.1:8080" (allow with --allow-net=127.0.0.1:8080 or [net]
/// allow)`, saying first why the target needed a grant of its own when it did (and that a
/// grant of every host does not cover it, when there is one).
fn net_denied(policy: &Policy, target: &NetTarget) -> OpError {
    let shown = target.to_string();
    let why = match (target.not_public(), policy.all_hosts_rule()) {
        (Some(why), Some(all)) => format!("{why}, which {all} does not cover; "),
        (Some(why), None) => format!("{why}; "),
        (None, _) => String::new(),
    };
    OpError::new(
        ErrorCode::PermissionDenied,
        format!(
            "net \"{shown}\" ({why}{})",
            Policy::hint(Permission::Net, &shown)
        ),
    )
}

/// The check of every address a fetch connects to (`ops::net::AddressCheck`): an address that
/// is not public, or is one of this host's, needs a grant naming it (`Policy::check_address`).
/// Such a decision is recorded as a `call` of `net.fetch` on the address (`127.0.0.1:8080`),
/// outcome `connect` or the error, unless the URL named the address itself and it was allowed
/// (then the URL's own record says it all). Public addresses are not recorded.
fn address_check(shared: Arc<Shared>) -> ops::net::AddressCheck {
    Arc::new(
        move |scheme: &str, host: &str, addr: std::net::SocketAddr, own: bool| {
            let started = shared.clock();
            let Some((d, why)) = shared.policy.check_address(addr, own) else {
                return Ok(());
            };
            let target = NetTarget::of_address(addr);
            let shown = target.to_string();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok();
            let error = (!d.allowed).then(|| {
                let how = if literal {
                    format!("{} is {why}", addr.ip())
                } else {
                    format!("{host} resolves to {}, which is {why}", addr.ip())
                };
                OpError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "net \"{shown}\" ({how}; {})",
                        Policy::hint(Permission::Net, &shown)
                    ),
                )
            });
            if literal && error.is_none() {
                return Ok(());
            }
            // A connection that must be on record is not made once the log has failed.
            if let Some(failure) = shared.audit.failure() {
                return Err(OpError::new(
                    ErrorCode::Io,
                    format!("net \"{shown}\": not connected: {failure}"),
                ));
            }
            let outcome = error.as_ref().map_or("connect", |e| e.code.name());
            let info = with_net_parts(Dispatcher::info("net.fetch", shown, d, 0), scheme, &target);
            shared.record_from_pool(info, outcome, 0, Some(started), None, false);
            error.map_or(Ok(()), Err)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_operation_becomes_an_internal_error_and_an_audit_record() {
        let (audit, sink) = AuditLog::in_memory("test");
        let shared = Arc::new(Shared::new(Policy::deny_all(), audit));
        let (events, replies) = crossbeam_channel::unbounded();
        let d = Dispatcher::new(
            shared,
            events,
            Arc::new(|_, _| {}),
            Vec::new(),
            HashMap::new(),
            None,
        );
        let info = Dispatcher::info("fs.readFile", "/x", Decision::always(), 0);
        let answer = d.spawn(7, info, false, Instant::now(), |_| panic!("injected fault"));
        assert!(answer.is_none(), "answered later, through the event loop");
        let Event::Reply { id, bytes } = replies.recv().unwrap() else {
            panic!("a reply")
        };
        assert_eq!(id, 7);
        let reply = Reply::decode(&bytes[..]).unwrap();
        let Some(reply::Result::Error(e)) = reply.result else {
            panic!("{reply:?}")
        };
        assert_eq!(e.code, ErrorCode::Internal as i32);
        assert!(e.message.contains("fs.readFile"), "{}", e.message);
        d.shared().audit.flush();
        let log = sink.lines().join("\n");
        assert!(log.contains("\"outcome\":\"INTERNAL\""), "{log}");
        // The dispatcher lives on.
        assert!(d
            .on_send(
                &proto::Call {
                    id: 8,
                    op: Some(Op::Now(proto::Now {}))
                }
                .encode_to_vec()
            )
            .is_some());
    }
}
