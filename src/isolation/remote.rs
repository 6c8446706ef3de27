//! The broker's side of a jailed worker: `RemoteWorker` starts the worker process, and is the
//! event loop's `Engine` — each call is a request on the channel, answered after the script's
//! `$send`s, `$print`s and imports were served here, by the run's own dispatcher and loader.
//! Whatever the worker sends is hostile input: a message that does not decode, a frame over
//! the limit or an answer out of turn ends the worker, and the run ends as crashed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::channel::{Channel, ChannelError};
use super::memory_cgroup::{self, MemoryCgroup};
use super::wire::{self, pb};
use crate::engine::Engine;
use crate::watchdog::GaveUp;
use crate::worker::{
    ImportRequest, JsError, ModuleKind, Resolver, TerminateHandle, TerminationReason,
};
use pb::{from_worker, to_worker, FromWorker, ToWorker};

/// The `Start` settings of a worker process.
pub struct StartOptions {
    /// `WorkerOptions::max_heap_bytes`.
    pub max_heap_bytes: Option<usize>,
    /// `WorkerOptions::deny_code_generation`.
    pub deny_code_generation: bool,
    /// Start from the prelude's snapshot built into the worker's executable.
    pub use_snapshot: bool,
    /// `$send` messages over this size reach the broker as their size only.
    pub max_message_bytes: usize,
    /// V8 flags for the worker process (`SandboxBuilder::v8_flags`): set there before the
    /// run's isolate is made; such a process is not kept for another run.
    pub v8_flags: Vec<String>,
}

/// Why a worker process could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The process did not start, or ended before it was ready.
    #[error("cannot start the worker process ({exe}): {why}")]
    Start {
        /// The worker executable.
        exe: String,
        /// What went wrong.
        why: String,
    },
    /// The worker runs no scripts there (V8's heap sandbox could not be reserved securely).
    #[error("{0}")]
    Refused(String),
}

/// A `$send` from the worker: the bytes, or (over `max_message_bytes`) only their size and
/// first bytes.
pub enum Sent<'a> {
    /// The message.
    Bytes(&'a [u8]),
    /// A message over `max_message_bytes`: its length and first bytes (its call id).
    Oversized {
        /// The message's length.
        length: u64,
        /// Its first bytes (at most 16).
        head: &'a [u8],
    },
}

