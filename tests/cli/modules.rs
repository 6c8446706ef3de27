//! Modules as npm packages ship them: bare specifiers through node_modules (`exports` with
//! conditions, `module`/`main`, `imports`), CommonJS through `import` and `require`, UMD,
//! JSON modules, dynamic `import()`, import maps — each file a resolution touches beneath a
//! module root or a read grant, and recorded. Every package here is written by the test.

use std::path::Path;

use super::{records, run_js, text, v8box, write};

fn ops_of(log: &Path, op: &str) -> Vec<serde_json::Value> {
    records(log).into_iter().filter(|r| r["op"] == op).collect()
}

/// An ES module package with conditional `exports`, a subpath pattern and `imports`.
fn esm_package(dir: &Path) {
    write(
        dir,
        "node_modules/esm-pkg/package.json",
        r##"{"name": "esm-pkg", "type": "module",
            "exports": {
              ".": {"types": "./index.d.ts", "node": "./dist/node.js", "import": "./dist/index.js", "default": "./dist/index.js"},
              "./feature": "./dist/feature.js",
              "./locale/*": "./dist/locale/*.js"
            },
            "imports": {"#internal": "./dist/internal.js", "#dep": "dep-pkg"}}"##,
    );
    write(dir, "node_modules/esm-pkg/dist/index.js", "import i from '#internal';\nimport d from '#dep';\nexport const hello = (n) => `hello ${n} (${i}, ${d})`;\n");
    write(
        dir,
        "node_modules/esm-pkg/dist/internal.js",
        "export default 'internal';\n",
    );
    write(
        dir,
        "node_modules/esm-pkg/dist/node.js",
        "throw new Error('the node build must not load');\n",
    );
    write(
        dir,
        "node_modules/esm-pkg/dist/feature.js",
        "export const feature = 'feature';\n",
    );
    write(
        dir,
        "node_modules/esm-pkg/dist/locale/fr.js",
        "export default 'bonjour';\n",
    );
    write(
        dir,
        "node_modules/esm-pkg/dist/secret.js",
        "export default 'not exported';\n",
    );
    write(
        dir,
        "node_modules/dep-pkg/package.json",
        r##"{"name": "dep-pkg", "module": "./esm.js", "main": "./cjs.js"}"##,
    );
    write(
        dir,
        "node_modules/dep-pkg/esm.js",
        "export default 'dep via module';\n",
    );
    write(
        dir,
        "node_modules/dep-pkg/cjs.js",
        "module.exports = 'dep via main';\n",
    );
}

#[test]
fn bare_specifiers_resolve_through_node_modules_exports_conditions_patterns_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    esm_package(dir.path());
    write(
        dir.path(),
        "node_modules/@scope/tool/package.json",
        r##"{"name": "@scope/tool", "exports": "./main.mjs"}"##,
    );
    write(
        dir.path(),
        "node_modules/@scope/tool/main.mjs",
        "export const tool = 'scoped';\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.jsonl"],
        "import { hello } from 'esm-pkg';\nimport { feature } from 'esm-pkg/feature';\nimport fr from 'esm-pkg/locale/fr';\nimport { tool } from '@scope/tool';\nconsole.log(hello('you'), feature, fr, tool);\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "hello you (internal, dep via module) feature bonjour scoped"
    );
    // Each package.json read is recorded, as module.resolve, with its hash.
    let log = dir.path().join("audit.jsonl");
    let resolved: Vec<String> = ops_of(&log, "module.resolve")
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_string())
        .collect();
    assert!(
        resolved
            .iter()
            .any(|r| r.ends_with("node_modules/esm-pkg/package.json")),
        "{resolved:?}"
    );
    assert!(ops_of(&log, "module.resolve")
        .iter()
        .all(|r| r["sha256"].is_string()));
    let loads: Vec<String> = ops_of(&log, "module.load")
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_string())
        .collect();
    assert!(
        loads
            .iter()
            .any(|r| r.ends_with("node_modules/esm-pkg/dist/index.js")),
        "{loads:?}"
    );
    assert!(
        !loads.iter().any(|r| r.ends_with("node.js")),
        "the node condition is not matched: {loads:?}"
    );

    // A subpath the package does not export is refused, naming it and the package.json.
    let (code, _, err) = run_js(dir.path(), &[], "import s from 'esm-pkg/dist/secret.js';\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("\"./dist/secret.js\" is not exported"),
        "{err}"
    );
    assert!(err.contains("esm-pkg/package.json"), "{err}");
    // A package that is not there names where it was looked for.
    let (code, _, err) = run_js(dir.path(), &[], "import x from 'nope';\n");
    assert_eq!(code, 1);
    assert!(err.contains("package \"nope\" not found in"), "{err}");
}

