//! The Worker: v8worker2's behaviours, plus the three-function surface.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;

use v8box::{TerminationReason, Worker, WorkerOptions};

/// A worker whose `$print` lines are collected.
fn printing_worker() -> (Worker, Rc<RefCell<Vec<String>>>) {
    let lines = Rc::new(RefCell::new(Vec::new()));
    let mut w = Worker::new(|_| None);
    let sink = lines.clone();
    w.set_print_handler(move |l| sink.borrow_mut().push(l.to_string()));
    (w, lines)
}

fn eval_print(src: &str) -> Vec<String> {
    let (mut w, lines) = printing_worker();
    w.load("eval.js", src).unwrap();
    let out = lines.borrow().clone();
    out
}

#[test]
fn version_is_v8_15_2_with_the_heap_sandbox() {
    assert!(
        v8box::version().starts_with("15.2."),
        "{}",
        v8box::version()
    );
    assert!(v8box::worker::heap_sandbox_enabled());
    assert_eq!(v8box::worker::check_platform(), Ok(()));
}

#[test]
fn set_flags_returns_what_v8_did_not_take() {
    let rest = v8box::set_flags(vec!["hello".into(), "--lazy".into(), "foobar".into()]);
    assert_eq!(rest, vec!["hello".to_string(), "foobar".to_string()]);
}

#[test]
fn print_joins_arguments_with_spaces() {
    assert_eq!(
        eval_print("$print('hello', 'world', 42, true, null)"),
        ["hello world 42 true null"]
    );
}

#[test]
fn print_shows_typed_arrays_readably() {
    let out = eval_print(
        "$print(new Uint8Array([1, 2, 3])); $print(new Float64Array([1.5])); $print([1, 'a', [2]]);\
         $print(new ArrayBuffer(4))",
    );
    assert_eq!(
        out,
        [
            "Uint8Array(3) [1, 2, 3]",
            "Float64Array(1) [1.5]",
            "[1, 'a', [2]]",
            "ArrayBuffer { byteLength: 4 }"
        ]
    );
}

