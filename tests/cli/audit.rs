//! The audit log and policy tools: `run --audit`, `audit verify/show`, `policy check/test/explain`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::*;

const SCRIPT: &str = r#"
    await sys.writeFile('out.txt', 'TOP-SECRET-CONTENT');
    const back = await sys.readTextFile('out.txt');
    const home = sys.env.get('V8BOX_SECRET_ENV');
    try { await sys.readFile('/etc/passwd'); } catch (e) {}
    $print(back.length, home.length);
"#;

fn recorded_run(dir: &std::path::Path) -> std::path::PathBuf {
    write(dir, "main.js", SCRIPT);
    let out = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args([
            "run",
            "--audit=audit.log",
            "--allow-read=.",
            "--allow-write=.",
            "--allow-env=V8BOX_SECRET_ENV",
            "main.js",
        ])
        .env("V8BOX_SECRET_ENV", "ENV-SECRET-VALUE")
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    dir.join("audit.log")
}

#[test]
fn every_decision_is_recorded_with_its_rule_and_nothing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = recorded_run(dir.path());
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(
        !raw.contains("TOP-SECRET-CONTENT"),
        "file contents leaked into the log"
    );
    assert!(
        !raw.contains("ENV-SECRET-VALUE"),
        "an env value leaked into the log"
    );

    let recs = records(&log);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64 + 1);
        for key in [
            "ts",
            "worker",
            "op",
            "resource",
            "decision",
            "rule",
            "outcome",
            "bytes_in",
            "bytes_out",
            "dur_us",
            "prev",
            "hash",
        ] {
            assert!(r.get(key).is_some(), "record {i} lacks {key}: {r}");
        }
        let ts = r["ts"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == "2026-11-21T16:13:59.349942Z".len(),
            "{ts}"
        );
    }
    let first = &recs[0];
    assert_eq!(first["op"], "run.start");
    assert_eq!(first["policy_digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        first["script_sha256"].as_str().unwrap(),
        v8box::audit::sha256_hex(SCRIPT.as_bytes())
    );
    let last = recs.last().unwrap();
    assert_eq!(
        (
            last["op"].as_str(),
            last["outcome"].as_str(),
            last["exit_code"].as_i64()
        ),
        (Some("run.end"), Some("ok"), Some(0))
    );

    // The write: announced before it ran (intent), then its outcome, linked by seq.
    let intent = recs
        .iter()
        .find(|r| r["kind"] == "intent" && r["op"] == "fs.writeFile")
        .unwrap();
    assert_eq!(intent["outcome"], "pending");
    assert_eq!(intent["rule"], "--allow-write=.");
    assert_eq!(intent["bytes_in"], 18);
    assert_eq!(
        intent["sha256"],
        v8box::audit::sha256_hex(b"TOP-SECRET-CONTENT")
    );
    let outcome = recs
        .iter()
        .find(|r| r["kind"] == "outcome" && r["op"] == "fs.writeFile")
        .unwrap();
    assert_eq!(outcome["ref"], intent["seq"]);
    assert_eq!(outcome["outcome"], "ok");

    let env = recs.iter().find(|r| r["op"] == "env.get").unwrap();
    assert_eq!(
        (env["resource"].as_str(), env["rule"].as_str()),
        (
            Some("V8BOX_SECRET_ENV"),
            Some("--allow-env=V8BOX_SECRET_ENV")
        )
    );
    let denied = recs.iter().find(|r| r["decision"] == "deny").unwrap();
    assert_eq!(denied["op"], "fs.readFile");
    assert_eq!(denied["resource"], "/etc/passwd");
    assert_eq!(denied["rule"], "default deny");
    assert_eq!(denied["outcome"], "PERMISSION_DENIED");

    let out = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("ok: {} records\n", recs.len()));

    let out = v8box(dir.path(), &["audit", "show", "audit.log", "--denied"]);
    let table = text(&out.stdout);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.contains("/etc/passwd") && table.contains("default deny"),
        "{table}"
    );
}

