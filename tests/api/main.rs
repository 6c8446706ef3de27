//! The Rust API: the Worker, the protocol codec, the runtime.

mod protocol;
mod worker;
