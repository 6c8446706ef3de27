//! The audit log tells the truth: records keep what identifies a resource, the tools print a
//! script's names escaped, replays decide from structured fields, and `verify` reports a log
//! that is not whole.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::*;

/// (exit code, stdout, stderr) of `v8box ARGS` in `dir`.
fn tool(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = v8box(dir, args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The records of `log` in `dir` whose `op` is `op`.
fn of_op(dir: &Path, log: &str, op: &str) -> Vec<serde_json::Value> {
    records(&dir.join(log))
        .into_iter()
        .filter(|r| r["op"] == op)
        .collect()
}

#[test]
fn a_fetch_with_a_long_url_keeps_its_scheme_host_and_port() {
    let dir = tempfile::tempdir().unwrap();
    // Allowed (nothing listens on port 1: intent, then outcome NETWORK) and denied, each with
    // a path that makes the URL longer than a record keeps.
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.log", "--allow-net=127.0.0.1:1"],
        "const long = 'p'.repeat(5000);\n\
         for (const url of ['http://127.0.0.1:1/' + long, 'https://Example.COM/' + long]) {\n\
           try { await sys.fetch(url); } catch (e) { $print(e.code); }\n\
         }",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "NETWORK\nPERMISSION_DENIED\n"),
        "{err}"
    );
    let fetches = of_op(dir.path(), "audit.log", "net.fetch");
    let seen: Vec<(&str, &str, &str, &str, u64)> = fetches
        .iter()
        .map(|r| {
            assert!(
                r["resource"].as_str().unwrap().ends_with(" bytes in all)"),
                "the URL is cut: {r}"
            );
            (
                r["kind"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
                r["scheme"].as_str().unwrap_or("-"),
                r["host"].as_str().unwrap_or("-"),
                r["port"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("intent", "allow", "http", "127.0.0.1", 1),
            ("outcome", "allow", "http", "127.0.0.1", 1),
            ("call", "deny", "https", "example.com", 443),
        ]
    );
    // The cut URLs no longer hide what was decided: a policy that grants example.com changes
    // the denial, one without 127.0.0.1:1 the allowed fetch.
    write(dir.path(), "p.toml", "[net]\nallow = [\"example.com\"]\n");
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "p.toml", "--audit", "audit.log"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("net.fetch \"http://127.0.0.1:1/ppp"), "{out}");
    assert!(
        out.contains(": allow → deny (now by: default deny"),
        "{out}"
    );
    assert!(
        out.contains(": deny → allow (now by: p.toml:2 [net] allow"),
        "{out}"
    );
    assert!(out.ends_with("2 of 2 decisions would change\n"), "{out}");
}

/// A path of about 2,200 bytes under `w/`, in components short enough for any file system.
fn long_path(name: &str) -> String {
    format!("w/{}{name}", format!("{}/", "d".repeat(200)).repeat(11))
}

#[test]
fn a_rename_keeps_both_paths_however_long() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (long_path("from.txt"), long_path("to.txt"));
    let script = format!(
        "try {{ await sys.rename('{from}', '{to}'); }} catch (e) {{ $print(e.code); }}\n\
         try {{ await sys.rename('{from}', '/etc/{}'); }} catch (e) {{ $print(e.code); }}",
        "e".repeat(2200)
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.log", "--allow-write=w"],
        &script,
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "NOT_FOUND\nPERMISSION_DENIED\n"),
        "{err}"
    );
    let at = |p: &str| {
        dir.path()
            .canonicalize()
            .unwrap()
            .join(p)
            .display()
            .to_string()
    };
    let renames = of_op(dir.path(), "audit.log", "fs.rename");
    let seen: Vec<(&str, &str, String, String)> = renames
        .iter()
        .map(|r| {
            assert!(
                r["resource"].as_str().unwrap().ends_with(" bytes in all)"),
                "{r}"
            );
            (
                r["kind"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
                r["from"].as_str().unwrap_or("-").to_string(),
                r["to"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let etc = format!("/etc/{}", "e".repeat(2200));
    assert_eq!(
        seen,
        [
            ("intent", "allow", at(&from), at(&to)),
            ("outcome", "allow", at(&from), at(&to)),
            ("call", "deny", at(&from), etc),
        ]
    );
    // Replayed from its two paths: the same policy changes nothing, one that grants only
    // `from`'s side denies the allowed rename by `to`'s.
    write(dir.path(), "same.toml", "[fs]\nwrite = [\"w\"]\n");
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "same.toml", "--audit", "audit.log"],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "no decision changes (2 calls replayed)\n"),
        "{err}"
    );
    let from_dir = format!("w/{}", "d".repeat(200));
    write(
        dir.path(),
        "narrow.toml",
        &format!(
            "[fs]\nwrite = [\"{from_dir}/{}/from.txt\"]\n",
            format!("{}/", "d".repeat(200))
                .repeat(10)
                .trim_end_matches('/')
        ),
    );
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "narrow.toml", "--audit", "audit.log"],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(": allow → deny (now by: default deny"),
        "{out}"
    );
    assert!(out.ends_with("1 of 2 decisions would change\n"), "{out}");
}

