//! Compiles `src/worker/reusing_allocator.cc` (the isolates' ArrayBuffer allocator) against the
//! V8 headers of the very `v8` crate the project links, found through `cargo metadata`, with the
//! defines the crate's archive was built with (pointer compression, heap sandbox).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const SOURCE: &str = "src/worker/reusing_allocator.cc";

pub fn compile() {
    println!("cargo:rerun-if-changed={SOURCE}");
    cc::Build::new()
        .cpp(true)
        // Nothing of the C++ standard library is used: the crate's archive has its own libc++.
        .cpp_link_stdlib(None)
        .std("c++20")
        .flag("-fno-rtti")
        .flag("-fno-exceptions")
        .define("V8_COMPRESS_POINTERS", None)
        .define("V8_31BIT_SMIS_ON_64BIT_ARCH", None)
        .define("V8_ENABLE_SANDBOX", None)
        // V8's headers as system headers: their own warnings are not ours.
        .flag("-isystem")
        .flag(v8_include_dir().to_str().expect("a UTF-8 path"))
        .file(SOURCE)
        .compile("v8box_reusing_allocator");
}

/// `v8/include` inside the `v8` crate's source, wherever cargo keeps it (registry, vendor
/// folder or git checkout).
fn v8_include_dir() -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .args(["--filter-platform", &env::var("TARGET").unwrap()])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let v8 = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "v8")
        .expect("the v8 crate is a dependency");
    let manifest_path = PathBuf::from(v8["manifest_path"].as_str().unwrap());
    let include = manifest_path.parent().unwrap().join("v8/include");
    assert!(
        include.join("v8-array-buffer.h").is_file(),
        "V8's headers are not in {}",
        include.display()
    );
    include
}