fn verify_after(dir: &std::path::Path, edit: impl FnOnce(&mut Vec<String>)) -> (i32, String) {
    let log = dir.join("audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    edit(&mut lines);
    std::fs::write(dir.join("edited.log"), lines.join("\n") + "\n").unwrap();
    let out = v8box(dir, &["audit", "verify", "edited.log"]);
    (out.status.code().unwrap(), text(&out.stdout))
}

#[test]
fn verify_catches_edits_deletions_swaps_and_a_cut_last_line() {
    let dir = tempfile::tempdir().unwrap();
    recorded_run(dir.path());
    let (code, msg) = verify_after(dir.path(), |l| l[2] = l[2].replace("\"allow\"", "\"deny\""));
    assert_eq!(code, 1);
    assert!(msg.starts_with("edited.log:3: "), "{msg}");
    let (code, msg) = verify_after(dir.path(), |l| {
        l.remove(3);
    });
    assert_eq!(code, 1);
    assert!(msg.starts_with("edited.log:4: "), "{msg}");
    let (code, msg) = verify_after(dir.path(), |l| l.swap(2, 3));
    assert_eq!(code, 1);
    assert!(msg.starts_with("edited.log:3: "), "{msg}");
    // A byte edited in the very last line.
    let (code, msg) = verify_after(dir.path(), |l| {
        let last = l.last_mut().unwrap();
        *last = last.replacen("run.end", "run.enD", 1);
    });
    assert_eq!(code, 1);
    assert!(msg.contains("changed"), "{msg}");

    let log = std::fs::read(dir.path().join("audit.log")).unwrap();
    std::fs::write(dir.path().join("cut.log"), &log[..log.len() - 10]).unwrap();
    let out = v8box(dir.path(), &["audit", "verify", "cut.log"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out.stdout);
    assert!(msg.contains("cut short"), "{msg}");
}

#[test]
fn a_write_survives_sigkill_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "main.js",
        "await sys.writeFile('before-kill.txt', 'x');\n$print('written');\nwhile (true) {}\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(["run", "--audit=audit.log", "--allow-write=.", "main.js"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "written\n");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(dir.path().join("before-kill.txt").exists());
    let recs = records(&dir.path().join("audit.log"));
    let write = recs
        .iter()
        .find(|r| r["op"] == "fs.writeFile" && r["kind"] == "intent")
        .expect("the write is in the log");
    assert!(write["resource"]
        .as_str()
        .unwrap()
        .ends_with("before-kill.txt"));
    assert!(!recs.iter().any(|r| r["op"] == "run.end"));
    // The chain holds, and verify says what the kill left open: the run, and the write whose
    // outcome was still in memory.
    let out = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "audit.log: run started at seq 1 (worker main) has no run_end\n\
             audit.log: intent seq {} (fs.writeFile {}) has no outcome\n",
            write["seq"],
            write["resource"].as_str().unwrap()
        )
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn run_end_records_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str, i64); 4] = [
        ("throw new Error('x')", &[], "error", 1),
        ("sys.exit(5)", &[], "exit()", 5),
        ("while (true) {}", &["--timeout=100"], "timeout", 3),
        (
            "const a = []; while (true) a.push(new Array(1e5).fill(1));",
            &["--max-heap=64"],
            "heap limit",
            4,
        ),
    ];
    for (i, (script, flags, reason, code)) in cases.into_iter().enumerate() {
        let log = format!("--audit=run{i}.log");
        let mut all = vec![log.as_str()];
        all.extend_from_slice(flags);
        let (exit, _, err) = run_js(dir.path(), &all, script);
        assert_eq!(exit as i64, code, "{script}: {err}");
        let recs = records(&dir.path().join(format!("run{i}.log")));
        let end = recs.last().unwrap();
        assert_eq!(
            (end["op"].as_str(), end["outcome"].as_str()),
            (Some("run.end"), Some(reason)),
            "{script}"
        );
        assert_eq!(end["exit_code"], code);
    }
}