#[test]
fn policy_test_replays_a_rename_whose_path_contains_an_arrow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("w/x -> /etc")).unwrap();
    write(dir.path(), "w/x -> /etc/y", "moved");
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.log", "--allow-write=w"],
        "await sys.rename('w/x -> /etc/y', 'w/z'); $print('renamed');",
    );
    assert_eq!((code, out.as_str()), (0, "renamed\n"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("w/z")).unwrap(),
        "moved"
    );
    // The same policy decides the same: both paths are under w (`/etc/y` is no path of it).
    write(dir.path(), "p.toml", "[fs]\nwrite = [\"w\"]\n");
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "p.toml", "--audit", "audit.log"],
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "no decision changes (1 calls replayed)\n", "")
    );
    // A record without `from` and `to` (an older log) is skipped, and said so, not guessed.
    let old: String = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            let r = r.as_object_mut().unwrap();
            r.remove("from");
            r.remove("to");
            serde_json::to_string(r).unwrap() + "\n"
        })
        .collect();
    write(dir.path(), "old.log", &old);
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "p.toml", "--audit", "old.log"],
    );
    // Rewritten without its chain, the log does not verify, and `policy test` says so (exit 1).
    assert_eq!(
        (code, out.as_str()),
        (1, "no decision changes (0 calls replayed)\n"),
        "{err}"
    );
    assert!(
        // Line 2: the rename, the record that was changed.
        err.contains("warning: old.log does not verify: line 2"),
        "{err}"
    );
    assert!(
        err.contains("fs.rename \"")
            && err.contains(
                "cannot replay: a rename recorded without its \"from\" and \"to\" fields"
            ),
        "{err}"
    );
}

/// A name with an escape sequence, a carriage return, a bidi override and a line separator.
const HOSTILE: &str = "e\u{1b}[2J\u{1b}]0;owned\u{7}\r\u{202e}txt.exe\u{2028}\u{9b}x";
const HOSTILE_SHOWN: &str = "e\\x1b[2J\\x1b]0;owned\\x07\\r\\u{202e}txt.exe\\u{2028}\\u{9b}x";

/// Whether `s` has a raw control character, bidi override or line separator in it.
fn raw_controls(s: &str) -> bool {
    s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2028}' | '\u{2029}')
    })
}

