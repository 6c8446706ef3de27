//! Limits a script cannot outrun: `--max-heap` covers every kind of memory a script can cause,
//! `--timeout` holds even where V8 checks no interrupt, limits out of range are refused, and no
//! state of stdout or stderr changes the outcome.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The run's `run.end` record: (outcome, exit code).
fn run_end(dir: &std::path::Path, log: &str) -> (String, i64) {
    let end = records(&dir.join(log))
        .into_iter()
        .find(|r| r["op"] == "run.end")
        .expect("the log has a run.end record");
    (
        end["outcome"].as_str().unwrap().to_string(),
        end["exit_code"].as_i64().unwrap(),
    )
}

#[test]
fn every_kind_of_memory_counts_against_max_heap() {
    // Each script stops by itself after 1 GiB (so that a broken limit cannot take the
    // machine), far over --max-heap=64: it must end at the limit, exit 4, not print "done".
    let dir = tmp();
    let scripts = [
        (
            "growable SharedArrayBuffers",
            "const keep = [];\n\
             for (let i = 0; i < 16; i++) { const g = new SharedArrayBuffer(0, { maxByteLength: 1 << 26 });\n\
               g.grow(1 << 26); new Uint8Array(g).fill(1); keep.push(g); }",
        ),
        (
            "shared WebAssembly memories",
            "const keep = [];\n\
             for (let i = 0; i < 16; i++) { const m = new WebAssembly.Memory({ initial: 1024, maximum: 1024, shared: true });\n\
               new Uint8Array(m.buffer).fill(1); keep.push(m); }",
        ),
        (
            "a growing WebAssembly memory",
            "const m = new WebAssembly.Memory({ initial: 1, maximum: 16384 });\n\
             for (let i = 0; i < 64; i++) { m.grow(256); new Uint8Array(m.buffer).fill(1); }",
        ),
        (
            "WebAssembly memories",
            "const keep = [];\n\
             for (let i = 0; i < 64; i++) { const m = new WebAssembly.Memory({ initial: 256 });\n\
               new Uint8Array(m.buffer).fill(1); keep.push(m); }",
        ),
        (
            "SharedArrayBuffers",
            "const keep = [];\n\
             for (let i = 0; i < 64; i++) { const s = new SharedArrayBuffer(1 << 24);\n\
               new Uint8Array(s).fill(1); keep.push(s); }",
        ),
        (
            "resizable ArrayBuffers",
            "const keep = [];\n\
             for (let i = 0; i < 16; i++) { const r = new ArrayBuffer(0, { maxByteLength: 1 << 26 });\n\
               r.resize(1 << 26); new Uint8Array(r).fill(1); keep.push(r); }",
        ),
    ];
    for (i, (name, script)) in scripts.iter().enumerate() {
        let log = format!("m{i}.log");
        let (code, out, err) = run_js(
            dir.path(),
            &[
                "--max-heap=64",
                "--timeout=60000",
                &format!("--audit={log}"),
            ],
            &format!("{script}\n$print('done');"),
        );
        assert_eq!((code, out.as_str()), (4, ""), "{name}: {err}");
        assert_eq!(
            run_end(dir.path(), &log),
            ("heap limit".into(), 4),
            "{name}"
        );
    }
}

#[test]
fn limits_out_of_range_are_refused_naming_the_flag_or_line() {
    let dir = tmp();
    for flags in [
        &["--max-heap=0"][..],
        &["--max-heap=4097"],
        &["--max-heap=18446744073709551615"],
        &["--max-heap=-1"],
        &["--timeout=18446744073709551615"],
    ] {
        let (code, out, err) = run_js(dir.path(), flags, "$print('ran')");
        assert_eq!((code, out.as_str()), (2, ""), "{flags:?}: {err}");
        let flag = flags[0].split('=').next().unwrap();
        assert!(err.contains(flag), "{flags:?}: {err}");
    }
    for (line, key) in [
        ("max_heap_mb = 0", "max_heap_mb"),
        ("max_heap_mb = 17592186044416", "max_heap_mb"),
        ("timeout_ms = 9223372036854775807", "timeout_ms"),
    ] {
        write(
            dir.path(),
            "p.toml",
            &format!("# limits\n[limits]\n{line}\n"),
        );
        let (code, out, err) = run_js(dir.path(), &["--policy=p.toml"], "$print('ran')");
        assert_eq!((code, out.as_str()), (2, ""), "{line}: {err}");
        assert!(err.contains(key) && err.contains(":3:"), "{line}: {err}");
    }
}

