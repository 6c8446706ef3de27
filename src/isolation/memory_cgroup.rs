//! A jailed worker's memory as a kernel limit: a memory cgroup of its own, made beneath the
//! broker's own cgroup where that is delegated to the broker (its cgroup file system writable:
//! cgroup v1's memory controller, or v2 with `memory` in the parent's `subtree_control`).
//!
//! A worker is moved in at the start of its first run with a `--max-heap` (a pool's worker, which
//! waits for a job, as soon as it is spawned); a run without one has no limit to set, and making
//! and removing a cgroup costs milliseconds each, serialized by the kernel. At each run's start
//! the limit is set to what the worker uses then plus twice the run's `--max-heap` plus
//! `SLACK`: the point at which the broker's watchdog gives up on a run and kills its worker
//! (`src/watchdog.rs`), so a script gets no further than that even between the watchdog's
//! looks, whatever it allocates in one builtin.
//! At the limit the kernel kills the worker, and the run ends for its heap limit. Where no
//! cgroup can be made (not delegated, read-only), the watchdog alone bounds the worker, and
//! the run's `run.start` record has no `isolation.memory_limit_bytes`.
//!
//! The cgroup is removed once its process has been reaped, or, when the broker ended first, by
//! the next broker that makes one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Beyond twice the heap limit: the allocator's kept blocks, V8's code and the channel.
pub const SLACK: u64 = 32 << 20;

/// The name of a worker's cgroup, before its process id.
const PREFIX: &str = "v8box-worker-";

/// Whether workers started from this process get a memory cgroup (a probe one is made and
/// removed).
pub fn available() -> bool {
    let Some((parent, _)) = own_memory_cgroup() else {
        return false;
    };
    let probe = parent.join(format!("v8box-probe-{}", std::process::id()));
    let made = fs::create_dir(&probe).is_ok();
    let _ = fs::remove_dir(&probe);
    made
}

/// Removes the cgroups of earlier workers that are gone: a CLI process ends before the thread
/// that reaps its worker (a process with a 1 TiB reservation takes a while to tear down) could
/// remove the worker's cgroup. One whose worker process still runs is left alone (another
/// broker may be about to move it in); one whose worker is a zombie (its broker ended, and
/// whoever inherited it has not reaped it yet) is empty and goes; one that still holds a
/// process cannot be removed.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if ended(pid) {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// Whether process `pid` has ended: no such process, or one that has exited and waits to be
/// reaped (state `Z` or `X` in `/proc/PID/stat`, after the parenthesized command name).
fn ended(pid: &str) -> bool {
    match fs::read_to_string(Path::new("/proc").join(pid).join("stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
        Err(_) => true,
    }
}

pub struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemoryCgroup {
    /// A new memory cgroup holding process `pid`, or `None` where this process cannot make one.
    pub fn create(pid: u32) -> Option<MemoryCgroup> {
        let (parent, v2) = own_memory_cgroup()?;
        remove_stale(&parent);
        let dir = parent.join(format!("{PREFIX}{pid}"));
        if let Err(e) = fs::create_dir(&dir) {
            // Left by an earlier process with this id (ids are reused) whose broker ended
            // first: `pid` is this broker's own child, so no other broker is about to use it.
            if e.kind() != io::ErrorKind::AlreadyExists {
                return None;
            }
            fs::remove_dir(&dir).ok()?;
            fs::create_dir(&dir).ok()?;
        }
        let cgroup = MemoryCgroup { dir, v2 };
        // v2 without the memory controller for children: the directory has no limit file.
        if !cgroup.file(cgroup.limit_file()).is_file() {
            return None;
        }
        fs::write(cgroup.file("cgroup.procs"), pid.to_string()).ok()?;
        Some(cgroup)
    }

    /// Lets its process's memory grow by at most `growth` bytes from what it uses now (`None`:
    /// no limit). The value for the run's start record: the limit in bytes.
    pub fn limit_growth(&self, growth: Option<u64>) -> io::Result<Option<u64>> {
        let limit = match growth {
            Some(g) => Some(self.usage()?.saturating_add(g)),
            None => None,
        };
        let value = match (limit, self.v2) {
            (Some(bytes), _) => bytes.to_string(),
            (None, true) => "max".to_string(),
            (None, false) => "-1".to_string(),
        };
        fs::write(self.file(self.limit_file()), value)?;
        Ok(limit)
    }

    /// Whether the kernel killed a process of this cgroup for its limit.
    pub fn oom_killed(&self) -> bool {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        fs::read_to_string(self.file(file)).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix("oom_kill "))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
    }

    fn usage(&self) -> io::Result<u64> {
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        fs::read_to_string(self.file(file))?
            .trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn limit_file(&self) -> &'static str {
        if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for MemoryCgroup {
    /// Only once its process is reaped (an rmdir of a cgroup with a process fails).
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

/// This process's memory cgroup directory, and whether it is cgroup v2: v1's memory hierarchy
/// where mounted, else the v2 one.
fn own_memory_cgroup() -> Option<(PathBuf, bool)> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v2_path = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            return Some((mounted(&mounts, path, false)?, false));
        }
        if controllers.is_empty() {
            v2_path = Some(path.to_string());
        }
    }
    Some((mounted(&mounts, &v2_path?, true)?, true))
}

