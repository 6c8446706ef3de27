//! The channel's transport: two byte rings in one shared memory file (a memfd the broker makes
//! and the worker maps before its jail), one per direction, with futex wake-ups. While both
//! sides are busy no system call is made: a side that finds its ring empty (or full) spins
//! for up to `SPIN` before it sleeps on the futex, and the other side wakes it only if it
//! sleeps. The rings carry the channel's length-prefixed frames as a byte stream, so a message
//! of any size streams through a ring of `RING_BYTES`.
//!
//! The worker can write anything into the shared memory, the other side's counters included:
//! each side keeps its own counter privately and only publishes it, checks the other's
//! (`head - tail` never more than the ring's size, else the ring is corrupt and the channel
//! fails), and copies bytes out before anything reads them, so a changing byte is read once.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::mm::{MapFlags, ProtFlags};
use rustix::thread::futex;

/// Bytes in each ring, at most: smaller only under a file-size limit (`RLIMIT_FSIZE` bounds a
/// memfd too), down to `MIN_RING_BYTES`.
const RING_BYTES: usize = 1 << 20;
const MIN_RING_BYTES: usize = 4096;
/// The page before the rings holds both rings' counters.
const HEADER_BYTES: usize = 4096;
/// How long a side that waits spins before it sleeps: a system call's round trip takes a few
/// microseconds, a sleep and a wake-up ten times that.
const SPIN: Duration = Duration::from_micros(50);
/// Looks at the ring without yielding the core before a waiting side yields between looks.
const BUSY_TURNS: u32 = 512;
/// How long a sleep lasts before the side looks whether the other is still there.
const NAP: Duration = Duration::from_millis(100);

/// One ring's counters, each on a cache line of its own.
#[repr(C, align(64))]
struct Counters {
    /// Bytes ever written (the writer's).
    head: AtomicU64,
    /// The futex a waiting reader sleeps on: moved by a write that finds it sleeping.
    data_seq: AtomicU32,
    reader_sleeps: AtomicU32,
    _pad: [u8; 48],
    /// Bytes ever read (the reader's).
    tail: AtomicU64,
    /// The futex a waiting writer sleeps on: moved by a read that finds it sleeping.
    space_seq: AtomicU32,
    writer_sleeps: AtomicU32,
    _pad2: [u8; 48],
}

/// The mapping of the shared file.
struct Mapping {
    base: NonNull<u8>,
    /// Bytes of each ring; the file is `HEADER_BYTES + 2 * ring_bytes` long.
    ring_bytes: usize,
}

// SAFETY: the mapping is plain shared memory; every access to it goes through atomics (the
// counters) or copies of bytes (the rings), from whichever thread holds the ring end.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of the mapping `map` made of the whole file, and no
        // reference into it outlives this (the ends hold the `Arc<Mapping>`).
        unsafe {
            let _ = rustix::mm::munmap(self.base.as_ptr().cast(), self.len());
        }
    }
}

/// Which ring: broker to worker, or worker to broker.
#[derive(Clone, Copy)]
enum Ring {
    ToWorker = 0,
    ToBroker = 1,
}

impl Mapping {
    fn len(&self) -> usize {
        HEADER_BYTES + 2 * self.ring_bytes
    }

    fn map(fd: &impl AsFd) -> io::Result<Arc<Mapping>> {
        // The file's size says the rings' (the broker sized it: `create`).
        let size = rustix::fs::fstat(fd)?.st_size as usize;
        let ring_bytes = size.saturating_sub(HEADER_BYTES) / 2;
        if ring_bytes < MIN_RING_BYTES || ring_bytes % MIN_RING_BYTES != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the channel's shared file has the wrong size",
            ));
        }
        // SAFETY: a new shared mapping of the whole file, at an address the kernel chooses;
        // nothing else in this process refers to that memory.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                HEADER_BYTES + 2 * ring_bytes,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let base = NonNull::new(base.cast::<u8>()).ok_or(io::ErrorKind::InvalidData)?;
        Ok(Arc::new(Mapping { base, ring_bytes }))
    }

    fn counters(&self, ring: Ring) -> &Counters {
        // SAFETY: the header page holds two `Counters` (128 bytes each, aligned to 64 at a
        // page-aligned base); the memory stays mapped while `self` lives, and atomics may be
        // shared across threads and processes.
        unsafe { &*self.base.as_ptr().cast::<Counters>().add(ring as usize) }
    }

    fn data(&self, ring: Ring) -> *mut u8 {
        // SAFETY: within the mapping: each ring's bytes follow the header page.
        unsafe {
            self.base
                .as_ptr()
                .add(HEADER_BYTES + ring as usize * self.ring_bytes)
        }
    }
}

