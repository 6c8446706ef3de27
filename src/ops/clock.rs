//! The clock and randomness: always allowed (and audited).

use crate::proto::{reply, Bytes, ErrorCode, Time};

use super::{Done, OpError};

/// The largest `randomBytes` request (as Web Crypto's `getRandomValues`).
pub const MAX_RANDOM_BYTES: u32 = 65_536;

/// The wall-clock time, in milliseconds since the Unix epoch, and the milliseconds since
/// `run_start` on a monotonic clock.
pub fn now(run_start: std::time::Instant) -> Done {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    let monotonic_ms = run_start.elapsed().as_secs_f64() * 1000.0;
    Done::ok(
        reply::Result::Time(Time {
            unix_ms: ms,
            monotonic_ms,
        }),
        16,
    )
}

/// `length` cryptographically secure random bytes from the OS; at most `MAX_RANDOM_BYTES`.
pub fn random_bytes(length: u32) -> Done {
    if length > MAX_RANDOM_BYTES {
        return Done::err(OpError::new(
            ErrorCode::TooLarge,
            format!("randomBytes: {length} bytes asked, at most {MAX_RANDOM_BYTES} per call"),
        ));
    }
    let mut data = vec![0u8; length as usize];
    if let Err(e) = getrandom::getrandom(&mut data) {
        return Done::err(OpError::new(
            ErrorCode::Internal,
            format!("randomBytes: {e}"),
        ));
    }
    Done::ok(reply::Result::Bytes(Bytes { data }), length as u64)
}
