//! File operations, confined with `cap-std`.
//!
//! **Where an access is resolved.** Every granted path is located where it really lies (its
//! symlinks resolved once, when the run starts), and every access is resolved *beneath the
//! outermost granted folder that holds it* — of any kind, read or write — by cap-std's
//! kernel-backed resolver (`openat2(RESOLVE_BENEATH)` where available). A grant nested inside
//! another (`--allow-write=w --allow-read=w/in`) is not opened on its own: `w/in` is a name
//! inside `w`, which a script with write access to `w` can rename anything onto, so it is
//! resolved beneath `w` at every access and can lead nowhere outside `w`. `..`, absolute
//! symlinks, symlinks out of that folder and a symlink swapped in during a call fail.
//!
//! **Symlinks inside the grants are followed, then checked.** A symlink whose target stays
//! beneath that outermost folder is followed (symlinks are common inside projects, and the
//! policy already trusts the folder's own layout); then the real path of what was reached —
//! read back from the opened handle (`/proc/self/fd`), so no later rename can change it — is
//! checked against the policy again, for the same permission: a symlink in `w/in` that leads to
//! `w/private` reads `w/private` only if `w/private` may be read. A name-based operation
//! (write, remove, mkdir, rename) opens the folder that holds the name that way and checks the
//! folder's real path with the name. The real path reached is returned in `Done::resolved`
//! when it is not the path asked for, and the audit record names it (`resolved`).
//!
//! **Writes replace files whole.** A write to a regular file (or a new one) goes to a new
//! temporary file in the same folder (`O_EXCL`, a random name), which — when it replaces an
//! existing file — is flushed to disk (`fdatasync`) before it is renamed over the target; on any
//! failure the temporary file is removed and the old file is untouched. See `replace` and
//! `append`.
//!
//! **The audit log is off limits.** No operation may write, remove or rename the run's audit
//! log file, by any name (compared by real path and by device and inode), nor remove or rename
//! a folder that holds it.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_std::ambient_authority;
use cap_std::fs::{
    Dir, File, FileTypeExt, Metadata, MetadataExt, OpenOptions, OpenOptionsExt, Permissions,
    PermissionsExt,
};

use crate::audit::LogFile;
use crate::policy::{Permission, Policy, Target};
use crate::proto::{reply, Bytes, DirEntries, DirEntry, Empty, ErrorCode, FileInfo};

use super::{Done, OpError, Quick};

/// A file grant as the file system knows it.
struct GrantPath {
    permission: Permission,
    /// The granted path as the policy spells it (absolute and normalized).
    spelled: PathBuf,
    /// Where it really lies: `spelled` with its symlinks resolved when the run started (a part
    /// that did not exist then is kept as spelled).
    real: PathBuf,
    /// Index in `FsRoots::anchors` of the outermost granted path that holds it.
    anchor: usize,
}

/// An outermost granted file or folder, opened on first use: every access beneath it is
/// resolved beneath it.
struct Anchor {
    real: PathBuf,
    handle: Mutex<Option<Arc<Handle>>>,
}

enum Handle {
    Dir(Dir),
    /// A grant of one file: its folder, and the only name in it that may be touched.
    File {
        parent: Dir,
        name: OsString,
    },
}

/// The file grants of a policy, located and (on first use) opened; and the audit log's file,
/// which no operation may change.
pub struct FsRoots {
    /// Parallel to `Policy::grants` (`None` for grants that are not paths).
    grants: Vec<Option<GrantPath>>,
    anchors: Vec<Anchor>,
    log: Option<Arc<LogFile>>,
}

/// A path the policy allowed: the grant that allowed it, and where to resolve it.
#[derive(Debug, Clone)]
pub struct Located {
    /// Index of the deciding grant in `Policy::grants`.
    pub grant: usize,
    /// The path relative to its anchor, the outermost granted path that holds it (empty for
    /// the anchor itself).
    pub rel: PathBuf,
    /// The absolute, normalized path asked for, as shown in errors.
    pub abs: PathBuf,
    anchor: usize,
    permission: Permission,
}

