//! How an uncaught error or unhandled rejection is reported: the source line with a caret, the
//! `cause` chain, non-Error values as console.log shows them, and the user's own frames for
//! calls answered later on the I/O pool.

use crate::*;

fn fails(flags: &[&str], script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_js(dir.path(), flags, script);
    assert_eq!(code, 1, "{err}");
    err
}

#[test]
fn a_thrown_error_shows_its_source_line_with_a_caret_and_its_cause_chain() {
    let err = fails(
        &[],
        "function f() {\n  throw new Error('boom', { cause: new TypeError('inner', { cause: 'root' }) });\n}\nf();\n",
    );
    let expected = [
        "error: main.js:2:9: Error: boom",
        "      throw new Error('boom', { cause: new TypeError('inner', { cause: 'root' }) });",
        "            ^",
        "    at f (main.js:2:9)",
        "    at main.js:4:1",
        "Caused by: TypeError: inner",
        "    at f (main.js:2:36)",
        "    at main.js:4:1",
        "Caused by: root",
        "",
    ]
    .join("\n");
    assert_eq!(err, expected);
}

#[test]
fn an_unhandled_rejection_shows_its_source_line_and_a_cycle_of_causes_ends() {
    let err = fails(
        &[],
        "const e = new RangeError('rejected');\ne.cause = e;\nPromise.reject(e);\n",
    );
    assert!(
        err.starts_with(
            "error: main.js:1:11: Uncaught (in promise) RangeError: rejected\n    \
             const e = new RangeError('rejected');\n              ^\n"
        ),
        "{err}"
    );
    assert!(err.ends_with("Caused by: [Circular]\n"), "{err}");
}

#[test]
fn a_thrown_value_that_is_not_an_error_is_shown_as_console_log_would() {
    let err = fails(
        &[],
        "throw { code: 42, list: [1, 'two'], nested: { deep: { deeper: {} } } };",
    );
    assert!(
        err.contains("{ code: 42, list: [1, 'two'], nested: { deep: [Object] } }"),
        "{err}"
    );
    assert!(!err.contains("#<Object>"), "{err}");
    // A getter of the script's is not run to describe the value.
    let err = fails(&[], "throw { get secret() { $print('ran'); return 1; } };");
    assert!(err.contains("{ secret: [Getter] }"), "{err}");
}

#[test]
fn calls_answered_on_the_io_pool_report_the_callers_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // readDir always goes to the I/O pool; so does a read over 64 KiB and fetch.
    write(dir.path(), "big.bin", &"x".repeat(70_000));
    for (call, line) in [
        ("sys.readDir('missing-dir')", 3),
        ("sys.readFile('big.bin').then(() => sys.readDir('nope'))", 3),
        ("fetch('http://127.0.0.1:9/')", 3),
    ] {
        let script =
            format!("// first\nasync function go() {{\n  return await {call};\n}}\nawait go();\n");
        let (code, _, err) = run_js(
            dir.path(),
            &["--allow-read=.", "--allow-net=127.0.0.1:9"],
            &script,
        );
        assert_eq!(code, 1, "{err}");
        let first = err.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("error: main.js:{line}:")),
            "{call}: {err}"
        );
        assert!(err.contains("main.js:5:"), "{call}: {err}");
        assert!(!err.contains("v8box:sys.js"), "{call}: {err}");
    }
}
