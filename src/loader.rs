//! Finds the files behind a module's imports: relative specifiers (`./x.js`, `../y.js`) resolve
//! against the importing file's folder, absolute paths stand as they are. Bare specifiers
//! (`"lodash"`) are not resolved: v8box has no package registry.

use std::path::{Component, Path, PathBuf};

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

/// A resolver for `Worker::load_module` that reads imported modules from disk.
pub fn file_resolver(specifier: &str, referrer: &str) -> Option<(String, String)> {
    let path = resolve_path(specifier, referrer)?;
    let source = std::fs::read_to_string(&path).ok()?;
    Some((path.to_string_lossy().into_owned(), source))
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
