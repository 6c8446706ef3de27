//! Host applications: `Sandbox`, channels both ways, requests, `WorkerPool`.

use std::time::Duration;

use v8box::audit::AuditLog;
use v8box::policy::{Permission, Policy};
use v8box::sandbox::SendError;
use v8box::{Exit, Job, Sandbox, WorkerPool};

const LONG: Duration = Duration::from_secs(30);

/// Why a host request was refused (it must have been).
fn refusal(answer: Result<bytes::Bytes, v8box::sandbox::RequestError>) -> String {
    match answer {
        Err(v8box::sandbox::RequestError::Denied(why)) => why,
        other => panic!("refused, not {other:?}"),
    }
}

fn sandbox_with(channels: &[&str]) -> v8box::SandboxBuilder {
    let mut b = Sandbox::builder().capture_output(true).timeout(LONG);
    for c in channels {
        b = b.allow(Permission::Host, c).unwrap().channel(c);
    }
    b
}

#[test]
fn messages_flow_both_ways_in_order() {
    let sandbox = sandbox_with(&["in", "out"]).build().unwrap();
    let mut run = sandbox.run_module(
        "echo.js",
        "let n = 0;\n\
         sys.host.onMessage('in', async (data) => {\n\
           await sys.host.send('out', data);\n\
           if (++n === 100) sys.exit(0);\n\
         });",
    );
    let tx = run.sender("in").unwrap();
    let rx = run.receiver("out").unwrap();
    let sent: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let writer = std::thread::spawn(move || {
        for m in sent {
            tx.send(m).unwrap();
        }
    });
    let got: Vec<Vec<u8>> = (0..100)
        .map(|_| rx.recv_timeout(LONG).unwrap().to_vec())
        .collect();
    writer.join().unwrap();
    assert_eq!(
        got,
        (0..100u32)
            .map(|i| i.to_le_bytes().to_vec())
            .collect::<Vec<_>>()
    );
    assert_eq!(run.wait(), Exit::Code(0));
}

#[test]
fn sixteen_mib_messages_cross_both_ways() {
    let sandbox = sandbox_with(&["big"]).build().unwrap();
    let mut run = sandbox.run_module(
        "big.js",
        "sys.host.onMessage('big', async (data) => {\n\
           let sum = 0; for (let i = 0; i < data.length; i += 4096) sum += data[i];\n\
           const back = new Uint8Array(data.length); back.fill(7);\n\
           await sys.host.send('big', back);\n\
           console.log(data.length, sum);\n\
           sys.exit(0);\n\
         });",
    );
    let big = vec![1u8; 16 << 20];
    run.sender("big").unwrap().send(big).unwrap();
    let back = run.receiver("big").unwrap().recv_timeout(LONG).unwrap();
    assert_eq!(back.len(), 16 << 20);
    assert!(back.iter().all(|&b| b == 7));
    assert_eq!(run.wait(), Exit::Code(0));
    assert_eq!(
        run.stdout(),
        [format!("{} {}", 16 << 20, (16 << 20) / 4096)]
    );
}

#[test]
fn a_host_that_sends_faster_than_the_script_reads_gets_backpressure() {
    let sandbox = sandbox_with(&["in", "ready"]).build().unwrap();
    // The script says it is ready, then never returns to its event loop.
    let run = sandbox.run_module(
        "busy.js",
        "sys.host.onMessage('in', () => {});\nawait sys.host.send('ready', 'x');\nwhile (true) {}",
    );
    run.receiver("ready").unwrap().recv_timeout(LONG).unwrap();
    let tx = run.sender("in").unwrap();
    let mut accepted = 0;
    let full = loop {
        match tx.try_send(vec![0u8; 1024]) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 64, "the queue never filled");
    };
    assert!(matches!(full, SendError::Full(_)), "{full:?}");
    assert!(matches!(
        tx.send_timeout(vec![1], Duration::from_millis(50)),
        Err(SendError::Timeout(_))
    ));
    drop(run); // stops the busy script
}