type OnSend = Box<dyn FnMut(Sent<'_>) -> Option<Vec<u8>>>;

/// A worker process that has entered its jail and started V8, waiting for its run: a pool
/// keeps one per thread so that a job does not wait for a process to start (a zygote).
/// Dropped unused, the process is ended.
pub struct Prestarted {
    exe: PathBuf,
    parts: Option<Parts>,
    /// The jail's layers, once a first run was told them (a parked worker's).
    jail: Vec<String>,
}

struct Parts {
    child: Child,
    pidfd: Arc<OwnedFd>,
    killed: Arc<AtomicBool>,
    channel: Channel,
    control: UnixStream,
    /// The kernel's limit on the process's memory, where a cgroup can be made here (for a
    /// pool's worker from the start, else from the first run with a heap limit); removed after
    /// the process is reaped.
    memory: Option<MemoryCgroup>,
}

impl Prestarted {
    /// Starts `exe` (which calls `isolation::worker_entry` first thing) as a jailed worker.
    pub fn spawn(exe: &Path) -> Result<Prestarted, SpawnError> {
        Prestarted::start_process(exe, false)
    }

    /// Like `spawn`, for a run that comes later (a pool's next job): while it waits, the
    /// worker also pays its first isolate's one-time costs.
    pub fn spawn_warm(exe: &Path) -> Result<Prestarted, SpawnError> {
        Prestarted::start_process(exe, true)
    }

    fn start_process(exe: &Path, warm_up: bool) -> Result<Prestarted, SpawnError> {
        let fail = |why: String| SpawnError::Start {
            exe: exe.display().to_string(),
            why,
        };
        let shared = super::ring::create().map_err(|e| fail(format!("the channel: {e}")))?;
        let (control, control_worker) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
        // A stop request never blocks the thread that asks (the watchdog): the worker reads
        // them as they come, and a handful of bytes is all there ever is.
        control
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        let mut command = Command::new(exe);
        // The worker needs no environment: nothing in it is the script's to read.
        command
            .env_clear()
            .env(super::WORKER_ENV, std::process::id().to_string());
        if warm_up {
            command.env(super::WARM_UP_ENV, "1");
        }
        if let Some(zone) = super::local_time_zone() {
            command.env("TZ", zone);
        }
        // The locale V8's ICU takes as the default (`Intl`, `toLocaleString`), as a script on a
        // thread of this process sees it.
        for name in super::LOCALE_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut child = command
            .stdin(Stdio::from(
                shared.try_clone().map_err(|e| fail(e.to_string()))?,
            ))
            .stdout(Stdio::from(OwnedFd::from(control_worker)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| fail(format!("pidfd_open: {e}")));
        let pidfd = match pidfd {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        if let Some(stderr) = child.stderr.take() {
            forward_stderr(stderr);
        }
        let killed = Arc::new(AtomicBool::new(false));
        // The worker is there while its pidfd does not say it ended (and it was not killed).
        let alive: super::ring::Alive = {
            let pidfd = pidfd.clone();
            let killed = killed.clone();
            Arc::new(move || {
                if killed.load(Ordering::SeqCst) {
                    return false;
                }
                let mut fds = [rustix::event::PollFd::new(
                    &*pidfd,
                    rustix::event::PollFlags::IN,
                )];
                let zero = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                !matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(1))
            })
        };
        let mut pre = Prestarted {
            exe: exe.to_path_buf(),
            parts: None,
            jail: Vec::new(),
        };
        let ends = match super::ring::broker_ends(&shared, alive) {
            Ok(ends) => ends,
            Err(e) => {
                let _ = rustix::process::pidfd_send_signal(&*pidfd, rustix::process::Signal::KILL);
                let _ = child.wait();
                return Err(fail(e.to_string()));
            }
        };
        // A pool's worker, which waits for a job, gets its memory cgroup now, while it waits; a
        // worker for the run at hand gets one when the run has a limit to set (`start`).
        let memory = if warm_up {
            MemoryCgroup::create(child.id())
        } else {
            None
        };
        pre.parts = Some(Parts {
            memory,
            child,
            pidfd,
            killed,
            channel: Channel::new(ends, FRAME_SLACK),
            control,
        });
        Ok(pre)
    }

    /// The executable it runs.
    pub fn exe(&self) -> &Path {
        &self.exe
    }
}

impl Drop for Prestarted {
    fn drop(&mut self) {
        if let Some(mut parts) = self.parts.take() {
            let _ =
                rustix::process::pidfd_send_signal(&*parts.pidfd, rustix::process::Signal::KILL);
            let _ = parts.child.wait();
        }
    }
}

/// A worker process serving one run.
pub struct RemoteWorker {
    exe: PathBuf,
    /// The process; taken by `park` (which hands it on for the next run).
    process: Option<Parts>,
    /// A copy of `process`'s `pidfd` and kill flag, for the killer and the stop handle.
    pidfd: Arc<OwnedFd>,
    /// Set by `killer`: the watchdog gave up on the run.
    killed: Arc<AtomicBool>,
    on_send: OnSend,
    print: Box<dyn FnMut(&str)>,
    /// Answers the worker's imports, during any request (`import()` runs whenever JavaScript
    /// does).
    resolver: Option<Resolver>,
    terminate: TerminateHandle,
    background_work: bool,
    unhandled: VecDeque<JsError>,
    crashed: Option<String>,
    /// The jail's layers in force, as the worker reported them.
    pub jail: Vec<String>,
    /// The probe's results (debug builds).
    pub probe: Vec<String>,
    /// Runs the worker's isolate has hosted, this one included.
    pub runs_hosted: u32,
    /// The kernel's limit on the worker's memory in bytes (its memory cgroup's), if it has one.
    pub memory_limit: Option<u64>,
    /// The kernel killed the worker at that limit.
    killed_at_memory_limit: bool,
    /// The worker's `send_later`s since its last `flush`, and the answers among them.
    unflushed: usize,
    later: Vec<Vec<u8>>,
    /// The run set V8 flags in the process: it hosts no other run (`park` ends it).
    flagged: bool,
    /// Why the watchdog killed the worker, if it did.
    gave_up: Arc<OnceLock<GaveUp>>,
}

/// Slack over `max_message_bytes` for the frame around a `$send` and for `Done` messages.
const FRAME_SLACK: usize = 1 << 20;

impl RemoteWorker {
    /// Starts `exe` as a jailed worker (it must call `isolation::worker_entry` first thing),
    /// and waits until its isolate is made. `on_send` answers the script's `$send`s; `print`
    /// takes its `$print` lines; `warn` its jail's warnings (an older kernel).
    pub fn spawn(
        exe: &Path,
        start: &StartOptions,
        on_send: OnSend,
        print: Box<dyn FnMut(&str)>,
        warn: &mut dyn FnMut(&str),
    ) -> Result<RemoteWorker, SpawnError> {
        RemoteWorker::start(Prestarted::spawn(exe)?, start, on_send, print, warn)
    }

    /// Gives a pre-started worker process (jailed, V8 started) its run: makes its isolate.
    pub fn start(
        mut pre: Prestarted,
        start: &StartOptions,
        on_send: OnSend,
        print: Box<dyn FnMut(&str)>,
        warn: &mut dyn FnMut(&str),
    ) -> Result<RemoteWorker, SpawnError> {
        let exe = pre.exe.clone();
        let fail = |why: String| SpawnError::Start {
            exe: exe.display().to_string(),
            why,
        };
        let mut parts = pre
            .parts
            .take()
            .expect("a pre-started worker is started once");
        parts.channel.set_max(start.max_message_bytes + FRAME_SLACK);
        // Where the watchdog would give up on the run: twice the heap limit (src/watchdog.rs).
        let growth = start.max_heap_bytes.map(|b| {
            (b as u64)
                .saturating_mul(2)
                .saturating_add(memory_cgroup::SLACK)
        });
        let stop = parts
            .control
            .try_clone()
            .map_err(|e| fail(format!("the stop socket: {e}")))?;
        let terminate = TerminateHandle::remote(move |reason| {
            let _ = (&stop).write_all(&[wire::reason_code(Some(reason))]);
        });
        let (pidfd, killed) = (parts.pidfd.clone(), parts.killed.clone());
        let mut worker = RemoteWorker {
            exe: pre.exe.clone(),
            process: Some(parts),
            pidfd,
            killed,
            on_send,
            print,
            resolver: None,
            terminate,
            background_work: false,
            unhandled: VecDeque::new(),
            crashed: None,
            jail: pre.jail.clone(),
            probe: Vec::new(),
            runs_hosted: 1,
            memory_limit: None,
            killed_at_memory_limit: false,
            unflushed: 0,
            later: Vec::new(),
            flagged: !start.v8_flags.is_empty(),
            gave_up: Arc::default(),
        };
        let msg = to_worker::Msg::Start(pb::Start {
            max_heap_bytes: start.max_heap_bytes.unwrap_or(0) as u64,
            deny_code_generation: start.deny_code_generation,
            use_snapshot: start.use_snapshot,
            max_message_bytes: start.max_message_bytes as u64,
            probe: probe_request(),
            v8_flags: start.v8_flags.clone(),
        });
        if worker.send(msg).is_err() {
            return Err(fail(worker.ended("before it started")));
        }
        // While the worker makes its isolate. The kernel's limit is in force before the broker
        // sends the run's first script byte, which comes after `Ready`.
        worker.memory_limit = worker
            .limit_memory(growth)
            .map_err(|e| fail(format!("its memory cgroup's limit: {e}")))?;
        match worker.channel().recv::<FromWorker>() {
            Ok(FromWorker {
                msg: Some(from_worker::Msg::Ready(ready)),
            }) => {
                for w in &ready.warnings {
                    warn(w);
                }
                if !ready.jail.is_empty() {
                    worker.jail = ready.jail;
                }
                worker.probe = ready.probe;
                worker.runs_hosted = ready.runs_hosted;
                if !ready.refused.is_empty() {
                    return Err(SpawnError::Refused(ready.refused));
                }
                Ok(worker)
            }
            Ok(_) => Err(fail(worker.violated("it sent something else than Ready"))),
            Err(e) => Err(fail(worker.ended(&format!("before it was ready ({e})")))),
        }
    }

    /// Sets the kernel's limit on the worker's memory to `growth` bytes over what it uses now
    /// (`None`: no limit), where a memory cgroup can be made; returns the limit in bytes. The
    /// cgroup is made only for a run with a limit to set: the kernel serializes the making and
    /// removal of cgroups, and each takes milliseconds (docs/BENCHMARKS.md, start-up).
    fn limit_memory(&mut self, growth: Option<u64>) -> std::io::Result<Option<u64>> {
        let Some(parts) = self.process.as_mut() else {
            return Ok(None);
        };
        if growth.is_some() && parts.memory.is_none() {
            parts.memory = MemoryCgroup::create(parts.child.id());
        }
        match &parts.memory {
            Some(cgroup) => cgroup.limit_growth(growth),
            None => Ok(None),
        }
    }

    /// Kills the worker from any thread (the watchdog's last resort), even after it was
    /// reaped: a pidfd names this process only.
    pub fn killer(&self) -> impl Fn(GaveUp) + Send + 'static {
        let pidfd = self.pidfd.clone();
        let killed = self.killed.clone();
        let why = self.gave_up.clone();
        move |gave_up| {
            let _ = why.set(gave_up);
            killed.store(true, Ordering::SeqCst);
            let _ = rustix::process::pidfd_send_signal(&*pidfd, rustix::process::Signal::KILL);
        }
    }

    /// The worker process's id (to read its memory).
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |p| p.child.id())
    }

    fn channel(&mut self) -> &mut Channel {
        &mut self
            .process
            .as_mut()
            .expect("a worker's process lives until it is parked or dropped")
            .channel
    }

    /// Ends the run and keeps the process for another run of the same trust domain (a warm
    /// pool's, `WarmWorker`): the worker parks its isolate (`Worker::park`: the old context cut
    /// off, its tasks and microtasks dropped) and waits for its next `Start`. `None` when the
    /// worker cannot be kept (it crashed, was killed, or its isolate is not renewable); it is
    /// ended then.
    pub fn park(mut self) -> Option<Prestarted> {
        if self.crashed.is_some() || self.killed.load(Ordering::SeqCst) || self.flagged {
            return None;
        }
        match self.request(to_worker::Msg::Park(pb::Empty {})) {
            Ok(true) => Some(Prestarted {
                exe: self.exe.clone(),
                parts: self.process.take(),
                jail: self.jail.clone(),
            }),
            _ => None,
        }
    }

    fn send(&mut self, msg: to_worker::Msg) -> Result<(), ChannelError> {
        self.channel().send(&ToWorker { msg: Some(msg) })
    }

    /// Ends the worker and says how it ended: the run's stop if there was one, else a crash.
    fn ended(&mut self, when: &str) -> String {
        let _ = rustix::process::pidfd_send_signal(&*self.pidfd, rustix::process::Signal::KILL);
        let status = match self.process.as_mut() {
            Some(p) => p.child.wait(),
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        let how = match status {
            Ok(s) => match (s.signal(), s.code()) {
                (Some(sig), _) => format!("killed by {}", signal_name(sig)),
                (None, Some(code)) => format!("exited with status {code}"),
                _ => "ended".to_string(),
            },
            Err(e) => format!("lost ({e})"),
        };
        format!("worker crashed: {how} {when}")
    }

    /// A worker that broke the protocol is ended; the reason names what it did.
    fn violated(&mut self, what: &str) -> String {
        let _ = rustix::process::pidfd_send_signal(&*self.pidfd, rustix::process::Signal::KILL);
        if let Some(p) = self.process.as_mut() {
            let _ = p.child.wait();
        }
        format!("worker crashed: it broke the channel's protocol ({what}) and was ended")
    }

    /// The run's error for a worker that is gone: the run's stop when it was stopped (the
    /// watchdog kills a worker that does not stop), else the crash.
    fn gone(&mut self, why: String) -> JsError {
        // The kernel killed it at its memory cgroup's limit: the run's heap limit (the run may
        // have been stopped for it already, and went on growing).
        let memory = self.process.as_ref().and_then(|p| p.memory.as_ref());
        if memory.is_some_and(MemoryCgroup::oom_killed) {
            self.killed_at_memory_limit = true;
            self.terminate.note(TerminationReason::HeapLimit);
        }
        if let Some(reason) = self.terminate.reason() {
            return JsError::terminated(reason);
        }
        self.crashed = Some(why.clone());
        JsError::plain_message(why)
    }

    /// One request: serves what the worker sends until its `Done`.
    fn request(&mut self, msg: to_worker::Msg) -> Result<bool, JsError> {
        if let Some(why) = self.crashed.clone() {
            return Err(JsError::plain_message(why));
        }
        if let Err(e) = self.send(msg) {
            let why = self.ended(&format!("({e})"));
            return Err(self.gone(why));
        }
        loop {
            let msg = match self.channel().recv::<FromWorker>() {
                Ok(FromWorker { msg: Some(m) }) => m,
                Ok(FromWorker { msg: None }) => {
                    let why = self.violated("an empty message");
                    return Err(self.gone(why));
                }
                Err(ChannelError::Closed | ChannelError::Io(_)) => {
                    let why = self.ended("while running the script");
                    return Err(self.gone(why));
                }
                Err(e) => {
                    let why = self.violated(&e.to_string());
                    return Err(self.gone(why));
                }
            };
            let answer = match msg {
                from_worker::Msg::Send(bytes) => {
                    let reply = (self.on_send)(Sent::Bytes(&bytes));
                    Some(self.send_reply(reply))
                }
                // Dispatched now, as a `Send` is (side effects and records stay in order);
                // an answer given at once waits for the worker's `flush`.
                from_worker::Msg::SendLater(bytes) => {
                    if self.unflushed >= wire::MAX_LATER {
                        let why = self.violated("more sends without waiting than allowed");
                        return Err(self.gone(why));
                    }
                    self.unflushed += 1;
                    if let Some(reply) = (self.on_send)(Sent::Bytes(&bytes)) {
                        self.later.push(reply);
                    }
                    None
                }
                from_worker::Msg::Flush(_) => {
                    self.unflushed = 0;
                    Some(to_worker::Msg::Later(pb::Later {
                        replies: std::mem::take(&mut self.later),
                        stop: wire::reason_code(self.terminate.reason()) as u32,
                    }))
                }
                from_worker::Msg::Oversized(o) => {
                    let head = &o.head[..o.head.len().min(16)];
                    let reply = (self.on_send)(Sent::Oversized {
                        length: o.length,
                        head,
                    });
                    Some(self.send_reply(reply))
                }
                from_worker::Msg::Print(line) => {
                    (self.print)(&line);
                    None
                }
                from_worker::Msg::Resolve(r) => {
                    let request = ImportRequest {
                        specifier: &r.specifier,
                        referrer: &r.referrer,
                        json: r.json,
                    };
                    let result = match self.resolver.as_mut() {
                        Some(resolve) => match resolve(&request) {
                            Ok(m) => pb::resolved::Result::Module(pb::Source {
                                name: m.name,
                                source: m.source,
                                kind: wire::kind_code(m.kind),
                            }),
                            Err(e) => pb::resolved::Result::Error(e),
                        },
                        None => pb::resolved::Result::Error(format!(
                            "import \"{}\": this run has no module resolver",
                            r.specifier
                        )),
                    };
                    Some(to_worker::Msg::Resolved(pb::Resolved {
                        result: Some(result),
                    }))
                }
                from_worker::Msg::Done(_) if self.unflushed > 0 => {
                    let why = self.violated("Done before the answers of its sends");
                    return Err(self.gone(why));
                }
                from_worker::Msg::Done(done) => return Ok(self.finish(done)?),
                from_worker::Msg::Ready(_) => {
                    let why = self.violated("a second Ready");
                    return Err(self.gone(why));
                }
            };
            if let Some(answer) = answer {
                if let Err(e) = self.send(answer) {
                    let why = self.ended(&format!("({e})"));
                    return Err(self.gone(why));
                }
            }
        }
    }

    /// A `$send`'s answer, with the run's stop if it was stopped meanwhile (`sys.exit`).
    fn send_reply(&self, reply: Option<Vec<u8>>) -> to_worker::Msg {
        to_worker::Msg::SendReply(pb::SendReply {
            reply,
            stop: wire::reason_code(self.terminate.reason()) as u32,
        })
    }

    fn finish(&mut self, done: pb::Done) -> Result<bool, JsError> {
        self.background_work = done.background_work;
        self.unhandled
            .extend(done.unhandled.into_iter().map(wire::from_wire));
        if let Some(reason) = wire::reason_of(done.stopped) {
            // The worker stopped its script itself (its heap limit): the run's reason too.
            self.terminate.note(reason);
        }
        match done.result {
            Some(pb::done::Result::Value(v)) => Ok(v),
            Some(pb::done::Result::Error(e)) => Err(wire::from_wire(e)),
            None => {
                let why = self.violated("a Done without a result");
                Err(self.gone(why))
            }
        }
    }
}

