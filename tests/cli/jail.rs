//! The jail: with `--isolation=process` (the default) the script's isolate runs in a worker
//! process that holds no rights; with `--isolation=thread` the CLI confines itself with
//! Landlock to what the policy grants. The probe (debug builds, `V8BOX_JAIL_PROBE`) is code
//! running inside the isolate's process after its jail is entered: the stand-in for a V8
//! exploit.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{records, text, write};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Runs `app/main.js` in `dir` with `flags` and `V8BOX_JAIL_PROBE=probe`: (exit code,
/// stderr). The script's folder is its module root, which Landlock lets the process read.
fn probe(dir: &Path, flags: &[&str], probe: &str) -> (i32, String) {
    write(dir, "app/main.js", "$print('ran');");
    let out = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .arg("run")
        .args(flags)
        .arg("app/main.js")
        .current_dir(dir)
        .env("V8BOX_JAIL_PROBE", probe)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

fn line<'a>(err: &'a str, prefix: &str, attempt: &str) -> &'a str {
    let wanted = format!("{prefix}: {attempt}: ");
    err.lines()
        .find(|l| l.starts_with(&wanted))
        .unwrap_or_else(|| panic!("no {wanted:?} in {err}"))
}

#[test]
fn code_inside_the_worker_opens_connects_executes_and_traces_nothing() {
    let dir = tmp();
    let root = dir.path();
    write(root, "data/granted.txt", "granted");
    write(root, "secret.txt", "secret");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = [
        format!("open:{}", root.join("data/granted.txt").display()),
        format!("open:{}", root.join("secret.txt").display()),
        format!("write:{}", root.join("audit.log").display()),
        format!("connect:127.0.0.1:{port}"),
        "ptrace:parent".to_string(),
        "exec:/bin/true".to_string(),
    ];
    let (code, err) = probe(
        root,
        &[
            "--allow-read=data",
            &format!("--allow-net=127.0.0.1:{port}"),
            "--audit=audit.log",
        ],
        &attempts.join(";"),
    );
    assert_eq!(code, 0, "{err}");
    for attempt in &attempts {
        let l = line(&err, "jail probe", attempt);
        assert!(l.contains(": denied ("), "{l}");
    }
    // The run itself went on: the log is whole and nothing was written into it by the probe.
    let log = std::fs::read_to_string(root.join("audit.log")).unwrap();
    assert!(!log.contains("probe"), "{log}");
    let start = records(&root.join("audit.log"))
        .into_iter()
        .find(|r| r["op"] == "run.start")
        .unwrap();
    let jail = start["isolation"]["jail"].to_string();
    assert!(
        jail.contains("seccomp") && jail.contains("landlock"),
        "{start}"
    );
}

#[test]
fn in_thread_mode_landlock_lets_the_process_open_only_what_the_policy_grants() {
    let dir = tmp();
    let root = dir.path();
    write(root, "data/granted.txt", "granted");
    write(root, "secret.txt", "secret");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let granted = format!("open:{}", root.join("data/granted.txt").display());
    let secret = format!("open:{}", root.join("secret.txt").display());
    let connect = format!("connect:127.0.0.1:{port}");
    let exec = "exec:/bin/true".to_string();
    // The connect is to a port no grant names; exec last: unconfined, it replaces v8box.
    let (code, err) = probe(
        root,
        &[
            "--isolation=thread",
            "--allow-read=data",
            "--allow-net=127.0.0.1:1",
        ],
        &[
            granted.clone(),
            secret.clone(),
            connect.clone(),
            exec.clone(),
        ]
        .join(";"),
    );
    // The control: the same attempts before the process confines itself all succeed (and the
    // exec replaced v8box with /bin/true, so nothing ran after it).
    for attempt in [&granted, &secret, &connect] {
        let l = line(&err, "jail probe (unconfined)", attempt);
        assert!(l.ends_with(": allowed"), "{l}");
    }
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("jail probe: "), "{err}");

    // Without the exec in the way: after confinement only the granted file opens.
    let (code, err) = probe(
        root,
        &[
            "--isolation=thread",
            "--allow-read=data",
            "--allow-net=127.0.0.1:1",
        ],
        &[granted.clone(), secret.clone(), connect.clone()].join(";"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        line(&err, "jail probe", &granted).ends_with(": allowed"),
        "{err}"
    );
    assert!(
        line(&err, "jail probe", &secret).contains(": denied ("),
        "{err}"
    );
    assert!(
        line(&err, "jail probe", &connect).contains(": denied ("),
        "{err}"
    );
}

#[test]
fn the_running_worker_has_seccomp_and_no_new_privs() {
    // The script waits on a FIFO (its write waits on the I/O pool for a reader) until the test
    // has looked at the worker.
    let dir = tmp();
    let root = dir.path();
    let fifo = root.join("go");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    write(
        root,
        "main.js",
        "$print('started'); await sys.writeFile('go', 'x'); $print('done');",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(["run", "--allow-write=go", "main.js"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "started\n");
    let broker = child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{broker}/task/{broker}/children")).unwrap();
    let workers: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(workers.len(), 1, "{children}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", workers[0])).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
    };
    assert_eq!(field("Seccomp:").as_deref(), Some("2"), "{status}");
    assert_eq!(field("NoNewPrivs:").as_deref(), Some("1"), "{status}");
    let broker_status = std::fs::read_to_string(format!("/proc/{broker}/status")).unwrap();
    assert!(
        broker_status.contains("Seccomp:\t0"),
        "the broker keeps its rights"
    );
    assert_eq!(std::fs::read(&fifo).unwrap(), b"x");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "done\n");
    assert!(child.wait().unwrap().success());
}

