//! What a run's event loop needs of its isolate, wherever the isolate lives: a `Worker` on the
//! run's own thread (`--isolation=thread`), or one in a jailed worker process behind
//! `isolation::RemoteWorker` (`--isolation=process`). `runtime::event_loop` is written against
//! this trait only, so both isolations run the same loop.

use crate::worker::{JsError, Resolver, TerminateHandle, Worker};

/// One isolate with one context, as the event loop drives it. See `Worker` for what each call
/// means.
pub trait Engine {
    /// Runs a classic script.
    fn load(&mut self, name: &str, source: &str) -> Result<(), JsError>;
    /// Sets the resolver of the run's imports, static and dynamic (`import()` may happen
    /// while any call runs JavaScript).
    fn set_resolver(&mut self, resolver: Resolver);
    /// Runs an ES module; each import is resolved by the resolver of `set_resolver`.
    fn load_module(&mut self, name: &str, source: &str) -> Result<(), JsError>;
    /// Whether a main module still waits in top-level await.
    fn poll_modules(&mut self) -> Result<bool, JsError>;
    /// Delivers a message to the script's `$recv` callback.
    fn send_vec(&mut self, msg: Vec<u8>) -> Result<(), JsError>;
    /// Runs what V8 queued for the isolate's thread; whether anything ran.
    fn run_platform_tasks(&mut self) -> Result<bool, JsError>;
    /// Whether V8 works for the isolate in the background.
    fn has_background_work(&self) -> bool;
    /// The oldest error nothing handled.
    fn take_unhandled_rejection(&mut self) -> Option<JsError>;
    /// Stops the script from any thread.
    fn terminate_handle(&self) -> TerminateHandle;
    /// Why the isolate's process ended by itself (a crash, a signal), if it did.
    fn crashed(&self) -> Option<String> {
        None
    }
    /// Whether the run was given up on, and how: its isolate's process was killed because the
    /// script did not stop in time after its limit stopped it (`None`: it was not).
    fn abandoned(&self) -> Option<String> {
        None
    }
}

impl Engine for Worker {
    fn load(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        Worker::load(self, name, source)
    }
    fn set_resolver(&mut self, resolver: Resolver) {
        Worker::set_resolver(self, resolver)
    }
    fn load_module(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        Worker::load_main_module(self, name, source)
    }
    fn poll_modules(&mut self) -> Result<bool, JsError> {
        Worker::poll_modules(self)
    }
    fn send_vec(&mut self, msg: Vec<u8>) -> Result<(), JsError> {
        Worker::send_vec(self, msg)
    }
    fn run_platform_tasks(&mut self) -> Result<bool, JsError> {
        Worker::run_platform_tasks(self)
    }
    fn has_background_work(&self) -> bool {
        Worker::has_background_work(self)
    }
    fn take_unhandled_rejection(&mut self) -> Option<JsError> {
        Worker::take_unhandled_rejection(self)
    }
    fn terminate_handle(&self) -> TerminateHandle {
        Worker::terminate_handle(self)
    }
}