#[test]
fn a_channel_not_in_the_policy_is_denied_and_audited() {
    let (audit, sink) = AuditLog::in_memory("test");
    let _ = audit;
    let sink_writer = sink.clone();
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .channel("secret") // plumbing only: the policy does not allow it
        .audit_writer(sink_writer)
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "deny.js",
        "try { await sys.host.send('secret', 'x'); } catch (e) { console.log(e.code); }\n\
         try { sys.host.onMessage('secret', () => {}); } catch (e) { console.log(e.code); }",
    );
    assert_eq!(run.wait(), Exit::Ok);
    assert_eq!(run.stdout(), ["PERMISSION_DENIED", "PERMISSION_DENIED"]);
    let log = sink.lines().join("\n");
    assert!(
        log.contains("\"op\":\"host.send\"") && log.contains("\"decision\":\"deny\""),
        "{log}"
    );
    assert!(log.contains("\"op\":\"host.listen\""), "{log}");

    // A host message on that channel is refused too, and a request says why.
    let run = sandbox.run_module("idle.js", "await sys.sleep(60000);");
    let err = run.request("secret", "hi", LONG).unwrap_err();
    assert!(
        matches!(err, v8box::sandbox::RequestError::Denied(_)),
        "{err:?}"
    );
    drop(run);
    let log = sink.lines().join("\n");
    assert!(log.contains("\"op\":\"host.message\""), "{log}");
}

#[test]
fn once_the_audit_log_fails_no_side_effect_is_made_and_the_run_stops() {
    /// Takes the first write (the run's start), then fails every write, as a full disk does.
    struct FullAfterFirst(bool);
    impl std::io::Write for FullAfterFirst {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if std::mem::replace(&mut self.0, true) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "disk full",
                ));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // A write's intent is the first write to fail: the file is not written, the run stops.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.txt");
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .allow(Permission::Write, dir.path().to_str().unwrap())
        .unwrap()
        .audit_writer(FullAfterFirst(false))
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "write.js",
        &format!(
            "try {{ await sys.writeFile({:?}, 'x'); }} catch (e) {{ console.log(e.message); }}\n\
             console.log('after');",
            target.display().to_string()
        ),
    );
    let Exit::Error(e) = run.wait() else {
        panic!("the run ends with the log's failure")
    };
    assert!(
        e.message.starts_with("audit log write failed: disk full"),
        "{}",
        e.message
    );
    assert!(
        !target.exists(),
        "no side effect without its intent on disk"
    );
    assert!(run.stdout().is_empty(), "{:?}", run.stdout());

    // A host.send's intent: the message is not sent, and a host waiting for an answer from
    // the run learns why it will not come (at once, not at its timeout).
    let sandbox = sandbox_with(&["rpc", "out"])
        .audit_writer(FullAfterFirst(false))
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "rpc.js",
        "sys.host.onMessage('rpc', async () => { await sys.host.send('out', 'x'); return 'no'; });",
    );
    let why = refusal(run.request("rpc", "first", LONG));
    assert!(
        why.starts_with("the run ended before answering (audit log write failed: disk full"),
        "{why}"
    );
    assert!(matches!(run.wait(), Exit::Error(_)));
    assert!(
        run.receiver("out").unwrap().try_recv().is_err(),
        "nothing was sent"
    );
}

#[test]
fn an_answer_after_the_host_gave_up_does_not_end_the_run() {
    let sandbox = sandbox_with(&["rpc"]).build().unwrap();
    let mut run = sandbox.run_module(
        "late.js",
        "sys.host.onMessage('rpc', async () => { await sys.sleep(300); return 'late'; });",
    );
    let err = run
        .request("rpc", "?", Duration::from_millis(50))
        .unwrap_err();
    assert_eq!(
        err,
        v8box::sandbox::RequestError::Timeout(Duration::from_millis(50))
    );
    // The answer comes after the host stopped waiting: the script could not catch that, and
    // its run goes on to end well.
    run.close_channels();
    assert_eq!(run.wait(), Exit::Ok);
}

#[test]
fn a_quota_on_host_messages_refuses_those_beyond_it_and_says_why() {
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .policy_toml("[host]\nchannels = [\"rpc\"]\n\n[quotas.\"host.message\"]\ncalls = 1\n")
        .unwrap()
        .channel("rpc")
        .build()
        .unwrap();
    let run = sandbox.run_module("rpc.js", "sys.host.onMessage('rpc', (d) => d);");
    assert_eq!(run.request("rpc", "a", LONG).unwrap(), &b"a"[..]);
    let why = refusal(run.request("rpc", "b", LONG));
    assert_eq!(
        why,
        "host.message: quota of 1 calls used up ([quotas.\"host.message\"] calls)"
    );
}

