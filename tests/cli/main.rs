//! The `v8box` binary as a user runs it.

mod audit;
mod audit_truth;
mod errors;
mod fifo;
mod fs_guard;
mod hostile;
mod jail;
mod limits;
mod module_guard;
mod modules;
mod net_guard;
mod ops;
mod otlp;
mod run;
mod seal;
mod stdin;
mod suggest;
mod sys;
mod v8;
mod web;

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` in `dir`. With `V8BOX_TEST_ISOLATION=thread` (set by .ci/run
/// for a second pass) every `run` gets `--isolation=thread`: the same tests hold in both
/// isolations.
pub fn v8box(dir: &Path, args: &[&str]) -> Output {
    let isolation = std::env::var("V8BOX_TEST_ISOLATION")
        .ok()
        .map(|mode| format!("--isolation={mode}"));
    let mut args: Vec<&str> = args.to_vec();
    if let (Some(flag), Some(&"run")) = (isolation.as_deref(), args.first()) {
        args.insert(1, flag);
    }
    Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(&args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("v8box runs")
}

/// Like `v8box`, with `input` as the process's stdin.
pub fn v8box_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let isolation = std::env::var("V8BOX_TEST_ISOLATION")
        .ok()
        .map(|mode| format!("--isolation={mode}"));
    let mut args: Vec<&str> = args.to_vec();
    if let (Some(flag), Some(&"run")) = (isolation.as_deref(), args.first()) {
        args.insert(1, flag);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(&args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("v8box runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("v8box ends");
    feeder.join().unwrap();
    out
}

/// The records of the audit log at `path`, parsed.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn write(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

/// Writes `policy.toml` in `dir` with a message limit of 1 KiB; returns the flag that uses it.
pub fn small_message_policy(dir: &Path) -> &'static str {
    write(dir, "policy.toml", "[limits]\nmax_message_bytes = 1024\n");
    "--policy=policy.toml"
}

/// Runs `script` (an ES module written to `main.js` in `dir`) with `flags`; returns
/// (exit code, stdout, stderr).
pub fn run_js(dir: &Path, flags: &[&str], script: &str) -> (i32, String, String) {
    write(dir, "main.js", script);
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.push("main.js");
    let out = v8box(dir, &args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}
