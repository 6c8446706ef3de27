//! The startup snapshot: a context with the three native functions installed and a prelude
//! (the `sys` library) already run, serialized once per process on first use. Workers made from
//! it skip parsing, compiling and running the prelude.

use std::sync::{Arc, OnceLock};

use v8::MapFnTo;

use super::bindings;
use super::state::{self, State};

/// A serialized isolate with the prelude loaded, and where to find what it registered.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) blob: Arc<[u8]>,
    /// Context-data index of the function the prelude gave to `$recv`, if it did.
    pub(crate) recv_index: Option<usize>,
}

/// The native functions' addresses, which V8 needs to serialize and restore them.
pub(crate) fn external_references() -> &'static v8::ExternalReferences {
    static REFS: OnceLock<&'static v8::ExternalReferences> = OnceLock::new();
    REFS.get_or_init(|| {
        let refs = v8::ExternalReferences::new(&[
            v8::ExternalReference {
                function: bindings::send.map_fn_to(),
            },
            v8::ExternalReference {
                function: bindings::recv.map_fn_to(),
            },
            v8::ExternalReference {
                function: bindings::print.map_fn_to(),
            },
        ]);
        // The table must outlive every isolate that uses it: the whole process.
        Box::leak(Box::new(refs))
    })
}

/// Builds a snapshot of a worker that ran `prelude` (named `name`). Fails with the prelude's
/// error message.
pub fn build(name: &str, prelude: &str) -> Result<Snapshot, String> {
    super::platform::init();
    let mut creator = v8::Isolate::snapshot_creator(Some(external_references()), None);
    let shared: state::SharedState = std::rc::Rc::new(std::cell::RefCell::new(State::new(
        Box::new(|_| None),
        Box::new(|_| {}),
    )));
    creator.set_slot(shared.clone());
    let recv_index = {
        let scope = &mut v8::HandleScope::new(&mut creator);
        let context = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, context);
        bindings::install(scope, context);
        let tc = &mut v8::TryCatch::new(scope);
        let code = v8::String::new(tc, prelude).ok_or("prelude too large")?;
        let origin = super::modules::origin(tc, name, false);
        let ran = v8::Script::compile(tc, code, Some(&origin)).and_then(|s| s.run(tc));
        if ran.is_none() {
            return Err(super::exception::caught(tc).to_string());
        }
        let recv = shared.borrow_mut().recv.take();
        let index = recv.map(|g| {
            let f = v8::Local::new(tc, g);
            tc.add_context_data(context, f)
        });
        tc.set_default_context(context);
        index
    };
    // No handle may outlive the creator's serialization.
    creator.remove_slot::<state::SharedState>();
    drop(shared);
    let blob = creator
        .create_blob(v8::FunctionCodeHandling::Keep)
        .ok_or("V8 could not create the snapshot")?;
    Ok(Snapshot {
        blob: Arc::from(&blob[..]),
        recv_index,
    })
}
