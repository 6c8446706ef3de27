//! The operations a script can ask for, grouped by area. Each function here executes an
//! operation that the dispatcher has already decoded, validated and allowed.

pub mod clock;
pub mod env;
pub mod fs;
pub mod net;
pub mod stdin;
pub mod table;
pub mod url;

use crate::proto::{reply, ErrorCode};

/// Why an operation failed, as the script will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// The error code the script's `SysError` carries.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl OpError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> OpError {
        OpError {
            code,
            message: message.into(),
        }
    }
}

/// A finished operation: its result and how many bytes it moved out to the script.
pub struct Done {
    /// The reply's result, or why the operation failed.
    pub result: Result<reply::Result, OpError>,
    /// Bytes moved out to the script (for the audit log and byte quotas).
    pub bytes_out: u64,
    /// For a file operation: the real path it reached, when that is not the path asked for (a
    /// symlink on the way was followed); the audit record names it (`resolved`).
    pub resolved: Option<String>,
}

impl Done {
    /// A success with `result`, having moved `bytes_out` bytes to the script.
    pub fn ok(result: reply::Result, bytes_out: u64) -> Done {
        Done {
            result: Ok(result),
            bytes_out,
            resolved: None,
        }
    }

    /// A failure with `e`; no bytes moved.
    pub fn err(e: OpError) -> Done {
        Done {
            result: Err(e),
            bytes_out: 0,
            resolved: None,
        }
    }
}

/// What a quick attempt at an operation on the isolate's thread (inside `$send`) came to.
pub enum Quick {
    /// It finished (or failed) there.
    Done(Done),
    /// It could block or take long, and nothing was opened (e.g. a FIFO with no reader yet for
    /// a write): run the call's pool job on the I/O pool.
    Defer,
    /// It opened the file and found it could block or take long (a FIFO, a device, a large
    /// file): the I/O pool finishes the call with this, on the file already opened and checked
    /// — never by opening the path again, which might name another file by then, and would
    /// lose what a FIFO's other end, woken by this open, did meanwhile.
    Continue(Continuation),
}

/// The rest of a call that `Quick::Continue` hands to the I/O pool.
pub type Continuation = Box<dyn FnOnce() -> Done + Send>;

impl From<Result<reply::Result, OpError>> for Done {
    fn from(result: Result<reply::Result, OpError>) -> Done {
        Done {
            result,
            bytes_out: 0,
            resolved: None,
        }
    }
}
