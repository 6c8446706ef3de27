//! The dispatcher: the message gate and the one pipeline every operation goes through, in this
//! order: decode → validate → policy → quota → in-flight slot → intent → run → outcome → reply.
//!
//! It runs inside `$send` on the isolate's thread (in the broker, when the isolate is in a
//! jailed worker). What each operation validates, decides and runs is its handler's
//! (`handlers.rs`, the trait generated from proto/v8box.proto); its facts (name, permission,
//! side effect, lane, recorded, quota) are the op table's (`ops::table`). Quick operations are
//! answered at once through `$send`'s return value; file and network operations that may block
//! go to the I/O pool and are answered later through `$recv`; sleeps become timers owned by the
//! event loop. A host's message to the script goes through the same pipeline (`host.message`).

mod fetch;
mod handlers;
mod host;
mod plan;
mod quota;
mod shared;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use prost::Message;

pub use crate::audit::Unfinished;
use crate::audit::{CallInfo, Ending, Parts};
use crate::loader::normalize;
use crate::ops::table::{self, Lane, OpSpec};
use crate::ops::{self, Done, OpError};
use crate::policy::{Decision, Permission, Policy, Rule};
use crate::proto::{self, reply, ErrorCode, Reply};
use crate::worker::{TerminateHandle, TerminationReason};
pub use host::PendingRequests;
use plan::{Grants, OnRefused, Plan, Run, Target};
pub use shared::Shared;

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

/// Handles the script's calls for one run: checks each against the policy, executes it or
/// hands it to the I/O pool, records it in the audit log and answers it.
pub struct Dispatcher {
    shared: Arc<Shared>,
    events: Sender<Event>,
    /// Calls running on the I/O pool.
    in_flight: Cell<usize>,
    timers: RefCell<timers::Timers>,
    exit_code: Cell<Option<i32>>,
    terminate: RefCell<Option<TerminateHandle>>,
    output: OutputFn,
    args: Vec<String>,
    cwd: PathBuf,
    host: host::HostChannels,
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

fn panicked(op: &str) -> Done {
    Done::err(OpError::new(
        ErrorCode::Internal,
        format!("{op}: internal error (the operation panicked)"),
    ))
}

/// How the pipeline's policy step decided a call, with the rule its record names.
struct Verdict {
    allowed: bool,
    rule: Rule,
}

impl Verdict {
    fn allow(rule: Rule) -> Verdict {
        Verdict {
            allowed: true,
            rule,
        }
    }

    fn deny() -> Verdict {
        Verdict {
            allowed: false,
            rule: Rule::fixed(Decision::DEFAULT_DENY),
        }
    }
}

/// A call's record-to-be; it takes the decision's rule.
fn info(op: &'static str, resource: impl Into<String>, d: Decision, bytes_in: u64) -> CallInfo {
    CallInfo {
        op,
        resource: resource.into(),
        allowed: d.allowed,
        rule: d.rule.into(),
        bytes_in,
        sha256: None,
        resolved: None,
        parts: Parts::None,
    }
}

/// What a denial says: `read "/etc/passwd" (allow with --allow-read=/etc/passwd or [fs] read)`.
fn denied(permission: Permission, resource: &str) -> OpError {
    let verb = match permission {
        Permission::Read => "read",
        Permission::Write => "write",
        Permission::Net => "net",
        Permission::Env => "env",
        Permission::Host => "host",
        Permission::Module => "module",
        Permission::Stdin => "stdin.read",
    };
    OpError::new(
        ErrorCode::PermissionDenied,
        format!(
            "{verb} \"{resource}\" ({})",
            Policy::hint(permission, resource)
        ),
    )
}

/// When a call's record says it started (`None`: no duration): a host's message and an armed
/// timer are recorded without one.
fn started_of(spec: &OpSpec, start: Instant) -> Option<Instant> {
    (spec.lane != Lane::Delivered).then_some(start)
}

/// An operation that ran (inline or on the I/O pool), about to be charged, audited and answered.
struct Finished {
    spec: &'static OpSpec,
    id: u64,
    intent: u64,
    charge_out: bool,
    started: Instant,
    /// Run on the I/O pool (see `audit::Sequence::pooled`).
    pooled: bool,
}

impl Finished {
    /// Charges the bytes it moved, records its outcome and encodes its reply.
    fn answer(self, shared: &Shared, mut info: CallInfo, mut done: Done) -> Vec<u8> {
        info.resolved = done.resolved.take();
        if self.spec.quota && self.charge_out && done.result.is_ok() && done.bytes_out > 0 {
            if let Err(e) = shared.charge_bytes(info.op, done.bytes_out) {
                done = Done::err(e);
            }
        }
        if self.spec.recorded {
            let ending = Ending {
                outcome: outcome_name(&done.result),
                bytes_out: done.bytes_out,
                started: started_of(self.spec, self.started),
                intent: self.spec.side_effect.then_some(self.intent),
            };
            if self.pooled {
                shared
                    .sequence
                    .finished_on_pool(&shared.audit, info, ending, true);
            } else {
                shared.sequence.finished(&shared.audit, info, ending);
            }
        }
        encode(&to_reply(self.id, done.result))
    }
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
            in_flight: Cell::new(0),
            timers: RefCell::default(),
            exit_code: Cell::new(None),
            terminate: RefCell::new(None),
            output,
            args,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            host: host::HostChannels::new(host_out, requests),
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
        self.in_flight.get() > 0 || self.timers.borrow().keep_alive()
    }

