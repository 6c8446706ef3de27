//! Audit records to OpenTelemetry (docs/AUDIT.md, "Records to OpenTelemetry"): every line the
//! writer seals is also sent, as an OpenTelemetry log record, over OTLP/HTTP (protobuf).
//!
//! The audit writer only copies each sealed line into a bounded queue (`OTLP_QUEUE_LIMIT`
//! records; a line beyond it is dropped and counted) and hands the queue over once per batch.
//! A thread of its own (`v8box-otlp`) takes the lines, turns each into a log record (its
//! fields as attributes, the line itself as the body) and exports them in batches of at most
//! `BATCH_MAX` with opentelemetry-otlp's own HTTP exporter. A collector that is down or slow
//! therefore holds up neither the script nor the file log: the writer never waits for it.
//! When the log closes, the thread gets `CLOSE_GRACE` to send what is left; whatever was not
//! delivered (dropped, refused, or still waiting) is counted and reported on stderr.
//!
//! Why the exporter sends with ureq instead of its `reqwest-blocking-client`: ureq is the HTTP
//! client the fetch operation already uses, with its TLS (rustls), so an `https://` collector
//! works without a second HTTP and TLS stack, and no tokio runtime (which reqwest's blocking
//! client runs on a thread of its own) comes into the process. The exporter takes any client
//! through opentelemetry-http's `HttpClient` trait; its future never waits on anything but the
//! blocking call, so `futures_executor::block_on` drives it on the export thread.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::Resource;
use serde_json::Value;

/// Records waiting to be exported at most (handed over and not yet sent or given up). The
/// writer drops a record beyond it, and counts it: a collector that cannot keep up must not
/// make the log grow in memory, nor make the script wait.
pub const OTLP_QUEUE_LIMIT: usize = 16 * 1024;

/// Records per export request at most (the OpenTelemetry SDK's default batch size).
const BATCH_MAX: usize = 512;

/// How long one export request may take, retries included (connecting, sending, the answer).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long closing the log waits for the export thread to send what is left. Past it, the
/// rest counts as not delivered and the thread is left to end on its own.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The path a collector's OTLP/HTTP receiver takes logs on.
pub const LOGS_PATH: &str = "/v1/logs";

/// Why OTLP export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The collector's URL is not an `http://` or `https://` URL with a host.
    #[error("{url}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The log records nothing (`AuditLog::disabled`).
    #[error("OTLP export sends an audit log's records: give it one (`--audit FILE`; `audit_file`, `audit_file_sealed` or `audit_writer`)")]
    Disabled,
    /// The exporter could not be built.
    #[error("the OTLP exporter for {url}: {why}")]
    Exporter {
        /// The logs endpoint.
        url: String,
        /// The exporter's error.
        why: String,
    },
}

/// The logs endpoint for a collector URL: `http(s)://host[:port]` alone (or with `/`) gets the
/// receiver's `/v1/logs`; a URL with a path of its own is used as it is.
pub fn logs_endpoint(url: &str) -> Result<String, OtlpError> {
    let bad = |why: &str| OtlpError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    let mut parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(
            "an OTLP/HTTP collector URL starts with http:// or https://",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials in the URL would be sent in the clear to a log: use \
             OTEL_EXPORTER_OTLP_HEADERS for an authorization header",
        ));
    }
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path(LOGS_PATH);
    }
    Ok(parsed.to_string())
}

/// What the writer thread holds: the queue's producing end, and the record it is filling.
pub(super) struct Feed {
    shared: Arc<Shared>,
    /// Lines sealed in this batch, not yet handed over.
    chunk: Vec<u8>,
    lines: usize,
    thread: Option<std::thread::JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
}

/// What the writer and the export thread share.
struct Shared {
    endpoint: String,
    queue: Mutex<Pending>,
    wake: Condvar,
    /// Records handed over and not yet exported or given up (the export thread's included).
    queued: AtomicUsize,
    /// Records offered in all (every sealed line).
    offered: AtomicU64,
    /// Records the queue had no room for.
    dropped: AtomicU64,
    /// Records a collector accepted.
    sent: AtomicU64,
    /// The last reason an export failed.
    last_error: Mutex<Option<String>>,
    /// Set when the log closes and the grace has run out: export nothing more.
    abandon: AtomicBool,
}