#[test]
fn an_answer_refused_by_its_quota_fails_the_request_at_once() {
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .policy_toml("[host]\nchannels = [\"rpc\"]\n\n[quotas.\"host.send\"]\nbytes = 3\n")
        .unwrap()
        .channel("rpc")
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "rpc.js",
        "sys.host.onMessage('rpc', () => 'a longer answer');",
    );
    let why = refusal(run.request("rpc", "?", LONG));
    assert!(why.starts_with("host.send: quota of 3 bytes"), "{why}");
    // The script sees it too: its run ends with the refusal.
    let Exit::Error(e) = run.wait() else {
        panic!("the refusal ends the run")
    };
    assert!(e.message.contains("QuotaExceeded"), "{}", e.message);
}

#[test]
fn the_host_can_ask_and_wait_for_an_answer() {
    let sandbox = sandbox_with(&["rpc"]).build().unwrap();
    let mut run = sandbox.run_module(
        "rpc.js",
        "sys.host.onMessage('rpc', async (data) => {\n\
           await sys.sleep(1);\n\
           return 'twice: ' + String.fromCharCode(...data).repeat(2);\n\
         });",
    );
    let answer = run.request("rpc", "ab", LONG).unwrap();
    assert_eq!(&answer[..], b"twice: abab");
    let answer = run.request("rpc", "x", LONG).unwrap();
    assert_eq!(&answer[..], b"twice: xx");
    // A handler that never answers: the request times out.
    let slow = sandbox.run_module(
        "slow.js",
        "sys.host.onMessage('rpc', () => new Promise(() => {}));",
    );
    let err = slow
        .request("rpc", "?", Duration::from_millis(200))
        .unwrap_err();
    assert_eq!(
        err,
        v8box::sandbox::RequestError::Timeout(Duration::from_millis(200))
    );
    // Once no host can send any more, a script that only listens is done.
    run.close_channels();
    assert_eq!(run.wait(), Exit::Ok);
    let mut slow = slow;
    slow.terminate();
    assert_eq!(slow.wait(), Exit::Terminated);
}

#[test]
fn exit_statuses_and_captured_output() {
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .max_heap_mb(64)
        .build()
        .unwrap();
    let mut ok = sandbox.run_module(
        "ok.js",
        "console.log('out'); console.error('err'); $print('printed');",
    );
    assert_eq!(ok.wait(), Exit::Ok);
    assert_eq!(ok.stdout(), ["out", "printed"]);
    assert_eq!(ok.stderr(), ["err"]);
    let mut err = sandbox.run_module("err.js", "throw new RangeError('bad');");
    match err.wait() {
        Exit::Error(e) => {
            assert_eq!(e.message, "RangeError: bad");
            assert_eq!(e.script.as_deref(), Some("err.js"));
        }
        other => panic!("{other:?}"),
    }
    let short = Sandbox::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(
        short.run_module("t.js", "while (true) {}").wait(),
        Exit::Timeout
    );
    assert_eq!(
        // Its own sandbox with a long timeout: under load, filling the heap may take a while.
        Sandbox::builder()
            .timeout(LONG)
            .max_heap_mb(64)
            .build()
            .unwrap()
            .run_module(
                "h.js",
                "const a = []; while (true) a.push(new Array(1e5).fill(1));"
            )
            .wait(),
        Exit::HeapLimit
    );
    assert_eq!(
        sandbox.run_module("x.js", "sys.exit(42)").wait(),
        Exit::Code(42)
    );
    assert_eq!(
        sandbox.run_script("s.js", "$print(typeof this)").wait(),
        Exit::Ok
    );
}