#[test]
fn syntax_error_names_the_file_and_the_bad_token() {
    let mut w = Worker::new(|_| None);
    let err = w.load("broken.js", "let x = 1;\nlet y = );\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("broken.js:2"), "{text}");
    assert!(err.message.contains("SyntaxError"), "{text}");
    assert!(err.message.contains("Unexpected token ')'"), "{text}");
    assert_eq!(err.script.as_deref(), Some("broken.js"));
    assert_eq!(err.line, Some(2));
}

#[test]
fn throw_during_load_is_an_error_with_location_and_stack() {
    let mut w = Worker::new(|_| None);
    let err = w
        .load(
            "thrower.js",
            "function f() {\n  throw new Error('boom');\n}\nf();",
        )
        .unwrap_err();
    assert_eq!(err.message, "Error: boom");
    assert_eq!(err.location().as_deref(), Some("thrower.js:2:3"));
    let text = err.to_string();
    assert!(text.contains("at f (thrower.js:2:9)"), "{text}");
    // The worker is still usable.
    w.load("after.js", "1 + 1").unwrap();
}

#[test]
fn send_and_recv_count_both_ways() {
    let received = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let sink = received.clone();
    let (mut w, lines) = {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let mut w = Worker::new(move |b| {
            sink.borrow_mut().push(b.to_vec());
            None
        });
        let l = lines.clone();
        w.set_print_handler(move |s| l.borrow_mut().push(s.to_string()));
        (w, lines)
    };
    w.load(
        "count.js",
        "let n = 0;\n$recv(msg => { n++; $print('got', new Uint8Array(msg)); });\n\
         for (let i = 0; i < 3; i++) { const r = $send(new Uint8Array([i])); if (r !== null) throw 1; }",
    )
    .unwrap();
    assert_eq!(*received.borrow(), vec![vec![0u8], vec![1], vec![2]]);
    w.send_bytes(&[7, 8]).unwrap();
    w.send_bytes(&[9]).unwrap();
    w.load("n.js", "$print(n)").unwrap();
    assert_eq!(
        *lines.borrow(),
        ["got Uint8Array(2) [7, 8]", "got Uint8Array(1) [9]", "2"]
    );
}

#[test]
fn send_returns_the_hosts_synchronous_reply() {
    let (mut w, lines) = {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let mut w = Worker::new(|b| Some(b.iter().rev().copied().collect()));
        let l = lines.clone();
        w.set_print_handler(move |s| l.borrow_mut().push(s.to_string()));
        (w, lines)
    };
    w.load(
        "reply.js",
        "const r = $send(new Uint8Array([1, 2, 3]));\n\
         $print(r instanceof ArrayBuffer, new Uint8Array(r));",
    )
    .unwrap();
    assert_eq!(*lines.borrow(), ["true Uint8Array(3) [3, 2, 1]"]);
}

#[test]
fn send_honours_view_offset_and_length() {
    let received = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let sink = received.clone();
    let mut w = Worker::new(move |b| {
        sink.borrow_mut().push(b.to_vec());
        None
    });
    w.load(
        "views.js",
        "const buf = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).buffer;\n\
         $send(buf);\n\
         $send(new Uint8Array(buf, 2, 3));\n\
         $send(new DataView(buf, 5, 2));\n\
         $send(new Uint16Array(buf, 2, 1));\n\
         $send(new Uint8Array(0));",
    )
    .unwrap();
    assert_eq!(
        *received.borrow(),
        vec![
            vec![0, 1, 2, 3, 4, 5, 6, 7],
            vec![2, 3, 4],
            vec![5, 6],
            vec![2, 3],
            vec![]
        ]
    );
}

#[test]
fn send_rejects_what_is_not_bytes_with_a_type_error() {
    let out = eval_print(
        "for (const v of ['text', 42, {}, [1], null, undefined]) {\n\
           try { $send(v); $print('no error'); } catch (e) { $print(e.constructor.name, e.message); }\n\
         }",
    );
    assert_eq!(out.len(), 6);
    for line in &out {
        assert!(
            line.starts_with("TypeError $send expects an ArrayBuffer"),
            "{line}"
        );
    }
    assert!(out[0].ends_with("got a string"), "{}", out[0]);
    assert!(out[1].ends_with("got a number"), "{}", out[1]);
    assert!(out[3].ends_with("got an object (Array)"), "{}", out[3]);
    assert!(out[4].ends_with("got null"), "{}", out[4]);
}

#[test]
fn recv_rejects_a_non_function() {
    let out = eval_print("try { $recv(42) } catch (e) { $print(e.constructor.name, e.message) }");
    assert_eq!(out, ["TypeError $recv expects a function, got a number"]);
}

#[test]
fn send_bytes_without_a_recv_callback_is_an_error() {
    let mut w = Worker::new(|_| None);
    let err = w.send_bytes(b"x").unwrap_err();
    assert!(err.message.contains("$recv"), "{err}");
}

#[test]
fn throw_in_recv_callback_names_the_script_and_the_message() {
    let (mut w, lines) = printing_worker();
    w.load(
        "recv_throws.js",
        "$recv(m => {\n  throw new Error('bad message ' + m.byteLength);\n});",
    )
    .unwrap();
    let err = w.send_bytes(&[1, 2]).unwrap_err();
    assert_eq!(err.message, "Error: bad message 2");
    assert_eq!(err.script.as_deref(), Some("recv_throws.js"));
    assert!(err.to_string().contains("recv_throws.js:2"), "{err}");
    // Still usable.
    w.load("ok.js", "$print('alive')").unwrap();
    assert_eq!(*lines.borrow(), ["alive"]);
}

#[test]
fn send_inside_recv_is_reentrant() {
    let (mut w, lines) = {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let mut w = Worker::new(|b| Some(vec![b[0] * 2]));
        let l = lines.clone();
        w.set_print_handler(move |s| l.borrow_mut().push(s.to_string()));
        (w, lines)
    };
    w.load(
        "reenter.js",
        "$recv(m => { const r = $send(m); $print(new Uint8Array(r)[0]); });",
    )
    .unwrap();
    w.send_bytes(&[21]).unwrap();
    assert_eq!(*lines.borrow(), ["42"]);
}

#[test]
fn two_workers_keep_separate_callbacks() {
    let a_got = Rc::new(RefCell::new(Vec::new()));
    let b_got = Rc::new(RefCell::new(Vec::new()));
    let (a_sink, b_sink) = (a_got.clone(), b_got.clone());
    let mut a = Worker::new(move |m| {
        a_sink.borrow_mut().push(m.to_vec());
        None
    });
    let mut b = Worker::new(move |m| {
        b_sink.borrow_mut().push(m.to_vec());
        None
    });
    a.load(
        "a.js",
        "$send(new Uint8Array([1])); $recv(m => $send(new Uint8Array([10])))",
    )
    .unwrap();
    b.load(
        "b.js",
        "$send(new Uint8Array([2])); $recv(m => $send(new Uint8Array([20])))",
    )
    .unwrap();
    b.send_bytes(b"x").unwrap();
    a.send_bytes(b"x").unwrap();
    drop(a); // workers may be dropped in any order
    b.send_bytes(b"y").unwrap();
    assert_eq!(*a_got.borrow(), vec![vec![1], vec![10]]);
    assert_eq!(*b_got.borrow(), vec![vec![2], vec![20], vec![20]]);
}

#[test]
fn a_request_from_js_is_answered_through_recv() {
    // The script asks; the host answers later with send_bytes (v8worker2's "request" pattern).
    let requests = Rc::new(RefCell::new(Vec::new()));
    let sink = requests.clone();
    let (mut w, lines) = {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let mut w = Worker::new(move |m| {
            sink.borrow_mut()
                .push(String::from_utf8(m.to_vec()).unwrap());
            None
        });
        let l = lines.clone();
        w.set_print_handler(move |s| l.borrow_mut().push(s.to_string()));
        (w, lines)
    };
    w.load(
        "req.js",
        "$recv(m => $print('answer', String.fromCharCode(...new Uint8Array(m))));\n\
         $send(new Uint8Array([112, 105, 110, 103]));",
    )
    .unwrap();
    assert_eq!(*requests.borrow(), ["ping"]);
    w.send_bytes(b"pong").unwrap();
    assert_eq!(*lines.borrow(), ["answer pong"]);
}

/// A module resolver that finds nothing.
fn no_imports(specifier: &str, _referrer: &str) -> Result<(String, String), String> {
    Err(format!("no module {specifier}"))
}

#[test]
fn modules_resolve_through_the_hosts_resolver() {
    let (mut w, lines) = printing_worker();
    let mut asked = Vec::new();
    w.load_module(
        "main.js",
        "import { add } from './math.js';\nimport { twice } from './twice.js';\n$print(add(1, 2), twice(4));",
        |spec, referrer| {
            asked.push(format!("{spec} from {referrer}"));
            match spec {
                "./math.js" => Ok(("math.js".into(), "export const add = (a, b) => a + b;".into())),
                "./twice.js" => Ok((
                    "twice.js".into(),
                    "import { add } from './math.js';\nexport const twice = x => add(x, x);".into(),
                )),
                _ => Err(format!("no module {spec}")),
            }
        },
    )
    .unwrap();
    assert_eq!(*lines.borrow(), ["3 8"]);
    assert!(
        asked.contains(&"./math.js from main.js".to_string()),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"./math.js from twice.js".to_string()),
        "{asked:?}"
    );
}

