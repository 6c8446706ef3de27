//! Environment variables: names are checked (no `=`, no NUL, not empty) before the policy is
//! asked; values never reach the audit log.

use crate::proto::{reply, EnvValue, ErrorCode};

use super::{Done, OpError};

/// Rejects an empty variable name or one containing `=` or NUL (`InvalidArgument`).
pub fn validate_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(OpError::new(
            ErrorCode::InvalidArgument,
            format!("env.get: invalid variable name {name:?}"),
        ));
    }
    Ok(())
}

/// The variable `name` from this process's environment (non-UTF-8 converted lossily), or
/// not present.
pub fn get(name: &str) -> Done {
    let value = std::env::var_os(name);
    let bytes = value.as_ref().map_or(0, |v| v.len() as u64);
    Done::ok(
        reply::Result::EnvValue(EnvValue {
            present: value.is_some(),
            // UTF-8 (nearly always) keeps its allocation; anything else is converted.
            value: value
                .map(|v| {
                    v.into_string()
                        .unwrap_or_else(|v| v.to_string_lossy().into_owned())
                })
                .unwrap_or_default(),
        }),
        bytes,
    )
}
