//! v8box's costs, each next to its floor, in one run (see docs/BENCHMARKS.md):
//!
//!     cargo bench --bench roundtrip
//!
//! B1 `$send` of 64 bytes with a synchronous reply vs a no-op native call; B2 1 MiB each way vs
//! a memcpy; B3 full syscalls (sync and async) with the audit log off and on; B5 start-up;
//! B6 the pool with one and two threads; and the memory of idle workers.

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use v8box::audit::AuditLog;
use v8box::isolation::Isolation;
use v8box::{Job, Main, Policy, RunOptions, WarmWorker, Worker, WorkerOptions, WorkerPool};

const CALLS: u64 = 10_000;

fn bench_worker(on_send: impl FnMut(&[u8]) -> Option<Vec<u8>> + 'static) -> Worker {
    let mut w = Worker::with_options(
        WorkerOptions {
            bench_noop_function: true,
            ..Default::default()
        },
        on_send,
    );
    w.set_print_handler(|_| {});
    w
}

/// A worker with B1's loops: `noops()`, `sends()` and `allocs()`, each of `CALLS` calls.
fn b1_worker(on_send: impl FnMut(&[u8]) -> Option<Vec<u8>> + 'static) -> Worker {
    let mut w = bench_worker(on_send);
    w.load(
        "b1.js",
        &format!(
            "const msg = new Uint8Array(64);\n\
             globalThis.sends = () => {{ for (let i = 0; i < {CALLS}; i++) $send(msg); }};\n\
             globalThis.noops = () => {{ for (let i = 0; i < {CALLS}; i++) $noop(msg); }};\n\
             let last;\n\
             globalThis.allocs = () => {{ for (let i = 0; i < {CALLS}; i++) last = new ArrayBuffer(64); }};"
        ),
    )
    .unwrap();
    w
}

fn b1_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("B1 round trip");
    group.throughput(Throughput::Elements(CALLS));
    let mut w = b1_worker(|_| Some(vec![0u8; 64]));
    group.bench_function("noop native call (floor)", |b| {
        b.iter(|| w.load("n.js", "noops()").unwrap())
    });
    // What a fresh 64-byte ArrayBuffer costs in JavaScript alone: every synchronous reply is one.
    group.bench_function("JS new ArrayBuffer(64) (a reply's allocation)", |b| {
        b.iter(|| w.load("a.js", "allocs()").unwrap())
    });
    group.bench_function("$send 64 B, 64 B reply", |b| {
        b.iter(|| w.load("s.js", "sends()").unwrap())
    });
    let mut quiet = b1_worker(|_| None);
    group.bench_function("$send 64 B, null reply", |b| {
        b.iter(|| quiet.load("s.js", "sends()").unwrap())
    });
    group.finish();
}

