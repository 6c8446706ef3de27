//! The operations a script can ask for, grouped by area. Each function here executes an
//! operation that the dispatcher has already decoded, validated and allowed.

pub mod clock;
pub mod env;
pub mod fs;
pub mod net;

use crate::proto::{reply, ErrorCode};

/// Every operation name, as the audit log and `[quotas]` spell them.
pub const OP_NAMES: &[&str] = &[
    "fs.readFile",
    "fs.writeFile",
    "fs.readDir",
    "fs.stat",
    "fs.remove",
    "fs.mkdir",
    "fs.rename",
    "env.get",
    "now",
    "randomBytes",
    "sleep",
    "net.fetch",
    "host.send",
    "host.listen",
    "host.message",
    "exit",
];

/// Why an operation failed, as the script will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub code: ErrorCode,
    pub message: String,
}

impl OpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> OpError {
        OpError {
            code,
            message: message.into(),
        }
    }
}

/// A finished operation: its result and how many bytes it moved out to the script.
pub struct Done {
    pub result: Result<reply::Result, OpError>,
    pub bytes_out: u64,
}

impl Done {
    pub fn ok(result: reply::Result, bytes_out: u64) -> Done {
        Done {
            result: Ok(result),
            bytes_out,
        }
    }

    pub fn err(e: OpError) -> Done {
        Done {
            result: Err(e),
            bytes_out: 0,
        }
    }
}

impl From<Result<reply::Result, OpError>> for Done {
    fn from(result: Result<reply::Result, OpError>) -> Done {
        Done {
            result,
            bytes_out: 0,
        }
    }
}
