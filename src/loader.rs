//! Loading a module is a system call. A specifier resolves as docs/MODULES.md says: through
//! the run's import map, then as a path (`./x.js`, `../y.js` against the importing file's
//! folder, absolute paths, `file://` URLs), a package import (`#internal`, the nearest
//! package.json's `imports`) or a bare name found in `node_modules` the way Node's resolver
//! finds it (`exports` with the conditions of `IMPORT_CONDITIONS` / `REQUIRE_CONDITIONS`, else
//! `module`/`main`). Every file a resolution touches must be beneath a module root or a read
//! grant: the resolver looks only there (a look is a `stat` beneath the grant, not recorded),
//! reads each package.json it needs as an audited `module.resolve` and the module itself as an
//! audited `module.load` with its SHA-256, both opened beneath their grant with cap-std, never
//! waiting. A CommonJS file becomes an ES module facade over a wrapper (see `cjs`); JSON is
//! loaded with `with { type: "json" }` (or by `require`). A failed load names the specifier,
//! the path and what would allow it, never the file's content.

mod cjs;
pub mod import_map;
pub(crate) mod lexer;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::audit::{sha256_hex, CallInfo, Parts};
use crate::dispatch::Shared;
use crate::ops::fs::{read_module, stat};
use crate::policy::{Decision, Policy};
use crate::proto::reply;
use crate::worker::{ImportRequest, ImportedModule, ModuleKind};

pub use import_map::ImportMap;

/// Where a module graph's imports come from.
pub enum Imports {
    /// Files, each read as an audited system call beneath a module root (`--module-root`,
    /// `[modules] root`, `Permission::Module`) or a read grant of the run's policy.
    Files,
    /// The host's own resolver: maps an import specifier and the importing module's name to
    /// the imported module's `(name, source)`, `None` if there is none. Each answer is
    /// recorded as `module.load` (rule `host resolver`) with the source's SHA-256.
    Host(Box<dyn FnMut(&str, &str) -> Option<(String, String)> + Send>),
}

/// The longest path a module may have (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// The rule recorded for a module a host's resolver supplied.
pub const HOST_RESOLVER_RULE: &str = "host resolver";

/// The `exports`/`imports` conditions an `import` matches, besides `default` (which always
/// matches). Not `node`: v8box has no Node API, so a package's Node build would not run;
/// not `browser`: there is no DOM.
pub const IMPORT_CONDITIONS: &[&str] = &["v8box", "import", "module"];
/// The conditions a `require` matches, besides `default`.
pub const REQUIRE_CONDITIONS: &[&str] = &["v8box", "require"];

/// Node's built-in modules: `require`/`import` of one fails saying that there is no Node API.
const NODE_BUILTINS: &[&str] = &[
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// Prefixes of the specifiers the loader's own generated modules use (never import-mapped).
const CJS_RECORD: &str = "v8box:cjs:";
const CJS_BODY: &str = "v8box:cjs-body:";
const CJS_FACADE: &str = "v8box:cjs-facade:";

/// How a resolved file is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Esm,
    CommonJs,
    Json,
}

/// What a look at a path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    File,
    Dir,
    Missing,
    /// Outside every module root and read grant: not looked at.
    Denied,
}

/// The fields of a package.json the resolver reads.
#[derive(Debug, Default)]
struct Package {
    dir: PathBuf,
    kind: Option<String>,
    main: Option<String>,
    module: Option<String>,
    exports: Option<serde_json::Value>,
    imports: Option<serde_json::Value>,
}

/// Whether `spec` names one of Node's built-in modules.
fn node_builtin(spec: &str) -> bool {
    if spec.starts_with("node:") {
        return true;
    }
    let name = spec.split('/').next().unwrap_or(spec);
    NODE_BUILTINS.contains(&name)
}

fn no_node_api(spec: &str) -> String {
    let name = spec.strip_prefix("node:").unwrap_or(spec);
    format!(
        "\"{spec}\" is Node's built-in module \"{name}\": v8box has no Node API (use sys.* for files, network and environment)"
    )
}

