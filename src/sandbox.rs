//! `Sandbox`: how a Rust application runs a script on its own thread and exchanges byte
//! messages with it, through the same policy and audit path as the CLI.
//!
//! ```
//! use std::time::Duration;
//! use v8box::policy::Permission;
//! use v8box::Sandbox;
//!
//! let sandbox = Sandbox::builder()
//!     .allow(Permission::Host, "greetings").unwrap()
//!     .channel("greetings")
//!     .capture_output(true)
//!     .timeout(Duration::from_secs(10))
//!     .build()
//!     .unwrap();
//! let mut run = sandbox.run_module(
//!     "echo.js",
//!     "sys.host.onMessage('greetings', async (data) => {
//!          await sys.host.send('greetings', 'hello, ' + new TextDecoder().decode(data));
//!          sys.exit(0);
//!      });",
//! );
//! run.sender("greetings").unwrap().send("world").unwrap();
//! let answer = run.receiver("greetings").unwrap().recv().unwrap();
//! assert_eq!(&answer[..], b"hello, world");
//! assert_eq!(run.wait(), v8box::Exit::Code(0));
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use crate::audit::AuditLog;
use crate::dispatch::{OutputFn, PendingRequests, Stream};
use crate::loader::Imports;
use crate::policy::{Permission, Policy, PolicyError};
use crate::runtime::{self, Exit, HostMessageIn, Main, RunControl, RunOptions};

/// What can go wrong setting up a sandbox or talking to a run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A grant or policy file was invalid.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// The audit log file could not be opened.
    #[error("audit log {path}: {source}")]
    Audit {
        /// The audit log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// OTLP export of the audit log could not be set up (`SandboxBuilder::audit_otlp`).
    #[error("audit OTLP export: {0}")]
    AuditOtlp(#[from] crate::audit::OtlpError),
    /// The audit log's sealing key lies where a grant lets a script reach it.
    #[error("audit key {key}: a script could reach the sealing key through {grant}; keep it outside every grant")]
    AuditKeyInReach {
        /// The secret key file.
        key: PathBuf,
        /// The grant that reaches it.
        grant: String,
    },
    /// A script file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The script file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why a message could not be sent to the script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// `try_send`: the channel's queue is full (the script reads slower than the host sends).
    #[error("the channel is full")]
    Full(Bytes),
    /// The run has ended.
    #[error("the script is no longer running")]
    Disconnected(Bytes),
    /// `send_timeout`: still full when the time ran out.
    #[error("the channel stayed full")]
    Timeout(Bytes),
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The script did not answer within the given time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The channel was not set up with `SandboxBuilder::channel`.
    #[error("the channel {0:?} was not set up with SandboxBuilder::channel")]
    UnknownChannel(String),
    /// The run has ended (or ended before answering).
    #[error("the script is no longer running")]
    Disconnected,
    /// The message was refused: the policy does not allow the channel (the message says how to
    /// allow it), or the audit log can record nothing more (docs/AUDIT.md).
    #[error("denied: {0}")]
    Denied(String),
}

/// Sends byte messages to the script on one channel (`sys.host.onMessage(channel, fn)`).
#[derive(Clone)]
pub struct HostSender {
    channel: String,
    tx: Sender<HostMessageIn>,
}

impl HostSender {
    fn message(&self, data: Bytes) -> HostMessageIn {
        HostMessageIn {
            channel: self.channel.clone(),
            data,
            request_id: 0,
        }
    }

    /// Sends, waiting while the queue is full (backpressure).
    pub fn send(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.tx
            .send(self.message(data.into()))
            .map_err(|e| SendError::Disconnected(e.0.data))
    }

    /// Sends without waiting: `SendError::Full` when the script is behind.
    pub fn try_send(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.tx
            .try_send(self.message(data.into()))
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(m) => SendError::Full(m.data),
                crossbeam_channel::TrySendError::Disconnected(m) => SendError::Disconnected(m.data),
            })
    }

    /// Sends, waiting at most `timeout` for room in the queue.
    pub fn send_timeout(&self, data: impl Into<Bytes>, timeout: Duration) -> Result<(), SendError> {
        self.tx
            .send_timeout(self.message(data.into()), timeout)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(m) => SendError::Timeout(m.data),
                crossbeam_channel::SendTimeoutError::Disconnected(m) => {
                    SendError::Disconnected(m.data)
                }
            })
    }

    /// The channel's name.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

