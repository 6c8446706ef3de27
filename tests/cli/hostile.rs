//! Hostile scripts and bad input: limits, faults, escape attempts, code generation.

use std::io::Write;
use std::net::TcpListener;

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn last_record(dir: &std::path::Path, log: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(log)).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn runaway_scripts_are_stopped_by_the_timeout() {
    let dir = tmp();
    let scripts = [
        "while (true) {}",
        "(function f() { Promise.resolve().then(f); })();",
        "(function again() { setTimeout(again, 0); })();",
        "setInterval(() => {}, 1);",
        "for (;;) { try { while (true) {} } catch (e) {} finally { continue; } }",
    ];
    for (i, script) in scripts.iter().enumerate() {
        let log = format!("t{i}.log");
        let (code, _, err) = run_js(
            dir.path(),
            &["--timeout=300", &format!("--audit={log}")],
            script,
        );
        assert_eq!(code, 3, "{script}: {err}");
        assert!(err.contains("timed out"), "{err}");
        let end = last_record(dir.path(), &log);
        assert_eq!(
            (end["op"].as_str(), end["outcome"].as_str()),
            (Some("run.end"), Some("timeout")),
            "{script}"
        );
    }
}

#[test]
fn allocation_without_end_is_stopped_at_the_heap_limit() {
    let dir = tmp();
    let scripts = [
        "const a = []; while (true) a.push({ n: a.length, s: 'x' + a.length });",
        "let s = 'x'; const keep = []; while (true) { s = s + s.slice(0, 1000) + Math.random(); keep.push(s); }",
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i, i, i]);",
        "const b = []; while (true) b.push(new ArrayBuffer(1 << 20));",
        "const b = []; while (true) b.push(new Uint8Array(4 << 20));",
    ];
    for (i, script) in scripts.iter().enumerate() {
        let log = format!("h{i}.log");
        let (code, _, err) = run_js(
            dir.path(),
            &[
                "--max-heap=48",
                "--timeout=60000",
                &format!("--audit={log}"),
            ],
            script,
        );
        assert_eq!(code, 4, "{script}: {err}");
        assert!(err.contains("heap limit"), "{err}");
        let end = last_record(dir.path(), &log);
        assert_eq!(end["outcome"], "heap limit", "{script}");
    }
}

#[test]
fn deep_recursion_is_a_catchable_range_error() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        "function down(n) { return down(n + 1) + 1; }\n\
         try { down(0); } catch (e) { $print(e instanceof RangeError, e.message); }\n\
         $print('still usable', [1, 2, 3].map(x => x * 2).join());",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "true Maximum call stack size exceeded\nstill usable 2,4,6\n"
    );
}

#[test]
fn a_rejection_with_a_non_error_value_is_reported() {
    let dir = tmp();
    let (code, _, err) = run_js(dir.path(), &[], "Promise.reject(42);");
    assert_eq!(code, 1);
    assert!(err.contains("Uncaught (in promise) 42"), "{err}");
    let (code, _, err) = run_js(dir.path(), &[], "throw { plain: 'object' };");
    assert_eq!(code, 1);
    assert!(err.contains("{ plain: 'object' }"), "{err}");
}

#[test]
fn a_throwing_timer_callback_ends_the_run_with_its_error() {
    let dir = tmp();
    let (code, _, err) = run_js(
        dir.path(),
        &[],
        "setTimeout(() => { throw new Error('in a timer'); }, 1);",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Error: in a timer") && err.contains("main.js:1"),
        "{err}"
    );
}

#[test]
fn a_failing_disk_and_a_closed_socket_map_to_specific_errors() {
    let dir = tmp();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Accept one connection and close it without answering.
        if let Ok((stream, _)) = listener.accept() {
            drop(stream);
        }
    });
    let script = format!(
        "try {{ await sys.writeFile('/dev/full', 'x'.repeat(100000)); }} catch (e) {{ $print(e.code, e.message); }}\n\
         try {{ await sys.fetch('http://127.0.0.1:{port}/'); }} catch (e) {{ $print(e.code); }}"
    );
    let net = format!("--allow-net=127.0.0.1:{port}");
    let (code, out, err) = run_js(dir.path(), &["--allow-write=/dev/full", &net], &script);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("IO writeFile \"/dev/full\": No space left on device"),
        "{out}"
    );
    assert_eq!(lines[1], "NETWORK");
}

