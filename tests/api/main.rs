//! The Rust API: the Worker, the protocol codec, the runtime.

mod fuzz_corpus;
mod isolation;
mod protocol;
mod sandbox;
mod warm;
mod worker;

/// JavaScript for the bytes of a WebAssembly module that exports `add(a, b)`.
pub const WASM_ADD: &str = "new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11])";

/// Garbage, some of it kept a few rounds in `keep` (an array the script declares): it fills
/// the old generation, whose full collection is what clears a FinalizationRegistry's cells
/// (young garbage alone is collected without one).
pub const KEPT_GARBAGE: &str =
    "{ const junk = []; for (let i = 0; i < 10000; i++) junk.push({ a: i, b: [i] });\n\
    keep.push(junk); if (keep.length > 4) keep.shift(); }";
