//! v8box: an auditable, message-passing JavaScript sandbox on V8.
//!
//! A script sees exactly three native functions — `$send`, `$recv` and `$print` — and reaches
//! the outside world only through messages the host decides about.

pub mod worker;

pub use worker::{
    set_flags, version, JsError, TerminateHandle, TerminationReason, Worker, WorkerOptions,
};
pub mod loader;
