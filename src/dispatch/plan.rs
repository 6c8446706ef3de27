//! What a handler tells the pipeline about one call: how its record shows it, what the policy
//! decides (validated first), and how it runs. The `Handlers` trait (one method per operation)
//! is generated from proto/v8box.proto by build.rs (build/op_gen.rs).

use std::path::PathBuf;

use super::{Dispatcher, Shared};
use crate::audit::Parts;
use crate::ops::fs::Located;
use crate::ops::table::OpSpec;
use crate::ops::{Done, OpError, Quick};
use crate::policy::NetTarget;

/// One resource the policy decides, under the permission the op table gives its field.
pub enum Target {
    /// A file path, absolute and normalized.
    Path(PathBuf),
    /// A variable's or a channel's name.
    Name(String),
    /// A name that is the call's resource (`Plan::resource`), not copied.
    ResourceName,
    /// A host and port.
    Net(NetTarget),
}

impl Target {
    /// The name a `Name` or `ResourceName` target decides (`resource`: the call's).
    pub fn name<'a>(&'a self, resource: &'a str) -> &'a str {
        match self {
            Target::Name(name) => name,
            _ => resource,
        }
    }
}

/// The resources a call's policy decides (one or two: no allocation for them).
pub type Targets = smallvec::SmallVec<[Target; 2]>;

/// Where each path target was located beneath its grant, in the order of the targets.
pub type Grants = Vec<Located>;

/// A job that runs on this thread.
pub type Inline = Box<dyn FnOnce(&Dispatcher, Grants) -> Done>;
/// A quick attempt on this thread, before the pool.
pub type QuickJob = Box<dyn FnOnce(&Shared, &Grants) -> Quick>;
/// A job for the I/O pool.
pub type PoolJob = Box<dyn FnOnce(&Shared, Grants) -> Done + Send>;

/// How a call runs once it is allowed.
pub enum Run {
    /// On this thread; answered through `$send`'s return value.
    Inline(Inline),
    /// As `Inline`, a function of the call's resource alone (`Plan::resource`): no closure to
    /// box per call.
    OnResource(fn(&str) -> Done),
    /// On the I/O pool (answered through `$recv`), after a quick attempt here if there is one.
    Pool(Option<QuickJob>, PoolJob),
    /// Armed on this thread (a timer), answered later by the event loop; recorded when armed.
    Armed(Box<dyn FnOnce(&Dispatcher, u64) -> Result<(), OpError>>),
    /// Done on this thread, never answered (printing).
    Notify(Box<dyn FnOnce(&Dispatcher)>),
}

/// What happens when a call is refused before it runs (`Plan::on_refused`).
pub type OnRefused = Box<dyn FnOnce(&Dispatcher, &OpError)>;

/// A call as its handler prepared it.
pub struct Plan {
    /// What its record names (a path made absolute, a URL with credentials hidden, a name).
    pub resource: String,
    /// The resource's parts, as fields of their own (docs/AUDIT.md).
    pub parts: Parts,
    /// Payload bytes it carries.
    pub bytes_in: u64,
    /// Charge `bytes_in` against the byte quota before it runs (what it sends).
    pub charge_in: bool,
    /// Charge the bytes it returns against the byte quota (`false`: they are `bytes_in`).
    pub charge_out: bool,
    /// For a write: the SHA-256 of the bytes (only with an audit log).
    pub sha256: Option<String>,
    /// The resources to decide, one per resource field of the op table, or why the arguments
    /// name nothing that could exist (refused before the policy is asked).
    pub targets: Result<Targets, OpError>,
    /// How it runs.
    pub run: Run,
    /// Told why, whenever the call is refused before it runs (a host waiting for an answer).
    pub on_refused: Option<OnRefused>,
}

impl Plan {
    /// A call on `resource` that decides `targets` and runs with `run`.
    pub fn new(resource: impl Into<String>, targets: Result<Targets, OpError>, run: Run) -> Plan {
        Plan {
            resource: resource.into(),
            parts: Parts::None,
            bytes_in: 0,
            charge_in: false,
            charge_out: true,
            sha256: None,
            targets,
            run,
            on_refused: None,
        }
    }

    /// A call refused as invalid before the policy is asked (`resource` as given).
    pub fn invalid(resource: impl Into<String>, e: OpError) -> Plan {
        Plan::new(resource, Err(e), Run::Notify(Box::new(|_| {})))
    }

    /// A call no policy decides (no resource fields).
    pub fn free(resource: impl Into<String>, run: Run) -> Plan {
        Plan::new(resource, Ok(Targets::new()), run)
    }

    /// Answered at once with `f`'s result, recorded with `resource`.
    pub fn inline(
        resource: impl Into<String>,
        f: impl FnOnce(&Dispatcher) -> Done + 'static,
    ) -> Plan {
        Plan::free(resource, Run::Inline(Box::new(move |d, _| f(d))))
    }
}

include!(concat!(env!("OUT_DIR"), "/op_handlers.rs"));
