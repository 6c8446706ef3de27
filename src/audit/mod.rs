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

/// Seals a record: appends its hash (of the text without it) as the last field.
fn seal(mut body: Vec<u8>) -> (Vec<u8>, String) {
    let hash = sha256_hex(&body);
    body.pop(); // the closing brace
    body.extend_from_slice(HASH_FIELD.as_bytes());
    body.extend_from_slice(hash.as_bytes());
    body.extend_from_slice(b"\"}");
    (body, hash)
}

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
}

/// Buffered records are written once this many bytes wait.
const PENDING_LIMIT: usize = 64 << 10;

impl Writer {
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        if let Err(e) = self.out.write_all(&pending).and_then(|()| self.out.flush()) {
            eprintln!("v8box: audit log write failed: {e}");
        }
    }

    /// Seals a record into the chain; returns its `seq`. The JSON is written straight into the
    /// line (no `Value` tree: building one was most of the writer's time per record), in the
    /// order `seq, ts, worker, kind, <fields>, prev`, then `hash`.
    fn append(&mut self, r: Record) -> u64 {
        let seq = self.seq + 1;
        let mut line = Vec::with_capacity(384);
        let _ = write!(
            line,
            "{{\"seq\":{seq},\"ts\":\"{}\"",
            humantime::format_rfc3339_micros(r.ts)
        );
        json_field(&mut line, "worker", &*r.worker);
        json_field(&mut line, "kind", r.kind);
        r.fields.write_json(&mut line);
        json_field(&mut line, "prev", self.prev.as_str());
        line.push(b'}');
        let (mut line, hash) = seal(line);
        line.push(b'\n');
        self.pending.extend_from_slice(&line);
        self.seq = seq;
        self.prev = hash;
        seq
    }
}

/// Appends `,"key":<value as JSON>`.
fn json_field(out: &mut Vec<u8>, key: &str, value: &(impl serde::Serialize + ?Sized)) {
    out.push(b',');
    serde_json::to_writer(&mut *out, key).expect("a key serializes");
    out.push(b':');
    serde_json::to_writer(&mut *out, value).expect("a value serializes");
}

/// The fields of a record, built into JSON on the writer thread.
enum Fields {
    Map(Map<String, Value>),
    Call {
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        dur_us: u64,
        reference: Option<u64>,
        /// More fields after the call's own (lifecycle records).
        extra: Map<String, Value>,
    },
}

impl Fields {
    /// Appends the fields as `,"key":value` pairs; a call's as listed in docs/AUDIT.md.
    fn write_json(self, out: &mut Vec<u8>) {
        match self {
            Fields::Map(m) => {
                for (k, v) in &m {
                    json_field(out, k, v);
                }
            }
            Fields::Call {
                info,
                outcome,
                bytes_out,
                dur_us,
                reference,
                extra,
            } => {
                json_field(out, "op", info.op);
                json_field(out, "resource", &info.resource);
                json_field(out, "decision", info.decision());
                json_field(out, "rule", &info.rule);
                json_field(out, "bytes_in", &info.bytes_in);
                if let Some(h) = &info.sha256 {
                    json_field(out, "sha256", h);
                }
                if let Some(r) = reference {
                    json_field(out, "ref", &r);
                }
                json_field(out, "outcome", outcome);
                json_field(out, "bytes_out", &bytes_out);
                json_field(out, "dur_us", &dur_us);
                for (k, v) in &extra {
                    json_field(out, k, v);
                }
            }
        }
    }
}

struct Record {
    kind: &'static str,
    worker: Arc<str>,
    ts: std::time::SystemTime,
    fields: Fields,
    /// For a durable record: where to say its `seq` once it is written.
    written: Option<crossbeam_channel::Sender<u64>>,
    /// Write out everything buffered so far (with no record of its own).
    flush: bool,
}

/// Records waiting for the writer thread, in order.
#[derive(Default)]
struct Queue {
    records: Vec<Record>,
    closed: bool,
}

/// Records queued before the writer is woken anyway (when none of them is durable).
const QUEUE_WAKE: usize = 1024;

