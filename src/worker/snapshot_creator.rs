//! Making a startup snapshot: a context with the three native functions installed and a
//! prelude already run, serialized by V8.
//!
//! build.rs includes this file (`#[path]`) to make the `sys` prelude's snapshot at compile
//! time, so it depends on nothing but `v8` and std. While the snapshot is made, the natives are
//! stand-ins that only record what the prelude registers with `$recv`; a snapshot stores a
//! native as its index in the external-reference table, so a worker that loads it with the real
//! natives in the same order (`NATIVES`, `snapshot::external_references`) gets the real ones.

/// The native functions' global names, in the order of every snapshot's external-reference
/// table.
pub const NATIVES: [&str; 3] = ["$send", "$recv", "$print"];

/// A serialized isolate, and the context-data index of the function its prelude gave to
/// `$recv` (if it did).
pub struct Blob {
    /// V8's startup data.
    pub data: Vec<u8>,
    /// Where `v8::HandleScope::get_context_data_from_snapshot_once` finds the `$recv` callback.
    pub recv_index: Option<usize>,
}

/// Installs the natives under their `NATIVES` names on the context's global object.
pub fn install(
    scope: &mut v8::PinScope,
    context: v8::Local<v8::Context>,
    callbacks: [v8::FunctionCallback; 3],
) {
    let global = context.global(scope);
    for (name, callback) in NATIVES.into_iter().zip(callbacks) {
        let f = v8::Function::new_raw(scope, callback).unwrap();
        let key = v8::String::new(scope, name).unwrap();
        f.set_name(key);
        global.set(scope, key.into(), f.into());
    }
}

/// V8 flags every process that makes or loads v8box's snapshots sets before V8 starts. All
/// isolates of a process share one read-only heap, set up by the first isolate from its
/// snapshot (V8's built-in one, or one made here). A snapshot creator would otherwise move the
/// prelude's immutable objects into that heap (V8's `extensible_ro_snapshot`), so that an isolate
/// from the prelude's snapshot next to one from V8's own aborted the process (seen: "vector[]
/// index out of bounds" in `ReadReadOnlyHeapRef`). Kept sealed, every snapshot made here has
/// V8's built-in read-only heap, and any mix of them lives in one process.
pub const SNAPSHOT_FLAGS: &str = "--no-extensible-ro-snapshot";

/// Sets up V8 in a process that only makes snapshots (build.rs); a v8box process sets it up in
/// `platform::init` instead. The flags need not match: V8 checks them for code caches only.
#[allow(dead_code)] // Called by build.rs only.
pub fn init_v8() {
    // `Intl`'s ICU data is embedded in the library, as in a v8box process.
    v8::V8::set_flags_from_string(SNAPSHOT_FLAGS);
    let platform = v8::new_unprotected_default_platform(0, false).make_shared();
    v8::V8::initialize_platform(platform);
    v8::V8::initialize();
}

/// Stand-ins for the natives, in `NATIVES` order.
fn stand_ins() -> [v8::FunctionCallback; 3] {
    use v8::MapFnTo;
    [
        send_stand_in.map_fn_to(),
        record_recv.map_fn_to(),
        print_stand_in.map_fn_to(),
    ]
}

/// An external-reference table in `NATIVES` order. V8 finds a native's index by its address,
/// so two natives at one address (say, identical functions merged by the compiler) would
/// restore as the same function: refused here.
pub fn references(natives: [v8::FunctionCallback; 3]) -> Vec<v8::ExternalReference> {
    let addresses = natives.map(|f| f as usize);
    assert!(
        addresses[0] != addresses[1]
            && addresses[1] != addresses[2]
            && addresses[0] != addresses[2],
        "each native needs its own address"
    );
    // The isolate keeps its own copy of the table for as long as it lives.
    natives
        .map(|function| v8::ExternalReference { function })
        .to_vec()
}