#[test]
fn a_package_outside_the_module_root_is_not_looked_at_and_the_error_says_how_to_allow_it() {
    let dir = tempfile::tempdir().unwrap();
    esm_package(dir.path());
    write(
        dir.path(),
        "app/main.js",
        "import { hello } from 'esm-pkg';\nconsole.log(hello('x'));\n",
    );
    let out = v8box(dir.path(), &["run", "--audit=audit.jsonl", "app/main.js"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("package \"esm-pkg\" not found"), "{err}");
    assert!(
        err.contains("outside the module roots and read grants"),
        "{err}"
    );
    assert!(err.contains("--module-root="), "{err}");
    // Nothing of the package was read.
    let log = dir.path().join("audit.jsonl");
    assert!(ops_of(&log, "module.resolve").is_empty());
    // With the folder as a module root it loads.
    let root = format!("--module-root={}", dir.path().display());
    let out = v8box(dir.path(), &["run", &root, "app/main.js"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "hello x (internal, dep via module)"
    );
}

#[test]
fn commonjs_loads_through_import_and_require_with_named_exports_json_and_lazy_builtins() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "node_modules/cjs-pkg/package.json",
        r##"{"name": "cjs-pkg", "main": "./lib/index"}"##,
    );
    write(
        dir.path(),
        "node_modules/cjs-pkg/lib/index.js",
        "'use strict';\nconst helper = require('./helper');\nconst data = require('../data.json');\nconst sub = require('./sub');\nlet fsError;\ntry { require('fs'); } catch (e) { fsError = e.message; }\nObject.defineProperty(exports, '__esModule', { value: true });\nexports.twice = (x) => helper.mul(x, 2);\nexports.version = data.version;\nexports.sub = sub.name;\nexports.thisIsExports = this === module.exports;\nexports.fsError = fsError;\nexports.file = __filename.endsWith('lib/index.js') && __dirname.endsWith('lib');\n",
    );
    write(
        dir.path(),
        "node_modules/cjs-pkg/lib/helper.js",
        "module.exports = { mul: function (a, b) { return a * b; } };\n",
    );
    write(
        dir.path(),
        "node_modules/cjs-pkg/lib/sub/index.js",
        "exports.name = 'sub index';\n",
    );
    write(
        dir.path(),
        "node_modules/cjs-pkg/data.json",
        r##"{"version": "1.2.3"}"##,
    );
    // Sloppy mode, as Node runs CommonJS: `with` and an undeclared assignment work.
    write(dir.path(), "local.cjs", "with ({ a: 1 }) { leaked = a + 1; }\nmodule.exports = { leaked, cycle: require('./cycle-a.cjs') };\n");
    write(
        dir.path(),
        "cycle-a.cjs",
        "exports.early = 'a';\nconst b = require('./cycle-b.cjs');\nexports.fromB = b.seen;\n",
    );
    write(
        dir.path(),
        "cycle-b.cjs",
        "const a = require('./cycle-a.cjs');\nexports.seen = a.early;\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        "import pkg, { twice, version, sub, thisIsExports, fsError, file, __esModule } from 'cjs-pkg';\nimport local from './local.cjs';\nconsole.log(twice(21), version, sub, thisIsExports, file, __esModule, pkg.twice === twice);\nconsole.log(local.leaked, local.cycle.fromB);\nconsole.log(fsError);\n",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "42 1.2.3 sub index true true true true");
    assert_eq!(lines[1], "2 a");
    assert!(
        lines[2].contains("'fs'") && lines[2].contains("no Node API"),
        "{out}"
    );
}

#[test]
fn require_of_a_node_builtin_fails_naming_it_and_saying_there_is_no_node_api() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "uses-path.cjs",
        "const path = require('node:path');\nmodule.exports = path.join('a', 'b');\n",
    );
    let (code, _, err) = run_js(dir.path(), &[], "import x from './uses-path.cjs';\n");
    assert_eq!(code, 1);
    assert!(err.contains("Cannot find module 'node:path'"), "{err}");
    assert!(err.contains("no Node API"), "{err}");
    let (code, _, err) = run_js(dir.path(), &[], "import fs from 'fs';\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("\"fs\" is Node's built-in module") && err.contains("no Node API"),
        "{err}"
    );
}

