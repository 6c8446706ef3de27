//! `v8box run` basics: modules, classic scripts, errors, usage.

use crate::*;

#[test]
fn run_executes_a_module_with_relative_imports_and_top_level_await() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.js", "import { greet } from './lib/greet.js';\nconst n = await Promise.resolve(3);\n$print(greet('v8box'), n);");
    write(dir.path(), "lib/greet.js", "import { suffix } from '../suffix.js';\nexport const greet = (who) => 'hello ' + who + suffix;");
    write(dir.path(), "suffix.js", "export const suffix = '!';");
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "hello v8box! 3\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn run_script_runs_a_classic_script() {
    let dir = tempfile::tempdir().unwrap();
    // `this` at the top level of a classic script is the global object; in a module it is undefined.
    write(dir.path(), "classic.js", "$print(this === globalThis)");
    let out = v8box(dir.path(), &["run", "--script", "classic.js"]);
    assert_eq!(text(&out.stdout), "true\n");
    let out = v8box(dir.path(), &["run", "classic.js"]);
    assert_eq!(text(&out.stdout), "false\n");
}

#[test]
fn an_uncaught_error_prints_location_message_and_stack_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "fail.js",
        "function inner() {\n  throw new Error('it broke');\n}\ninner();\n",
    );
    let out = v8box(dir.path(), &["run", "fail.js"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("fail.js:2:9"), "{err}");
    assert!(err.contains("Error: it broke"), "{err}");
    assert!(err.contains("at inner (fail.js:2:9)"), "{err}");
}

#[test]
fn a_syntax_error_exits_1_naming_file_and_token() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "syntax.js", "let a = ;\n");
    let out = v8box(dir.path(), &["run", "syntax.js"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("syntax.js:1:9") && err.contains("Unexpected token ';'"),
        "{err}"
    );
}

