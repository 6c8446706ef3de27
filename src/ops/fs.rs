//! File operations, confined with `cap-std`: each grant's folder is opened once as a directory
//! capability, and every access is resolved *beneath* it by the kernel-backed resolver
//! (`openat2(RESOLVE_BENEATH)` where available). So `..`, absolute symlinks, symlinks pointing
//! out of the folder and a symlink swapped in while a call is in flight cannot escape: the
//! policy check decides *which* folder, cap-std makes sure the access stays inside it.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::policy::{Permission, Policy, Target};
use crate::proto::{reply, Bytes, DirEntries, DirEntry, Empty, ErrorCode, FileInfo};

use super::{Done, OpError, Quick};

/// An allowed file or folder, opened on first use.
struct Root {
    path: PathBuf,
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

/// The opened roots, parallel to `Policy::grants` (`None` for grants that are not paths).
pub struct FsRoots {
    roots: Vec<Option<Root>>,
}

/// A path the policy allowed: the grant it falls under and the path relative to it.
#[derive(Debug, Clone)]
pub struct Located {
    /// Index of the grant in `Policy::grants`.
    pub grant: usize,
    /// The path relative to the granted file or folder (empty for the granted path itself).
    pub rel: PathBuf,
    /// The absolute, normalized path, as shown in errors.
    pub abs: PathBuf,
}

impl FsRoots {
    /// A root for every file grant of `policy`; nothing is opened until first use.
    pub fn new(policy: &Policy) -> FsRoots {
        let roots = policy
            .grants
            .iter()
            .map(|g| match (&g.permission, &g.target) {
                (Permission::Read | Permission::Write, Target::Path(p)) => Some(Root {
                    path: p.clone(),
                    handle: Mutex::new(None),
                }),
                (Permission::Read | Permission::Write, Target::All) => Some(Root {
                    path: PathBuf::from("/"),
                    handle: Mutex::new(None),
                }),
                _ => None,
            })
            .collect();
        FsRoots { roots }
    }

    /// Where `abs` lies under grant `grant`.
    pub fn locate(&self, grant: usize, abs: &Path) -> Located {
        let root = self.roots[grant].as_ref().expect("a path grant");
        let rel = abs
            .strip_prefix(&root.path)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        Located {
            grant,
            rel,
            abs: abs.to_path_buf(),
        }
    }

    fn open(&self, loc: &Located, create_root: bool) -> Result<(Arc<Handle>, PathBuf), OpError> {
        let root = self.roots[loc.grant].as_ref().expect("a path grant");
        let mut slot = root.handle.lock().unwrap_or_else(|p| p.into_inner());
        let handle = match &*slot {
            Some(h) => h.clone(),
            None => {
                let h = Arc::new(
                    open_root(&root.path, create_root)
                        .map_err(|e| io_error("open", &root.path, e))?,
                );
                *slot = Some(h.clone());
                h
            }
        };
        let rel = match &*handle {
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
        Ok((handle, rel))
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
        Err(e) if e.raw_os_error() == Some(20 /* ENOTDIR */) => {
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
fn refuse_hard_links(op: &str, loc: &Located, meta: &cap_std::fs::Metadata) -> Result<(), OpError> {
    use cap_std::fs::MetadataExt;
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
    use cap_std::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NONBLOCK)
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENXIO)
}

/// Reads a whole file; fails with `TooLarge` past `max_bytes` and refuses directories and
/// files with more than one hard link.
pub fn read_file(roots: &FsRoots, loc: &Located, max_bytes: u64) -> Done {
    let run = || -> Result<Done, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("readFile", &loc.abs, e);
        let file = dir_of(&h).open(&rel).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        read_opened(loc, file, &meta, max_bytes)
    };
    run().unwrap_or_else(Done::err)
}

/// `read_file` for a regular file of at most `INLINE_MAX_BYTES`; anything else is deferred.
pub fn read_file_quick(roots: &FsRoots, loc: &Located, max_bytes: u64) -> Quick {
    let run = || -> Result<Quick, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("readFile", &loc.abs, e);
        let file = match dir_of(&h).open_with(&rel, nonblocking(OpenOptions::new().read(true))) {
            Ok(f) => f,
            Err(e) if would_block(&e) => return Ok(Quick::Defer),
            Err(e) => return Err(err(e)),
        };
        let meta = file.metadata().map_err(err)?;
        if meta.is_file() && meta.len() > INLINE_MAX_BYTES || !meta.is_file() && !meta.is_dir() {
            return Ok(Quick::Defer);
        }
        read_opened(loc, file, &meta, max_bytes).map(Quick::Done)
    };
    run().unwrap_or_else(|e| Quick::Done(Done::err(e)))
}

fn read_opened(
    loc: &Located,
    file: cap_std::fs::File,
    meta: &cap_std::fs::Metadata,
    max_bytes: u64,
) -> Result<Done, OpError> {
    refuse_hard_links("readFile", loc, meta)?;
    if meta.is_dir() {
        return Err(OpError::new(
            ErrorCode::InvalidArgument,
            format!("readFile \"{}\": is a directory", loc.abs.display()),
        ));
    }
    let mut data = Vec::with_capacity(meta.len().min(max_bytes) as usize);
    file.take(max_bytes + 1)
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

/// Writes `data` to a file, creating it, and replacing or (with `append`) extending its
/// contents; refuses files with more than one hard link.
pub fn write_file(roots: &FsRoots, loc: &Located, data: &[u8], append: bool) -> Done {
    let run = || -> Result<Done, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("writeFile", &loc.abs, e);
        let file = dir_of(&h)
            .open_with(
                &rel,
                OpenOptions::new().write(true).create(true).append(append),
            )
            .map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        write_opened(loc, file, &meta, data, append)
    };
    run().unwrap_or_else(Done::err)
}

/// `write_file` of at most `INLINE_MAX_BYTES` to a regular (or new) file; anything else is
/// deferred, with nothing written.
pub fn write_file_quick(roots: &FsRoots, loc: &Located, data: &[u8], append: bool) -> Quick {
    if data.len() as u64 > INLINE_MAX_BYTES {
        return Quick::Defer;
    }
    let run = || -> Result<Quick, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("writeFile", &loc.abs, e);
        let mut options = OpenOptions::new();
        options.write(true).create(true).append(append);
        let file = match dir_of(&h).open_with(&rel, nonblocking(&mut options)) {
            Ok(f) => f,
            Err(e) if would_block(&e) => return Ok(Quick::Defer),
            Err(e) => return Err(err(e)),
        };
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Ok(Quick::Defer);
        }
        write_opened(loc, file, &meta, data, append).map(Quick::Done)
    };
    run().unwrap_or_else(|e| Quick::Done(Done::err(e)))
}

