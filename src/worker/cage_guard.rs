//! The process's share of V8's heap cage. With pointer compression (which V8's heap sandbox
//! needs) every isolate of a process allocates its JavaScript heap inside one 4 GiB
//! reservation, the cage. Each isolate's heap limit is checked by V8 (and the near-heap-limit
//! callback stops the script, `terminate.rs`), but nothing checks their sum: three tenants of a
//! `WorkerPool` with a limit of 2 GiB each (or V8's default) fill the cage before any reaches
//! its own limit, and V8 aborts the process — every tenant with it (measured: exit 133, SIGTRAP).
//!
//! So every worker publishes its heap's committed size into a process-wide sum: after each of
//! its garbage collections and, while two or more workers live and the sum is over a quarter of
//! the cage, every `POLL` when a watcher thread asks (an interrupt: big objects grow the old
//! generation by hundreds of MiB between two collections). When the sum is over
//! `CAGE_BUDGET_BYTES`, every worker whose heap is over 256 MiB or its share of the budget
//! (the biggest always is) is stopped when it looks, as at its own heap limit
//! (`TerminationReason::HeapLimit`); small tenants go on. The budget (2.5 GiB) leaves the rest of
//! the cage for what grows between two looks and for the head-room a stopped script needs to
//! unwind.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::error::TerminationReason;
use super::terminate::TerminateHandle;

/// The pointer-compression cage all isolates of a process share.
pub const CAGE_BYTES: usize = 4 << 30;

/// What the heaps of all isolates of a process may hold together: past it, the isolate whose
/// collection found the sum over is stopped.
pub const CAGE_BUDGET_BYTES: usize = 5 << 29;

/// A heap this big is stopped when the cage is over budget (a smaller one only if it is at
/// least its share of the budget).
const BIG_BYTES: usize = 256 << 20;

/// The sum of every live worker's last published heap size.
static COMMITTED: AtomicUsize = AtomicUsize::new(0);

/// How often the watcher asks every worker for its heap size while the cage fills.
const POLL: Duration = Duration::from_millis(5);

/// A live worker, as the watcher sees it.
#[derive(Clone)]
struct Watched {
    isolate: v8::IsolateHandle,
    /// The share's address (the interrupt's data).
    share: usize,
    /// An interrupt was asked for and has not run yet: an isolate that runs no JavaScript
    /// for a while (waiting for a reply) would otherwise pile up one request every `POLL`.
    asked: Arc<AtomicBool>,
}

/// Every live worker.
static WORKERS: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
/// Wakes the watcher when a second worker appears.
static SECOND_WORKER: Condvar = Condvar::new();
static WATCHER: std::sync::Once = std::sync::Once::new();

fn workers() -> std::sync::MutexGuard<'static, Vec<Watched>> {
    WORKERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The watcher thread (one per process, started with the first worker): while two or more
/// workers live and the cage is over a quarter full, asks each for its heap size every `POLL`.
fn watch() {
    loop {
        let asked: Vec<Watched> = {
            let mut list = workers();
            while list.len() < 2 {
                list = SECOND_WORKER.wait(list).unwrap_or_else(|p| p.into_inner());
            }
            if COMMITTED.load(Ordering::Relaxed) > CAGE_BYTES / 4 {
                list.clone()
            } else {
                Vec::new()
            }
        };
        for w in asked {
            if !w.asked.swap(true, Ordering::Relaxed) {
                // V8 drops the request if the isolate has been disposed meanwhile.
                w.isolate
                    .request_interrupt(on_interrupt, w.share as *mut c_void);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The heap size of all isolates of this process, as last published after their collections.
pub fn committed_heap_bytes() -> usize {
    COMMITTED.load(Ordering::Relaxed)
}

/// One worker's share; owned by the worker, boxed so that its address (V8's callback data) is
/// stable, and dropped only after the isolate.
pub(crate) struct CageShare {
    /// This isolate's heap size as last added to `COMMITTED`.
    published: AtomicUsize,
    terminate: TerminateHandle,
    /// See `Watched::asked`.
    asked: Arc<AtomicBool>,
}

impl CageShare {
    pub(crate) fn new(terminate: TerminateHandle) -> Box<CageShare> {
        Box::new(CageShare {
            published: AtomicUsize::new(0),
            terminate,
            asked: Arc::default(),
        })
    }

    /// Publishes the isolate's heap size; stops its script when the process's sum is over
    /// the budget.
    fn check(&self, isolate: &mut v8::Isolate) {
        let now = isolate.get_heap_statistics().total_heap_size();
        let before = self.published.swap(now, Ordering::Relaxed);
        let total = if now >= before {
            COMMITTED.fetch_add(now - before, Ordering::Relaxed) + (now - before)
        } else {
            COMMITTED.fetch_sub(before - now, Ordering::Relaxed) - (before - now)
        };
        if total > CAGE_BUDGET_BYTES {
            // Big tenants are stopped; small ones go on. (A stopped tenant keeps its heap until
            // its worker is gone, so "big" cannot wait for a fair share of what is left.)
            let big = (CAGE_BUDGET_BYTES / workers().len().max(1)).min(BIG_BYTES);
            if now >= big {
                self.terminate.terminate_for(TerminationReason::HeapLimit);
            }
        }
    }

    /// Registers the check at the end of every garbage collection of `isolate`, and the
    /// isolate with the watcher.
    pub(crate) fn install(self: &Box<CageShare>, isolate: &mut v8::Isolate) {
        let data = &**self as *const CageShare as *mut c_void;
        isolate.add_gc_epilogue_callback(after_gc, data, v8::GCType::kGCTypeAll);
        WATCHER.call_once(|| {
            std::thread::Builder::new()
                .name("v8box-cage-watch".into())
                .spawn(watch)
                .expect("a thread for the cage watcher");
        });
        let mut list = workers();
        list.push(Watched {
            isolate: isolate.thread_safe_handle(),
            share: data as usize,
            asked: self.asked.clone(),
        });
        if list.len() == 2 {
            SECOND_WORKER.notify_all();
        }
    }
}

impl Drop for CageShare {
    // Runs after the isolate is disposed (with every interrupt still pending for it).
    fn drop(&mut self) {
        let me = self as *const CageShare as usize;
        workers().retain(|w| w.share != me);
        COMMITTED.fetch_sub(*self.published.get_mut(), Ordering::Relaxed);
    }
}

unsafe extern "C" fn on_interrupt(isolate: v8::UnsafeRawIsolatePtr, data: *mut c_void) {
    // SAFETY: `data` is the address of a live worker's `CageShare` (registered in `install`);
    // the worker drops the share only after disposing of the isolate, which discards pending
    // interrupts. V8 runs this on the isolate's own thread with `isolate` live.
    let (share, mut isolate) = unsafe {
        (
            &*(data as *const CageShare),
            v8::Isolate::from_raw_isolate_ptr(isolate),
        )
    };
    share.asked.store(false, Ordering::Relaxed);
    share.check(&mut isolate);
}

unsafe extern "C" fn after_gc(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `CageShare` registered in `install`; the worker owns that box and
    // drops it only after the isolate is disposed. V8 calls this on the isolate's own thread,
    // at the end of a collection, with `isolate` the live isolate that was collected.
    let (share, mut isolate) = unsafe {
        (
            &*(data as *const CageShare),
            v8::Isolate::from_raw_isolate_ptr(isolate),
        )
    };
    share.check(&mut isolate);
}