#[test]
fn umd_bundles_take_their_commonjs_branch_and_esm_namespaces_can_be_required() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "node_modules/umd-lib/umd.js",
        "(function (root, factory) {\n  if (typeof define === 'function' && define.amd) define([], factory);\n  else if (typeof module === 'object' && module.exports) module.exports = factory();\n  else root.umdLib = factory();\n}(typeof self !== 'undefined' ? self : this, function () {\n  return { compile: function (t) { return function (ctx) { return t.replace('{{name}}', ctx.name); }; } };\n}));\n",
    );
    write(
        dir.path(),
        "node_modules/umd-lib/package.json",
        r##"{"name": "umd-lib", "main": "umd.js"}"##,
    );
    write(
        dir.path(),
        "esm-helper.mjs",
        "export const shout = (s) => s.toUpperCase();\n",
    );
    write(dir.path(), "user.cjs", "const { shout } = require('./esm-helper.mjs');\nconst umd = require('umd-lib');\nmodule.exports = shout(umd.compile('hi {{name}}')({ name: 'you' }));\n");
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        "import umd from 'umd-lib';\nimport said from './user.cjs';\nconsole.log(umd.compile('hello {{name}}')({ name: 'world' }), said);\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "hello world HI YOU");
}

#[test]
fn json_modules_need_the_json_attribute() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "data.json",
        r##"{"list": [1, 2, 3], "__proto__": {"own": true}}"##,
    );
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        "import data from './data.json' with { type: 'json' };\nconsole.log(data.list.length, Object.hasOwn(data, '__proto__'));\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "3 true");
    let (code, _, err) = run_js(dir.path(), &[], "import data from './data.json';\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("is JSON: import it with { type: \"json\" }"),
        "{err}"
    );
    let (code, _, err) = run_js(
        dir.path(),
        &[],
        "import data from './data.json' with { type: 'css' };\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("unsupported import attribute type \"css\""),
        "{err}"
    );
}

#[test]
fn dynamic_import_resolves_like_static_imports_at_any_time_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "lib/a.js", "export const a = 'A';\n");
    write(
        dir.path(),
        "lib/tla.js",
        "await new Promise((r) => setTimeout(r, 1));\nexport const late = 'after await';\n",
    );
    write(dir.path(), "lib/bad.js", "export const = ;\n");
    write(dir.path(), "conf.json", r##"{"k": "v"}"##);
    write(
        dir.path(),
        "node_modules/dyn/package.json",
        r##"{"exports": {"import": "./m.js"}, "type": "module"}"##,
    );
    write(
        dir.path(),
        "node_modules/dyn/m.js",
        "export default 'from a package';\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.jsonl"],
        "const { a } = await import('./lib/a.js');\nconst again = await import('./lib/a.js');\nconsole.log(a, again.a === a);\nconst conf = await import('./conf.json', { with: { type: 'json' } });\nconsole.log(conf.default.k);\nsetTimeout(async () => {\n  const m = await import('dyn');\n  const t = await import('./lib/tla.js');\n  console.log(m.default, t.late);\n  try { await import('./lib/bad.js'); } catch (e) { console.log(e.name); }\n  try { await import('./lib/missing.js'); } catch (e) { console.log('missing:', e.message.includes('lib/missing.js')); }\n}, 1);\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "A true\nv\nfrom a package after await\nSyntaxError\nmissing: true"
    );
    let loads: Vec<String> = ops_of(&dir.path().join("audit.jsonl"), "module.load")
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["resource"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        loads.iter().any(|l| l.ends_with("lib/a.js ok")),
        "{loads:?}"
    );
    assert!(
        loads
            .iter()
            .any(|l| l.ends_with("node_modules/dyn/m.js ok")),
        "{loads:?}"
    );
    assert!(
        loads
            .iter()
            .any(|l| l.ends_with("lib/missing.js NOT_FOUND")),
        "{loads:?}"
    );
}