#[test]
fn the_tools_print_a_scripts_names_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "try {{ await sys.writeFile({:?}, 'x'); }} catch (e) {{ $print(e.code); }}",
        format!("w/{HOSTILE}")
    );
    let (code, _, err) = run_js(
        dir.path(),
        &["--audit=audit.log", "--allow-write=w"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = tool(
        dir.path(),
        &["audit", "show", "audit.log", "--op", "fs.writeFile"],
    );
    assert_eq!(code, 0);
    assert!(!raw_controls(&out), "{out:?}");
    assert!(out.contains("\\x1b[2J"), "{out}");
    // `policy test` names the changed decision's resource.
    write(dir.path(), "none.toml", "[fs]\nread = [\"/nowhere\"]\n");
    let (code, out, err) = tool(
        dir.path(),
        &["policy", "test", "none.toml", "--audit", "audit.log"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        !raw_controls(&out) && !raw_controls(&err),
        "{out:?} {err:?}"
    );
    assert!(out.contains(HOSTILE_SHOWN), "{out}");
    // `policy explain` echoes a resource given on its command line, in both verdicts.
    for policy in ["none.toml", "all.toml"] {
        write(dir.path(), "all.toml", "[fs]\nwrite = [\"/\"]\n");
        let (code, out, err) = tool(
            dir.path(),
            &[
                "policy",
                "explain",
                policy,
                "write",
                &format!("/w/{HOSTILE}"),
            ],
        );
        assert_eq!(code, 0, "{err}");
        assert!(!raw_controls(&out), "{out:?}");
        assert!(out.contains(&format!("\"/w/{HOSTILE_SHOWN}\"")), "{out}");
    }
    // `audit verify` names an intent left open by a cut tail.
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let intent = lines
        .iter()
        .position(|l| l.contains("\"kind\":\"intent\""))
        .unwrap();
    write(dir.path(), "cut.log", &(lines[..=intent].join("\n") + "\n"));
    let (code, out, err) = tool(dir.path(), &["audit", "verify", "cut.log"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        !raw_controls(&out) && !raw_controls(&err),
        "{out:?} {err:?}"
    );
    assert!(
        out.contains(&format!("/w/{HOSTILE_SHOWN}) has no outcome")),
        "{out}"
    );
}

/// A run that writes a file; returns the log's lines.
fn a_writing_run(dir: &Path, log: &str) -> Vec<String> {
    let flags = [format!("--audit={log}"), "--allow-write=.".to_string()];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, _, err) = run_js(
        dir,
        &flags,
        "await sys.writeFile('x.txt', 'x'); $print('done');",
    );
    assert_eq!(code, 0, "{err}");
    std::fs::read_to_string(dir.join(log))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn verify_reports_a_log_whose_tail_was_cut_at_a_line_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let lines = a_writing_run(dir.path(), "audit.log");
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert_eq!(
        kinds,
        ["\"run_start\"", "\"intent\"", "\"outcome\"", "\"run_end\""]
    );
    let (code, out, _) = tool(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!((code, out.as_str()), (0, "ok: 4 records\n"));
    let x = dir.path().canonicalize().unwrap().join("x.txt");
    // Without run_end; without the write's outcome too.
    write(dir.path(), "cut.log", &(lines[..3].join("\n") + "\n"));
    let (code, out, err) = tool(dir.path(), &["audit", "verify", "cut.log"]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "cut.log: run started at seq 1 (worker main) has no run_end\n"
        ),
        "{err}"
    );
    write(dir.path(), "cut.log", &(lines[..2].join("\n") + "\n"));
    let (code, out, err) = tool(dir.path(), &["audit", "verify", "cut.log"]);
    assert_eq!(
        (code, out),
        (
            1,
            format!(
                "cut.log: run started at seq 1 (worker main) has no run_end\n\
                 cut.log: intent seq 2 (fs.writeFile {}) has no outcome\n",
                x.display()
            )
        ),
        "{err}"
    );
    assert!(err.contains("incomplete"), "{err}");
}

#[test]
fn verify_pairs_each_run_of_a_shared_log_with_its_own_end() {
    let dir = tempfile::tempdir().unwrap();
    a_writing_run(dir.path(), "audit.log");
    let lines = a_writing_run(dir.path(), "audit.log");
    assert_eq!(lines.len(), 8);
    let recs = records(&dir.path().join("audit.log"));
    // Each run_end names its run_start.
    assert_eq!(
        (recs[3]["run"].as_u64(), recs[7]["run"].as_u64()),
        (Some(1), Some(5))
    );
    let (code, out, _) = tool(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!((code, out.as_str()), (0, "ok: 8 records\n"));
    // The second run's end gone: the first run is whole, the second is not.
    write(dir.path(), "cut.log", &(lines[..7].join("\n") + "\n"));
    let (code, out, _) = tool(dir.path(), &["audit", "verify", "cut.log"]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "cut.log: run started at seq 5 (worker main) has no run_end\n"
        )
    );
}

#[test]
fn a_log_still_being_written_is_said_to_be_and_has_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "main.js",
        "await sys.writeFile('x.txt', 'x');\n$print('written');\nwhile (true) {}\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(["run", "--audit=audit.log", "--allow-write=.", "main.js"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "written\n");
    let (verified, second) = (
        tool(dir.path(), &["audit", "verify", "audit.log"]),
        run_js(dir.path(), &["--audit=audit.log"], "$print('second')"),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, out, _) = verified;
    assert_eq!(code, 1);
    assert!(out.starts_with("audit.log: still being written"), "{out}");
    // A second writer would fork the chain: it is refused, and the log is left as it was.
    let (code, out, err) = second;
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("is being written by another audit log"),
        "{err}"
    );
    // Once its writer is gone (killed), what it left open is reported.
    let (code, out, _) = tool(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("audit.log: run started at seq 1 (worker main) has no run_end\n"),
        "{out}"
    );
}