/// Loads one run's imports: each file read once, each read decided and recorded.
pub(crate) struct ModuleLoader {
    shared: Arc<Shared>,
    cwd: PathBuf,
    imports: Imports,
    import_map: Option<ImportMap>,
    /// Modules already made, by absolute path and kind of load: what was answered.
    loaded: HashMap<(String, u8), ImportedModule>,
    /// File contents read, by absolute path (each read audited once).
    files: HashMap<PathBuf, Result<Arc<str>, String>>,
    /// Package.json files by folder (`None`: none there, or not to be looked at).
    packages: HashMap<PathBuf, Option<Arc<Package>>>,
    /// The lexer's findings by file.
    analyses: HashMap<PathBuf, Arc<lexer::Analysis>>,
}

impl ModuleLoader {
    pub(crate) fn new(shared: Arc<Shared>, imports: Imports) -> ModuleLoader {
        let import_map = shared.policy.import_map.clone();
        ModuleLoader {
            shared,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            imports,
            import_map,
            loaded: HashMap::new(),
            files: HashMap::new(),
            packages: HashMap::new(),
            analyses: HashMap::new(),
        }
    }

    /// Makes an import of the main module (by any spelling of its path) find the main module
    /// itself, not a second copy of it.
    pub(crate) fn knows_main(&mut self, name: &str, source: &str) {
        if matches!(self.imports, Imports::Files) {
            let abs = normalize(&self.cwd.join(name)).display().to_string();
            let module = ImportedModule {
                name: name.to_string(),
                source: source.to_string(),
                kind: ModuleKind::Esm,
            };
            self.loaded.insert((abs, 0), module);
        }
    }

    /// The module that `request` stands for, or why it cannot be loaded.
    pub(crate) fn load(&mut self, request: &ImportRequest) -> Result<ImportedModule, String> {
        let specifier = request.specifier;
        let referrer = request.referrer;
        let failed =
            |why: &str| format!("module.load \"{specifier}\" imported from \"{referrer}\": {why}");
        if let Some(why) = self.shared.audit.failure() {
            return Err(failed(&format!("refused: the audit log failed ({why})")));
        }
        if let Imports::Host(resolve) = &mut self.imports {
            if request.json {
                return Err(failed(
                    "the host's resolver gives ES modules only (no JSON modules)",
                ));
            }
            let answer = resolve(specifier, referrer);
            let (resource, found) = match &answer {
                Some((name, source)) => (name.clone(), Some(source.as_bytes())),
                None => (specifier.to_string(), None),
            };
            let info = CallInfo {
                op: "module.load",
                resource,
                allowed: true,
                rule: crate::policy::Rule::fixed(HOST_RESOLVER_RULE),
                bytes_in: 0,
                sha256: found.map(sha256_hex),
                resolved: None,
                parts: Parts::None,
            };
            let n = found.map_or(0, |s| s.len() as u64);
            self.shared.audit.call(
                info,
                if found.is_some() { "ok" } else { "NOT_FOUND" },
                n,
                None,
            );
            return answer
                .map(|(name, source)| ImportedModule {
                    name,
                    source,
                    kind: ModuleKind::Esm,
                })
                .ok_or_else(|| failed("the host's resolver has no such module"));
        }
        // The loader's own modules for a CommonJS file.
        if let Some(abs) = specifier.strip_prefix(CJS_RECORD) {
            return self.cjs_record(Path::new(abs)).map_err(|e| failed(&e));
        }
        if let Some(abs) = specifier.strip_prefix(CJS_BODY) {
            return self.cjs_body(Path::new(abs)).map_err(|e| failed(&e));
        }
        let internal = referrer.starts_with("v8box:");
        let referrer_abs = normalize(&self.cwd.join(referrer));
        // The import map first (not for the loader's own imports).
        let mapped = match (&self.import_map, internal) {
            (Some(map), false) => {
                let key = match resolve_path(specifier, referrer) {
                    Some(p) => normalize(&self.cwd.join(p)).display().to_string(),
                    None => specifier.to_string(),
                };
                map.resolve(&key, &referrer_abs.display().to_string())
            }
            _ => None,
        };
        if let Some(target) = mapped {
            if !target.starts_with('/') {
                self.refuse_invalid(&target);
                return Err(failed(&format!(
                    "the import map maps it to \"{target}\", which v8box cannot load (not a path)"
                )));
            }
            let abs = PathBuf::from(&target);
            return self
                .load_file(&abs, &target, request.json)
                .map_err(|e| failed(&e));
        }
        if let Some(path) = resolve_path(specifier, referrer) {
            let abs = normalize(&self.cwd.join(&path));
            let name = path.to_string_lossy().into_owned();
            return self
                .load_file(&abs, &name, request.json)
                .map_err(|e| failed(&e));
        }
        if specifier.contains("://") || specifier.starts_with("data:") {
            self.refuse_invalid(specifier);
            return Err(failed(
                "v8box loads paths, file:// URLs, package imports (#name) and packages from node_modules (no other URLs)",
            ));
        }
        if node_builtin(specifier) {
            self.refuse_invalid(specifier);
            return Err(failed(&no_node_api(specifier)));
        }
        let from = referrer_abs
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let abs = if specifier.starts_with('#') {
            self.resolve_imports(specifier, &from, IMPORT_CONDITIONS, false)
        } else {
            self.resolve_package(specifier, &from, IMPORT_CONDITIONS, false)
        };
        let abs = match abs {
            Ok(abs) => abs,
            Err(e) => {
                self.refuse_not_found(specifier);
                return Err(failed(&e));
            }
        };
        let name = abs.display().to_string();
        self.load_file(&abs, &name, request.json)
            .map_err(|e| failed(&e))
    }

