//! The audit writer: a thread that turns queued records into sealed, chained JSON lines and
//! writes them, so that the isolate's thread only copies a record's fields into a queue.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::seal::{SealKey, CHECKPOINT, SEAL_EVERY, SIG_FIELD};
use super::{decision_word, CallInfo, Parts, HASH_FIELD};

/// `,"name":` for one of the record's own field names, punctuation included, so that it is
/// copied in one piece. The names are literals in this file and need no escaping (checking
/// them for every record was a sixth of the writer's time).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

pub(super) struct Writer {
    pub(super) out: Box<dyn Write + Send>,
    pub(super) seq: u64,
    pub(super) prev: String,
    /// Records that need not be on disk yet (no side effect waits for them), in order.
    pub(super) pending: Vec<u8>,
    pub(super) ts: Timestamps,
    /// Why the log stopped, once a write failed (see `AuditLog::failure`).
    pub(super) failure: Arc<OnceLock<String>>,
    /// For a sealed log: its key, and how far the seal has come.
    pub(super) seal: Option<Sealer>,
    /// Where sealed lines also go as OpenTelemetry log records (`AuditLog::with_otlp`).
    pub(super) otlp: Option<super::otlp::Feed>,
}

/// The sealing state of a sealed log (docs/AUDIT.md, "Sealed logs").
pub(super) struct Sealer {
    pub(super) key: SealKey,
    /// The `seq` of the last checkpoint (0: none yet).
    pub(super) last: u64,
}

/// Buffered records are written once this many bytes wait.
const PENDING_LIMIT: usize = 64 << 10;

