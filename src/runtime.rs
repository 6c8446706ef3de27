//! Running a script to its end: a worker with the `sys` prelude, the dispatcher behind its
//! `$send`, and the event loop that delivers replies, fires timers and decides when the run is
//! over (nothing in flight, no timer armed, the main module settled) — or stops it (timeout,
//! heap limit, `sys.exit`).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::json;

use crate::audit::AuditLog;
use crate::dispatch::{Dispatcher, Event, OutputFn, PendingRequests, Shared, Stream};
use crate::engine::Engine;
use crate::isolation::{Isolation, Prestarted, RemoteWorker, Sent, SpawnError, StartOptions};
use crate::loader::{Imports, ModuleLoader};
use crate::policy::Policy;
use crate::proto;
use crate::watchdog::{Limits, Stuck, Watchdog};
use crate::worker::{JsError, TerminateHandle, TerminationReason, Worker, WorkerOptions};

/// The `sys` library and its codec, assembled by build.rs from `js/` and the schema.
pub const PRELUDE: &str = include_str!(concat!(env!("OUT_DIR"), "/prelude.js"));
/// The protobuf codec alone, installing `globalThis.codec = {encode, decode, ...}`: for
/// round-trip tests and tools, never loaded into a script's isolate.
pub const CODEC_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/codec.js"));
// PRELUDE_NAME, and the prelude's startup snapshot made by build.rs.
include!(concat!(env!("OUT_DIR"), "/prelude_snapshot.rs"));

/// Whether this v8box carries the prelude's snapshot made at build time (all but cross-compiled
/// builds do).
pub fn has_built_in_snapshot() -> bool {
    !PRELUDE_SNAPSHOT.is_empty()
}

/// The startup snapshot with the prelude: the one made at build time, or (in a cross-compiled
/// v8box, which has none) one built on first use and shared by every run of the process. `None`
/// (and the prelude is loaded from source) if V8 could not build it.
pub fn prelude_snapshot() -> Option<crate::worker::Snapshot> {
    if has_built_in_snapshot() {
        return Some(crate::worker::Snapshot::from_build(
            PRELUDE_SNAPSHOT,
            PRELUDE_RECV_INDEX,
        ));
    }
    static SNAPSHOT: std::sync::OnceLock<Option<crate::worker::Snapshot>> =
        std::sync::OnceLock::new();
    SNAPSHOT
        .get_or_init(
            || match crate::worker::build_snapshot(PRELUDE_NAME, PRELUDE) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!(
                        "v8box: no startup snapshot ({e}); each worker loads the prelude instead"
                    );
                    None
                }
            },
        )
        .clone()
}

/// The script to run.
pub enum Main {
    /// An ES module; its imports come from `resolve`.
    Module {
        /// The module's name (its path, used in errors, the audit log, and as the referrer its
        /// relative imports resolve against).
        name: String,
        /// The module's source text.
        source: String,
        /// Where its imports come from: files the policy allows (`Imports::Files`, each load
        /// an audited system call), or the host's own resolver.
        resolve: Imports,
    },
    /// A classic script.
    Script {
        /// The script's name (used in errors and the audit log).
        name: String,
        /// The script's source text.
        source: String,
    },
}

impl Main {
    fn name(&self) -> &str {
        match self {
            Main::Module { name, .. } | Main::Script { name, .. } => name,
        }
    }
    fn source(&self) -> &str {
        match self {
            Main::Module { source, .. } | Main::Script { source, .. } => source,
        }
    }
}

