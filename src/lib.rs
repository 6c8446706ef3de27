//! v8box: an auditable, message-passing JavaScript sandbox on V8.
//!
//! A script sees exactly three native functions — `$send`, `$recv` and `$print` — and reaches
//! the outside world only through protobuf messages that the host decodes, checks against a
//! default-deny policy, executes and records in an audit log.

#![warn(missing_docs)]

pub mod audit;
pub mod dispatch;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
pub mod isolation;
pub mod loader;
pub mod ops;
pub mod policy;
mod pool;
pub mod proto;
pub mod runtime;
pub mod sandbox;
mod watchdog;
pub mod worker;
pub mod worker_pool;

pub use engine::Engine;
pub use isolation::Isolation;
pub use loader::Imports;
pub use policy::Policy;
pub use runtime::{run, run_warm, Exit, Main, RunOptions, WarmWorker};
pub use sandbox::{HostReceiver, HostSender, RunHandle, Sandbox, SandboxBuilder};
pub use worker::{
    set_flags, version, JsError, TerminateHandle, TerminationReason, Worker, WorkerOptions,
};
pub use worker_pool::{Job, JobResult, WorkerPool};