impl Writer {
    /// Writes the pending records. After a failed write nothing more is written: the log
    /// ends at its last whole record (or a line cut short by the failure, which `verify`
    /// reports), never with a gap in its chain, and durable records are no longer
    /// acknowledged, so that no side effect runs without its intent on disk.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.failure.get().is_none() {
            if let Err(e) = self
                .out
                .write_all(&self.pending)
                .and_then(|()| self.out.flush())
            {
                let why = format!("audit log write failed: {e}");
                eprintln!("v8box: {why}; no more records are written, and calls are refused");
                let _ = self.failure.set(why);
            }
        }
        self.pending.clear();
    }

    /// Seals a record into the chain and appends it to `pending`; returns its `seq`. The line
    /// is written in place (no `Value` tree, no line buffer of its own), in the order
    /// `seq, ts, worker, kind, <fields>, prev`, then `hash` of the text before it. `text`
    /// holds the record's strings (see `Queue::text`); they are taken from its front.
    fn append(&mut self, r: Queued, text: &mut &str) -> u64 {
        let seq = self.seq + 1;
        let start = self.pending.len();
        let line = &mut self.pending;
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        line.extend_from_slice(b",\"ts\":\"");
        self.ts.write(line, r.ts);
        line.push(b'"');
        json_str_field(line, key!("worker"), take_str(text, r.worker));
        json_str_field(line, key!("kind"), r.kind);
        r.body.write_json(line, text);
        json_plain_field(line, key!("prev"), self.prev.as_str());
        line.push(b'}');
        let mut hash = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(&line[start..]), &mut hash)
            .expect("64 hex digits for 32 bytes");
        line.pop(); // the closing brace: `hash` is the last field
        line.extend_from_slice(HASH_FIELD.as_bytes());
        line.extend_from_slice(&hash);
        line.extend_from_slice(b"\"}\n");
        if let Some(otlp) = &mut self.otlp {
            otlp.offer(&line[start..]);
        }
        self.seq = seq;
        self.prev.clear();
        self.prev
            .push_str(std::str::from_utf8(&hash).expect("hex digits are ASCII"));
        seq
    }

    /// Writes a checkpoint if the log is sealed and has records since the last one: the
    /// record, signed with the epoch's key, is written at once (with everything before it),
    /// then the key evolves. A key that cannot evolve stops the log, as a failed write does:
    /// a later checkpoint would reuse the epoch and not verify.
    fn checkpoint(&mut self) {
        let Some(seal) = self.seal.as_mut() else {
            return;
        };
        if self.seq == seal.last || self.failure.get().is_some() {
            return;
        }
        let seq = self.seq + 1;
        let (epoch, key, cert) = seal.key.public_parts();
        let start = self.pending.len();
        let line = &mut self.pending;
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        line.extend_from_slice(b",\"ts\":\"");
        self.ts.write(line, std::time::SystemTime::now());
        line.push(b'"');
        json_plain_field(line, key!("worker"), "audit");
        json_plain_field(line, key!("kind"), CHECKPOINT);
        json_plain_field(line, key!("op"), "audit.seal");
        json_u64_field(line, key!("epoch"), epoch);
        json_u64_field(line, key!("first"), seal.last + 1);
        json_u64_field(line, key!("last"), seq - 1);
        json_plain_field(line, key!("key"), &key);
        json_plain_field(line, key!("cert"), &cert);
        json_plain_field(line, key!("prev"), self.prev.as_str());
        line.push(b'}');
        let sig = seal.key.sign(&line[start..]);
        line.pop();
        line.extend_from_slice(SIG_FIELD.as_bytes());
        line.extend_from_slice(sig.as_bytes());
        line.extend_from_slice(b"\"}");
        let mut hash = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(&line[start..]), &mut hash)
            .expect("64 hex digits for 32 bytes");
        line.pop();
        line.extend_from_slice(HASH_FIELD.as_bytes());
        line.extend_from_slice(&hash);
        line.extend_from_slice(b"\"}\n");
        if let Some(otlp) = &mut self.otlp {
            otlp.offer(&line[start..]);
        }
        self.seq = seq;
        self.prev.clear();
        self.prev
            .push_str(std::str::from_utf8(&hash).expect("hex digits are ASCII"));
        seal.last = seq;
        self.flush_pending();
        if self.failure.get().is_some() {
            return;
        }
        let Some(seal) = self.seal.as_mut() else {
            return;
        };
        if let Err(e) = seal.key.evolve() {
            let why =
                format!("the audit key could not evolve after the checkpoint at seq {seq}: {e}");
            eprintln!("v8box: {why}; no more records are written, and calls are refused");
            let _ = self.failure.set(why);
        }
    }

    /// Whether a checkpoint is due after a record of `kind`: at every run's end, and every
    /// `SEAL_EVERY` records.
    fn seal_due(&self, kind: &str) -> bool {
        self.seal
            .as_ref()
            .is_some_and(|s| kind == "run_end" || self.seq - s.last >= SEAL_EVERY)
    }

    /// Seals a batch of queued records, in order, with `text` holding their strings; answers
    /// the durable ones once they are written.
    fn write_batch(&mut self, batch: impl Iterator<Item = Queued>, text: &str) {
        let mut rest = text;
        for mut r in batch {
            let written = r.written.take();
            let kind = r.kind;
            let seq = match r.body {
                Body::Flush => {
                    take_str(&mut rest, r.worker);
                    self.seq
                }
                Body::Otlp(feed) => {
                    take_str(&mut rest, r.worker);
                    if let Some(mut old) = self.otlp.replace(*feed) {
                        old.close();
                    }
                    self.seq
                }
                _ => self.append(r, &mut rest),
            };
            if self.seal_due(kind) {
                self.checkpoint();
            }
            if let Some(ack) = written {
                self.flush_pending();
                let on_disk = self.failure.get().is_none();
                let _ = ack.send(if on_disk { seq } else { 0 });
            } else if self.pending.len() >= PENDING_LIMIT {
                self.flush_pending();
            }
        }
        if let Some(otlp) = &mut self.otlp {
            otlp.hand_over();
        }
    }
}

/// Formats record timestamps (RFC 3339, microseconds, UTC), reusing the date and time of the
/// last one while the second is the same: formatting the date was a tenth of the writer's time.
/// A record's time is taken when it happens, before it is queued, so a record queued by
/// another thread can carry an earlier time than the one before it; such a time is written as
/// the one before it, so that the times in a log never go backwards.
#[derive(Default)]
pub(super) struct Timestamps {
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    prefix: Vec<u8>,
    /// The time of the last record, since the epoch.
    last: std::time::Duration,
}

impl Timestamps {
    fn write(&mut self, out: &mut Vec<u8>, ts: std::time::SystemTime) {
        let since = ts.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let since = since.max(self.last);
        self.last = since;
        if self.prefix.is_empty() || since.as_secs() != self.second {
            self.second = since.as_secs();
            self.prefix.clear();
            let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.second);
            let _ = write!(self.prefix, "{}", humantime::format_rfc3339_seconds(whole));
            self.prefix.pop(); // the `Z`
        }
        out.extend_from_slice(&self.prefix);
        // `.uuuuuuZ`, six digits with leading zeros (`write!` with `{:06}` was 3 % of the writer).
        let micros = since.subsec_micros();
        out.push(b'.');
        for div in [100_000, 10_000, 1_000, 100, 10, 1] {
            out.push(b'0' + ((micros / div) % 10) as u8);
        }
        out.push(b'Z');
    }
}

