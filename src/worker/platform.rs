//! Process-wide V8 set-up: ICU data, the platform, and V8 flags.
//!
//! V8 may be initialized only once per process, yet tests and host applications create workers
//! from many threads; a `Once` makes the first worker do it for everyone.

use std::sync::OnceLock;

use super::terminate::TerminateHandle;

/// Whether V8 was initialized with a heap sandbox that has its security properties, and if not,
/// why not (then no isolate may be made).
static INIT: OnceLock<Result<(), String>> = OnceLock::new();
/// The platform `init` made: tasks V8 queues for an isolate's thread wait in it.
static PLATFORM: OnceLock<v8::SharedRef<v8::Platform>> = OnceLock::new();

unsafe extern "C" {
    /// Exported by the prebuilt library; the crate calls it only from its own tests.
    fn v8__V8__IsSandboxEnabled() -> bool;
    /// `static bool v8::V8::IsSandboxConfiguredSecurely()`: the sandbox is fully reserved, with
    /// its guard regions. The crate binds no wrapper; the archive exports the C++ symbol.
    #[link_name = "_ZN2v82V827IsSandboxConfiguredSecurelyEv"]
    fn v8_is_sandbox_configured_securely() -> bool;
}

/// Whether this build of V8 has the heap sandbox (`v8_enable_sandbox`).
pub fn heap_sandbox_enabled() -> bool {
    // SAFETY: a static function of the linked library without arguments or state.
    unsafe { v8__V8__IsSandboxEnabled() }
}

/// The heap sandbox is a reservation of 1 TiB of address space plus guard regions. V8 sizes it
/// from the address-space limit (`RLIMIT_AS`, `ulimit -v`): with a limit of 2 TiB or less it
/// reserves only part of the sandbox, without guard regions and so without its security
/// properties, or aborts the process when even that fails. The limit is read before V8 is
/// started, so that v8box refuses with a reason instead.
const SMALLEST_ADDRESS_SPACE_LIMIT: u64 = 2 << 40;

fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the struct we pass and touches nothing else.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    (read && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Initializes V8 for this process (idempotent, thread-safe), or says why it must not run
/// scripts here: its heap sandbox would lack its guard regions.
pub(crate) fn init() -> Result<(), &'static str> {
    INIT.get_or_init(start)
        .as_ref()
        .map_err(String::as_str)
        .copied()
}

/// Whether this process's address-space limit leaves V8's heap sandbox its whole
/// reservation, checked without starting V8 (a broker whose isolates run in worker processes,
/// which inherit the limit, starts none).
pub fn check_address_space() -> Result<(), String> {
    if let Some(limit) = address_space_limit().filter(|&l| l <= SMALLEST_ADDRESS_SPACE_LIMIT) {
        return Err(format!(
            "V8's heap sandbox needs more than 2 TiB of address space, but this process is \
             limited to {} MiB (RLIMIT_AS, `ulimit -v`): under that limit V8 would reserve the \
             sandbox without its guard regions, or abort. Lift the address-space limit \
             (`ulimit -v unlimited`) and limit memory with --max-heap or a cgroup instead.",
            limit >> 20
        ));
    }
    Ok(())
}

fn start() -> Result<(), String> {
    check_address_space()?;
    // `Intl`'s ICU 78 data is embedded in the prebuilt library: nothing to load.
    // Snapshots made at run time (`build_snapshot`) share V8's read-only heap (see there).
    v8::V8::set_flags_from_string(super::snapshot_creator::SNAPSHOT_FLAGS);
    // Embedders may set flags at any time (v8worker2 parity), so keep them unfrozen.
    v8::V8::set_flags_from_string("--no-freeze-flags-after-init");
    // ArrayBuffer memory is freed on the isolate's own thread. Freed by V8's sweeper on
    // another thread, every small buffer (each `$send` reply is one) crossed glibc's
    // arenas: measured, this halves the cost of `new ArrayBuffer(64)` (docs/BENCHMARKS.md).
    v8::V8::set_flags_from_string("--no-concurrent-array-buffer-sweeping");
    // Unprotected: memory-protection keys (PKU) guard code pages per thread, inherited only
    // by threads spawned after initialization; workers are made on any thread, so the
    // protected platform crashes (seen: SIGSEGV tearing down the code space).
    // V8's random numbers (Math.random's seed, its hash seed, where it places its memory)
    // come from the kernel's getrandom: V8's own fallback opens /dev/urandom, which a jailed
    // worker cannot, and would then seed from the clock.
    v8::V8::set_entropy_source(|buffer: &mut [u8]| getrandom::getrandom(buffer).is_ok());
    let platform = v8::new_unprotected_default_platform(0, false).make_shared();
    let _ = PLATFORM.set(platform.clone());
    v8::V8::initialize_platform(platform);
    v8::V8::initialize();
    // SAFETY: a static function of the linked library without arguments; V8 is initialized.
    if heap_sandbox_enabled() && !unsafe { v8_is_sandbox_configured_securely() } {
        return Err(
            "V8's heap sandbox could not be reserved in full (1 TiB of address space \
                    and its guard regions), so it lacks its security properties: v8box runs \
                    no scripts in it. Is the process's address space limited (`ulimit -v`)?"
                .into(),
        );
    }
    Ok(())
}

