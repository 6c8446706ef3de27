//! `sys.stdin`: the process's stdin as a byte stream, only with --allow-stdin (or
//! `[stdin] allow = true`), each read audited.

use super::{records, text, v8box, v8box_with_stdin, write};

#[test]
fn stdin_is_readable_as_chunks_bytes_and_text_with_the_grant_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "count.js",
        "let n = 0, chunks = 0;\nfor await (const c of sys.stdin) { n += c.length; chunks++; if (!(c instanceof Uint8Array)) throw new Error('not bytes'); }\nconsole.log(n, chunks > 1);\n",
    );
    let big = vec![b'x'; 200_000];
    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--allow-stdin", "--audit=audit.jsonl", "count.js"],
        &big,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "200000 true");
    let reads: Vec<_> = records(&dir.path().join("audit.jsonl"))
        .into_iter()
        .filter(|r| r["op"] == "stdin.read")
        .collect();
    assert!(reads.len() >= 2, "{reads:?}");
    assert!(
        reads
            .iter()
            .all(|r| r["decision"] == "allow" || r["allowed"] == true),
        "{reads:?}"
    );

    write(dir.path(), "upper.js", "const t = await sys.stdin.text();\nconsole.log(t.toUpperCase().trim());\nconsole.log((await sys.stdin.read()).length);\n");
    write(dir.path(), "policy.toml", "[stdin]\nallow = true\n");
    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--policy=policy.toml", "upper.js"],
        "héllo wörld\n".as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "HÉLLO WÖRLD\n0\n");
}

#[test]
fn stdin_without_the_grant_is_denied_naming_the_flag_and_refused_with_run_dash() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "read.js", "await sys.stdin.text();\n");
    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--audit=audit.jsonl", "read.js"],
        b"secret input",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("PermissionDenied") && err.contains("--allow-stdin"),
        "{err}"
    );
    assert!(!err.contains("secret input"));
    let denied: Vec<_> = records(&dir.path().join("audit.jsonl"))
        .into_iter()
        .filter(|r| r["op"] == "stdin.read")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["outcome"], "PERMISSION_DENIED");

    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--allow-stdin", "-"],
        b"console.log(1)",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--allow-stdin cannot be used with `run -`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn policy_explain_test_and_suggest_know_stdin_read_as_the_stdin_permission() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "allow.toml", "[stdin]\nallow = true\n");
    write(dir.path(), "empty.toml", "");
    let explain = |policy: &str, op: &str| {
        let out = v8box(dir.path(), &["policy", "explain", policy, op, "stdin"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(
        explain("allow.toml", "stdin.read"),
        "allow stdin.read \"stdin\" (rule: stdin: --allow-stdin or [stdin] allow)\n"
    );
    assert_eq!(
        explain("empty.toml", "stdin.read"),
        "deny stdin.read \"stdin\" (rule: default deny; allow with --allow-stdin or [stdin] allow = true)\n"
    );
    assert!(explain("allow.toml", "stdin").starts_with("allow"));

    // A recorded read is replayed: allowed by the grant, denied without it.
    write(
        dir.path(),
        "read.js",
        "console.log((await sys.stdin.text()).length);\n",
    );
    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--allow-stdin", "--audit=audit.jsonl", "read.js"],
        b"abc",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let same = v8box(
        dir.path(),
        &["policy", "test", "allow.toml", "--audit", "audit.jsonl"],
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}{}",
        text(&same.stdout),
        text(&same.stderr)
    );
    assert!(
        text(&same.stdout).starts_with("no decision changes"),
        "{}",
        text(&same.stdout)
    );
    let changed = v8box(
        dir.path(),
        &["policy", "test", "empty.toml", "--audit", "audit.jsonl"],
    );
    assert_eq!(
        changed.status.code(),
        Some(1),
        "{}{}",
        text(&changed.stdout),
        text(&changed.stderr)
    );
    let report = text(&changed.stdout);
    assert!(
        report.contains("stdin.read \"stdin\": allow → deny (now by: default deny"),
        "{report}"
    );

    // The suggested policy grants it, and a run under it reads stdin.
    let out = v8box(dir.path(), &["policy", "suggest", "--audit", "audit.jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let suggested = text(&out.stdout);
    assert!(suggested.contains("[stdin]\n# seq "), "{suggested}");
    assert!(suggested.contains("[quotas.\"stdin.read\"]"), "{suggested}");
    write(dir.path(), "suggested.toml", &suggested);
    let out = v8box_with_stdin(
        dir.path(),
        &["run", "--policy=suggested.toml", "read.js"],
        b"abcd",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "4\n");
}
