//! Timers: the armed `Sleep` calls of a run, which the event loop answers when they are due.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::ops::OpError;
use crate::proto::ErrorCode;

/// The armed sleeps, earliest first. Only the isolate's thread touches them.
#[derive(Default)]
pub struct Timers {
    /// (deadline, call id) of armed sleeps, earliest first.
    armed: BTreeMap<(Instant, u64), ()>,
    deadline: HashMap<u64, Instant>,
    /// The armed sleeps that do not keep the run alive (`Sleep.unref`).
    unref: HashSet<u64>,
}

impl Timers {
    /// Arms the sleep `id` for `ms` milliseconds (not finite or not positive: 0), unless `limit`
    /// timers are armed already.
    pub fn arm(&mut self, id: u64, ms: f64, unref: bool, limit: usize) -> Result<(), OpError> {
        let armed = self.armed.len();
        if armed >= limit {
            return Err(OpError::new(
                ErrorCode::QuotaExceeded,
                format!("too many timers: {armed} are armed ([limits] max_timers = {limit})"),
            ));
        }
        let ms = if ms.is_finite() && ms > 0.0 {
            ms.min(1e12)
        } else {
            0.0
        };
        let deadline = Instant::now() + Duration::from_secs_f64(ms / 1000.0);
        self.armed.insert((deadline, id), ());
        self.deadline.insert(id, deadline);
        if unref {
            self.unref.insert(id);
        }
        Ok(())
    }

    /// Disarms the sleep `id` (no reply will come for it).
    pub fn cancel(&mut self, id: u64) {
        if let Some(t) = self.deadline.remove(&id) {
            self.armed.remove(&(t, id));
        }
        self.unref.remove(&id);
    }

    /// Whether an armed timer keeps the run alive.
    pub fn keep_alive(&self) -> bool {
        self.armed.len() > self.unref.len()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.armed.keys().next().map(|(t, _)| *t)
    }

    /// Removes and returns the call ids of timers due at `now`, in deadline order.
    pub fn due(&mut self, now: Instant) -> Vec<u64> {
        let mut due = Vec::new();
        while let Some((&(t, id), _)) = self.armed.iter().next() {
            if t > now {
                break;
            }
            self.armed.remove(&(t, id));
            self.deadline.remove(&id);
            self.unref.remove(&id);
            due.push(id);
        }
        due
    }
}
