//! Quotas: the calls and bytes each operation has used in this run, against `[quotas]`.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ops::OpError;
use crate::policy::Quota;
use crate::proto::ErrorCode;

/// What each operation has used so far: (calls, bytes).
#[derive(Default)]
pub struct Quotas(Mutex<HashMap<&'static str, (u64, u64)>>);

impl Quotas {
    /// Counts one call of `op` against its quota `q`.
    pub fn charge_call(&self, op: &'static str, q: Option<&Quota>) -> Result<(), OpError> {
        let Some(q) = q else { return Ok(()) };
        let mut used = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = used.entry(op).or_default();
        if let Some(limit) = q.calls {
            if entry.0 >= limit {
                return Err(OpError::new(
                    ErrorCode::QuotaExceeded,
                    format!("{op}: quota of {limit} calls used up ([quotas.\"{op}\"] calls)"),
                ));
            }
        }
        entry.0 += 1;
        Ok(())
    }

    /// Counts `n` bytes moved by `op` against its quota `q`.
    pub fn charge_bytes(&self, op: &'static str, q: Option<&Quota>, n: u64) -> Result<(), OpError> {
        let Some(limit) = q.and_then(|q| q.bytes) else {
            return Ok(());
        };
        let mut used = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = used.entry(op).or_default();
        if entry.1 + n > limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("{op}: quota of {limit} bytes exceeded ([quotas.\"{op}\"] bytes)"),
            ));
        }
        entry.1 += n;
        Ok(())
    }
}