/// `$send` while the snapshot is made: there is no host to reach.
fn send_stand_in(scope: &mut v8::PinScope, _: v8::FunctionCallbackArguments, _: v8::ReturnValue) {
    no_host(scope, "$send");
}

/// `$print` while the snapshot is made.
fn print_stand_in(scope: &mut v8::PinScope, _: v8::FunctionCallbackArguments, _: v8::ReturnValue) {
    no_host(scope, "$print");
}

fn no_host(scope: &mut v8::PinScope, name: &str) {
    let text = format!("{name}: a prelude cannot reach the host while its snapshot is made");
    let msg = v8::String::new(scope, &text).unwrap();
    let exc = v8::Exception::error(scope, msg);
    scope.throw_exception(exc);
}

/// What the prelude registered with `$recv` (kept in an isolate slot).
struct Registered(Option<v8::Global<v8::Function>>);

fn record_recv(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _: v8::ReturnValue) {
    match v8::Local::<v8::Function>::try_from(args.get(0)) {
        Ok(f) => {
            let f = v8::Global::new(scope, f);
            scope.set_slot(Registered(Some(f)));
        }
        Err(_) => {
            let msg = v8::String::new(scope, "$recv expects a function").unwrap();
            let exc = v8::Exception::type_error(scope, msg);
            scope.throw_exception(exc);
        }
    }
}

/// Runs `prelude` as a classic script named `name`; fails with its error and line.
fn run(
    tc: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>,
    name: &str,
    prelude: &str,
) -> Result<(), String> {
    let code = v8::String::new(tc, prelude).ok_or("prelude too large")?;
    let script_name = v8::String::new(tc, name).ok_or("prelude name too large")?;
    let origin = v8::ScriptOrigin::new(
        tc,
        script_name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        false,
        None,
    );
    if v8::Script::compile(tc, code, Some(&origin))
        .and_then(|s| s.run(tc))
        .is_some()
    {
        return Ok(());
    }
    Err(match (tc.exception(), tc.message()) {
        (Some(e), Some(m)) => {
            let line = m.get_line_number(tc).unwrap_or(0);
            format!("{name}:{line}: {}", e.to_rust_string_lossy(tc))
        }
        (Some(e), None) => e.to_rust_string_lossy(tc),
        _ => "the prelude did not finish (no exception)".into(),
    })
}

/// Runs `prelude` (a classic script, reported as `name` in errors and stack traces) in a new
/// context and serializes the isolate. Fails with the prelude's error. V8 must be initialized.
pub fn create(name: &str, prelude: &str) -> Result<Blob, String> {
    let refs = std::borrow::Cow::Owned(references(stand_ins()));
    let mut creator = v8::Isolate::snapshot_creator(Some(refs), None);
    creator.set_slot(Registered(None));
    let ran = {
        v8::scope!(let scope, &mut creator);
        let context = v8::Context::new(scope, Default::default());
        let scope = &mut v8::ContextScope::new(scope, context);
        install(scope, context, stand_ins());
        v8::tc_scope!(let tc, scope);
        let ran = run(tc, name, prelude).map(|()| {
            let recv = tc.get_slot_mut::<Registered>().and_then(|r| r.0.take());
            recv.map(|g| {
                let f = v8::Local::new(tc, g);
                tc.add_context_data(context, f)
            })
        });
        // Even after a failure: a snapshot creator must serialize before it is dropped.
        tc.set_default_context(context);
        ran
    };
    // No handle may outlive the creator's serialization.
    creator.remove_slot::<Registered>();
    let data = creator.create_blob(v8::FunctionCodeHandling::Keep);
    let recv_index = ran?;
    let data = data.ok_or("V8 could not create the snapshot")?;
    if !data.can_be_rehashed() {
        return Err(
            "V8 made a snapshot it cannot rehash: every isolate would hash strings \
                    with the seed it was made with, which a script could learn and flood"
                .into(),
        );
    }
    Ok(Blob {
        data: data.to_vec(),
        recv_index,
    })
}