/// `path` with every symlink resolved; the part that does not exist (yet) is kept as spelled.
fn real_location(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return missing.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

impl FsRoots {
    /// The file grants of `policy`, located where they really lie; nothing is opened until
    /// first use. `log`: the audit log's file, if the run writes one.
    pub fn new(policy: &Policy, log: Option<Arc<LogFile>>) -> FsRoots {
        let located: Vec<Option<(Permission, PathBuf, PathBuf)>> = policy
            .grants
            .iter()
            .map(|g| match (&g.permission, &g.target) {
                (
                    p @ (Permission::Read | Permission::Write | Permission::Module),
                    Target::Path(path),
                ) => Some((*p, path.clone(), real_location(path))),
                (p @ (Permission::Read | Permission::Write | Permission::Module), Target::All) => {
                    Some((*p, PathBuf::from("/"), PathBuf::from("/")))
                }
                _ => None,
            })
            .collect();
        let mut anchors: Vec<Anchor> = Vec::new();
        let grants = located
            .iter()
            .map(|g| {
                let (permission, spelled, real) = g.clone()?;
                // The outermost granted path (of any kind) that holds this one.
                let outer = located
                    .iter()
                    .flatten()
                    .map(|(_, _, r)| r)
                    .filter(|r| real.starts_with(r))
                    .min_by_key(|r| r.components().count())
                    .expect("a grant holds itself")
                    .clone();
                let anchor = match anchors.iter().position(|a| a.real == outer) {
                    Some(i) => i,
                    None => {
                        anchors.push(Anchor {
                            real: outer,
                            handle: Mutex::new(None),
                        });
                        anchors.len() - 1
                    }
                };
                Some(GrantPath {
                    permission,
                    spelled,
                    real,
                    anchor,
                })
            })
            .collect();
        FsRoots {
            grants,
            anchors,
            log,
        }
    }

    /// Where `abs`, allowed by grant `grant`, is resolved.
    pub fn locate(&self, grant: usize, abs: &Path) -> Located {
        let g = self.grants[grant].as_ref().expect("a path grant");
        let below = abs.strip_prefix(&g.spelled).unwrap_or(Path::new(""));
        let target = g.real.join(below);
        let anchor = &self.anchors[g.anchor];
        let rel = target
            .strip_prefix(&anchor.real)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        Located {
            grant,
            rel,
            abs: abs.to_path_buf(),
            anchor: g.anchor,
            permission: g.permission,
        }
    }

    /// The anchor's handle, opened on first use (with `create_root`, created if missing).
    fn handle(&self, loc: &Located, create_root: bool) -> Result<Arc<Handle>, OpError> {
        let anchor = &self.anchors[loc.anchor];
        let mut slot = anchor.handle.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = &*slot {
            return Ok(h.clone());
        }
        let h = Arc::new(
            open_root(&anchor.real, create_root).map_err(|e| io_error("open", &anchor.real, e))?,
        );
        *slot = Some(h.clone());
        Ok(h)
    }

    /// The anchor's handle and `loc`'s path beneath its folder (`.` for the folder itself).
    fn beneath(&self, loc: &Located, create_root: bool) -> Result<(Arc<Handle>, PathBuf), OpError> {
        let handle = self.handle(loc, create_root)?;
        let path = match &*handle {
            Handle::Dir(_) if loc.rel.as_os_str().is_empty() => PathBuf::from("."),
            Handle::Dir(_) => loc.rel.clone(),
            Handle::File { name, .. } => {
                if !loc.rel.as_os_str().is_empty() {
                    return Err(OpError::new(
                        ErrorCode::NotFound,
                        format!("{}: not a directory", loc.abs.display()),
                    ));
                }
                PathBuf::from(name)
            }
        };
        Ok((handle, path))
    }

    /// The name `path` (beneath the anchor's folder) ends in, with the folder that holds it
    /// opened beneath the anchor and the real path it stands for.
    fn entry_at(
        &self,
        op: &str,
        loc: &Located,
        h: Arc<Handle>,
        path: &Path,
    ) -> Result<Entry, OpError> {
        let name = match path.components().next_back() {
            Some(Component::Normal(name)) => name.to_os_string(),
            _ => {
                return Err(OpError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "{op} \"{}\": the path leads outside the allowed folder (through a symlink or \"..\")",
                        loc.abs.display()
                    ),
                ))
            }
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        let opened = if parent.as_os_str().is_empty() {
            None
        } else {
            Some(
                dir_of(&h)
                    .open_dir(parent)
                    .map_err(|e| io_error(op, &loc.abs, e))?,
            )
        };
        let mut entry = Entry {
            handle: h,
            opened,
            name,
            reached: PathBuf::new(),
        };
        entry.reached = real_path(op, loc, entry.dir())?.join(&entry.name);
        Ok(entry)
    }

    /// `entry_at` for `loc`'s own path; with `follow`, a symlink it ends in is resolved first
    /// (beneath the anchor), so that the entry is the file it leads to.
    fn entry(&self, op: &str, loc: &Located, follow: bool) -> Result<Entry, OpError> {
        let (h, path) = self.beneath(loc, false)?;
        let entry = self.entry_at(op, loc, h.clone(), &path)?;
        if !follow || !is_symlink(entry.dir(), &entry.name) {
            return Ok(entry);
        }
        let resolved = dir_of(&h).canonicalize(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OpError::new(
                ErrorCode::NotFound,
                format!(
                    "{op} \"{}\": a symlink to a file that does not exist",
                    loc.abs.display()
                ),
            ),
            _ => io_error(op, &loc.abs, e),
        })?;
        let entry = self.entry_at(op, loc, h, &resolved)?;
        if is_symlink(entry.dir(), &entry.name) {
            return Err(OpError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "{op} \"{}\": the path changed while it was resolved",
                    loc.abs.display()
                ),
            ));
        }
        Ok(entry)
    }

    /// Opens `loc`'s path beneath its anchor with `options` (following symlinks beneath it);
    /// the file and the real path it reached.
    fn open_reached(
        &self,
        op: &str,
        loc: &Located,
        options: &OpenOptions,
    ) -> Result<Result<(File, PathBuf), io::Error>, OpError> {
        let (h, path) = self.beneath(loc, false)?;
        let file = match dir_of(&h).open_with(&path, options) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let reached = real_path(op, loc, &file)?;
        Ok(Ok((file, reached)))
    }

    /// The innermost grant of `permission` that holds the real path `real`.
    fn grant_for(&self, permission: Permission, real: &Path) -> Option<&GrantPath> {
        self.grants
            .iter()
            .flatten()
            .filter(|g| g.permission == permission && real.starts_with(&g.real))
            .max_by_key(|g| g.real.components().count())
    }

    /// The policy's second look, at the real path a call reached: allowed for the call's
    /// permission (the grant that allows it), or denied naming what would allow it.
    fn allow_reached(
        &self,
        op: &str,
        loc: &Located,
        reached: &Path,
    ) -> Result<&GrantPath, OpError> {
        if let Some(g) = self.grant_for(loc.permission, reached) {
            return Ok(g);
        }
        let (verb, hint) = match loc.permission {
            Permission::Module => ("load", Policy::module_hint(reached)),
            Permission::Read => (
                "read",
                Policy::hint(loc.permission, &reached.display().to_string()),
            ),
            _ => (
                "write",
                Policy::hint(loc.permission, &reached.display().to_string()),
            ),
        };
        let shown = reached.display().to_string();
        Err(OpError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{op} \"{}\" leads through a symlink to \"{shown}\": {verb} \"{shown}\" ({hint})",
                loc.abs.display(),
            ),
        ))
    }

    /// Refuses to change the audit log: `reached` (a real path) or the file `entry` (device and
    /// inode) being it, or, with `holds`, a folder that holds it.
    fn guard_log(
        &self,
        op: &str,
        loc: &Located,
        reached: &Path,
        entry: Option<&Metadata>,
        holds: bool,
    ) -> Result<(), OpError> {
        let Some(log) = &self.log else { return Ok(()) };
        let id = entry.map(|m| (m.dev(), m.ino()));
        let what = if reached == log.path || id == Some(log.id) {
            "is the run's audit log"
        } else if holds
            && (log.path.starts_with(reached)
                || entry.is_some_and(|m| m.is_dir())
                    && id.is_some_and(|id| log.folders.contains(&id)))
        {
            "holds the run's audit log"
        } else {
            return Ok(());
        };
        Err(OpError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{op} \"{}\": refused: it {what} (\"{}\"), and no grant allows a script to write, remove or rename the audit log",
                loc.abs.display(),
                log.path.display()
            ),
        ))
    }
}

