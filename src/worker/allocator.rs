//! The ArrayBuffer allocator of a worker with a heap limit. ArrayBuffer memory lives outside
//! V8's heap, so the heap limit alone would let `new ArrayBuffer(1e9)` in a loop take the host's
//! memory. This allocator counts those bytes and refuses — and stops the script with
//! `TerminationReason::HeapLimit` — when a script's buffers would pass the limit.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::error::TerminationReason;
use super::terminate::TerminateHandle;

const ALIGN: usize = 16;

pub(crate) struct LimitedAllocator {
    limit: usize,
    used: AtomicUsize,
    /// Set once the isolate exists (the allocator is made before it).
    pub(crate) terminate: OnceLock<TerminateHandle>,
}

impl LimitedAllocator {
    pub(crate) fn new(limit: usize) -> Arc<LimitedAllocator> {
        Arc::new(LimitedAllocator {
            limit,
            used: AtomicUsize::new(0),
            terminate: OnceLock::new(),
        })
    }

    fn reserve(&self, len: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(len).filter(|&n| n <= self.limit) else {
                if let Some(t) = self.terminate.get() {
                    t.terminate_for(TerminationReason::HeapLimit);
                }
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::Relaxed);
    }
}

fn layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.max(1), ALIGN).ok()
}

unsafe extern "C" fn allocate(a: &LimitedAllocator, len: usize) -> *mut c_void {
    let Some(l) = layout(len) else {
        return std::ptr::null_mut();
    };
    if !a.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: `l` has a non-zero size; V8 frees this block through `free` with the same length.
    let p = unsafe { alloc_zeroed(l) };
    if p.is_null() {
        a.release(len);
    }
    p as *mut c_void
}

unsafe extern "C" fn allocate_uninitialized(a: &LimitedAllocator, len: usize) -> *mut c_void {
    let Some(l) = layout(len) else {
        return std::ptr::null_mut();
    };
    if !a.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: as in `allocate`.
    let p = unsafe { alloc(l) };
    if p.is_null() {
        a.release(len);
    }
    p as *mut c_void
}

unsafe extern "C" fn free(a: &LimitedAllocator, data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    if let Some(l) = layout(len) {
        // SAFETY: `data` came from `allocate`/`reallocate` with this length and alignment.
        unsafe { dealloc(data as *mut u8, l) };
        a.release(len);
    }
}

unsafe extern "C" fn reallocate(
    a: &LimitedAllocator,
    data: *mut c_void,
    old: usize,
    new: usize,
) -> *mut c_void {
    let (Some(old_l), Some(_)) = (layout(old), layout(new)) else {
        return std::ptr::null_mut();
    };
    if new > old && !a.reserve(new - old) {
        return std::ptr::null_mut();
    }
    // SAFETY: `data` came from this allocator with length `old`; `new` is non-zero after `max(1)`.
    let p = unsafe { realloc(data as *mut u8, old_l, new.max(1)) };
    if p.is_null() {
        if new > old {
            a.release(new - old);
        }
        return std::ptr::null_mut();
    }
    if new < old {
        a.release(old - new);
    }
    p as *mut c_void
}

unsafe extern "C" fn drop_handle(handle: *const LimitedAllocator) {
    // SAFETY: the handle was made by `Arc::into_raw` in `into_v8`; V8 drops it exactly once.
    drop(unsafe { Arc::from_raw(handle) });
}

static VTABLE: v8::RustAllocatorVtable<LimitedAllocator> = v8::RustAllocatorVtable {
    allocate,
    allocate_uninitialized,
    free,
    reallocate,
    drop: drop_handle,
};

/// The V8 allocator backed by `a` (V8 holds one reference until it drops the allocator).
pub(crate) fn into_v8(a: &Arc<LimitedAllocator>) -> v8::UniqueRef<v8::Allocator> {
    let handle = Arc::into_raw(a.clone());
    // SAFETY: `handle` stays valid until V8 calls `drop_handle`, which releases it; the vtable
    // is 'static.
    unsafe { v8::new_rust_allocator(handle, &VTABLE) }
}
