//! Stopping a running script from outside: `TerminateHandle`, and the near-heap-limit guard
//! that stops a runaway heap before V8's out-of-memory handler would abort the process.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::error::TerminationReason;

const NONE: u8 = 0;

fn encode(r: TerminationReason) -> u8 {
    match r {
        TerminationReason::Terminated => 1,
        TerminationReason::Timeout => 2,
        TerminationReason::HeapLimit => 3,
        TerminationReason::Exit => 4,
    }
}

fn decode(v: u8) -> Option<TerminationReason> {
    Some(match v {
        1 => TerminationReason::Terminated,
        2 => TerminationReason::Timeout,
        3 => TerminationReason::HeapLimit,
        4 => TerminationReason::Exit,
        _ => return None,
    })
}

/// Stops the worker's running JavaScript from any thread. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct TerminateHandle {
    isolate: v8::IsolateHandle,
    reason: Arc<AtomicU8>,
}

impl TerminateHandle {
    pub(crate) fn new(isolate: v8::IsolateHandle) -> TerminateHandle {
        TerminateHandle {
            isolate,
            reason: Arc::new(AtomicU8::new(NONE)),
        }
    }

    /// Stops the script that is running now (or the next one to run). The worker's call
    /// returns a `JsError` that says it was terminated; the worker stays usable.
    pub fn terminate(&self) {
        self.terminate_for(TerminationReason::Terminated);
    }

    /// Like `terminate`, recording why; the first reason given wins.
    pub fn terminate_for(&self, reason: TerminationReason) {
        let _ =
            self.reason
                .compare_exchange(NONE, encode(reason), Ordering::SeqCst, Ordering::SeqCst);
        self.isolate.terminate_execution();
    }

    /// The reason recorded by the last termination, if any.
    pub fn reason(&self) -> Option<TerminationReason> {
        decode(self.reason.load(Ordering::SeqCst))
    }

    /// Forgets the recorded reason and lets the isolate run code again.
    pub(crate) fn reset(&self) {
        self.reason.store(NONE, Ordering::SeqCst);
        self.isolate.cancel_terminate_execution();
    }
}

/// Data for the near-heap-limit callback; boxed so its address is stable, and owned by the
/// worker so it outlives the isolate that points at it.
pub(crate) struct HeapGuard {
    pub(crate) terminate: TerminateHandle,
}

/// Called by V8 when the heap is close to its limit: record the reason, terminate the script
/// and grant head-room so that V8 can unwind instead of aborting the process.
pub(crate) extern "C" fn near_heap_limit(
    data: *mut c_void,
    current_heap_limit: usize,
    _initial_heap_limit: usize,
) -> usize {
    // SAFETY: `data` is the `HeapGuard` registered in `Worker::with_options`; the worker owns
    // that box and drops it only after the isolate is disposed, so the pointer is valid here.
    let guard = unsafe { &*(data as *const HeapGuard) };
    guard.terminate.terminate_for(TerminationReason::HeapLimit);
    current_heap_limit.saturating_mul(2)
}