/// A name inside a folder opened beneath an anchor.
struct Entry {
    handle: Arc<Handle>,
    /// The folder that holds the name, unless it is the anchor's own folder.
    opened: Option<Dir>,
    name: OsString,
    /// The real path the name stands for: its folder's real path and the name.
    reached: PathBuf,
}

impl Entry {
    fn dir(&self) -> &Dir {
        self.opened.as_ref().unwrap_or_else(|| dir_of(&self.handle))
    }

    fn metadata(&self) -> io::Result<Metadata> {
        self.dir().symlink_metadata(&self.name)
    }
}

fn is_symlink(dir: &Dir, name: &OsStr) -> bool {
    dir.symlink_metadata(name)
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// The real path of an opened file or folder, as the kernel knows it (`/proc/self/fd`): where
/// a call really got to, whatever renames happen after it was opened.
fn real_path(op: &str, loc: &Located, opened: &impl AsFd) -> Result<PathBuf, OpError> {
    let fd = opened.as_fd().as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        Ok(p) if p.is_absolute() => Ok(p),
        Ok(p) => Err(OpError::new(
            ErrorCode::Io,
            format!(
                "{op} \"{}\": reached {}, which is not a file system path",
                loc.abs.display(),
                p.display()
            ),
        )),
        Err(e) => Err(OpError::new(
            ErrorCode::Io,
            format!(
                "{op} \"{}\": cannot tell which file was reached (/proc/self/fd: {e}), so it is not used",
                loc.abs.display()
            ),
        )),
    }
}

fn open_root(path: &Path, create: bool) -> io::Result<Handle> {
    match Dir::open_ambient_dir(path, ambient_authority()) {
        Ok(d) => Ok(Handle::Dir(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            std::fs::create_dir_all(path)?;
            Ok(Handle::Dir(Dir::open_ambient_dir(
                path,
                ambient_authority(),
            )?))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            let name = path.file_name().map(OsString::from).unwrap_or_default();
            Ok(Handle::File {
                parent: Dir::open_ambient_dir(parent, ambient_authority())?,
                name,
            })
        }
        Err(e) => Err(e),
    }
}

/// A regular file with more than one hard link may be the same file as one outside the
/// granted folder (a hard link cannot be told from the original), so its contents are refused.
fn refuse_hard_links(op: &str, loc: &Located, meta: &Metadata) -> Result<(), OpError> {
    if meta.is_file() && meta.nlink() > 1 {
        return Err(OpError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{op} \"{}\": the file has {} hard links, and one may lie outside the allowed folder",
                loc.abs.display(),
                meta.nlink()
            ),
        ));
    }
    Ok(())
}

fn dir_of(h: &Handle) -> &Dir {
    match h {
        Handle::Dir(d) => d,
        Handle::File { parent, .. } => parent,
    }
}

/// Maps an I/O error to an error code and a message naming the operation and the path.
pub fn io_error(op: &str, path: &Path, e: io::Error) -> OpError {
    let shown = path.display();
    let text = e.to_string();
    if text.contains("outside of the filesystem") || text.contains("led outside") {
        return OpError::new(
            ErrorCode::PermissionDenied,
            format!("{op} \"{shown}\": the path leads outside the allowed folder (through a symlink or \"..\")"),
        );
    }
    let code = match e.kind() {
        io::ErrorKind::NotFound => ErrorCode::NotFound,
        io::ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        io::ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => ErrorCode::InvalidArgument,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            ErrorCode::Io
        }
        _ => ErrorCode::Io,
    };
    OpError::new(code, format!("{op} \"{shown}\": {text}"))
}

/// Files up to this size are read or written on the isolate's thread, inside `$send`: a small
/// regular file costs a few system calls, less than the two thread hand-offs of the I/O pool.
pub const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// Opened without waiting: a FIFO or device opens at once (or fails with `ENXIO`) instead of
/// blocking the isolate's thread; a regular file ignores the flag.
fn nonblocking(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(libc::O_NONBLOCK)
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENXIO)
}

