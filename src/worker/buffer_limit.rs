//! The limit on a worker's ArrayBuffer memory. Backing stores (ArrayBuffers, typed arrays,
//! WebAssembly memories, resizable and shared buffers) live outside V8's JavaScript heap, so
//! the heap limit alone would let `new ArrayBuffer(1e9)` in a loop take the host's memory.
//!
//! With V8's heap sandbox every backing store must come from V8's own allocator (inside the
//! sandbox): a Rust allocator that counts and refuses cannot be installed. V8 counts those
//! bytes itself as the isolate's external memory, and starts a garbage collection whenever it
//! grew by V8's soft limit (64 MiB) since the last one; at the start of every collection this
//! guard compares the count with the limit and stops the script (`TerminationReason::HeapLimit`)
//! once it is over. V8 counts some memories late (a WebAssembly memory's growth) and shared ones
//! not at all, so a host also asks for the check from another thread every few milliseconds
//! (`MemoryWatch`), and the CLI, whose process holds one run, watches the process's resident
//! memory as well (`src/watchdog.rs`). What a script can still take past the limit is measured
//! in docs/SECURITY.md ("Memory").

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::TerminationReason;
use super::terminate::TerminateHandle;

/// Owned by the worker, boxed so that its address (V8's callback data) is stable; dropped only
/// after the isolate.
pub(crate) struct BufferLimit {
    limit: usize,
    terminate: TerminateHandle,
    /// A `MemoryWatch` asked for the check and it has not run yet: a run that waits (no
    /// JavaScript runs, so no interrupt) would otherwise pile up a request per poke.
    asked: Arc<AtomicBool>,
}

impl BufferLimit {
    pub(crate) fn new(limit: usize, terminate: TerminateHandle) -> Box<BufferLimit> {
        Box::new(BufferLimit {
            limit,
            terminate,
            asked: Arc::default(),
        })
    }

    /// Stops the run when the isolate's external memory is over the limit.
    pub(crate) fn check(&self, isolate: &mut v8::Isolate) {
        if isolate.get_heap_statistics().external_memory() > self.limit {
            self.terminate.terminate_for(TerminationReason::HeapLimit);
        }
    }

    /// Registers the check at the start of every garbage collection of `isolate`.
    pub(crate) fn install(self: &Box<BufferLimit>, isolate: &mut v8::Isolate) {
        let data = &**self as *const BufferLimit as *mut c_void;
        isolate.add_gc_prologue_callback(before_gc, data, v8::GCType::kGCTypeAll);
    }
}

/// Asks a worker's isolate, from any thread, to compare its ArrayBuffer memory with the limit
/// at its next interrupt check (`Send + Sync`; inert once the worker is gone).
#[derive(Clone)]
pub struct MemoryWatch {
    isolate: v8::IsolateHandle,
    /// The worker's `BufferLimit`, as an address: it is read only on the isolate's thread, by
    /// `on_interrupt`, while the isolate lives (and so the worker that owns the box).
    limit: usize,
    /// See `BufferLimit::asked`.
    asked: Arc<AtomicBool>,
}

impl MemoryWatch {
    pub(crate) fn new(isolate: v8::IsolateHandle, limit: &BufferLimit) -> MemoryWatch {
        MemoryWatch {
            isolate,
            limit: limit as *const BufferLimit as usize,
            asked: limit.asked.clone(),
        }
    }

    /// Requests the check; V8 drops the request if the isolate has been disposed.
    pub fn poke(&self) {
        if !self.asked.swap(true, Ordering::Relaxed) {
            self.isolate
                .request_interrupt(on_interrupt, self.limit as *mut c_void);
        }
    }
}

unsafe extern "C" fn on_interrupt(isolate: v8::UnsafeRawIsolatePtr, data: *mut c_void) {
    // SAFETY: `data` is the address of the worker's `BufferLimit`, which the worker drops only
    // after disposing of the isolate (and with it every interrupt still pending); V8 runs the
    // interrupt on the isolate's own thread with `isolate` live.
    let (limit, mut isolate) = unsafe {
        (
            &*(data as *const BufferLimit),
            v8::Isolate::from_raw_isolate_ptr(isolate),
        )
    };
    limit.asked.store(false, Ordering::Relaxed);
    limit.check(&mut isolate);
}

unsafe extern "C" fn before_gc(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `BufferLimit` registered in `install`; the worker owns that box and
    // drops it only after the isolate is disposed. V8 calls this on the isolate's own thread,
    // during a collection, with `isolate` the live isolate being collected.
    let (limit, mut isolate) = unsafe {
        (
            &*(data as *const BufferLimit),
            v8::Isolate::from_raw_isolate_ptr(isolate),
        )
    };
    limit.check(&mut isolate);
}
