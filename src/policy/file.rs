//! Policy files (TOML). Every grant keeps its line, so decisions can name `file:line [fs] read`.
//! The schema is documented in docs/POLICY.md.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::flags::parse_target;
use super::{Grant, Limits, Permission, Policy, Quota, Source, Target};

/// A policy that could not be read; names the line and column where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// What is wrong.
    pub message: String,
    /// The policy file's name, when the error is in a file.
    pub file: Option<String>,
    /// The 1-based line of the error, when known.
    pub line: Option<usize>,
    /// The 1-based column of the error, when known.
    pub column: Option<usize>,
}

impl PolicyError {
    /// An error with `message` and no file or position.
    pub fn new(message: impl Into<String>) -> PolicyError {
        PolicyError {
            message: message.into(),
            file: None,
            line: None,
            column: None,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: {}", self.message),
            (Some(file), Some(l), None) => write!(f, "{file}:{l}: {}", self.message),
            (Some(file), None, _) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// `true` (everything) or a list of items, each with its position in the file.
enum Access {
    All(bool),
    /// One item, written without a list (`root = "lib"`): it spans the value.
    One(String),
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Access {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Access;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, a string or a list of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Access, E> {
                Ok(Access::All(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Access, E> {
                Ok(Access::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Access, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(Access::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FsSection {
    read: Option<Spanned<Access>>,
    write: Option<Spanned<Access>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AllowSection {
    allow: Option<Spanned<Access>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HostSection {
    channels: Option<Spanned<Access>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ModulesSection {
    root: Option<Spanned<Access>>,
    import_map: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StdinSection {
    allow: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JsSection {
    eval: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    timeout_ms: Option<Spanned<u64>>,
    max_heap_mb: Option<Spanned<u64>>,
    max_message_bytes: Option<usize>,
    max_calls_in_flight: Option<usize>,
    max_timers: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaSection {
    calls: Option<u64>,
    bytes: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    fs: FsSection,
    #[serde(default)]
    net: AllowSection,
    #[serde(default)]
    env: AllowSection,
    #[serde(default)]
    host: HostSection,
    #[serde(default)]
    modules: ModulesSection,
    #[serde(default)]
    stdin: StdinSection,
    #[serde(default)]
    js: JsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    quotas: BTreeMap<Spanned<String>, QuotaSection>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

pub(super) fn from_file(path: &Path) -> Result<Policy, PolicyError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: Some(name.clone()),
        ..PolicyError::new(format!("cannot read policy: {e}"))
    })?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let base = crate::loader::normalize(&cwd.join(path.parent().unwrap_or(Path::new(""))));
    parse(&text, &name, &base)
}

pub(super) fn parse(text: &str, name: &str, base: &Path) -> Result<Policy, PolicyError> {
    let at = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        PolicyError {
            message,
            file: Some(name.to_string()),
            line: Some(line),
            column: Some(column),
        }
    };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => at(span.start, e.message().to_string()),
        None => PolicyError {
            file: Some(name.to_string()),
            ..PolicyError::new(e.message().to_string())
        },
    })?;

    let mut policy = Policy::deny_all();
    policy.allow_stdin = raw.stdin.allow.unwrap_or(false);
    if let Some(map) = &raw.modules.import_map {
        let path = crate::loader::normalize(&base.join(map.get_ref()));
        let parsed = crate::loader::ImportMap::from_file(&path)
            .map_err(|m| at(map.span().start, format!("[modules] import_map: {m}")))?;
        policy.import_map = Some(parsed);
    }
    let sections = [
        (Permission::Read, raw.fs.read),
        (Permission::Write, raw.fs.write),
        (Permission::Net, raw.net.allow),
        (Permission::Env, raw.env.allow),
        (Permission::Host, raw.host.channels),
        (Permission::Module, raw.modules.root),
    ];
    for (permission, access) in sections {
        let Some(access) = access else { continue };
        let key = permission.policy_key();
        let span = access.span();
        // Each item as written, with where it starts (`None`: everything of its kind).
        let items: Vec<(Option<String>, usize)> = match access.into_inner() {
            Access::All(false) => Vec::new(),
            Access::All(true) => vec![(None, span.start)],
            Access::One(item) => vec![(Some(item), span.start)],
            Access::List(items) => items
                .into_iter()
                .map(|item| (Some(item.get_ref().clone()), item.span().start))
                .collect(),
        };
        for (item, start) in items {
            let target = match item {
                None => Target::All,
                Some(item) => parse_target(permission, &item, base)
                    .map_err(|m| at(start, format!("{key}: {m}")))?,
            };
            policy.grants.push(Grant {
                permission,
                target,
                source: Source::File {
                    path: name.to_string(),
                    line: line_col(text, start).0,
                    key,
                },
            });
        }
    }
    policy.allow_eval = raw.js.eval.unwrap_or(true);
    let checked = |value: Option<Spanned<u64>>,
                   key: &str,
                   check: fn(u64) -> Result<u64, String>| {
        value
            .map(|v| {
                check(*v.get_ref()).map_err(|m| at(v.span().start, format!("[limits] {key}: {m}")))
            })
            .transpose()
    };
    policy.limits = Limits {
        timeout_ms: checked(
            raw.limits.timeout_ms,
            "timeout_ms",
            Limits::check_timeout_ms,
        )?,
        max_heap_mb: checked(
            raw.limits.max_heap_mb,
            "max_heap_mb",
            Limits::check_max_heap_mb,
        )?,
        max_message_bytes: raw.limits.max_message_bytes,
        max_calls_in_flight: raw.limits.max_calls_in_flight,
        max_timers: raw.limits.max_timers,
    };
    for (op, q) in raw.quotas {
        let spec = crate::ops::table::find(op.get_ref());
        if !spec.is_some_and(|s| s.quota) {
            let names: Vec<_> = crate::ops::table::quota_names().collect();
            let what = match spec {
                Some(s) => format!(
                    "operation {:?} cannot have a quota ({} is not counted: it is not recorded)",
                    s.name, s.js
                ),
                None => format!("unknown operation {:?} in [quotas]", op.get_ref()),
            };
            return Err(at(
                op.span().start,
                format!("{what}; expected one of: {}", names.join(", ")),
            ));
        }
        policy.quotas.insert(
            op.into_inner(),
            Quota {
                calls: q.calls,
                bytes: q.bytes,
            },
        );
    }
    Ok(policy)
}

#[derive(Serialize, Default)]
struct OutFs {
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<toml::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    write: Option<toml::Value>,
}

#[derive(Serialize)]
struct OutAllow {
    allow: toml::Value,
}

#[derive(Serialize)]
struct OutHost {
    channels: toml::Value,
}

#[derive(Serialize)]
struct OutModules {
    root: toml::Value,
}

#[derive(Serialize)]
struct OutJs {
    eval: bool,
}

#[derive(Serialize)]
struct OutStdin {
    allow: bool,
}

#[derive(Serialize)]
struct OutPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    fs: Option<OutFs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<OutAllow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<OutAllow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<OutHost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modules: Option<OutModules>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<OutStdin>,
    js: OutJs,
    limits: Limits,
    quotas: BTreeMap<String, Quota>,
}

fn access(policy: &Policy, permission: Permission) -> Option<toml::Value> {
    let grants: Vec<&Grant> = policy
        .grants
        .iter()
        .filter(|g| g.permission == permission)
        .collect();
    if grants.is_empty() {
        return None;
    }
    if grants.iter().any(|g| g.target == Target::All) {
        return Some(toml::Value::Boolean(true));
    }
    let mut items: Vec<String> = grants.iter().map(|g| g.target.to_string()).collect();
    items.sort();
    items.dedup();
    Some(toml::Value::Array(
        items.into_iter().map(toml::Value::String).collect(),
    ))
}

pub(super) fn normalized(policy: &Policy) -> String {
    let read = access(policy, Permission::Read);
    let write = access(policy, Permission::Write);
    let out = OutPolicy {
        fs: (read.is_some() || write.is_some()).then_some(OutFs { read, write }),
        net: access(policy, Permission::Net).map(|allow| OutAllow { allow }),
        env: access(policy, Permission::Env).map(|allow| OutAllow { allow }),
        host: access(policy, Permission::Host).map(|channels| OutHost { channels }),
        modules: access(policy, Permission::Module).map(|root| OutModules { root }),
        stdin: policy.allow_stdin.then_some(OutStdin { allow: true }),
        js: OutJs {
            eval: policy.allow_eval,
        },
        limits: policy.limits.clone(),
        quotas: policy.quotas.clone(),
    };
    toml::to_string(&out).expect("a policy serializes to TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_remember_their_lines() {
        let text = "[fs]\nread = [\"data\", \"/etc/hosts\"]\n\n[env]\nallow = [\"HOME\"]\n";
        let p = parse(text, "p.toml", Path::new("/base")).unwrap();
        let d = p.check_path(Permission::Read, Path::new("/base/data/x"));
        assert!(d.allowed);
        assert_eq!(d.rule, "p.toml:2 [fs] read");
        assert_eq!(
            p.check_name(Permission::Env, "HOME").rule,
            "p.toml:5 [env] allow"
        );
        assert!(
            !p.check_path(Permission::Write, Path::new("/base/data/x"))
                .allowed
        );
    }

    #[test]
    fn a_bad_key_names_its_line_and_column() {
        let err = parse(
            "[fs]\nread = []\nreed = [\"x\"]\n",
            "p.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(1)), "{err}");
        assert!(err.message.contains("unknown field `reed`"), "{err}");
        assert!(err.to_string().starts_with("p.toml:3:1: "), "{err}");
    }

    #[test]
    fn unknown_quota_operations_are_errors() {
        let err = parse(
            "[quotas.\"fs.nope\"]\ncalls = 1\n",
            "p.toml",
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }
}
