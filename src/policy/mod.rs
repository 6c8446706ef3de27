//! The policy: what a script may do. Default deny — a policy with no grants allows nothing but
//! the always-allowed operations (clock, randomness, timers, console, exit).
//!
//! A policy comes from a TOML file (`file.rs`, documented in docs/POLICY.md) and from
//! Deno-style command-line flags (`flags.rs`) that add grants to it. Every grant remembers
//! where it came from, so that a decision can name the rule that made it.

mod decide;
mod file;
mod flags;
mod net;
mod rule;
mod suggest;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use decide::{permission_of, NotReplayed};
pub use file::PolicyError;
pub use flags::Flags;
pub use net::{non_public, NetTarget};
pub use rule::Rule;
pub use suggest::suggest;

/// The kinds of access a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Reading files and folders (`--allow-read`, `[fs] read`).
    Read,
    /// Writing files and folders (`--allow-write`, `[fs] write`).
    Write,
    /// Network access to hosts (`--allow-net`, `[net] allow`).
    Net,
    /// Reading environment variables (`--allow-env`, `[env] allow`).
    Env,
    /// Using host channels (`--allow-host`, `[host] channels`).
    Host,
    /// Loading ES modules from a folder, the module root (`--module-root`, `[modules] root`):
    /// imports beneath it load without a read grant (and the script cannot read them with
    /// `sys.readFile`). Imports elsewhere need a read grant.
    Module,
    /// Reading the process's stdin (`--allow-stdin`, `[stdin] allow = true`): granted whole or
    /// not at all (`Policy::allow_stdin`), never by a grant of `Policy::grants`.
    Stdin,
}

impl Permission {
    /// The command-line flag that grants it.
    pub fn flag(self) -> &'static str {
        match self {
            Permission::Read => "--allow-read",
            Permission::Write => "--allow-write",
            Permission::Net => "--allow-net",
            Permission::Env => "--allow-env",
            Permission::Host => "--allow-host",
            Permission::Module => "--module-root",
            Permission::Stdin => "--allow-stdin",
        }
    }

    /// The policy-file key that grants it.
    pub fn policy_key(self) -> &'static str {
        match self {
            Permission::Read => "[fs] read",
            Permission::Write => "[fs] write",
            Permission::Net => "[net] allow",
            Permission::Env => "[env] allow",
            Permission::Host => "[host] channels",
            Permission::Module => "[modules] root",
            Permission::Stdin => "[stdin] allow",
        }
    }

    /// Every permission, in declaration order.
    pub const ALL: [Permission; 7] = [
        Permission::Read,
        Permission::Write,
        Permission::Net,
        Permission::Env,
        Permission::Host,
        Permission::Module,
        Permission::Stdin,
    ];
}

/// Where a grant came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag, as written (`--allow-read=./data`).
    Flag(String),
    /// A line of a policy file.
    File {
        /// The policy file's name, as given when it was loaded.
        path: String,
        /// The 1-based line of the grant.
        line: usize,
        /// The key that made the grant (`[fs] read`, `[net] allow`, ...).
        key: &'static str,
    },
    /// Built in code by a host application.
    Api(String),
    /// Given without being asked for: the main script's folder as its module root.
    Implied(String),
}

impl Source {
    /// The text `Display` gives, made for every allowed call: a flag's text (every grant the
    /// CLI's flags make) is copied as it is, without the formatting machinery (which grew the
    /// string as it went).
    pub fn rule(&self) -> String {
        match self {
            Source::Flag(text) => text.clone(),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(text) => f.write_str(text),
            Source::File { path, line, key } => write!(f, "{path}:{line} {key}"),
            Source::Api(text) => write!(f, "api: {text}"),
            Source::Implied(text) => f.write_str(text),
        }
    }
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Everything of its kind (`--allow-read` with no value, or `read = true`).
    All,
    /// A file or folder (absolute, normalized); a folder covers everything below it.
    Path(PathBuf),
    /// A host, optionally with a port.
    Net(NetTarget),
    /// An environment variable or channel name.
    Name(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("*"),
            Target::Path(p) => write!(f, "{}", p.display()),
            Target::Net(n) => write!(f, "{n}"),
            Target::Name(n) => f.write_str(n),
        }
    }
}

