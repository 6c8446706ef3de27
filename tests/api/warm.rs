//! `WarmWorker` and `WorkerPool::with_warm_workers`: runs that reuse an isolate must not see,
//! be stopped by, or be reached by anything an earlier run left behind.

use std::sync::{Arc, Mutex};

use v8box::dispatch::{OutputFn, Stream};
use v8box::runtime::RunControl;
use v8box::{run_warm, Exit, Job, Main, Policy, RunOptions, WarmWorker, WorkerPool};

fn script(source: &str) -> Main {
    Main::Script {
        name: "warm.js".into(),
        source: source.into(),
    }
}

/// Runs `source` in `warm` and returns how it ended and what it printed.
fn run_printing(
    warm: &mut WarmWorker,
    source: &str,
    mut options: RunOptions,
) -> (Exit, Vec<String>) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let out = lines.clone();
    let print: OutputFn =
        Arc::new(move |_: Stream, line: &str| out.lock().unwrap().push(line.to_string()));
    options.output = Some(print);
    let exit = run_warm(script(source), options, warm);
    let printed = lines.lock().unwrap().clone();
    (exit, printed)
}

fn with_timeout(ms: u64) -> RunOptions {
    let mut policy = Policy::deny_all();
    policy.limits.timeout_ms = Some(ms);
    RunOptions::new(policy)
}

#[test]
fn a_warm_run_sees_nothing_the_previous_script_left() {
    // With the startup snapshot (the default) and with the prelude loaded from source.
    for use_snapshot in [true, false] {
        let options = || {
            let mut o = RunOptions::new(Policy::deny_all());
            o.use_snapshot = use_snapshot;
            o
        };
        let mut warm = WarmWorker::new();
        let (exit, _) = run_printing(
            &mut warm,
            "globalThis.leak = 'secret'; Object.prototype.polluted = 1; \
             Array.prototype.push = () => 0; sys.env = null;",
            options(),
        );
        assert_eq!(exit, Exit::Ok);
        assert!(warm.is_warm());
        let (exit, printed) = run_printing(
            &mut warm,
            "const a = []; a.push(1); \
             console.log(typeof leak, ({}).polluted, a.length, typeof sys.env.get);",
            options(),
        );
        assert_eq!(exit, Exit::Ok);
        assert_eq!(printed, ["undefined undefined 1 function"]);
        assert_eq!(warm.renewals(), 1, "the second run reused the isolate");
    }
}

#[test]
fn a_stop_handle_from_an_earlier_run_cannot_stop_the_next() {
    let mut warm = WarmWorker::new();
    let first: Arc<Mutex<Option<RunControl>>> = Arc::default();
    let keep = first.clone();
    let mut options = RunOptions::new(Policy::deny_all());
    options.on_start = Some(Box::new(move |c| *keep.lock().unwrap() = Some(c)));
    assert_eq!(run_printing(&mut warm, "1", options).0, Exit::Ok);
    let stale = first.lock().unwrap().take().expect("the first run started");

    let mut options = RunOptions::new(Policy::deny_all());
    // The host stops the earlier run, late: the run now in the isolate is someone else's.
    options.on_start = Some(Box::new(move |_| stale.stop()));
    let (exit, printed) = run_printing(&mut warm, "$print('still running')", options);
    assert_eq!(exit, Exit::Ok);
    assert_eq!(printed, ["still running"]);
    assert_eq!(warm.renewals(), 1);
}

/// Runs `first` (which queues a reaction, then loops until its timeout), then a second script
/// in the same isolate: the first run's reaction must reach neither run's output.
fn assert_reaction_left_queued_reaches_no_one(first: &str) {
    let mut warm = WarmWorker::new();
    let (exit, printed) = run_printing(&mut warm, first, with_timeout(50));
    assert_eq!(exit, Exit::Timeout);
    assert!(printed.is_empty(), "{printed:?}");
    let (exit, printed) = run_printing(
        &mut warm,
        "Promise.resolve('second').then((s) => $print(s))",
        with_timeout(10_000),
    );
    assert_eq!(exit, Exit::Ok);
    assert_eq!(printed, ["second"]);
    assert_eq!(warm.renewals(), 1);
}