/// Where the cgroup `path` is in the file system: beneath the mount of its hierarchy (cgroup
/// v1 with the memory controller, or cgroup2), whose own root it is relative to.
fn mounted(mountinfo: &str, path: &str, v2: bool) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        // "id parent major:minor root mount-point options ... - fstype source super-options"
        let Some((fields, tail)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = fields.split(' ').collect();
        let tail: Vec<&str> = tail.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (fields.get(3), fields.get(4), tail.first())
        else {
            continue;
        };
        let ours = if v2 {
            *fstype == "cgroup2"
        } else {
            *fstype == "cgroup"
                && tail
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "memory"))
        };
        if !ours {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(path)
            .trim_start_matches('/');
        let dir = Path::new(point).join(relative);
        if dir.is_dir() {
            return Some(dir);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A child that waits on its stdin until it is closed.
    fn waiting_child() -> std::process::Child {
        Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// A child that has exited and is not reaped yet.
    fn zombie() -> std::process::Child {
        let child = Command::new("true").spawn().unwrap();
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::waitid(
            rustix::process::WaitId::Pid(pid),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
        )
        .unwrap();
        child
    }

    #[test]
    fn a_zombie_or_a_reaped_process_has_ended_a_running_one_has_not() {
        assert!(!ended(&std::process::id().to_string()));
        let mut child = zombie();
        assert!(ended(&child.id().to_string()));
        child.wait().unwrap();
        assert!(ended(&child.id().to_string()));
    }

    #[test]
    fn a_new_cgroup_replaces_one_left_for_its_process_id_and_sweeps_a_zombies() {
        if !available() {
            eprintln!("no memory cgroup can be made here");
            return;
        }
        let (parent, _) = own_memory_cgroup().unwrap();
        let mut dead = zombie();
        let dead_dir = parent.join(format!("{PREFIX}{}", dead.id()));
        fs::create_dir(&dead_dir).unwrap();
        let mut child = waiting_child();
        // Left by an earlier process that had this id.
        let dir = parent.join(format!("{PREFIX}{}", child.id()));
        fs::create_dir(&dir).unwrap();
        let cgroup = MemoryCgroup::create(child.id()).expect("a cgroup for the child");
        let procs = fs::read_to_string(cgroup.file("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), child.id().to_string());
        assert!(!dead_dir.exists(), "the zombie's cgroup is swept");
        drop(child.stdin.take());
        child.wait().unwrap();
        dead.wait().unwrap();
        drop(cgroup);
        assert!(!dir.exists());
    }
}
