//! The `v8box` binary as a user runs it.

mod audit;
mod audit_truth;
mod errors;
mod fs_guard;
mod hostile;
mod jail;
mod limits;
mod module_guard;
mod net_guard;
mod ops;
mod run;
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
