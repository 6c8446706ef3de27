//! Compiles `proto/v8box.proto` twice from one parse, so the two sides cannot drift:
//! - into Rust types with prost-build (the schema is parsed by `protox`: no system `protoc`);
//! - into JavaScript (`schema.js`): a table of every message's fields, and for each message an
//!   encoder and a decoder function specialised to its fields (`codec_gen`), which
//!   `js/codec.js`'s `encode`/`decode` call. Specialised code reads and writes properties by
//!   constant names and builds decoded objects from one literal each, so V8 keeps every access
//!   monomorphic (a table-driven loop over field names made them megamorphic; measured in
//!   docs/BENCHMARKS.md).
//! Then assembles the prelude every isolate loads: schema + codec + the `sys` library.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::PathBuf;

use prost_types::{field_descriptor_proto::Label, DescriptorProto, FileDescriptorSet};
use serde_json::{json, Value};

#[path = "build/codec_gen.rs"]
mod codec_gen;

const PRELUDE_PARTS: [&str; 3] = ["js/primordials.js", "js/codec.js", "js/sys.js"];

fn main() {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=js");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let fds = protox::compile(["v8box.proto"], ["proto"]).expect("proto/v8box.proto compiles");
    let schema = js_schema(&fds) + &codec_gen::generate(&fds);
    fs::write(out.join("schema.js"), schema).unwrap();
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build generates the Rust types");

    let mut prelude = String::from("(function () {\n'use strict';\n");
    prelude.push_str(&fs::read_to_string(out.join("schema.js")).unwrap());
    for part in PRELUDE_PARTS {
        prelude.push_str(&format!("// ---- {part}\n"));
        prelude.push_str(&fs::read_to_string(part).unwrap());
    }
    prelude.push_str("\n})();\n");
    fs::write(out.join("prelude.js"), prelude).unwrap();

    // The codec alone, exposed as `globalThis.codec`, for round-trip tests and tools.
    let mut codec = String::from("(function () {\n'use strict';\n");
    codec.push_str(&fs::read_to_string(out.join("schema.js")).unwrap());
    for part in &PRELUDE_PARTS[..2] {
        codec.push_str(&fs::read_to_string(part).unwrap());
    }
    codec.push_str("\nglobalThis.codec = { encode, decode, utf8Encode, utf8Decode };\n})();\n");
    fs::write(out.join("codec.js"), codec).unwrap();
}

/// `const SCHEMA = {messages: {...}, enums: {...}};` — for each message its fields as
/// `[number, jsonName, type, repeated, oneofName|null, typeName|null]`, types being
/// `FieldDescriptorProto.Type` numbers.
fn js_schema(fds: &FileDescriptorSet) -> String {
    let mut messages = BTreeMap::new();
    let mut enums = BTreeMap::new();
    for file in &fds.file {
        let package = file.package();
        for e in &file.enum_type {
            enums.insert(format!("{package}.{}", e.name()), enum_values(e));
        }
        for m in &file.message_type {
            walk(package, m, &mut messages, &mut enums);
        }
    }
    let schema = json!({ "messages": messages, "enums": enums });
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

fn walk(
    prefix: &str,
    m: &DescriptorProto,
    messages: &mut BTreeMap<String, Value>,
    enums: &mut BTreeMap<String, Value>,
) {
    let full = format!("{prefix}.{}", m.name());
    let mut fields: Vec<_> = m.field.iter().collect();
    fields.sort_by_key(|f| f.number());
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|f| {
            let oneof = match f.oneof_index {
                Some(i) if !f.proto3_optional() => json!(m.oneof_decl[i as usize].name()),
                _ => Value::Null,
            };
            let type_name = f
                .type_name
                .as_deref()
                .map(|t| t.trim_start_matches('.').to_string());
            json!([
                f.number(),
                f.json_name.clone().unwrap_or_else(|| camel(f.name())),
                f.r#type,
                f.label() == Label::Repeated,
                oneof,
                type_name
            ])
        })
        .collect();
    messages.insert(full.clone(), json!(fields));
    for e in &m.enum_type {
        enums.insert(format!("{full}.{}", e.name()), enum_values(e));
    }
    for nested in &m.nested_type {
        walk(&full, nested, messages, enums);
    }
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
