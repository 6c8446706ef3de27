//! What the dispatcher shares with the I/O pool's threads for one run.

use std::time::Instant;

use super::quota::Quotas;
use crate::audit::{AuditLog, CallInfo, Ending, Sequence, Unfinished};
use crate::ops::{fs::FsRoots, OpError};
use crate::policy::{Policy, Rule};

/// What the dispatcher shares with I/O threads.
pub struct Shared {
    /// The run's policy.
    pub policy: Policy,
    /// The file-system roots the policy's file grants open.
    pub fs: FsRoots,
    /// The run's audit log.
    pub audit: AuditLog,
    /// Which record each finished call gets, ordered against the run's end.
    pub(super) sequence: Sequence,
    quotas: Quotas,
    pub(super) max_message_bytes: usize,
    pub(super) epoch: Instant,
    /// Each grant's rule as a record names it (`Policy::grants`' order), made once.
    rules: Vec<Rule>,
}

impl Shared {
    /// State for a run under `policy`, recording to `audit`, with no quota used yet.
    pub fn new(policy: Policy, audit: AuditLog) -> Shared {
        let rules = policy_rules(&policy);
        Shared {
            fs: FsRoots::new(&policy, audit.file()),
            max_message_bytes: policy.limits.max_message_bytes(),
            policy,
            audit,
            sequence: Sequence::default(),
            quotas: Quotas::default(),
            epoch: Instant::now(),
            rules,
        }
    }

    /// The rule of the policy's grant `i` (made anew for a grant added since the start).
    pub(super) fn rule(&self, i: usize) -> Rule {
        match self.rules.get(i) {
            Some(rule) => rule.clone(),
            None => Rule::from(self.policy.grants[i].source.rule()),
        }
    }

    /// Writes the run's `run_end` record (see `audit::Sequence::end_run`).
    pub fn end_run(&self, write: impl FnOnce(Unfinished) -> u64) -> bool {
        self.sequence.end_run(write)
    }

    /// Notes the `seq` of the run's `run_start` record, for its `run_end` to name.
    pub fn started_run(&self, run_start: u64) {
        self.sequence.started_run(run_start);
    }

    /// Now, for an audit record's duration; without an audit log, no clock is read (it was a
    /// tenth of a synchronous call's cost).
    pub(super) fn clock(&self) -> Instant {
        if self.audit.enabled() {
            Instant::now()
        } else {
            self.epoch
        }
    }

    /// Counts one call against the op's quota.
    pub(super) fn charge_call(&self, op: &'static str) -> Result<(), OpError> {
        self.quotas.charge_call(op, self.policy.quotas.get(op))
    }

    /// Counts bytes moved against the op's quota.
    pub(super) fn charge_bytes(&self, op: &'static str, n: u64) -> Result<(), OpError> {
        self.quotas.charge_bytes(op, self.policy.quotas.get(op), n)
    }

    /// Records, on an I/O thread, a decision made while a call runs (a redirect hop, an
    /// address connected to) that is not the call's own record.
    pub(super) fn record_on_pool(&self, info: CallInfo, outcome: &'static str, started: Instant) {
        let ending = Ending {
            outcome,
            bytes_out: 0,
            started: Some(started),
            intent: None,
        };
        self.sequence
            .finished_on_pool(&self.audit, info, ending, false);
    }
}

/// The text of each grant's rule, in the policy's order.
fn policy_rules(policy: &Policy) -> Vec<Rule> {
    policy
        .grants
        .iter()
        .map(|g| Rule::from(g.source.rule()))
        .collect()
}
