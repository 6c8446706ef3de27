//! `run --audit-otlp URL`: every audit record also goes to an OpenTelemetry collector as an
//! OTLP/HTTP (protobuf) log record. The receiver here is a small HTTP server on 127.0.0.1 that
//! decodes what arrives with the protocol's own types (`ExportLogsServiceRequest`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue, KeyValue};
use prost_014::Message;

use crate::*;

const SCRIPT: &str = r#"
    const home = sys.env.get('HOME');
    try { sys.env.get('V8BOX_NOT_GRANTED'); } catch (e) {}
    try { await sys.readFile('/etc/hostname'); } catch (e) {}
    $print('done');
"#;

/// One POST as the receiver saw it.
struct Post {
    path: String,
    content_type: String,
    request: ExportLogsServiceRequest,
}

/// A request as read: its request line, its headers (names lowercased), its body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 request from `reader`: (request line, headers lowercased, body), or
/// `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, headers, body))
}

/// An OTLP/HTTP receiver: answers every POST with 200 after sending it, decoded, on the channel
/// (before answering, so that every export the client saw accepted has arrived).
fn receiver() -> (String, mpsc::Receiver<Post>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                while let Some((line, headers, body)) = read_request(&mut reader) {
                    let mut parts = line.split(' ');
                    assert_eq!(parts.next(), Some("POST"), "{line}");
                    let path = parts.next().unwrap().to_string();
                    let content_type = headers
                        .iter()
                        .find(|(k, _)| k == "content-type")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let request = ExportLogsServiceRequest::decode(body.as_slice())
                        .expect("an ExportLogsServiceRequest");
                    if tx
                        .send(Post {
                            path,
                            content_type,
                            request,
                        })
                        .is_err()
                    {
                        return;
                    }
                    let _ = out.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (url, rx)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn string(v: Option<&Any>) -> Option<&str> {
    match v {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn run(dir: &Path, flags: &[&str]) -> (i32, String, String) {
    run_js(dir, flags, SCRIPT)
}

/// `audit verify FILE` says the chain holds.
fn verifies(dir: &Path, log: &str) {
    let out = v8box(dir, &["audit", "verify", log]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("ok"), "{}", text(&out.stdout));
}

#[test]
fn every_record_arrives_as_an_otlp_log_record_that_matches_the_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let (url, posts) = receiver();
    let (code, stdout, stderr) = run(
        dir.path(),
        &[
            "--audit=audit.log",
            "--allow-env=HOME",
            "--audit-otlp",
            &url,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "done\n");
    assert!(!stderr.contains("not delivered"), "{stderr}");
    verifies(dir.path(), "audit.log");
    // The run has ended: every export it made was answered, so every POST is here.
    let posts: Vec<Post> = posts.try_iter().collect();
    assert!(!posts.is_empty(), "nothing arrived");
    let mut logs = Vec::new();
    for post in &posts {
        assert_eq!(post.path, "/v1/logs");
        assert_eq!(post.content_type, "application/x-protobuf");
        for rl in &post.request.resource_logs {
            let resource = rl.resource.as_ref().expect("a resource");
            assert_eq!(
                string(attr(&resource.attributes, "service.name")),
                Some("v8box")
            );
            for sl in &rl.scope_logs {
                assert_eq!(
                    sl.scope.as_ref().map(|s| s.name.as_str()),
                    Some("v8box.audit")
                );
                logs.extend(sl.log_records.iter().cloned());
            }
        }
    }
    let file = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    let recs = records(&dir.path().join("audit.log"));
    assert_eq!(
        logs.len(),
        recs.len(),
        "one OTLP log record per record in the file"
    );
    let mut denied = 0;
    for ((log, rec), line) in logs.iter().zip(&recs).zip(&lines) {
        let a = &log.attributes;
        assert_eq!(
            attr(a, "seq"),
            Some(&Any::IntValue(rec["seq"].as_i64().unwrap()))
        );
        for field in [
            "op", "resource", "decision", "rule", "outcome", "hash", "prev", "kind", "worker",
        ] {
            assert_eq!(
                string(attr(a, field)),
                rec[field].as_str(),
                "{field} of {rec}"
            );
        }
        assert_eq!(
            log.body.as_ref().and_then(|b| b.value.as_ref()),
            Some(&Any::StringValue(line.to_string())),
            "the body is the line itself"
        );
        assert_eq!(log.event_name, "v8box.audit");
        let ts = humantime::parse_rfc3339(rec["ts"].as_str().unwrap()).unwrap();
        let nanos = ts.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert_eq!(log.time_unix_nano, nanos, "{rec}");
        if rec["decision"] == "deny" {
            denied += 1;
            assert_eq!(log.severity_text, "WARN", "{rec}");
            assert_eq!(log.severity_number, 13, "SEVERITY_NUMBER_WARN: {rec}");
        } else {
            assert_eq!(log.severity_text, "INFO", "{rec}");
            assert_eq!(log.severity_number, 9, "SEVERITY_NUMBER_INFO: {rec}");
        }
    }
    assert_eq!(denied, 2, "the env variable and the file were denied");
    assert!(recs.iter().any(|r| r["op"] == "run.end"));
}

#[test]
fn a_sealed_log_sends_its_checkpoints_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = v8box(dir.path(), &["audit", "keygen", "--out", "keys"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (url, posts) = receiver();
    let (code, _, stderr) = run(
        &work,
        &[
            "--audit=audit.log",
            "--audit-key=../keys/audit.key",
            "--allow-env=HOME",
            "--audit-otlp",
            &url,
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let sent: Vec<_> = posts
        .try_iter()
        .flat_map(|p| p.request.resource_logs)
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .collect();
    let recs = records(&work.join("audit.log"));
    assert_eq!(sent.len(), recs.len());
    let checkpoint = sent
        .iter()
        .find(|l| string(attr(&l.attributes, "kind")) == Some("checkpoint"))
        .expect("the checkpoint was sent");
    assert!(string(attr(&checkpoint.attributes, "sig")).is_some());
}

/// Checks a run whose collector took nothing: it ended normally, its file log holds, and
/// stderr counts every record as not delivered.
fn nothing_delivered(dir: &Path, code: i32, stdout: &str, stderr: &str) {
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "done\n");
    verifies(dir, "audit.log");
    let n = records(&dir.join("audit.log")).len();
    assert!(
        stderr.contains(&format!("{n} of {n} records not delivered")),
        "{stderr}"
    );
    assert!(
        stderr.contains("the audit log file has them all"),
        "{stderr}"
    );
}

#[test]
fn a_collector_that_is_down_loses_nothing_from_the_file_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, stdout, stderr) = run(
        dir.path(),
        &[
            "--audit=audit.log",
            "--allow-env=HOME",
            "--audit-otlp",
            &url,
        ],
    );
    nothing_delivered(dir.path(), code, &stdout, &stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}/v1/logs")),
        "{stderr}"
    );
    assert!(stderr.contains("export failed"), "{stderr}");
}

#[test]
fn a_collector_that_never_answers_stalls_neither_the_script_nor_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts, reads what comes, and never answers (the connections stay open).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/logs", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            let mut reader = conn.try_clone().unwrap();
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            held.push(conn);
        }
    });
    // More records than the export queue holds: a writer that waited for the collector, or
    // a queue without a bound, would hold the script up here.
    let calls = 2 * v8box::audit::OTLP_QUEUE_LIMIT;
    let script = format!("for (let i = 0; i < {calls}; i++) sys.now();\n$print('done');");
    let (code, stdout, stderr) = run_js(
        dir.path(),
        &["--audit=audit.log", "--audit-otlp", &url],
        &script,
    );
    nothing_delivered(dir.path(), code, &stdout, &stderr);
    assert!(records(&dir.path().join("audit.log")).len() > calls);
}

#[test]
fn a_malformed_collector_url_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "localhost:4318",
        "ftp://collector/",
        "http://",
        "http://user:pw@collector:4318",
    ] {
        let (code, _, stderr) = run(dir.path(), &["--audit=audit.log", "--audit-otlp", url]);
        assert_eq!(code, 2, "{url}: {stderr}");
        // The flag, the URL and what is wrong with it (not clap's "unexpected argument").
        assert!(
            stderr.contains(&format!("error: --audit-otlp {url}: ")),
            "{url}: {stderr}"
        );
    }
    assert!(!dir.path().join("audit.log").exists(), "nothing ran");
    // Without a file log to send from.
    let (code, _, stderr) = run(dir.path(), &["--audit-otlp", "http://127.0.0.1:4318"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--audit-otlp") && stderr.contains("--audit FILE"),
        "{stderr}"
    );
}
