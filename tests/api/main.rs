//! The Rust API: the Worker, the protocol codec, the runtime.

mod fuzz_corpus;
mod protocol;
mod sandbox;
mod warm;
mod worker;
