// The ArrayBuffer allocator of every isolate v8box makes: V8's own in-sandbox allocator, with
// freed blocks of up to 2 MiB kept for reuse.
//
// Why this exists (a small hand-written layer over V8's allocator, not a replacement): with the
// heap sandbox every backing store must lie inside the sandbox, and the `v8` crate offers only
// V8's default allocator there. In V8 15.2 that is a page-granular region allocator that takes
// fresh, zero-filled pages from the kernel for every buffer (even 64 bytes) and gives them back
// when it is freed: a 1 MiB host -> script message spent 71 % of its time in page faults, and
// `new ArrayBuffer(64)` three times what it cost on V8 12.9 (docs/BENCHMARKS.md). Chrome avoids
// this by giving V8 PartitionAlloc on the sandbox's address space; neither is bound by the
// crate. Keeping a few freed blocks per power-of-two size class and handing them out again
// (zeroed where V8 asks for zeroed memory) removes both costs while every byte still comes from
// V8's allocator, inside the sandbox.
//
// The bookkeeping (which blocks are free) lives here, outside the sandbox, never inside the
// freed blocks: the heap sandbox assumes an attacker who can write anywhere inside it, and a free
// list threaded through sandbox memory would let them choose the address this allocator zeroes
// and hands to V8.
//
// What is kept is bounded: at most kMaxKeptBytes per process (a block smaller than a page counts
// as a page, which is what it occupies). That is V8's soft limit of external memory, at which it
// starts a garbage collection, so the buffers one collection frees can all be reused. And what
// is kept never raises the process's peak: a fresh allocation first gives back kept blocks of
// other sizes, at least as many bytes as it takes, so live plus kept memory stays at most what
// was live at the peak (plus one class's rounding).
//
// V8 frees a block with the length it allocated it with (a BackingStore keeps its byte length;
// resizable and WebAssembly memories do not come through here but through the page allocator).

// Compiled by build.rs against the `v8` crate's own V8 headers, without RTTI and exceptions
// (as V8 itself is built); nothing here uses the C++ standard library, so it does not matter
// that the crate's archive carries its own libc++.

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cstdlib>

#include "v8-array-buffer.h"

namespace {

constexpr int kMinShift = 6;   // 64 bytes: the smallest class
constexpr int kMaxShift = 21;  // 2 MiB: larger buffers go straight to V8's allocator
constexpr int kClasses = kMaxShift - kMinShift + 1;
constexpr size_t kPage = 4096;
constexpr size_t kMaxKeptBytes = size_t{64} << 20;

// The size class of a buffer of `length` bytes, or -1 when it is not kept.
int class_of(size_t length) {
  if (length == 0 || length > (size_t{1} << kMaxShift)) return -1;
  int shift = kMinShift;
  while ((size_t{1} << shift) < length) shift++;
  return shift - kMinShift;
}

size_t class_bytes(int c) { return size_t{1} << (c + kMinShift); }

constexpr size_t footprint(int c) {
  size_t bytes = size_t{1} << (c + kMinShift);
  return bytes < kPage ? kPage : bytes;
}

// Each class can hold all of kMaxKeptBytes: one collection may free that many of one size.
constexpr size_t slots(int c) { return kMaxKeptBytes / footprint(c); }

constexpr size_t first_slot(int c) { return c == 0 ? 0 : first_slot(c - 1) + slots(c - 1); }

constexpr size_t kAllSlots = first_slot(kClasses);

// The free blocks of the whole process (all isolates share it; V8 frees from its sweeper
// threads too, hence the lock).
struct Kept {
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  void* blocks[kAllSlots];  // class c's kept blocks: from first_slot(c), count[c] of them
  size_t count[kClasses] = {};
  size_t bytes = 0;
  // Counters for tests and benchmarks: allocations served from kept blocks, and in all.
  uint64_t reused = 0;
  uint64_t allocations = 0;
};

Kept kept;

// Set around one allocation whose every byte the caller writes before any JavaScript runs (a
// host -> script message): a kept block is then handed out without zeroing it first.
thread_local bool overwritten_next = false;

// V8's own allocator, one for the process (never freed): every block, kept or not, goes back to
// the allocator it came from.
pthread_once_t inner_once = PTHREAD_ONCE_INIT;
v8::ArrayBuffer::Allocator* inner_allocator = nullptr;

void make_inner() { inner_allocator = v8::ArrayBuffer::Allocator::NewDefaultAllocator(); }

class ReusingAllocator final : public v8::ArrayBuffer::Allocator {
 public:
  ReusingAllocator() : inner_(inner_allocator) {}

