//! The Worker: one V8 isolate with one context whose global object holds the ECMAScript
//! builtins plus exactly three native functions, `$send`, `$recv` and `$print`.
//!
//! Every call into the `v8` crate lives in this module (and its files), so that a V8 upgrade
//! touches one place.

mod bindings;
mod buffer_limit;
mod cage_guard;
mod error;
mod exception;
mod inspect;
mod modules;
mod platform;
mod reusing_allocator;
mod snapshot;
mod snapshot_creator;
mod state;
mod terminate;

use std::cell::RefCell;
use std::io::Write;
use std::marker::PhantomData;
use std::rc::Rc;

pub use buffer_limit::MemoryWatch;
pub use cage_guard::{committed_heap_bytes, CAGE_BUDGET_BYTES, CAGE_BYTES};
pub use error::{JsError, TerminationReason};
pub use modules::{Evaluation, ImportRequest, ImportedModule, ModuleKind, Resolver};
pub(crate) use platform::set_host_flags;
pub use platform::{
    bare_context_globals, check as check_platform, check_address_space, heap_sandbox_enabled,
    set_flags, version,
};
pub use reusing_allocator::reuse_counts as array_buffer_reuse_counts;
pub use snapshot::{build as build_snapshot, Snapshot};
pub use terminate::TerminateHandle;

use buffer_limit::BufferLimit;
use cage_guard::CageShare;
use state::State;
use terminate::HeapGuard;

/// Settings fixed when a worker is created.
#[derive(Clone, Default)]
pub struct WorkerOptions {
    /// Upper bound of the JavaScript heap in bytes. Near it the script is stopped with
    /// `TerminationReason::HeapLimit` instead of V8 aborting the process.
    pub max_heap_bytes: Option<usize>,
    /// Forbid code generation from strings (`eval`, `new Function`) and WebAssembly compilation.
    pub deny_code_generation: bool,
    /// For benchmarks only: also install `$noop()`, a native function that does nothing — the
    /// floor a `$send` round trip is compared with. Off in every real worker.
    #[doc(hidden)]
    pub bench_noop_function: bool,
    /// Start from this snapshot (see [`build_snapshot`]) instead of a bare context: the
    /// snapshot's prelude has already run, and its `$recv` callback is registered.
    pub snapshot: Option<Snapshot>,
}

/// The largest heap (V8's heap plus ArrayBuffer memory) an isolate may have to be kept for
/// another run (`Worker::is_renewable`): a few times what a small script leaves behind.
pub const KEEP_HEAP_BYTES: usize = 64 << 20;

/// The most runs one isolate hosts (`Worker::renew`). Some of what a run leaves outside the JS
/// heap is freed only with its isolate (e.g. an `Atomics.waitAsync` that nobody wakes), so no
/// isolate is kept for ever; one in a thousand runs pays for a new isolate.
pub const MAX_RUNS_PER_ISOLATE: u32 = 1000;

/// How many of V8's queued tasks `Worker::park` runs (under a termination) to empty the queue,
/// before and again after a full garbage collection. V8's own tasks are a few, except while
/// its collector marks step by step (the full collection ends that); a queue still not empty
/// holds a FinalizationRegistry's clean-up, which V8 queues again each time.
const PARK_TASKS_LIMIT: usize = 64;

/// One isolate and one context. Not `Send`: a worker lives on the thread that made it, and
/// many workers may live on one thread or on many.
pub struct Worker {
    // Field order matters for clarity only; `Drop` disposes of them in the required order.
    context: Option<v8::Global<v8::Context>>,
    isolate: Option<v8::OwnedIsolate>,
    terminate: TerminateHandle,
    heap_guard: Option<Box<HeapGuard>>,
    /// The ArrayBuffer memory limit's callback data (with a heap limit only).
    buffer_limit: Option<Box<BufferLimit>>,
    cage_share: Option<Box<CageShare>>,
    /// What the isolate was made with; a renewed context is made the same way.
    options: WorkerOptions,
    /// Runs (contexts) this isolate has hosted: 1, plus one per `renew`.
    runs: u32,
    _not_send: PhantomData<Rc<()>>,
}

