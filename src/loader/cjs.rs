//! CommonJS through ES modules. A CommonJS file `F` is three modules, all made here:
//!
//! - its body (`v8box:cjs-body:F`, named `F`): the worker compiles the file as a sloppy-mode
//!   function of `exports, require, module, __filename, __dirname` (as Node's wrapper does)
//!   and exports it as the default; nothing runs yet;
//! - its record (`v8box:cjs:F`): imports the body and, for each `require("...")` with a string
//!   literal in the file, what it resolves to (the record of a CommonJS file, an ES module's
//!   namespace, a JSON module), and exports `record`, whose `load()` runs the body once (Node's
//!   cache; a cycle gets the partial `module.exports`). A `require` that cannot be resolved, or
//!   names a Node built-in, throws its reason when it is called, not before (an optional
//!   dependency in a `try` works);
//! - its facade (what `import` of `F` gets): `load()`s it and exports `module.exports` as the
//!   default and, as named exports, the names the lexer found (and those of a module it
//!   re-exports).

use std::fmt::Write as _;
use std::path::Path;

use super::{Format, ModuleLoader, CJS_BODY, CJS_RECORD};
use crate::worker::{ImportedModule, ModuleKind};

fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The record's part that runs the body: module objects, `require`, the cache.
const RUNTIME: &str = r#"
function __v8box_record(filename, dirname, body, deps) {
  const module = { id: filename, filename, path: dirname, exports: {}, loaded: false, children: [], paths: [] };
  let state = 0;
  const own = (k) => Object.prototype.hasOwnProperty.call(deps, k);
  function fail(spec, why) {
    const e = new Error("Cannot find module '" + spec + "' required from " + filename + ": " + why);
    e.code = "MODULE_NOT_FOUND";
    return e;
  }
  function require(spec) {
    if (typeof spec !== "string") throw new TypeError("require: the module name must be a string");
    if (!own(spec)) throw fail(spec, "v8box loads the require() calls with a string literal, found when the module was loaded");
    const d = deps[spec];
    if (d.error) throw fail(spec, d.error);
    return d.get().load();
  }
  require.resolve = function (spec) {
    if (!own(spec) || deps[spec].error) throw fail(spec, own(spec) ? deps[spec].error : "not a require() with a string literal");
    return deps[spec].path;
  };
  require.cache = Object.create(null);
  module.require = require;
  return {
    module,
    load() {
      if (state === 0) {
        state = 1;
        try {
          body.call(module.exports, module.exports, require, module, filename, dirname);
        } catch (e) {
          state = 0;
          throw e;
        }
        module.loaded = true;
        state = 2;
      }
      return module.exports;
    },
  };
}
"#;

impl ModuleLoader {
    /// The body module of the CommonJS file `abs`.
    pub(super) fn cjs_body(&mut self, abs: &Path) -> Result<ImportedModule, String> {
        let source = self.read(abs, "module.load")?;
        // A `#!` line is a comment to Node; not to a function body.
        let source = match source.strip_prefix("#!") {
            Some(rest) => format!("//{rest}"),
            None => source.to_string(),
        };
        Ok(ImportedModule {
            name: abs.display().to_string(),
            source,
            kind: ModuleKind::CommonJs,
        })
    }

    /// The record module of the CommonJS file `abs`.
    pub(super) fn cjs_record(&mut self, abs: &Path) -> Result<ImportedModule, String> {
        let analysis = self.analysis(abs)?;
        let file = abs.display().to_string();
        let dir = abs.parent().unwrap_or(Path::new("/")).display().to_string();
        let mut out = String::new();
        let mut deps = String::from("const __deps = {\n");
        let _ = writeln!(
            out,
            "import __body from {};",
            lit(&format!("{CJS_BODY}{file}"))
        );
        for (i, spec) in analysis.requires.iter().enumerate() {
            let resolved = self
                .resolve_require(spec, abs)
                .and_then(|(path, format)| self.read(&path, "module.load").map(|_| (path, format)));
            match resolved {
                Ok((path, format)) => {
                    let p = path.display().to_string();
                    match format {
                        Format::CommonJs => {
                            let _ = writeln!(
                                out,
                                "import {{ record as __r{i} }} from {};",
                                lit(&format!("{CJS_RECORD}{p}"))
                            );
                            let _ = writeln!(
                                deps,
                                "  {}: {{ path: {}, get: () => __r{i} }},",
                                lit(spec),
                                lit(&p)
                            );
                        }
                        Format::Esm => {
                            let _ = writeln!(out, "import * as __r{i} from {};", lit(&p));
                            let _ = writeln!(
                                deps,
                                "  {}: {{ path: {}, get: () => ({{ load: () => __r{i} }}) }},",
                                lit(spec),
                                lit(&p)
                            );
                        }
                        Format::Json => {
                            let _ = writeln!(
                                out,
                                "import __r{i} from {} with {{ type: \"json\" }};",
                                lit(&p)
                            );
                            let _ = writeln!(
                                deps,
                                "  {}: {{ path: {}, get: () => ({{ load: () => __r{i} }}) }},",
                                lit(spec),
                                lit(&p)
                            );
                        }
                    }
                }
                Err(why) => {
                    let _ = writeln!(deps, "  {}: {{ error: {} }},", lit(spec), lit(&why));
                }
            }
        }
        deps.push_str("};\n");
        out.push_str(&deps);
        out.push_str(RUNTIME);
        let _ = writeln!(
            out,
            "export const record = __v8box_record({}, {}, __body, __deps);",
            lit(&file),
            lit(&dir)
        );
        Ok(ImportedModule {
            name: format!("{CJS_RECORD}{file}"),
            source: out,
            kind: ModuleKind::Esm,
        })
    }

    /// The names the CommonJS file `abs` exports, with those of the modules it re-exports.
    fn cjs_names(&mut self, abs: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(a) = self.analysis(abs) else { return };
        for n in &a.exports {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        if depth >= 8 {
            return;
        }
        for spec in &a.reexports {
            if let Ok((path, Format::CommonJs)) = self.resolve_require(spec, abs) {
                self.cjs_names(&path, depth + 1, out);
            }
        }
    }

    /// The ES module that an `import` of the CommonJS file `abs` gets.
    pub(super) fn cjs_facade(&mut self, abs: &Path) -> Result<String, String> {
        let file = abs.display().to_string();
        let mut names = Vec::new();
        self.cjs_names(abs, 0, &mut names);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "import {{ record as __record }} from {};",
            lit(&format!("{CJS_RECORD}{file}"))
        );
        out.push_str("const __m = __record.load();\n");
        out.push_str("const __o = __m !== null && (typeof __m === \"object\" || typeof __m === \"function\") ? __m : {};\n");
        out.push_str("export default __m;\nexport { __m as \"module.exports\" };\n");
        for (i, n) in names.iter().enumerate() {
            if n == "default" || n == "module.exports" || n.contains('\0') {
                continue;
            }
            let _ = writeln!(
                out,
                "const __e{i} = __o[{}];\nexport {{ __e{i} as {} }};",
                lit(n),
                lit(n)
            );
        }
        Ok(out)
    }
}
