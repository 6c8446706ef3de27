//! `stdin.read`: the next chunk of the process's stdin (the CLI's; in process isolation the
//! broker's, never the worker's). Blocking, so it runs on the I/O pool.

use std::io::Read;

use super::{Done, OpError};
use crate::proto::{reply, Bytes, ErrorCode};

/// The largest chunk one call reads.
pub const MAX_CHUNK: usize = 64 * 1024;

/// Reads at most `max` bytes; an empty chunk at the end of stdin.
pub fn read(max: usize) -> Done {
    let mut buf = vec![0u8; max.min(MAX_CHUNK)];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Done::ok(reply::Result::Bytes(Bytes { data: buf }), n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Done::err(OpError::new(
                    ErrorCode::Io,
                    format!("stdin.read \"stdin\": {e}"),
                ))
            }
        }
    }
}