/// A finished file operation, with the real path it reached when that is not the path asked
/// for (see `Done::resolved`).
fn traced(abs: &Path, reached: Option<PathBuf>, result: Result<Done, OpError>) -> Done {
    let mut done = result.unwrap_or_else(Done::err);
    done.resolved = reached
        .filter(|r| r != abs)
        .map(|r| r.display().to_string());
    done
}

/// `traced` for an attempt inside `$send`: a finished one, or the rest it hands to the I/O pool
/// (which reached the same file).
fn traced_quick(abs: &Path, reached: Option<PathBuf>, result: Result<Quick, OpError>) -> Quick {
    match result {
        Ok(Quick::Defer) => Quick::Defer,
        Ok(Quick::Continue(rest)) => {
            let abs = abs.to_path_buf();
            Quick::Continue(Box::new(move || traced(&abs, reached, Ok(rest()))))
        }
        Ok(Quick::Done(done)) => Quick::Done(traced(abs, reached, Ok(done))),
        Err(e) => Quick::Done(traced(abs, reached, Err(e))),
    }
}

/// Reads a whole file; fails with `TooLarge` past `max_bytes` and refuses directories and
/// files with more than one hard link.
pub fn read_file(roots: &FsRoots, loc: &Located, max_bytes: u64) -> Done {
    let mut reached = None;
    let mut run = || -> Result<Done, OpError> {
        let options = OpenOptions::new().read(true).clone();
        let (file, real) = roots
            .open_reached("readFile", loc, &options)?
            .map_err(|e| io_error("readFile", &loc.abs, e))?;
        roots.allow_reached("readFile", loc, reached.insert(real))?;
        let meta = file
            .metadata()
            .map_err(|e| io_error("readFile", &loc.abs, e))?;
        read_opened(loc, file, &meta, max_bytes, Vec::new())
    };
    let result = run();
    traced(&loc.abs, reached, result)
}

/// `read_file` for a regular file of at most `INLINE_MAX_BYTES`; anything else (a FIFO, a
/// device, a larger file) is handed to the I/O pool, opened: see `read_continued`.
pub fn read_file_quick(roots: &FsRoots, loc: &Located, max_bytes: u64) -> Quick {
    let mut reached = None;
    let mut run = || -> Result<Quick, OpError> {
        let err = |e| io_error("readFile", &loc.abs, e);
        let (file, real) = match roots.open_reached(
            "readFile",
            loc,
            nonblocking(OpenOptions::new().read(true)),
        )? {
            Ok(opened) => opened,
            Err(e) if would_block(&e) => return Ok(Quick::Defer),
            Err(e) => return Err(err(e)),
        };
        roots.allow_reached("readFile", loc, reached.insert(real))?;
        let meta = file.metadata().map_err(err)?;
        if meta.is_file() && meta.len() > INLINE_MAX_BYTES || !meta.is_file() && !meta.is_dir() {
            let loc = loc.clone();
            return Ok(Quick::Continue(Box::new(move || {
                read_continued(&loc, file, &meta, max_bytes).unwrap_or_else(Done::err)
            })));
        }
        read_opened(loc, file, &meta, max_bytes, Vec::new()).map(Quick::Done)
    };
    let result = run();
    traced_quick(&loc.abs, reached, result)
}

/// The rest of a `read_file_quick` on the I/O pool: reads the file it opened (`O_NONBLOCK`, and
/// already checked) as `cat` would have opened and read it. A FIFO is waited on until a writer
/// has come (`wait_for_writer`); then the file is read blocking, to its end: for a FIFO, until
/// its last writer closes.
fn read_continued(
    loc: &Located,
    mut file: File,
    meta: &Metadata,
    max_bytes: u64,
) -> Result<Done, OpError> {
    let err = |e| io_error("readFile", &loc.abs, e);
    let mut first = Vec::new();
    if meta.file_type().is_fifo() {
        first = wait_for_writer(&mut file, max_bytes + 1).map_err(err)?;
    }
    if !meta.is_file() {
        set_blocking(&file).map_err(err)?;
    }
    read_opened(loc, file, meta, max_bytes, first)
}

