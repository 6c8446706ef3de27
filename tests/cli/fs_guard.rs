//! Hostile scripts against the file system's guard rails: a nested grant redirected by a
//! rename inside a writable grant, the audit log under a write grant, and a write that fails
//! half-way (a full file system, here a file-size limit) over a file the user owns.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn verify(dir: &Path, log: &str) {
    let out = v8box(dir, &["audit", "verify", log]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// Every `call` or `outcome` record of `op` on `resource`.
fn finished<'a>(recs: &'a [Value], op: &str, resource: &str) -> Vec<&'a Value> {
    recs.iter()
        .filter(|r| r["kind"] == "call" || r["kind"] == "outcome")
        .filter(|r| r["op"] == op && r["resource"] == resource)
        .collect()
}

/// A script that tries each of `attempts` (label, async function) and prints the label with
/// `ok` and what it got, or with the error's code.
fn attempts(attempts: &[(&str, &str)]) -> String {
    let mut script = String::from(
        "const tryIt = async (label, f) => {\n\
           try { const r = await f(); $print(label, 'ok', typeof r === 'string' ? r : JSON.stringify(r)); }\n\
           catch (e) { $print(label, e.code, e.message); }\n\
         };\n",
    );
    for (label, f) in attempts {
        script.push_str(&format!("await tryIt({label:?}, () => {f});\n"));
    }
    script
}

/// The outside that a redirected nested grant would lead to, and a writable `w` holding a
/// symlink `w/link` to it.
fn outside_and_link(dir: &Path) {
    write(dir, "outside/secret.txt", "SECRET");
    write(dir, "outside/out/victim.txt", "KEEP");
    std::fs::create_dir_all(dir.join("w")).unwrap();
    symlink("../outside", dir.join("w/link")).unwrap();
}

fn outside_untouched(dir: &Path) {
    assert_eq!(read(&dir.join("outside/secret.txt")), "SECRET");
    assert_eq!(read(&dir.join("outside/out/victim.txt")), "KEEP");
    assert_eq!(names(&dir.join("outside")), ["out", "secret.txt"]);
    assert_eq!(names(&dir.join("outside/out")), ["victim.txt"]);
}

/// Every operation on a nested grant, after the script renamed the symlink onto it.
const THROUGH_THE_NESTED_GRANTS: &[(&str, &str)] = &[
    ("readFile", "sys.readTextFile('w/in/secret.txt')"),
    ("readDir", "sys.readDir('w/in')"),
    ("stat", "sys.stat('w/in/secret.txt')"),
    (
        "writeFile",
        "sys.writeFile('w/in/out/victim.txt', 'OVERWRITTEN')",
    ),
    (
        "append",
        "sys.writeFile('w/in/out/victim.txt', 'MORE', { append: true })",
    ),
    ("create", "sys.writeFile('w/in/out/new.txt', 'NEW')"),
    ("mkdir", "sys.mkdir('w/in/out/newdir')"),
    (
        "rename",
        "sys.rename('w/in/out/victim.txt', 'w/in/out/moved.txt')",
    ),
    ("remove", "sys.remove('w/in/out/victim.txt')"),
];

fn all_denied(out: &str, expected: usize) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expected, "{out}");
    for line in lines {
        let mut words = line.split(' ');
        let (label, code) = (words.next().unwrap(), words.next().unwrap());
        assert_eq!(code, "PERMISSION_DENIED", "{label}: {line}");
    }
    assert!(!out.contains("SECRET") && !out.contains("KEEP"), "{out}");
}