  // Allocated with malloc, not the global operator new: the crate's archive links its own C++
  // runtime, and this object must be freed by the same allocator that made it.
  static void* operator new(size_t size) { return std::malloc(size); }
  static void operator delete(void* p) { std::free(p); }

  void* Allocate(size_t length) override {
    int c = class_of(length);
    if (c < 0) return inner_->Allocate(length);
    if (void* p = take(c)) {
      bool overwritten = overwritten_next;
      overwritten_next = false;
      if (!overwritten) memset(p, 0, length);
      return p;
    }
    give_back_for(c);
    return inner_->Allocate(class_bytes(c));
  }

  void* AllocateUninitialized(size_t length) override {
    int c = class_of(length);
    if (c < 0) return inner_->AllocateUninitialized(length);
    if (void* p = take(c)) return p;
    give_back_for(c);
    return inner_->AllocateUninitialized(class_bytes(c));
  }

  void Free(void* data, size_t length) override {
    int c = class_of(length);
    if (c < 0) return inner_->Free(data, length);
    if (data != nullptr && keep(c, data)) return;
    inner_->Free(data, class_bytes(c));
  }

  size_t MaxAllocationSize() const override { return inner_->MaxAllocationSize(); }

  v8::PageAllocator* GetPageAllocator() override { return inner_->GetPageAllocator(); }

 private:
  static void* take(int c) {
    pthread_mutex_lock(&kept.lock);
    kept.allocations++;
    void* p = nullptr;
    if (kept.count[c] > 0) {
      p = kept.blocks[first_slot(c) + --kept.count[c]];
      kept.bytes -= footprint(c);
      kept.reused++;
    }
    pthread_mutex_unlock(&kept.lock);
    return p;
  }

  // Before a fresh block of class `c` is taken from V8's allocator: returns kept blocks of the
  // other classes, largest first, until at least as many bytes as it takes are given back.
  void give_back_for(int c) {
    pthread_mutex_lock(&kept.lock);
    size_t given = 0;
    for (int other = kClasses - 1; other >= 0 && given < footprint(c); other--) {
      while (kept.count[other] > 0 && given < footprint(c)) {
        inner_->Free(kept.blocks[first_slot(other) + --kept.count[other]], class_bytes(other));
        kept.bytes -= footprint(other);
        given += footprint(other);
      }
    }
    pthread_mutex_unlock(&kept.lock);
  }

  static bool keep(int c, void* data) {
    pthread_mutex_lock(&kept.lock);
    bool room = kept.count[c] < slots(c) && kept.bytes + footprint(c) <= kMaxKeptBytes;
    if (room) {
      kept.blocks[first_slot(c) + kept.count[c]++] = data;
      kept.bytes += footprint(c);
    }
    pthread_mutex_unlock(&kept.lock);
    return room;
  }

  v8::ArrayBuffer::Allocator* inner_;
};

}  // namespace

extern "C" {

// A new allocator over V8's default one (inside the sandbox); the caller owns it and frees it
// with `delete` (the crate's UniquePtr does). V8 must be initialized.
v8::ArrayBuffer::Allocator* v8box__ReusingAllocator__new() {
  pthread_once(&inner_once, make_inner);
  return new ReusingAllocator();
}

// Whether the next allocation on this thread is one whose every byte the caller overwrites.
void v8box__ReusingAllocator__overwritten_next(bool on) { overwritten_next = on; }

// How many kept-size allocations were made in this process, and how many of them reused a
// kept block.
void v8box__ReusingAllocator__counts(uint64_t* allocations, uint64_t* reused) {
  pthread_mutex_lock(&kept.lock);
  *allocations = kept.allocations;
  *reused = kept.reused;
  pthread_mutex_unlock(&kept.lock);
}
}
