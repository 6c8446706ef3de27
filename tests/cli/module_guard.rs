//! Loading a module is a system call: confined beneath a module root or a read grant, never
//! waiting, recorded as `module.load` with the file's SHA-256; a failed load names the
//! specifier, the path and what would allow it, never the file's content.

use std::path::Path;

use super::{records, text, v8box, write};

const SECRET: &str = "TOP-SECRET-LINE-7f3a";

fn sha256_hex(bytes: &[u8]) -> String {
    v8box::audit::sha256_hex(bytes)
}

/// A project (`app/main.js`) beside a folder it may not read (`private/`).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "private/secret.js",
        &format!("{SECRET} is not JavaScript\n"),
    );
    write(dir.path(), "private/ok.js", "export const v = 'outside';\n");
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = v8box(dir, args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn module_loads(log: &Path) -> Vec<serde_json::Value> {
    records(log)
        .into_iter()
        .filter(|r| r["op"] == "module.load")
        .collect()
}

#[test]
fn imports_beneath_the_scripts_folder_load_and_are_recorded_with_their_hash() {
    let dir = project();
    let lib = "export const greet = (n) => `hi ${n}`;\n";
    write(dir.path(), "app/lib/greet.js", lib);
    write(
        dir.path(),
        "app/main.js",
        "import { greet } from './lib/greet.js';\nimport { greet as again } from '../app/lib/greet.js';\n$print(greet('a'), again === greet);",
    );
    let (code, out, err) = run_in(dir.path(), &["run", "--audit=audit.jsonl", "app/main.js"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "hi a true");
    let loads = module_loads(&dir.path().join("audit.jsonl"));
    assert_eq!(loads.len(), 1, "one record per module loaded: {loads:?}");
    let real = dir.path().canonicalize().unwrap();
    let expected = real.join("app/lib/greet.js");
    let recorded = Path::new(
        loads[0]["resolved"]
            .as_str()
            .or(loads[0]["resource"].as_str())
            .unwrap(),
    );
    assert_eq!(recorded, expected);
    assert_eq!(loads[0]["decision"], "allow");
    assert_eq!(loads[0]["outcome"], "ok");
    assert_eq!(loads[0]["sha256"], sha256_hex(lib.as_bytes()));
    assert_eq!(loads[0]["rule"], "module root: the main script's folder");
}

#[test]
fn an_import_outside_the_module_root_is_denied_without_showing_the_file() {
    let dir = project();
    for specifier in ["../private/secret.js", "/etc/shadow", "/proc/self/environ"] {
        let abs = if specifier.starts_with('/') {
            specifier.to_string()
        } else {
            dir.path().join("private/secret.js").display().to_string()
        };
        write(
            dir.path(),
            "app/main.js",
            &format!("import '{specifier}';\n"),
        );
        let (code, out, err) = run_in(dir.path(), &["run", "--audit=audit.jsonl", "app/main.js"]);
        assert_eq!(code, 1, "{specifier}: {out} {err}");
        assert!(!err.contains(SECRET) && !out.contains(SECRET), "{err}");
        assert!(err.contains(specifier), "names the specifier: {err}");
        assert!(err.contains(&abs), "names the path: {err}");
        assert!(err.contains("--allow-read="), "names the flag: {err}");
        assert!(
            err.contains("--module-root="),
            "names the module root: {err}"
        );
        let loads = module_loads(&dir.path().join("audit.jsonl"));
        let last = loads.last().expect("the denied load is on record");
        assert_eq!(last["decision"], "deny");
        assert_eq!(last["resource"], abs.as_str());
        assert_eq!(last["outcome"], "PERMISSION_DENIED");
        std::fs::remove_file(dir.path().join("audit.jsonl")).unwrap();
    }
}

#[test]
fn a_read_grant_or_a_module_root_lets_an_import_elsewhere_load() {
    let dir = project();
    write(
        dir.path(),
        "app/main.js",
        "import { v } from '../private/ok.js';\n$print(v);",
    );
    let private = dir.path().join("private").display().to_string();
    let grant = format!("--allow-read={private}");
    let (code, out, err) = run_in(
        dir.path(),
        &["run", "--audit=audit.jsonl", &grant, "app/main.js"],
    );
    assert_eq!((code, out.trim()), (0, "outside"), "{err}");
    let loads = module_loads(&dir.path().join("audit.jsonl"));
    assert_eq!(loads[0]["rule"], grant.as_str());

    // `--module-root` replaces the script's folder as the root: a sibling folder loads...
    std::fs::remove_file(dir.path().join("audit.jsonl")).unwrap();
    let root = format!("--module-root={private}");
    let (code, out, err) = run_in(
        dir.path(),
        &["run", "--audit=audit.jsonl", &root, "app/main.js"],
    );
    assert_eq!((code, out.trim()), (0, "outside"), "{err}");
    assert_eq!(
        module_loads(&dir.path().join("audit.jsonl"))[0]["rule"],
        root.as_str()
    );
    // ...and the script's own folder no longer does.
    write(dir.path(), "app/lib.js", "export const w = 1;\n");
    write(
        dir.path(),
        "app/main.js",
        "import { w } from './lib.js';\n$print(w);",
    );
    let (code, _, err) = run_in(dir.path(), &["run", &root, "app/main.js"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("permission denied"), "{err}");

    // A policy file's `[modules] root` does the same, relative to the policy's folder.
    write(dir.path(), "policy.toml", "[modules]\nroot = \"private\"\n");
    write(
        dir.path(),
        "app/main.js",
        "import { v } from '../private/ok.js';\n$print(v);",
    );
    let (code, out, err) = run_in(dir.path(), &["run", "--policy=policy.toml", "app/main.js"]);
    assert_eq!((code, out.trim()), (0, "outside"), "{err}");
}

#[test]
fn a_module_root_does_not_let_the_script_read_its_files() {
    let dir = project();
    write(dir.path(), "app/data.txt", "x");
    write(
        dir.path(),
        "app/main.js",
        "try { await sys.readFile('app/data.txt'); $print('read'); } catch (e) { $print(e.name); }",
    );
    let (code, out, err) = run_in(dir.path(), &["run", "app/main.js"]);
    assert_eq!((code, out.trim()), (0, "PermissionDenied"), "{err}");
}

#[test]
fn a_symlink_out_of_the_module_root_is_refused() {
    let dir = project();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("private/secret.js"),
        dir.path().join("app/link.js"),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("private"), dir.path().join("app/dir")).unwrap();
    for specifier in ["./link.js", "./dir/secret.js"] {
        write(
            dir.path(),
            "app/main.js",
            &format!("import '{specifier}';\n"),
        );
        let (code, out, err) = run_in(dir.path(), &["run", "--audit=audit.jsonl", "app/main.js"]);
        assert_eq!(code, 1, "{specifier}: {out} {err}");
        assert!(!err.contains(SECRET), "{err}");
        assert!(err.contains(specifier), "{err}");
        let loads = module_loads(&dir.path().join("audit.jsonl"));
        assert_eq!(
            loads.last().unwrap()["outcome"],
            "PERMISSION_DENIED",
            "{loads:?}"
        );
        std::fs::remove_file(dir.path().join("audit.jsonl")).unwrap();
    }
}

#[test]
fn only_regular_files_load_and_nothing_waits() {
    let dir = project();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    let fifo = dir.path().join("app/fifo.js");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    std::fs::create_dir_all(dir.path().join("app/folder.js")).unwrap();
    for (specifier, flags) in [
        ("./fifo.js", vec![]),
        ("./folder.js", vec![]),
        ("/dev/zero", vec!["--allow-read=/dev"]),
        ("/dev/urandom", vec!["--allow-read=/dev"]),
    ] {
        write(
            dir.path(),
            "app/main.js",
            &format!("import '{specifier}';\n"),
        );
        let mut args = vec!["run", "--timeout=20000", "--max-heap=64"];
        args.extend(flags);
        args.push("app/main.js");
        let (code, out, err) = run_in(dir.path(), &args);
        assert_eq!(code, 1, "{specifier}: {out} {err}");
        assert!(
            err.contains("not a regular file") || err.contains("a directory"),
            "{specifier}: {err}"
        );
    }
}

#[test]
fn a_module_over_the_size_limit_is_refused() {
    let dir = project();
    write(
        dir.path(),
        "app/big.js",
        &format!("export const s = '{}';\n", "x".repeat(4000)),
    );
    write(
        dir.path(),
        "app/main.js",
        "import { s } from './big.js';\n$print(s.length);",
    );
    write(
        dir.path(),
        "policy.toml",
        "[limits]\nmax_message_bytes = 2000\n",
    );
    let (code, _, err) = run_in(dir.path(), &["run", "--policy=policy.toml", "app/main.js"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("larger than 2000 bytes"), "{err}");
}

#[test]
fn urls_and_missing_packages_are_refused_and_recorded() {
    let dir = project();
    for (specifier, outcome) in [
        ("lodash", "NOT_FOUND"),
        ("https://example.com/x.js", "INVALID_ARGUMENT"),
        ("data:text/javascript,1", "INVALID_ARGUMENT"),
    ] {
        write(
            dir.path(),
            "app/main.js",
            &format!("import '{specifier}';\n"),
        );
        let (code, _, err) = run_in(dir.path(), &["run", "--audit=audit.jsonl", "app/main.js"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(specifier), "{err}");
        let loads = module_loads(&dir.path().join("audit.jsonl"));
        assert_eq!(loads.last().unwrap()["outcome"], outcome, "{specifier}");
        std::fs::remove_file(dir.path().join("audit.jsonl")).unwrap();
    }
}

#[test]
fn policy_explain_decides_module_loads() {
    let dir = project();
    write(
        dir.path(),
        "policy.toml",
        "[modules]\nroot = [\"lib\"]\n[fs]\nread = [\"data\"]\n",
    );
    let explain = |path: &str| {
        let out = v8box(
            dir.path(),
            &["policy", "explain", "policy.toml", "module.load", path],
        );
        text(&out.stdout)
    };
    assert!(
        explain("lib/a.js").starts_with("allow"),
        "{}",
        explain("lib/a.js")
    );
    assert!(explain("lib/a.js").contains("[modules] root"));
    assert!(explain("data/a.js").starts_with("allow"));
    assert!(explain("other/a.js").starts_with("deny"));
    let check = v8box(dir.path(), &["policy", "check", "policy.toml"]);
    assert!(
        text(&check.stdout).contains("[modules]"),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn module_loads_verify_and_replay_against_a_policy() {
    let dir = project();
    write(dir.path(), "app/lib.js", "export const w = 1;\n");
    write(
        dir.path(),
        "app/main.js",
        "import { w } from './lib.js';\nimport { v } from '../private/ok.js';\n$print(w, v);",
    );
    let grant = format!("--allow-read={}", dir.path().join("private").display());
    let (code, out, err) = run_in(
        dir.path(),
        &["run", "--audit=audit.jsonl", &grant, "app/main.js"],
    );
    assert_eq!((code, out.trim()), (0, "1 outside"), "{err}");
    let verify = v8box(dir.path(), &["audit", "verify", "audit.jsonl"]);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    // A policy without the read grant would deny the module read through it; the load beneath
    // the run's own module root (the script's folder) is not the policy file's to decide.
    write(dir.path(), "empty.toml", "");
    let replay = v8box(
        dir.path(),
        &["policy", "test", "empty.toml", "--audit", "audit.jsonl"],
    );
    let said = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    assert!(
        said.contains("module.load") && said.contains("private/ok.js"),
        "{said}"
    );
    assert!(!said.contains("app/lib.js"), "{said}");
    assert!(said.contains("1 of 1 decisions would change"), "{said}");
}