fn threads_now() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn dropping_a_run_mid_way_stops_its_thread() {
    let sandbox = sandbox_with(&["in"]).build().unwrap();
    // Warm up the process-wide pieces (platform, I/O pool) once.
    sandbox.run_module("warm.js", "await sys.sleep(1)").wait();
    let before = threads_now();
    for script in [
        "while (true) {}",
        "await sys.sleep(600000)",
        "sys.host.onMessage('in', () => {});",
    ] {
        let run = sandbox.run_module("spin.js", script);
        drop(run); // must neither hang nor leave the thread behind
    }
    // Other tests run in parallel threads of this process, so allow their noise but no growth
    // from the three dropped runs.
    let after = threads_now();
    assert!(after < before + 3, "threads before {before}, after {after}");
}

#[test]
fn a_pool_of_two_threads_runs_a_hundred_scripts_some_failing() {
    let pool = WorkerPool::new(2);
    let mut policy = Policy::deny_all();
    policy.limits.max_heap_mb = Some(48);
    policy.limits.timeout_ms = Some(60_000);
    let mut short = policy.clone();
    short.limits.timeout_ms = Some(200);
    let jobs: Vec<Job> = (0..100)
        .map(|i| {
            let (source, policy) = match i % 10 {
                3 => ("while (true) {}".to_string(), &short),
                7 => (
                    format!("const a = []; while (true) a.push(new Array(1e5).fill({i}));"),
                    &policy,
                ),
                _ => (
                    format!("await sys.sleep(1); console.log('job {i}', sys.now() > 0);"),
                    &policy,
                ),
            };
            Job::module(&format!("job{i}.js"), &source, policy.clone())
        })
        .collect();
    let results = pool.run_all(jobs);
    assert_eq!(results.len(), 100);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.name, format!("job{i}.js"));
        match i % 10 {
            3 => assert_eq!(r.exit, Exit::Timeout, "job {i}"),
            7 => assert_eq!(r.exit, Exit::HeapLimit, "job {i}"),
            _ => {
                assert_eq!(r.exit, Exit::Ok, "job {i}: {:?}", r.exit);
                assert_eq!(r.stdout, [format!("job {i} true")]);
            }
        }
        let start = r.audit.first().unwrap();
        assert!(start.contains("\"op\":\"run.start\""));
        assert!(
            start.contains("\"isolate_run\":1"),
            "a new isolate per job: {start}"
        );
        let end = r.audit.last().unwrap();
        assert!(end.contains("\"op\":\"run.end\""), "{end}");
    }
}

#[test]
fn an_output_flood_cannot_exhaust_host_memory() {
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "flood.js",
        "const line = 'x'.repeat(200);\nfor (let i = 0; i < 200000; i++) $print(line);\nconsole.log('end');",
    );
    assert_eq!(run.wait(), Exit::Ok);
    let kept: usize = run.stdout().iter().map(|l| l.len()).sum();
    assert!(kept <= v8box::sandbox::CAPTURE_LIMIT_BYTES, "{kept}");
    assert!(run.dropped_lines() > 0);
    assert_eq!(run.stdout().len() + run.dropped_lines(), 200_001);
}

#[test]
fn talking_to_a_run_that_ended_is_a_clear_error() {
    let sandbox = sandbox_with(&["in"]).build().unwrap();
    let mut run = sandbox.run_module("short.js", "$print('bye')");
    let tx = run.sender("in").unwrap();
    assert_eq!(run.wait(), Exit::Ok);
    assert!(matches!(tx.send("late"), Err(SendError::Disconnected(_))));
    assert_eq!(
        run.request("in", "late", Duration::from_millis(100)),
        Err(v8box::sandbox::RequestError::Disconnected)
    );
}

#[test]
fn dropping_the_sandbox_stops_its_runs() {
    let sandbox = sandbox_with(&["in"]).build().unwrap();
    let mut busy = sandbox.run_module("busy.js", "while (true) {}");
    let mut waiting = sandbox.run_module("waiting.js", "sys.host.onMessage('in', () => {});");
    drop(sandbox);
    assert_eq!(busy.wait(), Exit::Terminated);
    assert_eq!(waiting.wait(), Exit::Terminated);
}

/// A write that hands each chunk to the test as it is written.
struct Chunks(std::sync::mpsc::Sender<Vec<u8>>);

