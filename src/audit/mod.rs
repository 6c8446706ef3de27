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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

mod escape;
mod otlp;
mod seal;
mod sequence;
mod show;
mod verify;
mod writer;

pub use escape::escaped;
pub use otlp::{logs_endpoint, OtlpError, LOGS_PATH, OTLP_QUEUE_LIMIT};
pub use seal::{
    key_within_reach, keygen, KeyPair, PublicKey, SealKey, PUBLIC_FILE, SEAL_EVERY, SECRET_FILE,
};
pub use sequence::{Ending, Sequence, Unfinished};
pub use show::{known_op, show, ShowFilter};
pub use verify::{verify, verify_report, Report, Verdict};
pub use writer::is_cut_resource;
use writer::{Body, CallEnd, Head, Queue, Sealer, Sink, Timestamps, Writer};

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

/// Where audit records go; `AuditLog::disabled()` writes nothing and costs nothing.
/// Clones made with `for_worker` share one chain (one file, one `seq`).
pub struct AuditLog {
    sink: Option<Arc<Sink>>,
    worker: Arc<str>,
    file: Option<Arc<LogFile>>,
    /// The secret key file of a sealed log.
    seal_key: Option<Arc<Path>>,
}

/// The file a log opened with `AuditLog::open` writes to, as the file system knows it. No
/// script may write, remove or rename it, by any name (`ops::fs` checks every file operation
/// against it, by path and by device and inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Its absolute path with every symlink resolved, as it was when the log was opened.
    pub path: PathBuf,
    /// Its device and inode (a hard link or another spelling of the path is the same file).
    pub id: (u64, u64),
    /// The device and inode of each folder that holds it, from its own folder up to `/`: a
    /// folder among them cannot be removed or renamed either.
    pub folders: Vec<(u64, u64)>,
}

impl LogFile {
    /// The identity of the log opened as `file` at `path`.
    fn of(file: &File, path: &Path) -> io::Result<LogFile> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        // A pipe (`/dev/stderr` when it is one) has no path to resolve: it is known by its
        // identity alone.
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| {
            crate::loader::normalize(&std::env::current_dir().unwrap_or_default().join(path))
        });
        let folders = path
            .ancestors()
            .skip(1)
            .filter_map(|a| std::fs::metadata(a).ok())
            .map(|m| (m.dev(), m.ino()))
            .collect();
        Ok(LogFile {
            path,
            id: (meta.dev(), meta.ino()),
            folders,
        })
    }
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
    /// The operation name (see `ops::table`).
    pub op: &'static str,
    /// What the call touches: a path, URL, variable or channel name, or an argument.
    pub resource: String,
    /// Whether the policy allowed the call.
    pub allowed: bool,
    /// The rule that decided it (see `Decision::rule`).
    pub rule: crate::policy::Rule,
    /// Payload bytes the call carries (data to write, a request body, a message).
    pub bytes_in: u64,
    /// For writes: SHA-256 of the bytes written.
    pub sha256: Option<String>,
    /// For file operations that finished: the real path of what the call reached, when it is
    /// not `resource` (a symlink on the way was followed). `from -> to` for a rename.
    pub resolved: Option<String>,
    /// What identifies the resource, as fields of their own that no cut of `resource` can
    /// remove (docs/AUDIT.md): a rename's two paths, a fetch's scheme, host and port.
    pub parts: Parts,
}