    /// Calls running on the I/O pool (timers not counted).
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    /// The code passed to `sys.exit`, if the script called it.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code.get()
    }

    /// Whether the script listens on any host channel.
    pub fn any_listener(&self) -> bool {
        self.host.any_listener()
    }

    /// The earliest timer deadline.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.borrow().next()
    }

    /// Removes and returns the call ids of timers due at `now`, in deadline order.
    pub fn due_timers(&self, now: Instant) -> Vec<u64> {
        self.timers.borrow_mut().due(now)
    }

    /// An operation's reply arrived from the pool.
    pub fn completed(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
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
        let start = self.shared.clock();
        let spec = table::spec_of(&op);
        match catch_unwind(AssertUnwindSafe(|| {
            let (spec, plan) = plan::plan_call(self, op);
            self.pipeline(id, spec, plan, start)
        })) {
            Ok(answer) => answer,
            Err(_) => {
                let name = spec.name;
                let info = info(name, "", Decision::deny(), bytes.len() as u64);
                self.shared
                    .audit
                    .call(info, ErrorCode::Internal.name(), 0, Some(start));
                let e = OpError::new(
                    ErrorCode::Internal,
                    format!("{name}: internal error (the host failed while handling this call)"),
                );
                Some(encode(&proto::error_reply(id, e.code, e.message)))
            }
        }
    }

    /// A message from the host to the script (`host.message`), through the same pipeline as a
    /// call: the encoded `Reply` (id 0) to deliver through `$recv`, or `None` when it is
    /// refused (a waiting host request is told why).
    pub fn on_host_message(&self, message: proto::HostMessage) -> Option<Vec<u8>> {
        let start = self.shared.clock();
        let plan = plan::Handlers::host_message(self, message);
        self.pipeline(0, table::HOST_MESSAGE, plan, start)
    }

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

    /// Answers a message that is not a call this host can make (too large, malformed, an
    /// unknown operation) with an error, and records the refusal (`AuditLog::refused`; `rule`
    /// says what refused it).
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
                rule: rule().into(),
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

    /// The pipeline: every operation, in this order.
    fn pipeline(
        &self,
        id: u64,
        spec: &'static OpSpec,
        plan: Plan,
        start: Instant,
    ) -> Option<Vec<u8>> {
        let Plan {
            resource,
            parts,
            bytes_in,
            charge_in,
            charge_out,
            sha256,
            targets,
            run,
            on_refused,
        } = plan;
        // Fail closed: once the audit log can record nothing more, no call it would record is
        // made, and the run is stopped.
        if spec.recorded && !spec.after_log_failure {
            if let Some(why) = self.audit_failed() {
                let e = not_recordable(spec.name, &why);
                if let Some(tell) = on_refused {
                    tell(self, &e);
                }
                return self.answer_refusal(id, spec, e);
            }
        }
        // Its rule is set below: the policy's, or `invalid argument`.
        let mut info = CallInfo {
            op: spec.name,
            resource,
            allowed: false,
            rule: Rule::default(),
            bytes_in,
            sha256: None,
            resolved: None,
            parts,
        };
        let refuse = |info: CallInfo, e: OpError, tell: Option<OnRefused>| {
            self.refuse(id, spec, info, start, e, tell)
        };
        // Validate, then ask the policy.
        let targets = match targets {
            Ok(t) => t,
            Err(e) => {
                info.rule = Rule::fixed(Decision::INVALID);
                return refuse(info, e, on_refused);
            }
        };
        let grants = match self.decide(spec, targets, &info.resource) {
            Ok((v, grants)) => {
                (info.allowed, info.rule) = (v.allowed, v.rule);
                grants
            }
            Err((v, e)) => {
                (info.allowed, info.rule) = (v.allowed, v.rule);
                return refuse(info, e, on_refused);
            }
        };
        info.sha256 = sha256;
        // Quota.
        if spec.quota {
            let charged = self.shared.charge_call(spec.name).and_then(|()| {
                if charge_in {
                    self.shared.charge_bytes(spec.name, bytes_in)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = charged {
                return refuse(info, e, on_refused);
            }
        }
        let finished = |intent, pooled| Finished {
            spec,
            id,
            intent,
            charge_out,
            started: start,
            pooled,
        };
        match run {
            Run::Notify(f) => {
                f(self);
                None
            }
            Run::Armed(arm) => match arm(self, id) {
                Ok(()) => {
                    if spec.recorded {
                        self.shared.audit.call(info, "ok", 0, None);
                    }
                    None
                }
                Err(e) => refuse(info, e, on_refused),
            },
            Run::Inline(_) | Run::OnResource(_) => {
                let intent = match self.intent(spec, &info) {
                    Ok(seq) => seq,
                    Err(e) => return refuse(info, e, on_refused),
                };
                let done = catch_unwind(AssertUnwindSafe(|| match run {
                    Run::Inline(f) => f(self, grants),
                    Run::OnResource(f) => f(&info.resource),
                    _ => unreachable!(),
                }))
                .unwrap_or_else(|_| panicked(spec.name));
                Some(finished(intent, false).answer(&self.shared, info, done))
            }
            Run::Pool(quick, job) => {
                // With no slot free, a call without side effects is still tried here: answered
                // at once, it never waits, so it needs no slot (only if it would have to wait
                // is it refused).
                let no_slot = self.reserve_slot().err();
                if let Some(e) = &no_slot {
                    if spec.side_effect {
                        return refuse(info, e.clone(), on_refused);
                    }
                }
                let intent = match self.intent(spec, &info) {
                    Ok(seq) => seq,
                    Err(e) => {
                        if no_slot.is_none() {
                            self.completed();
                        }
                        return refuse(info, e, on_refused);
                    }
                };
                let mut job = job;
                if let Some(quick) = quick {
                    let tried = catch_unwind(AssertUnwindSafe(|| quick(&self.shared, &grants)))
                        .unwrap_or_else(|_| ops::Quick::Done(panicked(spec.name)));
                    match tried {
                        ops::Quick::Done(done) => {
                            if no_slot.is_none() {
                                self.completed();
                            }
                            return Some(finished(intent, false).answer(&self.shared, info, done));
                        }
                        // The attempt opened (and checked) the file: the pool goes on with it.
                        ops::Quick::Continue(rest) => job = Box::new(move |_, _| rest()),
                        ops::Quick::Defer => {}
                    }
                }
                if let Some(e) = no_slot {
                    return refuse(info, e, on_refused);
                }
                self.spawn(finished(intent, true), info, grants, job);
                None
            }
        }
    }

    /// Decides each target under its field's permission (the op table), in order: the first
    /// denial decides the call; allowed, the rules that allowed it (each once) and where its
    /// paths lie beneath their grants.
    fn decide(
        &self,
        spec: &OpSpec,
        targets: plan::Targets,
        resource: &str,
    ) -> Result<(Verdict, Grants), (Verdict, OpError)> {
        // A rule's text goes only into the call's audit record: without a log, an allowed
        // call's is not named at all; with one, it is the grant's text made when the run
        // started (`Shared::rule`), shared, not made anew per call.
        let recorded = self.shared.audit.enabled();
        if targets.is_empty() {
            let rule = if recorded {
                Rule::fixed(Decision::ALWAYS)
            } else {
                Rule::default()
            };
            return Ok((Verdict::allow(rule), Vec::new()));
        }
        debug_assert_eq!(targets.len(), spec.resources.len(), "{}", spec.name);
        let policy = &self.shared.policy;
        let mut rules: smallvec::SmallVec<[Rule; 2]> = smallvec::SmallVec::new();
        let mut grants = Vec::new();
        for (target, &(_, permission)) in targets.iter().zip(spec.resources) {
            let grant = match target {
                Target::Path(abs) => policy.path_grant(permission, abs),
                Target::Name(_) | Target::ResourceName if permission == Permission::Stdin => {
                    // Granted whole, by no grant of the list.
                    if !policy.check_stdin().allowed {
                        let e = denied(permission, target.name(resource));
                        return Err((Verdict::deny(), e));
                    }
                    if !rules.iter().any(|r| *r == Policy::STDIN_RULE) {
                        rules.push(Rule::fixed(Policy::STDIN_RULE));
                    }
                    continue;
                }
                Target::Name(_) | Target::ResourceName => {
                    policy.name_grant(permission, target.name(resource))
                }
                Target::Net(t) => policy.net_grant(t),
            };
            let Some(grant) = grant else {
                let e = match target {
                    Target::Path(abs) => denied(permission, &abs.display().to_string()),
                    Target::Name(_) | Target::ResourceName => {
                        denied(permission, target.name(resource))
                    }
                    Target::Net(t) => fetch::net_denied(policy, t),
                };
                return Err((Verdict::deny(), e));
            };
            if let Target::Path(abs) = target {
                grants.push(self.shared.fs.locate(grant, abs));
            }
            if recorded {
                let rule = self.shared.rule(grant);
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
        }
        // One rule (the common case: one target) is taken as it is, not joined anew.
        let rule = match rules.len() {
            0 => Rule::default(),
            1 => rules.pop().unwrap_or_default(),
            _ => Rule::from(
                rules
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        Ok((Verdict::allow(rule), grants))
    }

    /// A side effect's intent, on record before it runs (0: none needed, or no audit log).
    fn intent(&self, spec: &OpSpec, info: &CallInfo) -> Result<u64, OpError> {
        if !spec.side_effect || !spec.recorded {
            return Ok(0);
        }
        let seq = self.shared.audit.intent(info);
        if seq == 0 && self.shared.audit.enabled() && !spec.after_log_failure {
            // The intent is not on disk: the side effect must not happen.
            return Err(self.unrecordable(info));
        }
        Ok(seq)
    }

    /// A refusal before the call runs (bad argument, denied, quota, no slot): told to whoever
    /// waits, audited, answered at once.
    fn refuse(
        &self,
        id: u64,
        spec: &'static OpSpec,
        info: CallInfo,
        start: Instant,
        e: OpError,
        tell: Option<OnRefused>,
    ) -> Option<Vec<u8>> {
        if let Some(tell) = tell {
            tell(self, &e);
        }
        if spec.recorded {
            self.shared
                .audit
                .call(info, e.code.name(), 0, started_of(spec, start));
        }
        self.answer_refusal(id, spec, e)
    }

    /// The script's answer to a refused call; none for a host's message (nobody asked).
    fn answer_refusal(&self, id: u64, spec: &OpSpec, e: OpError) -> Option<Vec<u8>> {
        (spec.lane != Lane::Delivered).then(|| encode(&proto::error_reply(id, e.code, e.message)))
    }

    /// Sends a job to the I/O pool; its reply comes back as an `Event::Reply`.
    fn spawn(&self, finished: Finished, info: CallInfo, grants: Grants, job: plan::PoolJob) {
        let shared = self.shared.clone();
        let events = self.events.clone();
        shared.sequence.pooled(finished.intent);
        crate::pool::submit(move || {
            let started = shared.clock();
            let op = info.op;
            let done = catch_unwind(AssertUnwindSafe(|| job(&shared, grants)))
                .unwrap_or_else(|_| panicked(op));
            let id = finished.id;
            let finished = Finished {
                started,
                ..finished
            };
            let bytes = finished.answer(&shared, info, done);
            let _ = events.send(Event::Reply { id, bytes });
        });
    }

    fn reserve_slot(&self) -> Result<(), OpError> {
        let limit = self.shared.policy.limits.max_calls_in_flight();
        let used = self.in_flight.get();
        if used >= limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("too many calls in flight: {used} already wait for an answer ([limits] max_calls_in_flight = {limit})"),
            ));
        }
        self.in_flight.set(used + 1);
        Ok(())
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

    /// Fails every host request still waiting for an answer (the run has ended), so that no
    /// host waits for its timeout.
    pub fn fail_waiting_requests(&self, why: &str) {
        self.host.fail_waiting(why);
    }

    /// Answers a host request (`request_id`, 0 for none) with an error: it was not delivered.
    pub fn fail_request(&self, request_id: u64, why: String) {
        self.host.fail(request_id, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;

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
        let run = Run::Pool(None, Box::new(|_, _| panic!("injected fault")));
        let plan = Plan::free("/x", run);
        let answer = d.pipeline(7, table::FS_READ_DIR, plan, Instant::now());
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
        assert!(e.message.contains("fs.readDir"), "{}", e.message);
        d.shared().audit.flush();
        let log = sink.lines().join("\n");
        assert!(log.contains("\"outcome\":\"INTERNAL\""), "{log}");
        // The dispatcher lives on.
        assert!(d
            .on_send(
                &proto::Call {
                    id: 8,
                    op: Some(proto::call::Op::Now(proto::Now {}))
                }
                .encode_to_vec()
            )
            .is_some());
    }
}
