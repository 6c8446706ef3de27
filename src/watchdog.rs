//! The watchdog: a thread beside each run that enforces the limits a script could otherwise
//! outrun from inside the isolate.
//!
//! - `--timeout`: at the deadline it terminates the isolate and wakes the event loop.
//! - `--max-heap`: every `TICK` it asks the isolate to compare its ArrayBuffer memory with the
//!   limit (V8 counts some of it only at collections), and when the run owns its process (the
//!   CLI) it also reads the process's resident memory: whatever the script made — heap,
//!   buffers, WebAssembly and shared memories, queued replies — may not grow it by more than the
//!   limit (a jailed worker's memory cgroup, where one can be made, is the kernel's limit at
//!   twice that).
//! - Escalation: V8 checks for termination only at its interrupt checks, and some builtins make
//!   none (a global regex `replace` on a huge string, `fill` on a huge buffer), just as a write
//!   into a stalled stdout pipe blocks the isolate's thread. If the run has not ended `GRACE`
//!   after it was stopped, a jailed worker process is killed (`Limits::kill`), and if the run
//!   still has not ended `GRACE` later (or runs on a thread) the watchdog calls the run's
//!   `Stuck` hook: the CLI records `run.end` with the reason and ends the process with the
//!   limit's exit code.

use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::dispatch::Event;
use crate::worker::{MemoryWatch, TerminateHandle, TerminationReason};

/// How often memory is looked at while a heap limit is set.
const TICK: Duration = Duration::from_millis(5);
/// How long a stopped run may take to leave the isolate before it is given up on.
pub const GRACE: Duration = Duration::from_millis(500);

/// What to do with a run that did not end `GRACE` after it was stopped (it never returns when
/// it ends the process).
pub type Stuck = Box<dyn FnOnce(TerminationReason, GaveUp) + Send>;

/// Why the watchdog gave up on a run it had stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// It did not leave the isolate within `GRACE`.
    Grace,
    /// Its memory went on growing to twice its heap limit first.
    Growth,
}

impl GaveUp {
    /// What happened, as a run's error message says it (after "it").
    pub fn described(self) -> String {
        match self {
            GaveUp::Grace => format!(
                "did not stop within {} ms (a builtin that checks no interrupt, or output \
                 nobody reads)",
                GRACE.as_millis()
            ),
            GaveUp::Growth => "went on taking memory after it was stopped, to twice its heap \
                               limit (a builtin that checks no interrupt)"
                .into(),
        }
    }
}

/// The limits one watchdog enforces.
pub struct Limits {
    pub timeout: Option<Duration>,
    /// With a heap limit: the isolate's own count of its buffers.
    pub isolate_memory: Option<MemoryWatch>,
    /// When the run owns its process: the most its resident memory may grow, in bytes.
    pub process_memory: Option<u64>,
    /// Whose resident memory that is: a jailed worker process's, or (`None`) this process's.
    pub memory_of: Option<u32>,
    /// The kernel kills the process at twice the budget (a jailed worker's memory cgroup:
    /// `src/isolation/memory_cgroup.rs`), so the watchdog need not look for that itself.
    pub kernel_kills_at_twice: bool,
    /// A jailed worker's kill switch: a run that does not stop within `GRACE` loses its worker
    /// first, and only if the run still does not end (the broker stuck in a write to a stalled
    /// pipe) `stuck` is called.
    pub kill: Option<Box<dyn Fn(GaveUp) + Send>>,
    pub stuck: Option<Stuck>,
}

pub struct Watchdog {
    cancel: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The resident memory in bytes of process `pid` (`None`: this one), if the kernel tells:
/// `statm`'s second field, in pages (under `--isolation=thread` Landlock leaves the CLI this
/// one file of /proc/self).
pub fn resident_bytes(pid: Option<u32>) -> Option<u64> {
    let statm = match pid {
        Some(pid) => std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?,
        None => std::fs::read_to_string("/proc/self/statm").ok()?,
    };
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

impl Watchdog {
    /// Watches the run that `handle` stops; `events` wakes its loop. `None` when there is
    /// nothing to watch.
    pub fn start(
        limits: Limits,
        handle: TerminateHandle,
        events: Sender<Event>,
    ) -> Option<Watchdog> {
        if limits.timeout.is_none()
            && limits.isolate_memory.is_none()
            && limits.process_memory.is_none()
        {
            return None;
        }
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let deadline = limits.timeout.map(|t| started + t);
            let ceiling = limits
                .process_memory
                .and_then(|budget| Some(resident_bytes(limits.memory_of)?.saturating_add(budget)));
            let watching_memory = limits.isolate_memory.is_some() || ceiling.is_some();
            let reason = loop {
                let wake = match (deadline, watching_memory) {
                    (Some(d), true) => d.min(Instant::now() + TICK),
                    (Some(d), false) => d,
                    (None, _) => Instant::now() + TICK,
                };
                match cancelled.recv_deadline(wake) {
                    Err(RecvTimeoutError::Timeout) => {}
                    // The run ended (or its loop is gone).
                    _ => return,
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break TerminationReason::Timeout;
                }
                if let Some(watch) = &limits.isolate_memory {
                    watch.poke();
                }
                if ceiling
                    .is_some_and(|c| resident_bytes(limits.memory_of).is_some_and(|now| now > c))
                {
                    break TerminationReason::HeapLimit;
                }
            };
            handle.terminate_for(reason);
            let _ = events.send(Event::Wake);
            // Until the grace runs out the run may still leave the isolate, unless its memory
            // goes on growing (a builtin filling a huge buffer): at twice the budget it is
            // given up on at once.
            let given_up_at = Instant::now() + GRACE;
            let hard_ceiling = ceiling
                .zip(limits.process_memory)
                .map(|(c, b)| c.saturating_add(b))
                .filter(|_| !limits.kernel_kills_at_twice);
            let gave_up = loop {
                let wake = match hard_ceiling {
                    Some(_) => given_up_at.min(Instant::now() + TICK),
                    None => given_up_at,
                };
                match cancelled.recv_deadline(wake) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let over = hard_ceiling
                    .is_some_and(|c| resident_bytes(limits.memory_of).is_some_and(|now| now > c));
                if over {
                    break GaveUp::Growth;
                }
                if Instant::now() >= given_up_at {
                    break GaveUp::Grace;
                }
            };
            if let Some(kill) = &limits.kill {
                // The worker cannot outrun this; the run ends as soon as the broker sees it go.
                kill(gave_up);
                match cancelled.recv_timeout(GRACE) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
            if let Some(stuck) = limits.stuck {
                // The first reason recorded is the run's (a heap limit V8 hit first wins).
                stuck(handle.reason().unwrap_or(reason), gave_up);
            }
        });
        Some(Watchdog {
            cancel,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.cancel.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