#[test]
fn a_missing_module_dependency_names_the_specifier() {
    let mut w = Worker::new(|_| None);
    let err = w
        .load_module(
            "main.js",
            "import './present.js';\nimport { x } from './missing.js';",
            |spec, _| {
                (spec == "./present.js")
                    .then(|| ("present.js".to_string(), String::new()))
                    .ok_or(format!("Cannot resolve module \"{spec}\""))
            },
        )
        .unwrap_err();
    assert!(err.message.contains("./missing.js"), "{err}");
    assert_eq!(err.location().as_deref(), Some("main.js:2:19"));
}

#[test]
fn module_top_level_await_and_errors() {
    let (mut w, lines) = printing_worker();
    w.load_module(
        "tla.js",
        "const v = await Promise.resolve(5);\n$print('v', v);",
        no_imports,
    )
    .unwrap();
    assert_eq!(w.poll_modules(), Ok(false));
    assert_eq!(*lines.borrow(), ["v 5"]);

    let err = w
        .load_module(
            "bad.js",
            "await null;\nthrow new TypeError('late');",
            no_imports,
        )
        .unwrap_err();
    assert_eq!(err.message, "TypeError: late");
    assert_eq!(err.location().as_deref(), Some("bad.js:2:7"));
    assert!(
        w.take_unhandled_rejection().is_none(),
        "reported once, as the module's error"
    );

    // A module waiting on the host stays pending until the host answers.
    w.load_module(
        "wait.js",
        "await new Promise(r => $recv(r));\n$print('woke');",
        no_imports,
    )
    .unwrap();
    assert_eq!(w.poll_modules(), Ok(true));
    w.send_bytes(b"go").unwrap();
    assert_eq!(w.poll_modules(), Ok(false));
    assert_eq!(lines.borrow().last().map(String::as_str), Some("woke"));
}