#[test]
fn microtasks_queued_by_a_stopped_run_never_run_in_the_next() {
    // Stopped inside the loop, before the microtask checkpoint: the callback stays queued.
    assert_reaction_left_queued_reaches_no_one(
        "Promise.resolve().then(() => $print('from the first run')); for (;;) {}",
    );
}

#[test]
fn native_reactions_left_queued_by_a_stopped_run_reach_no_host() {
    // `$print` as the reaction itself: no script function runs, so termination alone would not
    // stop it when the queue is emptied after the run.
    assert_reaction_left_queued_reaches_no_one("Promise.resolve('late').then($print); for (;;) {}");
}

#[test]
fn eval_stays_denied_in_a_renewed_context() {
    let mut warm = WarmWorker::new();
    let no_eval = || {
        let mut policy = Policy::deny_all();
        policy.allow_eval = false;
        RunOptions::new(policy)
    };
    let probe = "try { eval('1'); $print('eval ran') } catch (e) { $print(e.name) }";
    for _ in 0..2 {
        let (exit, printed) = run_printing(&mut warm, probe, no_eval());
        assert_eq!(exit, Exit::Ok);
        assert_eq!(printed, ["EvalError"]);
    }
    assert_eq!(warm.renewals(), 1);
}

#[test]
fn a_run_with_a_heap_limit_always_gets_a_new_isolate() {
    let mut warm = WarmWorker::new();
    let limited = || {
        let mut policy = Policy::deny_all();
        policy.limits.max_heap_mb = Some(64);
        RunOptions::new(policy)
    };
    assert_eq!(run_printing(&mut warm, "1", limited()).0, Exit::Ok);
    assert!(!warm.is_warm(), "an isolate with a heap limit is not kept");
    assert_eq!(
        run_printing(&mut warm, "1", RunOptions::new(Policy::deny_all())).0,
        Exit::Ok
    );
    assert!(warm.is_warm());
    assert_eq!(run_printing(&mut warm, "1", limited()).0, Exit::Ok);
    assert_eq!(warm.renewals(), 0);
}

#[test]
fn a_warm_pool_runs_jobs_like_a_new_worker_each() {
    let pool = WorkerPool::with_warm_workers(2);
    let jobs: Vec<Job> = (0..40)
        .map(|i| {
            let source = if i % 5 == 0 {
                format!("globalThis.seen = {i}; throw new Error('job {i}')")
            } else {
                format!("console.log(typeof seen, {i})")
            };
            Job::module(&format!("job{i}.js"), &source, Policy::deny_all())
        })
        .collect();
    let results = pool.run_all(jobs);
    // The audit log's first record says which run of its isolate each job was.
    let isolate_run = |r: &v8box::JobResult| {
        let start: serde_json::Value = serde_json::from_str(&r.audit[0]).unwrap();
        assert_eq!(start["op"], "run.start");
        start["isolate_run"].as_u64().unwrap()
    };
    let kept = results.iter().filter(|r| isolate_run(r) > 1).count();
    assert!(
        kept >= 30,
        "40 jobs on 2 threads: most in a kept isolate, got {kept}"
    );
    for (i, r) in results.into_iter().enumerate() {
        if i % 5 == 0 {
            assert!(matches!(&r.exit, Exit::Error(e) if e.message.contains(&format!("job {i}"))));
        } else {
            assert_eq!(r.exit, Exit::Ok, "job {i}");
            assert_eq!(r.stdout, [format!("undefined {i}")]);
        }
    }
}

