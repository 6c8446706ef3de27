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