/// Everything a run needs besides the script.
pub struct RunOptions {
    /// What the script may do.
    pub policy: Policy,
    /// The script's arguments (what `sys.args` returns).
    pub args: Vec<String>,
    /// Where calls and lifecycle events are recorded.
    pub audit: AuditLog,
    /// Where `$print` and `console.*` output goes; `None`: this process's stdout and stderr.
    pub output: Option<OutputFn>,
    /// Script → host channels: messages from `sys.host.send(channel, ...)`.
    pub host_out: HashMap<String, Sender<bytes::Bytes>>,
    /// Host → script messages, if a host application talks to the script. The event loop
    /// takes one at a time, as the script handles them (a bounded channel is backpressure).
    pub host_in: Option<Receiver<HostMessageIn>>,
    /// Host requests waiting for an answer (`sys.host.send` with `reply_to`).
    pub requests: Option<PendingRequests>,
    /// Gets the run's control once the worker exists (to stop the run from outside).
    pub on_start: Option<Box<dyn FnOnce(RunControl) + Send>>,
    /// Start the worker from the prelude's startup snapshot (`prelude_snapshot`: made at build
    /// time) instead of loading the prelude from source. On by default. In a cross-compiled
    /// v8box the snapshot is built on first use, which is worth it only when a process runs
    /// more than one script.
    pub use_snapshot: bool,
    /// The run is all this process does (the CLI): its limits may be enforced on the whole
    /// process. `--max-heap` then also bounds the process's resident memory, and a run that
    /// does not stop within `watchdog::GRACE` of its timeout or heap limit (a builtin that
    /// checks no interrupt, a write into a stalled pipe) gets its `run.end` recorded and the
    /// process ended with the limit's exit code. Off by default: a host application's process
    /// holds other work.
    pub owns_process: bool,
    /// Where the isolate runs: on this thread (the default), or in a jailed worker process
    /// (`Isolation::Process`, the CLI's default). docs/SECURITY.md says what each stops.
    pub isolation: Isolation,
    /// V8 flags for a run in a worker process (`Isolation::Process`), set there before its
    /// isolate is made. A run on this thread uses this process's flags (`crate::set_flags`).
    pub v8_flags: Vec<String>,
}

/// A message from the host application to the script.
#[derive(Debug, Clone)]
pub struct HostMessageIn {
    /// The host channel the message arrives on; delivered only if the policy grants it.
    pub channel: String,
    /// The message payload.
    pub data: bytes::Bytes,
    /// Non-zero when the host waits for an answer (see `PendingRequests`).
    pub request_id: u64,
}

/// Stops a run from another thread, even while its event loop waits.
#[derive(Clone)]
pub struct RunControl {
    terminate: TerminateHandle,
    wake: Sender<Event>,
}

impl RunControl {
    /// Terminates the script (the run ends with `Exit::Terminated`).
    pub fn stop(&self) {
        self.terminate.terminate();
        let _ = self.wake.send(Event::Wake);
    }
}

impl RunOptions {
    /// Options with `policy`, no arguments, no audit log, default output and no host channels.
    pub fn new(policy: Policy) -> RunOptions {
        RunOptions {
            policy,
            args: Vec::new(),
            audit: AuditLog::disabled(),
            output: None,
            host_out: HashMap::new(),
            host_in: None,
            requests: None,
            on_start: None,
            use_snapshot: true,
            owns_process: false,
            isolation: Isolation::Thread,
            v8_flags: Vec::new(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    /// The script finished.
    Ok,
    /// An uncaught exception or unhandled rejection.
    Error(JsError),
    /// The wall-clock limit ran out.
    Timeout,
    /// The heap limit was reached.
    HeapLimit,
    /// The script called `sys.exit(code)`.
    Code(i32),
    /// The host terminated the script.
    Terminated,
    /// The jailed worker process ended without being asked (a crash, a signal such as
    /// `SIGSYS` for a system call its jail forbids, or a broken channel): why.
    Crashed(String),
}

impl Exit {
    /// The process exit code the CLI uses: 0 ok, 1 error, 3 timeout, 4 heap limit, 5 worker
    /// crashed, n from exit.
    pub fn code(&self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Error(_) => 1,
            Exit::Timeout => 3,
            Exit::HeapLimit => 4,
            Exit::Code(n) => *n,
            Exit::Terminated => 1,
            Exit::Crashed(_) => 5,
        }
    }

    /// The word the audit log's run-end record uses.
    pub fn reason(&self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Error(_) => "error",
            Exit::Timeout => "timeout",
            Exit::HeapLimit => "heap limit",
            Exit::Code(_) => "exit()",
            Exit::Terminated => "terminated",
            Exit::Crashed(_) => "worker crashed",
        }
    }
}

fn default_output() -> OutputFn {
    Arc::new(|stream, line| {
        use std::io::Write;
        let _ = match stream {
            Stream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
            Stream::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
        };
    })
}

/// Writes the run's one `run.end` record (`Shared::end_run`: the first writer wins), with how
/// many calls were still running; `abandoned` when the watchdog gave up on a stuck run.
fn record_run_end(shared: &Shared, run_name: &str, exit: &Exit, started: Instant, abandoned: bool) {
    shared.end_run(|unfinished| {
        let mut fields = json!({
            "exit_code": exit.code(),
            "reason": exit.reason(),
            "calls_unfinished": unfinished.calls,
        });
        // Which run this ends: its `run_start`'s seq (several workers and runs share a log).
        if unfinished.run != 0 {
            fields["run"] = json!(unfinished.run);
        }
        // The side effects among them: their intents will have no outcome before this record.
        if !unfinished.intents.is_empty() {
            fields["intents_unfinished"] = json!(unfinished.intents);
        }
        if abandoned {
            fields["abandoned"] = json!(true);
        }
        // How a jailed worker ended (a signal, a broken protocol).
        if let Exit::Crashed(why) = exit {
            fields["crash"] = json!(why);
        }
        shared.audit.lifecycle(
            "run.end",
            run_name,
            exit.reason(),
            started.elapsed().as_micros() as u64,
            fields,
        )
    });
}

/// The CLI's answer to a run that its limit stopped but that did not leave the isolate within
/// `watchdog::GRACE`: record `run.end` (the log stays complete), say why, and end the process
/// with the limit's exit code.
fn end_process_when_stuck(shared: Arc<Shared>, run_name: String, started: Instant) -> Stuck {
    Box::new(move |reason, gave_up: crate::watchdog::GaveUp| {
        let exit = match reason {
            TerminationReason::Timeout => Exit::Timeout,
            TerminationReason::HeapLimit => Exit::HeapLimit,
            _ => Exit::Terminated,
        };
        record_run_end(&shared, &run_name, &exit, started, true);
        // stderr may be the very pipe that stalled the run: say why from a thread of its own,
        // and do not wait long for it.
        let message = format!(
            "error: {run_name}: {} and {}: the process ends",
            stopped_because(&exit),
            gave_up.described()
        );
        let (said, told) = crossbeam_channel::bounded::<()>(1);
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{message}");
            let _ = said.send(());
        });
        let _ = told.recv_timeout(Duration::from_millis(100));
        std::process::exit(exit.code());
    })
}