impl Engine for RemoteWorker {
    fn load(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        let msg = to_worker::Msg::Load(pb::Source {
            name: name.to_string(),
            source: source.to_string(),
            kind: 0,
        });
        self.request(msg).map(|_| ())
    }

    fn set_resolver(&mut self, resolver: Resolver) {
        self.resolver = Some(resolver);
    }

    fn load_module(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        let msg = to_worker::Msg::LoadModule(pb::Source {
            name: name.to_string(),
            source: source.to_string(),
            kind: wire::kind_code(ModuleKind::Esm),
        });
        self.request(msg).map(|_| ())
    }

    fn poll_modules(&mut self) -> Result<bool, JsError> {
        self.request(to_worker::Msg::PollModules(pb::Empty {}))
    }

    fn send_vec(&mut self, msg: Vec<u8>) -> Result<(), JsError> {
        self.request(to_worker::Msg::Deliver(msg)).map(|_| ())
    }

    fn run_platform_tasks(&mut self) -> Result<bool, JsError> {
        self.request(to_worker::Msg::RunPlatformTasks(pb::Empty {}))
    }

    fn has_background_work(&self) -> bool {
        self.background_work && self.crashed.is_none()
    }

    fn take_unhandled_rejection(&mut self) -> Option<JsError> {
        self.unhandled.pop_front()
    }

