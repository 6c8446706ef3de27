//! Isolation: where the isolate runs, and what the kernel lets it do.
//!
//! - `Isolation::Process` (the CLI's default): the isolate runs in a worker process — a
//!   re-exec of the current executable that calls [`worker_entry`] first thing — jailed before
//!   V8 starts (`jail.rs`: namespaces, rlimits, no-new-privs, Landlock with no rights, a
//!   seccomp allow-list). This process, the broker, keeps the policy, the dispatcher, the ops,
//!   the audit log and every file descriptor; `$send`, `$recv`, `$print` and imports cross
//!   the channel (`channel.rs`, `proto/worker.proto`) as bytes the broker treats as hostile.
//! - `Isolation::Thread`: the isolate runs on a thread of this process (`Worker`), and the
//!   CLI confines the whole process with Landlock to what the policy grants (`confine.rs`).

mod channel;
mod confine;
mod jail;
mod memory_cgroup;
#[cfg(debug_assertions)]
mod probe;
mod remote;
mod ring;
mod syscalls;
mod wire;
mod worker_process;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

pub use confine::{confine_process, Confinement};
pub use memory_cgroup::available as kernel_memory_limit_available;
#[cfg(debug_assertions)]
#[doc(hidden)]
pub use probe::{run_requested as run_probe, PROBE_ENV};
pub use remote::{Prestarted, RemoteWorker, Sent, SpawnError, StartOptions};

/// Where a run's isolate lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Isolation {
    /// On a thread of this process (the library's default: a host binary need not cooperate).
    #[default]
    Thread,
    /// In a jailed worker process started from `exe` (an executable that calls
    /// [`worker_entry`] first: the `v8box` binary, or the host's own).
    Process {
        /// The worker executable.
        exe: std::path::PathBuf,
    },
}

impl Isolation {
    /// A jailed worker process that re-executes the current executable (`/proc/self/exe`:
    /// the very file this process runs, even if its path was replaced or removed since): the
    /// host's `main` must call [`worker_entry`] before anything else.
    pub fn process() -> std::io::Result<Isolation> {
        let exe = std::path::PathBuf::from("/proc/self/exe");
        std::fs::metadata(&exe)?;
        Ok(Isolation::Process { exe })
    }
}

/// This host's time zone as an IANA name (`TZ`, else where `/etc/localtime` leads), for a
/// process that can read no files: the worker gets it as `TZ` (V8's ICU has the zone data
/// built in), and `--isolation=thread` sets it before Landlock hides `/etc/localtime`, so
/// `new Date().toString()` says the same in both isolations and without them.
pub fn local_time_zone() -> Option<String> {
    if let Some(tz) = std::env::var("TZ").ok().filter(|t| !t.is_empty()) {
        return Some(tz.trim_start_matches(':').to_string());
    }
    let target = std::fs::read_link("/etc/localtime").ok()?;
    let target = target.to_str()?;
    let (_, zone) = target.split_once("zoneinfo/")?;
    (!zone.is_empty()).then(|| zone.to_string())
}

/// The environment variables that choose ICU's default locale; a worker gets the broker's.
const LOCALE_ENV: [&str; 3] = ["LC_ALL", "LC_MESSAGES", "LANG"];

/// The variable that makes a process a worker (its value: the broker's process id). The
/// broker clears the worker's environment and sets only this (and `WARM_UP_ENV`, `TZ` and `LOCALE_ENV`).
pub const WORKER_ENV: &str = "V8BOX_ISOLATION_WORKER";
/// Set for a worker started ahead of its run (`Prestarted::spawn_warm`): it makes and drops an
/// isolate while it waits.
const WARM_UP_ENV: &str = "V8BOX_ISOLATION_WARM_UP";

/// Call first thing in `main` of every executable that starts jailed workers (the `v8box`
/// binary does): in a worker process it jails the process and serves its broker, and never
/// returns; anywhere else it returns at once.
pub fn worker_entry() {
    let Some(broker) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // The worker dies with its broker, and refuses to start for one that is gone already.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get().to_string());
    if parent.as_deref() != broker.to_str() {
        std::process::exit(2);
    }
    // SAFETY: the broker made fd 0 the channel's shared memory and fd 1 the stop socket
    // (`RemoteWorker::spawn`); nothing else in this process owns them.
    let (shared, control) = unsafe {
        (
            OwnedFd::from_raw_fd(0),
            UnixStream::from(OwnedFd::from_raw_fd(1)),
        )
    };
    // Mapped before the jail; the mapping is all the worker keeps of the file.
    let channel = match ring::worker_ends(&shared) {
        Ok(ends) => channel::Channel::new(ends, worker_process::MAX_FROM_BROKER),
        Err(_) => std::process::exit(2),
    };
    drop(shared);
    let warm_up = std::env::var_os(WARM_UP_ENV).is_some();
    let report = match jail::enter() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("the worker could not enter its jail: {why}");
            std::process::exit(2);
        }
    };
    // The isolate gets a thread of its own: V8 finds a spawned thread's stack without reading
    // /proc, which the jail forbids, and the stack is as big as a main thread's.
    let isolate_thread = std::thread::Builder::new()
        .name("v8box-isolate".into())
        .stack_size(8 << 20)
        .spawn(move || worker_process::serve(channel, control, report, warm_up));
    match isolate_thread {
        Ok(t) => {
            let _ = t.join();
            std::process::exit(0)
        }
        Err(_) => std::process::exit(2),
    }
}