/// Receives the byte messages the script sends on one channel (`sys.host.send(channel, ...)`).
pub type HostReceiver = Receiver<Bytes>;

/// Output lines kept when a sandbox captures output; past the limit, lines are counted, not kept.
#[derive(Default)]
struct Captured {
    stdout: Vec<String>,
    stderr: Vec<String>,
    bytes: usize,
    dropped: usize,
}

/// The most output (in bytes) a captured run keeps.
pub const CAPTURE_LIMIT_BYTES: usize = 16 << 20;

enum AuditTarget {
    None,
    Log(AuditLog),
}

/// Builds a [`Sandbox`].
pub struct SandboxBuilder {
    policy: Policy,
    audit: AuditTarget,
    channels: Vec<(String, usize)>,
    capture: bool,
    v8_flags: Vec<String>,
    worker_name: String,
    cwd: PathBuf,
    resolver: Option<HostResolver>,
    /// The collector URL of `audit_otlp`.
    otlp: Option<String>,
    isolation: crate::isolation::Isolation,
}

/// A host's own module resolver (see `SandboxBuilder::module_resolver`).
type HostResolver = Arc<dyn Fn(&str, &str) -> Option<(String, String)> + Send + Sync>;

/// Runs scripts, each on its own thread, under one policy and one audit log. The sandbox owns
/// those threads: dropping it stops every run it started, so keep it alive as long as its runs
/// should go on.
pub struct Sandbox {
    policy: Policy,
    audit: Option<AuditLog>,
    channels: Vec<(String, usize)>,
    capture: bool,
    worker_name: String,
    resolver: Option<HostResolver>,
    runs: AtomicU64,
    isolation: crate::isolation::Isolation,
    /// `SandboxBuilder::v8_flags`, for each run's worker process (`Isolation::Process`).
    v8_flags: Vec<String>,
    /// The runs started here that may still be going: dropping the sandbox stops them.
    live: Mutex<Vec<std::sync::Weak<Stopper>>>,
}

/// Stops a run, even one whose worker does not exist yet (it is stopped as it starts).
#[derive(Default)]
struct Stopper {
    state: Mutex<(Option<RunControl>, bool)>,
}

impl Stopper {
    fn started(&self, control: RunControl) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.1 {
            control.stop();
        }
        state.0 = Some(control);
    }

    fn stop(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1 = true;
        if let Some(c) = &state.0 {
            c.stop();
        }
    }
}

impl Drop for Sandbox {
    /// Stops every run of this sandbox that is still going (their handles then report
    /// `Exit::Terminated`).
    fn drop(&mut self) {
        for run in self
            .live
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            if let Some(stopper) = run.upgrade() {
                stopper.stop();
            }
        }
    }
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            policy: Policy::deny_all(),
            audit: AuditTarget::None,
            channels: Vec::new(),
            capture: false,
            v8_flags: Vec::new(),
            worker_name: "sandbox".into(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            resolver: None,
            otlp: None,
            isolation: crate::isolation::Isolation::Thread,
        }
    }
}

impl SandboxBuilder {
    /// Replaces the policy (default: deny everything).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads the policy from a TOML file (see docs/POLICY.md).
    pub fn policy_file(mut self, path: impl AsRef<Path>) -> Result<Self, SandboxError> {
        self.policy = Policy::from_file(path.as_ref())?;
        Ok(self)
    }