    fn terminate_handle(&self) -> TerminateHandle {
        self.terminate.clone()
    }

    fn crashed(&self) -> Option<String> {
        self.crashed.clone()
    }

    fn abandoned(&self) -> Option<String> {
        if self.killed_at_memory_limit {
            return Some("the kernel killed its worker process at its memory limit".into());
        }
        self.killed.load(Ordering::SeqCst).then(|| {
            let why = self.gave_up.get().copied().unwrap_or(GaveUp::Grace);
            format!("it {}: its worker process was killed", why.described())
        })
    }
}

impl Drop for RemoteWorker {
    fn drop(&mut self) {
        // Parked for another run: the process lives on.
        let Some(mut process) = self.process.take() else {
            return;
        };
        // The run is over: the worker has nothing left to do. The kernel takes a while to tear
        // down a process with a 1 TiB reservation and namespaces of its own; it is reaped on a
        // thread of its own, so that the run's end does not wait for that.
        let _ = rustix::process::pidfd_send_signal(&*self.pidfd, rustix::process::Signal::KILL);
        let pidfd = self.pidfd.clone();
        let memory = process.memory.take();
        let reaped = std::thread::Builder::new()
            .name("v8box-reaper".into())
            .spawn(move || {
                let _ = rustix::process::waitid(
                    rustix::process::WaitId::PidFd(pidfd.as_fd()),
                    rustix::process::WaitIdOptions::EXITED,
                );
                // Empty now: its cgroup can go.
                drop(memory);
            });
        if reaped.is_err() {
            let _ = process.child.wait();
        }
    }
}

/// The worker's stderr (V8's own fatal messages) reaches the broker's, one escaped line at a
/// time and marked as the worker's: a worker cannot write terminal control bytes there.
fn forward_stderr(stderr: std::process::ChildStderr) {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\n');
            let _ = writeln!(
                std::io::stderr(),
                "v8box worker: {}",
                crate::audit::escaped(text)
            );
        }
    });
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGSYS => "SIGSYS".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGXFSZ => "SIGXFSZ".into(),
        libc::SIGXCPU => "SIGXCPU".into(),
        n => format!("signal {n}"),
    }
}

/// What the probe should attempt (debug builds: `V8BOX_JAIL_PROBE`, for the jail's tests).
fn probe_request() -> String {
    #[cfg(debug_assertions)]
    {
        std::env::var(super::probe::PROBE_ENV).unwrap_or_default()
    }
    #[cfg(not(debug_assertions))]
    {
        String::new()
    }
}
