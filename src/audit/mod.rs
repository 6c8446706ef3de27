//! The audit log: one JSON object per line for every decision, chained by SHA-256 so that an
//! edited, deleted, inserted or reordered line is detected (see docs/AUDIT.md).
//!
//! Each record ends with `"hash"`: the SHA-256 of the record's text without that field; the
//! next record's `"prev"` repeats it. `verify.rs` checks both, `show.rs` prints a table.
//!
//! Records that announce a side effect (`intent`) and lifecycle records are written at once, with
//! a single `write(2)` on a file opened for appending, so they are in the kernel before the
//! operation they announce executes: a process killed at any moment leaves every executed side
//! effect in the log (only the last line may be cut). Other records (reads, denials, outcomes)
//! wait in memory, in order, until the next such write — at the latest `run.end`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

mod show;
mod verify;

pub use show::{show, ShowFilter};
pub use verify::{verify, Verdict};

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut text = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut text).expect("64 hex digits for 32 bytes");
    String::from_utf8_lossy(&text).into_owned()
}

/// The field every record ends with: `,"hash":"<64 hex digits>"}`.
const HASH_FIELD: &str = ",\"hash\":\"";
/// Length of the hash suffix: `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// Splits a sealed line into (the text its hash covers, the stored hash).
fn unseal(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    if line.len() < HASH_SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return None;
    }
    let cut = line.len() - HASH_SUFFIX_LEN;
    if !line[cut..].starts_with(HASH_FIELD.as_bytes()) {
        return None;
    }
    let hash = std::str::from_utf8(&line[cut + 9..line.len() - 2]).ok()?;
    let mut body = line[..cut].to_vec();
    body.push(b'}');
    Some((body, hash))
}

struct Writer {
    out: Box<dyn Write + Send>,
    seq: u64,
    prev: String,
    /// Records that need not be on disk yet (no side effect waits for them), in order.
    pending: Vec<u8>,
    ts: Timestamps,
}

/// Buffered records are written once this many bytes wait.
const PENDING_LIMIT: usize = 64 << 10;

impl Writer {
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush())
        {
            eprintln!("v8box: audit log write failed: {e}");
        }
        self.pending.clear();
    }

    /// Seals a record into the chain and appends it to `pending`; returns its `seq`. The line
    /// is written in place (no `Value` tree, no line buffer of its own), in the order
    /// `seq, ts, worker, kind, <fields>, prev`, then `hash` of the text before it. `text`
    /// holds the record's strings (see `Queue::text`); they are taken from its front.
    fn append(&mut self, r: Queued, text: &mut &[u8]) -> u64 {
        let seq = self.seq + 1;
        let start = self.pending.len();
        let line = &mut self.pending;
        line.extend_from_slice(b"{\"seq\":");
        json_value(line, &seq);
        line.extend_from_slice(b",\"ts\":\"");
        self.ts.write(line, r.ts);
        line.push(b'"');
        json_str_field(line, "worker", take_str(text, r.worker));
        json_str_field(line, "kind", r.kind);
        r.body.write_json(line, text);
        json_plain_field(line, "prev", self.prev.as_str());
        line.push(b'}');
        let mut hash = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(&line[start..]), &mut hash)
            .expect("64 hex digits for 32 bytes");
        line.pop(); // the closing brace: `hash` is the last field
        line.extend_from_slice(HASH_FIELD.as_bytes());
        line.extend_from_slice(&hash);
        line.extend_from_slice(b"\"}\n");
        self.seq = seq;
        self.prev.clear();
        self.prev
            .push_str(std::str::from_utf8(&hash).expect("hex digits are ASCII"));
        seq
    }

    /// Seals a batch of queued records, in order, with `text` holding their strings; answers
    /// the durable ones once they are written.
    fn write_batch(&mut self, batch: impl Iterator<Item = Queued>, text: &[u8]) {
        let mut rest = text;
        for mut r in batch {
            let written = r.written.take();
            let seq = match r.body {
                Body::Flush => {
                    take_str(&mut rest, r.worker);
                    self.seq
                }
                _ => self.append(r, &mut rest),
            };
            if let Some(ack) = written {
                self.flush_pending();
                let _ = ack.send(seq);
            } else if self.pending.len() >= PENDING_LIMIT {
                self.flush_pending();
            }
        }
    }
}