impl std::io::Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Calls that outlive their run (FIFOs nobody opens within the 5 s drain) are recorded when
/// they finish, in a process that lives on: after `run_end`, naming it — a read as a late
/// `call`, a write as a late `outcome` of its intent.
#[test]
fn calls_that_outlive_their_run_are_recorded_late_naming_the_runs_end() {
    let dir = tempfile::tempdir().unwrap();
    let (fifo_in, fifo_out) = (dir.path().join("in.fifo"), dir.path().join("out.fifo"));
    for fifo in [&fifo_in, &fifo_out] {
        let made = std::process::Command::new("mkfifo")
            .arg(fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut policy = Policy::deny_all();
    for permission in [Permission::Read, Permission::Write] {
        policy
            .grant(permission, dir.path().to_str().unwrap(), dir.path())
            .unwrap();
    }
    let mut options = v8box::RunOptions::new(policy);
    options.audit = AuditLog::to_writer(Chunks(tx), "host");
    let source = format!(
        "sys.readFile({:?}).then(() => {{}});\n\
         sys.writeFile({:?}, 'sent').then(() => {{}});\n\
         setTimeout(() => sys.exit(0), 0);",
        fifo_in.to_str().unwrap(),
        fifo_out.to_str().unwrap()
    );
    let main = v8box::Main::Script {
        name: "late.js".into(),
        source,
    };
    assert_eq!(v8box::run(main, options), Exit::Code(0));

    let mut records: Vec<serde_json::Value> = Vec::new();
    let take = |chunk: Vec<u8>, records: &mut Vec<serde_json::Value>| {
        for line in String::from_utf8(chunk).unwrap().lines() {
            records.push(serde_json::from_str(line).unwrap());
        }
    };
    while let Ok(chunk) = rx.try_recv() {
        take(chunk, &mut records);
    }
    let run_end = records
        .last()
        .expect("the run's records are written")
        .clone();
    assert_eq!(run_end["kind"], "run_end", "{records:?}");
    assert_eq!(run_end["calls_unfinished"], 2);
    let intent = records
        .iter()
        .find(|r| r["kind"] == "intent" && r["op"] == "fs.writeFile")
        .expect("the write's intent came before it started")
        .clone();
    let n = records.len();

    // Now the read gets its bytes and the write its reader; their records follow, at once.
    std::fs::write(&fifo_in, "late").unwrap();
    assert_eq!(std::fs::read(&fifo_out).unwrap(), b"sent");
    while records.len() < n + 2 {
        let chunk = rx.recv_timeout(LONG).expect("the late records are written");
        take(chunk, &mut records);
    }
    let late = &records[n..];
    let read = late.iter().find(|r| r["op"] == "fs.readFile").unwrap();
    assert_eq!(read["kind"], "call");
    assert_eq!(
        (read["outcome"].as_str(), read["bytes_out"].as_u64()),
        (Some("ok"), Some(4))
    );
    let write = late.iter().find(|r| r["op"] == "fs.writeFile").unwrap();
    assert_eq!(write["kind"], "outcome");
    assert_eq!(write["ref"], intent["seq"]);
    assert_eq!(write["outcome"], "ok");
    for r in late {
        assert_eq!(r["after_run_end"], run_end["seq"], "{r}");
    }
    assert_eq!(late[0]["prev"], run_end["hash"]);
}

/// A folder with `lib/v.js` in it, and a secret beside it.
fn module_folders() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/v.js"), "export const v = 'lib';\n").unwrap();
    std::fs::write(dir.path().join("secret.js"), "SECRET-CONTENT-91 no js\n").unwrap();
    dir
}

#[test]
fn a_hosts_imports_are_policy_checked_and_audited() {
    let dir = module_folders();
    let main = dir.path().join("lib/main.js");
    std::fs::write(&main, "import { v } from './v.js';\nconsole.log(v);").unwrap();
    let secret = dir.path().join("secret.js").display().to_string();
    let (_, sink) = AuditLog::in_memory("test");
    // No module root: an inline module's imports need a grant.
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .audit_writer(sink.clone())
        .build()
        .unwrap();
    let mut run = sandbox.run_module("inline.js", &format!("import '{secret}';"));
    let Exit::Error(e) = run.wait() else {
        panic!("denied")
    };
    assert!(
        e.message.contains("permission denied") && e.message.contains(&secret),
        "{e}"
    );
    assert!(!e.message.contains("SECRET-CONTENT"), "{e}");
    // A file's folder is its run's module root.
    let mut run = sandbox.run_file(&main).unwrap();
    assert_eq!(run.wait(), Exit::Ok);
    assert_eq!(run.stdout(), ["lib"]);
    let log = sink.lines().join("\n");
    assert!(log.contains("\"op\":\"module.load\""), "{log}");
    assert!(
        log.contains(&v8box::audit::sha256_hex(b"export const v = 'lib';\n")),
        "{log}"
    );

    // A module root set on the builder holds for inline modules, and replaces the file's folder.
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .module_root(dir.path().join("lib"))
        .unwrap()
        .build()
        .unwrap();
    let lib = dir.path().join("lib/v.js").display().to_string();
    let mut run = sandbox.run_module(
        "inline.js",
        &format!("import {{ v }} from '{lib}';\nconsole.log(v);"),
    );
    assert_eq!(run.wait(), Exit::Ok);
    let mut run = sandbox.run_module("inline.js", &format!("import '{secret}';"));
    assert!(matches!(run.wait(), Exit::Error(_)));
}

#[test]
fn a_hosts_own_resolver_is_audited() {
    let (_, sink) = AuditLog::in_memory("test");
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .audit_writer(sink.clone())
        .module_resolver(|specifier, _| {
            (specifier == "virtual:answer").then(|| {
                (
                    "virtual:answer".to_string(),
                    "export default 42;".to_string(),
                )
            })
        })
        .build()
        .unwrap();
    let mut run = sandbox.run_module("m.js", "import a from 'virtual:answer';\nconsole.log(a);");
    assert_eq!(run.wait(), Exit::Ok);
    assert_eq!(run.stdout(), ["42"]);
    let mut run = sandbox.run_module("m.js", "import 'virtual:nothing';");
    assert!(matches!(run.wait(), Exit::Error(_)));
    let log = sink.lines().join("\n");
    assert!(log.contains("\"rule\":\"host resolver\""), "{log}");
    assert!(
        log.contains(&v8box::audit::sha256_hex(b"export default 42;")),
        "{log}"
    );
    assert!(
        log.contains("\"resource\":\"virtual:nothing\"") && log.contains("NOT_FOUND"),
        "{log}"
    );
}

#[test]
fn a_pool_jobs_imports_need_a_module_root_or_a_grant() {
    let dir = module_folders();
    let lib = dir.path().join("lib/v.js").display().to_string();
    let source = format!("import {{ v }} from '{lib}';\nconsole.log(v);");
    let mut rooted = Policy::deny_all();
    rooted
        .grant(
            Permission::Module,
            &dir.path().join("lib").display().to_string(),
            dir.path(),
        )
        .unwrap();
    let pool = WorkerPool::new(1);
    let results = pool.run_all(vec![
        Job::module("bare.js", &source, Policy::deny_all()),
        Job::module("rooted.js", &source, rooted),
    ]);
    assert!(
        matches!(&results[0].exit, Exit::Error(e) if e.message.contains("permission denied")),
        "{:?}",
        results[0].exit
    );
    assert_eq!(results[1].exit, Exit::Ok, "{:?}", results[1].exit);
    assert_eq!(results[1].stdout, ["lib"]);
    assert!(results[1]
        .audit
        .iter()
        .any(|r| r.contains("\"op\":\"module.load\"")));
}

#[test]
fn tenants_that_together_fill_the_heap_cage_are_stopped_not_the_process() {
    // All isolates of a process share one 4 GiB pointer-compression cage: four tenants that
    // may each take 1.5 GiB fill it before any reaches its own limit (V8 aborted the process).
    let pool = WorkerPool::new(4);
    let mut big = Policy::deny_all();
    big.limits.max_heap_mb = Some(1500);
    big.limits.timeout_ms = Some(120_000);
    let bomb = "const a = []; while (true) a.push(new Array(1e5).fill(1.5));";
    let results = pool.run_all(
        (0..4)
            .map(|i| Job::module(&format!("bomb{i}.js"), bomb, big.clone()))
            .collect(),
    );
    for r in &results {
        assert_eq!(r.exit, Exit::HeapLimit, "{}: {:?}", r.name, r.exit);
        assert!(
            r.audit.last().unwrap().contains("heap limit"),
            "{:?}",
            r.audit.last()
        );
    }
    // The process is fine, and so is the next tenant.
    let after = pool.run_all(vec![Job::module(
        "after.js",
        "console.log(1 + 1);",
        Policy::deny_all(),
    )]);
    assert_eq!(after[0].exit, Exit::Ok);
    assert_eq!(after[0].stdout, ["2"]);
}

#[test]
fn a_host_seals_its_log_and_verifies_it_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let pair = v8box::audit::keygen(&dir.path().join("keys")).unwrap();
    let log = dir.path().join("host.log");
    // A grant that reaches the key is refused when the sandbox is built.
    let reach = Sandbox::builder()
        .allow(Permission::Read, dir.path().to_str().unwrap())
        .unwrap()
        .audit_file_sealed(&log, &pair.secret)
        .unwrap()
        .build();
    assert!(
        matches!(
            reach,
            Err(v8box::sandbox::SandboxError::AuditKeyInReach { .. })
        ),
        "{:?}",
        reach.err()
    );
    drop(reach); // its log is closed (and sealed) here
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .audit_file_sealed(&log, &pair.secret)
        .unwrap()
        .build()
        .unwrap();
    for _ in 0..2 {
        let mut run = sandbox.run_module("m.js", "try { sys.env.get('HOME') } catch (e) {}");
        assert_eq!(run.wait(), Exit::Ok);
    }
    let bytes = std::fs::read(&log).unwrap();
    let report = v8box::audit::verify_report(&bytes, Some(&pair.key));
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.checkpoints, 2, "one at each run's end");
    // The keyless verdict says nothing of the seal.
    assert!(matches!(
        v8box::audit::verify(&bytes),
        v8box::audit::Verdict::Ok { .. }
    ));
}

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