/// Why a run that had to be given up on was stopped, as its error message says it.
fn stopped_because(exit: &Exit) -> &'static str {
    match exit {
        Exit::Timeout => "timed out (the --timeout / [limits] timeout_ms limit ran out)",
        Exit::HeapLimit => "reached the heap limit (--max-heap / [limits] max_heap_mb)",
        _ => "was stopped",
    }
}

fn sha256_hex(text: &str) -> String {
    crate::audit::sha256_hex(text.as_bytes())
}

/// Runs `main` under `options` until it ends, in a new worker.
pub fn run(main: Main, options: RunOptions) -> Exit {
    run_in(main, options, None)
}

/// A worker kept between runs on one thread, so that the next run skips creating an isolate
/// (most of a start-up; docs/BENCHMARKS.md B5). Each run still gets a fresh context: its own
/// globals, builtins, modules and policy, and nothing the previous script left behind is
/// reachable (see `Worker::renew`). What runs share is the isolate: V8's caches of compiled
/// code and its heap, whose garbage a later run may find in memory it is given. Use one
/// `WarmWorker` for scripts of one trust domain; docs/SECURITY.md says more. Not `Send`.
#[derive(Default)]
pub struct WarmWorker {
    worker: Option<Worker>,
    renewals: u64,
    /// With `Isolation::Process`: a worker process started (jailed, V8 started) for the next
    /// run. Each run gets a process of its own; only its start is done ahead.
    spare: Option<Prestarted>,
    /// Keep a run's worker process, its isolate parked, for the next run (as `worker` keeps
    /// an isolate of this thread): `WorkerPool::with_warm_workers_in`.
    keep_processes: bool,
}

impl WarmWorker {
    /// No isolate yet; the first run creates one.
    pub fn new() -> WarmWorker {
        WarmWorker::default()
    }

    /// Like `new`, and with `Isolation::Process` each run's worker process is kept too, its
    /// isolate parked, and the next run renews it (for scripts of one trust domain, as
    /// isolates kept on a thread; docs/SECURITY.md "Reused isolates").
    pub fn keeping_processes() -> WarmWorker {
        WarmWorker {
            keep_processes: true,
            ..WarmWorker::default()
        }
    }