fn write_opened(
    loc: &Located,
    mut file: cap_std::fs::File,
    meta: &cap_std::fs::Metadata,
    data: &[u8],
    append: bool,
) -> Result<Done, OpError> {
    let err = |e| io_error("writeFile", &loc.abs, e);
    // Not truncated on open: the hard-link check must come before anything is lost.
    refuse_hard_links("writeFile", loc, meta)?;
    if !append && meta.is_file() {
        file.set_len(0).map_err(err)?;
    }
    file.write_all(data).map_err(err)?;
    file.flush().map_err(err)?;
    Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
}

/// Lists a folder's entries, sorted by name.
pub fn read_dir(roots: &FsRoots, loc: &Located) -> Done {
    let run = || -> Result<Done, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("readDir", &loc.abs, e);
        let mut entries = Vec::new();
        for entry in dir_of(&h).read_dir(&rel).map_err(err)? {
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
    run().unwrap_or_else(Done::err)
}

/// A path's type, size, modification time and mode (following a final symlink, but
/// reporting that it is one).
pub fn stat(roots: &FsRoots, loc: &Located) -> Done {
    let run = || -> Result<Done, OpError> {
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("stat", &loc.abs, e);
        let dir = dir_of(&h);
        let link = dir.symlink_metadata(&rel).map_err(err)?;
        let meta = if link.file_type().is_symlink() {
            dir.metadata(&rel).map_err(err)?
        } else {
            link.clone()
        };
        use cap_std::fs::PermissionsExt;
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
    run().unwrap_or_else(Done::err)
}

fn refuse_root(op: &str, loc: &Located) -> Result<(), OpError> {
    if loc.rel.as_os_str().is_empty() {
        return Err(OpError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{op} \"{}\": the granted folder itself cannot be {op}d; grant its parent",
                loc.abs.display()
            ),
        ));
    }
    Ok(())
}

/// Removes a file, a symlink or an empty folder (any folder with `recursive`); the granted
/// path itself cannot be removed.
pub fn remove(roots: &FsRoots, loc: &Located, recursive: bool) -> Done {
    let run = || -> Result<Done, OpError> {
        refuse_root("remove", loc)?;
        let (h, rel) = roots.open(loc, false)?;
        let err = |e| io_error("remove", &loc.abs, e);
        let dir = dir_of(&h);
        let meta = dir.symlink_metadata(&rel).map_err(err)?;
        if meta.is_dir() {
            if recursive {
                dir.remove_dir_all(&rel).map_err(err)?;
            } else {
                dir.remove_dir(&rel).map_err(err)?;
            }
        } else {
            dir.remove_file(&rel).map_err(err)?;
        }
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    run().unwrap_or_else(Done::err)
}

/// Creates a folder (with its missing parents and no error if it exists, with `recursive`).
pub fn mkdir(roots: &FsRoots, loc: &Located, recursive: bool) -> Done {
    let run = || -> Result<Done, OpError> {
        let creating_root = loc.rel.as_os_str().is_empty();
        let (h, rel) = roots.open(loc, creating_root && recursive)?;
        let err = |e| io_error("mkdir", &loc.abs, e);
        if creating_root {
            // The root exists now (it was opened); like `mkdir -p`, that is fine when recursive.
            return if recursive {
                Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
            } else {
                Err(err(io::Error::from(io::ErrorKind::AlreadyExists)))
            };
        }
        let dir = dir_of(&h);
        if recursive {
            dir.create_dir_all(&rel).map_err(err)?;
        } else {
            dir.create_dir(&rel).map_err(err)?;
        }
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    run().unwrap_or_else(Done::err)
}

/// Renames `from` to `to`, possibly across grants; neither may be a granted path itself.
pub fn rename(roots: &FsRoots, from: &Located, to: &Located) -> Done {
    let run = || -> Result<Done, OpError> {
        refuse_root("rename", from)?;
        refuse_root("rename", to)?;
        let (hf, rf) = roots.open(from, false)?;
        let (ht, rt) = roots.open(to, false)?;
        dir_of(&hf)
            .rename(&rf, dir_of(&ht), &rt)
            .map_err(|e| io_error("rename", &from.abs, e))?;
        Ok(Done::ok(reply::Result::Ok(Empty {}), 0))
    };
    run().unwrap_or_else(Done::err)
}