/// Formats record timestamps (RFC 3339, microseconds, UTC), reusing the date and time of the
/// last one while the second is the same: formatting the date was a tenth of the writer's time.
#[derive(Default)]
struct Timestamps {
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    prefix: Vec<u8>,
}

impl Timestamps {
    fn write(&mut self, out: &mut Vec<u8>, ts: std::time::SystemTime) {
        let since = ts.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if self.prefix.is_empty() || since.as_secs() != self.second {
            self.second = since.as_secs();
            self.prefix.clear();
            let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.second);
            let _ = write!(self.prefix, "{}", humantime::format_rfc3339_seconds(whole));
            self.prefix.pop(); // the `Z`
        }
        out.extend_from_slice(&self.prefix);
        let _ = write!(out, ".{:06}Z", since.subsec_micros());
    }
}

/// Appends `,"key":<value as JSON>`.
fn json_field(out: &mut Vec<u8>, key: &str, value: &(impl serde::Serialize + ?Sized)) {
    out.push(b',');
    json_string(out, key);
    out.push(b':');
    json_value(out, value);
}

/// Appends `,"key":"value"`.
fn json_str_field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(b',');
    json_string(out, key);
    out.push(b':');
    json_string(out, value);
}

/// Appends `,"key":"value"` for a value the writer itself spells (a decision, a hex hash):
/// nothing in it needs escaping. (Names that come through the public API are checked.)
fn json_plain_field(out: &mut Vec<u8>, key: &str, value: &str) {
    debug_assert!(!needs_escape(value), "{value:?}");
    out.push(b',');
    json_string(out, key);
    out.extend_from_slice(b":\"");
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// Appends a string as JSON. One that needs no escaping (field names, most paths and rules) is
/// copied as it is: escaping byte by byte was a tenth of the writer's time.
fn json_string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        json_value(out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether JSON needs `s` escaped: a control character, `"` or `\`. (Written without an early
/// exit, so that the compiler checks many bytes at a time.)
fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Appends a value as JSON.
fn json_value(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(&mut *out, value).expect("a value serializes");
}

/// The fields of a record, built into JSON on the writer thread.
enum Body {
    /// Write out everything buffered so far (no record of its own).
    Flush,
    Map(Map<String, Value>),
    /// A call's fields; its three strings wait in `Queue::text`, these long, in this order:
    /// resource, rule, sha256 (`None`: no such field).
    Call {
        op: &'static str,
        allowed: bool,
        resource: usize,
        rule: usize,
        sha256: Option<usize>,
        bytes_in: u64,
        outcome: &'static str,
        bytes_out: u64,
        dur_us: u64,
        reference: Option<u64>,
        /// More fields after the call's own (lifecycle records).
        extra: Map<String, Value>,
    },
}

/// The next `len` bytes of `text` (a string copied in by `Queue::push`).
fn take_str<'t>(text: &mut &'t [u8], len: usize) -> &'t str {
    let (s, rest) = text.split_at(len);
    *text = rest;
    // Copied from a `&str` by `Queue::push`, cut at the same lengths.
    std::str::from_utf8(s).expect("queued text is the UTF-8 it was copied from")
}

impl Body {
    /// Appends the fields as `,"key":value` pairs; a call's as listed in docs/AUDIT.md.
    fn write_json(self, out: &mut Vec<u8>, text: &mut &[u8]) {
        match self {
            Body::Flush => {}
            Body::Map(m) => {
                for (k, v) in &m {
                    json_field(out, k, v);
                }
            }
            Body::Call {
                op,
                allowed,
                resource,
                rule,
                sha256,
                bytes_in,
                outcome,
                bytes_out,
                dur_us,
                reference,
                extra,
            } => {
                json_str_field(out, "op", op);
                json_str_field(out, "resource", take_str(text, resource));
                json_plain_field(out, "decision", decision_word(allowed));
                json_str_field(out, "rule", take_str(text, rule));
                json_field(out, "bytes_in", &bytes_in);
                if let Some(len) = sha256 {
                    json_str_field(out, "sha256", take_str(text, len));
                }
                if let Some(r) = reference {
                    json_field(out, "ref", &r);
                }
                json_str_field(out, "outcome", outcome);
                json_field(out, "bytes_out", &bytes_out);
                json_field(out, "dur_us", &dur_us);
                for (k, v) in &extra {
                    json_field(out, k, v);
                }
            }
        }
    }
}

/// A record as it waits for the writer thread.
struct Queued {
    kind: &'static str,
    /// The worker's name: the first string of the record in `Queue::text`, this long.
    worker: usize,
    ts: std::time::SystemTime,
    body: Body,
    /// For a durable record: where to say its `seq` once it is written.
    written: Option<crossbeam_channel::Sender<u64>>,
}

/// Records waiting for the writer thread, in order.
///
/// A record's strings are copied into `text` rather than moved in as `String`s (or shared as
/// an `Arc`): then the isolate's thread allocates nothing per record once the buffers have
/// grown, the writer thread frees nothing the isolate's thread allocated (such frees cost glibc
/// a contended arena lock; with audit on they made `malloc` the top of the isolate thread's
/// profile), and no reference count bounces between the two threads' caches.
#[derive(Default)]
struct Queue {
    records: Vec<Queued>,
    text: Vec<u8>,
    closed: bool,
    /// A producer waits for room (the queue is at `QUEUE_LIMIT`).
    full: bool,
    /// The writer found nothing to do and sleeps until woken (see `POLL`).
    sleeping: bool,
}

impl Queue {
    /// Queues a record whose own strings (after the worker's name) are already in `text`.
    fn push_body(&mut self, head: Head, body: Body) {
        self.records.push(Queued {
            kind: head.kind,
            worker: head.worker.len(),
            ts: head.ts,
            written: head.written,
            body,
        });
    }

    /// Queues a record without strings of its own.
    fn push_plain(&mut self, head: Head, body: Body) {
        self.text.extend_from_slice(head.worker.as_bytes());
        self.push_body(head, body);
    }

    /// Queues a call record, copying its strings into `text`.
    fn push_call(&mut self, head: Head, info: &CallInfo, call: CallEnd, extra: Map<String, Value>) {
        self.text.extend_from_slice(head.worker.as_bytes());
        self.text.extend_from_slice(info.resource.as_bytes());
        self.text.extend_from_slice(info.rule.as_bytes());
        if let Some(h) = &info.sha256 {
            self.text.extend_from_slice(h.as_bytes());
        }
        self.push_body(
            head,
            Body::Call {
                op: info.op,
                allowed: info.allowed,
                resource: info.resource.len(),
                rule: info.rule.len(),
                sha256: info.sha256.as_ref().map(String::len),
                bytes_in: info.bytes_in,
                outcome: call.outcome,
                bytes_out: call.bytes_out,
                dur_us: call.dur_us,
                reference: call.reference,
                extra,
            },
        );
    }
}

/// What every queued record starts with.
struct Head<'w> {
    kind: &'static str,
    worker: &'w str,
    ts: std::time::SystemTime,
    written: Option<crossbeam_channel::Sender<u64>>,
}

/// How a call ended, as its record says.
struct CallEnd {
    outcome: &'static str,
    bytes_out: u64,
    dur_us: u64,
    reference: Option<u64>,
}

/// While records keep coming, the writer looks for them this often instead of being woken for
/// each batch. A wake-up sent from the isolate's thread makes the scheduler run the writer on
/// that thread's core, preempting the script (seen in `perf`: a script's first 50,000 audited
/// calls ran at half speed, preempted after every wake-up). Only the first record after the
/// writer has gone to sleep, a durable record, a full queue and the end wake it.
const POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Records queued at most: a script that makes calls faster than the writer can seal them
/// waits for it here, instead of growing the queue without bound (records are never dropped).
const QUEUE_LIMIT: usize = 16 * 1024;

/// The queue and the two things its users wait for.
#[derive(Default)]
struct Channel {
    queue: Mutex<Queue>,
    /// The writer waits for records.
    wake: std::sync::Condvar,
    /// A producer waits for room.
    room: std::sync::Condvar,
}

/// The writer thread's end: records go in, in order; durable ones come back acknowledged.
/// Queuing a record that is not durable takes a lock and, mostly, no system call (see `POLL`).
struct Sink {
    channel: Arc<Channel>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The wall clock and the monotonic clock read together when the log was opened: a
    /// record's `ts` is the wall-clock time then plus the monotonic time since, so that a call
    /// reads the clock once for both its duration and its timestamp, and the timestamps in a
    /// log never go backwards.
    epoch: (std::time::SystemTime, Instant),
}

/// Closes the queue when the writer thread ends, however it ends: should it fail, callers get
/// `0` at once instead of waiting for room or for an acknowledgement that cannot come.
struct CloseOnExit<'c>(&'c Channel);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.closed = true;
        q.records.clear(); // drops the acknowledgement senders: their waiters wake
        self.0.wake.notify_all();
        self.0.room.notify_all();
    }
}

impl Sink {
    /// Building, hashing and writing records happens on this thread, off the isolate's.
    fn start(writer: Writer) -> Sink {
        let channel: Arc<Channel> = Arc::default();
        let shared = channel.clone();
        let thread = std::thread::Builder::new()
            .name("v8box-audit".into())
            .spawn(move || {
                let _closes = CloseOnExit(&shared);
                let mut w = writer;
                let Channel { queue, wake, room } = &*shared;
                // Two buffers swap places, so the queue's memory is allocated and freed on
                // no thread once they have grown (a Vec freed on another thread than the one
                // that allocated it costs glibc a contended arena lock).
                let mut batch: Vec<Queued> = Vec::new();
                let mut text: Vec<u8> = Vec::new();
                let mut busy = false;
                loop {
                    let closed = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        while q.records.is_empty() && !q.closed {
                            if busy {
                                // Records came last time: look again soon, unasked.
                                q = wake
                                    .wait_timeout(q, POLL)
                                    .unwrap_or_else(|p| p.into_inner())
                                    .0;
                                busy = false;
                            } else {
                                q.sleeping = true;
                                q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                            }
                        }
                        q.sleeping = false;
                        busy = true;
                        std::mem::swap(&mut q.records, &mut batch);
                        std::mem::swap(&mut q.text, &mut text);
                        if std::mem::take(&mut q.full) {
                            room.notify_all();
                        }
                        q.closed
                    };
                    w.write_batch(batch.drain(..), &text);
                    text.clear();
                    if closed {
                        w.flush_pending();
                        return;
                    }
                }
            })
            .expect("spawn the audit writer");
        Sink {
            channel,
            thread: Some(thread),
            epoch: (std::time::SystemTime::now(), Instant::now()),
        }
    }

    /// Queues a record (`add` puts it in); false once the writer has stopped.
    fn push(&self, urgent: bool, add: impl FnOnce(&mut Queue)) -> bool {
        let Channel { queue, wake, room } = &*self.channel;
        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
        while q.records.len() >= QUEUE_LIMIT && !q.closed {
            q.full = true;
            wake.notify_one();
            q = room.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        if q.closed {
            return false;
        }
        add(&mut q);
        if urgent || q.sleeping {
            q.sleeping = false;
            wake.notify_one();
        }
        true
    }
}

impl Drop for Sink {
    /// Writes out what is left, then lets the writer thread end.
    fn drop(&mut self) {
        {
            let Channel { queue, wake, room } = &*self.channel;
            queue.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            wake.notify_one();
            room.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where audit records go; `AuditLog::disabled()` writes nothing and costs nothing.
/// Clones made with `for_worker` share one chain (one file, one `seq`).
pub struct AuditLog {
    sink: Option<Arc<Sink>>,
    worker: Arc<str>,
}

/// An in-memory audit sink (for `WorkerPool` results and tests): the lines written so far.
#[derive(Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<u8>>>);

impl MemorySink {
    /// The records written so far, one JSON line each.
    pub fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What is known about a call when it is decided.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The operation name (one of `ops::OP_NAMES`).
    pub op: &'static str,
    /// What the call touches: a path, URL, variable or channel name, or an argument.
    pub resource: String,
    /// Whether the policy allowed the call.
    pub allowed: bool,
    /// The rule that decided it (see `Decision::rule`).
    pub rule: String,
    /// Payload bytes the call carries (data to write, a request body, a message).
    pub bytes_in: u64,
    /// For writes: SHA-256 of the bytes written.
    pub sha256: Option<String>,
}

impl CallInfo {
    /// `allow` or `deny`, as records spell the decision.
    pub fn decision(&self) -> &'static str {
        decision_word(self.allowed)
    }
}

/// `allow` or `deny`.
fn decision_word(allowed: bool) -> &'static str {
    if allowed {
        "allow"
    } else {
        "deny"
    }
}

impl AuditLog {
    /// A log that records nothing.
    pub fn disabled() -> AuditLog {
        AuditLog {
            sink: None,
            worker: Arc::from(""),
        }
    }

    /// Appends to `path`, continuing the hash chain of the records already there.
    pub fn open(path: &Path, worker: &str) -> io::Result<AuditLog> {
        let (seq, prev) = match File::open(path) {
            Ok(f) => chain_end(f).map_err(|m| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {m}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, GENESIS.to_string()),
            Err(e) => return Err(e),
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            sink: Some(Arc::new(Sink::start(Writer {
                out: Box::new(file),
                seq,
                prev,
                pending: Vec::new(),
                ts: Timestamps::default(),
            }))),
            worker: Arc::from(worker),
        })
    }

    /// Records into any writer (a new chain). Each record is one `write_all` call.
    pub fn to_writer(out: impl Write + Send + 'static, worker: &str) -> AuditLog {
        AuditLog {
            sink: Some(Arc::new(Sink::start(Writer {
                out: Box::new(out),
                seq: 0,
                prev: GENESIS.to_string(),
                pending: Vec::new(),
                ts: Timestamps::default(),
            }))),
            worker: Arc::from(worker),
        }
    }

    /// A log that writes to the same chain, naming another worker in its records.
    pub fn for_worker(&self, worker: &str) -> AuditLog {
        AuditLog {
            sink: self.sink.clone(),
            worker: Arc::from(worker),
        }
    }

    /// An in-memory log and the sink to read its lines from.
    pub fn in_memory(worker: &str) -> (AuditLog, MemorySink) {
        let sink = MemorySink::default();
        (AuditLog::to_writer(sink.clone(), worker), sink)
    }

    /// Whether records are written (false for `disabled()`).
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one record (adding `seq`, `ts`, `worker`, `prev`); returns its `seq` (0 when
    /// disabled). A failing audit write is reported on stderr: it must not pass silently.
    pub fn record(&self, kind: &'static str, fields: Map<String, Value>) -> u64 {
        self.send(kind, true, Instant::now(), |q, head| {
            q.push_plain(head, Body::Map(fields))
        })
    }

    /// Writes out buffered records, and returns once they are written.
    pub fn flush(&self) {
        self.send("flush", true, Instant::now(), |q, head| {
            q.push_plain(head, Body::Flush)
        });
    }

    /// Hands a record to the writer thread. A `durable` one is written at once, together with
    /// everything before it (one `write(2)`), and this waits until it is; others wait in memory
    /// (at most `PENDING_LIMIT` bytes) so that calls without side effects pay neither a system
    /// call nor the JSON and hashing work on the caller's thread. Returns the record's `seq`
    /// for durable records, 0 otherwise. `at` is when it happened (see `Sink::epoch`).
    fn send(
        &self,
        kind: &'static str,
        durable: bool,
        at: Instant,
        add: impl FnOnce(&mut Queue, Head),
    ) -> u64 {
        let Some(sink) = &self.sink else { return 0 };
        let (ack, written) = if durable {
            let (tx, rx) = crossbeam_channel::bounded(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let head = Head {
            kind,
            worker: &self.worker,
            ts: sink.epoch.0 + at.saturating_duration_since(sink.epoch.1),
            written: ack,
        };
        if !sink.push(durable, |q| add(q, head)) {
            return 0;
        }
        written.and_then(|rx| rx.recv().ok()).unwrap_or(0)
    }

    /// A lifecycle record (`run.start`, `run.end`), with the same fields as a call record,
    /// plus `extra`'s. Written at once.
    pub fn lifecycle(
        &self,
        op: &'static str,
        resource: &str,
        outcome: &'static str,
        dur_us: u64,
        extra: Value,
    ) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let info = CallInfo {
            op,
            resource: resource.to_string(),
            allowed: true,
            rule: "lifecycle".into(),
            bytes_in: 0,
            sha256: None,
        };
        let end = CallEnd {
            outcome,
            bytes_out: 0,
            dur_us,
            reference: None,
        };
        let extra = match extra {
            Value::Object(extra) => extra,
            _ => Map::new(),
        };
        let kind = if op == "run.start" {
            "run_start"
        } else {
            "run_end"
        };
        self.call_record(kind, &info, end, extra, true, Instant::now())
    }

    /// A call decided and finished in one record (buffered). `started`: when the call began,
    /// for its `dur_us` (`None`: 0).
    pub fn call(
        &self,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
    ) -> u64 {
        self.finished("call", &info, outcome, bytes_out, started, None)
    }

    /// The write-ahead record of a side effect (`outcome: pending`): on disk before this returns,
    /// so before the side effect executes.
    pub fn intent(&self, info: &CallInfo) -> u64 {
        let end = CallEnd {
            outcome: "pending",
            bytes_out: 0,
            dur_us: 0,
            reference: None,
        };
        self.call_record("intent", info, end, Map::new(), true, Instant::now())
    }

    /// The outcome of a side effect announced by the intent record `intent_seq` (buffered).
    pub fn outcome(
        &self,
        intent_seq: u64,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
    ) -> u64 {
        let reference = Some(intent_seq);
        self.finished("outcome", &info, outcome, bytes_out, started, reference)
    }

    /// The record of a call that has ended (buffered); the clock is read once, for both its
    /// duration and its time.
    fn finished(
        &self,
        kind: &'static str,
        info: &CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
        reference: Option<u64>,
    ) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let now = Instant::now();
        let end = CallEnd {
            outcome,
            bytes_out,
            dur_us: micros_between(started, now),
            reference,
        };
        self.call_record(kind, info, end, Map::new(), false, now)
    }

    /// A call's record. `info` is copied into the queue and stays with the caller (see
    /// `Queue`).
    fn call_record(
        &self,
        kind: &'static str,
        info: &CallInfo,
        end: CallEnd,
        extra: Map<String, Value>,
        durable: bool,
        at: Instant,
    ) -> u64 {
        self.send(kind, durable, at, |q, head| {
            q.push_call(head, info, end, extra)
        })
    }
}

/// Whole microseconds from `started` to `now` (0 without a start).
fn micros_between(started: Option<Instant>, now: Instant) -> u64 {
    started.map_or(0, |s| now.saturating_duration_since(s).as_micros() as u64)
}

/// The `seq` and hash of the last record in an existing log, to continue its chain.
fn chain_end(file: File) -> Result<(u64, String), String> {
    let mut reader = io::BufReader::new(file);
    let mut last: Option<Vec<u8>> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            return Err(
                "the last record is cut short; run `v8box audit verify` and move the log away"
                    .into(),
            );
        }
        buf.pop();
        last = Some(buf.clone());
    }
    let Some(line) = last else {
        return Ok((0, GENESIS.to_string()));
    };
    let v: Value =
        serde_json::from_slice(&line).map_err(|e| format!("the last record is not JSON: {e}"))?;
    let seq = v["seq"].as_u64().ok_or("the last record has no seq")?;
    let hash = v["hash"].as_str().ok_or("the last record has no hash")?;
    Ok((seq, hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(op: &'static str, resource: &str, rule: &str) -> CallInfo {
        CallInfo {
            op,
            resource: resource.into(),
            allowed: true,
            rule: rule.into(),
            bytes_in: 0,
            sha256: None,
        }
    }

    #[test]
    fn records_of_every_kind_and_worker_keep_their_own_strings() {
        let (log, sink) = AuditLog::in_memory("first");
        let other = log.for_worker("the \"second\" wörker");
        log.call(info("env.get", "HOME", "--allow-env=HOME"), "ok", 5, None);
        log.flush();
        let mut write = info("fs.writeFile", "/tmp/a \"b\"\n", "[fs] write");
        write.sha256 = Some(sha256_hex(b"x"));
        let seq = other.intent(&write);
        other.outcome(seq, write, "ok", 0, Some(Instant::now()));
        log.record("note", Map::from_iter([("k".into(), Value::from("v"))]));
        log.flush();
        let recs: Vec<Value> = sink
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(&str, &str, &str, &str)> = recs
            .iter()
            .map(|r| {
                (
                    r["worker"].as_str().unwrap(),
                    r["kind"].as_str().unwrap(),
                    r["resource"].as_str().unwrap_or("-"),
                    r["rule"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        let second = "the \"second\" wörker";
        assert_eq!(
            seen,
            [
                ("first", "call", "HOME", "--allow-env=HOME"),
                (second, "intent", "/tmp/a \"b\"\n", "[fs] write"),
                (second, "outcome", "/tmp/a \"b\"\n", "[fs] write"),
                ("first", "note", "-", "-"),
            ]
        );
        assert_eq!(recs[1]["sha256"], sha256_hex(b"x"));
        assert_eq!(recs[2]["ref"], recs[1]["seq"]);
        assert_eq!(recs[3]["k"], "v");
        let text = sink.lines().join("\n") + "\n";
        assert_eq!(verify(text.as_bytes()), Verdict::Ok { records: 4 });
    }

    #[test]
    fn a_full_queue_makes_the_caller_wait_and_loses_nothing() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // An output that blocks until the gate opens: the writer stops taking records.
        struct Gated {
            gate: crossbeam_channel::Receiver<()>,
            open: bool,
            sink: MemorySink,
        }
        impl Write for Gated {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                if !self.open {
                    let _ = self.gate.recv();
                    self.open = true;
                }
                self.sink.write(b)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (open, gate) = crossbeam_channel::bounded(1);
        let sink = MemorySink::default();
        let out = Gated {
            gate,
            open: false,
            sink: sink.clone(),
        };
        let log = Arc::new(AuditLog::to_writer(out, "w"));
        let total = 3 * QUEUE_LIMIT;
        let pushed = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (log, pushed) = (log.clone(), pushed.clone());
            std::thread::spawn(move || {
                for _ in 0..total {
                    log.call(info("now", "", "always allowed"), "ok", 0, None);
                    pushed.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let channel = &log.sink.as_ref().unwrap().channel;
        // Until the caller waits for room (`full`), with the writer held up. A queue without
        // a bound would let the caller finish instead.
        loop {
            let done = pushed.load(Ordering::SeqCst) == total;
            let q = channel.queue.lock().unwrap();
            assert!(
                q.records.len() <= QUEUE_LIMIT,
                "the queue grew to {}",
                q.records.len()
            );
            if q.full {
                assert_eq!(q.records.len(), QUEUE_LIMIT);
                break;
            }
            assert!(!done, "the caller never waited for room");
            drop(q);
            std::thread::yield_now();
        }
        open.send(()).unwrap();
        producer.join().unwrap();
        log.flush();
        assert_eq!(sink.lines().len(), total);
    }

    #[test]
    fn a_failed_writer_thread_does_not_hang_its_callers() {
        struct Fails;
        impl Write for Fails {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("injected fault: the audit output failed");
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let log = AuditLog::to_writer(Fails, "w");
        // More than the queue holds: without the writer, a caller would wait for room forever.
        for _ in 0..QUEUE_LIMIT + 10 {
            log.call(info("now", "", "always allowed"), "ok", 0, None);
        }
        log.flush();
        assert_eq!(log.intent(&info("exit", "0", "always allowed")), 0);
    }

    #[test]
    fn a_flush_inside_a_batch_leaves_the_next_records_strings_in_place() {
        // Another thread's records can follow a flush in the same batch.
        let sink = MemorySink::default();
        let mut w = Writer {
            out: Box::new(sink.clone()),
            seq: 0,
            prev: GENESIS.to_string(),
            pending: Vec::new(),
            ts: Timestamps::default(),
        };
        let mut q = Queue::default();
        let head = |worker| Head {
            kind: "call",
            worker,
            ts: std::time::SystemTime::now(),
            written: None,
        };
        let end = || CallEnd {
            outcome: "ok",
            bytes_out: 0,
            dur_us: 0,
            reference: None,
        };
        q.push_call(
            head("a"),
            &info("now", "", "always allowed"),
            end(),
            Map::new(),
        );
        q.push_plain(head("flusher"), Body::Flush);
        q.push_call(
            head("b"),
            &info("env.get", "HOME", "--allow-env=HOME"),
            end(),
            Map::new(),
        );
        w.write_batch(q.records.drain(..), &q.text);
        w.flush_pending();
        let recs: Vec<Value> = sink
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[1]["worker"].as_str(), recs[1]["resource"].as_str()),
            (Some("b"), Some("HOME"))
        );
    }
}