/// Appends `,"key":<value as JSON>`.
fn json_field(out: &mut Vec<u8>, key: &str, value: &(impl serde::Serialize + ?Sized)) {
    out.push(b',');
    json_string(out, key);
    out.push(b':');
    json_value(out, value);
}

/// Appends a `key!`: `,"name":`.
fn fixed_key(out: &mut Vec<u8>, key: &'static str) {
    debug_assert!(key.starts_with(",\"") && key.ends_with("\":"), "{key:?}");
    out.extend_from_slice(key.as_bytes());
}

/// Appends `,"key":"value"` (`key` a `key!`).
fn json_str_field(out: &mut Vec<u8>, key: &'static str, value: &str) {
    fixed_key(out, key);
    json_string(out, value);
}

/// Appends `,"key":number` (`key` a `key!`).
fn json_u64_field(out: &mut Vec<u8>, key: &'static str, value: u64) {
    fixed_key(out, key);
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends `,"key":"value"` for a value the writer itself spells (a decision, a hex hash):
/// nothing in it needs escaping. (Names that come through the public API are checked.)
fn json_plain_field(out: &mut Vec<u8>, key: &'static str, value: &str) {
    debug_assert!(!needs_escape(value), "{value:?}");
    fixed_key(out, key);
    out.push(b'"');
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
pub(super) enum Body {
    /// Write out everything buffered so far (no record of its own).
    Flush,
    /// From here on, also send every sealed line to OpenTelemetry (no record of its own).
    Otlp(Box<super::otlp::Feed>),
    Map(Map<String, Value>),
    /// A call's fields; its strings wait in `Queue::text`, these long, in this order:
    /// resource, its parts, resolved, rule, sha256 (`None`: no such field).
    Call {
        op: &'static str,
        allowed: bool,
        resource: usize,
        parts: PartLens,
        resolved: Option<usize>,
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

/// A record's `Parts`, as the lengths of their strings in `Queue::text`.
pub(super) enum PartLens {
    None,
    Rename {
        from: usize,
        to: usize,
    },
    Net {
        scheme: usize,
        host: usize,
        port: Option<u16>,
    },
}

/// The next `len` bytes of `text` (a string copied in by `Queue::push`).
/// (`text` is a `String`, not bytes: cutting it needs only a check that the cut falls between
/// characters, where bytes needed their UTF-8 checked again: a tenth of the writer's
/// instructions besides SHA-256.)
fn take_str<'t>(text: &mut &'t str, len: usize) -> &'t str {
    let (s, rest) = text.split_at(len);
    *text = rest;
    s
}

impl Body {
    /// Appends the fields as `,"key":value` pairs; a call's as listed in docs/AUDIT.md.
    fn write_json(self, out: &mut Vec<u8>, text: &mut &str) {
        match self {
            Body::Flush | Body::Otlp(_) => {}
            Body::Map(m) => {
                for (k, v) in &m {
                    json_field(out, k, v);
                }
            }
            Body::Call {
                op,
                allowed,
                resource,
                parts,
                resolved,
                rule,
                sha256,
                bytes_in,
                outcome,
                bytes_out,
                dur_us,
                reference,
                extra,
            } => {
                json_str_field(out, key!("op"), op);
                json_str_field(out, key!("resource"), take_str(text, resource));
                match parts {
                    PartLens::None => {}
                    PartLens::Rename { from, to } => {
                        json_str_field(out, key!("from"), take_str(text, from));
                        json_str_field(out, key!("to"), take_str(text, to));
                    }
                    PartLens::Net { scheme, host, port } => {
                        json_str_field(out, key!("scheme"), take_str(text, scheme));
                        json_str_field(out, key!("host"), take_str(text, host));
                        if let Some(port) = port {
                            json_u64_field(out, key!("port"), port.into());
                        }
                    }
                }
                if let Some(len) = resolved {
                    json_str_field(out, key!("resolved"), take_str(text, len));
                }
                json_plain_field(out, key!("decision"), decision_word(allowed));
                json_str_field(out, key!("rule"), take_str(text, rule));
                json_u64_field(out, key!("bytes_in"), bytes_in);
                if let Some(len) = sha256 {
                    json_str_field(out, key!("sha256"), take_str(text, len));
                }
                if let Some(r) = reference {
                    json_u64_field(out, key!("ref"), r);
                }
                json_str_field(out, key!("outcome"), outcome);
                json_u64_field(out, key!("bytes_out"), bytes_out);
                json_u64_field(out, key!("dur_us"), dur_us);
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
pub(super) struct Queue {
    records: Vec<Queued>,
    text: String,
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
    pub(super) fn push_plain(&mut self, head: Head, body: Body) {
        self.text.push_str(head.worker);
        self.push_body(head, body);
    }

    /// Queues a call record, copying its strings into `text`.
    pub(super) fn push_call(
        &mut self,
        head: Head,
        info: &CallInfo,
        call: CallEnd,
        extra: Map<String, Value>,
    ) {
        self.text.push_str(head.worker);
        let resource_start = self.text.len();
        push_resource(&mut self.text, &info.resource);
        let resource = self.text.len() - resource_start;
        let mut part = |s: &str| {
            let start = self.text.len();
            push_resource(&mut self.text, s);
            self.text.len() - start
        };
        let parts = match &info.parts {
            Parts::None => PartLens::None,
            Parts::Rename { from, to } => PartLens::Rename {
                from: part(from),
                to: part(to),
            },
            Parts::Net { scheme, host, port } => PartLens::Net {
                scheme: part(scheme),
                host: part(host),
                port: *port,
            },
        };
        let resolved = info.resolved.as_ref().map(|r| {
            let start = self.text.len();
            push_resource(&mut self.text, r);
            self.text.len() - start
        });
        self.text.push_str(&info.rule);
        if let Some(h) = &info.sha256 {
            self.text.push_str(h);
        }
        self.push_body(
            head,
            Body::Call {
                op: info.op,
                allowed: info.allowed,
                resource,
                parts,
                resolved,
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

/// The longest resource a record keeps whole (and the longest of each of its parts: a rename's
/// `from` and `to`, a fetch's `scheme` and `host`, each cut on its own). A script can name a resource as long as a
/// message allows (64 MiB by default), and a denied call is recorded too: without a bound, each
/// such call would add that much to the log.
const RECORDED_RESOURCE_BYTES: usize = 4096;

/// Appends `resource` as a record keeps it: whole, or its first `RECORDED_RESOURCE_BYTES`
/// (cut between characters) followed by `…` and its full length, so that a cut one cannot be
/// taken for a resource of its own.
fn push_resource(text: &mut String, resource: &str) {
    if resource.len() <= RECORDED_RESOURCE_BYTES {
        text.push_str(resource);
        return;
    }
    let mut cut = RECORDED_RESOURCE_BYTES;
    while !resource.is_char_boundary(cut) {
        cut -= 1;
    }
    text.push_str(&resource[..cut]);
    let _ = write!(text, "{CUT_MARK}{}{CUT_END}", resource.len());
}

/// What follows a cut resource: `… (N bytes in all)`.
const CUT_MARK: &str = "… (";
const CUT_END: &str = " bytes in all)";

/// Whether a record's resource was cut: its first 4,096 bytes, then `… (N bytes in all)`.
pub fn is_cut_resource(resource: &str) -> bool {
    resource.len() > RECORDED_RESOURCE_BYTES
        && resource.ends_with(CUT_END)
        && resource.contains(CUT_MARK)
}

/// What every queued record starts with.
pub(super) struct Head<'w> {
    pub(super) kind: &'static str,
    pub(super) worker: &'w str,
    pub(super) ts: std::time::SystemTime,
    pub(super) written: Option<crossbeam_channel::Sender<u64>>,
}

/// How a call ended, as its record says.
pub(super) struct CallEnd {
    pub(super) outcome: &'static str,
    pub(super) bytes_out: u64,
    pub(super) dur_us: u64,
    pub(super) reference: Option<u64>,
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
pub(super) struct Sink {
    channel: Arc<Channel>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The wall clock and the monotonic clock read together when the log was opened: a
    /// record's `ts` is the wall-clock time then plus the monotonic time since, so that a call
    /// reads the clock once for both its duration and its timestamp, and the timestamps in a
    /// log never go backwards.
    pub(super) epoch: (std::time::SystemTime, Instant),
    /// Why the log stopped, if it did (a failed write, or the writer thread failed).
    pub(super) failure: Arc<OnceLock<String>>,
}

/// Closes the queue when the writer thread ends, however it ends: should it fail, callers get
/// `0` at once instead of waiting for room or for an acknowledgement that cannot come.
struct CloseOnExit<'c>(&'c Channel, &'c OnceLock<String>);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self
                .1
                .set("the audit writer failed (panicked): no more records are written".into());
        }
        let mut q = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.closed = true;
        q.records.clear(); // drops the acknowledgement senders: their waiters wake
        self.0.wake.notify_all();
        self.0.room.notify_all();
    }
}

impl Sink {
    /// Building, hashing and writing records happens on this thread, off the isolate's.
    pub(super) fn start(writer: Writer) -> Sink {
        let channel: Arc<Channel> = Arc::default();
        let shared = channel.clone();
        let failure = writer.failure.clone();
        let failed = failure.clone();
        let thread = std::thread::Builder::new()
            .name("v8box-audit".into())
            .spawn(move || {
                let _closes = CloseOnExit(&shared, &failed);
                let mut w = writer;
                let Channel { queue, wake, room } = &*shared;
                // Two buffers swap places, so the queue's memory is allocated and freed on
                // no thread once they have grown (a Vec freed on another thread than the one
                // that allocated it costs glibc a contended arena lock).
                let mut batch: Vec<Queued> = Vec::new();
                let mut text = String::new();
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
                        w.checkpoint();
                        w.flush_pending();
                        // After the file has everything: a collector gets its grace to take
                        // the rest (see `otlp::Feed::close`).
                        if let Some(mut otlp) = w.otlp.take() {
                            otlp.close();
                        }
                        return;
                    }
                }
            })
            .expect("spawn the audit writer");
        Sink {
            channel,
            thread: Some(thread),
            epoch: (std::time::SystemTime::now(), Instant::now()),
            failure,
        }
    }

    /// Queues a record (`add` puts it in); false once the writer has stopped.
    pub(super) fn push(&self, urgent: bool, add: impl FnOnce(&mut Queue)) -> bool {
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

#[cfg(test)]
mod tests {
    use std::io;

    use super::super::tests::{info, parsed};
    use super::super::{AuditLog, MemorySink, GENESIS};
    use super::*;

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
    fn after_a_failed_write_nothing_more_is_written_or_acknowledged() {
        /// Takes `room` bytes, then fails every write, as a disk that fills up does.
        struct FillsUp {
            kept: MemorySink,
            room: usize,
        }
        impl Write for FillsUp {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if buf.len() > self.room {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                self.room -= buf.len();
                self.kept.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let kept = MemorySink::default();
        let log = AuditLog::to_writer(
            FillsUp {
                kept: kept.clone(),
                room: 1000,
            },
            "w",
        );
        let first = log.intent(&info("fs.writeFile", "/a", "[fs] write"));
        assert_eq!(first, 1);
        assert_eq!(log.failure(), None);
        log.call(info("env.get", "HOME", "--allow-env"), "ok", 4, None);
        // Too big for the room left: the write fails, and the intent is not acknowledged.
        let big = "b".repeat(2000);
        assert_eq!(log.intent(&info("fs.writeFile", &big, "[fs] write")), 0);
        let why = log.failure().expect("the failure is kept");
        assert!(why.contains("disk full"), "{why}");
        // From then on nothing is written, even what would fit.
        assert_eq!(log.intent(&info("fs.writeFile", "/c", "[fs] write")), 0);
        log.flush();
        let lines = kept.lines();
        assert_eq!(lines.len(), 1, "only the record written before the failure");
        assert_eq!(parsed(&lines)[0]["resource"], "/a");
    }

    #[test]
    fn timestamps_never_go_backwards() {
        let mut ts = Timestamps::default();
        let now = std::time::SystemTime::now();
        let (mut later, mut earlier) = (Vec::new(), Vec::new());
        ts.write(&mut later, now);
        // Taken earlier on another thread, queued after.
        ts.write(&mut earlier, now - std::time::Duration::from_micros(250));
        assert_eq!(earlier, later);
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
            failure: Arc::default(),
            seal: None,
            otlp: None,
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
        let recs = parsed(&sink.lines());
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[1]["worker"].as_str(), recs[1]["resource"].as_str()),
            (Some("b"), Some("HOME"))
        );
    }
}
