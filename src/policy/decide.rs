//! Deciding a recorded or hypothetical call — an operation name and a resource as the audit log
//! spells them — against a policy: what `v8box policy explain` and `policy test` use.

use std::path::Path;

use super::{Decision, NetTarget, Permission, Policy};
use crate::loader::normalize;

/// The permission an operation needs: `Ok(None)` for operations every script may use.
pub fn permission_of(op: &str) -> Result<Option<Permission>, String> {
    Ok(Some(match op {
        "fs.readFile" | "fs.readDir" | "fs.stat" | "read" => Permission::Read,
        "fs.writeFile" | "fs.remove" | "fs.mkdir" | "fs.rename" | "write" => Permission::Write,
        "net.fetch" | "net" => Permission::Net,
        "env.get" | "env" => Permission::Env,
        "host.send" | "host.listen" | "host.message" | "host" => Permission::Host,
        "module.load" | "module" => Permission::Module,
        "now" | "randomBytes" | "sleep" | "exit" => return Ok(None),
        other => {
            return Err(format!(
                "unknown operation {other:?}; expected one of: {}, or read, write, net, env, host, module",
                crate::ops::OP_NAMES.join(", ")
            ))
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
            Permission::Read | Permission::Write => {
                // A rename is recorded as "from -> to"; both ends need the grant.
                let mut decision = None;
                for path in resource.split(" -> ") {
                    let d = self.check_path(permission, &normalize(&cwd.join(path)));
                    if !d.allowed {
                        return Ok(d);
                    }
                    decision.get_or_insert(d);
                }
                decision.unwrap_or_else(Decision::deny)
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
        })
    }
}