#[test]
fn an_isolate_left_with_a_big_heap_is_not_kept() {
    let mut warm = WarmWorker::new();
    let (exit, _) = run_printing(
        &mut warm,
        "globalThis.big = new Array(1e7).fill(1.5)",
        RunOptions::new(Policy::deny_all()),
    );
    assert_eq!(exit, Exit::Ok);
    assert!(!warm.is_warm(), "an 80 MB heap is dropped, not kept");
    let (exit, _) = run_printing(&mut warm, "1", RunOptions::new(Policy::deny_all()));
    assert_eq!(exit, Exit::Ok);
    assert!(warm.is_warm());
}

#[test]
fn webassembly_compiled_in_the_background_settles_in_its_own_run_only() {
    let add = crate::WASM_ADD;
    let mut warm = WarmWorker::new();
    // Stopped while V8 compiles (or has compiled and queued the settlement): neither the
    // settlement nor its reaction may run in a later run. (The reaction could not reach the
    // host from its old context, but it could hold the next run's thread.)
    let (exit, printed) = run_printing(
        &mut warm,
        &format!("WebAssembly.instantiate({add}).then(() => {{ for (;;) {{}} }}); for (;;) {{}}"),
        with_timeout(50),
    );
    assert_eq!(exit, Exit::Timeout);
    assert!(printed.is_empty(), "{printed:?}");
    let settle = format!(
        "WebAssembly.instantiate({add}).then(({{ instance }}) => $print('sum', instance.exports.add(1, 2)))"
    );
    for _ in 0..2 {
        let (exit, printed) = run_printing(&mut warm, &settle, with_timeout(5_000));
        assert_eq!(exit, Exit::Ok);
        assert_eq!(printed, ["sum 3"]);
    }
    // The last run was in a renewed context: a kept isolate compiles in the background too.
    assert!(warm.renewals() >= 1);
}

#[test]
fn finalization_callbacks_left_by_a_stopped_run_never_run() {
    let mut warm = WarmWorker::new();
    // The first clean-up ends the run; V8 queues the other 99 as a new task. None may run:
    // not in this run (it has ended), not while its isolate is parked, not in the next run
    // (each would loop for ever: `run_warm` would not return, or the next run time out).
    // Control: as much garbage without a registry leaves a heap small enough to keep, so
    // below it is the clean-up, not the heap, that decides.
    let (exit, _) = run_printing(
        &mut warm,
        &format!(
            "const keep = []; for (let round = 0; round < 30; round++) {}",
            crate::KEPT_GARBAGE
        ),
        RunOptions::new(Policy::deny_all()),
    );
    assert_eq!(exit, Exit::Ok);
    assert!(
        warm.is_warm(),
        "the garbage alone does not cost the isolate"
    );
    let script = format!(
        "let n = 0;\n\
         const registry = new FinalizationRegistry(() => {{\n\
           n++; if (n === 1) {{ $print('clean-up', n); sys.exit(0); }} for (;;) {{}}\n\
         }});\n\
         (() => {{ for (let i = 0; i < 100; i++) registry.register({{ i }}, i); }})();\n\
         (async () => {{\n\
           const keep = [];\n\
           for (let round = 0; round < 1000; round++) {{ {} await sys.sleep(0); }}\n\
           $print('never collected');\n\
         }})();",
        crate::KEPT_GARBAGE
    );
    let (exit, printed) = run_printing(&mut warm, &script, RunOptions::new(Policy::deny_all()));
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(printed, ["clean-up 1"]);
    // Whether the isolate is kept or renewed, the next run must not run the other 99: each
    // would loop for ever, so the run would time out. It makes garbage of its own, so that
    // full collections come and V8 would queue any clean-up left.
    let next = format!(
        "(async () => {{\n\
           const keep = [];\n\
           for (let round = 0; round < 30; round++) {{ {} await sys.sleep(0); }}\n\
           $print('next');\n\
         }})();",
        crate::KEPT_GARBAGE
    );
    let (exit, printed) = run_printing(&mut warm, &next, with_timeout(5_000));
    assert_eq!((exit, printed), (Exit::Ok, vec!["next".to_string()]));
}