#[test]
fn a_script_faster_than_its_log_loses_no_record() {
    // More calls than the writer's queue holds (16,384): the script waits for the writer.
    let dir = tempfile::tempdir().unwrap();
    let (exit, _, err) = run_js(
        dir.path(),
        &["--audit=audit.log", "--allow-env=HOME"],
        "for (let i = 0; i < 40000; i++) try { sys.env.get(i % 2 ? 'HOME' : 'NOT_ALLOWED') } catch {}",
    );
    assert_eq!(exit, 0, "{err}");
    let out = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(text(&out.stdout), "ok: 40002 records\n");
    let recs = records(&dir.path().join("audit.log"));
    let denied = recs.iter().filter(|r| r["decision"] == "deny").count();
    assert_eq!(denied, 20000);
    assert!(recs
        .windows(2)
        .all(|w| w[0]["ts"].as_str() <= w[1]["ts"].as_str()));
}

#[test]
fn a_second_run_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    run_js(dir.path(), &["--audit=audit.log"], "sys.now()");
    run_js(dir.path(), &["--audit=audit.log"], "sys.now()");
    let out = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(text(&out.stdout), "ok: 6 records\n");
}

#[test]
fn a_huge_resource_is_refused_or_recorded_cut_so_the_log_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "main.js",
        "for (const call of [() => sys.readFile('x'.repeat(1e6)), () => sys.env.get('E'.repeat(1e6)),\n\
                             () => sys.readFile(''), () => sys.readFile('a\\0b')]) {\n\
           try { await call(); } catch (e) { $print(e.code, e.message.slice(0, 70)); }\n\
         }",
    );
    let out = v8box(dir.path(), &["run", "--audit=audit.log", "main.js"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "INVALID_ARGUMENT fs.readFile: the path is 1000000 bytes long; no path is longer than 40\n\
         PERMISSION_DENIED env \"EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE\n\
         INVALID_ARGUMENT fs.readFile: the path must not be empty\n\
         INVALID_ARGUMENT fs.readFile \"a\\0b\": the path contains a NUL byte\n"
    );
    let log = dir.path().join("audit.log");
    assert!(
        std::fs::metadata(&log).unwrap().len() < 20_000,
        "two 1 MB names cut"
    );
    let recs = records(&log);
    let resources: Vec<&str> = recs
        .iter()
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    // run.start, four calls (each denied or refused, and recorded), run.end.
    assert_eq!(resources.len(), 6);
    assert!(resources[1].ends_with("x… (1000000 bytes in all)"));
    assert_eq!(resources[1].len(), 4096 + "… (1000000 bytes in all)".len());
    assert!(
        resources[2].starts_with("EEEE") && resources[2].ends_with("E… (1000000 bytes in all)")
    );
    assert_eq!((resources[3], resources[4]), ("", "a\0b"));
    let rules: Vec<&str> = recs.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules[1..5],
        [
            "invalid argument",
            "default deny",
            "invalid argument",
            "invalid argument"
        ]
    );
    let verified = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(text(&verified.stdout), "ok: 6 records\n");
    // A policy that allows every read and variable changes none of these decisions: the
    // invalid calls were never decided, and the cut name is not the name that was.
    write(
        dir.path(),
        "all.toml",
        "[fs]\nread = [\"/\"]\n[env]\nallow = [\"E*\"]\n",
    );
    let replay = v8box(
        dir.path(),
        &["policy", "test", "all.toml", "--audit", "audit.log"],
    );
    assert_eq!(
        text(&replay.stdout),
        "no decision changes (0 calls replayed)\n"
    );
}