    /// Parses the policy from TOML text (relative paths against the current directory).
    pub fn policy_toml(mut self, text: &str) -> Result<Self, SandboxError> {
        self.policy = Policy::from_toml(text, "policy", &self.cwd)?;
        Ok(self)
    }

    /// Adds a grant, as the matching `--allow-*` flag would (`target` "*" grants everything;
    /// `Permission::Stdin` is granted whole, with "*", as `--allow-stdin` grants it).
    pub fn allow(mut self, permission: Permission, target: &str) -> Result<Self, SandboxError> {
        if permission == Permission::Stdin && target == "*" {
            self.policy.allow_stdin = true;
        } else if target == "*" {
            let flags = crate::policy::Flags {
                read: (permission == Permission::Read).then(Vec::new),
                write: (permission == Permission::Write).then(Vec::new),
                net: (permission == Permission::Net).then(Vec::new),
                env: (permission == Permission::Env).then(Vec::new),
                host: (permission == Permission::Host).then(Vec::new),
                module: (permission == Permission::Module).then(Vec::new),
            };
            self.policy.add_flags(&flags, &self.cwd)?;
        } else {
            self.policy.grant(permission, target, &self.cwd)?;
        }
        Ok(self)
    }

    /// Appends the audit log to a file (continuing its chain).
    pub fn audit_file(mut self, path: impl AsRef<Path>) -> Result<Self, SandboxError> {
        let path = path.as_ref();
        let log =
            AuditLog::open(path, &self.worker_name).map_err(|source| SandboxError::Audit {
                path: path.to_path_buf(),
                source,
            })?;
        self.audit = AuditTarget::Log(log);
        Ok(self)
    }