#[test]
fn a_symlink_renamed_onto_a_nested_grant_reaches_nothing_outside_the_outer_grant() {
    // `w/in` (read) and `w/in/out` (write) lie inside the writable `w`: the script can rename
    // whatever it likes onto `w/in`, here a symlink that leads out of `w`.
    let grants = [
        "--allow-write=w,w/in/out",
        "--allow-read=w/in",
        "--audit=a.log",
    ];
    let dir = tmp();
    outside_and_link(dir.path());
    let mut list = vec![("swap", "sys.rename('w/link', 'w/in')")];
    list.extend_from_slice(THROUGH_THE_NESTED_GRANTS);
    let script = attempts(&list);
    let (code, out, err) = run_js(dir.path(), &grants, &script);
    assert_eq!(code, 0, "{err}");
    let (swap, rest) = out.split_once('\n').unwrap();
    assert!(swap.starts_with("swap ok"), "{out}");
    all_denied(rest, THROUGH_THE_NESTED_GRANTS.len());
    outside_untouched(dir.path());
    // The log shows each call failing on the path asked for: nothing was read or written.
    let recs = records(&dir.path().join("a.log"));
    let at = |p: &str| dir.path().join(p).display().to_string();
    let reads = finished(&recs, "fs.readFile", &at("w/in/secret.txt"));
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0]["outcome"], "PERMISSION_DENIED");
    assert_eq!(reads[0]["bytes_out"], 0);
    verify(dir.path(), "a.log");

    // The same after the nested grant was used as a real folder first (an opened grant is
    // not kept pointing at a folder that has moved: the audit log would name the wrong file).
    let dir = tmp();
    outside_and_link(dir.path());
    write(dir.path(), "w/in/secret.txt", "MOVED-AWAY");
    write(dir.path(), "w/in/out/victim.txt", "MOVED-AWAY");
    let mut list = vec![
        ("before", "sys.readTextFile('w/in/secret.txt')"),
        ("before-write", "sys.writeFile('w/in/out/victim.txt', 'x')"),
        ("away", "sys.rename('w/in', 'w/old')"),
        ("swap", "sys.rename('w/link', 'w/in')"),
    ];
    list.extend_from_slice(THROUGH_THE_NESTED_GRANTS);
    let script = attempts(&list);
    let (code, out, err) = run_js(dir.path(), &grants, &script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "before ok MOVED-AWAY", "{out}");
    for line in &lines[1..4] {
        assert!(line.split(' ').nth(1) == Some("ok"), "{out}");
    }
    all_denied(&lines[4..].join("\n"), THROUGH_THE_NESTED_GRANTS.len());
    outside_untouched(dir.path());
    assert_eq!(read(&dir.path().join("w/old/secret.txt")), "MOVED-AWAY");
    assert_eq!(read(&dir.path().join("w/old/out/victim.txt")), "x");
}

#[test]
fn a_grant_spelled_through_a_symlink_is_confined_where_it_really_lies() {
    // `alias` is the user's own symlink to `w`: `alias/in` lies inside the writable `w`, so the
    // script's rename inside `w` must not redirect it either.
    let dir = tmp();
    outside_and_link(dir.path());
    symlink("w", dir.path().join("alias")).unwrap();
    let script = attempts(&[
        ("swap", "sys.rename('w/link', 'w/in')"),
        ("readFile", "sys.readTextFile('alias/in/secret.txt')"),
        ("readDir", "sys.readDir('alias/in')"),
        (
            "writeFile",
            "sys.writeFile('alias/in/out/victim.txt', 'OVERWRITTEN')",
        ),
    ]);
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-write=w,alias/in/out", "--allow-read=alias/in"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let (swap, rest) = out.split_once('\n').unwrap();
    assert!(swap.starts_with("swap ok"), "{out}");
    all_denied(rest, 3);
    outside_untouched(dir.path());
}

