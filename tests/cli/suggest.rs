//! `v8box policy suggest`: the policy a recorded run needed, checked by running under it.

use crate::*;

/// Reads two files of one folder and one elsewhere, writes one, reads a variable and fetches
/// from a local port: each denied (or allowed) call prints what happened.
fn script(port: u16) -> String {
    format!(
        r#"
        for (const f of ['data/a.txt', 'data/b.txt', 'solo.txt']) {{
            try {{ await sys.readTextFile(f); }} catch (e) {{ $print(e.name, f); }}
        }}
        try {{ await sys.writeFile('out/r.txt', 'x'); }} catch (e) {{ $print(e.name, 'write'); }}
        try {{ sys.env.get('V8BOX_SUGGEST'); }} catch (e) {{ $print(e.name, 'env'); }}
        try {{ await sys.fetch('http://127.0.0.1:{port}/x'); }} catch (e) {{ $print(e.name, 'fetch'); }}
        "#
    )
}

/// A local port nothing listens on (a fetch there is refused by the kernel, not by v8box).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn setup() -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data/a.txt", "a");
    write(dir.path(), "data/b.txt", "b");
    write(dir.path(), "solo.txt", "c");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    (dir, closed_port())
}

fn denials(log: &std::path::Path) -> Vec<String> {
    records(log)
        .iter()
        .filter(|r| r["decision"] == "deny")
        .map(|r| format!("{} {}", r["op"], r["resource"]))
        .collect()
}

#[test]
fn a_suggested_policy_allows_what_the_run_asked_for_and_nothing_else() {
    let (dir, port) = setup();
    let d = dir.path();
    let (code, out, err) = run_js(
        d,
        &["--audit=first.log", "--allow-read=data/a.txt"],
        &script(port),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("PermissionDenied data/b.txt") && out.contains("PermissionDenied fetch"),
        "{out}"
    );
    assert!(!denials(&d.join("first.log")).is_empty());

    let sug = v8box(d, &["policy", "suggest", "--audit", "first.log"]);
    assert_eq!(sug.status.code(), Some(0), "{}", text(&sug.stderr));
    let policy = text(&sug.stdout);
    write(d, "suggested.toml", &policy);
    let root = std::fs::canonicalize(d).unwrap().display().to_string();
    // The narrowest grants: the folder of two siblings, the lone file itself, with comments
    // naming the records.
    assert!(policy.contains(&format!("\"{root}/data\",")), "{policy}");
    assert!(
        policy.contains(&format!("\"{root}/solo.txt\",")),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("\"{root}/out/r.txt\",")),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("\"127.0.0.1:{port}\",")),
        "{policy}"
    );
    assert!(policy.contains("\"V8BOX_SUGGEST\","), "{policy}");
    assert!(
        policy.contains("# seq 2, 3 (fs.readFile allow, fs.readFile deny)"),
        "{policy}"
    );
    assert!(
        policy.contains("[quotas.\"fs.readFile\"]\ncalls = 16\n"),
        "{policy}"
    );

    let check = v8box(d, &["policy", "check", "suggested.toml"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));

    // The same script under it: no denial.
    let (code, out, err) = run_js(
        d,
        &["--audit=second.log", "--policy=suggested.toml"],
        &script(port),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("PermissionDenied"), "{out}");
    assert_eq!(denials(&d.join("second.log")), Vec::<String>::new());
    // What the script did not touch is still denied.
    for (op, resource) in [
        ("read", "/etc/passwd".to_string()),
        ("read", format!("{root}/other.txt")),
        ("write", format!("{root}/data/a.txt")),
        ("write", format!("{root}/out/other.txt")),
        ("env", "HOME".to_string()),
        (
            "net",
            format!("http://127.0.0.1:{}/", port.wrapping_add(1).max(1)),
        ),
        ("net", "http://example.com/".to_string()),
    ] {
        let out = v8box(d, &["policy", "explain", "suggested.toml", op, &resource]);
        let said = text(&out.stdout);
        assert!(said.starts_with("deny "), "{op} {resource}: {said}");
    }
}

#[test]
fn suggest_takes_one_run_and_names_a_run_that_is_not_there() {
    let (dir, port) = setup();
    let d = dir.path();
    run_js(
        d,
        &["--audit=a.log"],
        "try { sys.env.get('FIRST_RUN'); } catch (e) {}",
    );
    let second = records(&d.join("a.log")).len() + 1;
    let (code, _, err) = run_js(d, &["--audit=a.log"], &script(port));
    assert_eq!(code, 0, "{err}");
    let all = text(&v8box(d, &["policy", "suggest", "--audit", "a.log"]).stdout);
    assert!(
        all.contains("FIRST_RUN") && all.contains("V8BOX_SUGGEST"),
        "{all}"
    );
    let n = second.to_string();
    let one = v8box(d, &["policy", "suggest", "--audit", "a.log", "--run", &n]);
    assert_eq!(one.status.code(), Some(0));
    let one = text(&one.stdout);
    assert!(
        !one.contains("FIRST_RUN") && one.contains("V8BOX_SUGGEST"),
        "{one}"
    );
    let bad = v8box(d, &["policy", "suggest", "--audit", "a.log", "--run", "2"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains(&format!(
            "--run 2: no run of the log starts at seq 2 (runs start at seq 1, {n})"
        )),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn a_copy_is_suggested_a_read_of_its_from_and_a_write_of_its_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "src/x.txt", "x");
    std::fs::create_dir(d.join("dst")).unwrap();
    let script = "try { await sys.copyFile('src/x.txt', 'dst/y.txt'); $print('copied'); } catch (e) { $print(e.name); }";
    let (code, out, err) = run_js(d, &["--audit=first.log"], script);
    assert_eq!((code, out.as_str()), (0, "PermissionDenied\n"), "{err}");
    let sug = v8box(d, &["policy", "suggest", "--audit", "first.log"]);
    assert_eq!(sug.status.code(), Some(0), "{}", text(&sug.stderr));
    let policy = text(&sug.stdout);
    let root = std::fs::canonicalize(d).unwrap().display().to_string();
    let (read, write_at) = (
        policy.find(&format!("\"{root}/src/x.txt\",")),
        policy.find(&format!("\"{root}/dst/y.txt\",")),
    );
    assert!(read.is_some() && write_at.is_some(), "{policy}");
    assert!(
        policy
            .find("write = [")
            .is_some_and(|w| read < Some(w) && Some(w) < write_at),
        "{policy}"
    );
    write(d, "suggested.toml", &policy);
    let (code, out, err) = run_js(
        d,
        &["--audit=second.log", "--policy=suggested.toml"],
        script,
    );
    assert_eq!((code, out.as_str()), (0, "copied\n"), "{err}");
    assert!(denials(&d.join("second.log")).is_empty());
}