    /// How many runs got a kept isolate instead of a new one.
    pub fn renewals(&self) -> u64 {
        self.renewals
    }

    /// Whether an isolate is kept for the next run.
    pub fn is_warm(&self) -> bool {
        self.worker.is_some()
    }

    /// Starts a worker process from `exe` for the next run (`Isolation::Process`), unless one
    /// is waiting already. A pool thread calls this after it has answered a job, so that the
    /// next job does not wait for a process to start.
    pub fn prestart(&mut self, exe: &std::path::Path) {
        if self.spare.as_ref().is_none_or(|p| p.exe() != exe) {
            self.spare = Prestarted::spawn_warm(exe).ok();
        }
    }
}

/// Runs `main` like `run`, in `warm`'s isolate when its settings allow (`Worker::can_renew`:
/// a run with a heap limit always gets a new isolate), and keeps the isolate there afterwards
/// unless its heap is over `worker::KEEP_HEAP_BYTES` (`Worker::is_renewable`).
pub fn run_warm(main: Main, options: RunOptions, warm: &mut WarmWorker) -> Exit {
    run_in(main, options, Some(warm))
}

fn run_in(main: Main, mut options: RunOptions, mut warm: Option<&mut WarmWorker>) -> Exit {
    // No script runs where V8's heap sandbox lacks its guard regions (a jailed worker checks
    // its own V8, and this process starts none).
    if options.isolation == Isolation::Thread {
        if let Err(why) = crate::worker::check_platform() {
            return Exit::Error(crate::JsError::plain_message(why));
        }
    }
    let policy = options.policy.clone();
    let timeout = policy.limits.timeout_ms.map(Duration::from_millis);
    let worker_options = WorkerOptions {
        max_heap_bytes: policy.limits.max_heap_mb.map(|mb| (mb as usize) << 20),
        deny_code_generation: !policy.allow_eval,
        snapshot: if options.use_snapshot {
            prelude_snapshot()
        } else {
            None
        },
        ..WorkerOptions::default()
    };
    let prelude_loaded = worker_options.snapshot.is_some();
    let shared = Arc::new(Shared::new(options.policy, options.audit));
    let started = Instant::now();
    // Hashing the script and normalizing the policy are for the log only.
    let start_fields = shared.audit.enabled().then(|| {
        json!({
            "script_sha256": sha256_hex(main.source()),
            "policy_digest": policy.digest(),
            "args": options.args,
        })
    });

    let run_name = main.name().to_string();
    let (events_tx, events) = unbounded::<Event>();
    let output = options.output.clone().unwrap_or_else(default_output);
    let dispatcher = Rc::new(Dispatcher::new(
        shared.clone(),
        events_tx.clone(),
        output.clone(),
        std::mem::take(&mut options.args),
        std::mem::take(&mut options.host_out),
        options.requests.clone(),
    ));
    let on_send = || {
        let d = dispatcher.clone();
        move |bytes: &[u8]| d.on_send(bytes)
    };
    let mut isolate = match &options.isolation {
        Isolation::Process { exe } => {
            let d = dispatcher.clone();
            let on_send = Box::new(move |sent: Sent<'_>| match sent {
                Sent::Bytes(bytes) => d.on_send(bytes),
                Sent::Oversized { length, head } => d.on_oversized(length, head),
            });
            let print = output.clone();
            let start = StartOptions {
                max_heap_bytes: worker_options.max_heap_bytes,
                deny_code_generation: worker_options.deny_code_generation,
                use_snapshot: worker_options.snapshot.is_some(),
                max_message_bytes: policy.limits.max_message_bytes(),
                v8_flags: options.v8_flags.clone(),
            };
            let warn_to = output.clone();
            let mut warn = |w: &str| warn_to(Stream::Stderr, &format!("v8box: warning: {w}"));
            // A kept process started for this run (a pool's zygote), else a new one.
            let spare = warm
                .as_deref_mut()
                .and_then(|w| w.spare.take())
                .filter(|p| p.exe() == exe.as_path());
            let started = match spare {
                Some(p) => Ok(p),
                None => Prestarted::spawn(exe),
            };
            match started.and_then(|p| {
                RemoteWorker::start(
                    p,
                    &start,
                    on_send,
                    Box::new(move |line| print(Stream::Stdout, line)),
                    &mut warn,
                )
            }) {
                Ok(w) => Isolate::Remote(w),
                Err(SpawnError::Refused(why)) => {
                    return Exit::Error(JsError::plain_message(why));
                }
                Err(e) => return Exit::Crashed(e.to_string()),
            }
        }
        Isolation::Thread => {
            let mut kept = warm.as_deref_mut().and_then(|w| w.worker.take());
            let renewed = kept
                .as_mut()
                .is_some_and(|w| w.renew(&worker_options, on_send()));
            let mut worker = match kept {
                Some(w) if renewed => {
                    if let Some(warm) = warm.as_deref_mut() {
                        warm.renewals += 1;
                    }
                    w
                }
                unusable => {
                    drop(unusable);
                    Worker::with_options(worker_options, on_send())
                }
            };
            let print = output.clone();
            worker.set_print_handler(move |line| print(Stream::Stdout, line));
            Isolate::Local(worker)
        }
    };
    if let Some(mut fields) = start_fields {
        match &isolate {
            // Which run of its isolate this is: 1 for a new isolate, more in a kept one.
            Isolate::Local(worker) => fields["isolate_run"] = json!(worker.runs_hosted()),
            // Where it runs, and the jail's layers in force.
            Isolate::Remote(worker) => {
                fields["isolate_run"] = json!(worker.runs_hosted);
                fields["isolation"] = json!({ "mode": "process", "jail": worker.jail });
                // The kernel's limit on the worker's memory (its memory cgroup), where one is.
                if let Some(bytes) = worker.memory_limit {
                    fields["isolation"]["memory_limit_bytes"] = json!(bytes);
                }
            }
        }
        let seq = shared
            .audit
            .lifecycle("run.start", main.name(), "ok", 0, fields);
        shared.started_run(seq);
    }
    #[cfg(debug_assertions)]
    if let Isolate::Remote(worker) = &isolate {
        // The jail's test (src/isolation/probe.rs): what the worker could do in its jail.
        for line in &worker.probe {
            output(Stream::Stderr, &format!("jail probe: {line}"));
        }
    }
    let handle = isolate.engine().terminate_handle();
    dispatcher.set_terminate_handle(handle.clone());
    if let Some(on_start) = options.on_start.take() {
        on_start(RunControl {
            terminate: handle.clone(),
            wake: events_tx.clone(),
        });
    }
    let host_in = options.host_in.take();
    let heap_limit = policy.limits.max_heap_mb.map(|mb| mb << 20);
    let stuck = options
        .owns_process
        .then(|| end_process_when_stuck(shared.clone(), run_name.clone(), started));
    let limits = match &isolate {
        Isolate::Local(worker) => Limits {
            timeout,
            isolate_memory: worker.memory_watch(),
            process_memory: heap_limit.filter(|_| options.owns_process),
            memory_of: None,
            kernel_kills_at_twice: false,
            kill: None,
            stuck,
        },
        // The worker watches its own buffers; its process is the run's alone.
        Isolate::Remote(worker) => Limits {
            timeout,
            isolate_memory: None,
            process_memory: heap_limit,
            memory_of: Some(worker.pid()),
            // A worker's cgroup has a limit only with a heap limit.
            kernel_kills_at_twice: worker.memory_limit.is_some(),
            kill: Some(Box::new(worker.killer())),
            stuck,
        },
    };
    let watchdog = Watchdog::start(limits, handle.clone(), events_tx.clone());
    let deadline = timeout.map(|t| Instant::now() + t);
    drop(events_tx);

    let exit = event_loop(
        isolate.engine(),
        &dispatcher,
        &events,
        host_in.as_ref(),
        main,
        deadline,
        prelude_loaded,
    );
    // A worker that crashed ended the run, whatever error its loss looked like.
    let exit = match (isolate.engine().crashed(), exit) {
        (Some(why), Exit::Error(_)) => Exit::Crashed(why),
        (_, exit) => exit,
    };
    // The isolate is free: the run is no longer in danger of being given up on.
    drop(watchdog);
    // Let operations already running finish, so that their outcomes reach the audit log.
    let drain_until = Instant::now() + Duration::from_secs(5);
    while dispatcher.in_flight() > 0 {
        match events.recv_deadline(drain_until) {
            Ok(Event::Reply { .. }) => dispatcher.completed(),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // A run whose audit log failed was stopped at its next call (`Dispatcher::audit_failed`),
    // and its records stop there: it did not end well, whatever the script made of it.
    let exit = match (shared.audit.failure(), exit) {
        (Some(why), Exit::Ok | Exit::Code(0) | Exit::Terminated) => {
            Exit::Error(JsError::plain_message(format!(
                "{why}: the run was stopped at its first call after it, and the log ends there"
            )))
        }
        (_, exit) => exit,
    };
    let why = match &exit {
        Exit::Error(e) => format!("the run ended before answering ({})", e.message),
        other => format!("the run ended before answering ({})", other.reason()),
    };
    dispatcher.fail_waiting_requests(&why);
    // Calls still running when the drain gave up (a FIFO nobody writes, say): the end of the
    // run says how many there were; their own records come later, marked late, if they
    // finish while the process lives (docs/AUDIT.md).
    let abandoned = isolate.engine().abandoned();
    if let Some(how) = &abandoned {
        output(
            Stream::Stderr,
            &format!("error: {run_name}: {}, and {how}", stopped_because(&exit)),
        );
    }
    let abandoned = abandoned.is_some();
    record_run_end(&shared, &run_name, &exit, started, abandoned);
    match (warm, isolate) {
        // An isolate left with a clean-up queued with V8 is not kept (`Worker::park`).
        (Some(warm), Isolate::Local(mut worker)) => {
            if worker.is_renewable() && worker.park() {
                warm.worker = Some(worker);
            }
        }
        // A warm pool's worker process is kept with its parked isolate (one trust domain).
        (Some(warm), Isolate::Remote(worker)) if warm.keep_processes => {
            warm.spare = worker.park();
        }
        (_, isolate) => drop(isolate),
    }
    exit
}

/// The run's isolate: a `Worker` here, or one in a jailed worker process.
enum Isolate {
    Local(Worker),
    Remote(RemoteWorker),
}

impl Isolate {
    fn engine(&mut self) -> &mut dyn Engine {
        match self {
            Isolate::Local(w) => w,
            Isolate::Remote(w) => w,
        }
    }
}

fn classify(e: JsError, dispatcher: &Dispatcher) -> Exit {
    match e.termination {
        None => Exit::Error(e),
        Some(TerminationReason::Timeout) => Exit::Timeout,
        Some(TerminationReason::HeapLimit) => Exit::HeapLimit,
        Some(TerminationReason::Exit) => Exit::Code(dispatcher.exit_code().unwrap_or(0)),
        Some(TerminationReason::Terminated) => Exit::Terminated,
    }
}

/// A message from the host, through the dispatcher's pipeline (`host.message`): policy,
/// quota, audit; `None` when it is refused.
fn admit(dispatcher: &Dispatcher, msg: HostMessageIn) -> Option<Vec<u8>> {
    dispatcher.on_host_message(proto::HostMessage {
        channel: msg.channel,
        data: msg.data.to_vec(),
        request_id: msg.request_id,
    })
}

enum Wait {
    Event(Event),
    Host(HostMessageIn),
    HostClosed,
    Timeout,
}

fn wait(
    events: &Receiver<Event>,
    host_in: Option<&Receiver<HostMessageIn>>,
    wake_at: Option<Instant>,
) -> Wait {
    let mut select = crossbeam_channel::Select::new();
    let ev = select.recv(events);
    let host = host_in.map(|h| select.recv(h));
    let op = match wake_at {
        Some(at) => match select.select_deadline(at) {
            Ok(op) => op,
            Err(_) => return Wait::Timeout,
        },
        None => select.select(),
    };
    if op.index() == ev {
        return match op.recv(events) {
            Ok(e) => Wait::Event(e),
            Err(_) => Wait::Timeout,
        };
    }
    match (host, host_in) {
        (Some(_), Some(h)) => match op.recv(h) {
            Ok(m) => Wait::Host(m),
            Err(_) => Wait::HostClosed,
        },
        _ => Wait::Timeout,
    }
}

/// How often the event loop looks for tasks V8 queued: the most it waits for the task of a
/// background compile, and the least time between looks when V8 compiles nothing.
const TASKS_EVERY: Duration = Duration::from_millis(1);

fn event_loop(
    worker: &mut dyn Engine,
    dispatcher: &Dispatcher,
    events: &Receiver<Event>,
    mut host_in: Option<&Receiver<HostMessageIn>>,
    main: Main,
    deadline: Option<Instant>,
    prelude_loaded: bool,
) -> Exit {
    let fail = |e: JsError| classify(e, dispatcher);
    if !prelude_loaded {
        if let Err(e) = worker.load(PRELUDE_NAME, PRELUDE) {
            return fail(e);
        }
    }
    let terminate = worker.terminate_handle();
    // Only a module can wait on top-level await; once it has settled there is nothing to poll.
    let mut main_pending = matches!(main, Main::Module { .. });
    let loaded = match main {
        Main::Module {
            name,
            source,
            resolve,
        } => {
            let mut loader = ModuleLoader::new(dispatcher.shared().clone(), resolve);
            loader.knows_main(&name, &source);
            worker.set_resolver(Box::new(move |request| loader.load(request)));
            worker.load_module(&name, &source)
        }
        Main::Script { name, source } => worker.load(&name, &source),
    };
    if let Err(e) = loaded {
        return fail(e);
    }
    let mut compiling = true;
    let mut tasks_run_at = Instant::now();
    loop {
        if let Some(reason) = terminate.reason() {
            return classify(
                JsError::plain_message(reason.to_string()).with_termination(reason),
                dispatcher,
            );
        }
        // What V8 queued for this thread (an asynchronous WebAssembly compile that finished,
        // FinalizationRegistry clean-ups) runs before anything else is decided: at every turn
        // while V8 compiles in the background, else at most every `TASKS_EVERY` (looking costs
        // a loop of quick calls about 5 %, and a clean-up can wait), and once more at the end.
        let tasks_due = compiling || tasks_run_at.elapsed() >= TASKS_EVERY;
        if tasks_due {
            if let Err(e) = worker.run_platform_tasks() {
                return fail(e);
            }
            tasks_run_at = Instant::now();
        }
        if let Some(e) = worker.take_unhandled_rejection() {
            return fail(e);
        }
        if main_pending {
            main_pending = match worker.poll_modules() {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
        }
        // Listening keeps the run alive only while a host can still send.
        let listening = dispatcher.any_listener() && host_in.is_some();
        compiling = worker.has_background_work();
        if !dispatcher.busy() && !listening && !compiling {
            // The last look: a clean-up may start more work.
            if !tasks_due {
                match worker.run_platform_tasks() {
                    Err(e) => return fail(e),
                    Ok(true) => {
                        tasks_run_at = Instant::now();
                        continue;
                    }
                    Ok(false) => {}
                }
            }
            if main_pending {
                return Exit::Error(JsError::plain_message(
                    "top-level await never settled: the module waits for a promise that nothing can resolve",
                ));
            }
            return Exit::Ok;
        }
        // Wait for a reply, a host message, the next timer or the run's deadline.
        let mut wake_at = match (dispatcher.next_timer(), deadline) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        if compiling {
            // V8's default platform cannot wake this loop when it queues a task (the `v8` crate
            // binds no platform of our own), so while V8 works in the background the loop
            // looks for its task at this interval.
            let look = Instant::now() + TASKS_EVERY;
            wake_at = Some(wake_at.map_or(look, |t| t.min(look)));
        }
        let mut deliveries: Vec<Vec<u8>> = Vec::new();
        match wait(events, host_in, wake_at) {
            Wait::Event(Event::Reply { bytes, .. }) => {
                dispatcher.completed();
                deliveries.push(bytes);
            }
            Wait::Event(Event::Wake) | Wait::Timeout => {}
            Wait::Host(msg) => deliveries.extend(admit(dispatcher, msg)),
            Wait::HostClosed => host_in = None,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Exit::Timeout;
        }
        // Batch what else has already arrived.
        for ev in events.try_iter() {
            if let Event::Reply { bytes, .. } = ev {
                dispatcher.completed();
                deliveries.push(bytes);
            }
        }
        let fired = dispatcher.due_timers(Instant::now());
        if !fired.is_empty() {
            deliveries.push(Dispatcher::timers_fired(fired));
        }
        // Everything that arrived together goes to the script in one `$recv` call (one
        // microtask checkpoint), in arrival order.
        let delivered = match deliveries.len() {
            0 => Ok(()),
            1 => worker.send_vec(deliveries.pop().expect("one delivery")),
            _ => worker.send_vec(proto::batch_of(&deliveries)),
        };
        if let Err(e) = delivered {
            return fail(e);
        }
    }
}