#[test]
fn a_symlink_inside_the_grants_leads_only_where_the_policy_allows_and_is_recorded() {
    let dir = tmp();
    write(dir.path(), "w/pub/a.txt", "PUBLIC");
    write(dir.path(), "w/private/a.txt", "PRIVATE");
    symlink("pub", dir.path().join("w/to-pub")).unwrap();
    symlink("private", dir.path().join("w/to-private")).unwrap();
    let script = attempts(&[
        ("swap1", "sys.rename('w/to-pub', 'w/in')"),
        ("public", "sys.readTextFile('w/in/a.txt')"),
        ("back", "sys.rename('w/in', 'w/to-pub')"),
        ("swap2", "sys.rename('w/to-private', 'w/in')"),
        ("private", "sys.readTextFile('w/in/a.txt')"),
        ("list", "sys.readDir('w/in')"),
    ]);
    let (code, out, err) = run_js(
        dir.path(),
        &[
            "--allow-read=w/in,w/pub",
            "--allow-write=w",
            "--audit=a.log",
        ],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let at = |p: &str| dir.path().join(p).display().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].starts_with("swap1 ok"), "{out}");
    assert_eq!(lines[1], "public ok PUBLIC", "{out}");
    assert!(lines[2].starts_with("back ok") && lines[3].starts_with("swap2 ok"));
    // Denied on the file it would have read, naming the flag that would allow that file.
    let private = at("w/private/a.txt");
    assert!(
        lines[4].starts_with("private PERMISSION_DENIED")
            && lines[4].contains(&format!("\"{private}\""))
            && lines[4].contains(&format!("--allow-read={private} or [fs] read")),
        "{}",
        lines[4]
    );
    assert!(lines[5].starts_with("list PERMISSION_DENIED"), "{out}");
    assert!(!out.contains("PRIVATE"), "{out}");

    // The audit log names the file each read reached, besides the path asked for.
    let recs = records(&dir.path().join("a.log"));
    let reads = finished(&recs, "fs.readFile", &at("w/in/a.txt"));
    assert_eq!(reads.len(), 2, "{recs:?}");
    assert_eq!(reads[0]["outcome"], "ok");
    assert_eq!(reads[0]["resolved"], at("w/pub/a.txt"));
    assert_eq!(reads[1]["outcome"], "PERMISSION_DENIED");
    assert_eq!(reads[1]["resolved"], private);
    // A path without a symlink on its way names one file: no `resolved` field.
    let swaps = finished(
        &recs,
        "fs.rename",
        &format!("{} -> {}", at("w/to-pub"), at("w/in")),
    );
    assert_eq!(swaps.len(), 1);
    assert!(swaps[0].get("resolved").is_none(), "{:?}", swaps[0]);
    verify(dir.path(), "a.log");

    // `w/pub` is writable and `w` only readable: a symlink in `w/pub` leads no write out of it.
    write(dir.path(), "w/config.txt", "CONFIG");
    symlink("../config.txt", dir.path().join("w/pub/cfg")).unwrap();
    let script = attempts(&[
        ("config", "sys.writeFile('w/pub/cfg', 'OVERWRITTEN')"),
        (
            "config-append",
            "sys.writeFile('w/pub/cfg', 'MORE', { append: true })",
        ),
    ]);
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=w", "--allow-write=w/pub", "--audit=b.log"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let config = at("w/config.txt");
    for line in out.lines() {
        assert!(
            line.contains(" PERMISSION_DENIED ")
                && line.contains(&format!("--allow-write={config} or [fs] write")),
            "{line}"
        );
    }
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(read(&dir.path().join("w/config.txt")), "CONFIG");
    let recs = records(&dir.path().join("b.log"));
    let writes = finished(&recs, "fs.writeFile", &at("w/pub/cfg"));
    assert_eq!(writes.len(), 2);
    for w in writes {
        assert_eq!(w["outcome"], "PERMISSION_DENIED");
        assert_eq!(w["resolved"], config);
    }
}

/// Runs each attempt with every file writable and the audit log at `logs/audit.jsonl`;
/// each must be refused as touching the log, and the log must verify and hold nothing forged.
fn log_attempts_are_refused(dir: &Path, list: &[(&str, String)]) -> Vec<String> {
    let list: Vec<(&str, &str)> = list.iter().map(|(l, f)| (*l, f.as_str())).collect();
    let (code, out, err) = run_js(
        dir,
        &[
            "--allow-read=.",
            "--allow-write=.",
            "--audit=logs/audit.jsonl",
        ],
        &attempts(&list),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), list.len(), "{out}");
    for (line, (label, _)) in lines.iter().zip(&list) {
        assert!(
            line.starts_with(&format!("{label} PERMISSION_DENIED")) && line.contains("audit log"),
            "{line}"
        );
    }
    let log = dir.join("logs/audit.jsonl");
    assert_eq!(names(&dir.join("logs")), ["audit.jsonl"]);
    assert_eq!(read(&dir.join("decoy.txt")), "decoy");
    let text = read(&log);
    assert!(!text.contains("forged") && text.ends_with('\n'));
    verify(dir, "logs/audit.jsonl");
    lines
}

