//! The system calls a jailed worker may make, as a seccomp filter compiled by `seccompiler`
//! (Firecracker's BPF compiler; no hand-written BPF): memory, futexes, clocks, reading and
//! writing the file descriptors it already has, threads, signals to itself, and exit. Every
//! other call — `open*`, `socket`, `connect`, `execve*`, `ptrace`, `process_vm_*`, `fork`,
//! `kill` of another process, `mount`, `bpf`, ... — fails with `EPERM`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Allowed whatever their arguments.
#[cfg(target_arch = "x86_64")]
const ALWAYS: &[libc::c_long] = &[
    // The channel, the stop socket, stderr (already open; nothing can open more).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_lseek,
    libc::SYS_fcntl,
    libc::SYS_poll,
    libc::SYS_ppoll,
    // Memory: V8's heap, its sandbox reservation, code pages.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_mincore,
    libc::SYS_membarrier,
    // Threads and their synchronisation.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getparam,
    libc::SYS_sched_getscheduler,
    libc::SYS_getpriority,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    // Clocks and sleeping (the memory watch's tick).
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_getrusage,
    libc::SYS_sysinfo,
    libc::SYS_uname,
    libc::SYS_getrandom,
    // Signals of its own (a crash's handler, a thread's mask).
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Answered ENOSYS by the filter before this one (see `install`).
    libc::SYS_clone3,
];

/// Installs the filter on every thread of the process (it is inherited by threads started
/// later).
pub fn install() -> Result<(), String> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("no filter for this architecture: {e:?}"))?;
    // glibc makes threads with `clone3` and falls back to `clone` only when the kernel lacks
    // it, because `clone3`'s flags are in memory a filter cannot read: this filter answers
    // `ENOSYS`, and the allow-list installed after it allows `clone3` (of two filters the
    // stricter answer wins: the errno).
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let no_clone3: BpfProgram = no_clone3
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter_all_threads(&no_clone3).map_err(|e| e.to_string())?;
    let allow_list = allow_list(arch)?;
    seccompiler::apply_filter_all_threads(&allow_list).map_err(|e| e.to_string())
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

fn allow_list(arch: TargetArch) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALWAYS.iter().map(|&nr| (nr as i64, Vec::new())).collect();
    let pid = std::process::id() as u64;
    // Threads only: `clone` with CLONE_THREAD (a new process needs fork/vfork/clone without it).
    let thread = libc::CLONE_THREAD as u64;
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(
            0,
            SeccompCmpOp::MaskedEq(thread),
            thread,
        )?])?],
    );
    // Signals to its own threads only (`raise`, `abort`, V8's profiler is not used).
    rules.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond(0, SeccompCmpOp::Eq, pid)?])?],
    );
    // Naming threads and anonymous mappings, reading the dumpable flag; nothing else of prctl.
    rules.insert(
        libc::SYS_prctl,
        [
            libc::PR_SET_NAME,
            libc::PR_GET_NAME,
            libc::PR_SET_VMA,
            libc::PR_GET_DUMPABLE,
        ]
        .iter()
        .map(|&op| rule(vec![cond(0, SeccompCmpOp::Eq, op as u64)?]))
        .collect::<Result<_, _>>()?,
    );
    // Reading its limits (glibc's getrlimit), never setting one.
    rules.insert(
        libc::SYS_prlimit64,
        vec![rule(vec![
            cond(0, SeccompCmpOp::Eq, 0)?,
            cond(2, SeccompCmpOp::Eq, 0)?,
        ])?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}