/// One permission granted for one target, with where the grant came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The kind of access granted.
    pub permission: Permission,
    /// What the access is granted to.
    pub target: Target,
    /// The flag, policy-file line or API call that made the grant.
    pub source: Source,
}

/// Limits on a run. `None` means the built-in default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wall-clock time limit for the run, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// V8 heap limit, in MiB.
    pub max_heap_mb: Option<u64>,
    /// Largest protobuf message passed between script and host, in bytes.
    pub max_message_bytes: Option<usize>,
    /// Most calls (file, network) that may wait for an answer at once.
    pub max_calls_in_flight: Option<usize>,
    /// Most timers (and sleeps) armed at once.
    pub max_timers: Option<usize>,
}

impl Limits {
    /// The largest `max_heap_mb`: all isolates of a process share V8's pointer-compression
    /// cage of 4 GiB, so no heap can be larger.
    pub const MAX_HEAP_MB: u64 = 4096;
    /// The longest `timeout_ms`: 30 days (a larger deadline could not be represented).
    pub const MAX_TIMEOUT_MS: u64 = 30 * 24 * 3600 * 1000;

    /// Checks a heap limit in MiB: 1 to `MAX_HEAP_MB` (0 would stop every script before it
    /// starts, and larger values than the cage cannot be honoured).
    pub fn check_max_heap_mb(mb: u64) -> Result<u64, String> {
        if (1..=Self::MAX_HEAP_MB).contains(&mb) {
            return Ok(mb);
        }
        Err(format!(
            "{mb} is out of range: the heap limit is 1 to {} MiB",
            Self::MAX_HEAP_MB
        ))
    }

    /// Checks a time limit in milliseconds: at most `MAX_TIMEOUT_MS`.
    pub fn check_timeout_ms(ms: u64) -> Result<u64, String> {
        if ms <= Self::MAX_TIMEOUT_MS {
            return Ok(ms);
        }
        Err(format!(
            "{ms} is out of range: the time limit is 0 to {} ms (30 days)",
            Self::MAX_TIMEOUT_MS
        ))
    }

    /// The default for `max_message_bytes`: 64 MiB.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
    /// The default for `max_calls_in_flight`.
    pub const DEFAULT_MAX_CALLS_IN_FLIGHT: usize = 4096;

    /// The message size limit in effect (the set value, or the default).
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
            .unwrap_or(Self::DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// The default for `max_timers`.
    pub const DEFAULT_MAX_TIMERS: usize = 100_000;

    /// The timer limit in effect (the set value, or the default).
    pub fn max_timers(&self) -> usize {
        self.max_timers.unwrap_or(Self::DEFAULT_MAX_TIMERS)
    }

    /// The in-flight call limit in effect (the set value, or the default).
    pub fn max_calls_in_flight(&self) -> usize {
        self.max_calls_in_flight
            .unwrap_or(Self::DEFAULT_MAX_CALLS_IN_FLIGHT)
    }
}

/// A per-operation quota: at most `calls` calls and `bytes` bytes moved, per run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// Most calls allowed per run; `None` for no limit.
    pub calls: Option<u64>,
    /// Most bytes moved per run; `None` for no limit.
    pub bytes: Option<u64>,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Every grant, in the order added; a request is denied unless one covers it.
    pub grants: Vec<Grant>,
    /// Limits on the run.
    pub limits: Limits,
    /// Per-operation quotas, keyed by operation name (`fs.readFile`, `net.fetch`, ... see `ops::table`).
    pub quotas: BTreeMap<String, Quota>,
    /// Whether code generation from strings (`eval`, `new Function`) and WebAssembly work.
    pub allow_eval: bool,
    /// Whether the script may read the process's stdin (`sys.stdin`: `--allow-stdin`,
    /// `[stdin] allow = true`).
    pub allow_stdin: bool,
    /// The run's import map (`--import-map`, `[modules] import_map`), read when the policy
    /// was made.
    pub import_map: Option<crate::loader::ImportMap>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::deny_all()
    }
}

/// The verdict on one request, with the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The grant's source for an allow; `default deny` for a deny.
    pub rule: String,
    /// Index of the deciding grant in `Policy::grants`.
    pub grant: Option<usize>,
}