fn print_to_stdout(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
}

impl Worker {
    /// A worker whose `$send(bytes)` calls `on_send(bytes)`; its return value becomes `$send`'s
    /// result (an ArrayBuffer, or `null` for `None`).
    pub fn new(on_send: impl FnMut(&[u8]) -> Option<Vec<u8>> + 'static) -> Worker {
        Worker::with_options(WorkerOptions::default(), on_send)
    }

    /// Like `new`, with limits and switches.
    pub fn with_options(
        options: WorkerOptions,
        on_send: impl FnMut(&[u8]) -> Option<Vec<u8>> + 'static,
    ) -> Worker {
        platform::ready();
        let mut params =
            v8::Isolate::create_params().array_buffer_allocator(reusing_allocator::new());
        if let Some(snap) = &options.snapshot {
            params = snap.params(params);
        }
        if let Some(max) = options.max_heap_bytes {
            params = params.heap_limits(0, max);
        }
        let mut isolate = v8::Isolate::new(params);
        // A script must not be able to block its thread in `Atomics.wait` (it throws instead).
        isolate.set_allow_atomics_wait(false);
        // Promises settle only at our explicit checkpoints, after each entry into JavaScript.
        isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
        isolate.set_capture_stack_trace_for_uncaught_exceptions(true, 16);
        isolate.set_promise_reject_callback(on_promise_reject);
        isolate.add_message_listener(on_uncaught);
        isolate.set_host_import_module_dynamically_callback(modules::dynamic_import);
        if options.deny_code_generation {
            isolate.set_allow_wasm_code_generation_callback(deny_wasm);
        }
        let terminate = TerminateHandle::new(isolate.thread_safe_handle());
        // ArrayBuffers live outside the heap: they get a limit of the same size.
        let buffer_limit = options.max_heap_bytes.map(|max| {
            let limit = BufferLimit::new(max, terminate.clone());
            limit.install(&mut isolate);
            limit
        });
        // Every worker's heap counts against the cage all isolates of the process share.
        let cage_share = CageShare::new(terminate.clone());
        cage_share.install(&mut isolate);
        let heap_guard = Box::new(HeapGuard {
            terminate: terminate.clone(),
        });
        let guard_ptr = &*heap_guard as *const HeapGuard as *mut std::ffi::c_void;
        isolate.add_near_heap_limit_callback(terminate::near_heap_limit, guard_ptr);

        isolate
            .set_slot::<state::SharedState>(Rc::new(RefCell::new(fresh_state(Box::new(on_send)))));
        let context = {
            v8::scope!(let scope, &mut isolate);
            new_context(scope, &options)
        };
        // The isolate is entered only while we run it, so that many workers can share a thread.
        // SAFETY: `Isolate::new` entered this isolate; we leave it here and re-enter it around
        // every use (`with_scope`) and before it is dropped (`Drop`).
        unsafe { isolate.exit() };
        Worker {
            context: Some(context),
            isolate: Some(isolate),
            terminate,
            heap_guard: Some(heap_guard),
            buffer_limit,
            cage_share: Some(cage_share),
            options,
            runs: 1,
            _not_send: PhantomData,
        }
    }

    /// How many runs (contexts) this worker's isolate has hosted, the current one included: 1
    /// for a new worker, one more per `renew`.
    pub fn runs_hosted(&self) -> u32 {
        self.runs
    }