/// Runs `main.js` (a `$print`, a first `$send`, a `$print`) in a fresh folder with `flags`,
/// its worker taken over as the probe's `misbehave:HOW` says: the folder (holding `a.log`,
/// the audit log) and the output.
fn misbehaving(how: &str, flags: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let dir = tmp();
    write(
        dir.path(),
        "main.js",
        "$print('before'); sys.now(); $print('after');",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .arg("run")
        .args(flags)
        .args(["--audit=a.log", "main.js"])
        .current_dir(dir.path())
        .env("V8BOX_JAIL_PROBE", format!("misbehave:{how}"))
        .output()
        .unwrap();
    (dir, out)
}

#[test]
fn a_worker_that_breaks_the_protocol_or_crashes_ends_its_run_with_a_whole_log() {
    // A taken-over worker (the probe's `misbehave`): at its first `$send` it writes a frame
    // that is no message, announces a frame of 4 GiB, dies of SIGSEGV, sends more calls
    // without waiting than the protocol allows, or ends its request before their answers.
    for (how, says) in [
        ("garbage", "broke the channel's protocol"),
        ("length", "broke the channel's protocol"),
        ("segv", "killed by SIGSEGV"),
        ("flood", "more sends without waiting than allowed"),
        ("unflushed", "Done before the answers of its sends"),
    ] {
        let (dir, out) = misbehaving(how, &[]);
        let root = dir.path();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{how}: {err}");
        assert_eq!(text(&out.stdout), "before\n", "{how}");
        assert!(err.contains(says), "{how}: {err}");
        let end = records(&root.join("a.log"))
            .into_iter()
            .find(|r| r["op"] == "run.end")
            .unwrap();
        assert_eq!(end["reason"], "worker crashed", "{how}: {end}");
        assert!(
            end["crash"].as_str().unwrap().contains(says),
            "{how}: {end}"
        );
        let verify = crate::v8box(root, &["audit", "verify", "a.log"]);
        assert_eq!(
            verify.status.code(),
            Some(0),
            "{how}: {}",
            text(&verify.stdout)
        );
    }
}

#[test]
fn the_time_zone_is_the_hosts_in_both_isolations() {
    // The worker reads no files (no /etc/localtime) and gets no environment but its zone.
    let dir = tmp();
    write(
        dir.path(),
        "main.js",
        "$print(new Date(0).toString() + ' ' + Intl.DateTimeFormat().resolvedOptions().timeZone);",
    );
    for isolation in ["--isolation=process", "--isolation=thread"] {
        let out = Command::new(env!("CARGO_BIN_EXE_v8box"))
            .args(["run", isolation, "main.js"])
            .current_dir(dir.path())
            .env("TZ", "Europe/Berlin")
            .output()
            .unwrap();
        assert_eq!(
            text(&out.stdout),
            "Thu Jan 01 1970 01:00:00 GMT+0100 (Central European Standard Time) Europe/Berlin\n",
            "{isolation}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn the_default_locale_is_the_hosts_in_both_isolations() {
    let dir = tmp();
    write(
        dir.path(),
        "main.js",
        "$print(Intl.DateTimeFormat().resolvedOptions().locale + ' ' + (1234.5).toLocaleString());",
    );
    for isolation in ["--isolation=process", "--isolation=thread"] {
        let out = Command::new(env!("CARGO_BIN_EXE_v8box"))
            .args(["run", isolation, "main.js"])
            .current_dir(dir.path())
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", "de_DE.UTF-8")
            .output()
            .unwrap();
        assert_eq!(
            text(&out.stdout),
            "de-DE 1.234,5\n",
            "{isolation}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn where_a_memory_cgroup_can_be_made_the_kernel_bounds_the_workers_memory() {
    // A taken-over worker (the probe's `misbehave:balloon`) takes memory outside V8 without end
    // and heeds no stop: where this machine lets v8box make a memory cgroup, the kernel ends it
    // at its limit (twice --max-heap plus slack), before the watchdog's grace is over, and the
    // run ends for its heap limit; the limit is in the run's start record.
    if !v8box::isolation::kernel_memory_limit_available() {
        eprintln!("no memory cgroup can be made here: the watchdog alone bounds a worker");
        return;
    }
    let (dir, out) = misbehaving("balloon", &["--max-heap=32"]);
    let root = dir.path();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(text(&out.stdout), "before\n");
    assert!(
        err.contains("the kernel killed its worker process at its memory limit"),
        "{err}"
    );
    let log = records(&root.join("a.log"));
    let start = log.iter().find(|r| r["op"] == "run.start").unwrap();
    let limit = start["isolation"]["memory_limit_bytes"].as_u64().unwrap();
    assert!(limit >= 64 << 20, "{start}");
    let end = log.iter().find(|r| r["op"] == "run.end").unwrap();
    assert_eq!(end["reason"], "heap limit", "{end}");
    assert_eq!(end["abandoned"], true, "{end}");
    let verify = crate::v8box(root, &["audit", "verify", "a.log"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
}