/// Runs `script` with `flags` and `--audit=audit.log`, its stdout a pipe that nobody reads.
/// A guard kills the process after 60 s, so that a broken limit fails the test instead of
/// hanging it.
fn run_with_stalled_stdout(dir: &std::path::Path, flags: &[&str], script: &str) -> Option<i32> {
    write(dir, "main.js", script);
    let mut child = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .arg("run")
        .args(flags)
        .args(["--audit=audit.log", "main.js"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    let guard = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(60))
            == Err(crossbeam_channel::RecvTimeoutError::Timeout)
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let stdout = child.stdout.take();
    let status = child.wait().unwrap();
    drop(done);
    guard.join().unwrap();
    // Read only now: the pipe stayed full while the script ran.
    let mut rest = Vec::new();
    let _ = stdout.map(|mut s| s.read_to_end(&mut rest));
    status.code()
}

#[test]
fn a_timeout_holds_while_output_is_stalled_and_the_log_is_complete() {
    let dir = tmp();
    let code = run_with_stalled_stdout(
        dir.path(),
        &["--timeout=300"],
        "const line = 'x'.repeat(1000); for (;;) $print(line);",
    );
    assert_eq!(code, Some(3));
    assert_eq!(run_end(dir.path(), "audit.log"), ("timeout".into(), 3));
    let verify = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
}

#[test]
fn a_heap_limit_holds_in_a_builtin_that_checks_no_interrupt() {
    // `fill` on one huge buffer runs without an interrupt check: the heap limit terminates the
    // isolate at once, and when the process's memory goes on growing to twice the limit the
    // watchdog gives up on the run there (without that, the fill touches all 2 GiB first).
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--max-heap=64", "--audit=f.log"],
        "new Uint8Array(2 ** 31).fill(1); $print('filled');",
    );
    assert_eq!((code, out.as_str()), (4, ""), "{err}");
    // It says what happened: memory growth (the watchdog's or the kernel's limit), not a wait.
    assert!(
        err.contains("memory") && !err.contains("did not stop within"),
        "{err}"
    );
    let end = records(&dir.path().join("f.log"))
        .into_iter()
        .find(|r| r["op"] == "run.end")
        .unwrap();
    assert_eq!(
        (end["outcome"].as_str(), end["abandoned"].as_bool()),
        (Some("heap limit"), Some(true))
    );
}

#[test]
fn a_timeout_while_a_stack_getter_runs_is_a_timeout() {
    let dir = tmp();
    for script in [
        "const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { for (;;) {} } });\n\
         Promise.reject(e);",
        "const e = new Error('x'); Object.defineProperty(e, 'stack', { get() { for (;;) {} } });\n\
         throw e;",
    ] {
        let (code, _, err) = run_js(dir.path(), &["--timeout=300", "--audit=s.log"], script);
        assert_eq!(code, 3, "{script}: {err}");
        assert_eq!(
            run_end(dir.path(), "s.log"),
            ("timeout".into(), 3),
            "{script}"
        );
        std::fs::remove_file(dir.path().join("s.log")).unwrap();
    }
}

#[test]
fn a_closed_stderr_changes_no_exit_code() {
    let dir = tmp();
    write(dir.path(), "loop.js", "while (true) {}");
    write(dir.path(), "throw.js", "throw new Error('boom')");
    let bin = env!("CARGO_BIN_EXE_v8box");
    for (args, expected) in [
        ("run --timeout=200 loop.js", 3),
        ("run throw.js", 1),
        ("run --max-heap=0 loop.js", 2),
        ("run missing.js", 2),
    ] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("exec \"{bin}\" {args} 2>&-"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(expected), "{args}");
    }
}

#[test]
fn a_timeout_holds_in_a_builtin_that_checks_no_interrupt() {
    // V8's global regex replace checks no interrupt while it builds its result: the timeout
    // terminates the isolate, the replace goes on, and the watchdog gives up on the run after
    // its grace, recording it as abandoned (without that, the run ends only when the replace
    // does, seconds past its limit).
    let dir = tmp();
    let (code, _, err) = run_js(
        dir.path(),
        &["--timeout=100", "--audit=r.log"],
        "const s = 'a'.repeat(64 << 20); s.replace(/a/g, 'b'); $print('replaced');",
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("did not stop"), "{err}");
    let end = records(&dir.path().join("r.log"))
        .into_iter()
        .find(|r| r["op"] == "run.end")
        .unwrap();
    assert_eq!(
        (end["outcome"].as_str(), end["abandoned"].as_bool()),
        (Some("timeout"), Some(true))
    );
    let verify = v8box(dir.path(), &["audit", "verify", "r.log"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
}

#[test]
fn reads_in_flight_count_against_max_heap() {
    // Sixty reads of a 32 MiB file, all in flight at once, held 2 GiB of host memory under
    // --max-heap=64: the run ends at the limit instead.
    let dir = tmp();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let (code, out, err) = run_js(
        dir.path(),
        &[
            "--max-heap=64",
            "--timeout=60000",
            "--allow-read=.",
            "--audit=reads.log",
        ],
        "const all = [];\n\
         for (let i = 0; i < 60; i++) all.push(sys.readFile('big.bin'));\n\
         const got = await Promise.allSettled(all);\n\
         $print('done', got.filter((r) => r.status === 'fulfilled').length);",
    );
    assert_eq!((code, out.as_str()), (4, ""), "{err}");
    assert_eq!(run_end(dir.path(), "reads.log"), ("heap limit".into(), 4));
}