impl Decision {
    /// A denial by default deny (no grant matched).
    pub fn deny() -> Decision {
        Decision {
            allowed: false,
            rule: Decision::DEFAULT_DENY.into(),
            grant: None,
        }
    }

    /// The rule of `Decision::deny`.
    pub const DEFAULT_DENY: &'static str = "default deny";

    /// For a call refused before the policy was asked: it names nothing that could exist (an
    /// empty path, one over `PATH_MAX`, a URL that does not parse). Policy replays skip it.
    pub fn invalid() -> Decision {
        Decision {
            allowed: false,
            rule: Decision::INVALID.into(),
            grant: None,
        }
    }

    /// The rule of `Decision::invalid`.
    pub const INVALID: &'static str = "invalid argument";

    /// For operations every script may use.
    pub fn always() -> Decision {
        Decision {
            allowed: true,
            rule: Decision::ALWAYS.into(),
            grant: None,
        }
    }

    /// The rule of `Decision::always`.
    pub const ALWAYS: &'static str = "always allowed";
}

impl Policy {
    /// Nothing granted.
    pub fn deny_all() -> Policy {
        Policy {
            grants: Vec::new(),
            limits: Limits::default(),
            quotas: BTreeMap::new(),
            allow_eval: true,
            allow_stdin: false,
            import_map: None,
        }
    }