/// The parts of a call's resource that its record keeps as fields of their own, so that
/// nothing has to parse `resource` (a joined, possibly cut, string) back into them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Parts {
    /// The resource is one thing (a path, a name).
    #[default]
    None,
    /// `fs.rename`: `from` and `to`, each cut on its own if over the limit (never dropped).
    Rename {
        /// The path renamed.
        from: String,
        /// Its new path.
        to: String,
    },
    /// `net.fetch`: `scheme`, `host` (as the policy decides it: lowercase, IPv6 in brackets)
    /// and `port` (the URL's, or its scheme's default).
    Net {
        /// `http` or `https`.
        scheme: String,
        /// The host decided.
        host: String,
        /// The port decided.
        port: Option<u16>,
    },
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
            file: None,
            seal_key: None,
        }
    }

    /// Appends to `path`, continuing the hash chain of the records already there.
    ///
    /// A regular file is locked (`flock`, exclusive) for as long as the log is held, so that
    /// `v8box audit verify` can tell a log still being written from one whose tail is missing,
    /// and a second writer cannot fork the chain: opening a log that another holds fails.
    pub fn open(path: &Path, worker: &str) -> io::Result<AuditLog> {
        Self::open_with(path, worker, None)
    }

    /// `open`, and seals the log with the secret key at `key` (made by `keygen`; docs/AUDIT.md,
    /// "Sealed logs"): a signed checkpoint at every run's end, every `SEAL_EVERY` records and
    /// when the log is closed, after each of which the key file is replaced by the next
    /// epoch's key. The key is locked while the log holds it. It must be the key that sealed
    /// this log so far (or a new one, for a log without checkpoints): one key pair seals one
    /// log.
    pub fn open_sealed(path: &Path, worker: &str, key: &Path) -> io::Result<AuditLog> {
        let key_path = key;
        let key = SealKey::load(key).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                io::Error::new(e.kind(), format!("{}: {e}", key.display()))
            } else {
                e
            }
        })?;
        let mut log = Self::open_with(path, worker, Some(key))?;
        log.seal_key = Some(Arc::from(key_path));
        Ok(log)
    }

    fn open_with(path: &Path, worker: &str, key: Option<SealKey>) -> io::Result<AuditLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let regular = file.metadata()?.is_file();
        if regular {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "{} is being written by another audit log (a process holds its \
                             lock); a second writer would fork its hash chain",
                            path.display()
                        ),
                    ))
                }
                // A file system without locks: the log works without one.
                Err(std::fs::TryLockError::Error(_)) => {}
            }
        }
        // Read back under the lock, so that no other writer adds a record meanwhile. A device
        // or a pipe (`/dev/stderr`, say) has no records to read back (reading `/dev/zero`
        // would never end, a pipe would wait): it starts a new chain.
        let (seq, prev, last) = if regular {
            chain_end(File::open(path)?).map_err(|m| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {m}", path.display()),
                )
            })?
        } else {
            (0, GENESIS.to_string(), None)
        };
        let seal = match key {
            Some(mut key) => {
                key.take_up(last.as_ref(), path)?;
                Some(Sealer {
                    key,
                    last: last.map_or(0, |c| c.seq),
                })
            }
            None => None,
        };
        let identity = Arc::new(LogFile::of(&file, path)?);
        Ok(AuditLog {
            sink: Some(Arc::new(Sink::start(Writer {
                out: Box::new(file),
                seq,
                prev,
                pending: Vec::new(),
                ts: Timestamps::default(),
                failure: Arc::default(),
                seal,
                otlp: None,
            }))),
            worker: Arc::from(worker),
            file: Some(identity),
            seal_key: None,
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
                failure: Arc::default(),
                seal: None,
                otlp: None,
            }))),
            worker: Arc::from(worker),
            file: None,
            seal_key: None,
        }
    }

    /// Also sends every record from here on as an OpenTelemetry log record over OTLP/HTTP
    /// (protobuf) to the collector at `url` (docs/AUDIT.md, "Records to OpenTelemetry"):
    /// `http(s)://host:port` (its receiver's `/v1/logs` is added) or the full logs URL. Each
    /// record's fields become attributes, the line itself the body; denied calls have severity
    /// WARN. Sending happens on a thread of its own, from a queue of at most
    /// `OTLP_QUEUE_LIMIT` records: a record beyond it is dropped, a collector that is down or
    /// slow holds up neither the file log nor the script, and what was not delivered is
    /// reported on stderr when the log closes.
    pub fn with_otlp(self, url: &str) -> Result<AuditLog, OtlpError> {
        if !self.enabled() {
            return Err(OtlpError::Disabled);
        }
        let feed = otlp::Feed::start(url)?;
        self.send("otlp", true, Instant::now(), |q, head| {
            q.push_plain(head, Body::Otlp(Box::new(feed)))
        });
        Ok(self)
    }

    /// A log that writes to the same chain, naming another worker in its records.
    pub fn for_worker(&self, worker: &str) -> AuditLog {
        AuditLog {
            sink: self.sink.clone(),
            worker: Arc::from(worker),
            file: self.file.clone(),
            seal_key: self.seal_key.clone(),
        }
    }

    /// An in-memory log and the sink to read its lines from.
    pub fn in_memory(worker: &str) -> (AuditLog, MemorySink) {
        let sink = MemorySink::default();
        (AuditLog::to_writer(sink.clone(), worker), sink)
    }

    /// The file the log writes to, for a log made by `open`.
    pub fn file(&self) -> Option<Arc<LogFile>> {
        self.file.clone()
    }

    /// The secret key file that seals this log, for a log made by `open_sealed`.
    pub fn seal_key(&self) -> Option<&Path> {
        self.seal_key.as_deref()
    }

    /// Whether records are written (false for `disabled()`).
    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Why this log stopped recording, if it did: a write failed (a full disk, say) or its
    /// writer thread failed. From then on nothing more is written and `intent` returns 0, and
    /// the dispatcher refuses every call, since none could be recorded.
    pub fn failure(&self) -> Option<String> {
        self.sink.as_ref()?.failure.get().cloned()
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
            resolved: None,
            parts: Parts::None,
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
        self.finished("call", &info, outcome, bytes_out, started, None, None)
    }

    /// The record of a message refused before it became a call (too large, malformed, or an
    /// unknown operation): kind `refused`, which policy replays skip (there is no call to
    /// decide again). Buffered like a call's.
    pub fn refused(&self, info: CallInfo, outcome: &'static str) -> u64 {
        self.finished("refused", &info, outcome, 0, None, None, None)
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
        self.finished(
            "outcome", &info, outcome, bytes_out, started, reference, None,
        )
    }

    /// The record of a call that finished after its run's `run_end` record (`run_end`: that
    /// record's `seq`), which it names in `after_run_end`: a `call`, or with `intent_seq` the
    /// `outcome` of a side effect. Written at once: nothing else of its run comes to flush it.
    pub fn late(
        &self,
        run_end: u64,
        info: CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
        intent_seq: Option<u64>,
    ) -> u64 {
        let kind = if intent_seq.is_some() {
            "outcome"
        } else {
            "call"
        };
        let late = Some(run_end);
        self.finished(kind, &info, outcome, bytes_out, started, intent_seq, late)
    }

    /// The record of a call that has ended: buffered, or with `after_run_end` (a late one,
    /// see `late`) written at once. The clock is read once, for both its duration and its
    /// time.
    #[allow(clippy::too_many_arguments)] // the record's fields, each passed on as it is
    fn finished(
        &self,
        kind: &'static str,
        info: &CallInfo,
        outcome: &'static str,
        bytes_out: u64,
        started: Option<Instant>,
        reference: Option<u64>,
        after_run_end: Option<u64>,
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
        let mut extra = Map::new();
        if let Some(seq) = after_run_end {
            extra.insert("after_run_end".into(), seq.into());
        }
        self.call_record(kind, info, end, extra, after_run_end.is_some(), now)
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

/// The `seq` and hash of the last record in an existing log, to continue its chain, and its
/// last checkpoint.
type ChainEnd = (u64, String, Option<seal::LastCheckpoint>);

/// Whether a line is a checkpoint record as the writer spells it (a string holding the same
/// text would have its quotes escaped).
fn is_checkpoint_line(line: &[u8]) -> bool {
    const MARK: &[u8] = b",\"kind\":\"checkpoint\",";
    line.windows(MARK.len()).any(|w| w == MARK)
}

fn chain_end(file: File) -> Result<ChainEnd, String> {
    let mut reader = io::BufReader::new(file);
    let mut last: Option<Vec<u8>> = None;
    let mut checkpoint = None;
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
        if is_checkpoint_line(&buf) {
            let v: Value = serde_json::from_slice(&buf)
                .map_err(|e| format!("a checkpoint record is not JSON: {e}"))?;
            let mut key = [0u8; 32];
            let parsed = (|| {
                hex::decode_to_slice(v["key"].as_str()?, &mut key).ok()?;
                Some(seal::LastCheckpoint {
                    seq: v["seq"].as_u64()?,
                    epoch: v["epoch"].as_u64()?,
                    key,
                })
            })();
            checkpoint = Some(parsed.ok_or("a checkpoint record lacks its seq, epoch or key")?);
        }
        last = Some(buf.clone());
    }
    let Some(line) = last else {
        return Ok((0, GENESIS.to_string(), None));
    };
    let v: Value =
        serde_json::from_slice(&line).map_err(|e| format!("the last record is not JSON: {e}"))?;
    let seq = v["seq"].as_u64().ok_or("the last record has no seq")?;
    let hash = v["hash"].as_str().ok_or("the last record has no hash")?;
    Ok((seq, hash.to_string(), checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn info(op: &'static str, resource: &str, rule: &str) -> CallInfo {
        CallInfo {
            op,
            resource: resource.into(),
            allowed: true,
            rule: rule.into(),
            bytes_in: 0,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        }
    }

    /// The JSON records of a log's lines.
    pub(super) fn parsed(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
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
        let recs = parsed(&sink.lines());
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
}