#[test]
fn a_missing_import_exits_1_naming_the_specifier() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "main.js", "import './nowhere.js';\n");
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("./nowhere.js"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_file_or_a_bad_flag_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = v8box(dir.path(), &["run", "absent.js"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("absent.js"), "{err}");

    let out = v8box(dir.path(), &["run", "--no-such-flag", "x.js"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn runs_start_from_one_built_in_snapshot_yet_draw_their_own_random_numbers() {
    // Every `v8box run` starts from the startup snapshot made when v8box was built: it must not
    // carry one run's randomness into the next.
    let dir = tempfile::tempdir().unwrap();
    let script = "$print(Math.random(), Math.random())";
    let draws: Vec<String> = (0..2).map(|_| run_js(dir.path(), &[], script).1).collect();
    assert!(
        !draws[0].is_empty() && !draws[0].contains("NaN"),
        "{draws:?}"
    );
    assert_ne!(draws[0], draws[1], "two runs drew the same numbers");
}

/// A WebAssembly module exporting `add(a, b)`.
const WASM_ADD: &str = "new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11])";

#[test]
fn webassembly_compiled_in_the_background_settles_its_promises() {
    let dir = tempfile::tempdir().unwrap();
    // V8 compiles on another thread and queues the promise's settlement for the script's
    // thread: the run must wait for it, and run it.
    let script = format!(
        "const bytes = {WASM_ADD};\n\
         const {{ instance }} = await WebAssembly.instantiate(bytes);\n\
         $print('await', instance.exports.add(40, 2));\n\
         const module = await WebAssembly.compile(bytes);\n\
         $print('exports', WebAssembly.Module.exports(module).map((e) => e.name).join());\n\
         try {{ await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9])); }}\n\
         catch (e) {{ $print('bad module', e.constructor.name); }}\n\
         // Nothing awaits this one: the module has finished when it settles.\n\
         WebAssembly.instantiate(bytes).then(({{ instance }}) => $print('then', instance.exports.add(1, 2)));"
    );
    write(dir.path(), "main.js", &script);
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "await 42\nexports add\nbad module CompileError\nthen 3\n"
    );
    assert_eq!(out.status.code(), Some(0));

    // With code generation denied, the asynchronous compile is refused like the synchronous one.
    write(dir.path(), "noeval.toml", "[js]\neval = false\n");
    let out = v8box(dir.path(), &["run", "--policy=noeval.toml", "main.js"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("CompileError"),
        "{}",
        text(&out.stderr)
    );
}

/// A module that registers 100 objects with a FinalizationRegistry whose clean-up callback
/// runs `callback` (after counting itself in `n`; `held` is its held value), then makes garbage,
/// some of it kept a few rounds, until the first clean-up has run, then runs `then`. Kept
/// garbage fills the old generation, whose full collection is what clears a registry's cells
/// (young garbage alone is collected without one).
fn finalization_script(callback: &str, then: &str) -> String {
    format!(
        "let n = 0;\n\
         const registry = new FinalizationRegistry((held) => {{ n++; {callback} }});\n\
         (() => {{ for (let i = 0; i < 100; i++) registry.register({{ i }}, i); }})();\n\
         const keep = [];\n\
         for (let round = 0; round < 1000 && n === 0; round++) {{\n\
           const junk = []; for (let i = 0; i < 50000; i++) junk.push({{ a: i, b: [i] }});\n\
           keep.push(junk); if (keep.length > 4) keep.shift();\n\
           await sys.sleep(0);\n\
         }}\n\
         {then}"
    )
}

#[test]
fn finalization_callbacks_run_and_one_that_throws_ends_the_run_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = |callback: &str| finalization_script(callback, "$print('finalized', n);");
    write(dir.path(), "main.js", &script(""));
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "finalized 100\n");

    write(
        dir.path(),
        "main.js",
        &script("if (held === 50) throw new Error('finalizer failed');"),
    );
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Uncaught Error: finalizer failed"), "{err}");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn a_stopped_run_runs_no_more_finalization_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    // V8 stops a registry's clean-up at a termination and queues the rest as a new task; the
    // rest must not run once the run has stopped (each would loop for ever).
    let script = |first: &str| {
        finalization_script(
            &format!("$print('clean-up', n); {first} for (;;) {{}}"),
            "$print('never collected');",
        )
    };
    // Stopped by its time limit inside the first clean-up.
    write(dir.path(), "main.js", &script(""));
    let out = v8box(dir.path(), &["run", "--timeout", "2000", "main.js"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "clean-up 1\n");
    // Ended by the first clean-up itself.
    write(dir.path(), "main.js", &script("if (n === 1) sys.exit(7);"));
    let out = v8box(dir.path(), &["run", "main.js"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{} {}",
        text(&out.stderr),
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout), "clean-up 1\n");
}

/// A script that prints its arguments, then tries to read `data.txt` (granted only by a flag
/// before it) and to sleep 200 ms (which a `--timeout 5` would stop).
const ARGS_AND_READ: &str = "$print(JSON.stringify(sys.args));\n\
    try { $print('read', await sys.readTextFile('data.txt')); }\n\
    catch (e) { $print('refused', e.code); }";

#[test]
fn flags_after_the_script_are_the_scripts_and_grant_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tool.js", ARGS_AND_READ);
    write(dir.path(), "data.txt", "secret");
    let after: &[&str] = &[
        "--allow-read",
        "--allow-read=.",
        "--timeout",
        "5",
        "--",
        "-h",
        "--help",
        "--version",
        "--policy",
        "p.toml",
        "--script",
    ];
    let mut args = vec!["run", "tool.js"];
    args.extend_from_slice(after);
    let out = v8box(dir.path(), &args);
    let stdout = text(&out.stdout);
    let expected = serde_json::to_string(after).unwrap();
    assert_eq!(stdout, format!("{expected}\nrefused PERMISSION_DENIED\n"));
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    for flag in ["--allow-read", "--timeout", "--policy", "--script"] {
        let warning = format!(
            "warning: \"{flag}\" after the script tool.js is passed to the script, not to v8box; \
             put v8box flags before the script"
        );
        assert_eq!(stderr.matches(&warning).count(), 1, "{flag}: {stderr}");
    }
    assert!(!stderr.contains("\"--help\""), "{stderr}");
}

#[test]
fn the_first_argument_after_the_script_is_the_scripts_too() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tool.js", ARGS_AND_READ);
    write(dir.path(), "data.txt", "secret");
    for flag in ["--allow-read", "-h", "--help", "--version", "--timeout"] {
        let out = v8box(dir.path(), &["run", "tool.js", flag]);
        assert_eq!(
            text(&out.stdout),
            format!("[\"{flag}\"]\nrefused PERMISSION_DENIED\n"),
            "{flag}: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{flag}");
    }
}

#[test]
fn flags_before_the_script_and_a_double_dash_still_work() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tool.js", ARGS_AND_READ);
    write(dir.path(), "data.txt", "secret");
    let out = v8box(
        dir.path(),
        &[
            "run",
            "--timeout",
            "5000",
            "--allow-read=.",
            "--",
            "tool.js",
            "--",
            "x",
        ],
    );
    assert_eq!(text(&out.stdout), "[\"--\",\"x\"]\nread secret\n");
    assert_eq!(text(&out.stderr), "");
    let out = v8box(dir.path(), &["run", "--", "tool.js", "--allow-read"]);
    assert_eq!(
        text(&out.stdout),
        "[\"--allow-read\"]\nrefused PERMISSION_DENIED\n"
    );
    // A limit given after the script limits nothing: the run sleeps 500 ms and ends well.
    write(
        dir.path(),
        "sleepy.js",
        "await sys.sleep(500); $print('woke', sys.args.length);",
    );
    let out = v8box(dir.path(), &["run", "sleepy.js", "--timeout", "5"]);
    assert_eq!(text(&out.stdout), "woke 2\n");
    assert_eq!(out.status.code(), Some(0));
    let out = v8box(dir.path(), &["run", "--timeout", "5", "sleepy.js"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn run_dash_reads_the_script_from_stdin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.js"), "export const who = 'stdin';\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args(["run", "-", "an-arg"])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"import { who } from './lib.js';\nconsole.log('from', who, sys.args.join());\nthrow new Error('at the end');\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin an-arg\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: stdin:3:7: Error: at the end"),
        "{err}"
    );
}