#[test]
fn a_denied_dynamic_import_names_the_path_and_the_flag_and_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "secret/s.js",
        "export const s = 'SECRET-CONTENT';\n",
    );
    write(
        dir.path(),
        "app/main.js",
        "try { await import('../secret/s.js'); } catch (e) { console.log(e.message); }\n",
    );
    let out = v8box(dir.path(), &["run", "app/main.js"]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(said.contains("secret/s.js\": permission denied"), "{said}");
    assert!(said.contains("--allow-read="), "{said}");
    assert!(!said.contains("SECRET-CONTENT"), "{said}");
}

#[test]
fn an_import_map_maps_bare_names_and_prefixes_from_the_flag_and_the_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "vendor/lodash.js",
        "export default { name: 'vendored lodash' };\n",
    );
    write(
        dir.path(),
        "vendor/old.js",
        "export default { name: 'old lodash' };\n",
    );
    write(
        dir.path(),
        "src/lib/util.js",
        "export const util = 'util';\n",
    );
    write(
        dir.path(),
        "legacy/x.js",
        "import l from 'lodash';\nexport default l.name;\n",
    );
    write(
        dir.path(),
        "import_map.json",
        r##"{"imports": {"lodash": "./vendor/lodash.js", "lib/": "./src/lib/"}, "scopes": {"./legacy/": {"lodash": "./vendor/old.js"}}}"##,
    );
    let script = "import l from 'lodash';\nimport { util } from 'lib/util.js';\nimport legacy from './legacy/x.js';\nconsole.log(l.name, util, legacy);\n";
    let (code, out, err) = run_js(dir.path(), &["--import-map=import_map.json"], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "vendored lodash util old lodash");
    write(
        dir.path(),
        "policy.toml",
        "[modules]\nimport_map = \"import_map.json\"\n",
    );
    let (code, out, err) = run_js(dir.path(), &["--policy=policy.toml"], script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "vendored lodash util old lodash");
    // Without the map the bare name is looked for in node_modules.
    let (code, _, err) = run_js(dir.path(), &[], script);
    assert_eq!(code, 1);
    assert!(err.contains("package \"lodash\" not found"), "{err}");
}

#[test]
fn esm_imports_need_full_paths_while_require_finds_extensions_and_index_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "lib/x.js", "export const x = 1;\n");
    write(dir.path(), "lib/index.js", "export const i = 1;\n");
    let (code, _, err) = run_js(dir.path(), &[], "import { x } from './lib/x';\n");
    assert_eq!(code, 1);
    assert!(err.contains("lib/x"), "{err}");
    let (code, _, err) = run_js(dir.path(), &[], "import { i } from './lib';\n");
    assert_eq!(code, 1, "a folder is not a module for import: {err}");
    write(dir.path(), "c/index.js", "module.exports = 'index';\n");
    write(dir.path(), "c/x.js", "module.exports = 'x';\n");
    write(
        dir.path(),
        "user.cjs",
        "module.exports = require('./c') + ' ' + require('./c/x');\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        "import u from './user.cjs';\nconsole.log(u);\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "index x");
}