#[test]
fn a_log_that_cannot_be_written_stops_the_run_at_its_first_call() {
    // `/dev/full` fails every write with ENOSPC, as a full disk does: the run's start is not
    // on record, so its first call is refused and the run stopped.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "main.js",
        "console.log('before');\n\
         try { await sys.writeFile('out.txt', 'x'); } catch (e) { console.log(e.message); }\n\
         console.log('after');",
    );
    let out = v8box(
        dir.path(),
        &["run", "--allow-write=.", "--audit", "/dev/full", "main.js"],
    );
    assert!(
        !dir.path().join("out.txt").exists(),
        "no side effect without its intent on disk"
    );
    assert_eq!(
        text(&out.stdout),
        "before\n",
        "nothing runs after the refused call"
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("audit log write failed: No space left on device"),
        "{err}"
    );
    assert!(
        err.contains("the run was stopped at its first call after it"),
        "{err}"
    );
}

#[test]
fn policy_check_normalizes_and_reports_bad_keys_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "good.toml",
        "[fs]\nread = [\"b\", \"a\"]\n[env]\nallow = [\"HOME\"]\n",
    );
    let out = v8box(dir.path(), &["policy", "check", "good.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    let base = dir.path().display();
    assert!(
        printed.contains(&format!("read = [\"{base}/a\", \"{base}/b\"]")),
        "{printed}"
    );
    assert!(printed.contains("allow = [\"HOME\"]"), "{printed}");

    write(
        dir.path(),
        "bad.toml",
        "[fs]\nread = [\"a\"]\n\n[net]\nalow = [\"x\"]\n",
    );
    let out = v8box(dir.path(), &["policy", "check", "bad.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml:5:1"), "{err}");
    assert!(
        err.contains("unknown field `alow`") && err.contains("expected `allow`"),
        "{err}"
    );
}

#[test]
fn policy_explain_names_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.toml",
        "[fs]\nread = [\"/data\"]\n\n[net]\nallow = [\"api.example.com:443\"]\n",
    );
    let explain = |op: &str, res: &str| {
        text(&v8box(dir.path(), &["policy", "explain", "p.toml", op, res]).stdout)
    };
    assert_eq!(
        explain("fs.readFile", "/data/x.csv"),
        "allow fs.readFile \"/data/x.csv\" (rule: p.toml:2 [fs] read)\n"
    );
    assert!(explain("fs.writeFile", "/data/x.csv").starts_with(
        "deny fs.writeFile \"/data/x.csv\" (rule: default deny; allow with --allow-write"
    ));
    assert!(explain("net.fetch", "https://api.example.com/v1").starts_with("allow"));
    assert!(explain("net.fetch", "http://api.example.com/v1").starts_with("deny"));
    assert!(explain("now", "").starts_with("allow"));
}

#[test]
fn policy_test_reports_exactly_the_changed_decisions() {
    let dir = tempfile::tempdir().unwrap();
    recorded_run(dir.path());
    // Same grants as the recorded flags: nothing changes.
    write(
        dir.path(),
        "same.toml",
        "[fs]\nread = [\".\"]\nwrite = [\".\"]\n[env]\nallow = [\"V8BOX_SECRET_ENV\"]\n",
    );
    let out = v8box(
        dir.path(),
        &["policy", "test", "same.toml", "--audit", "audit.log"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("no decision changes"));

    // Drop the env grant and allow /etc/passwd: exactly those two decisions flip.
    write(
        dir.path(),
        "changed.toml",
        "[fs]\nread = [\".\", \"/etc/passwd\"]\nwrite = [\".\"]\n",
    );
    let out = v8box(
        dir.path(),
        &["policy", "test", "changed.toml", "--audit", "audit.log"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 3, "{report}");
    assert!(
        lines[0].contains("env.get \"V8BOX_SECRET_ENV\": allow → deny (now by: default deny"),
        "{report}"
    );
    assert!(
        lines[1].contains(
            "fs.readFile \"/etc/passwd\": deny → allow (now by: changed.toml:2 [fs] read"
        ),
        "{report}"
    );
    assert_eq!(lines[2], "2 of 4 decisions would change");
}

/// Small regular files are read and written inside `$send`; a FIFO must not be, or a read with
/// no writer (a write with no reader) would freeze the script. Timers keep firing meanwhile.
#[test]
fn a_fifo_waits_on_the_io_pool_and_the_script_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["in.fifo", "out.fifo"] {
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join(name))
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
    }
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=.", "--allow-write=.", "--audit=audit.log"],
        r#"
        sys.readFile('in.fifo').then(() => $print('read?'));
        sys.writeFile('out.fifo', 'x').then(() => $print('written?'));
        setTimeout(() => { $print('timer fired'); sys.exit(0); }, 0);
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "timer fired\n");
    // The two calls never finished: the end of the run says so, and the write's intent is there.
    let recs = records(&dir.path().join("audit.log"));
    assert_eq!(recs.last().unwrap()["calls_unfinished"], 2);
    assert!(recs
        .iter()
        .any(|r| r["kind"] == "intent" && r["op"] == "fs.writeFile"));
}