#[test]
fn the_audit_log_cannot_be_written_removed_or_renamed_by_any_name() {
    let dir = tmp();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    write(dir.path(), "decoy.txt", "decoy");
    // Other names the user may have made: a symlink to the log and one to its folder.
    symlink("logs/audit.jsonl", dir.path().join("soft.jsonl")).unwrap();
    symlink("logs", dir.path().join("logs-alias")).unwrap();
    let log = dir.path().join("logs/audit.jsonl");
    let abs = log.display().to_string();
    let lines = log_attempts_are_refused(
        dir.path(),
        &[
            (
                "write",
                "sys.writeFile('logs/audit.jsonl', 'forged')".into(),
            ),
            (
                "append",
                "sys.writeFile('logs/audit.jsonl', 'forged', { append: true })".into(),
            ),
            ("remove", "sys.remove('logs/audit.jsonl')".into()),
            (
                "rename-from",
                "sys.rename('logs/audit.jsonl', 'gone.jsonl')".into(),
            ),
            (
                "rename-onto",
                "sys.rename('decoy.txt', 'logs/audit.jsonl')".into(),
            ),
            ("mkdir", "sys.mkdir('logs/audit.jsonl')".into()),
            (
                "mkdir-p",
                "sys.mkdir('logs/audit.jsonl', { recursive: true })".into(),
            ),
            (
                "remove-folder",
                "sys.remove('logs', { recursive: true })".into(),
            ),
            ("rename-folder", "sys.rename('logs', 'moved')".into()),
            ("rename-onto-folder", "sys.rename('empty', 'logs')".into()),
            ("absolute", format!("sys.writeFile({abs:?}, 'forged')")),
            (
                "dotdot",
                "sys.writeFile('empty/../logs/./audit.jsonl', 'forged')".into(),
            ),
            (
                "folder-alias",
                "sys.writeFile('logs-alias/audit.jsonl', 'forged')".into(),
            ),
            (
                "folder-alias-remove",
                "sys.remove('logs-alias/audit.jsonl')".into(),
            ),
            (
                "symlink-append",
                "sys.writeFile('soft.jsonl', 'forged', { append: true })".into(),
            ),
            (
                "symlink-write",
                "sys.writeFile('soft.jsonl', 'forged')".into(),
            ),
        ],
    );
    // The refusal names the log, and says that no grant allows it.
    assert!(
        lines[0].contains(&format!("\"{abs}\"")) && lines[0].contains("no grant allows"),
        "{}",
        lines[0]
    );
    assert_eq!(
        names(dir.path()),
        [
            "decoy.txt",
            "empty",
            "logs",
            "logs-alias",
            "main.js",
            "soft.jsonl"
        ]
    );

    // A hard link is the log by another name (compared by device and inode, not by path).
    std::fs::hard_link(&log, dir.path().join("hard.jsonl")).unwrap();
    log_attempts_are_refused(
        dir.path(),
        &[
            (
                "hard-link-append",
                "sys.writeFile('hard.jsonl', 'forged', { append: true })".into(),
            ),
            (
                "hard-link-write",
                "sys.writeFile('hard.jsonl', 'forged')".into(),
            ),
            ("hard-link-remove", "sys.remove('hard.jsonl')".into()),
            (
                "hard-link-from",
                "sys.rename('hard.jsonl', 'moved.jsonl')".into(),
            ),
            (
                "hard-link-onto",
                "sys.rename('decoy.txt', 'hard.jsonl')".into(),
            ),
        ],
    );
    assert_eq!(std::fs::metadata(&log).unwrap().nlink(), 2);
}

