//! The startup snapshot a worker can start from: a context with the three native functions
//! installed and a prelude (the `sys` library) already run, so the worker skips parsing,
//! compiling and running it. The `sys` prelude's snapshot is made when v8box is built (build.rs,
//! with `snapshot_creator`); `build` makes one for another prelude at run time.

use std::sync::Arc;

use super::bindings;
use super::snapshot_creator;

/// A serialized isolate with a prelude loaded, and where to find what it registered.
#[derive(Clone)]
pub struct Snapshot {
    blob: Blob,
    /// Context-data index of the function the prelude gave to `$recv`, if it did.
    pub(crate) recv_index: Option<usize>,
}

#[derive(Clone)]
enum Blob {
    /// Made at build time, inside the executable.
    Static(&'static [u8]),
    /// Made at run time.
    Built(Arc<[u8]>),
}

impl Snapshot {
    /// The snapshot build.rs made with `snapshot_creator::create` in this same build, so it
    /// matches this V8 and these natives. (Not public: V8 trusts a snapshot like its own code.)
    pub(crate) fn from_build(data: &'static [u8], recv_index: Option<usize>) -> Snapshot {
        Snapshot {
            blob: Blob::Static(data),
            recv_index,
        }
    }

    fn data(&self) -> &[u8] {
        match &self.blob {
            Blob::Static(data) => data,
            Blob::Built(data) => data,
        }
    }

    /// Whether both are the same snapshot (not a copy: the same bytes in memory).
    pub(crate) fn same_as(&self, other: &Snapshot) -> bool {
        std::ptr::eq(self.data(), other.data())
    }

    /// Isolate parameters that start from this snapshot, with the real natives.
    pub(crate) fn params(&self, params: v8::CreateParams) -> v8::CreateParams {
        let refs = snapshot_creator::references(bindings::natives());
        let params = params.external_references(refs.into());
        match &self.blob {
            Blob::Static(data) => params.snapshot_blob((*data).into()),
            // V8 reads the blob for as long as the isolate lives, and the crate holds it as
            // `'static` or owned: a run-time snapshot is copied for each isolate (the build's
            // own snapshot, the common case, is not).
            Blob::Built(data) => params.snapshot_blob(data.to_vec().into()),
        }
    }
}

/// Builds a snapshot of a worker that ran `prelude` (named `name`). Fails with the prelude's
/// error message.
pub fn build(name: &str, prelude: &str) -> Result<Snapshot, String> {
    super::platform::init()?;
    let blob = snapshot_creator::create(name, prelude)?;
    Ok(Snapshot {
        blob: Blob::Built(Arc::from(blob.data)),
        recv_index: blob.recv_index,
    })
}