    /// Appends the audit log to a file and seals it with the secret key at `key` (made by
    /// `audit::keygen`; see `AuditLog::open_sealed` and docs/AUDIT.md, "Sealed logs"). Keep the
    /// key outside every grant the runs get (`audit::key_within_reach` says which would reach
    /// it).
    pub fn audit_file_sealed(
        mut self,
        path: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, SandboxError> {
        let path = path.as_ref();
        let log =
            AuditLog::open_sealed(path, &self.worker_name, key.as_ref()).map_err(|source| {
                SandboxError::Audit {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        self.audit = AuditTarget::Log(log);
        Ok(self)
    }

    /// Writes the audit log to any writer (one `write_all` per record).
    pub fn audit_writer(mut self, out: impl Write + Send + 'static) -> Self {
        self.audit = AuditTarget::Log(AuditLog::to_writer(out, &self.worker_name));
        self
    }

    /// Also sends every audit record as an OpenTelemetry log record over OTLP/HTTP to the
    /// collector at `url` (see `AuditLog::with_otlp`; docs/AUDIT.md, "Records to
    /// OpenTelemetry"). Needs an audit log (`audit_file`, `audit_file_sealed` or
    /// `audit_writer`, before or after this call); `build` says when there is none.
    pub fn audit_otlp(mut self, url: &str) -> Result<Self, SandboxError> {
        crate::audit::logs_endpoint(url)?;
        self.otlp = Some(url.to_string());
        Ok(self)
    }

    /// Stops a run after `limit` (its status: `Exit::Timeout`).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy.limits.timeout_ms = Some(limit.as_millis() as u64);
        self
    }

    /// Stops a run whose heap reaches `mb` MiB (its status: `Exit::HeapLimit`).
    pub fn max_heap_mb(mut self, mb: u64) -> Self {
        self.policy.limits.max_heap_mb = Some(mb);
        self
    }

    /// The largest message in either direction.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.policy.limits.max_message_bytes = Some(bytes);
        self
    }

    /// How many file and network calls may wait for an answer at once.
    pub fn max_calls_in_flight(mut self, calls: usize) -> Self {
        self.policy.limits.max_calls_in_flight = Some(calls);
        self
    }

    /// V8 flags (e.g. `--stack-size=500`). V8 has one set per process: with
    /// `Isolation::Thread` they are set in this process (for every isolate in it) when the
    /// sandbox is built; with `Isolation::Process` each run's worker process gets them before
    /// its isolate is made, and this process's are left alone. A worker process given flags
    /// hosts that one run only.
    pub fn v8_flags(mut self, flags: &[&str]) -> Self {
        self.v8_flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// Sets up a host channel with a queue of 64 messages each way.
    pub fn channel(self, name: &str) -> Self {
        self.channel_with_capacity(name, 64)
    }

    /// Sets up a host channel whose queues hold `capacity` messages each way. The policy must
    /// still allow the channel (`allow(Permission::Host, name)` or `[host] channels`).
    pub fn channel_with_capacity(mut self, name: &str, capacity: usize) -> Self {
        self.channels.push((name.to_string(), capacity.max(1)));
        self
    }

    /// Where each run's isolate lives: on the run's thread (`Isolation::Thread`, the default),
    /// or in a jailed worker process of its own (`Isolation::Process`: `Isolation::process()`
    /// re-executes this program, whose `main` must call `v8box::isolation::worker_entry()`
    /// first; or name the `v8box` binary). docs/SECURITY.md says what the jail stops.
    pub fn isolation(mut self, isolation: crate::isolation::Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Keep `$print`/`console` output for `RunHandle::stdout`/`stderr` instead of printing it.
    pub fn capture_output(mut self, capture: bool) -> Self {
        self.capture = capture;
        self
    }

    /// The name runs give in audit records (`worker`); runs are numbered after it.
    pub fn worker_name(mut self, name: &str) -> Self {
        self.worker_name = name.to_string();
        self
    }

    /// Lets modules beneath `folder` load without a read grant (the module root; a grant of
    /// `Permission::Module`, as `--module-root` makes). Without one, `run_file`'s root is the
    /// file's folder, and `run_module`'s imports need read grants.
    pub fn module_root(self, folder: impl AsRef<Path>) -> Result<Self, SandboxError> {
        let folder = folder.as_ref().to_string_lossy().into_owned();
        self.allow(Permission::Module, &folder)
    }

    /// Resolves imports with the host's own `resolve(specifier, referrer)` instead of reading
    /// files: it returns the imported module's `(name, source)`, or `None`. Every answer is
    /// recorded as `module.load` (rule `host resolver`) with the source's SHA-256.
    pub fn module_resolver(
        mut self,
        resolve: impl Fn(&str, &str) -> Option<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(resolve));
        self
    }

    /// Finishes the sandbox (applying any V8 flags set with `v8_flags`).
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        let in_this_process = matches!(self.isolation, crate::isolation::Isolation::Thread);
        if in_this_process {
            crate::worker::set_host_flags(&self.v8_flags);
        }
        if let AuditTarget::Log(log) = &self.audit {
            if let Some(key) = log.seal_key() {
                if let Some(grant) = crate::audit::key_within_reach(&self.policy, key) {
                    return Err(SandboxError::AuditKeyInReach {
                        key: key.to_path_buf(),
                        grant,
                    });
                }
            }
        }
        let audit = match (self.audit, &self.otlp) {
            (AuditTarget::None, Some(_)) => {
                return Err(crate::audit::OtlpError::Disabled.into());
            }
            (AuditTarget::None, None) => None,
            (AuditTarget::Log(l), None) => Some(l),
            (AuditTarget::Log(l), Some(url)) => Some(l.with_otlp(url)?),
        };
        Ok(Sandbox {
            policy: self.policy,
            audit,
            channels: self.channels,
            capture: self.capture,
            worker_name: self.worker_name,
            resolver: self.resolver,
            runs: AtomicU64::new(0),
            isolation: self.isolation,
            v8_flags: if in_this_process {
                Vec::new()
            } else {
                self.v8_flags
            },
            live: Mutex::new(Vec::new()),
        })
    }
}

/// A running script: wait for it, stop it, talk to it. Dropping it stops the script and
/// joins its thread.
pub struct RunHandle {
    thread: Option<JoinHandle<Exit>>,
    control: Arc<Stopper>,
    senders: HashMap<String, HostSender>,
    receivers: HashMap<String, HostReceiver>,
    requests: PendingRequests,
    next_request: AtomicU64,
    captured: Arc<Mutex<Captured>>,
    done: Receiver<()>,
    status: Option<Exit>,
}

impl Sandbox {
    /// A builder for a sandbox with a deny-all policy and no audit log.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Runs a file as an ES module (imports resolve against it). Unless the sandbox has a
    /// module root (`SandboxBuilder::module_root`, `[modules] root`), the file's folder is
    /// this run's: modules beneath it load without a read grant.
    pub fn run_file(&self, path: impl AsRef<Path>) -> Result<RunHandle, SandboxError> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut policy = self.policy.clone();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        policy.add_main_module_root(path, &cwd);
        let (name, source) = (path.to_string_lossy().into_owned(), source);
        let resolve = self.imports();
        Ok(self.start(policy, move || Main::Module {
            name,
            source,
            resolve,
        }))
    }

    /// Runs `source` as an ES module named `name`. Its imports load from the sandbox's module
    /// root or read grants (or come from its `module_resolver`).
    pub fn run_module(&self, name: &str, source: &str) -> RunHandle {
        let (name, source) = (name.to_string(), source.to_string());
        let resolve = self.imports();
        self.start(self.policy.clone(), move || Main::Module {
            name,
            source,
            resolve,
        })
    }

    /// Runs `source` as a classic script named `name`.
    pub fn run_script(&self, name: &str, source: &str) -> RunHandle {
        let (name, source) = (name.to_string(), source.to_string());
        self.start(self.policy.clone(), move || Main::Script { name, source })
    }

    /// Where a run's imports come from: the host's resolver, or files.
    fn imports(&self) -> Imports {
        match &self.resolver {
            Some(resolve) => {
                let resolve = resolve.clone();
                Imports::Host(Box::new(move |specifier, referrer| {
                    resolve(specifier, referrer)
                }))
            }
            None => Imports::Files,
        }
    }

    fn start(&self, policy: Policy, main: impl FnOnce() -> Main + Send + 'static) -> RunHandle {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let worker = format!("{}-{n}", self.worker_name);
        let capacity = self.channels.iter().map(|(_, c)| *c).max().unwrap_or(1);
        let (host_tx, host_rx) = bounded::<HostMessageIn>(capacity);
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        let mut host_out = HashMap::new();
        for (name, cap) in &self.channels {
            let (tx, rx) = bounded::<Bytes>(*cap);
            senders.insert(
                name.clone(),
                HostSender {
                    channel: name.clone(),
                    tx: host_tx.clone(),
                },
            );
            receivers.insert(name.clone(), rx);
            host_out.insert(name.clone(), tx);
        }
        drop(host_tx);
        let requests: PendingRequests = Arc::default();
        let captured = Arc::new(Mutex::new(Captured::default()));
        let control = Arc::new(Stopper::default());
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&control));
        }
        let (done_tx, done) = bounded::<()>(1);

        let mut options = RunOptions::new(policy);
        options.audit = self
            .audit
            .as_ref()
            .map_or_else(AuditLog::disabled, |a| a.for_worker(&worker));
        options.host_out = host_out;
        options.host_in = (!self.channels.is_empty()).then_some(host_rx);
        options.requests = Some(requests.clone());
        options.isolation = self.isolation.clone();
        options.v8_flags = self.v8_flags.clone();
        if self.capture {
            let sink = captured.clone();
            let output: OutputFn = Arc::new(move |stream, line| {
                let mut c = sink.lock().unwrap_or_else(|p| p.into_inner());
                if c.bytes + line.len() > CAPTURE_LIMIT_BYTES {
                    c.dropped += 1;
                    return;
                }
                c.bytes += line.len();
                match stream {
                    Stream::Stdout => c.stdout.push(line.to_string()),
                    Stream::Stderr => c.stderr.push(line.to_string()),
                }
            });
            options.output = Some(output);
        }
        let slot = control.clone();
        options.on_start = Some(Box::new(move |c: RunControl| slot.started(c)));
        let thread = std::thread::Builder::new()
            .name(format!("v8box-{worker}"))
            .spawn(move || {
                let exit = runtime::run(main(), options);
                let _ = done_tx.send(());
                exit
            })
            .expect("spawn a sandbox thread");
        RunHandle {
            thread: Some(thread),
            control,
            senders,
            receivers,
            requests,
            next_request: AtomicU64::new(1),
            captured,
            done,
            status: None,
        }
    }
}