/// Runs `script` with `flags` under a file-size limit of `blocks` 512-byte blocks (as a full
/// file system would refuse more); SIGXFSZ is ignored, so a write past the limit fails with
/// EFBIG instead of killing the process.
fn run_js_with_file_limit(
    dir: &Path,
    blocks: u32,
    flags: &[&str],
    script: &str,
) -> (i32, String, String) {
    write(dir, "main.js", script);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_v8box"))
        .arg("run")
        .args(flags)
        .arg("main.js")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn a_failed_overwrite_leaves_the_old_file_and_is_recorded_as_failed() {
    let dir = tmp();
    // Small enough to be written inline (32 KiB), large enough for the I/O pool (1 MiB), and an
    // append; each is more than the 16 KiB that the limit lets any file grow to.
    for name in ["small.txt", "large.txt", "append.txt"] {
        write(
            dir.path(),
            &format!("data/{name}"),
            "the user's precious words\n",
        );
    }
    std::fs::set_permissions(
        dir.path().join("data/small.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let script = attempts(&[
        (
            "small",
            "sys.writeFile('data/small.txt', 'x'.repeat(32 * 1024))",
        ),
        (
            "large",
            "sys.writeFile('data/large.txt', 'x'.repeat(1024 * 1024))",
        ),
        (
            "append",
            "sys.writeFile('data/append.txt', 'x'.repeat(32 * 1024), { append: true })",
        ),
        (
            "new",
            "sys.writeFile('data/new.txt', 'x'.repeat(32 * 1024))",
        ),
    ]);
    let (code, out, err) = run_js_with_file_limit(
        dir.path(),
        32,
        &["--allow-write=data", "--audit=a.log"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for (line, name) in lines.iter().zip(["small", "large", "append", "new"]) {
        assert!(
            line.starts_with(&format!("{name} IO writeFile")) && line.contains("File too large"),
            "{line}"
        );
    }
    // The old files are whole, with their modes; no partial or temporary file is left.
    for name in ["small.txt", "large.txt", "append.txt"] {
        let now = read(&dir.path().join("data").join(name));
        assert!(
            now == "the user's precious words\n",
            "{name} now holds {} bytes, starting {:?}",
            now.len(),
            &now[..now.len().min(40)]
        );
    }
    let mode = std::fs::metadata(dir.path().join("data/small.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(
        names(&dir.path().join("data")),
        ["append.txt", "large.txt", "small.txt"]
    );
    // Each write is on record as intended, then failed.
    let recs = records(&dir.path().join("a.log"));
    for name in ["small.txt", "large.txt", "append.txt", "new.txt"] {
        let resource = dir.path().join("data").join(name).display().to_string();
        let outcomes = finished(&recs, "fs.writeFile", &resource);
        assert_eq!(outcomes.len(), 1, "{name}");
        assert_eq!(outcomes[0]["kind"], "outcome");
        assert_eq!(outcomes[0]["outcome"], "IO", "{name}");
    }
    verify(dir.path(), "a.log");
}

#[test]
fn a_write_replaces_the_file_whole_and_keeps_its_mode() {
    let dir = tmp();
    write(
        dir.path(),
        "data/f.txt",
        "old content that is longer than the new",
    );
    let path = dir.path().join("data/f.txt");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
    let before = std::fs::metadata(&path).unwrap().ino();
    // A reader that opened the old file keeps reading the old content: the write made a new
    // file and renamed it over the old name (a write in place would be seen half-done).
    let held = std::fs::File::open(&path).unwrap();
    let script = attempts(&[
        ("small", "sys.writeFile('data/f.txt', 'new')"),
        ("read", "sys.readTextFile('data/f.txt')"),
        (
            "large",
            "sys.writeFile('data/g.txt', 'y'.repeat(100 * 1024))",
        ),
        ("list", "sys.readDir('data').then(l => l.map(e => e.name))"),
    ]);
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=data", "--allow-write=data"],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "small ok undefined\nread ok new\nlarge ok undefined\nlist ok [\"f.txt\",\"g.txt\"]\n"
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_ne!(meta.ino(), before, "replaced, not written in place");
    assert_eq!(meta.permissions().mode() & 0o777, 0o604);
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
    assert_eq!(old, "old content that is longer than the new");
}

#[test]
fn a_log_on_a_pipe_is_guarded_by_its_identity_and_still_opens() {
    // The test's stderr is a pipe: `/dev/stderr` has no real path to resolve, only an identity.
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=/dev/stderr", "--allow-write=."],
        "await sys.writeFile('x.txt', 'x'); $print('written');",
    );
    assert_eq!((code, out.as_str()), (0, "written\n"), "{err}");
    assert!(
        err.contains("\"kind\":\"run_start\"") && err.contains("\"op\":\"fs.writeFile\""),
        "{err}"
    );
}
