//! A jailed worker's memory as a kernel limit: a memory cgroup of its own, made beneath the
//! broker's own cgroup where that is delegated to the broker (its cgroup file system writable:
//! cgroup v1's memory controller, or v2 with `memory` in the parent's `subtree_control`).
//!
//! The worker is moved in as soon as it is spawned; at each run's start its limit is set to what
//! it uses then plus twice the run's `--max-heap` plus `SLACK`: the point at which the broker's
//! watchdog gives up on a run and kills its worker (`src/watchdog.rs`), so a script gets no
//! further than that even between the watchdog's looks, whatever it allocates in one builtin.
//! At the limit the kernel kills the worker, and the run ends for its heap limit. Where no
//! cgroup can be made (not delegated, read-only), the watchdog alone bounds the worker, and
//! the run's `run.start` record lists no `memory cgroup` layer.
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
/// remove the worker's cgroup. One whose worker process still exists is left alone (another
/// broker may be about to move it in), and one that still holds a process cannot be removed.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir(entry.path());
        }
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
        fs::create_dir(&dir).ok()?;
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
