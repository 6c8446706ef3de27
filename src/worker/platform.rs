//! Process-wide V8 set-up: ICU data, the platform, and V8 flags.
//!
//! V8 may be initialized only once per process, yet tests and host applications create workers
//! from many threads; a `Once` makes the first worker do it for everyone.

use std::sync::{Once, OnceLock};

use super::terminate::TerminateHandle;

static INIT: Once = Once::new();
/// The platform `init` made: tasks V8 queues for an isolate's thread wait in it.
static PLATFORM: OnceLock<v8::SharedRef<v8::Platform>> = OnceLock::new();

/// Initializes V8 for this process (idempotent, thread-safe).
pub(crate) fn init() {
    INIT.call_once(|| {
        // ICU 78's data, from deno_core_icudata (the archive's embedded copy would do too; one
        // set of data for build.rs's snapshot and the runtime keeps `Intl` identical in both).
        v8::icu::set_common_data_78(deno_core_icudata::ICU_DATA)
            .expect("ICU data from deno_core_icudata matches V8's ICU 78");
        // Embedders may set flags at any time (v8worker2 parity), so keep them unfrozen.
        v8::V8::set_flags_from_string("--no-freeze-flags-after-init");
        // ArrayBuffer memory is freed on the isolate's own thread. Freed by V8's sweeper on
        // another thread, every small buffer (each `$send` reply is one) crossed glibc's
        // arenas: measured, this halves the cost of `new ArrayBuffer(64)` (docs/BENCHMARKS.md).
        v8::V8::set_flags_from_string("--no-concurrent-array-buffer-sweeping");
        // Unprotected: memory-protection keys (PKU) guard code pages per thread, inherited only
        // by threads spawned after initialization; workers are made on any thread, so the
        // protected platform crashes (seen: SIGSEGV tearing down the code space).
        let platform = v8::new_unprotected_default_platform(0, false).make_shared();
        let _ = PLATFORM.set(platform.clone());
        v8::V8::initialize_platform(platform);
        v8::V8::initialize();
    });
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

/// The own property names of a bare V8 context's global object — what V8 itself installs,
/// before v8box adds anything. Tests compare a worker's globals with this.
pub fn bare_context_globals() -> Vec<String> {
    init();
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
