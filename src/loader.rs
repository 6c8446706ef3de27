//! Loading a module is a system call. Relative specifiers (`./x.js`, `../y.js`) resolve against
//! the importing file's folder, absolute paths and `file://` URLs stand as they are; bare
//! specifiers (`"lodash"`) and other URLs are not loaded (v8box has no package registry). The
//! file is read as `sys.readFile` reads one — decided by the policy (a module root, else a read
//! grant), opened beneath its grant with cap-std, never waiting — and recorded as `module.load`
//! with its SHA-256. A failed load names the specifier, the path and what would allow it, never
//! the file's content.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::audit::{sha256_hex, CallInfo, Parts};
use crate::dispatch::Shared;
use crate::ops::fs::read_module;
use crate::policy::{Decision, Policy};

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

/// Loads one run's imports: each module once, each load decided and recorded.
pub(crate) struct ModuleLoader {
    shared: Arc<Shared>,
    cwd: PathBuf,
    imports: Imports,
    /// Modules already loaded, by absolute path (or host name): the name they were loaded as.
    loaded: HashMap<String, (String, Arc<str>)>,
}

impl ModuleLoader {
    pub(crate) fn new(shared: Arc<Shared>, imports: Imports) -> ModuleLoader {
        ModuleLoader {
            shared,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            imports,
            loaded: HashMap::new(),
        }
    }

    /// Makes an import of the main module (by any spelling of its path) find the main module
    /// itself, not a second copy of it.
    pub(crate) fn knows_main(&mut self, name: &str, source: &str) {
        if matches!(self.imports, Imports::Files) {
            let abs = normalize(&self.cwd.join(name)).display().to_string();
            self.loaded.insert(abs, (name.to_string(), Arc::from(source)));
        }
    }

    /// The `(name, source)` that `specifier`, imported from the module named `referrer`,
    /// stands for, or why it cannot be loaded.
    pub(crate) fn load(&mut self, specifier: &str, referrer: &str) -> Result<(String, String), String> {
        let failed = |why: &str| format!("module.load \"{specifier}\" imported from \"{referrer}\": {why}");
        if let Some(why) = self.shared.audit.failure() {
            return Err(failed(&format!("refused: the audit log failed ({why})")));
        }
        if let Imports::Host(resolve) = &mut self.imports {
            let answer = resolve(specifier, referrer);
            let (resource, found) = match &answer {
                Some((name, source)) => (name.clone(), Some(source.as_bytes())),
                None => (specifier.to_string(), None),
            };
            let info = CallInfo {
                op: "module.load",
                resource,
                allowed: true,
                rule: HOST_RESOLVER_RULE.to_string(),
                bytes_in: 0,
                sha256: found.map(sha256_hex),
                resolved: None,
                parts: Parts::None,
            };
            let n = found.map_or(0, |s| s.len() as u64);
            self.shared.audit.call(info, if found.is_some() { "ok" } else { "NOT_FOUND" }, n, None);
            return answer.ok_or_else(|| failed("the host's resolver has no such module"));
        }
        let Some(path) = resolve_path(specifier, referrer) else {
            self.refuse_invalid(specifier);
            return Err(failed(
                "not a path: v8box loads \"./\", \"../\", \"/\" and file:// specifiers (no bare names or URLs)",
            ));
        };
        let abs = normalize(&self.cwd.join(&path));
        let resource = abs.display().to_string();
        if let Some((name, source)) = self.loaded.get(&resource) {
            return Ok((name.clone(), source.to_string()));
        }
        if resource.len() > MAX_PATH_BYTES || resource.contains('\0') {
            self.refuse_invalid(&resource);
            return Err(failed("the path is longer than PATH_MAX or contains a NUL byte"));
        }
        let shown = |why: &str| failed(&format!("\"{resource}\": {why}"));
        let d = self.shared.policy.check_module(&abs);
        let mut info = CallInfo {
            op: "module.load",
            resource: resource.clone(),
            allowed: d.allowed,
            rule: d.rule.clone(),
            bytes_in: 0,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        };
        let Some(grant) = d.grant.filter(|_| d.allowed) else {
            self.shared.audit.call(info, "PERMISSION_DENIED", 0, None);
            return Err(shown(&format!("permission denied ({})", Policy::module_hint(&abs))));
        };
        let max = self.shared.policy.limits.max_message_bytes() as u64;
        let loc = self.shared.fs.locate(grant, &abs);
        let read = read_module(&self.shared.fs, &loc, max);
        let (file, resolved) = match read {
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
                return Err(failed(e.message.trim_start_matches("module.load ")));
            }
        };
        info.sha256 = Some(sha256_hex(&data));
        let source = match String::from_utf8(data) {
            Ok(s) => s,
            Err(e) => {
                self.shared.audit.call(info, "INVALID_ARGUMENT", 0, None);
                return Err(shown(&format!(
                    "not UTF-8 text (invalid at byte {})",
                    e.utf8_error().valid_up_to()
                )));
            }
        };
        self.shared.audit.call(info, "ok", source.len() as u64, None);
        let name = path.to_string_lossy().into_owned();
        self.loaded.insert(resource, (name.clone(), Arc::from(source.as_str())));
        Ok((name, source))
    }

    /// Records an import refused before the policy was asked: not a path v8box loads.
    fn refuse_invalid(&self, resource: &str) {
        let d = Decision::invalid();
        let info = CallInfo {
            op: "module.load",
            resource: resource.to_string(),
            allowed: false,
            rule: d.rule,
            bytes_in: 0,
            sha256: None,
            resolved: None,
            parts: Parts::None,
        };
        self.shared.audit.call(info, "INVALID_ARGUMENT", 0, None);
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
