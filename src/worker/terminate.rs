//! Stopping a running script from outside: `TerminateHandle`, and the near-heap-limit guard
//! that stops a runaway heap before V8's out-of-memory handler would abort the process.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// Where a stop goes: an isolate of this process, or one in a worker process
/// (`TerminateHandle::remote`).
enum Target {
    Isolate(v8::IsolateHandle),
    /// Asks the isolate's process to stop it (src/isolation/).
    Remote(Box<dyn Fn(TerminationReason) + Send + Sync>),
}

impl Target {
    fn terminate_execution(&self, reason: TerminationReason) {
        match self {
            Target::Isolate(i) => {
                i.terminate_execution();
            }
            Target::Remote(stop) => stop(reason),
        }
    }

    fn cancel_terminate_execution(&self) {
        if let Target::Isolate(i) = self {
            i.cancel_terminate_execution();
        }
    }
}

/// What every `TerminateHandle` of one isolate shares.
struct Control {
    isolate: Target,
    /// The run now in the isolate, and why it was stopped (if it was). One lock, so that a
    /// handle of a finished run can never stop the next run between its check and its stop.
    run: Mutex<Run>,
    /// Set for good once the heap limit was reached: such an isolate is not reused.
    heap_limit_reached: AtomicBool,
}

struct Run {
    /// Counts the runs (contexts) this isolate has hosted; see `Worker::renew`.
    generation: u64,
    reason: u8,
}

/// Stops the worker's running JavaScript from any thread. `Clone + Send + Sync`.
///
/// A handle belongs to the run that was in the worker when the handle was made
/// (`Worker::terminate_handle`): once the worker is renewed for another run, the handle does
/// nothing, so a host that keeps a stale handle cannot stop someone else's script.
#[derive(Clone)]
pub struct TerminateHandle {
    control: Arc<Control>,
    /// `None`: whichever run is current (the worker's own handle and its limit guards).
    generation: Option<u64>,
}

impl TerminateHandle {
    pub(crate) fn new(isolate: v8::IsolateHandle) -> TerminateHandle {
        TerminateHandle::with_target(Target::Isolate(isolate))
    }

    /// A handle for an isolate in another process: `stop(reason)` asks that process to stop
    /// it; the reason is recorded here (the first wins), as for a local isolate.
    pub fn remote(stop: impl Fn(TerminationReason) + Send + Sync + 'static) -> TerminateHandle {
        TerminateHandle::with_target(Target::Remote(Box::new(stop)))
    }

    /// Records `reason` as why the run stopped, if none is recorded yet, without stopping
    /// anything (a remote isolate that stopped itself, at its heap limit).
    pub fn note(&self, reason: TerminationReason) {
        let mut run = self.run();
        if self.is_mine(&run) && run.reason == NONE {
            run.reason = encode(reason);
        }
    }

    fn with_target(isolate: Target) -> TerminateHandle {
        TerminateHandle {
            control: Arc::new(Control {
                isolate,
                run: Mutex::new(Run {
                    generation: 0,
                    reason: NONE,
                }),
                heap_limit_reached: AtomicBool::new(false),
            }),
            generation: None,
        }
    }

    fn run(&self) -> MutexGuard<'_, Run> {
        self.control.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle that stops only the run that is current now.
    pub(crate) fn for_current_run(&self) -> TerminateHandle {
        TerminateHandle {
            control: self.control.clone(),
            generation: Some(self.run().generation),
        }
    }

    fn is_mine(&self, run: &Run) -> bool {
        self.generation.is_none_or(|g| g == run.generation)
    }

    /// Stops the script that is running now (or the next one to run). The worker's call
    /// returns a `JsError` that says it was terminated; the worker stays usable.
    pub fn terminate(&self) {
        self.terminate_for(TerminationReason::Terminated);
    }

    /// Like `terminate`, recording why; the first reason given wins.
    pub fn terminate_for(&self, reason: TerminationReason) {
        let mut run = self.run();
        if !self.is_mine(&run) {
            return;
        }
        if run.reason == NONE {
            run.reason = encode(reason);
        }
        if reason == TerminationReason::HeapLimit {
            self.control
                .heap_limit_reached
                .store(true, Ordering::SeqCst);
        }
        self.control.isolate.terminate_execution(reason);
    }

    /// The reason recorded by the last termination, if any.
    pub fn reason(&self) -> Option<TerminationReason> {
        let run = self.run();
        if !self.is_mine(&run) {
            return None;
        }
        decode(run.reason)
    }

    /// Forgets the recorded reason and lets the isolate run code again.
    pub(crate) fn reset(&self) {
        let mut run = self.run();
        if self.is_mine(&run) {
            run.reason = NONE;
            self.control.isolate.cancel_terminate_execution();
        }
    }

    /// Starts the next run in the same isolate: every handle of earlier runs goes inert.
    pub(crate) fn next_run(&self) {
        let mut run = self.run();
        run.generation += 1;
        run.reason = NONE;
        self.control.isolate.cancel_terminate_execution();
    }

    /// Whether the isolate ever reached its heap limit (it had to be given head-room to unwind).
    pub(crate) fn heap_limit_reached(&self) -> bool {
        self.control.heap_limit_reached.load(Ordering::SeqCst)
    }
}

/// Data for the near-heap-limit callback; boxed so its address is stable, and owned by the
/// worker so it outlives the isolate that points at it.
pub(crate) struct HeapGuard {
    pub(crate) terminate: TerminateHandle,
}

/// The most head-room a script stopped at its heap limit gets to unwind.
const HEAD_ROOM_BYTES: usize = 128 << 20;

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
    // Enough to unwind, and no more: every isolate of the process shares one 4 GiB cage
    // (`cage_guard.rs`), and doubling a big heap's limit would let it take the others' room.
    current_heap_limit.saturating_add(current_heap_limit.min(HEAD_ROOM_BYTES))
}
