//! The V8 inside v8box: its version, its heap sandbox, and the address-space limits under which
//! that sandbox would lose its guard regions.

use std::process::Command;

use crate::{text, write};

#[test]
fn version_names_v8_15_2_with_the_heap_sandbox_on() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--version", "-V"] {
        let out = crate::v8box(dir.path(), &[flag]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("v8box "), "{stdout}");
        assert!(stdout.contains("\nV8 15.2."), "{stdout}");
        assert!(stdout.contains("heap sandbox: on\n"), "{stdout}");
    }
}

/// `v8box ARGS` under `ulimit -v KIB` (an address-space limit, RLIMIT_AS).
fn under_address_space_limit(kib: u64, args: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.js", "$print('ran')");
    let bin = env!("CARGO_BIN_EXE_v8box");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"{bin}\" {args}"))
        .current_dir(dir.path())
        .output()
        .expect("sh runs");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn an_address_space_limit_is_refused_with_its_reason_not_an_abort() {
    // 64 GiB: V8 itself would abort the process (exit 133); 1,200 GiB: V8 would quietly reserve
    // a sandbox without guard regions. v8box refuses both, saying why, and runs nothing.
    for gib in [64u64, 1200] {
        let (code, stdout, stderr) = under_address_space_limit(gib << 20, "run main.js");
        assert_eq!(code, Some(2), "{gib} GiB: {stderr}");
        assert!(!stdout.contains("ran"), "{gib} GiB: the script ran");
        assert!(stderr.contains("heap sandbox"), "{gib} GiB: {stderr}");
        assert!(stderr.contains("RLIMIT_AS"), "{gib} GiB: {stderr}");
        let (code, stdout, _) = under_address_space_limit(gib << 20, "--version");
        assert_eq!(code, Some(0));
        assert!(
            stdout.contains("heap sandbox: on, but not secure here"),
            "{stdout}"
        );
    }
    // Control: a limit above what the sandbox needs runs the script.
    let (code, stdout, stderr) = under_address_space_limit(8 << 30, "run main.js");
    assert_eq!((code, stdout.as_str()), (Some(0), "ran\n"), "{stderr}");
}
