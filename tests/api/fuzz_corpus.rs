//! Replays every saved fuzz input (fuzz/corpus, including inputs that once crashed) through
//! the same entry points as the fuzz targets. CI runs this, not the long fuzzing.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no corpus for {target}");
    found
}

#[test]
fn dispatch_corpus() {
    for (name, data) in inputs("dispatch") {
        eprintln!("{name}");
        v8box::fuzzing::dispatch_bytes(&data);
    }
}

#[test]
fn policy_corpus() {
    for (name, data) in inputs("policy") {
        eprintln!("{name}");
        v8box::fuzzing::policy_text(&data);
    }
}

#[test]
fn script_send_corpus() {
    for (name, data) in inputs("script_send") {
        eprintln!("{name}");
        v8box::fuzzing::script_send(&data);
    }
}