#[test]
fn hard_links_out_of_an_allowed_folder_are_refused() {
    let dir = tmp();
    write(dir.path(), "outside/secret.txt", "secret");
    std::fs::create_dir_all(dir.path().join("box")).unwrap();
    std::fs::hard_link(
        dir.path().join("outside/secret.txt"),
        dir.path().join("box/link.txt"),
    )
    .unwrap();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=box", "--allow-write=box"],
        "for (const f of [() => sys.readTextFile('box/link.txt'), () => sys.writeFile('box/link.txt', 'overwritten')]) {\n\
           try { $print('ALLOWED', await f()); } catch (e) { $print(e.code); }\n\
         }",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "PERMISSION_DENIED\nPERMISSION_DENIED\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("outside/secret.txt")).unwrap(),
        "secret"
    );
}

#[test]
fn a_symlink_swapped_in_during_calls_never_leaks_the_outside() {
    let dir = tmp();
    write(dir.path(), "outside/secret.txt", "SECRET");
    write(dir.path(), "box/plain.txt", "plain");
    let target = dir.path().join("box/target.txt");
    write(dir.path(), "box/target.txt", "plain");
    // Another thread keeps swapping box/target.txt between a plain file and a symlink out.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let outside = dir.path().join("outside/secret.txt");
        let plain = dir.path().join("box/plain.txt");
        let tmp_link = dir.path().join("box/tmp-link");
        let tmp_file = dir.path().join("box/tmp-file");
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if i % 2 == 0 {
                    let _ = std::os::unix::fs::symlink(&outside, &tmp_link);
                    let _ = std::fs::rename(&tmp_link, &target);
                } else {
                    let _ = std::fs::copy(&plain, &tmp_file);
                    let _ = std::fs::rename(&tmp_file, &target);
                }
                i += 1;
            }
        })
    };
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=box"],
        "let plain = 0, denied = 0, other = 0;\n\
         for (let i = 0; i < 2000; i++) {\n\
           try { const t = await sys.readTextFile('box/target.txt'); if (t === 'plain') plain++; else $print('LEAK', t); }\n\
           catch (e) { if (e.code === 'PERMISSION_DENIED') denied++; else other++; }\n\
         }\n\
         $print('done', plain + denied + other);",
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("LEAK") && !out.contains("SECRET"), "{out}");
    assert_eq!(out, "done 2000\n");
}

#[test]
fn code_generation_follows_the_js_eval_switch() {
    let dir = tmp();
    // A minimal valid WebAssembly module: the magic number and version.
    let script = "for (const [name, f] of [\n\
                    ['eval', () => eval('1 + 1')],\n\
                    ['Function', () => new Function('return 2')()],\n\
                    ['wasm', () => new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))],\n\
                  ]) {\n\
                    try { f(); $print(name, 'ok'); } catch (e) { $print(name, e.constructor.name); }\n\
                  }";
    let (code, out, err) = run_js(dir.path(), &[], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "eval ok\nFunction ok\nwasm ok\n");
    write(dir.path(), "noeval.toml", "[js]\neval = false\n");
    let (code, out, err) = run_js(dir.path(), &["--policy=noeval.toml"], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "eval EvalError\nFunction EvalError\nwasm CompileError\n"
    );
}

#[test]
fn atomics_wait_cannot_block_the_host() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--timeout=60000"],
        "const sab = new SharedArrayBuffer(16); const ia = new Int32Array(sab);\n\
         try { Atomics.wait(ia, 0, 0); $print('returned'); } catch (e) { $print(e.constructor.name); }",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "TypeError\n");
}

#[test]
fn a_name_that_resolves_to_loopback_is_refused_when_only_the_name_is_allowed() {
    // Any name in /etc/hosts (other than localhost) that points at 127.0.0.1 will do.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let name = hosts
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("127.0.0.1"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .find(|n| *n != "localhost" && !n.starts_with('#'));
    let Some(name) = name else {
        eprintln!("no loopback alias in /etc/hosts; the resolver's unit test covers the rule");
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        }
    });
    let dir = tmp();
    let refused = format!("try {{ await sys.fetch('http://{name}:{port}/'); $print('REACHED'); }} catch (e) {{ $print(e.code, e.message.includes('loopback')); }}");
    let (code, out, err) = run_js(dir.path(), &[&format!("--allow-net={name}")], &refused);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "PERMISSION_DENIED true\n");
    // Every host allowed means every public host: loopback still needs a grant of its own
    // (this run reached the server before the network policy refused every non-public
    // address to a grant of all hosts).
    let (code, out, err) = run_js(dir.path(), &["--allow-net"], &refused);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "PERMISSION_DENIED true\n");
    // With the address granted too, the same name reaches the server.
    let (code, out, err) = run_js(
        dir.path(),
        &[&format!("--allow-net={name}:{port},127.0.0.1:{port}")],
        &format!(
            "const r = await sys.fetch('http://{name}:{port}/'); $print(r.status, await r.text());"
        ),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "200 hi\n");
}
