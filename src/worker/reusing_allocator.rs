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
/// copy: docs/BENCHMARKS.md); from `STREAMED_BYTES` up the copy bypasses the cache
/// (`copy_streaming`).
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
        let into = data.as_ptr() as *mut u8;
        // SAFETY (both copies): the new buffer is exactly `bytes.len()` long, a block of its
        // own (no overlap with `bytes`), and no JavaScript runs meanwhile.
        if bytes.len() >= STREAMED_BYTES {
            unsafe { copy_streaming(bytes, into) };
        } else {
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), into, bytes.len()) };
        }
    }
    ab
}

/// From this length up, a host -> script message is copied past the cache.
const STREAMED_BYTES: usize = 64 << 10;

/// Copies `src` to `dst` with non-temporal stores, which write memory without reading it into
/// the cache first. A message's buffer is a block freed at V8's last collection, which external
/// memory starts only every tens of MiB: the block is long out of the cache, and an ordinary
/// copy reads every line of it from memory before overwriting it. Measured (docs/BENCHMARKS.md,
/// B2): a 1 MiB message in 0.55× the time, 64 KiB in 0.6×, and no slower for a script that then
/// reads every line of it; below 64 KiB it gains nothing.
///
/// Hand-written because nothing offers it: std's copy (glibc's `memmove`) streams only above a
/// threshold of several MiB taken from the cache sizes, settable only by an environment
/// variable for the whole process, and no well-kept crate provides a streaming copy.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and not overlap `src`.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_streaming(src: &[u8], dst: *mut u8) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    // Streaming stores need 16-byte aligned targets; V8's blocks are page-aligned.
    if (dst as usize) % 16 != 0 {
        // SAFETY: the caller's guarantee.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        return;
    }
    let whole = src.len() & !63;
    let mut at = 0;
    while at < whole {
        // SAFETY: `at + 64 <= src.len()`, so the four 16-byte loads are inside `src` (unaligned
        // loads) and the four stores inside `dst` (aligned: `dst` and `at` are multiples of 16);
        // SSE2, which these need, is part of every x86_64 CPU.
        unsafe {
            let from = src.as_ptr().add(at) as *const __m128i;
            let to = dst.add(at) as *mut __m128i;
            let (a, b) = (_mm_loadu_si128(from), _mm_loadu_si128(from.add(1)));
            let (c, d) = (_mm_loadu_si128(from.add(2)), _mm_loadu_si128(from.add(3)));
            _mm_stream_si128(to, a);
            _mm_stream_si128(to.add(1), b);
            _mm_stream_si128(to.add(2), c);
            _mm_stream_si128(to.add(3), d);
        }
        at += 64;
    }
    // SAFETY: orders the streaming stores before any later store (another thread that is
    // handed the buffer sees its bytes); the tail is inside both slices.
    unsafe {
        _mm_sfence();
        std::ptr::copy_nonoverlapping(src.as_ptr().add(whole), dst.add(whole), src.len() - whole);
    }
}

/// Elsewhere: an ordinary copy.
///
/// # Safety
/// As on x86_64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_streaming(src: &[u8], dst: *mut u8) {
    // SAFETY: the caller's guarantee.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// How many ArrayBuffer allocations of a kept size this process made, and how many of them
/// reused a freed block: `(allocations, reused)`.
pub fn reuse_counts() -> (u64, u64) {
    let (mut allocations, mut reused) = (0, 0);
    // SAFETY: two valid out-pointers; the function only reads counters under its lock.
    unsafe { v8box__ReusingAllocator__counts(&mut allocations, &mut reused) };
    (allocations, reused)
}