#[test]
fn unhandled_rejections_are_reported() {
    let mut w = Worker::new(|_| None);
    w.load(
        "rej.js",
        "Promise.reject(new RangeError('nobody caught me')); Promise.reject(1).catch(() => {});",
    )
    .unwrap();
    let err = w
        .take_unhandled_rejection()
        .expect("one unhandled rejection");
    assert_eq!(
        err.message,
        "Uncaught (in promise) RangeError: nobody caught me"
    );
    assert!(w.take_unhandled_rejection().is_none());
}

#[test]
fn terminate_from_another_thread_stops_an_endless_loop_and_the_worker_lives_on() {
    // The script tells the host (through $send) that it is about to loop; only then does the
    // other thread terminate it, so the termination really interrupts running code.
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut w = Worker::new(move |_| {
        let _ = ready_tx.send(());
        None
    });
    let handle = w.terminate_handle();
    let killer = std::thread::spawn(move || {
        ready_rx.recv().unwrap();
        handle.terminate();
    });
    let err = w
        .load("loop.js", "$send(new Uint8Array(1)); while (true) {}")
        .unwrap_err();
    killer.join().unwrap();
    assert_eq!(err.termination, Some(TerminationReason::Terminated));
    assert!(err.to_string().contains("terminated"), "{err}");
    // Reusable afterwards.
    let out = Rc::new(RefCell::new(Vec::new()));
    let sink = out.clone();
    w.set_print_handler(move |s| sink.borrow_mut().push(s.to_string()));
    w.load("after.js", "$print('still here')").unwrap();
    assert_eq!(*out.borrow(), ["still here"]);
}

#[test]
fn the_global_object_is_the_builtins_plus_three_functions() {
    let (mut w, lines) = printing_worker();
    w.load(
        "globals.js",
        "$print(Object.getOwnPropertyNames(globalThis).join(','))",
    )
    .unwrap();
    let mut ours: Vec<String> = lines.borrow()[0].split(',').map(str::to_string).collect();
    let mut bare = v8box::worker::bare_context_globals();
    bare.extend(["$send", "$recv", "$print"].map(String::from));
    ours.sort();
    bare.sort();
    assert_eq!(ours, bare);
}

#[test]
fn intl_has_icu_data() {
    // The library's embedded ICU 78 data: numbers, dates, case, collation, segmentation and
    // plural rules in several locales (a data file missing any of them gives other answers).
    assert_eq!(
        eval_print(
            "$print(new Intl.NumberFormat('de-DE').format(1234.5),\n\
             new Intl.DateTimeFormat('ja-JP', {dateStyle: 'full', timeZone: 'UTC'}).format(0),\n\
             'ß'.toLocaleUpperCase('de'), new Intl.Collator('sv').compare('ä', 'z'),\n\
             [...new Intl.Segmenter('th', {granularity: 'word'}).segment('สวัสดีครับ')].length,\n\
             new Intl.PluralRules('ar').select(3))"
        ),
        ["1.234,5 1970年1月1日木曜日 SS 1 2 few"]
    );
}

