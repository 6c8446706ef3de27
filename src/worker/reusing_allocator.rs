//! Every isolate's ArrayBuffer allocator: V8's own allocator inside the heap sandbox, with freed
//! blocks of up to 2 MiB kept for reuse (`reusing_allocator.cc`, compiled by build.rs, says why
//! and what it keeps).

extern "C" {
    fn v8box__ReusingAllocator__new() -> *mut v8::Allocator;
    fn v8box__ReusingAllocator__counts(allocations: *mut u64, reused: *mut u64);
    fn v8box__ReusingAllocator__overwritten_next(on: bool);
}

/// A new allocator for one isolate's `CreateParams` (the blocks it keeps are the process's).
pub(crate) fn new() -> v8::SharedPtr<v8::Allocator> {
    // SAFETY: V8 is initialized (the caller made the platform ready); the function returns a
    // new, owned `v8::ArrayBuffer::Allocator*` that is freed with `delete`, which is what the
    // crate's UniquePtr does when dropped.
    let raw = unsafe { v8box__ReusingAllocator__new() };
    // SAFETY: `raw` is the sole owner of a live allocator (checked non-null by the crate).
    unsafe { v8::UniquePtr::from_raw(raw) }.make_shared()
}

/// A new ArrayBuffer of `bytes`' length holding a copy of them. A kept block is not zeroed
/// before the copy overwrites every byte of it (with V8's zeroing, the zeroing cost 2.5× the
/// copy: docs/BENCHMARKS.md).
pub(crate) fn array_buffer_of<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    bytes: &[u8],
) -> v8::Local<'s, v8::ArrayBuffer> {
    // SAFETY (both calls): sets a flag of this thread that the allocator reads and clears at
    // its next allocation. Between the two calls V8 allocates only this buffer's backing store
    // (it runs no JavaScript), and the copy below writes all of it before anything can read it.
    unsafe { v8box__ReusingAllocator__overwritten_next(true) };
    let ab = v8::ArrayBuffer::new(scope, bytes.len());
    unsafe { v8box__ReusingAllocator__overwritten_next(false) };
    if let Some(data) = ab.data() {
        // SAFETY: the new buffer is exactly `bytes.len()` long and no JavaScript runs meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.as_ptr() as *mut u8, bytes.len())
        };
    }
    ab
}

/// How many ArrayBuffer allocations of a kept size this process made, and how many of them
/// reused a freed block: `(allocations, reused)`.
pub fn reuse_counts() -> (u64, u64) {
    let (mut allocations, mut reused) = (0, 0);
    // SAFETY: two valid out-pointers; the function only reads counters under its lock.
    unsafe { v8box__ReusingAllocator__counts(&mut allocations, &mut reused) };
    (allocations, reused)
}