/// Makes the shared file (the broker's side): a memfd, zeroed, with rings of `RING_BYTES`, or
/// smaller ones where this process's file-size limit would refuse that size.
pub fn create() -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("v8box-channel", rustix::fs::MemfdFlags::CLOEXEC)?;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize)
        .current
        .unwrap_or(u64::MAX);
    let mut ring = RING_BYTES;
    while ring > MIN_RING_BYTES && (HEADER_BYTES + 2 * ring) as u64 > limit {
        ring /= 2;
    }
    if (HEADER_BYTES + 2 * ring) as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "the file-size limit (RLIMIT_FSIZE, `ulimit -f`) of {limit} bytes leaves no room \
                 for the worker's channel ({} bytes)",
                HEADER_BYTES + 2 * ring
            ),
        ));
    }
    rustix::fs::ftruncate(&fd, (HEADER_BYTES + 2 * ring) as u64)?;
    Ok(fd)
}

/// Whether the other side can still answer; asked after each `NAP` of a wait.
pub type Alive = Arc<dyn Fn() -> bool + Send + Sync>;

/// The broker's ends: it writes the ring to the worker and reads the one from it.
pub fn broker_ends(fd: &OwnedFd, alive: Alive) -> io::Result<(RingReader, RingWriter)> {
    ends(fd, Ring::ToBroker, Ring::ToWorker, alive)
}

/// The worker's ends.
pub fn worker_ends(fd: &OwnedFd) -> io::Result<(RingReader, RingWriter)> {
    ends(fd, Ring::ToWorker, Ring::ToBroker, Arc::new(|| true))
}

fn ends(
    fd: &OwnedFd,
    read: Ring,
    write: Ring,
    alive: Alive,
) -> io::Result<(RingReader, RingWriter)> {
    let map = Mapping::map(fd)?;
    Ok((
        RingReader {
            map: map.clone(),
            ring: read,
            tail: 0,
            alive: alive.clone(),
        },
        RingWriter {
            map,
            ring: write,
            head: 0,
            tail_seen: 0,
            alive,
        },
    ))
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the other side corrupted the shared ring",
    )
}