/// Waits, on a FIFO opened `O_NONBLOCK`, for what an `open` without it waits for: a writer.
/// A blocking read cannot wait for one (while no writer is there, it finds the end of the file
/// at once); `poll` can: Linux reports the FIFO readable once data has come, or once a writer
/// that came after it was opened has gone (not for writers that never came). Returns what a
/// first read found (at most `limit` bytes: a writer came and wrote), and leaves the rest to a
/// blocking read, which ends as the last writer closes.
fn wait_for_writer(file: &mut File, limit: u64) -> io::Result<Vec<u8>> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut buf = vec![0; limit.min(64 * 1024) as usize];
    let mut polled = false;
    loop {
        match file.read(&mut buf) {
            // Nothing, and no writer: none has come yet. (After `poll`, the arm below: one
            // came and went without writing, and the blocking read that follows finds the end
            // of the file.)
            Ok(0) if !polled => {
                loop {
                    match poll(&mut [PollFd::new(&*file, PollFlags::IN)], None) {
                        Ok(_) => break,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                polled = true;
            }
            Ok(n) => {
                // What a writer wrote (nothing: see above).
                buf.truncate(n);
                return Ok(buf);
            }
            // No data yet, but a writer is there.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Clears `O_NONBLOCK` on a file opened with it inside `$send`, for the I/O pool's blocking
/// reads and writes.
fn set_blocking(file: &File) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(file)?;
    fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
    Ok(())
}

/// Reads `file` to its end, after the bytes `first` already read from it.
fn read_opened(
    loc: &Located,
    file: File,
    meta: &Metadata,
    max_bytes: u64,
    first: Vec<u8>,
) -> Result<Done, OpError> {
    refuse_hard_links("readFile", loc, meta)?;
    if meta.is_dir() {
        return Err(OpError::new(
            ErrorCode::InvalidArgument,
            format!("readFile \"{}\": is a directory", loc.abs.display()),
        ));
    }
    let mut data = first;
    data.reserve(meta.len().min(max_bytes).saturating_sub(data.len() as u64) as usize);
    let left = (max_bytes + 1).saturating_sub(data.len() as u64);
    file.take(left)
        .read_to_end(&mut data)
        .map_err(|e| io_error("readFile", &loc.abs, e))?;
    if data.len() as u64 > max_bytes {
        return Err(OpError::new(
            ErrorCode::TooLarge,
            format!(
                "readFile \"{}\": the file is larger than the {max_bytes} bytes a reply may carry (raise [limits] max_message_bytes)",
                loc.abs.display()
            ),
        ));
    }
    let n = data.len() as u64;
    Ok(Done::ok(reply::Result::Bytes(Bytes { data }), n))
}

/// A module's source, read for an import: the bytes and the real path they came from.
pub struct ModuleFile {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// The real path of the file read, when it is not the path asked for.
    pub resolved: Option<String>,
}

/// Reads a module file beneath its grant (a module root or a read grant), on the isolate's
/// thread and without waiting: opened `O_NONBLOCK`, and only a regular file of at most
/// `max_bytes` with one hard link is read (a FIFO, a device, `/proc`'s endless files or a
/// directory are refused before a byte is read).
pub fn read_module(
    roots: &FsRoots,
    loc: &Located,
    max_bytes: u64,
) -> Result<ModuleFile, (OpError, Option<String>)> {
    const OP: &str = "module.load";
    let mut reached = None;
    let mut run = || -> Result<Vec<u8>, OpError> {
        let err = |e| io_error(OP, &loc.abs, e);
        let (file, real) =
            match roots.open_reached(OP, loc, nonblocking(OpenOptions::new().read(true)))? {
                Ok(opened) => opened,
                Err(e) if would_block(&e) => {
                    return Err(OpError::new(
                        ErrorCode::InvalidArgument,
                        format!(
                            "{OP} \"{}\": not a regular file (a FIFO, socket or device)",
                            loc.abs.display()
                        ),
                    ))
                }
                Err(e) => return Err(err(e)),
            };
        roots.allow_reached(OP, loc, reached.insert(real))?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a regular file (a FIFO, socket or device)"
            };
            return Err(OpError::new(
                ErrorCode::InvalidArgument,
                format!("{OP} \"{}\": {what}", loc.abs.display()),
            ));
        }
        refuse_hard_links(OP, loc, &meta)?;
        let too_large = || {
            OpError::new(
                ErrorCode::TooLarge,
                format!(
                    "{OP} \"{}\": the module is larger than {max_bytes} bytes (raise [limits] max_message_bytes)",
                    loc.abs.display()
                ),
            )
        };
        if meta.len() > max_bytes {
            return Err(too_large());
        }
        let mut data = Vec::new();
        data.try_reserve_exact(meta.len() as usize)
            .map_err(|_| too_large())?;
        file.take(max_bytes + 1)
            .read_to_end(&mut data)
            .map_err(err)?;
        if data.len() as u64 > max_bytes {
            return Err(too_large());
        }
        Ok(data)
    };
    let result = run();
    let resolved = reached
        .filter(|r| r != &loc.abs)
        .map(|r| r.display().to_string());
    match result {
        Ok(data) => Ok(ModuleFile { data, resolved }),
        Err(e) => Err((e, resolved)),
    }
}

/// Writes `data` to a file, creating it, and replacing (see `replace`) or, with `append`,
/// extending its contents (see `append`); refuses files with more than one hard link, and the
/// audit log.
pub fn write_file(roots: &FsRoots, loc: &Located, data: &[u8], append: bool) -> Done {
    let mut reached = None;
    let result =
        write_checked(roots, loc, data, append, false, &mut reached).and_then(|q| match q {
            Quick::Done(done) => Ok(done),
            Quick::Defer | Quick::Continue(_) => {
                unreachable!("only an attempt inside $send defers")
            }
        });
    traced(&loc.abs, reached, result)
}

/// `write_file` of at most `INLINE_MAX_BYTES` to a regular (or new) file; anything else is
/// deferred, with nothing written.
pub fn write_file_quick(roots: &FsRoots, loc: &Located, data: &[u8], append: bool) -> Quick {
    if data.len() as u64 > INLINE_MAX_BYTES {
        return Quick::Defer;
    }
    let mut reached = None;
    let result = write_checked(roots, loc, data, append, true, &mut reached);
    traced_quick(&loc.abs, reached, result)
}

/// A write, after the checks: the policy on the real path the name reached, the audit log, hard
/// links. `quick`: an attempt inside `$send`, deferred (before anything is written) unless the
/// target is a regular file or a new one.
fn write_checked(
    roots: &FsRoots,
    loc: &Located,
    data: &[u8],
    append: bool,
    quick: bool,
    reached: &mut Option<PathBuf>,
) -> Result<Quick, OpError> {
    let op = "writeFile";
    let err = |e| io_error(op, &loc.abs, e);
    if loc.rel.as_os_str().is_empty() && matches!(&*roots.handle(loc, false)?, Handle::Dir(_)) {
        return Err(err(io::Error::from_raw_os_error(libc::EISDIR)));
    }
    let entry = roots.entry(op, loc, true)?;
    roots.allow_reached(op, loc, reached.insert(entry.reached.clone()))?;
    let old = match entry.metadata() {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    roots.guard_log(op, loc, &entry.reached, old.as_ref(), false)?;
    if let Some(m) = &old {
        if m.is_dir() {
            return Err(err(io::Error::from_raw_os_error(libc::EISDIR)));
        }
        refuse_hard_links(op, loc, m)?;
    }
    let regular = old.as_ref().is_none_or(|m| m.is_file());
    if quick && !regular {
        return Ok(Quick::Defer);
    }
    if append {
        return append_to(roots, loc, &entry, data, quick);
    }
    if !regular {
        // A FIFO, a device, a socket: there is no file to replace; it is written to.
        let mut file = entry
            .dir()
            .open_with(
                &entry.name,
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW),
            )
            .map_err(err)?;
        file.write_all(data).map_err(err)?;
        file.flush().map_err(err)?;
        return Ok(Quick::Done(Done::ok(reply::Result::Ok(Empty {}), 0)));
    }
    if let Some(m) = &old {
        // A file the process could not write in place is not replaced either (as `mv` would).
        entry
            .dir()
            .open_with(
                &entry.name,
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK),
            )
            .map_err(err)?;
        replace(entry.dir(), &entry.name, data, Some(m)).map_err(err)?;
    } else {
        replace(entry.dir(), &entry.name, data, None).map_err(err)?;
    }
    Ok(Quick::Done(Done::ok(reply::Result::Ok(Empty {}), 0)))
}