#[test]
fn many_workers_on_many_threads() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut workers: Vec<Worker> =
                    (0..3).map(|_| Worker::new(|m| Some(m.to_vec()))).collect();
                let mut sums = Vec::new();
                for (i, w) in workers.iter_mut().enumerate() {
                    let got = Rc::new(RefCell::new(String::new()));
                    let g = got.clone();
                    w.set_print_handler(move |s| *g.borrow_mut() = s.to_string());
                    w.load(
                        "t.js",
                        &format!(
                            "$print(new Uint8Array($send(new Uint8Array([{t}, {i}]))).join('+'))"
                        ),
                    )
                    .unwrap();
                    sums.push(got.borrow().clone());
                }
                sums
            })
        })
        .collect();
    for (t, th) in threads.into_iter().enumerate() {
        assert_eq!(
            th.join().unwrap(),
            (0..3).map(|i| format!("{t}+{i}")).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_recv_callback_that_throws_on_every_message_leaves_the_worker_usable() {
    let (mut w, lines) = printing_worker();
    w.load(
        "thrower.js",
        "let seen = 0;\n$recv(() => { seen++; throw new Error('no ' + seen); });",
    )
    .unwrap();
    for i in 1..=3 {
        let err = w.send_bytes(&[i]).unwrap_err();
        assert_eq!(err.message, format!("Error: no {i}"));
    }
    w.load("count.js", "$print(seen)").unwrap();
    assert_eq!(*lines.borrow(), ["3"]);
}

#[test]
fn heap_limit_stops_a_worker_without_aborting_the_process() {
    let mut w = Worker::with_options(
        v8box::WorkerOptions {
            max_heap_bytes: Some(32 << 20),
            ..Default::default()
        },
        |_| None,
    );
    let err = w
        .load(
            "hog.js",
            "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        )
        .unwrap_err();
    assert_eq!(err.termination, Some(TerminationReason::HeapLimit));
    let err = w
        .load(
            "buffers.js",
            "const b = []; while (true) b.push(new ArrayBuffer(1 << 20));",
        )
        .unwrap_err();
    assert_eq!(err.termination, Some(TerminationReason::HeapLimit));
    // Other workers in the process carry on.
    let (mut other, lines) = printing_worker();
    other.load("fine.js", "$print('fine')").unwrap();
    assert_eq!(*lines.borrow(), ["fine"]);
}

#[test]
fn send_hands_the_host_the_buffer_in_place_without_a_copy() {
    // Two $send calls with views on one buffer see the same memory: the host gets a slice of
    // the ArrayBuffer's backing store, not a copy.
    let seen = Rc::new(RefCell::new(Vec::<usize>::new()));
    let sink = seen.clone();
    let mut w = Worker::new(move |b| {
        sink.borrow_mut().push(b.as_ptr() as usize);
        None
    });
    w.load(
        "inplace.js",
        "const buf = new ArrayBuffer(1 << 20);\n\
         $send(buf);\n\
         $send(new Uint8Array(buf, 4096, 16));",
    )
    .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[1] - seen[0], 4096);
}

#[test]
fn a_renewed_worker_starts_clean_and_refuses_other_settings() {
    let options = WorkerOptions::default();
    let mut w = Worker::with_options(options.clone(), |_| None);
    let lib = |_: &str, _: &str| Ok(("lib.js".to_string(), "export const v = 1;".to_string()));
    w.load_module("lib.js", "export const v = 1;", lib).unwrap();
    w.load("a.js", "globalThis.x = 1; $recv(() => {});")
        .unwrap();

    let stricter = WorkerOptions {
        deny_code_generation: true,
        ..WorkerOptions::default()
    };
    assert!(
        !w.renew(&stricter, |_| None),
        "other settings need a new isolate"
    );
    w.load("b.js", "if (x !== 1) throw new Error('changed')")
        .unwrap();

    let replies = Rc::new(RefCell::new(0));
    let r = replies.clone();
    assert!(w.renew(&options, move |_| {
        *r.borrow_mut() += 1;
        Some(vec![7])
    }));
    w.load(
        "c.js",
        "if (typeof x !== 'undefined') throw new Error('x survived')",
    )
    .unwrap();
    // The old `$recv` callback is gone, and `$send` reaches the new host function.
    assert!(w.send_bytes(b"hi").is_err());
    w.load(
        "d.js",
        "if (new Uint8Array($send(new Uint8Array(1)))[0] !== 7) throw 0",
    )
    .unwrap();
    assert_eq!(*replies.borrow(), 1);
    // A module of the same name is compiled anew, from its new source.
    let (tx, rx) = mpsc::channel();
    w.set_print_handler(move |l| tx.send(l.to_string()).unwrap());
    w.load_module("lib.js", "$print('new lib')", no_imports)
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), "new lib");
}