    /// The module for the file `abs` (named `name` if it is loaded first here).
    fn load_file(&mut self, abs: &Path, name: &str, json: bool) -> Result<ImportedModule, String> {
        let resource = abs.display().to_string();
        let tag = if json { 1 } else { 0 };
        if let Some(m) = self.loaded.get(&(resource.clone(), tag)) {
            return Ok(m.clone());
        }
        if resource.len() > MAX_PATH_BYTES || resource.contains('\0') {
            self.refuse_invalid(&resource);
            return Err("the path is longer than PATH_MAX or contains a NUL byte".into());
        }
        let source = self.read(abs, "module.load")?;
        let module = if json {
            ImportedModule {
                name: name.to_string(),
                source: source.to_string(),
                kind: ModuleKind::Json,
            }
        } else {
            match self.format_of(abs)? {
                Format::Json => {
                    return Err(format!(
                        "\"{resource}\" is JSON: import it with {{ type: \"json\" }} (import data from \"...\" with {{ type: \"json\" }})"
                    ))
                }
                Format::Esm => ImportedModule {
                    name: name.to_string(),
                    source: source.to_string(),
                    kind: ModuleKind::Esm,
                },
                Format::CommonJs => ImportedModule {
                    name: format!("{CJS_FACADE}{resource}"),
                    source: self.cjs_facade(abs)?,
                    kind: ModuleKind::Esm,
                },
            }
        };
        self.loaded.insert((resource, tag), module.clone());
        Ok(module)
    }

    /// The file's contents, read once beneath its grant and recorded as `op`
    /// (`module.load` or, for a package.json, `module.resolve`).
    fn read(&mut self, abs: &Path, op: &'static str) -> Result<Arc<str>, String> {
        if let Some(r) = self.files.get(abs) {
            return r.clone();
        }
        let r = self.read_uncached(abs, op);
        self.files.insert(abs.to_path_buf(), r.clone());
        r
    }

    fn read_uncached(&mut self, abs: &Path, op: &'static str) -> Result<Arc<str>, String> {
        let resource = abs.display().to_string();
        let shown = |why: &str| format!("\"{resource}\": {why}");
        let d = self.shared.policy.check_module(abs);
        let mut info = CallInfo {
            op,
            resource: resource.clone(),
            allowed: d.allowed,
            rule: d.rule.as_str().into(),
            bytes_in: 0,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        };
        let Some(grant) = d.grant.filter(|_| d.allowed) else {
            self.shared.audit.call(info, "PERMISSION_DENIED", 0, None);
            return Err(shown(&format!(
                "permission denied ({})",
                Policy::module_hint(abs)
            )));
        };
        let max = self.shared.policy.limits.max_message_bytes() as u64;
        let loc = self.shared.fs.locate(grant, abs);
        let (file, resolved) = match read_module(&self.shared.fs, &loc, max) {
            Ok(file) => {
                let resolved = file.resolved.clone();
                (Ok(file.data), resolved)
            }
            Err((e, resolved)) => (Err(e), resolved),
        };
        info.resolved = resolved;
        let data = match file {
            Ok(data) => data,
            Err(e) => {
                self.shared.audit.call(info, e.code.name(), 0, None);
                return Err(e.message.trim_start_matches("module.load ").to_string());
            }
        };
        info.sha256 = Some(sha256_hex(&data));
        match String::from_utf8(data) {
            Ok(s) => {
                self.shared.audit.call(info, "ok", s.len() as u64, None);
                Ok(Arc::from(s.as_str()))
            }
            Err(e) => {
                self.shared.audit.call(info, "INVALID_ARGUMENT", 0, None);
                Err(shown(&format!(
                    "not UTF-8 text (invalid at byte {})",
                    e.utf8_error().valid_up_to()
                )))
            }
        }
    }