/// Replaces the file `name` in `dir` (or creates it) with `data`, whole or not at all: the
/// bytes go to a new temporary file beside it (created with `O_EXCL` under a random name),
/// which takes the old file's mode (read and write bits; set-id bits are not carried over) and
/// owner (where this process may set it), is flushed to disk when it replaces a file
/// (`fdatasync`: a file system that reports a full disk only on flushing reports it here, and a
/// crash cannot leave the name pointing at unwritten blocks instead of the old content) and
/// then renamed over the name. Any failure removes the temporary file: the old file is
/// untouched. A new file (nothing to lose) is not flushed, as in Deno and Node: flushing cost
/// ~0.8 ms per file and made writing 10,000 new files 1.5x Deno's time (docs/BENCHMARKS.md).
fn replace(dir: &Dir, name: &OsStr, data: &[u8], old: Option<&Metadata>) -> io::Result<()> {
    let mode = old.map_or(0o666, |m| m.permissions().mode() & 0o777);
    let (temp, mut file) = create_temp(dir, mode)?;
    let written = (|| {
        file.write_all(data)?;
        if let Some(old) = old {
            // The umask applied to the temporary file, not to the old one: its mode is set
            // exactly. An owner it may not give (not running as root) it leaves as it is.
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
            file.set_permissions(Permissions::from_mode(mode))?;
            file.sync_data()?;
        }
        drop(file);
        dir.rename(&temp, dir, name)
    })();
    if written.is_err() {
        let _ = dir.remove_file(&temp);
    }
    written
}