/// The writer thread's end: records go in, in order; durable ones come back acknowledged.
/// Queuing a record that is not durable takes a lock and no system call: the writer is woken
/// only by a durable record, a long queue, or the end.
struct Sink {
    queue: Arc<(Mutex<Queue>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    /// Building, hashing and writing records happens on this thread, off the isolate's.
    fn start(writer: Writer) -> Sink {
        let queue: Arc<(Mutex<Queue>, std::sync::Condvar)> = Arc::default();
        let shared = queue.clone();
        let thread = std::thread::Builder::new()
            .name("v8box-audit".into())
            .spawn(move || {
                let mut w = writer;
                let (lock, wake) = &*shared;
                // Two buffers swap places, so the queue's memory is allocated and freed on
                // no thread once they have grown (a Vec freed on another thread than the one
                // that allocated it costs glibc a contended arena lock).
                let mut batch: Vec<Record> = Vec::with_capacity(QUEUE_WAKE);
                loop {
                    let closed = {
                        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while q.records.is_empty() && !q.closed {
                            q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                        std::mem::swap(&mut q.records, &mut batch);
                        q.closed
                    };
                    for r in batch.drain(..) {
                        let written = r.written.clone();
                        let seq = if r.flush { w.seq } else { w.append(r) };
                        if let Some(ack) = written {
                            w.flush_pending();
                            let _ = ack.send(seq);
                        } else if w.pending.len() >= PENDING_LIMIT {
                            w.flush_pending();
                        }
                    }
                    if closed {
                        w.flush_pending();
                        return;
                    }
                }
            })
            .expect("spawn the audit writer");
        Sink {
            queue,
            thread: Some(thread),
        }
    }

    /// Queues a record; false once the writer has stopped.
    fn push(&self, record: Record) -> bool {
        let (lock, wake) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        if q.closed {
            return false;
        }
        let urgent = record.written.is_some();
        q.records.push(record);
        if urgent || q.records.len() >= QUEUE_WAKE {
            wake.notify_one();
        }
        true
    }
}

impl Drop for Sink {
    /// Writes out what is left, then lets the writer thread end.
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.queue;
            lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            wake.notify_one();
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
        if self.allowed {
            "allow"
        } else {
            "deny"
        }
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
        self.send(kind, Fields::Map(fields), true)
    }

    /// Writes out buffered records, and returns once they are written.
    pub fn flush(&self) {
        self.send("flush", Fields::Map(Map::new()), true);
    }

    /// Hands a record to the writer thread. A `durable` one is written at once, together with
    /// everything before it (one `write(2)`), and this waits until it is; others wait in memory
    /// (at most `PENDING_LIMIT` bytes) so that calls without side effects pay neither a system
    /// call nor the JSON and hashing work on the caller's thread. Returns the record's `seq`
    /// for durable records, 0 otherwise.
    fn send(&self, kind: &'static str, fields: Fields, durable: bool) -> u64 {
        let Some(sink) = &self.sink else { return 0 };
        let (ack, written) = if durable {
            let (tx, rx) = crossbeam_channel::bounded(1);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let record = Record {
            kind,
            worker: self.worker.clone(),
            ts: std::time::SystemTime::now(),
            fields,
            written: ack,
            flush: kind == "flush",
        };
        if !sink.push(record) {
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
        let fields = Fields::Call {
            info,
            outcome,
            bytes_out: 0,
            dur_us,
            reference: None,
            extra: match extra {
                Value::Object(extra) => extra,
                _ => Map::new(),
            },
        };
        let kind = if op == "run.start" {
            "run_start"
        } else {
            "run_end"
        };
        self.send(kind, fields, true)
    }

    /// A call decided and finished in one record (buffered).
    pub fn call(&self, info: CallInfo, outcome: &'static str, bytes_out: u64, dur_us: u64) -> u64 {
        self.call_record("call", info, outcome, bytes_out, dur_us, None, false)
    }

    /// The write-ahead record of a side effect (`outcome: pending`): on disk before this returns,
    /// so before the side effect executes.
    pub fn intent(&self, info: &CallInfo) -> u64 {
        if !self.enabled() {
            return 0;
        }
        self.call_record("intent", info.clone(), "pending", 0, 0, None, true)
    }

    /// The outcome of a side effect announced by the intent record `intent_seq` (buffered).
    pub fn outcome(
        &self,
        intent_seq: u64,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        dur_us: u64,
    ) -> u64 {
        self.call_record(
            "outcome",
            info,
            outcome,
            bytes_out,
            dur_us,
            Some(intent_seq),
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn call_record(
        &self,
        kind: &'static str,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        dur_us: u64,
        reference: Option<u64>,
        durable: bool,
    ) -> u64 {
        if !self.enabled() {
            return 0;
        }
        let fields = Fields::Call {
            info,
            outcome,
            bytes_out,
            dur_us,
            reference,
            extra: Map::new(),
        };
        self.send(kind, fields, durable)
    }
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