    /// Whether `renew` can give this worker's isolate to a run that asks for `options`: the
    /// same settings and snapshot, no heap limit (a limit must count one run's memory only, and
    /// an earlier run's garbage would count against it), the isolate never reached a limit, and
    /// it has hosted fewer than `MAX_RUNS_PER_ISOLATE` runs.
    pub fn can_renew(&self, options: &WorkerOptions) -> bool {
        let same_snapshot = match (&self.options.snapshot, &options.snapshot) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(b),
            _ => false,
        };
        same_snapshot
            && self.options.max_heap_bytes.is_none()
            && options.max_heap_bytes.is_none()
            && self.options.deny_code_generation == options.deny_code_generation
            && self.options.bench_noop_function == options.bench_noop_function
            && !self.terminate.heap_limit_reached()
            && self.runs < MAX_RUNS_PER_ISOLATE
    }

    /// Whether this worker's isolate is worth keeping for another run: `can_renew` with its own
    /// settings, and a heap (live objects and garbage not yet collected, plus ArrayBuffer
    /// memory) under `KEEP_HEAP_BYTES`. A bigger isolate is cheaper to drop and make anew than
    /// to keep at that size until V8 collects it. The bound also covers what V8 keeps of
    /// earlier contexts: a FinalizationRegistry whose targets died stays, with its context, on
    /// the isolate's clean-up list (V8 lets go of it on `ContextDisposedNotification`, which
    /// the `v8` crate does not bind); measured without the bound, a kept isolate whose runs
    /// each registered 10,000 objects grew until V8's heap limit stopped a run.
    pub fn is_renewable(&mut self) -> bool {
        if !self.can_renew(&self.options) {
            return false;
        }
        let isolate = self
            .isolate
            .as_mut()
            .expect("isolate lives as long as the worker");
        // A compile still running would queue its task for the next run, in this run's context.
        if isolate.has_pending_background_tasks() {
            return false;
        }
        let stats = isolate.get_heap_statistics();
        stats.total_heap_size() + stats.external_memory() <= KEEP_HEAP_BYTES
    }

    /// Gives this worker a fresh context, as if it were new, but keeps its isolate (what makes a
    /// worker expensive to create). Everything the previous script could reach goes: its
    /// globals, modules, `$recv` callback, pending promises and microtasks, and its
    /// `TerminateHandle`s (they no longer stop anything). What stays is the isolate's heap
    /// until it is collected and V8's caches of compiled code. Returns `false`, changing
    /// nothing, when `can_renew(options)` is false. A run stopped with a FinalizationRegistry
    /// clean-up still queued with V8 is not given a kept isolate: the worker gets a new one.
    pub fn renew(
        &mut self,
        options: &WorkerOptions,
        on_send: impl FnMut(&[u8]) -> Option<Vec<u8>> + 'static,
    ) -> bool {
        if !self.can_renew(options) {
            return false;
        }
        if self.context.is_some() && !self.park() {
            // The old run's clean-up would run in the new run's time: start afresh instead.
            *self = Worker::with_options(self.options.clone(), on_send);
            return true;
        }
        self.runs += 1;
        let isolate = self
            .isolate
            .as_mut()
            .expect("isolate lives as long as the worker");
        *state::get(isolate).borrow_mut() = fresh_state(Box::new(on_send));
        let options = &self.options;
        let context = in_isolate(isolate, |scope| new_context(scope, options));
        state::get(isolate).borrow_mut().context = Some(context.clone());
        self.context = Some(context);
        true
    }

    /// Ends the current run and keeps the isolate for `renew`: the script can no longer reach
    /// the host, its microtasks are dropped, its `TerminateHandle`s go inert, and its context
    /// and everything it registered are let go (so the host's closures, and whatever they hold,
    /// are dropped now, not at the next run). Until `renew`, the worker runs nothing.
    ///
    /// Returns whether the run left no task queued with V8. A stopped run can leave a
    /// FinalizationRegistry's clean-up, which would run the old context's JavaScript in the
    /// next run's time; such an isolate must not be kept (`renew` makes a new one instead).
    pub(crate) fn park(&mut self) -> bool {
        if self.context.is_none() {
            return true;
        }
        let isolate = self
            .isolate
            .as_mut()
            .expect("isolate lives as long as the worker");
        let shared = state::get(isolate);
        {
            let st = shared.borrow();
            *st.on_send.borrow_mut() = Box::new(|_| None);
            *st.on_print.borrow_mut() = Box::new(|_| {});
        }
        // V8's microtask queue belongs to the isolate, not the context: a checkpoint run while
        // terminating empties it without running what is queued. Tasks V8 queued for this run
        // (a FinalizationRegistry's clean-up) are run the same way, so that none of them, nor
        // the microtasks they queue, runs this run's JavaScript in the next.
        self.terminate.terminate();
        // What V8 queued for this thread runs under the termination, so none of the run's
        // JavaScript runs. A FinalizationRegistry's clean-up cannot be emptied so (V8 queues
        // it again): an isolate that has one is not to be kept.
        let terminate = &self.terminate;
        let clean = in_isolate(isolate, |scope| {
            if platform::drop_queued_tasks(scope, terminate, PARK_TASKS_LIMIT) {
                return true;
            }
            // V8 keeps queuing tasks of its own while its garbage collector marks step by step;
            // a full collection ends that, so that only a clean-up keeps the queue from emptying.
            scope.low_memory_notification();
            platform::drop_queued_tasks(scope, terminate, PARK_TASKS_LIMIT)
        });
        // A task's `TryCatch` consumed the termination; the checkpoint must run under one.
        self.terminate.terminate();
        self.with_scope(|scope| scope.perform_microtask_checkpoint());
        self.terminate.next_run();
        // Replacing the state drops the old run's handles (modules, `$recv`, rejections) and
        // the host's closures.
        *shared.borrow_mut() = State::new(Box::new(|_| None), Box::new(|_| {}));
        self.context = None;
        clean
    }

    /// Routes `$print` output to `f` (one call per line, without the newline) instead of stdout.
    pub fn set_print_handler(&mut self, f: impl FnMut(&str) + 'static) {
        let state = state::get(self.isolate.as_ref().unwrap());
        state.borrow_mut().on_print = Rc::new(RefCell::new(Box::new(f)));
    }

    /// Runs `source` as a classic script named `name`.
    pub fn load(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        self.enter_js(|tc| {
            let Some(code) = v8::String::new(tc, source) else {
                return Err(JsError::plain(format!(
                    "{name}: source is too large for V8"
                )));
            };
            let origin = modules::origin(tc, name, false);
            let script = match v8::Script::compile(tc, code, Some(&origin)) {
                Some(s) => s,
                None => return Err(exception::caught(tc)),
            };
            match script.run(tc) {
                Some(_) => Ok(()),
                None => Err(exception::caught(tc)),
            }
        })
    }

    /// Runs `source` as an ES module named `name`. Each import is resolved by
    /// `resolve(specifier, referrer_name)`, which returns the imported module's name and source
    /// (or why not: the load fails with that message, at the import). With top-level await the
    /// module may still be waiting when this returns: see [`Worker::poll_modules`].
    pub fn load_module(
        &mut self,
        name: &str,
        source: &str,
        mut resolve: impl FnMut(&str, &str) -> Result<(String, String), String>,
    ) -> Result<(), JsError> {
        let mut resolve = |r: &ImportRequest| {
            if r.json {
                return Err(format!(
                    "import \"{}\" with {{ type: \"json\" }}: this resolver gives ES modules only",
                    r.specifier
                ));
            }
            resolve(r.specifier, r.referrer).map(|(name, source)| ImportedModule {
                name,
                source,
                kind: ModuleKind::Esm,
            })
        };
        self.enter_js(|tc| modules::load(tc, name, source, &mut resolve).map(|_| ()))
    }

    /// Sets the resolver of this run's imports: the static imports of
    /// [`Worker::load_main_module`] and every dynamic `import()` (without one, `import()`
    /// rejects). A renewed worker has none until it is set again.
    pub fn set_resolver(&mut self, resolver: Resolver) {
        let state = state::get(self.isolate.as_ref().unwrap());
        state.borrow_mut().resolver = Some(Rc::new(RefCell::new(resolver)));
    }

    /// Runs `source` as an ES module named `name`, its imports resolved by the resolver of
    /// [`Worker::set_resolver`] (ES, JSON and CommonJS modules).
    pub fn load_main_module(&mut self, name: &str, source: &str) -> Result<(), JsError> {
        let state = state::get(self.isolate.as_ref().unwrap());
        let resolver = state.borrow().resolver.clone();
        let mut resolve = |r: &ImportRequest| match &resolver {
            Some(f) => (f.borrow_mut())(r),
            None => Err(format!(
                "import \"{}\": this worker has no module resolver",
                r.specifier
            )),
        };
        self.enter_js(|tc| modules::load(tc, name, source, &mut resolve).map(|_| ()))
    }

    /// Checks main modules that were still in top-level await: `Ok(true)` while any is
    /// pending, `Ok(false)` when all have finished, `Err` when one was rejected.
    pub fn poll_modules(&mut self) -> Result<bool, JsError> {
        self.enter_js(|tc| modules::poll_pending(tc))
    }

    /// Delivers `msg` to the callback registered with `$recv`, as a fresh ArrayBuffer.
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), JsError> {
        self.deliver(msg)
    }

    /// Like `send_bytes`. (With V8's heap sandbox the bytes are copied into a buffer V8
    /// allocates either way; kept for hosts that hold a `Vec`.)
    pub fn send_vec(&mut self, msg: Vec<u8>) -> Result<(), JsError> {
        self.deliver(&msg)
    }

    fn deliver(&mut self, msg: &[u8]) -> Result<(), JsError> {
        self.enter_js(|tc| {
            let callback = state::get(tc).borrow().recv.clone();
            let Some(callback) = callback else {
                return Err(JsError::plain(
                    "send_bytes: the script has not registered a $recv callback",
                ));
            };
            let callback = v8::Local::new(tc, callback);
            let buffer = reusing_allocator::array_buffer_of(tc, msg);
            let this = v8::undefined(tc).into();
            match callback.call(tc, this, &[buffer.into()]) {
                Some(_) => Ok(()),
                None => Err(exception::caught(tc)),
            }
        })
    }

    /// Runs what V8 has queued for this worker's thread — the end of an asynchronous
    /// `WebAssembly.compile` or `WebAssembly.instantiate`, a FinalizationRegistry's clean-up
    /// callbacks — then the microtask checkpoint, so that the promises those tasks settled run
    /// their reactions. Returns whether any task ran. An exception a clean-up callback throws
    /// is kept for [`Worker::take_unhandled_rejection`]. Once the run is stopped (its
    /// `TerminateHandle`, a time or heap limit), it runs no more tasks and returns the
    /// termination as an error, like every other call. A host that drives a worker itself
    /// calls this between its other work, and keeps calling it while
    /// [`Worker::has_background_work`] holds; `v8box::run` does both.
    pub fn run_platform_tasks(&mut self) -> Result<bool, JsError> {
        let isolate = self
            .isolate
            .as_mut()
            .expect("isolate lives as long as the worker");
        let terminate = &self.terminate;
        let ran = in_isolate(isolate, |scope| {
            platform::run_queued_tasks(scope, terminate)
        });
        if !ran && self.terminate.reason().is_none() {
            return Ok(false);
        }
        // Runs the microtasks the tasks queued, and reports a termination as an error.
        self.enter_js(|_| Ok(ran))
    }

    /// Whether V8 is working for this worker on another thread (an asynchronous WebAssembly
    /// compile) and will queue a task for [`Worker::run_platform_tasks`] when it is done.
    pub fn has_background_work(&self) -> bool {
        self.isolate
            .as_ref()
            .expect("isolate lives as long as the worker")
            .has_pending_background_tasks()
    }

    /// The oldest error that nothing handled, as a `JsError`: a promise rejected with no
    /// handler, or an exception thrown by a task of [`Worker::run_platform_tasks`].
    pub fn take_unhandled_rejection(&mut self) -> Option<JsError> {
        // The common case, nothing rejected, needs no entry into the isolate.
        let isolate = self
            .isolate
            .as_ref()
            .expect("isolate lives as long as the worker");
        {
            let shared = state::get(isolate);
            let st = shared.borrow();
            if st.unhandled.is_empty() {
                return None;
            }
        }
        self.with_scope(|scope| {
            let shared = state::get(scope);
            let (value, prefix) = {
                let mut st = shared.borrow_mut();
                if st.unhandled.is_empty() {
                    return None;
                }
                match st.unhandled.remove(0) {
                    state::Unhandled::Uncaught(value) => (value, "Uncaught"),
                    state::Unhandled::Rejection { reason, .. } => (reason, "Uncaught (in promise)"),
                }
            };
            let value = v8::Local::new(scope, value);
            let mut err = exception::from_value(scope, value);
            err.message = format!("{prefix} {}", err.message);
            Some(err)
        })
        .map(|err| match self.terminate.reason() {
            // Describing the value ran its `stack` getter, which the run's limit stopped: the
            // run ended by that limit, not by the error.
            Some(reason) => {
                self.terminate.reset();
                JsError::terminated(reason)
            }
            None => err,
        })
    }

    /// A handle that stops this worker's JavaScript from any thread.
    pub fn terminate_handle(&self) -> TerminateHandle {
        self.terminate.for_current_run()
    }

    /// With a heap limit: a handle that makes this worker compare its ArrayBuffer memory with
    /// the limit soon, from any thread (V8 counts some of that memory only at its collections).
    pub fn memory_watch(&self) -> Option<MemoryWatch> {
        let limit = self.buffer_limit.as_deref()?;
        let isolate = self.isolate.as_ref()?.thread_safe_handle();
        Some(MemoryWatch::new(isolate, limit))
    }

    fn with_scope<R>(&mut self, f: impl FnOnce(&mut v8::PinScope) -> R) -> R {
        let isolate = self
            .isolate
            .as_mut()
            .expect("isolate lives as long as the worker");
        let context = self.context.as_ref().expect("a parked worker runs nothing");
        in_isolate(isolate, |scope| {
            let context = v8::Local::new(scope, context);
            let scope = &mut v8::ContextScope::new(scope, context);
            f(scope)
        })
    }

    /// Runs `f` with a `TryCatch`, then the microtask checkpoint; a termination (from any
    /// source) becomes a `JsError` and the isolate is made usable again.
    fn enter_js<R>(
        &mut self,
        f: impl FnOnce(&mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>) -> Result<R, JsError>,
    ) -> Result<R, JsError> {
        let terminate = self.terminate.clone();
        let (result, terminated) = self.with_scope(|scope| {
            v8::tc_scope!(let tc, scope);
            let result = f(tc);
            if !tc.has_terminated() && !tc.is_execution_terminating() {
                tc.perform_microtask_checkpoint();
                // `import()` calls made meanwhile load now, with the resolver of this run.
                if !tc.is_execution_terminating() {
                    tc.reset();
                    modules::run_dynamic(tc);
                }
            }
            (result, tc.has_terminated() || tc.is_execution_terminating())
        });
        if terminated || terminate.reason().is_some() {
            let reason = terminate.reason().unwrap_or(TerminationReason::Terminated);
            terminate.reset();
            return Err(JsError::terminated(reason));
        }
        result
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Globals must go before their isolate; the isolate must be entered to be disposed.
        self.context.take();
        if let Some(mut isolate) = self.isolate.take() {
            if let Some(state) = isolate.remove_slot::<state::SharedState>() {
                drop(state);
            }
            // SAFETY: `OwnedIsolate::drop` expects the isolate to be the current one and exits it.
            unsafe { isolate.enter() };
            drop(isolate);
        }
        // Only now, with the isolate gone, may the callbacks' data go.
        self.heap_guard.take();
        self.buffer_limit.take();
        self.cage_share.take();
    }
}