#[test]
fn an_isolate_hosts_at_most_a_thousand_runs() {
    let options = WorkerOptions::default();
    let mut w = Worker::with_options(options.clone(), |_| None);
    // The first run is the worker's own; 999 renewals make 1,000.
    for run in 2..=v8box::worker::MAX_RUNS_PER_ISOLATE {
        assert!(w.renew(&options, |_| None), "run {run}");
    }
    assert!(!w.renew(&options, |_| None), "run 1001 needs a new isolate");
    w.load("still.js", "1").unwrap();
}

#[test]
fn this_build_carries_the_sys_prelude_snapshot_made_by_build_rs() {
    // Without it, every `v8box run` would load the prelude from source: a native build always
    // has one, only a cross-compiled v8box builds it on first use. (Every `v8box::run` in these
    // tests starts from it, so they show that it works.)
    assert!(v8box::runtime::has_built_in_snapshot());
    assert!(v8box::runtime::prelude_snapshot().is_some());
}

#[test]
fn a_snapshot_built_at_run_time_restores_the_natives_and_the_recv_callback() {
    let snapshot = v8box::worker::build_snapshot(
        "prelude.js",
        "globalThis.greeting = 'from the prelude';\n\
         $recv(msg => $print('recv', new Uint8Array(msg)));",
    )
    .unwrap();
    let options = WorkerOptions {
        snapshot: Some(snapshot),
        ..Default::default()
    };
    let mut w = Worker::with_options(options, |b| Some(b.iter().rev().copied().collect()));
    let lines = Rc::new(RefCell::new(Vec::new()));
    let sink = lines.clone();
    w.set_print_handler(move |l| sink.borrow_mut().push(l.to_string()));
    // Each native is itself again (the snapshot stores them by their place in a table).
    w.load(
        "main.js",
        "$print(greeting, $send.name, $recv.name, $print.name);\n\
         $print(new Uint8Array($send(new Uint8Array([1, 2]))));",
    )
    .unwrap();
    w.send_bytes(&[7]).unwrap();
    assert_eq!(
        *lines.borrow(),
        [
            "from the prelude $send $recv $print",
            "Uint8Array(2) [2, 1]",
            "recv Uint8Array(1) [7]"
        ]
    );
}

#[test]
fn a_prelude_that_throws_or_reaches_for_the_host_makes_no_snapshot() {
    let Err(e) = v8box::worker::build_snapshot("bad.js", "\n\nnull.x") else {
        panic!("a throwing prelude made a snapshot");
    };
    assert!(e.contains("bad.js:3") && e.contains("TypeError"), "{e}");
    let Err(e) = v8box::worker::build_snapshot("host.js", "$send(new Uint8Array(1))") else {
        panic!("a prelude that calls $send made a snapshot");
    };
    assert!(e.contains("$send") && e.contains("snapshot"), "{e}");
}

#[test]
fn a_host_runs_v8s_tasks_until_background_work_is_done() {
    let (mut w, lines) = printing_worker();
    let script = format!(
        "WebAssembly.instantiate({})\n\
           .then(({{ instance }}) => $print('sum', instance.exports.add(2, 3)));",
        crate::WASM_ADD
    );
    w.load("wasm.js", &script).unwrap();
    // The compile runs on V8's thread; its settlement waits for the host to run V8's tasks.
    assert!(lines.borrow().is_empty());
    let mut ran = false;
    while w.has_background_work() {
        ran |= w.run_platform_tasks().unwrap();
        std::thread::yield_now();
    }
    ran |= w.run_platform_tasks().unwrap();
    assert!(ran);
    assert_eq!(*lines.borrow(), ["sum 5"]);
    assert!(!w.run_platform_tasks().unwrap(), "nothing is left to run");
}

#[test]
fn unhandled_errors_are_reported_in_the_order_they_happened() {
    let (mut w, lines) = printing_worker();
    w.load(
        "order.js",
        "const registry = new FinalizationRegistry(() => {\n\
           $print('finalized'); throw new Error('second');\n\
         });\n\
         (() => registry.register({}, 1))();\n\
         Promise.reject(new Error('first'));",
    )
    .unwrap();
    // Garbage until the registered object is collected and its clean-up has run (and thrown).
    w.load("keep.js", "globalThis.keep = [];").unwrap();
    for _ in 0..1000 {
        if !lines.borrow().is_empty() {
            break;
        }
        w.load("junk.js", crate::KEPT_GARBAGE).unwrap();
        w.run_platform_tasks().unwrap();
    }
    assert_eq!(*lines.borrow(), ["finalized"]);
    let first = w.take_unhandled_rejection().expect("the rejection");
    assert_eq!(first.message, "Uncaught (in promise) Error: first");
    let second = w
        .take_unhandled_rejection()
        .expect("the finalizer's exception");
    assert_eq!(second.message, "Uncaught Error: second");
    assert!(w.take_unhandled_rejection().is_none());
}