impl RunHandle {
    /// Stops the script (its status becomes `Exit::Terminated` unless it already ended).
    pub fn terminate(&self) {
        self.control.stop();
    }

    /// Waits for the script to end.
    pub fn wait(&mut self) -> Exit {
        if let Some(status) = &self.status {
            return status.clone();
        }
        let exit = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(exit)) => exit,
            _ => Exit::Error(crate::JsError::plain_message("the sandbox thread panicked")),
        };
        self.status = Some(exit.clone());
        exit
    }

    /// Waits at most `timeout`; `None` if the script is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Exit> {
        if self.status.is_none() {
            match self.done.recv_timeout(timeout) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
        Some(self.wait())
    }

    /// Whether the script has ended.
    pub fn is_finished(&self) -> bool {
        self.status.is_some() || self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// The sender of a channel set up with `SandboxBuilder::channel`.
    pub fn sender(&self, channel: &str) -> Option<HostSender> {
        self.senders.get(channel).cloned()
    }

    /// The receiver of a channel set up with `SandboxBuilder::channel`.
    pub fn receiver(&self, channel: &str) -> Option<HostReceiver> {
        self.receivers.get(channel).cloned()
    }

    /// Sends `data` to the script's `sys.host.onMessage(channel, handler)` and waits for the
    /// handler's return value (bytes or string, or a promise of one).
    pub fn request(
        &self,
        channel: &str,
        data: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        let sender = self
            .senders
            .get(channel)
            .ok_or_else(|| RequestError::UnknownChannel(channel.to_string()))?;
        let id = self.next_request.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = bounded(1);
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let forget = || {
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        };
        let msg = HostMessageIn {
            channel: channel.to_string(),
            data: data.into(),
            request_id: id,
        };
        if sender.tx.send_timeout(msg, timeout).is_err() {
            forget();
            return Err(RequestError::Disconnected);
        }
        match rx.recv_timeout(timeout) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(denied)) => Err(RequestError::Denied(denied)),
            Err(RecvTimeoutError::Timeout) => {
                forget();
                Err(RequestError::Timeout(timeout))
            }
            Err(RecvTimeoutError::Disconnected) => Err(RequestError::Disconnected),
        }
    }

    /// Drops this handle's senders: a script that only waits for host messages then ends once
    /// no other `HostSender` clone is left.
    pub fn close_channels(&mut self) {
        self.senders.clear();
    }

    /// Captured stdout lines (`$print`, `console.log/info/debug`) so far.
    pub fn stdout(&self) -> Vec<String> {
        self.captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stdout
            .clone()
    }

    /// Captured stderr lines (`console.warn/error`) so far.
    pub fn stderr(&self) -> Vec<String> {
        self.captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stderr
            .clone()
    }

    /// Lines not kept because the capture limit was reached.
    pub fn dropped_lines(&self) -> usize {
        self.captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dropped
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // A run whose worker does not exist yet is stopped as it starts (see `Stopper`).
            self.terminate();
            let _ = self.wait();
        }
    }
}