/// A one-request-per-connection OTLP/HTTP receiver on 127.0.0.1 (it answers `Connection:
/// close`): each POST's body, decoded, goes on the channel before the answer.
fn otlp_receiver() -> (String, std::sync::mpsc::Receiver<ExportLogsServiceRequest>) {
    use prost_014::Message;
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut out = conn.try_clone().unwrap();
            let mut reader = std::io::BufReader::new(conn);
            let mut len = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let request = ExportLogsServiceRequest::decode(body.as_slice()).unwrap();
            if tx.send(request).is_err() {
                return;
            }
            let _ =
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, rx)
}

#[test]
fn the_builder_sends_audit_records_to_an_otlp_collector() {
    let (url, requests) = otlp_receiver();
    let (_, sink) = AuditLog::in_memory("test");
    let sandbox = Sandbox::builder()
        .capture_output(true)
        .timeout(LONG)
        .audit_otlp(&url)
        .unwrap()
        .audit_writer(sink.clone())
        .build()
        .unwrap();
    let mut run = sandbox.run_module("m.js", "try { sys.env.get('HOME') } catch (e) {}");
    assert_eq!(run.wait(), Exit::Ok);
    drop(run);
    drop(sandbox); // closes the log: what is left is sent, then the export thread ends
    let lines = sink.lines();
    let bodies: Vec<String> = requests
        .try_iter()
        .flat_map(|r| r.resource_logs)
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .map(|l| match l.body.and_then(|b| b.value) {
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s,
            other => panic!("a string body, not {other:?}"),
        })
        .collect();
    assert!(lines.iter().any(|l| l.contains("\"deny\"")), "{lines:?}");
    assert_eq!(bodies, lines, "every record, in order, as the log wrote it");
}

#[test]
fn the_builder_refuses_otlp_without_a_log_or_with_a_malformed_url() {
    let no_log = Sandbox::builder()
        .audit_otlp("http://127.0.0.1:4318")
        .unwrap()
        .build();
    assert!(
        matches!(no_log, Err(v8box::sandbox::SandboxError::AuditOtlp(_))),
        "{:?}",
        no_log.err()
    );
    let bad = Sandbox::builder().audit_otlp("127.0.0.1:4318");
    assert!(
        matches!(bad, Err(v8box::sandbox::SandboxError::AuditOtlp(_))),
        "{:?}",
        bad.err()
    );
}
