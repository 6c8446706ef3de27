//! Import maps as browsers and Deno read them (`{"imports": {...}, "scopes": {...}}`): a
//! specifier (a bare name, or a path prefix ending in `/`) maps to a path; relative keys and
//! values are against the map file's folder. A scope applies to the modules beneath its path,
//! the most specific scope first, then the top-level `imports`.

use std::path::Path;

use super::normalize;

/// A parsed import map: keys and values normalized (paths absolute), longest key first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportMap {
    imports: Vec<(String, String)>,
    scopes: Vec<(String, Vec<(String, String)>)>,
}

/// A key or value that names a path, made absolute against `base`; bare keys stay as written.
fn as_path(s: &str, base: &Path) -> Option<String> {
    let s = s.strip_prefix("file://").unwrap_or(s);
    if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") {
        let mut out = normalize(&base.join(s)).display().to_string();
        if s.ends_with('/') && !out.ends_with('/') {
            out.push('/');
        }
        return Some(out);
    }
    None
}

fn entries(
    v: &serde_json::Value,
    base: &Path,
    what: &str,
) -> Result<Vec<(String, String)>, String> {
    let Some(map) = v.as_object() else {
        return Err(format!("{what} must be an object"));
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let Some(value) = value.as_str() else {
            return Err(format!("{what}: the value of \"{key}\" must be a string"));
        };
        let Some(target) = as_path(value, base) else {
            return Err(format!(
                "{what}: \"{key}\" maps to \"{value}\", which is not a path (\"./\", \"../\", \"/\" or file://)"
            ));
        };
        if key.ends_with('/') != target.ends_with('/') {
            return Err(format!(
                "{what}: \"{key}\" and its value must both end in \"/\" or neither"
            ));
        }
        let key = as_path(key, base).unwrap_or_else(|| key.clone());
        out.push((key, target));
    }
    out.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
    Ok(out)
}

impl ImportMap {
    /// Parses the import map `text` of a file in the folder `base`.
    pub fn parse(text: &str, base: &Path) -> Result<ImportMap, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Some(top) = v.as_object() else {
            return Err("an import map is a JSON object".into());
        };
        for key in top.keys() {
            if key != "imports" && key != "scopes" {
                return Err(format!(
                    "unknown key \"{key}\" (an import map has \"imports\" and \"scopes\")"
                ));
            }
        }
        let imports = match top.get("imports") {
            Some(v) => entries(v, base, "\"imports\"")?,
            None => Vec::new(),
        };
        let mut scopes = Vec::new();
        if let Some(v) = top.get("scopes") {
            let Some(map) = v.as_object() else {
                return Err("\"scopes\" must be an object".into());
            };
            for (scope, v) in map {
                let Some(prefix) = as_path(scope, base) else {
                    return Err(format!("scope \"{scope}\" is not a path"));
                };
                scopes.push((prefix, entries(v, base, &format!("scope \"{scope}\""))?));
            }
            scopes.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        }
        Ok(ImportMap { imports, scopes })
    }

    /// Reads and parses the import map at `path`.
    pub fn from_file(path: &Path) -> Result<ImportMap, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read import map {}: {e}", path.display()))?;
        let cwd = std::env::current_dir().unwrap_or_default();
        let base = normalize(&cwd.join(path.parent().unwrap_or(Path::new(""))));
        ImportMap::parse(&text, &base).map_err(|e| format!("import map {}: {e}", path.display()))
    }

    /// The path `specifier` maps to (already absolute if it is a path) for a module at
    /// `referrer` (an absolute path), if any entry matches.
    pub fn resolve(&self, specifier: &str, referrer: &str) -> Option<String> {
        for (prefix, entries) in &self.scopes {
            if referrer.starts_with(prefix.as_str()) || format!("{referrer}/") == *prefix {
                if let Some(found) = lookup(entries, specifier) {
                    return Some(found);
                }
            }
        }
        lookup(&self.imports, specifier)
    }
}

fn lookup(entries: &[(String, String)], specifier: &str) -> Option<String> {
    for (key, value) in entries {
        if key == specifier {
            return Some(value.clone());
        }
        if key.ends_with('/') {
            if let Some(rest) = specifier.strip_prefix(key.as_str()) {
                return Some(format!("{value}{rest}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_bare_names_prefixes_and_scopes() {
        let m = ImportMap::parse(
            r#"{"imports": {"lodash": "./vendor/lodash.js", "lib/": "./src/lib/"},
                "scopes": {"./legacy/": {"lodash": "./vendor/lodash3.js"}}}"#,
            Path::new("/app"),
        )
        .unwrap();
        assert_eq!(
            m.resolve("lodash", "/app/main.js").unwrap(),
            "/app/vendor/lodash.js"
        );
        assert_eq!(
            m.resolve("lib/a/b.js", "/app/main.js").unwrap(),
            "/app/src/lib/a/b.js"
        );
        assert_eq!(
            m.resolve("lodash", "/app/legacy/x.js").unwrap(),
            "/app/vendor/lodash3.js"
        );
        assert!(m.resolve("react", "/app/main.js").is_none());
        assert!(ImportMap::parse(r#"{"imports": {"a": "b"}}"#, Path::new("/")).is_err());
    }
}
