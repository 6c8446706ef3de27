//! Deciding a recorded or hypothetical call against a policy: `decide` takes an operation name
//! and a resource as a person types them (`v8box policy explain`), `replay` takes an audit
//! record and decides it from its structured fields (`v8box policy test`), never by parsing its
//! `resource` back into parts (a rename's joined `from -> to`, a URL that may have been cut).

use std::path::Path;

use serde_json::Value;

use super::{Decision, NetTarget, Permission, Policy};
use crate::audit::is_cut_resource;
use crate::loader::normalize;

/// Why a recorded call is not replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReplayed {
    /// The policy never decided it (rule `invalid argument`), or what identifies its resource
    /// was cut in the record (which is not what was decided): skipped silently.
    NotDecided,
    /// It cannot be decided again from what the record says (a log from an older v8box
    /// without the fields, an unknown operation): said, then skipped.
    Cannot(String),
}

/// The permission an operation needs: `Ok(None)` for operations every script may use.
/// A recorded operation's is its first resource's (the op table, `ops::table`); a permission's
/// own name (`read`, ...) stands for itself.
pub fn permission_of(op: &str) -> Result<Option<Permission>, String> {
    if let Some(spec) = crate::ops::table::find(op).filter(|o| o.recorded) {
        return Ok(spec.permission());
    }
    Ok(Some(match op {
        "read" => Permission::Read,
        "write" => Permission::Write,
        "net" => Permission::Net,
        "env" => Permission::Env,
        "host" => Permission::Host,
        "stdin" => Permission::Stdin,
        // The loader's own records (not calls: they are not in the op table).
        "module.load" | "module.resolve" | "module" => Permission::Module,
        other => {
            let names: Vec<_> = crate::ops::table::recorded_names().collect();
            return Err(format!(
                "unknown operation {other:?}; expected one of: {}, module.load, module.resolve, or read, write, net, env, host, module, stdin",
                names.join(", ")
            ));
        }
    }))
}

impl Policy {
    /// Decides `op` on `resource` (relative paths against `cwd`).
    pub fn decide(&self, op: &str, resource: &str, cwd: &Path) -> Result<Decision, String> {
        let Some(permission) = permission_of(op)? else {
            return Ok(Decision::always());
        };
        Ok(match permission {
            // One path, whatever it contains (a rename's ends are decided one at a time: a
            // recorded rename is replayed from its `from` and `to`, see `replay`).
            Permission::Read | Permission::Write => {
                self.check_path(permission, &normalize(&cwd.join(resource)))
            }
            Permission::Net => {
                let target = match url::Url::parse(resource) {
                    Ok(u) if u.has_host() => NetTarget::from_url(&u)?,
                    _ => NetTarget::parse(resource)?,
                };
                self.check_net(&target)
            }
            Permission::Module => self.check_module(&normalize(&cwd.join(resource))),
            Permission::Env | Permission::Host => self.check_name(permission, resource),
            Permission::Stdin => self.check_stdin(),
        })
    }
}

/// A string field of a record (`None`: absent or not a string).
fn text<'r>(record: &'r Value, key: &str) -> Option<&'r str> {
    record.get(key).and_then(Value::as_str)
}

impl Policy {
    /// Decides again the call that an audit record (`call` or `intent`) recorded, as the
    /// dispatcher decided it, from the record's fields: a file operation's path (`resource`);
    /// a rename's `from` and `to`, each needing the write grant (`from`'s check first, as the
    /// dispatcher does); a fetch's `host` and `port`; a variable's or channel's name. Relative
    /// paths (a hand-written log) are taken against `cwd`.
    pub fn replay(&self, record: &Value, cwd: &Path) -> Result<Decision, NotReplayed> {
        if text(record, "rule") == Some(Decision::INVALID) {
            return Err(NotReplayed::NotDecided);
        }
        let op = text(record, "op").unwrap_or("");
        let resource = text(record, "resource").unwrap_or("");
        let permission = match permission_of(op) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(Decision::always()),
            Err(e) => return Err(NotReplayed::Cannot(e)),
        };
        let paths = crate::ops::table::find(op).map_or(&[][..], |o| o.resources);
        let whole = |s: &str| {
            if is_cut_resource(s) {
                Err(NotReplayed::NotDecided)
            } else {
                Ok(())
            }
        };
        match permission {
            // An operation on several paths (`fs.rename`'s `from` and `to`): each decided
            // from its own field, under its own permission, in the op table's order.
            Permission::Read | Permission::Write if paths.len() > 1 => {
                let mut decisions = Vec::new();
                for (field, permission) in paths {
                    let Some(path) = text(record, field) else {
                        let fields: Vec<String> =
                            paths.iter().map(|(f, _)| format!("{f:?}")).collect();
                        return Err(NotReplayed::Cannot(format!(
                            "a {} recorded without its {} fields (a log written by an older \
                             v8box): not replayed",
                            op.trim_start_matches("fs."),
                            fields.join(" and ")
                        )));
                    };
                    whole(path)?;
                    decisions.push(self.check_path(*permission, &normalize(&cwd.join(path))));
                }
                if let Some(denied) = decisions.iter().position(|d| !d.allowed) {
                    return Ok(decisions.swap_remove(denied));
                }
                let mut rules: Vec<String> = Vec::new();
                for d in &decisions {
                    if !rules.contains(&d.rule) {
                        rules.push(d.rule.clone());
                    }
                }
                Ok(Decision {
                    rule: rules.join("; "),
                    ..decisions.swap_remove(0)
                })
            }
            Permission::Read | Permission::Write => {
                whole(resource)?;
                Ok(self.check_path(permission, &normalize(&cwd.join(resource))))
            }
            Permission::Module => {
                // Decided by what no policy file holds: the run's own module root (the main
                // script's folder) or the host's resolver.
                let rule = text(record, "rule");
                if rule == Some(Policy::MAIN_FOLDER_RULE)
                    || rule == Some(crate::loader::HOST_RESOLVER_RULE)
                {
                    return Err(NotReplayed::NotDecided);
                }
                whole(resource)?;
                Ok(self.check_module(&normalize(&cwd.join(resource))))
            }
            Permission::Net => {
                let Some(host) = text(record, "host") else {
                    return Err(NotReplayed::Cannot(
                        "a fetch recorded without its \"host\" and \"port\" fields (a log \
                         written by an older v8box): not replayed"
                            .into(),
                    ));
                };
                whole(host)?;
                let port = match record.get("port") {
                    None | Some(Value::Null) => None,
                    Some(p) => match p.as_u64().and_then(|p| u16::try_from(p).ok()) {
                        Some(p) => Some(p),
                        None => return Err(NotReplayed::Cannot(format!("port {p} is not a port"))),
                    },
                };
                let target = NetTarget {
                    host: host.to_string(),
                    port,
                };
                Ok(self.check_net(&target))
            }
            Permission::Env | Permission::Host => {
                whole(resource)?;
                Ok(self.check_name(permission, resource))
            }
            Permission::Stdin => Ok(self.check_stdin()),
        }
    }
}
