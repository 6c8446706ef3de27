//! `--isolation=thread`: the CLI confines its whole process with Landlock to what the policy
//! grants — read grants and module roots for reading, write grants for writing, the audit log,
//! the TCP ports of the network grants — plus `PR_SET_NO_NEW_PRIVS`. It is the second wall
//! behind the policy: code that takes over V8 in this process still cannot open an ungranted
//! file. Landlock restricts the calling thread and the threads it starts afterwards, so the
//! CLI calls this before it starts any thread (V8's platform, the audit writer, the I/O pool).
//!
//! Where Landlock's unit is coarser than the policy's, the rule is wider than the grant, never
//! narrower (the policy still decides each call): a written file's folder may create, write
//! and remove files (writes replace a file through a temporary file beside it), a grant of a
//! path that does not exist yet covers its nearest existing folder, and a module root (the
//! script's folder by default) is readable.

use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};

use crate::policy::{Permission, Policy, Target};

const ABI_USED: ABI = ABI::V5;

/// The files and ports a confined process keeps.
#[derive(Debug, Default, Clone)]
pub struct Confinement {
    /// Readable, with everything beneath.
    pub read: Vec<PathBuf>,
    /// Writable (and readable), with everything beneath.
    pub write: Vec<PathBuf>,
    /// The TCP ports it may connect to; `None`: any (a network grant without a port).
    pub connect: Option<Vec<u16>>,
}

/// What a process that resolves names needs to read (glibc's resolver reads these on each
/// lookup).
const RESOLVER_FILES: [&str; 5] = [
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
];

impl Confinement {
    /// What a run under `policy` needs, writing its audit log to `audit` (which must exist).
    pub fn for_policy(policy: &Policy, audit: Option<&Path>) -> Confinement {
        let mut c = Confinement {
            // The watchdog's measure of the process's memory.
            read: vec![PathBuf::from("/proc/self/statm")],
            write: Vec::new(),
            connect: Some(Vec::new()),
        };
        let mut net = false;
        for grant in &policy.grants {
            let path = match &grant.target {
                Target::All => Some(PathBuf::from("/")),
                Target::Path(p) => Some(p.clone()),
                _ => None,
            };
            match (grant.permission, path) {
                (Permission::Read | Permission::Module, Some(p)) => c.read.push(p),
                (Permission::Write, Some(p)) => c.write.push(p),
                (Permission::Net, _) => {
                    net = true;
                    match &grant.target {
                        Target::Net(t) => match (t.port, c.connect.as_mut()) {
                            (Some(port), Some(ports)) => ports.push(port),
                            (None, _) => c.connect = None,
                            _ => {}
                        },
                        _ => c.connect = None,
                    }
                }
                _ => {}
            }
        }
        if let (true, Some(ports)) = (net, c.connect.as_mut()) {
            // A grant of `host:443` is reached by `https://host`; a fetch names its port or
            // gets its scheme's, and both are checked against the grants.
            ports.sort_unstable();
            ports.dedup();
        }
        if net {
            c.allow_name_lookups();
        }
        if let Some(log) = audit {
            c.write
                .push(std::path::absolute(log).unwrap_or_else(|_| log.to_path_buf()));
        }
        c
    }
}

impl Confinement {
    /// Lets the process resolve host names (glibc's resolver files), for a network grant or
    /// an OTLP collector named by its host.
    pub fn allow_name_lookups(&mut self) {
        for f in RESOLVER_FILES.iter().map(PathBuf::from) {
            if f.exists() && !self.read.contains(&f) {
                self.read.push(f);
            }
        }
    }
}

/// The nearest existing path at or above `p`.
fn existing(p: &Path) -> Option<&Path> {
    p.ancestors().find(|a| a.exists())
}

/// Applies `c` to this process (the calling thread and every thread started after it) and
/// sets `PR_SET_NO_NEW_PRIVS`. Returns warnings (a kernel without Landlock, an older ABI);
/// an error when the restriction failed outright.
pub fn confine_process(c: &Confinement) -> Result<Vec<String>, String> {
    let abi = ABI_USED;
    let mut warnings = Vec::new();
    let fail = |e: &dyn std::fmt::Display| format!("Landlock: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| fail(&e))?;
    if c.connect.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| fail(&e))?;
    } else {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp)
            .map_err(|e| fail(&e))?;
    }
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    for p in &c.read {
        if let Some(p) = existing(p) {
            rules.push((p, AccessFs::from_read(abi)));
        }
    }
    for p in &c.write {
        let Some(found) = existing(p) else { continue };
        rules.push((found, AccessFs::from_all(abi)));
        if !found.is_dir() {
            // A write replaces the file through a temporary file beside it, which is made,
            // written and renamed over it in the file's folder.
            if let Some(folder) = found.parent() {
                rules.push((
                    folder,
                    AccessFs::MakeReg
                        | AccessFs::RemoveFile
                        | AccessFs::ReadDir
                        | AccessFs::WriteFile
                        | AccessFs::Truncate,
                ));
            }
        }
    }
    let mut created = ruleset.create().map_err(|e| fail(&e))?;
    for (path, access) in rules {
        // A pipe or a socket (a log on `/dev/stderr`) is no place in the file hierarchy that
        // a rule could name; Landlock does not keep a process from reopening it.
        if std::fs::metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_fifo() || m.file_type().is_socket()
        }) {
            continue;
        }
        let fd = PathFd::new(path).map_err(|e| fail(&e))?;
        let access = if path.is_dir() {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| fail(&e))?;
    }
    if let Some(ports) = &c.connect {
        for &port in ports {
            created = created
                .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                .map_err(|e| fail(&e))?;
        }
    }
    let status = created.restrict_self().map_err(|e| fail(&e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => {}
        RulesetStatus::PartiallyEnforced => warnings.push(
            "this kernel's Landlock enforces only part of the process's ruleset (an older ABI)"
                .to_string(),
        ),
        RulesetStatus::NotEnforced => warnings.push(
            "this kernel has no Landlock: --isolation=thread runs without the kernel's file \
             confinement (the policy still decides every call)"
                .to_string(),
        ),
    }
    if !status.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    }
    Ok(warnings)
}