/// Initializes V8, and panics with the reason when it cannot run scripts here (for the callers
/// that cannot fail; hosts call `check` first to get the reason as an error).
pub(crate) fn ready() {
    if let Err(why) = init() {
        panic!("{why}");
    }
}

/// Starts V8 for this process if it is not started yet; the error says why no script may run
/// here (V8's heap sandbox would not be secure). `v8box::run` and the CLI check this first.
pub fn check() -> Result<(), String> {
    init().map_err(str::to_string)
}

/// Runs one task V8 has queued for `isolate`'s thread, if there is one.
fn run_one_task(isolate: &mut v8::Isolate) -> bool {
    let platform = PLATFORM
        .get()
        .expect("V8 is initialized before any isolate exists");
    v8::Platform::pump_message_loop(platform, isolate, false)
}

/// Runs the tasks V8 has queued for `isolate`'s thread (the end of an asynchronous WebAssembly
/// compile, FinalizationRegistry clean-ups), the isolate entered, until none is left or the
/// run is stopped. Returns whether any ran.
///
/// A task that runs JavaScript (a clean-up callback) catches a termination itself, and V8 then
/// queues the registry's next clean-up as a new task: without the check, a stopped script
/// would go on running in its clean-ups, past its time limit.
pub(crate) fn run_queued_tasks(isolate: &mut v8::Isolate, terminate: &TerminateHandle) -> bool {
    let mut ran = false;
    while terminate.reason().is_none() && run_one_task(isolate) {
        ran = true;
    }
    ran
}

/// Empties the queue of tasks V8 keeps for `isolate`'s thread without running JavaScript:
/// each task is started under a termination (V8's own tasks, e.g. for the garbage collector,
/// run no JavaScript and finish). A FinalizationRegistry's clean-up is stopped as its callback
/// is entered, and V8 then queues it again, for ever: such a queue cannot be emptied, which
/// is what the result says (`false` once `limit` tasks have run and more are queued).
pub(crate) fn drop_queued_tasks(
    isolate: &mut v8::Isolate,
    terminate: &TerminateHandle,
    limit: usize,
) -> bool {
    for _ in 0..limit {
        // The last task's `TryCatch` consumed the termination: request it again.
        terminate.terminate();
        if !run_one_task(isolate) {
            return true;
        }
    }
    false
}

/// The version of the V8 engine inside v8box, e.g. `"15.2.124.1-rusty"`.
pub fn version() -> &'static str {
    v8::V8::get_version()
}

/// Passes command-line style flags to V8 (e.g. `--stack-size=500`) and returns the
/// arguments V8 did not recognise, in their original order.
///
/// ```
/// let rest = v8box::set_flags(vec!["hello".into(), "--lazy".into(), "foobar".into()]);
/// assert_eq!(rest, vec!["hello".to_string(), "foobar".to_string()]);
/// ```
pub fn set_flags(args: Vec<String>) -> Vec<String> {
    v8::V8::set_flags_from_command_line(args)
}

/// Sets a host's V8 flags (`SandboxBuilder::v8_flags`: flags alone, no program name first).
pub(crate) fn set_host_flags(flags: &[String]) {
    if flags.is_empty() {
        return;
    }
    let mut args = vec!["v8box".to_string()];
    args.extend(flags.iter().cloned());
    set_flags(args);
}

/// The own property names of a bare V8 context's global object — what V8 itself installs,
/// before v8box adds anything. Tests compare a worker's globals with this.
pub fn bare_context_globals() -> Vec<String> {
    ready();
    let mut isolate = v8::Isolate::new(Default::default());
    let names = {
        v8::scope!(let scope, &mut isolate);
        let context = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, context);
        let code =
            v8::String::new(scope, "Object.getOwnPropertyNames(globalThis).join('\\n')").unwrap();
        let script = v8::Script::compile(scope, code, None).unwrap();
        let result = script.run(scope).unwrap();
        result.to_rust_string_lossy(scope)
    };
    names.lines().map(str::to_string).collect()
}