    /// Looks at `abs` (a `stat` beneath its grant), if a module root or read grant holds it.
    fn probe(&self, abs: &Path) -> Probe {
        let d = self.shared.policy.check_module(abs);
        let Some(grant) = d.grant.filter(|_| d.allowed) else {
            return Probe::Denied;
        };
        let loc = self.shared.fs.locate(grant, abs);
        match stat(&self.shared.fs, &loc).result {
            Ok(reply::Result::FileInfo(fi)) if fi.is_file => Probe::File,
            Ok(reply::Result::FileInfo(fi)) if fi.is_dir => Probe::Dir,
            Err(e) if e.code == crate::proto::ErrorCode::PermissionDenied => Probe::Denied,
            _ => Probe::Missing,
        }
    }

    /// The package.json in `dir`, if there is one the resolver may read.
    fn package_in(&mut self, dir: &Path) -> Result<Option<Arc<Package>>, String> {
        if let Some(p) = self.packages.get(dir) {
            return Ok(p.clone());
        }
        let file = dir.join("package.json");
        let found = match self.probe(&file) {
            Probe::File => {
                let text = self.read(&file, "module.resolve")?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("\"{}\": not valid JSON ({e})", file.display()))?;
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                Some(Arc::new(Package {
                    dir: dir.to_path_buf(),
                    kind: field("type"),
                    main: field("main"),
                    module: field("module"),
                    exports: v.get("exports").cloned(),
                    imports: v.get("imports").cloned(),
                }))
            }
            _ => None,
        };
        self.packages.insert(dir.to_path_buf(), found.clone());
        Ok(found)
    }

    /// The nearest package.json above `dir` (its package scope), looking only where the
    /// policy lets the loader look, and not beyond a `node_modules` folder.
    fn scope_of(&mut self, dir: &Path) -> Result<Option<Arc<Package>>, String> {
        for d in dir.ancestors() {
            if self.probe(&d.join("package.json")) == Probe::Denied {
                return Ok(None);
            }
            if let Some(p) = self.package_in(d)? {
                return Ok(Some(p));
            }
            if d.file_name().is_some_and(|n| n == "node_modules") {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// How the file at `abs` is loaded: by its extension, its package's `type`, else its
    /// syntax (`import`/`export` make an ES module; `require`/`module`/`exports` without them
    /// a CommonJS one; anything else is an ES module).
    fn format_of(&mut self, abs: &Path) -> Result<Format, String> {
        match abs.extension().and_then(|e| e.to_str()) {
            Some("mjs") => return Ok(Format::Esm),
            Some("cjs") => return Ok(Format::CommonJs),
            Some("json") => return Ok(Format::Json),
            _ => {}
        }
        let dir = abs.parent().unwrap_or(Path::new("/"));
        match self.scope_of(dir)?.and_then(|p| p.kind.clone()).as_deref() {
            Some("module") => return Ok(Format::Esm),
            Some("commonjs") => return Ok(Format::CommonJs),
            _ => {}
        }
        let a = self.analysis(abs)?;
        Ok(if !a.esm_syntax && a.cjs_markers {
            Format::CommonJs
        } else {
            Format::Esm
        })
    }

    fn analysis(&mut self, abs: &Path) -> Result<Arc<lexer::Analysis>, String> {
        if let Some(a) = self.analyses.get(abs) {
            return Ok(a.clone());
        }
        let source = self.read(abs, "module.load")?;
        let a = Arc::new(lexer::analyze(&source));
        self.analyses.insert(abs.to_path_buf(), a.clone());
        Ok(a)
    }

    /// A bare specifier (`name`, `@scope/name`, `name/sub/path`) found in the `node_modules`
    /// folders from `from` up, as Node finds it.
    fn resolve_package(
        &mut self,
        spec: &str,
        from: &Path,
        conditions: &[&str],
        require: bool,
    ) -> Result<PathBuf, String> {
        let mut parts = spec.splitn(if spec.starts_with('@') { 3 } else { 2 }, '/');
        let name = if spec.starts_with('@') {
            let scope = parts.next().unwrap_or("");
            match parts.next() {
                Some(n) if !n.is_empty() => format!("{scope}/{n}"),
                _ => return Err(format!("\"{spec}\" is not a valid package name")),
            }
        } else {
            parts.next().unwrap_or("").to_string()
        };
        let rest = parts.next();
        if name.is_empty() || name.starts_with('.') || name.contains('\\') || name.contains('%') {
            return Err(format!("\"{spec}\" is not a valid package name"));
        }
        let subpath = match rest {
            Some(r) => format!("./{r}"),
            None => ".".to_string(),
        };
        let mut looked = Vec::new();
        let mut not_looked = None;
        for d in from.ancestors() {
            if d.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            let dir = d.join("node_modules").join(&name);
            match self.probe(&dir) {
                Probe::Dir => {
                    return self.resolve_in_package(&dir, &subpath, conditions, require, spec)
                }
                Probe::Denied => {
                    not_looked.get_or_insert(d.join("node_modules"));
                }
                _ => looked.push(d.join("node_modules").display().to_string()),
            }
        }
        let mut why = format!("package \"{name}\" not found");
        if !looked.is_empty() {
            why.push_str(&format!(" in {}", looked.join(", ")));
        }
        if let Some(dir) = not_looked {
            why.push_str(&format!(
                "; not looked in {} and above, outside the module roots and read grants (allow with --module-root={} or --allow-read={})",
                dir.display(),
                dir.display(),
                dir.display()
            ));
        }
        Err(why)
    }

    /// `subpath` (`.` or `./x`) of the package in `dir`.
    fn resolve_in_package(
        &mut self,
        dir: &Path,
        subpath: &str,
        conditions: &[&str],
        require: bool,
        spec: &str,
    ) -> Result<PathBuf, String> {
        let pkg = self.package_in(dir)?;
        if let Some(exports) = pkg.as_ref().and_then(|p| p.exports.clone()) {
            return self.exports_resolve(dir, subpath, &exports, conditions, spec);
        }
        if subpath == "." {
            let mut fields = Vec::new();
            if let Some(p) = &pkg {
                if !require {
                    fields.extend(p.module.clone());
                }
                fields.extend(p.main.clone());
            }
            for field in fields {
                let base = normalize(&dir.join(&field));
                if let Some(found) = self.file_or_dir(&base)? {
                    return Ok(found);
                }
            }
            return self
                .index_of(dir)
                .ok_or_else(|| format!("package \"{spec}\" at {} has no main file (no exports, module, main or index.js)", dir.display()));
        }
        let target = normalize(&dir.join(subpath));
        if require {
            return self.file_or_dir(&target)?.ok_or_else(|| {
                format!(
                    "\"{spec}\": no file {} (nor with .js, .json or as a folder)",
                    target.display()
                )
            });
        }
        Ok(target)
    }

    /// Node's `require` file rules: `x`, `x.js`, `x.json`, then the folder `x`.
    fn file_or_dir(&mut self, base: &Path) -> Result<Option<PathBuf>, String> {
        let s = base.display().to_string();
        for candidate in [s.clone(), format!("{s}.js"), format!("{s}.json")] {
            let p = PathBuf::from(candidate);
            if self.probe(&p) == Probe::File {
                return Ok(Some(p));
            }
        }
        if self.probe(base) == Probe::Dir {
            if let Some(main) = self.package_in(base)?.and_then(|p| p.main.clone()) {
                let m = normalize(&base.join(main));
                for candidate in [
                    m.display().to_string(),
                    format!("{}.js", m.display()),
                    format!("{}.json", m.display()),
                ] {
                    let p = PathBuf::from(candidate);
                    if self.probe(&p) == Probe::File {
                        return Ok(Some(p));
                    }
                }
                if let Some(i) = self.index_of(&m) {
                    return Ok(Some(i));
                }
            }
            return Ok(self.index_of(base));
        }
        Ok(None)
    }

    fn index_of(&self, dir: &Path) -> Option<PathBuf> {
        ["index.js", "index.json"]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| self.probe(p) == Probe::File)
    }

    /// A package's `exports` for `subpath`, with `conditions` (and `default`).
    fn exports_resolve(
        &mut self,
        dir: &Path,
        subpath: &str,
        exports: &serde_json::Value,
        conditions: &[&str],
        spec: &str,
    ) -> Result<PathBuf, String> {
        let sugar = match exports {
            serde_json::Value::Object(m) => !m.keys().any(|k| k.starts_with('.')),
            _ => true,
        };
        let target = if sugar {
            if subpath == "." {
                target_of(exports, None, conditions)
            } else {
                None
            }
        } else {
            match_map(exports.as_object().unwrap(), subpath, conditions)
        };
        let pj = dir.join("package.json").display().to_string();
        let Some(target) = target else {
            return Err(format!(
                "\"{spec}\": subpath \"{subpath}\" is not exported by {pj} for the conditions {} (\"exports\")",
                conditions_list(conditions)
            ));
        };
        self.package_target(dir, &target, conditions, spec, &pj, false)
    }

    /// A target of `exports` or `imports`: a path in the package (or, from `imports`, a
    /// package's specifier).
    fn package_target(
        &mut self,
        dir: &Path,
        target: &str,
        conditions: &[&str],
        spec: &str,
        pj: &str,
        imports: bool,
    ) -> Result<PathBuf, String> {
        if !target.starts_with("./") {
            if imports && !target.starts_with('/') && !target.starts_with("../") {
                return self.resolve_package(
                    target,
                    dir,
                    conditions,
                    !conditions.contains(&"import"),
                );
            }
            return Err(format!("\"{spec}\": {pj} maps it to \"{target}\", which is not a path in the package (\"./...\")"));
        }
        let abs = normalize(&dir.join(target));
        let inside = abs
            .strip_prefix(dir)
            .map(|r| !r.components().any(|c| c.as_os_str() == "node_modules"));
        if inside != Ok(true) {
            return Err(format!(
                "\"{spec}\": {pj} maps it to \"{target}\", outside the package"
            ));
        }
        Ok(abs)
    }

    /// `#name` through the `imports` of the package scope of `from`.
    fn resolve_imports(
        &mut self,
        spec: &str,
        from: &Path,
        conditions: &[&str],
        _require: bool,
    ) -> Result<PathBuf, String> {
        let Some(pkg) = self.scope_of(from)? else {
            return Err(format!(
                "\"{spec}\": no package.json above {} to define it (\"imports\")",
                from.display()
            ));
        };
        let pj = pkg.dir.join("package.json").display().to_string();
        let target = pkg
            .imports
            .as_ref()
            .and_then(|m| m.as_object())
            .and_then(|m| match_map(m, spec, conditions));
        let Some(target) = target else {
            return Err(format!(
                "\"{spec}\" is not defined by the \"imports\" of {pj}"
            ));
        };
        let dir = pkg.dir.clone();
        self.package_target(&dir, &target, conditions, spec, &pj, true)
    }

    /// Where `require(spec)` in the file `from` leads, and how that file loads.
    fn resolve_require(&mut self, spec: &str, from: &Path) -> Result<(PathBuf, Format), String> {
        if node_builtin(spec) {
            return Err(no_node_api(spec));
        }
        let dir = from.parent().unwrap_or(Path::new("/"));
        let path = if spec.starts_with("./")
            || spec.starts_with("../")
            || spec.starts_with('/')
            || spec == "."
            || spec == ".."
        {
            let base = normalize(&dir.join(spec));
            match self.file_or_dir(&base)? {
                Some(p) => p,
                None => {
                    return Err(match self.probe(&base) {
                        Probe::Denied => format!(
                            "\"{}\": outside the module roots and read grants ({})",
                            base.display(),
                            Policy::module_hint(&base)
                        ),
                        _ => format!(
                            "no file {} (nor with .js, .json or as a folder)",
                            base.display()
                        ),
                    })
                }
            }
        } else if spec.starts_with('#') {
            self.resolve_imports(spec, dir, REQUIRE_CONDITIONS, true)?
        } else {
            self.resolve_package(spec, dir, REQUIRE_CONDITIONS, true)?
        };
        let format = self.format_of(&path)?;
        Ok((path, format))
    }

    /// Records an import refused before the policy was asked: not a path v8box loads.
    fn refuse_invalid(&self, resource: &str) {
        self.refuse(resource, "INVALID_ARGUMENT");
    }

    /// Records a bare specifier that resolved to no file.
    fn refuse_not_found(&self, resource: &str) {
        self.refuse(resource, "NOT_FOUND");
    }

    fn refuse(&self, resource: &str, outcome: &'static str) {
        let d = Decision::invalid();
        let info = CallInfo {
            op: "module.load",
            resource: resource.to_string(),
            allowed: false,
            rule: d.rule.into(),
            bytes_in: 0,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        };
        self.shared.audit.call(info, outcome, 0, None);
    }
}

fn conditions_list(conditions: &[&str]) -> String {
    let mut all: Vec<String> = conditions.iter().map(|c| format!("\"{c}\"")).collect();
    all.push("\"default\"".into());
    all.join(", ")
}

/// The entry of an `exports`/`imports` map for `key`: exact, or the longest `*` pattern.
fn match_map(
    map: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    conditions: &[&str],
) -> Option<String> {
    if let Some(v) = map.get(key) {
        if !key.contains('*') {
            return target_of(v, None, conditions);
        }
    }
    let mut best: Option<(&str, &serde_json::Value, String)> = None;
    for (k, v) in map {
        let Some(star) = k.find('*') else { continue };
        let (prefix, suffix) = (&k[..star], &k[star + 1..]);
        if key.len() >= k.len() - 1 && key.starts_with(prefix) && key.ends_with(suffix) {
            let better = best
                .as_ref()
                .is_none_or(|(b, _, _)| prefix.len() > b.find('*').unwrap_or(0));
            if better {
                let matched = key[prefix.len()..key.len() - suffix.len()].to_string();
                best = Some((k.as_str(), v, matched));
            }
        }
    }
    let (_, v, matched) = best?;
    target_of(v, Some(&matched), conditions)
}

/// A target value: a string (with `*` replaced), the first of an array that resolves, or the
/// first entry of a conditions object whose condition matches (in the object's order).
fn target_of(v: &serde_json::Value, pattern: Option<&str>, conditions: &[&str]) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(match pattern {
            Some(m) => s.replace('*', m),
            None => s.clone(),
        }),
        serde_json::Value::Array(items) => {
            items.iter().find_map(|i| target_of(i, pattern, conditions))
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "default" || conditions.contains(&k.as_str()) {
                    if let Some(t) = target_of(v, pattern, conditions) {
                        return Some(t);
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Lexically normalizes `path` (drops `.`, folds `..` into its parent).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The module name (a path) that `specifier` imported from `referrer` stands for.
pub fn resolve_path(specifier: &str, referrer: &str) -> Option<PathBuf> {
    let spec = specifier.strip_prefix("file://").unwrap_or(specifier);
    if spec.starts_with('/') {
        return Some(normalize(Path::new(spec)));
    }
    if spec.starts_with("./") || spec.starts_with("../") {
        let base = Path::new(referrer).parent().unwrap_or(Path::new(""));
        return Some(normalize(&base.join(spec)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_specifiers_resolve_against_the_referrer() {
        let p = resolve_path("./b.js", "dir/a.js").unwrap();
        assert_eq!(p, PathBuf::from("dir/b.js"));
        let p = resolve_path("../c/d.js", "dir/sub/a.js").unwrap();
        assert_eq!(p, PathBuf::from("dir/c/d.js"));
        assert_eq!(
            resolve_path("/x/./y.js", "a.js").unwrap(),
            PathBuf::from("/x/y.js")
        );
        assert!(resolve_path("lodash", "a.js").is_none());
    }
}