/// A new file in `dir` with a name nothing else uses, opened with `O_EXCL`.
fn create_temp(dir: &Dir, mode: u32) -> io::Result<(OsString, File)> {
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..8 {
        let mut random = [0u8; 8];
        getrandom::getrandom(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let name = OsString::from(format!(".v8box-{}.tmp", hex::encode(random)));
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW);
        match dir.open_with(&name, &options) {
            Ok(file) => return Ok((name, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Appends `data` to the file `entry` names (creating it). An append cannot replace the file
/// whole without copying it, so it writes in place, and a failure (a full disk) cuts the file
/// back to its length before the call: the old content is never touched, and a failed append
/// leaves no part of its bytes. (Another process appending to the same file at the same moment
/// would lose what it wrote after this call's first byte.) `quick`, and the file is not
/// regular: nothing is written here; deferred, or (once opened) handed to the I/O pool opened,
/// to be written there (so that a FIFO's reader, woken by this open, never sees it close).
fn append_to(
    roots: &FsRoots,
    loc: &Located,
    entry: &Entry,
    data: &[u8],
    quick: bool,
) -> Result<Quick, OpError> {
    let op = "writeFile";
    let err = |e| io_error(op, &loc.abs, e);
    let mut options = OpenOptions::new();
    options
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | if quick { libc::O_NONBLOCK } else { 0 });
    let file = match entry.dir().open_with(&entry.name, &options) {
        Ok(f) => f,
        Err(e) if quick && would_block(&e) => return Ok(Quick::Defer),
        Err(e) => return Err(err(e)),
    };
    let meta = file.metadata().map_err(err)?;
    roots.guard_log(op, loc, &entry.reached, Some(&meta), false)?;
    refuse_hard_links(op, loc, &meta)?;
    if quick && !meta.is_file() {
        // At most `INLINE_MAX_BYTES` (`write_file_quick`), copied once on this rare path.
        let (abs, data) = (loc.abs.clone(), data.to_vec());
        return Ok(Quick::Continue(Box::new(move || {
            set_blocking(&file)
                .map_err(|e| io_error(op, &abs, e))
                .and_then(|()| append_opened(&abs, file, &meta, &data))
                .unwrap_or_else(Done::err)
        })));
    }
    append_opened(&loc.abs, file, &meta, data).map(Quick::Done)
}

/// Appends `data` to `file` (see `append_to`).
fn append_opened(
    abs: &Path,
    mut file: File,
    meta: &Metadata,
    data: &[u8],
) -> Result<Done, OpError> {
    let err = |e| io_error("writeFile", abs, e);
    let written = file.write_all(data).and_then(|()| {
        if meta.is_file() {
            file.sync_data()
        } else {
            file.flush()
        }
    });
    if let Err(e) = written {
        if meta.is_file() {
            let _ = file.set_len(meta.len());
        }
        return Err(err(e));
    }
    Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
}

/// Lists a folder's entries, sorted by name.
pub fn read_dir(roots: &FsRoots, loc: &Located) -> Done {
    let mut reached = None;
    let mut run = || -> Result<Done, OpError> {
        let err = |e| io_error("readDir", &loc.abs, e);
        let (h, path) = roots.beneath(loc, false)?;
        let dir = dir_of(&h).open_dir(&path).map_err(err)?;
        let real = real_path("readDir", loc, &dir)?;
        roots.allow_reached("readDir", loc, reached.insert(real))?;
        let mut entries = Vec::new();
        for entry in dir.entries().map_err(err)? {
            let entry = entry.map_err(err)?;
            let ft = entry.file_type().map_err(err)?;
            entries.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_file: ft.is_file(),
                is_dir: ft.is_dir(),
                is_symlink: ft.is_symlink(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let n = entries.iter().map(|e| e.name.len() as u64 + 3).sum();
        Ok(Done::ok(
            reply::Result::DirEntries(DirEntries { entries }),
            n,
        ))
    };
    let result = run();
    traced(&loc.abs, reached, result)
}

/// A path's type, size, modification time and mode (following a final symlink, but
/// reporting that it is one).
pub fn stat(roots: &FsRoots, loc: &Located) -> Done {
    let mut reached = None;
    let mut run = || -> Result<Done, OpError> {
        let err = |e| io_error("stat", &loc.abs, e);
        let (h, path) = roots.beneath(loc, false)?;
        let link = if path == Path::new(".") {
            let real = real_path("stat", loc, dir_of(&h))?;
            roots.allow_reached("stat", loc, reached.insert(real))?;
            dir_of(&h).dir_metadata().map_err(err)?
        } else {
            let entry = roots.entry_at("stat", loc, h.clone(), &path)?;
            roots.allow_reached("stat", loc, reached.insert(entry.reached.clone()))?;
            entry.metadata().map_err(err)?
        };
        let meta = if link.file_type().is_symlink() {
            // What it leads to, looked at without opening it (`O_PATH`), and checked.
            let options = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .clone();
            let (target, real) = roots.open_reached("stat", loc, &options)?.map_err(err)?;
            roots.allow_reached("stat", loc, reached.insert(real))?;
            target.metadata().map_err(err)?
        } else {
            link.clone()
        };
        let mtime_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Ok(Done::ok(
            reply::Result::FileInfo(FileInfo {
                is_file: meta.is_file(),
                is_dir: meta.is_dir(),
                is_symlink: link.file_type().is_symlink(),
                size: meta.len(),
                mtime_ms,
                mode: meta.permissions().mode(),
            }),
            32,
        ))
    };
    let result = run();
    traced(&loc.abs, reached, result)
}

fn refuse_root(op: &str, loc: &Located) -> OpError {
    OpError::new(
        ErrorCode::PermissionDenied,
        format!(
            "{op} \"{}\": the granted folder itself cannot be {op}d; grant its parent",
            loc.abs.display()
        ),
    )
}

/// The entry a remove or rename changes (a final symlink is not followed: the link itself is
/// removed or moved), checked: allowed where it really is, not a granted path itself, not the
/// audit log or a folder that holds it.
fn changed_entry(
    roots: &FsRoots,
    op: &str,
    loc: &Located,
    must_exist: bool,
) -> Result<(Entry, Option<Metadata>), OpError> {
    if loc.rel.as_os_str().is_empty() {
        return Err(refuse_root(op, loc));
    }
    let entry = roots.entry(op, loc, false)?;
    let grant = roots.allow_reached(op, loc, &entry.reached)?;
    if grant.real == entry.reached {
        return Err(refuse_root(op, loc));
    }
    let meta = match entry.metadata() {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !must_exist => None,
        Err(e) => return Err(io_error(op, &loc.abs, e)),
    };
    roots.guard_log(op, loc, &entry.reached, meta.as_ref(), true)?;
    Ok((entry, meta))
}

/// Removes a file, a symlink or an empty folder (any folder with `recursive`); the granted
/// path itself cannot be removed.
pub fn remove(roots: &FsRoots, loc: &Located, recursive: bool) -> Done {
    let mut reached = None;
    let mut run = || -> Result<Done, OpError> {
        let err = |e| io_error("remove", &loc.abs, e);
        let (entry, meta) = changed_entry(roots, "remove", loc, true)?;
        let dir = entry.dir();
        reached = Some(entry.reached.clone());
        if meta.is_some_and(|m| m.is_dir()) {
            if recursive {
                dir.remove_dir_all(&entry.name).map_err(err)?;
            } else {
                dir.remove_dir(&entry.name).map_err(err)?;
            }
        } else {
            dir.remove_file(&entry.name).map_err(err)?;
        }
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    let result = run();
    traced(&loc.abs, reached, result)
}

/// Creates a folder (with its missing parents and no error if it exists, with `recursive`).
pub fn mkdir(roots: &FsRoots, loc: &Located, recursive: bool) -> Done {
    let mut reached = None;
    let mut run = || -> Result<Done, OpError> {
        let op = "mkdir";
        let err = |e| io_error(op, &loc.abs, e);
        if loc.rel.as_os_str().is_empty() {
            // The granted folder itself: opening it creates it, with `recursive` (`mkdir -p`).
            roots.handle(loc, recursive)?;
            return if recursive {
                Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
            } else {
                Err(err(io::Error::from(io::ErrorKind::AlreadyExists)))
            };
        }
        let (h, path) = roots.beneath(loc, false)?;
        // Each missing folder on the way (only the last without `recursive`) is created in its
        // parent, opened beneath the anchor, and checked where it really is.
        let parts: Vec<Component> = path.components().collect();
        let first = if recursive { 1 } else { parts.len() };
        for end in first..=parts.len() {
            let sub: PathBuf = parts[..end].iter().collect();
            let entry = roots.entry_at(op, loc, h.clone(), &sub)?;
            reached = Some(entry.reached.clone());
            match entry.metadata() {
                Ok(m) if recursive && (m.is_dir() || m.file_type().is_symlink()) => continue,
                Ok(m) => {
                    roots.guard_log(op, loc, &entry.reached, Some(&m), false)?;
                    return Err(err(io::Error::from(io::ErrorKind::AlreadyExists)));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(e)),
            }
            roots.allow_reached(op, loc, &entry.reached)?;
            roots.guard_log(op, loc, &entry.reached, None, false)?;
            match entry.dir().create_dir(&entry.name) {
                Ok(()) => {}
                Err(e) if recursive && e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e)),
            }
        }
        if recursive {
            // What is there now must be a folder (a symlink on the way must lead to one).
            dir_of(&h).open_dir(&path).map_err(err)?;
        }
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    let result = run();
    traced(&loc.abs, reached, result)
}

/// Renames `from` to `to`, possibly across grants; neither may be a granted path itself, nor
/// the audit log or a folder that holds it.
pub fn rename(roots: &FsRoots, from: &Located, to: &Located) -> Done {
    let mut reached = (None, None);
    let mut run = || -> Result<Done, OpError> {
        let (f, _) = changed_entry(roots, "rename", from, true)?;
        reached.0 = Some(f.reached.clone());
        let (t, _) = changed_entry(roots, "rename", to, false)?;
        reached.1 = Some(t.reached.clone());
        f.dir()
            .rename(&f.name, t.dir(), &t.name)
            .map_err(|e| io_error("rename", &from.abs, e))?;
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    let result = run();
    let mut done = result.unwrap_or_else(Done::err);
    let moved = |r: &Option<PathBuf>, loc: &Located| r.as_ref().is_some_and(|r| *r != loc.abs);
    if moved(&reached.0, from) || moved(&reached.1, to) {
        let shown = |r: Option<PathBuf>, loc: &Located| r.unwrap_or_else(|| loc.abs.clone());
        done.resolved = Some(format!(
            "{} -> {}",
            shown(reached.0, from).display(),
            shown(reached.1, to).display()
        ));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt as _;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// A folder holding the FIFO `pipe`, granted with `permission`; its roots and the FIFO's
    /// location; and the FIFO opened for reading without waiting (a reader there already).
    fn fifo(permission: Permission) -> (tempfile::TempDir, FsRoots, Located, std::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap().join("pipe");
        mkfifo(&path);
        let mut policy = Policy::deny_all();
        let folder = path.parent().unwrap().to_str().unwrap().to_string();
        policy.grant(permission, &folder, Path::new("/")).unwrap();
        let grant = policy.check_path(permission, &path).grant.unwrap();
        let roots = FsRoots::new(&policy, None);
        let loc = roots.locate(grant, &path);
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        (dir, roots, loc, reader)
    }

    /// `poll`'s answer for `file` now (`POLLIN`, `POLLHUP`), without waiting.
    fn revents(file: &std::fs::File) -> i16 {
        let mut polled = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout does not wait.
        assert!(unsafe { libc::poll(&mut polled, 1, 0) } >= 0);
        polled.revents
    }

    /// An append whose quick path opens a FIFO (one made after it looked at the name, say)
    /// hands it to the pool open: its reader never sees the writer leave before the bytes come
    /// (an end of file for `cat`, with the pool's write to come to no one).
    #[test]
    fn an_append_that_opened_a_fifo_inside_send_hands_it_over_open() {
        let (_dir, roots, loc, mut reader) = fifo(Permission::Write);
        let entry = roots.entry("writeFile", &loc, true).unwrap();
        let Ok(Quick::Continue(rest)) = append_to(&roots, &loc, &entry, b"line", true) else {
            panic!("the append was not handed over opened");
        };
        assert_eq!(revents(&reader) & libc::POLLHUP, 0, "the writer left");
        let done = rest();
        assert!(done.result.is_ok(), "{:?}", done.result.err());
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "line");
    }

    /// A read handed over a FIFO opened before any writer ends once a writer has come and
    /// gone, even one that wrote nothing and left before the pool looked (`poll` still reports
    /// it). (That it waits while none has come: tests/cli/audit.rs, the FIFO test.)
    #[test]
    fn a_read_handed_over_a_fifo_ends_once_a_writer_came_and_went() {
        let (_dir, roots, loc, _reader) = fifo(Permission::Read);
        let Quick::Continue(rest) = read_file_quick(&roots, &loc, 1024) else {
            panic!("the read was not handed over opened");
        };
        // The writer comes and goes before the pool's first look: `poll` must still see it.
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&loc.abs)
                .unwrap(),
        );
        match rest().result {
            Ok(reply::Result::Bytes(b)) => assert!(b.data.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