/// Runs `f` with `isolate` entered on this thread, in a handle scope.
fn in_isolate<R>(
    isolate: &mut v8::OwnedIsolate,
    f: impl FnOnce(&mut v8::PinScope<'_, '_, ()>) -> R,
) -> R {
    // SAFETY: entering makes this isolate current on this thread for the duration of `f`; the
    // matching `exit` below restores the previous one (V8 keeps a stack of entries).
    unsafe { isolate.enter() };
    let result = {
        v8::scope!(let scope, &mut **isolate);
        f(scope)
    };
    // SAFETY: pairs with the `enter` above.
    unsafe { isolate.exit() };
    result
}

/// The state of a new run, printing to stdout until told otherwise.
fn fresh_state(on_send: state::SendFn) -> State {
    State::new(on_send, Box::new(print_to_stdout))
}

/// A new context: from the snapshot (whose prelude has run) or bare with the three natives.
fn new_context(
    scope: &mut v8::PinScope<'_, '_, ()>,
    options: &WorkerOptions,
) -> v8::Global<v8::Context> {
    let context = v8::Context::new(scope, Default::default());
    if options.deny_code_generation {
        context.set_allow_generation_from_strings(false);
    }
    let scope = &mut v8::ContextScope::new(scope, context);
    match &options.snapshot {
        // The snapshot's context has the bindings; give back what its prelude registered.
        Some(snap) => {
            if let Some(index) = snap.recv_index {
                if let Ok(f) = scope.get_context_data_from_snapshot_once::<v8::Function>(index) {
                    let global = v8::Global::new(scope, f);
                    state::get(scope).borrow_mut().recv = Some(global);
                }
            }
        }
        None => bindings::install(scope, context),
    }
    if options.bench_noop_function {
        bindings::install_noop(scope, context);
    }
    v8::Global::new(scope, context)
}