#[derive(Default)]
struct Pending {
    /// Sealed lines, each ending in `\n`.
    text: Vec<u8>,
    closed: bool,
}

impl Feed {
    /// Starts exporting to `url` (see `logs_endpoint`).
    pub(super) fn start(url: &str) -> Result<Feed, OtlpError> {
        Self::start_with(url, Box::new(UreqClient::new()))
    }

    fn start_with(url: &str, client: Box<dyn SendBatch>) -> Result<Feed, OtlpError> {
        let endpoint = logs_endpoint(url)?;
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            queue: Mutex::default(),
            wake: Condvar::new(),
            queued: AtomicUsize::new(0),
            offered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_error: Mutex::new(None),
            abandon: AtomicBool::new(false),
        });
        let exporter = client.exporter(&endpoint, shared.clone())?;
        let (finished, done) = crossbeam_channel::bounded(1);
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("v8box-otlp".into())
            .spawn(move || {
                export_loop(&theirs, exporter);
                let _ = finished.send(());
            })
            .map_err(|e| OtlpError::Exporter {
                url: endpoint.clone(),
                why: format!("cannot start its thread: {e}"),
            })?;
        Ok(Feed {
            shared,
            chunk: Vec::new(),
            lines: 0,
            thread: Some(thread),
            done,
        })
    }

    /// Takes a sealed line (with its `\n`), or counts it as dropped when the queue is full.
    pub(super) fn offer(&mut self, line: &[u8]) {
        self.shared.offered.fetch_add(1, Ordering::Relaxed);
        if self.shared.queued.load(Ordering::Relaxed) + self.lines >= OTLP_QUEUE_LIMIT {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.chunk.extend_from_slice(line);
        self.lines += 1;
    }

    /// Hands the lines taken since the last call to the export thread (once per batch).
    pub(super) fn hand_over(&mut self) {
        if self.lines == 0 {
            return;
        }
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.text.extend_from_slice(&self.chunk);
        self.shared.queued.fetch_add(self.lines, Ordering::Relaxed);
        drop(q);
        self.shared.wake.notify_one();
        self.chunk.clear();
        self.lines = 0;
    }

    /// Hands over the rest, lets the export thread send it (`CLOSE_GRACE` at most) and reports
    /// on stderr what was not delivered, if anything.
    pub(super) fn close(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.hand_over();
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.shared.wake.notify_one();
        let finished = !matches!(
            self.done.recv_timeout(CLOSE_GRACE),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        );
        if finished {
            let _ = thread.join();
        } else {
            // Stuck on a collector that does not answer: left to end at its request's
            // timeout, exporting nothing more.
            self.shared.abandon.store(true, Ordering::SeqCst);
        }
        if let Some(report) = self.shared.report(finished) {
            eprintln!("v8box: {report}");
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// What was not delivered, as a sentence; `None` when every record was.
    fn report(&self, finished: bool) -> Option<String> {
        let offered = self.offered.load(Ordering::SeqCst);
        let sent = self.sent.load(Ordering::SeqCst).min(offered);
        if sent == offered {
            return None;
        }
        let dropped = self.dropped.load(Ordering::SeqCst);
        let mut why = Vec::new();
        if dropped > 0 {
            why.push(format!(
                "{dropped} dropped, the export queue ({OTLP_QUEUE_LIMIT} records) being full"
            ));
        }
        if let Some(e) = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            why.push(format!("export failed: {e}"));
        }
        if !finished {
            why.push(format!(
                "the collector had not taken them {}s after the log closed",
                CLOSE_GRACE.as_secs()
            ));
        }
        Some(format!(
            "audit OTLP export to {}: {} of {offered} records not delivered ({}); the audit log \
             file has them all",
            self.endpoint,
            offered - sent,
            why.join("; ")
        ))
    }

    fn failed(&self, why: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }
}

/// Sends one batch of log records; the export thread's view of the exporter.
trait Export: Send {
    fn export(&self, batch: &[(&SdkLogRecord, &InstrumentationScope)]) -> Result<(), String>;
}

/// Makes the exporter (`UreqClient` in use; tests give their own).
trait SendBatch: Send {
    fn exporter(
        self: Box<Self>,
        endpoint: &str,
        shared: Arc<Shared>,
    ) -> Result<Box<dyn Export>, OtlpError>;
}

/// The resource every record comes from: `service.name` v8box, and its version.
fn resource() -> Resource {
    Resource::builder()
        .with_service_name("v8box")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

struct OtlpExport(opentelemetry_otlp::LogExporter);

impl Export for OtlpExport {
    fn export(&self, batch: &[(&SdkLogRecord, &InstrumentationScope)]) -> Result<(), String> {
        futures_executor::block_on(self.0.export(LogBatch::new(batch))).map_err(|e| e.to_string())
    }
}

/// An `HttpClient` over ureq (see the top of this file for why).
#[derive(Debug)]
struct UreqClient {
    agent: ureq::Agent,
    /// Where a transport error's own words go (the exporter keeps only "network error").
    errors: Option<Arc<Shared>>,
}

/// The most of a collector's answer that is read.
const RESPONSE_LIMIT: u64 = 1 << 20;

impl UreqClient {
    fn new() -> UreqClient {
        UreqClient {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(EXPORT_TIMEOUT)
                .timeout(EXPORT_TIMEOUT)
                .redirects(0)
                .build(),
            errors: None,
        }
    }
}

impl SendBatch for UreqClient {
    fn exporter(
        mut self: Box<Self>,
        endpoint: &str,
        shared: Arc<Shared>,
    ) -> Result<Box<dyn Export>, OtlpError> {
        self.errors = Some(shared);
        let mut exporter = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(*self)
            .build()
            .map_err(|e| OtlpError::Exporter {
                url: endpoint.to_string(),
                why: e.to_string(),
            })?;
        exporter.set_resource(&resource());
        Ok(Box::new(OtlpExport(exporter)))
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpClient for UreqClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut req = self
            .agent
            .request(parts.method.as_str(), &parts.uri.to_string());
        for (name, value) in &parts.headers {
            if let Ok(value) = value.to_str() {
                req = req.set(name.as_str(), value);
            }
        }
        let response = match req.send_bytes(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                let why = e.to_string();
                if let Some(shared) = &self.errors {
                    shared.failed(why.clone());
                }
                return Err(why.into());
            }
        };
        let mut answer = Response::builder().status(response.status());
        for name in response.headers_names() {
            if let Some(value) = response.header(&name) {
                answer = answer.header(name.as_str(), value);
            }
        }
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(RESPONSE_LIMIT)
            .read_to_end(&mut bytes)?;
        Ok(answer.body(Bytes::from(bytes))?)
    }
}

/// The export thread: takes handed-over lines, exports them in batches, until the log closes
/// (or the grace runs out).
fn export_loop(shared: &Shared, exporter: Box<dyn Export>) {
    let provider = SdkLoggerProvider::builder().build();
    let scope = InstrumentationScope::builder("v8box.audit")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let logger = provider.logger_with_scope(scope.clone());
    let mut text = Vec::new();
    let mut batch: Vec<SdkLogRecord> = Vec::with_capacity(BATCH_MAX);
    loop {
        let closed = {
            let mut q = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            while q.text.is_empty() && !q.closed {
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            std::mem::swap(&mut q.text, &mut text);
            q.closed
        };
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut record = logger.create_log_record();
            fill(&mut record, line);
            batch.push(record);
            if batch.len() == BATCH_MAX {
                send(shared, &*exporter, &mut batch, &scope);
            }
        }
        send(shared, &*exporter, &mut batch, &scope);
        text.clear();
        if closed || shared.abandon.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Exports `batch` (unless the close's grace ran out), counts it, and empties it.
fn send(
    shared: &Shared,
    exporter: &dyn Export,
    batch: &mut Vec<SdkLogRecord>,
    scope: &InstrumentationScope,
) {
    if batch.is_empty() {
        return;
    }
    if !shared.abandon.load(Ordering::SeqCst) {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|r| (r, scope)).collect();
        match exporter.export(&refs) {
            Ok(()) => {
                shared.sent.fetch_add(batch.len() as u64, Ordering::SeqCst);
            }
            Err(e) => {
                let mut last = shared.last_error.lock().unwrap_or_else(|p| p.into_inner());
                // A transport error's own words (kept by `UreqClient`) say more than the
                // exporter's "network error".
                if last.is_none() || !e.contains("network error") {
                    *last = Some(e);
                }
            }
        }
    }
    shared.queued.fetch_sub(batch.len(), Ordering::Relaxed);
    batch.clear();
}

/// Makes a log record of a sealed line: the line itself as the body (so that a collector keeps
/// what the chain's hash covers), each field as an attribute of the same name, the record's
/// `ts` as its time, and severity WARN for a denied call (INFO otherwise).
fn fill(record: &mut SdkLogRecord, line: &[u8]) {
    let text = String::from_utf8_lossy(line).into_owned();
    record.set_observed_timestamp(SystemTime::now());
    let fields = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let ts = fields
        .get("ts")
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    if let Some(ts) = ts {
        record.set_timestamp(ts);
    }
    let (severity, word) = if fields.get("decision").and_then(Value::as_str) == Some("deny") {
        (Severity::Warn, "WARN")
    } else {
        (Severity::Info, "INFO")
    };
    record.set_severity_number(severity);
    record.set_severity_text(word);
    record.set_event_name("v8box.audit");
    record.add_attributes(fields.into_iter().filter_map(|(k, v)| {
        let v = match v {
            Value::Null => return None,
            Value::Bool(b) => AnyValue::Boolean(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => AnyValue::Int(i),
                None => match n.as_f64() {
                    Some(f) if n.is_f64() => AnyValue::Double(f),
                    _ => AnyValue::String(n.to_string().into()),
                },
            },
            Value::String(s) => AnyValue::String(s.into()),
            other => AnyValue::String(other.to_string().into()),
        };
        Some((k, v))
    }));
    record.set_body(AnyValue::String(text.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls() {
        assert_eq!(
            logs_endpoint("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            logs_endpoint("https://otel.example/").unwrap(),
            "https://otel.example/v1/logs"
        );
        assert_eq!(
            logs_endpoint("http://c:4318/custom/logs").unwrap(),
            "http://c:4318/custom/logs"
        );
        for bad in [
            "localhost:4318",
            "ftp://c/",
            "http://",
            "not a url",
            "http://u:p@c/",
        ] {
            assert!(logs_endpoint(bad).is_err(), "{bad}");
        }
    }

    /// An exporter that waits for the test to open its gate before each batch, and counts.
    struct Gated {
        gate: crossbeam_channel::Receiver<()>,
        exported: Arc<AtomicUsize>,
    }
    impl Export for Gated {
        fn export(&self, batch: &[(&SdkLogRecord, &InstrumentationScope)]) -> Result<(), String> {
            self.gate.recv().map_err(|e| e.to_string())?;
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }
    struct GatedClient(Gated);
    impl SendBatch for GatedClient {
        fn exporter(
            self: Box<Self>,
            _: &str,
            _: Arc<Shared>,
        ) -> Result<Box<dyn Export>, OtlpError> {
            Ok(Box::new(self.0))
        }
    }

    #[test]
    fn a_stuck_collector_drops_what_the_queue_cannot_hold_and_counts_it() {
        let (open, gate) = crossbeam_channel::unbounded();
        let exported = Arc::new(AtomicUsize::new(0));
        let client = GatedClient(Gated {
            gate,
            exported: exported.clone(),
        });
        let mut feed = Feed::start_with("http://127.0.0.1:9/", Box::new(client)).unwrap();
        let line = br#"{"seq":1,"op":"now","decision":"allow"}
"#;
        // The exporter is stuck on its first batch: whatever it holds still counts as
        // queued, so exactly the records past the limit are dropped, however far it got.
        let extra = 100;
        for _ in 0..OTLP_QUEUE_LIMIT + extra {
            feed.offer(line);
            if feed.lines == BATCH_MAX {
                feed.hand_over();
            }
        }
        feed.hand_over();
        assert_eq!(feed.shared.dropped.load(Ordering::SeqCst), extra as u64);
        // One export per record at most.
        for _ in 0..OTLP_QUEUE_LIMIT {
            open.send(()).unwrap();
        }
        feed.close();
        assert_eq!(exported.load(Ordering::SeqCst), OTLP_QUEUE_LIMIT);
        let report = feed.shared.report(true).unwrap();
        assert!(
            report.contains(&format!(
                "{extra} of {} records not delivered",
                OTLP_QUEUE_LIMIT + extra
            )),
            "{report}"
        );
        assert!(report.contains(&format!("{extra} dropped")), "{report}");
    }
}