#[test]
fn a_stopped_run_leaves_its_clean_ups_unrun_and_renew_starts_afresh() {
    let lines = Rc::new(RefCell::new(Vec::<String>::new()));
    let mut w = Worker::new(|_| None);
    let stop = w.terminate_handle();
    let sink = lines.clone();
    // The host stops the run from inside the first clean-up callback.
    w.set_print_handler(move |l| {
        sink.borrow_mut().push(l.to_string());
        stop.terminate();
    });
    w.load(
        "registry.js",
        "let n = 0;\n\
         const registry = new FinalizationRegistry(() => {\n\
           n++; if (n === 1) $print('clean-up', n); for (;;) {}\n\
         });\n\
         (() => { for (let i = 0; i < 100; i++) registry.register({ i }, i); })();",
    )
    .unwrap();
    w.load("keep.js", "globalThis.keep = [];").unwrap();
    let mut stopped = None;
    for _ in 0..1000 {
        w.load("junk.js", crate::KEPT_GARBAGE).unwrap();
        if let Err(e) = w.run_platform_tasks() {
            stopped = Some(e);
            break;
        }
    }
    // V8 queued the other 99 clean-ups again; none ran after the stop.
    let stopped = stopped.expect("the first clean-up ran and was stopped");
    assert_eq!(stopped.termination, Some(TerminationReason::Terminated));
    assert_eq!(*lines.borrow(), ["clean-up 1"]);
    // Whether renew keeps the isolate or makes a new one, the next run never runs them, even
    // as its own garbage brings full collections: each would loop for ever, and a guard stops
    // the run after 5 s (then the test fails).
    assert!(w.renew(&WorkerOptions::default(), |_| None));
    let (done, finished) = crossbeam_channel::bounded::<()>(0);
    let stop = w.terminate_handle();
    let guard = std::thread::spawn(move || {
        let waited = finished.recv_timeout(std::time::Duration::from_secs(5));
        if waited == Err(crossbeam_channel::RecvTimeoutError::Timeout) {
            stop.terminate();
        }
    });
    w.load("keep.js", "globalThis.keep = [];").unwrap();
    for _ in 0..30 {
        w.load("junk.js", crate::KEPT_GARBAGE)
            .expect("no clean-up of the old run runs in the next");
        w.run_platform_tasks()
            .expect("no clean-up of the old run runs in the next");
    }
    drop(done);
    guard.join().unwrap();
}

#[test]
fn workers_from_every_kind_of_snapshot_live_side_by_side() {
    // All isolates of a process share one read-only heap, set up by the first: a worker from
    // V8's own snapshot, then one from the prelude's, then one from a snapshot made at run
    // time, each alive while the next is made (the second aborted the process when the
    // prelude's snapshot had moved objects into that heap).
    let mut bare = Worker::new(|_| None);
    bare.load("bare.js", "1").unwrap();
    let prelude = WorkerOptions {
        snapshot: v8box::runtime::prelude_snapshot(),
        ..Default::default()
    };
    let mut with_prelude = Worker::with_options(prelude, |_| None);
    with_prelude
        .load("sys.js", "if (typeof sys !== 'object') throw 0")
        .unwrap();
    let built = v8box::worker::build_snapshot("mine.js", "globalThis.mine = 42;").unwrap();
    let own = WorkerOptions {
        snapshot: Some(built),
        ..Default::default()
    };
    let mut from_own = Worker::with_options(own, |_| None);
    from_own
        .load("mine.js", "if (mine !== 42) throw 0")
        .unwrap();
    let mut bare_again = Worker::new(|_| None);
    bare_again.load("bare.js", "1").unwrap();
}