/// Waits until `ready()` (spinning first, then on the futex `seq` with `sleeping` set), or
/// the other side is gone.
fn wait(
    ready: impl Fn() -> bool,
    seq: &AtomicU32,
    sleeping: &AtomicU32,
    alive: &Alive,
) -> io::Result<()> {
    if ready() {
        return Ok(());
    }
    let spin_until = Instant::now() + SPIN;
    let mut turns = 0u32;
    while !ready() {
        turns += 1;
        // A busy other side answers within the first turns (no system call at all). After
        // them the waiting side yields its core between looks: on a machine with fewer free
        // cores than runnable threads the other side may be waiting for this very core.
        if turns < BUSY_TURNS {
            std::hint::spin_loop();
            continue;
        }
        std::thread::yield_now();
        if turns % 16 != 0 || Instant::now() < spin_until {
            continue;
        }
        let seen = seq.load(SeqCst);
        sleeping.store(1, SeqCst);
        if ready() {
            sleeping.store(0, SeqCst);
            break;
        }
        let nap = futex::Timespec {
            tv_sec: 0,
            tv_nsec: NAP.as_nanos() as i64,
        };
        // Shared (not private): the other side is another process. An error is a wake-up
        // (EAGAIN: the value moved on; EINTR; ETIMEDOUT: look at the other side).
        let slept = futex::wait(seq, futex::Flags::empty(), seen, Some(&nap));
        sleeping.store(0, SeqCst);
        if slept == Err(rustix::io::Errno::TIMEDOUT) && !alive() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// After this side published its counter: wakes the other side if it sleeps. The futex word
/// moves only then, so a busy exchange makes no atomic read-modify-write on a shared line.
/// No wake-up is lost: the sleeper reads the word, says it sleeps, looks at the ring once more
/// and sleeps only if the word is still what it read; this side published before it looks at
/// `sleeping` (all `SeqCst`), so either the sleeper sees the new counter or this side sees it
/// sleeping and moves the word (making a late `futex::wait` return at once) and wakes it.
fn wake(seq: &AtomicU32, sleeping: &AtomicU32) {
    if sleeping.load(SeqCst) != 0 {
        seq.fetch_add(1, SeqCst);
        let _ = futex::wake(seq, futex::Flags::empty(), 1);
    }
}

/// The reading end of one ring.
pub struct RingReader {
    map: Arc<Mapping>,
    ring: Ring,
    /// Bytes read: this side's own count (the shared one is only published).
    tail: u64,
    alive: Alive,
}

impl Read for RingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let c = self.map.counters(self.ring);
        let tail = self.tail;
        wait(
            || c.head.load(SeqCst) != tail,
            &c.data_seq,
            &c.reader_sleeps,
            &self.alive,
        )?;
        let ring = self.map.ring_bytes;
        let avail = c.head.load(SeqCst).wrapping_sub(tail);
        if avail > ring as u64 {
            return Err(corrupt());
        }
        let n = buf.len().min(avail as usize);
        let at = (tail % ring as u64) as usize;
        let first = n.min(ring - at);
        let data = self.map.data(self.ring);
        // SAFETY: `at + first` and `n - first` are within the ring's bytes; the writer does
        // not write this span until `tail` moves past it (and a hostile writer that does
        // changes only bytes that are copied here and then parsed as untrusted).
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(at), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, buf.as_mut_ptr().add(first), n - first);
        }
        self.tail = tail + n as u64;
        c.tail.store(self.tail, SeqCst);
        wake(&c.space_seq, &c.writer_sleeps);
        Ok(n)
    }
}

/// The writing end of one ring.
pub struct RingWriter {
    map: Arc<Mapping>,
    ring: Ring,
    /// Bytes written: this side's own count.
    head: u64,
    /// The reader's count as this side last read it. The reader only moves it forward, so
    /// the space it leaves is at least what it says: the shared count is read again (its cache
    /// line fetched from the reader's core) only when that space is too little for a write.
    tail_seen: u64,
    alive: Alive,
}

impl Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let c = self.map.counters(self.ring);
        let head = self.head;
        let ring = self.map.ring_bytes;
        let mut used = head.wrapping_sub(self.tail_seen);
        if ring as u64 - used < buf.len() as u64 {
            let full = || head.wrapping_sub(c.tail.load(SeqCst)) >= ring as u64;
            wait(|| !full(), &c.space_seq, &c.writer_sleeps, &self.alive)?;
            let tail = c.tail.load(SeqCst);
            used = head.wrapping_sub(tail);
            if used > ring as u64 {
                return Err(corrupt());
            }
            self.tail_seen = tail;
        }
        let n = buf.len().min(ring - used as usize);
        let at = (head % ring as u64) as usize;
        let first = n.min(ring - at);
        let data = self.map.data(self.ring);
        // SAFETY: within the ring's bytes, in the span the reader has released.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), data.add(at), first);
            std::ptr::copy_nonoverlapping(buf.as_ptr().add(first), data, n - first);
        }
        self.head = head + n as u64;
        c.head.store(self.head, SeqCst);
        wake(&c.data_seq, &c.reader_sleeps);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
