//! The worker process's jail, entered before V8 starts and before any byte of a script is
//! read: new namespaces where the kernel permits, rlimits, `PR_SET_NO_NEW_PRIVS`, a Landlock
//! ruleset that grants nothing (no file, no TCP bind or connect, no signal or abstract socket
//! outside the process), and a seccomp filter that allows only the system calls V8, its
//! threads and the channel need (`syscalls.rs`). Everything else fails with `EPERM`.
//!
//! The process is single-threaded when it enters: Landlock restricts the calling thread and
//! the threads it starts later (V8's platform threads, the stop listener, the isolate's
//! thread), and `unshare(CLONE_NEWUSER)` requires a single thread.

use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetStatus,
    Scope, ABI,
};
use rustix::process::{setrlimit, Resource, Rlimit};

/// Which layers hold, and what could not be applied here (each a warning the broker prints).
#[derive(Debug, Default, Clone)]
pub struct JailReport {
    pub layers: Vec<String>,
    pub warnings: Vec<String>,
}

/// The Landlock ABI the jail is written for: file-system rights up to ABI 5, TCP rights
/// (ABI 4) and scopes (ABI 6). An older kernel enforces what it knows (a warning says so).
const LANDLOCK_ABI: ABI = ABI::V6;

/// The most file descriptors the worker may hold: the channel, the stop socket and stderr
/// are open already; nothing in the jail can open more (no `open`, no `socket`), and this
/// bounds what a call that would (an `eventfd`, a `pipe`) can take.
const MAX_FDS: u64 = 64;

/// Enters the jail. An error means a layer that must hold did not (seccomp, no-new-privs):
/// the worker must not run scripts. Layers the kernel lacks (namespaces, Landlock) are
/// warnings instead.
pub fn enter() -> Result<JailReport, String> {
    let mut report = JailReport::default();
    namespaces(&mut report);
    limits(&mut report)?;
    rustix::thread::set_no_new_privs(true).map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    report.layers.push("no_new_privs".into());
    landlock(&mut report);
    super::syscalls::install().map_err(|e| format!("seccomp: {e}"))?;
    report.layers.push("seccomp".into());
    Ok(report)
}

fn namespaces(report: &mut JailReport) {
    use rustix::thread::UnshareFlags as F;
    // Not a new pid namespace: once a process has one for its children, the kernel refuses it
    // new threads (EINVAL), and V8 needs threads; the worker can make no process anyway
    // (seccomp).
    let others = F::NEWNS | F::NEWNET | F::NEWIPC | F::NEWUTS | F::NEWCGROUP;
    // SAFETY: no `CLONE_FILES` among the flags (the file-descriptor table stays shared, and
    // the process has one thread anyway): this only moves the process into new namespaces.
    let tried = unsafe { rustix::thread::unshare_unsafe(F::NEWUSER | others) };
    match tried {
        Ok(()) => report
            .layers
            .push("namespaces: user, mount, net, ipc, uts, cgroup".into()),
        // Without a user namespace (some containers forbid them), a privileged process can
        // still leave the others.
        Err(first) => match unsafe {
            // SAFETY: as above.
            rustix::thread::unshare_unsafe(others)
        } {
            Ok(()) => {
                report
                    .layers
                    .push("namespaces: mount, net, ipc, uts, cgroup".into());
                report.warnings.push(format!(
                    "the worker got no user namespace ({first}); it keeps its user id"
                ));
            }
            Err(e) => report.warnings.push(format!(
                "the worker got no namespaces ({first}; without a user namespace: {e})"
            )),
        },
    }
}

fn limits(report: &mut JailReport) -> Result<(), String> {
    let zero = || Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    // No core dump of a worker's memory (it holds the script's data), and no file of any size.
    setrlimit(Resource::Core, zero()).map_err(|e| format!("RLIMIT_CORE: {e}"))?;
    setrlimit(Resource::Fsize, zero()).map_err(|e| format!("RLIMIT_FSIZE: {e}"))?;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(MAX_FDS),
            maximum: Some(MAX_FDS),
        },
    )
    .map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    // Not RLIMIT_NPROC: it counts threads too, per user, and V8 needs its threads; seccomp
    // lets `clone` make threads only (no new process). Not RLIMIT_AS: V8's heap sandbox is
    // an address-space reservation of 1 TiB (docs/SECURITY.md).
    report
        .layers
        .push("rlimits: core 0, fsize 0, nofile 64".into());
    Ok(())
}

fn landlock(report: &mut JailReport) {
    let abi = LANDLOCK_ABI;
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create());
    // No rule: nothing beneath any path, no port.
    match created.and_then(|r| r.restrict_self()) {
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => report.layers.push("landlock".into()),
            RulesetStatus::PartiallyEnforced => {
                report.layers.push("landlock (partial)".into());
                report.warnings.push(
                    "this kernel's Landlock enforces only part of the worker's ruleset (an \
                     older ABI): seccomp still refuses every file and socket call"
                        .into(),
                );
            }
            RulesetStatus::NotEnforced => report.warnings.push(
                "this kernel has no Landlock: the worker is confined by seccomp and \
                 namespaces only"
                    .into(),
            ),
        },
        Err(e) => report
            .warnings
            .push(format!("Landlock could not be applied to the worker: {e}")),
    }
}