extern "C" fn on_promise_reject(msg: v8::PromiseRejectMessage) {
    // SAFETY: V8 calls this synchronously from inside the isolate, with a live context.
    v8::callback_scope!(unsafe scope, &msg);
    let promise = msg.get_promise();
    let shared = state::get(scope);
    // A promise of an earlier run's context (a kept isolate) is not this run's business.
    let ours = match &shared.borrow().context {
        None => true,
        Some(run) => promise
            .get_creation_context(scope)
            .is_some_and(|c| *run == c),
    };
    if !ours {
        return;
    }
    match msg.get_event() {
        v8::PromiseRejectEvent::PromiseRejectWithNoHandler => {
            let value = msg
                .get_value()
                .unwrap_or_else(|| v8::undefined(scope).into());
            let entry = state::Unhandled::Rejection {
                promise: v8::Global::new(scope, promise),
                reason: v8::Global::new(scope, value),
            };
            shared.borrow_mut().unhandled.push(entry);
        }
        v8::PromiseRejectEvent::PromiseHandlerAddedAfterReject => {
            v8::scope!(let scope, scope);
            shared
                .borrow_mut()
                .unhandled
                .retain(|u| !u.is_rejection_of(scope, promise));
        }
        _ => {}
    }
}

/// Exceptions that no `TryCatch` caught. Every entry of ours into JavaScript has one, so V8
/// reports here only exceptions of JavaScript it ran on its own: a FinalizationRegistry's
/// clean-up callback (`Worker::run_platform_tasks`).
extern "C" fn on_uncaught(message: v8::Local<v8::Message>, exception: v8::Local<v8::Value>) {
    // SAFETY: V8 calls this synchronously from inside the isolate, in the context that threw.
    v8::callback_scope!(unsafe scope, message);
    v8::scope!(let scope, scope);
    let shared = state::get(scope);
    // A callback of an earlier run's context (a kept isolate) is not this run's business.
    let ours = match &shared.borrow().context {
        None => true,
        Some(run) => *run == scope.get_current_context(),
    };
    if ours {
        let exception = v8::Global::new(scope, exception);
        shared
            .borrow_mut()
            .unhandled
            .push(state::Unhandled::Uncaught(exception));
    }
}

extern "C" fn deny_wasm(_context: v8::Local<v8::Context>, _source: v8::Local<v8::String>) -> bool {
    false
}
