//! Sealed audit logs: `audit keygen`, `run --audit-key`, `audit verify --key`, and the tools that
//! read a log saying when it does not hold.

use std::path::{Path, PathBuf};

use crate::*;

const SCRIPT: &str = r#"
    const home = sys.env.get('HOME');
    try { await sys.readFile('/etc/shadow'); } catch (e) {}
    $print('done');
"#;

/// A folder with the script in `work/` and a key pair in `keys/` (outside the script's folder,
/// which is its default module root).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("work"), "main.js", SCRIPT);
        let out = v8box(dir.path(), &["audit", "keygen", "--out", "keys"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        Setup { dir }
    }
    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
    fn log(&self) -> PathBuf {
        self.work().join("audit.log")
    }
    /// Runs the script sealed (`key`: the secret key, relative to `work/`), appending to
    /// `audit.log`.
    fn run_sealed(&self, key: &str) {
        let out = v8box(
            &self.work(),
            &[
                "run",
                "--audit=audit.log",
                "--audit-key",
                key,
                "--allow-env=HOME",
                "main.js",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    /// `audit verify` (with `--key ../keys/audit.pub` when `keyed`): (exit code, stdout, stderr).
    fn verify(&self, log: &str, keyed: bool) -> (i32, String, String) {
        let mut args = vec!["audit", "verify", log];
        if keyed {
            args.extend(["--key", "../keys/audit.pub"]);
        }
        let out = v8box(&self.work(), &args);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes `lines` to `path` with every record re-chained the way the writer chains them:
/// `seq` renumbered, `prev` set to the hash before it, and `hash` recomputed over the line
/// without its `hash` field. This is what anyone who can write the file can do.
fn rechain(path: &Path, lines: &[String]) {
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let suffix = line.len() - (9 + 64 + 2);
        assert!(line[suffix..].starts_with(",\"hash\":\""), "{line}");
        let body = &line[..suffix];
        let after_seq = &body[body.find(',').unwrap()..];
        let body = format!("{{\"seq\":{}{after_seq}", i + 1);
        let at = body.rfind(",\"prev\":\"").unwrap() + 9;
        let body = format!("{}{}{}", &body[..at], prev, &body[at + 64..]);
        let hash = v8box::audit::sha256_hex(format!("{body}}}").as_bytes());
        out.push_str(&format!("{body},\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn keygen_writes_a_secret_only_its_owner_reads_and_never_overwrites_one() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let keys = s.dir.path().join("keys");
    let mode = std::fs::metadata(keys.join("audit.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(keys.join("audit.pub")).unwrap();
    assert!(public.contains("v8box-seal-public-v1"), "{public}");
    let before = std::fs::read(keys.join("audit.key")).unwrap();
    let again = v8box(s.dir.path(), &["audit", "keygen", "--out", "keys"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("audit.key exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(keys.join("audit.key")).unwrap(), before);
}

#[test]
fn a_sealed_log_verifies_with_its_key_and_the_key_evolves_after_each_run() {
    let s = Setup::new();
    let secret = s.dir.path().join("keys/audit.key");
    let first = std::fs::read_to_string(&secret).unwrap();
    s.run_sealed("../keys/audit.key");
    let after_one = std::fs::read_to_string(&secret).unwrap();
    s.run_sealed("../keys/audit.key");
    let after_two = std::fs::read_to_string(&secret).unwrap();
    // Each run's checkpoint replaced the key: the earlier keys are in no file.
    assert_ne!(first, after_one);
    assert_ne!(after_one, after_two);
    assert!(after_two.contains("\"epoch\":2"), "{after_two}");
    let recs = records(&s.log());
    let checkpoints: Vec<_> = recs.iter().filter(|r| r["kind"] == "checkpoint").collect();
    assert_eq!(checkpoints.len(), 2, "one checkpoint at each run's end");
    assert_eq!(checkpoints[0]["epoch"], 0);
    assert_eq!(checkpoints[1]["epoch"], 1);
    assert_eq!(recs.last().unwrap()["kind"], "checkpoint");
    let (code, out, err) = s.verify("audit.log", true);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "ok: {} records; sealed: all {} records",
            recs.len(),
            recs.len()
        )),
        "{out}"
    );
    // Keyless verify works as it did.
    let (code, out, _) = s.verify("audit.log", false);
    assert_eq!(
        (code, out.trim()),
        (0, format!("ok: {} records", recs.len()).as_str())
    );
}

#[test]
fn an_edited_and_rechained_log_passes_keyless_verify_but_not_keyed_verify() {
    let s = Setup::new();
    s.run_sealed("../keys/audit.key");
    s.run_sealed("../keys/audit.key");
    let mut l = lines(&s.log());
    // The forgery: the denied read of /etc/shadow becomes a harmless path, every later hash
    // recomputed.
    let at = l.iter().position(|x| x.contains("/etc/shadow")).unwrap();
    l[at] = l[at].replace("/etc/shadow", "/etc/hostname");
    rechain(&s.log(), &l);
    let (code, out, err) = s.verify("audit.log", false);
    assert_eq!(
        code, 0,
        "keyless verify cannot see a re-chained edit: {out}{err}"
    );
    let (code, out, _) = s.verify("audit.log", true);
    assert_eq!(code, 1, "{out}");
    let first_checkpoint = l
        .iter()
        .position(|x| x.contains("\"kind\":\"checkpoint\""))
        .unwrap()
        + 1;
    assert!(
        out.contains(&format!(
            "line {first_checkpoint}: checkpoint seq {first_checkpoint} (sealing records 1..{})",
            first_checkpoint - 1
        )) && out.contains("does not match the log"),
        "{out}"
    );
}

#[test]
fn reordered_records_and_a_removed_checkpoint_fail_keyed_verify() {
    let s = Setup::new();
    s.run_sealed("../keys/audit.key");
    s.run_sealed("../keys/audit.key");
    s.run_sealed("../keys/audit.key");
    let l = lines(&s.log());
    let cps: Vec<usize> = (0..l.len())
        .filter(|&i| l[i].contains("\"kind\":\"checkpoint\""))
        .collect();
    assert_eq!(cps.len(), 3);
    // Two records of the second run swapped, the chain and seq recomputed.
    let mut swapped = l.clone();
    swapped.swap(cps[0] + 2, cps[0] + 3);
    rechain(&s.log(), &swapped);
    assert_eq!(s.verify("audit.log", false).0, 0);
    let (code, out, _) = s.verify("audit.log", true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("line {}:", cps[1] + 1)), "{out}");
    // The second run's checkpoint removed (and the chain recomputed): the third's epoch is
    // not the next one.
    let mut removed = l.clone();
    removed.remove(cps[1]);
    rechain(&s.log(), &removed);
    let (code, out, _) = s.verify("audit.log", true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("epoch 2, expected 1"), "{out}");
    // The last checkpoint removed: the last run is unsealed.
    let mut cut = l.clone();
    cut.pop();
    rechain(&s.log(), &cut);
    let (code, out, _) = s.verify("audit.log", true);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "unsealed: records {}..{}",
            cps[1] + 2,
            l.len() - 1
        )),
        "{out}"
    );
}

#[test]
fn records_spliced_from_another_sealed_log_fail_keyed_verify() {
    let a = Setup::new();
    let b = Setup::new();
    for s in [&a, &b] {
        s.run_sealed("../keys/audit.key");
        s.run_sealed("../keys/audit.key");
    }
    let la = lines(&a.log());
    let lb = lines(&b.log());
    let cut_a = la
        .iter()
        .position(|x| x.contains("\"kind\":\"checkpoint\""))
        .unwrap()
        + 1;
    let cut_b = lb
        .iter()
        .position(|x| x.contains("\"kind\":\"checkpoint\""))
        .unwrap()
        + 1;
    // A's first run, then B's second run (with its checkpoint), re-chained.
    let spliced: Vec<String> = la[..cut_a].iter().chain(&lb[cut_b..]).cloned().collect();
    rechain(&a.log(), &spliced);
    assert_eq!(a.verify("audit.log", false).0, 0);
    let (code, out, _) = a.verify("audit.log", true);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not certified by epoch 0's key"), "{out}");
}

#[test]
fn records_after_the_last_checkpoint_are_reported_unsealed() {
    let s = Setup::new();
    s.run_sealed("../keys/audit.key");
    let sealed = records(&s.log()).len();
    // A run without the key appends records that nothing seals.
    let out = v8box(
        &s.work(),
        &["run", "--audit=audit.log", "--allow-env=HOME", "main.js"],
    );
    assert_eq!(out.status.code(), Some(0));
    let total = records(&s.log()).len();
    let (code, out, err) = s.verify("audit.log", true);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!(
            "unsealed: records {}..{total} come after the last checkpoint (seq {sealed})",
            sealed + 1
        )),
        "{out}"
    );
    // The next sealed run seals them too.
    s.run_sealed("../keys/audit.key");
    let (code, out, _) = s.verify("audit.log", true);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_key_seals_one_log_and_stays_out_of_the_scripts_reach() {
    let s = Setup::new();
    s.run_sealed("../keys/audit.key");
    // The same key on another log.
    let out = v8box(
        &s.work(),
        &[
            "run",
            "--audit=other.log",
            "--audit-key",
            "../keys/audit.key",
            "main.js",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("does not continue the seal of other.log"),
        "{}",
        text(&out.stderr)
    );
    // A key the script could read: through a grant, or beneath its module root.
    for flags in [
        vec!["--allow-read=..", "main.js"],
        vec!["--allow-write", "main.js"],
        vec!["../keys/x.js"],
    ] {
        write(&s.dir.path().join("keys"), "x.js", SCRIPT);
        let mut args = vec![
            "run",
            "--audit=audit.log",
            "--audit-key",
            "../keys/audit.key",
        ];
        args.extend(flags.iter().copied());
        let out = v8box(&s.work(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("could reach the sealing key"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // A key without a log.
    let out = v8box(
        &s.work(),
        &["run", "--audit-key", "../keys/audit.key", "main.js"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--audit FILE"),
        "{}",
        text(&out.stderr)
    );
    // The public key does not seal, the secret one does not verify.
    let out = v8box(
        &s.work(),
        &["audit", "verify", "audit.log", "--key", "../keys/audit.key"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("this is the secret key"),
        "{}",
        text(&out.stderr)
    );
    // Nothing above changed the log: it still verifies with its key.
    assert_eq!(s.verify("audit.log", true).0, 0);
}

#[test]
fn show_and_policy_test_say_when_a_log_does_not_verify() {
    let s = Setup::new();
    s.run_sealed("../keys/audit.key");
    write(&s.work(), "p.toml", "[env]\nallow = [\"HOME\"]\n");
    for args in [
        vec!["audit", "show", "audit.log"],
        vec!["policy", "test", "p.toml", "--audit", "audit.log"],
    ] {
        let out = v8box(&s.work(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("does not verify"));
    }
    // An edit without re-chaining: the chain no longer holds.
    let mut l = lines(&s.log());
    let at = l.iter().position(|x| x.contains("/etc/shadow")).unwrap();
    l[at] = l[at].replace("/etc/shadow", "/etc/hostname");
    std::fs::write(s.log(), l.join("\n") + "\n").unwrap();
    for args in [
        vec!["audit", "show", "audit.log"],
        vec!["policy", "test", "p.toml", "--audit", "audit.log"],
    ] {
        let out = v8box(&s.work(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(&format!("audit.log does not verify: line {}", at + 1)),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Re-chained: only the key sees it.
    rechain(&s.log(), &l);
    let out = v8box(&s.work(), &["audit", "show", "audit.log"]);
    assert_eq!(out.status.code(), Some(0));
    let out = v8box(
        &s.work(),
        &["audit", "show", "audit.log", "--key", "../keys/audit.pub"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not verify"),
        "{}",
        text(&out.stderr)
    );
}
