//! Deno-style command-line grants: `--allow-read[=PATHS]`, `--allow-write[=PATHS]`,
//! `--allow-net[=HOSTS]`, `--allow-env[=NAMES]`, `--allow-host[=CHANNELS]`, and
//! `--module-root=DIRS`. A flag with no value grants everything of its kind; values are
//! comma-separated.

use std::path::Path;

use super::{Grant, NetTarget, Permission, Policy, PolicyError, Source, Target};
use crate::loader::normalize;

/// The grant flags of one command line: `None` = flag absent, `Some(vec![])` = flag without a
/// value (everything), `Some(list)` = those items.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--allow-read`: paths.
    pub read: Option<Vec<String>>,
    /// `--allow-write`: paths.
    pub write: Option<Vec<String>>,
    /// `--allow-net`: hosts, optionally with ports.
    pub net: Option<Vec<String>>,
    /// `--allow-env`: environment variable names.
    pub env: Option<Vec<String>>,
    /// `--allow-host`: host channel names.
    pub host: Option<Vec<String>>,
    /// `--module-root`: folders whose modules load without a read grant.
    pub module: Option<Vec<String>>,
}

impl Flags {
    fn get(&self, p: Permission) -> &Option<Vec<String>> {
        match p {
            Permission::Read => &self.read,
            Permission::Write => &self.write,
            Permission::Net => &self.net,
            Permission::Env => &self.env,
            Permission::Host => &self.host,
            Permission::Module => &self.module,
            // A switch (`--allow-stdin`, `Policy::allow_stdin`), not a list of grants.
            Permission::Stdin => &None,
        }
    }
}

/// Makes an absolute, normalized path of `text` (relative to `base`).
pub(crate) fn absolute(text: &str, base: &Path) -> std::path::PathBuf {
    normalize(&base.join(text))
}

pub(crate) fn parse_target(
    permission: Permission,
    text: &str,
    base: &Path,
) -> Result<Target, String> {
    if text.is_empty() {
        return Err("empty value".into());
    }
    Ok(match permission {
        Permission::Read | Permission::Write | Permission::Module => {
            if text.contains('\0') {
                return Err("a path may not contain NUL".into());
            }
            Target::Path(absolute(text, base))
        }
        Permission::Net => Target::Net(NetTarget::parse(text)?),
        Permission::Env => {
            if text.contains('=') || text.contains('\0') {
                return Err(format!("invalid variable name {text:?}"));
            }
            Target::Name(text.to_string())
        }
        Permission::Host => Target::Name(text.to_string()),
        Permission::Stdin => {
            return Err(
                "stdin is allowed whole (--allow-stdin, [stdin] allow = true), not by name".into(),
            )
        }
    })
}

pub(super) fn apply(policy: &mut Policy, flags: &Flags, cwd: &Path) -> Result<(), PolicyError> {
    for permission in Permission::ALL {
        let Some(values) = flags.get(permission) else {
            continue;
        };
        if values.is_empty() {
            policy.grants.push(Grant {
                permission,
                target: Target::All,
                source: Source::Flag(permission.flag().to_string()),
            });
            continue;
        }
        for value in values {
            let target = parse_target(permission, value, cwd)
                .map_err(|m| PolicyError::new(format!("{}={value}: {m}", permission.flag())))?;
            policy.grants.push(Grant {
                permission,
                target,
                source: Source::Flag(format!("{}={value}", permission.flag())),
            });
        }
    }
    Ok(())
}