#[test]
fn net_entries_are_host_and_port_and_explain_suggests_a_flag_that_run_accepts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.toml", "");
    let out = v8box(
        dir.path(),
        &[
            "policy",
            "explain",
            "empty.toml",
            "net.fetch",
            "http://example.com:8080/x?y",
        ],
    );
    let said = text(&out.stdout);
    assert!(
        said.contains("allow with --allow-net=example.com:8080 or [net] allow"),
        "{said}"
    );
    // The suggested flag is one `run` takes.
    let (code, _, err) = run_js(dir.path(), &["--allow-net=example.com:8080"], "");
    assert_eq!(code, 0, "{err}");

    write(
        dir.path(),
        "url.toml",
        "[net]\nallow = [\"https://api.example.com/v1\"]\n",
    );
    let out = v8box(dir.path(), &["policy", "check", "url.toml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(r#"expected HOST[:PORT], not a URL: "https://api.example.com/v1" (write "api.example.com:443")"#),
        "{err}"
    );
    let (code, _, err) = run_js(dir.path(), &["--allow-net=http://h.example/"], "");
    assert_eq!(code, 2);
    assert!(err.contains("expected HOST[:PORT], not a URL"), "{err}");

    write(
        dir.path(),
        "wild.toml",
        "[net]\nallow = [\"*.example.com\"]\n",
    );
    let out = v8box(dir.path(), &["policy", "check", "wild.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("wildcards are not supported"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn audit_show_has_dates_run_separators_wide_json_and_warns_of_an_unknown_op() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{}.txt", "a-long-file-name".repeat(4));
    for _ in 0..2 {
        let script = format!("try {{ await sys.readFile('{long}'); }} catch {{}}");
        let (code, _, err) = run_js(dir.path(), &["--audit=audit.log"], &script);
        assert_eq!(code, 0, "{err}");
    }
    let out = v8box(dir.path(), &["audit", "show", "audit.log"]);
    let table = text(&out.stdout);
    assert!(table.lines().next().unwrap().contains("DATE"), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("-----")).count(),
        1,
        "{table}"
    );
    assert!(!table.contains(&long), "{table}");
    let wide = text(&v8box(dir.path(), &["audit", "show", "audit.log", "--wide"]).stdout);
    assert!(wide.contains(&long), "{wide}");
    let json = text(
        &v8box(
            dir.path(),
            &["audit", "show", "audit.log", "--json", "--denied"],
        )
        .stdout,
    );
    let denied: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(denied.len(), 2, "{json}");
    assert!(denied
        .iter()
        .all(|r| r["op"] == "fs.readFile" && r["decision"] == "deny"));
    // Each row shows its record's date.
    let date = &denied[0]["ts"].as_str().unwrap()[..10];
    assert!(table.lines().nth(1).unwrap().contains(date), "{table}");
    let out = v8box(
        dir.path(),
        &["audit", "show", "audit.log", "--op", "readFile"],
    );
    assert!(
        text(&out.stderr).contains("warning: --op readFile: no operation has that name"),
        "{}",
        text(&out.stderr)
    );
    let out = v8box(
        dir.path(),
        &["audit", "show", "audit.log", "--op", "fs.readFile"],
    );
    assert_eq!(text(&out.stderr), "");
}