fn b2_bytes(c: &mut Criterion) {
    const MIB: usize = 1 << 20;
    let mut group = c.benchmark_group("B2 1 MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    let src = vec![7u8; MIB];
    let mut dst = vec![0u8; MIB];
    group.bench_function("memcpy (floor)", |b| {
        b.iter(|| {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
        })
    });
    let mut w = bench_worker(|bytes| {
        std::hint::black_box(bytes);
        None
    });
    w.load("b2.js", &format!("const big = new Uint8Array({MIB}); let got = 0;\n$recv((m) => {{ got += m.byteLength; }});"))
        .unwrap();
    group.bench_function("host -> script (send_bytes: copies)", |b| {
        b.iter(|| w.send_bytes(&src).unwrap())
    });
    group.bench_function("host -> script (send_vec: adopts the host's Vec)", |b| {
        b.iter_batched(
            || src.clone(),
            |v| w.send_vec(v).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("script -> host ($send)", |b| {
        b.iter(|| w.load("s.js", "$send(big)").unwrap())
    });
    group.finish();

    // Host -> script at other sizes: up to 2 MiB a message reuses a block freed at V8's last
    // collection (src/worker/reusing_allocator.cc), and from 64 KiB up it is copied past the
    // cache (`copy_streaming` in reusing_allocator.rs).
    let mut group = c.benchmark_group("B2 host -> script by size");
    for size in [64 << 10, 512 << 10, 900 << 10, 2 << 20] {
        group.throughput(Throughput::Bytes(size as u64));
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        group.bench_function(format!("memcpy {} KiB (floor)", size >> 10), |b| {
            b.iter(|| {
                dst.copy_from_slice(std::hint::black_box(&src));
                std::hint::black_box(&dst);
            })
        });
        group.bench_function(format!("send_vec {} KiB", size >> 10), |b| {
            b.iter_batched(
                || src.clone(),
                |v| w.send_vec(v).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// Options for one run; with `audit`, a log in a new file (the last run's is removed first).
fn run_options(audit: bool, policy: &Policy) -> RunOptions {
    let mut options = RunOptions::new(policy.clone());
    options.output = Some(std::sync::Arc::new(|_, _| {}));
    if audit {
        let path = std::env::temp_dir().join(format!("v8box-bench-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        options.audit = AuditLog::open(&path, "bench").unwrap();
    }
    options
}

/// `run_options(true, …)` with the log sealed by a new key pair (in the temporary folder).
fn run_options_sealed(policy: &Policy) -> RunOptions {
    let mut options = RunOptions::new(policy.clone());
    options.output = Some(std::sync::Arc::new(|_, _| {}));
    let id = std::process::id();
    let path = std::env::temp_dir().join(format!("v8box-bench-sealed-{id}.log"));
    let keys = std::env::temp_dir().join(format!("v8box-bench-keys-{id}"));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&keys);
    let pair = v8box::audit::keygen(&keys).unwrap();
    options.audit = AuditLog::open_sealed(&path, "bench", &pair.secret).unwrap();
    options
}

fn run_with(source: &str, options: RunOptions) {
    let exit = v8box::run(
        Main::Script {
            name: "bench.js".into(),
            source: source.into(),
        },
        options,
    );
    assert_eq!(exit, v8box::Exit::Ok);
}

fn run_script(source: &str, audit: bool, policy: &Policy) {
    run_with(source, run_options(audit, policy));
}

/// `v8box::run_warm`: the run gets a fresh context in `warm`'s kept isolate.
fn run_warm_script(source: &str, policy: &Policy, warm: &mut WarmWorker) {
    let main = Main::Script {
        name: "bench.js".into(),
        source: source.into(),
    };
    let exit = v8box::run_warm(main, run_options(false, policy), warm);
    assert_eq!(exit, v8box::Exit::Ok);
}

/// B3's policy: `sys.env.get('HOME')` allowed.
fn b3_policy() -> Policy {
    let mut policy = Policy::deny_all();
    policy
        .grant(
            v8box::policy::Permission::Env,
            "HOME",
            std::path::Path::new("/"),
        )
        .unwrap();
    policy
}

/// B3's scripts, by name: an empty run first, then the three kinds of call.
fn b3_cases() -> [(&'static str, String); 4] {
    [
        // No calls: what a run costs besides them (start-up; with audit, writing run.start
        // and run.end).
        ("empty run (fixed cost)", String::new()),
        (
            "sys.env.get",
            format!("for (let i = 0; i < {CALLS}; i++) sys.env.get('HOME');"),
        ),
        (
            "sys.now",
            format!("for (let i = 0; i < {CALLS}; i++) sys.now();"),
        ),
        (
            "async sys.sleep(0)",
            format!("(async () => {{ for (let i = 0; i < {CALLS}; i++) await sys.sleep(0); }})();"),
        ),
    ]
}

fn b3_syscalls(c: &mut Criterion) {
    let mut group = c.benchmark_group("B3 syscalls");
    group.throughput(Throughput::Elements(CALLS));
    group.sample_size(20);
    let policy = b3_policy();
    let cases = b3_cases();
    for (name, source) in &cases {
        for audit in [false, true] {
            let id = BenchmarkId::new(*name, if audit { "audit on" } else { "audit off" });
            // Removing the last run's log (megabytes) and opening a new one is set-up, not timed:
            // a host keeps its log open across runs. Writing every record is timed (a run ends
            // when its `run.end` is on disk).
            group.bench_with_input(id, source, |b, s| {
                b.iter_batched(
                    || run_options(audit, &policy),
                    |options| run_with(s, options),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

fn b5_startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("B5 start-up");
    let policy = Policy::deny_all();
    group.bench_function("bare worker: create, run hello, drop", |b| {
        b.iter(|| {
            let mut w = Worker::new(|_| None);
            w.set_print_handler(|_| {});
            w.load("hello.js", "$print('hello')").unwrap();
        })
    });
    group.bench_function("v8box::run: worker + sys prelude + hello", |b| {
        b.iter(|| run_script("$print('hello')", false, &policy))
    });
    let mut warm = WarmWorker::new();
    group.bench_function(
        "v8box::run_warm: fresh context in a kept isolate + hello",
        |b| b.iter(|| run_warm_script("$print('hello')", &policy, &mut warm)),
    );
    group.finish();
}

/// B6's work: 16 jobs, each a CPU-bound loop in its own isolate.
fn b6_jobs() -> Vec<Job> {
    (0..16)
        .map(|i| {
            Job::module(
                &format!("j{i}.js"),
                "let s = 0; for (let k = 0; k < 2e7; k++) s += k;",
                Policy::deny_all(),
            )
        })
        .collect()
}

fn b6_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("B6 pool scaling");
    group.sample_size(10);
    let jobs = b6_jobs();
    group.throughput(Throughput::Elements(jobs.len() as u64));
    for threads in [1, 2] {
        let pool = WorkerPool::new(threads);
        group.bench_with_input(
            BenchmarkId::new("16 CPU-bound jobs", format!("{threads} threads")),
            &jobs,
            |b, jobs| b.iter(|| pool.run_all(jobs.clone())),
        );
    }
    group.finish();
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// RSS of idle workers (each with the `sys` prelude loaded), printed once.
fn memory() {
    for n in [1usize, 100, 1000] {
        let before = rss_bytes();
        let workers: Vec<Worker> = (0..n)
            .map(|_| {
                let mut w = Worker::new(|_| None);
                w.load(v8box::runtime::PRELUDE_NAME, v8box::runtime::PRELUDE)
                    .unwrap();
                w
            })
            .collect();
        let after = rss_bytes();
        println!(
            "memory: {n} idle workers with the sys prelude: {:.1} MiB RSS, {:.0} KiB each",
            (after - before) as f64 / (1 << 20) as f64,
            (after - before) as f64 / 1024.0 / n as f64
        );
        drop(workers);
    }
}

/// B5's p50 and p99 (criterion reports means and medians only), printed once: 300 start-ups
/// of each kind, after 20 to warm up.
fn startup_percentiles() {
    let policy = Policy::deny_all();
    let warm = std::cell::RefCell::new(WarmWorker::new());
    let kinds: [(&str, &dyn Fn()); 3] = [
        ("bare worker: create, run hello, drop", &|| {
            let mut w = Worker::new(|_| None);
            w.set_print_handler(|_| {});
            w.load("hello.js", "$print('hello')").unwrap();
        }),
        ("v8box::run: worker + sys prelude + hello", &|| {
            run_script("$print('hello')", false, &policy)
        }),
        (
            "v8box::run_warm: fresh context in a kept isolate + hello",
            &|| run_warm_script("$print('hello')", &policy, &mut warm.borrow_mut()),
        ),
    ];
    for (name, start) in kinds {
        for _ in 0..20 {
            start();
        }
        let mut times: Vec<Duration> = (0..300)
            .map(|_| {
                let t = std::time::Instant::now();
                start();
                t.elapsed()
            })
            .collect();
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "B5 {name}: p50 {:.2} ms, p99 {:.2} ms",
            at(0.50).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3
        );
    }
}

/// Times `a` and `b` in turns (`a b`, then `b a`, ...), `pairs` times, and prints the median
/// of the per-turn ratios `time(a) / time(b)` — how many times faster `b` ran than `a` — with
/// the middle half of them. Criterion measures each case on its own, minutes apart; on a machine
/// whose speed drifts (this one's does, by ±30 % within minutes), a ratio of two such figures
/// carries the drift, while two runs taken back to back share it. Each side first prepares its
/// turn (untimed) and returns the part that is timed. With `V8BOX_BENCH_PAIRED` set, only the
/// cases whose name contains its value run, and `V8BOX_BENCH_PAIRS` sets the number of pairs.
fn paired<A, B, RA, RB>(name: &str, pairs: usize, mut a: A, mut b: B)
where
    A: FnMut() -> RA,
    B: FnMut() -> RB,
    RA: FnOnce(),
    RB: FnOnce(),
{
    if let Ok(only) = std::env::var("V8BOX_BENCH_PAIRED") {
        if !name.contains(&only) {
            return;
        }
    }
    let pairs = match std::env::var("V8BOX_BENCH_PAIRS") {
        Ok(n) => n.parse().expect("V8BOX_BENCH_PAIRS: a number of pairs"),
        Err(_) => pairs,
    };
    assert!(pairs > 0, "V8BOX_BENCH_PAIRS: at least one pair");
    fn time(run: impl FnOnce()) -> f64 {
        let t = std::time::Instant::now();
        run();
        t.elapsed().as_secs_f64()
    }
    a()();
    b()();
    let mut times: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..pairs)
        .map(|i| {
            let (ta, tb) = if i % 2 == 0 {
                let ta = time(a());
                (ta, time(b()))
            } else {
                let tb = time(b());
                (time(a()), tb)
            };
            times.0.push(ta);
            times.1.push(tb);
            ta / tb
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    times.0.sort_by(f64::total_cmp);
    times.1.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() as f64 * q) as usize).min(ratios.len() - 1)];
    println!(
        "paired {name}: {:.3} (middle half {:.3}–{:.3}, {pairs} pairs; medians: first {:.3} ms, second {:.3} ms)",
        at(0.5),
        at(0.25),
        at(0.75),
        times.0[times.0.len() / 2] * 1e3,
        times.1[times.1.len() / 2] * 1e3,
    );
}

/// The targets that are ratios, measured side by side (see `paired`): B1's rate against the
/// no-op floor, B3's audit-on rate against audit-off, B6's speed-up from a second thread.
fn paired_ratios() {
    let w = std::cell::RefCell::new(b1_worker(|_| Some(vec![0u8; 64])));
    paired(
        "B1 $send 64 B with a 64 B reply, its rate / a no-op native call's",
        201,
        || || w.borrow_mut().load("n.js", "noops()").unwrap(),
        || || w.borrow_mut().load("s.js", "sends()").unwrap(),
    );
    let policy = b3_policy();
    for (name, source) in b3_cases().iter().skip(1) {
        // Opening the log (and removing the last one) is not timed, as in `b3_syscalls`.
        paired(
            &format!("B3 {name}, audit on's rate / audit off's"),
            41,
            || {
                let options = run_options(false, &policy);
                move || run_with(source, options)
            },
            || {
                let options = run_options(true, &policy);
                move || run_with(source, options)
            },
        );
    }
    // Sealing (docs/AUDIT.md, "Sealed logs"): a checkpoint every `SEAL_EVERY` records and at
    // the run's end, each a signature and the key file replaced. A new key pair for each run
    // is set-up, not timed.
    for (name, source) in b3_cases().iter().skip(1).take(2) {
        paired(
            &format!("B3 {name}, sealed log's rate / unsealed log's"),
            41,
            || {
                let options = run_options(true, &policy);
                move || run_with(source, options)
            },
            || {
                let options = run_options_sealed(&policy);
                move || run_with(source, options)
            },
        );
        paired(
            &format!("B3 {name}, sealed log's rate / audit off's"),
            41,
            || {
                let options = run_options(false, &policy);
                move || run_with(source, options)
            },
            || {
                let options = run_options_sealed(&policy);
                move || run_with(source, options)
            },
        );
    }
    // Isolation (docs/SECURITY.md): the same calls with the isolate in a jailed worker
    // process (`Isolation::Process`, the CLI's default) against one on the run's thread. The
    // worker process is started ahead, untimed (a pool's zygote does that between jobs); its
    // isolate and the calls are timed, as the thread's are.
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_v8box"));
    let process = Isolation::Process { exe: exe.clone() };
    for (name, source) in b3_cases().iter().skip(1).take(2) {
        paired(
            &format!("B3 {name}, process isolation's rate / thread's"),
            41,
            || {
                let options = run_options(false, &policy);
                move || run_with(source, options)
            },
            || {
                let mut warm = WarmWorker::new();
                warm.prestart(&exe);
                let mut options = run_options(false, &policy);
                options.isolation = process.clone();
                move || {
                    let main = Main::Script {
                        name: "bench.js".into(),
                        source: source.clone(),
                    };
                    assert_eq!(v8box::run_warm(main, options, &mut warm), v8box::Exit::Ok);
                }
            },
        );
    }
    let hello = || {
        vec![Job::module(
            "hello.js",
            "$print('hello')",
            Policy::deny_all(),
        )]
    };
    let (processes, warm_processes, warm_threads) = (
        WorkerPool::with_isolation(1, process.clone()),
        WorkerPool::with_warm_workers_in(1, process.clone()),
        WorkerPool::with_warm_workers(1),
    );
    paired(
        "B5 a warm pool job (hello), its time in kept worker processes / in kept isolates on a thread",
        101,
        || || drop(warm_processes.run_all(hello())),
        || || drop(warm_threads.run_all(hello())),
    );
    paired(
        "B5 a pool job (hello), its time in a new worker process each / in kept isolates on a thread",
        101,
        || || drop(processes.run_all(hello())),
        || || drop(warm_threads.run_all(hello())),
    );
    let jobs = b6_jobs();
    let (one, two) = (WorkerPool::new(1), WorkerPool::new(2));
    paired(
        "B6 16 CPU-bound jobs, speed-up of 2 pool threads over 1",
        31,
        || || drop(one.run_all(jobs.clone())),
        || || drop(two.run_all(jobs.clone())),
    );
}

fn main() {
    // V8 flags to try a variant with (docs/BENCHMARKS.md lists those measured), e.g.
    // `V8BOX_BENCH_V8_FLAGS="--single-threaded-gc"`.
    if let Ok(flags) = std::env::var("V8BOX_BENCH_V8_FLAGS") {
        let args = std::iter::once("bench".to_string())
            .chain(flags.split_whitespace().map(String::from))
            .collect();
        let rest = v8box::set_flags(args);
        assert_eq!(rest.len(), 1, "V8 did not take {:?}", &rest[1..]);
    }
    // Memory first: its one-worker row includes V8's first-use costs in the process.
    if std::env::var_os("V8BOX_BENCH_SKIP_MEMORY").is_none() {
        memory();
    }
    if std::env::var_os("V8BOX_BENCH_SKIP_PAIRED").is_none() {
        paired_ratios();
    }
    if std::env::var_os("V8BOX_BENCH_SKIP_PERCENTILES").is_none() {
        startup_percentiles();
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    b1_round_trip(&mut c);
    b2_bytes(&mut c);
    b3_syscalls(&mut c);
    b5_startup(&mut c);
    b6_pool(&mut c);
    c.final_summary();
}