#[test]
fn send_writes_a_reply_that_fits_into_the_reply_buffer_and_returns_its_length() {
    let (mut w, lines) = {
        let lines = Rc::new(RefCell::new(Vec::new()));
        let mut w = Worker::new(|b| Some(b.iter().rev().copied().collect()));
        let sink = lines.clone();
        w.set_print_handler(move |l| sink.borrow_mut().push(l.to_string()));
        (w, lines)
    };
    w.load(
        "reply_buffer.js",
        "const buf = new ArrayBuffer(4);\n\
         const n = $send(new Uint8Array([1, 2, 3]), buf);\n\
         $print(n, Array.from(new Uint8Array(buf, 0, n)).join(','));\n\
         // too short: a new ArrayBuffer, the buffer untouched\n\
         const big = $send(new Uint8Array([9, 8, 7, 6, 5]), buf);\n\
         $print(big instanceof ArrayBuffer, Array.from(new Uint8Array(big)).join(','), new Uint8Array(buf)[0]);\n\
         // no buffer, or not an ArrayBuffer: as before\n\
         $print($send(new Uint8Array([4])) instanceof ArrayBuffer, $send(new Uint8Array([4]), 'x') instanceof ArrayBuffer);",
    )
    .unwrap();
    assert_eq!(
        *lines.borrow(),
        vec!["3 3,2,1", "true 5,6,7,8,9 3", "true true"]
    );
}

/// Freed ArrayBuffer memory is reused (src/worker/reusing_allocator.cc): a new ArrayBuffer must
/// still read as zeros, whatever the freed buffers held, and a host message reusing a larger
/// block must hold exactly its own bytes.
#[test]
fn large_messages_copied_past_the_cache_arrive_byte_for_byte() {
    // From 64 KiB up a message is copied with streaming stores, 64 bytes at a time, and its
    // last bytes apart: every length's every byte must arrive, in order.
    let (mut w, lines) = printing_worker();
    w.load(
        "sums.js",
        r#"
        $recv((m) => {
            const u = new Uint8Array(m);
            let sum = 0, order = 0;
            for (let i = 0; i < u.length; i++) {
                sum = (sum + u[i]) % 1000000007;
                if (u[i] !== ((i * 7 + (i >> 9)) & 255)) order++;
            }
            $print(u.length, sum, order);
        });
        "#,
    )
    .unwrap();
    let lengths = [
        65535,
        65536,
        65537,
        65536 + 63,
        100_001,
        1 << 20,
        (1 << 20) + 17,
    ];
    let mut expected = Vec::new();
    for &n in &lengths {
        let msg: Vec<u8> = (0..n).map(|i| ((i * 7 + (i >> 9)) & 255) as u8).collect();
        let sum = msg
            .iter()
            .fold(0u64, |s, &b| (s + b as u64) % 1_000_000_007);
        expected.push(format!("{n} {sum} 0"));
        w.send_bytes(&msg).unwrap();
    }
    assert_eq!(*lines.borrow(), expected);
}

#[test]
fn reused_array_buffer_memory_reads_as_zeros_and_messages_hold_only_their_bytes() {
    let (mut w, lines) = printing_worker();
    let (_, reused_before) = v8box::worker::array_buffer_reuse_counts();
    w.load(
        "reuse.js",
        r#"
        let bad = 0, got = 0;
        $recv((m) => {
            const u = new Uint8Array(m);
            got++;
            if (u.length !== 40000 || u[0] !== 0x11 || u[39999] !== 0x11) bad++;
        });
        // Far more than V8's 64 MiB of external memory between collections: most of these are
        // freed while the script runs, and their blocks handed out again.
        for (let i = 0; i < 4000; i++) new Uint8Array(new ArrayBuffer(60000)).fill(0xab);
        let dirty = 0;
        for (let i = 0; i < 4000; i++) {
            const a = new Uint8Array(new ArrayBuffer(50000));
            if (a[0] !== 0 || a[25000] !== 0 || a[49999] !== 0) dirty++;
            a.fill(0xcd);
        }
        $print('dirty', dirty);
        "#,
    )
    .unwrap();
    for _ in 0..3000 {
        w.send_bytes(&[0x11; 40000]).unwrap();
    }
    w.load("end.js", "$print('messages', got, 'bad', bad)")
        .unwrap();
    let (_, reused_after) = v8box::worker::array_buffer_reuse_counts();
    assert_eq!(
        *lines.borrow(),
        ["dirty 0", "messages 3000 bad 0"],
        "a reused block leaked its old bytes"
    );
    assert!(
        reused_after > reused_before,
        "no freed block was reused: the test did not exercise reuse"
    );
}
