//! Compiles `proto/v8box.proto` twice from one parse, so the two sides cannot drift:
//! - into Rust types with prost-build (the schema is parsed by `protox`: no system `protoc`);
//! - into JavaScript (`schema.js`): the enums' value names, and for each message an
//!   encoder and a decoder function specialised to its fields (`codec_gen`), which
//!   `js/codec.js`'s `encode`/`decode` call. Specialised code reads and writes properties by
//!   constant names and builds decoded objects from one literal each, so V8 keeps every access
//!   monomorphic (a table-driven loop over field names made them megamorphic; measured in
//!   docs/BENCHMARKS.md).
//!
//! Then assembles the prelude every isolate loads: schema + codec + the `sys` library, and makes
//! V8's startup snapshot of it (`src/worker/snapshot_creator.rs`), so that neither a worker nor
//! a `v8box run` process parses, compiles or runs the prelude.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use prost_types::FileDescriptorSet;
use serde_json::{json, Value};

#[path = "build/allocator_glue.rs"]
mod allocator_glue;
#[path = "build/codec_gen.rs"]
mod codec_gen;
#[path = "build/op_gen.rs"]
mod op_gen;
#[path = "src/worker/snapshot_creator.rs"]
mod snapshot_creator;

/// The name errors and stack frames inside the prelude are reported under.
const PRELUDE_NAME: &str = "v8box:sys.js";

const PRELUDE_PARTS: [&str; 4] = ["js/primordials.js", "js/codec.js", "js/sys.js", "js/web.js"];

fn main() {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=js");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    allocator_glue::compile();

    let mut compiler = protox::Compiler::new(["proto"]).expect("proto/ is readable");
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(["v8box.proto"])
        .expect("proto/v8box.proto compiles");
    // The operations' declarations (their options: proto/options.proto), read by reflection.
    let ops = op_gen::ops(&compiler.descriptor_pool());
    fs::write(out.join("op_table.rs"), op_gen::table(&ops)).unwrap();
    fs::write(out.join("op_handlers.rs"), op_gen::handlers(&ops)).unwrap();
    // The wire protocol itself: v8box.proto alone (its options are for build.rs).
    let mut fds = compiler.file_descriptor_set();
    fds.file.retain(|f| f.name() == "v8box.proto");
    let schema = js_schema(&fds) + &codec_gen::generate(&fds) + &op_gen::js(&ops);
    fs::write(out.join("schema.js"), schema).unwrap();
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build generates the Rust types");
    // The broker <-> jailed worker protocol (src/isolation/): Rust on both sides, no codec.
    let worker_fds =
        protox::compile(["worker.proto"], ["proto"]).expect("proto/worker.proto compiles");
    prost_build::Config::new()
        .compile_fds(worker_fds)
        .expect("prost-build generates the worker protocol's types");

    let mut prelude = String::from("(function () {\n'use strict';\n");
    prelude.push_str(&fs::read_to_string(out.join("schema.js")).unwrap());
    for part in PRELUDE_PARTS {
        prelude.push_str(&format!("// ---- {part}\n"));
        prelude.push_str(&fs::read_to_string(part).unwrap());
    }
    prelude.push_str("\n})();\n");
    fs::write(out.join("prelude.js"), &prelude).unwrap();
    write_snapshot(&out, &prelude);

    // The codec alone, exposed as `globalThis.codec`, for round-trip tests and tools.
    let mut codec = String::from("(function () {\n'use strict';\n");
    codec.push_str(&fs::read_to_string(out.join("schema.js")).unwrap());
    for part in &PRELUDE_PARTS[..2] {
        codec.push_str(&fs::read_to_string(part).unwrap());
    }
    codec.push_str(
        "\nglobalThis.codec = { encode, decode, decodeMember, utf8Encode, utf8Decode };\n})();\n",
    );
    fs::write(out.join("codec.js"), codec).unwrap();
}

/// Writes `prelude.snapshot` and `prelude_snapshot.rs`, which `src/runtime.rs` includes.
/// When cross-compiling, a snapshot made here would be for the wrong machine: the file is left
/// empty and v8box makes the snapshot on first use instead.
fn write_snapshot(out: &Path, prelude: &str) {
    println!("cargo:rerun-if-changed=src/worker/snapshot_creator.rs");
    let (data, recv_index) = if env::var("HOST") == env::var("TARGET") {
        snapshot_creator::init_v8();
        let blob = snapshot_creator::create(PRELUDE_NAME, prelude)
            .unwrap_or_else(|e| panic!("the prelude fails while its snapshot is made: {e}"));
        (blob.data, blob.recv_index)
    } else {
        (Vec::new(), None)
    };
    let path = out.join("prelude.snapshot");
    fs::write(&path, &data).unwrap();
    let code = format!(
        "/// The name errors and stack frames inside the prelude are reported under.\n\
         pub const PRELUDE_NAME: &str = {PRELUDE_NAME:?};\n\
         /// The prelude's startup snapshot, made by build.rs (empty when cross-compiled).\n\
         static PRELUDE_SNAPSHOT: &[u8] = {{\n\
         \x20   #[repr(C, align(16))]\n\
         \x20   struct Aligned<T: ?Sized>(T);\n\
         \x20   static DATA: &Aligned<[u8; {len}]> = &Aligned(*include_bytes!({path:?}));\n\
         \x20   &DATA.0\n\
         }};\n\
         /// Context-data index of the function the prelude gave to `$recv`.\n\
         const PRELUDE_RECV_INDEX: Option<usize> = {recv_index:?};\n",
        len = data.len(),
    );
    fs::write(out.join("prelude_snapshot.rs"), code).unwrap();
}

/// `const SCHEMA = {enums: {...}};` — each enum's value names by number (the per-message
/// field tables and functions come from `codec_gen`).
fn js_schema(fds: &FileDescriptorSet) -> String {
    let mut enums = BTreeMap::new();
    for file in &fds.file {
        for e in &file.enum_type {
            enums.insert(format!("{}.{}", file.package(), e.name()), enum_values(e));
        }
    }
    for m in codec_gen::messages(fds) {
        for e in &m.desc.enum_type {
            enums.insert(format!("{}.{}", m.full, e.name()), enum_values(e));
        }
    }
    let schema = json!({ "enums": enums });
    format!("const SCHEMA = {schema};\n")
}

fn enum_values(e: &prost_types::EnumDescriptorProto) -> Value {
    let map: BTreeMap<String, String> = e
        .value
        .iter()
        .map(|v| (v.number().to_string(), v.name().to_string()))
        .collect();
    json!(map)
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