    /// Reads a TOML policy file; relative paths in it resolve against its folder.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        file::from_file(path)
    }

    /// Parses TOML policy text; relative paths resolve against `base`. `name` labels rules.
    pub fn from_toml(text: &str, name: &str, base: &Path) -> Result<Policy, PolicyError> {
        file::parse(text, name, base)
    }

    /// Adds the grants of command-line flags (relative paths against `cwd`).
    pub fn add_flags(&mut self, flags: &Flags, cwd: &Path) -> Result<(), PolicyError> {
        flags::apply(self, flags, cwd)
    }

    /// Adds a grant made in code by a host application.
    pub fn grant(
        &mut self,
        permission: Permission,
        target: &str,
        cwd: &Path,
    ) -> Result<(), PolicyError> {
        let target = flags::parse_target(permission, target, cwd)
            .map_err(|m| PolicyError::new(format!("{}: {m}", permission.flag())))?;
        self.grants.push(Grant {
            permission,
            source: Source::Api(format!("{} {}", permission.flag(), target)),
            target,
        });
        Ok(())
    }

    /// The rule of the module root a run gets when none is set: the main script's folder.
    pub const MAIN_FOLDER_RULE: &'static str = "module root: the main script's folder";

    /// Makes the folder of the main module `main` (relative to `cwd`) the module root, unless
    /// the policy has one (`--module-root`, `[modules] root`, `Permission::Module`).
    pub fn add_main_module_root(&mut self, main: &Path, cwd: &Path) {
        if self
            .grants
            .iter()
            .any(|g| g.permission == Permission::Module)
        {
            return;
        }
        let main = crate::loader::normalize(&cwd.join(main));
        let folder = main.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.grants.push(Grant {
            permission: Permission::Module,
            target: Target::Path(folder),
            source: Source::Implied(Self::MAIN_FOLDER_RULE.to_string()),
        });
    }

    /// Decides a file access; `path` must be absolute and normalized. The most specific
    /// matching grant decides (so the rule named is the narrowest that applies).
    pub fn check_path(&self, permission: Permission, path: &Path) -> Decision {
        self.decided(self.path_grant(permission, path))
    }

    /// The grant that decides `check_path`, if any: it without making its rule's text.
    pub fn path_grant(&self, permission: Permission, path: &Path) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, g) in self.grants.iter().enumerate() {
            if g.permission != permission {
                continue;
            }
            let depth = match &g.target {
                Target::All => 0,
                Target::Path(p) if path.starts_with(p) => p.components().count(),
                _ => continue,
            };
            if best.map_or(true, |(_, d)| depth > d) {
                best = Some((i, depth));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Decides loading the module file `path` (absolute, normalized): a module root holding it
    /// allows it, else a read grant does (the narrowest of either kind names the rule).
    pub fn check_module(&self, path: &Path) -> Decision {
        let root = self.check_path(Permission::Module, path);
        if root.allowed {
            return root;
        }
        self.check_path(Permission::Read, path)
    }

    /// How to allow loading the module file `path`: a read grant of it, or a module root.
    pub fn module_hint(path: &Path) -> String {
        let folder = path.parent().unwrap_or(Path::new("/"));
        format!(
            "allow with --allow-read={} or [fs] read, or a module root that holds it: --module-root={} or [modules] root",
            path.display(),
            folder.display()
        )
    }

    /// Decides a network access to `target`; the first matching `Net` grant decides. A grant of
    /// every host covers public ones only: `localhost` and an IP address that is not public
    /// (`NetTarget::not_public`) need a grant that names them.
    pub fn check_net(&self, target: &NetTarget) -> Decision {
        self.decided(self.net_grant(target))
    }

    /// The grant that decides `check_net`, if any: it without making its rule's text.
    pub fn net_grant(&self, target: &NetTarget) -> Option<usize> {
        let public = target.not_public().is_none();
        self.grants.iter().position(|g| {
            g.permission == Permission::Net
                && match &g.target {
                    Target::All => public,
                    Target::Net(allowed) => allowed.covers(target),
                    _ => false,
                }
        })
    }

    /// Decides a connection to `addr`, an address that a fetch's host (allowed by `check_net`)
    /// led to; `own`: whether it is one of this host's addresses. `None` when it needs no grant
    /// of its own: a public address that is not this host's. Otherwise the decision — only a
    /// grant that names the address itself (and covers the port) allows it — and why the
    /// address needed one (`loopback, 127.0.0.0/8`, `an address of this host`).
    pub fn check_address(&self, addr: SocketAddr, own: bool) -> Option<(Decision, String)> {
        let why = match net::non_public(addr.ip()) {
            Some(range) => format!("not a public address ({range})"),
            None if own => "an address of this host".to_string(),
            None => return None,
        };
        let target = NetTarget::of_address(addr);
        let found = self.grants.iter().position(|g| {
            g.permission == Permission::Net
                && matches!(&g.target, Target::Net(allowed) if allowed.covers(&target))
        });
        Some((self.decided(found), why))
    }

    /// The rule of a grant of every host, if the policy has one (for denials to explain that it
    /// covers public hosts only).
    pub fn all_hosts_rule(&self) -> Option<String> {
        self.grants
            .iter()
            .find(|g| g.permission == Permission::Net && g.target == Target::All)
            .map(|g| g.source.rule())
    }

    /// The rule recorded for an allowed `stdin.read`.
    pub const STDIN_RULE: &'static str = "stdin: --allow-stdin or [stdin] allow";

    /// Decides reading the process's stdin (`--allow-stdin`, `[stdin] allow = true`).
    pub fn check_stdin(&self) -> Decision {
        if self.allow_stdin {
            Decision {
                allowed: true,
                rule: Self::STDIN_RULE.into(),
                grant: None,
            }
        } else {
            Decision::deny()
        }
    }

    /// Decides access to an env variable or host channel `name`. Names match exactly (no
    /// patterns). Stdin has one name, `stdin` (`check_stdin`).
    pub fn check_name(&self, permission: Permission, name: &str) -> Decision {
        if permission == Permission::Stdin {
            return self.check_stdin();
        }
        self.decided(self.name_grant(permission, name))
    }

    /// The grant that allows `name` under `permission` (not `Stdin`), if any: `check_name`
    /// without making its rule's text, for a caller that keeps no record of it.
    pub fn name_grant(&self, permission: Permission, name: &str) -> Option<usize> {
        debug_assert!(permission != Permission::Stdin);
        self.grants.iter().position(|g| {
            g.permission == permission
                && match &g.target {
                    Target::All => true,
                    Target::Name(n) => n == name,
                    _ => false,
                }
        })
    }

    fn decided(&self, grant: Option<usize>) -> Decision {
        match grant {
            Some(i) => Decision {
                allowed: true,
                rule: self.grants[i].source.rule(),
                grant: Some(i),
            },
            None => Decision::deny(),
        }
    }

    /// How to allow `resource`: `allow with --allow-read=/etc/passwd or [fs] read`.
    /// A URL's network grant is its HOST[:PORT] (the form `--allow-net` accepts).
    pub fn hint(permission: Permission, resource: &str) -> String {
        if permission == Permission::Stdin {
            // Granted whole: the flag takes no value.
            return "allow with --allow-stdin or [stdin] allow = true".into();
        }
        let granted = match permission {
            Permission::Net => url::Url::parse(resource)
                .ok()
                .and_then(|u| net::NetTarget::from_url(&u).ok())
                .map(|t| t.to_string())
                .unwrap_or_else(|| resource.to_string()),
            _ => resource.to_string(),
        };
        format!(
            "allow with {}={granted} or {}",
            permission.flag(),
            permission.policy_key()
        )
    }

    /// The policy in canonical TOML (what `v8box policy check` prints); its SHA-256 is the
    /// policy digest recorded in the audit log.
    pub fn normalized(&self) -> String {
        file::normalized(self)
    }

    /// The SHA-256 of `normalized()`, in hex: the policy digest recorded in the audit log.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.normalized().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn a_rule_reads_as_its_source_displays() {
        for source in [
            Source::Flag("--allow-env=HOME".into()),
            Source::Api("env HOME".into()),
            Source::File {
                path: "p.toml".into(),
                line: 3,
                key: "[env] allow",
            },
        ] {
            assert_eq!(source.rule(), source.to_string());
        }
        assert_eq!(Source::Api("x".into()).rule(), "api: x");
    }

    #[test]
    fn non_public_addresses_and_this_hosts_own_need_a_grant_that_names_them() {
        use super::{NetTarget, Permission, Policy};
        let cwd = std::path::Path::new("/");
        let mut policy = Policy::deny_all();
        policy.grant(Permission::Net, "example.com", cwd).unwrap();
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        // A public address that is not this host's needs no grant of its own.
        assert!(policy.check_address(addr("8.8.8.8:80"), false).is_none());
        // This host's own public address does; so does any non-public one.
        let (d, why) = policy.check_address(addr("8.8.8.8:80"), true).unwrap();
        assert!(!d.allowed);
        assert_eq!(why, "an address of this host");
        let (d, why) = policy.check_address(addr("10.1.2.3:80"), false).unwrap();
        assert!(!d.allowed);
        assert_eq!(why, "not a public address (private, 10.0.0.0/8)");
        // Every host granted: still only public hosts, by URL or by address.
        policy.grants.clear();
        policy
            .add_flags(
                &super::Flags {
                    net: Some(vec![]),
                    ..Default::default()
                },
                cwd,
            )
            .unwrap();
        assert!(
            !policy
                .check_address(addr("8.8.8.8:80"), true)
                .unwrap()
                .0
                .allowed
        );
        assert!(
            !policy
                .check_address(addr("127.0.0.1:80"), false)
                .unwrap()
                .0
                .allowed
        );
        let url = |s: &str| NetTarget::from_url(&url::Url::parse(s).unwrap()).unwrap();
        assert!(policy.check_net(&url("http://example.com/")).allowed);
        assert!(policy.check_net(&url("http://8.8.8.8/")).allowed);
        for denied in [
            "http://127.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://[fd00::1]/",
        ] {
            assert!(!policy.check_net(&url(denied)).allowed, "{denied}");
        }
        // A grant of the address itself, with a matching port, reaches it.
        policy.grant(Permission::Net, "8.8.8.8:80", cwd).unwrap();
        policy.grant(Permission::Net, "127.0.0.1", cwd).unwrap();
        let (d, _) = policy.check_address(addr("8.8.8.8:80"), true).unwrap();
        assert_eq!(d.rule, "api: --allow-net 8.8.8.8:80");
        assert!(
            !policy
                .check_address(addr("8.8.8.8:443"), true)
                .unwrap()
                .0
                .allowed
        );
        assert!(
            policy
                .check_address(addr("127.0.0.1:9"), true)
                .unwrap()
                .0
                .allowed
        );
        assert!(
            !policy
                .check_address(addr("127.0.0.2:9"), false)
                .unwrap()
                .0
                .allowed
        );
        assert!(
            !policy
                .check_address(addr("[::ffff:127.0.0.1]:9"), false)
                .unwrap()
                .0
                .allowed
        );
        assert!(policy.check_net(&url("http://0x7f000001:9/")).allowed);
    }
}
