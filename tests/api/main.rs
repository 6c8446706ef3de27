//! The Rust API: the Worker, the protocol codec, the runtime.

mod protocol;
mod sandbox;
mod worker;
